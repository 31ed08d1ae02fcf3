package main

import (
	"testing"
	"time"
)

// flagsFromEnv: variables fill the flags the command line left alone,
// repeatable flags take one value per line, and bad values name their
// variable.
func TestFlagsFromEnv(t *testing.T) {
	e := &env{}
	root := newRoot(e)
	run, _, err := root.Find([]string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.ParseFlags([]string{"--devices", "7"}); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"TBSIM_DEVICES":          "9", // the flag wins
		"TBSIM_DURATION":         "90s",
		"TBSIM_THRESHOLD":        "errors==0\n\n  online>=99%\n",
		"TBSIM_PROVISION_SECRET": "s3cret",
		"TBSIM_SOURCE_IP":        "10.0.0.1,10.0.0.2",
		"TBSIM_STATE_DIR":        "", // empty: ignored
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	if err := flagsFromEnv(run, lookup); err != nil {
		t.Fatal(err)
	}
	get := func(name string) string { return run.Flags().Lookup(name).Value.String() }
	for name, want := range map[string]string{
		"devices": "7", "duration": (90 * time.Second).String(), "threshold": "[errors==0,online>=99%]",
		"provision-secret": "s3cret", "source-ip": "[10.0.0.1,10.0.0.2]", "state-dir": "tbsim-state",
	} {
		if got := get(name); got != want {
			t.Errorf("--%s = %q; want %q", name, got, want)
		}
	}

	vars = map[string]string{"TBSIM_ABORT_ON_FAIL": "maybe"}
	err = flagsFromEnv(run, lookup)
	if err == nil || err.Error() != `TBSIM_ABORT_ON_FAIL="maybe" (for --abort-on-fail): invalid argument "maybe" for "--abort-on-fail" flag: strconv.ParseBool: parsing "maybe": invalid syntax` {
		t.Errorf("bad bool: %v", err)
	}

	// The credential variables the help texts and warnings name are the
	// ones the rule gives.
	for flag, name := range map[string]string{"provision-key": envProvisionKey, "provision-secret": envProvisionSecret,
		"user": envUser, "password": envPassword} {
		if envName(flag) != name {
			t.Errorf("envName(%q) = %q; the help text says %s", flag, envName(flag), name)
		}
	}

	ota, _, _ := root.Find([]string{"ota", "push"})
	vars = map[string]string{"TBSIM_URL": "http://elsewhere"}
	if err := flagsFromEnv(ota, lookup); err != nil || ota.Flags().Lookup("url").Changed {
		t.Errorf("ota push read TBSIM_URL; only run and server read every flag's variable")
	}
}

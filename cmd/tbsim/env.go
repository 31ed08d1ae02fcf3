package main

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every flag of the commands marked withEnv can come from the environment,
// as a container or a CI job sets it: TBSIM_ and the flag's name in
// capitals with "_" for "-" (--provision-secret: TBSIM_PROVISION_SECRET).
// Credentials then need not sit on a command line, where ps and shell
// history show them (in Kubernetes they come from a Secret). A flag given
// on the command line wins; an empty variable is ignored; a repeatable flag
// (--threshold) takes one value per line.
const envPrefix = "TBSIM_"

const envAnnotation = "tbsim.env"

// withEnv marks cmd's flags as settable from TBSIM_ variables and says so
// in its help.
func withEnv(cmd *cobra.Command) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[envAnnotation] = "true"
	cmd.Long += "\n\nEvery flag can also come from the environment: " + envPrefix + ` and the flag's name in
capitals with _ for - (--provision-secret: TBSIM_PROVISION_SECRET). A flag on the
command line wins; empty variables are ignored; --threshold takes one per line.`
}

// envName is the variable of a flag.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// flagsFromEnv sets every flag of cmd that the command line left alone
// from its variable, if cmd was marked withEnv. A bad value is a usage
// error naming the variable.
func flagsFromEnv(cmd *cobra.Command, lookup func(string) (string, bool)) error {
	if cmd.Annotations[envAnnotation] == "" {
		return nil
	}
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" {
			return
		}
		v, ok := lookup(envName(f.Name))
		if !ok || v == "" {
			return
		}
		values := []string{v}
		if strings.HasSuffix(f.Value.Type(), "Array") {
			values = nonEmptyLines(v)
		}
		for _, x := range values {
			if err := cmd.Flags().Set(f.Name, x); err != nil {
				errs = append(errs, usageErr("%s=%q (for --%s): %v", envName(f.Name), x, f.Name, err))
				return
			}
		}
	})
	return errors.Join(errs...)
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

package firmware_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/firmwaretest"
	"github.com/tbsim/tbsim/firmware/tbapi"
)

func writeAhead() firmware.Config {
	c := cfg()
	c.WriteAheadToken = true
	return c
}

// The chosen token is in NVS before the request leaves, and the request
// asks for it.
func TestWriteAheadRequest(t *testing.T) {
	r := firmwaretest.NewRig(writeAhead())
	r.Boot()
	r.WiFiUp()
	r.Connected()
	tok := r.NVS.Data["tb/token_ahead"]
	if len(tok) != 20 {
		t.Fatalf("token_ahead = %q; want 20 characters chosen before the request", tok)
		return
	}
	req, ok := r.Session.Last(tbapi.TopicProvisionRequest)
	if !ok {
		t.Fatal("no request")
		return
	}
	if !strings.Contains(req.Payload, `"credentialsType":"ACCESS_TOKEN"`) || !strings.Contains(req.Payload, `"token":"`+tok+`"`) {
		t.Fatalf("request %s does not ask for the chosen token %s", req.Payload, tok)
		return
	}
	r.Message(tbapi.TopicProvisionResponse, provisionSuccess(tok))
	if r.NVS.Data["tb/token"] != tok {
		t.Fatalf("token = %q; want %q", r.NVS.Data["tb/token"], tok)
		return
	}
	if _, ok := r.NVS.Data["tb/token_ahead"]; ok {
		t.Fatal("token_ahead kept after the token was saved")
		return
	}
}

// A power cut after the server created the device (the answer lost): the
// next boot asks again with the same token, gets FAILURE for its own name,
// tries the token and is online. The seed's behaviour strands it.
func TestWriteAheadRecoversLostAnswer(t *testing.T) {
	r := firmwaretest.NewRig(writeAhead())
	r.Boot()
	r.WiFiUp()
	r.Connected()
	tok := r.NVS.Data["tb/token_ahead"]
	// Power cut: the server has the device; the device has no token.
	r.Boot()
	r.WiFiUp()
	r.Connected()
	req, _ := r.Session.Last(tbapi.TopicProvisionRequest)
	if !strings.Contains(req.Payload, `"token":"`+tok+`"`) {
		t.Fatalf("second request %s does not reuse the chosen token", req.Payload)
		return
	}
	r.Message(tbapi.TopicProvisionResponse, `{"errorMsg":"Failed to provision device!","status":"FAILURE"}`)
	if got := r.Session.LastConnect(); got.Username != tok {
		t.Fatalf("after FAILURE the device connects as %q; want the chosen token", got.Username)
		return
	}
	r.Connected()
	st := r.M.Status()
	if st.State != firmware.StateOnline || !st.Provisioned || r.NVS.Data["tb/token"] != tok {
		t.Fatalf("state %v provisioned %v token %q; want online with the chosen token", st.State, st.Provisioned, r.NVS.Data["tb/token"])
		return
	}
}

// A FAILURE for a name that the server holds with another token: refused,
// the device stays offline with the name conflict as its cause (stranded).
func TestWriteAheadForeignName(t *testing.T) {
	r := firmwaretest.NewRig(writeAhead())
	r.Boot()
	r.WiFiUp()
	r.Connected()
	r.Message(tbapi.TopicProvisionResponse, `{"errorMsg":"Failed to provision device!","status":"FAILURE"}`)
	r.Refused(firmware.ConnackNotAuthorized)
	st := r.M.Status()
	if st.State == firmware.StateOnline || st.Provisioned || st.Cause != firmware.FailProvisionFailure {
		t.Fatalf("state %v provisioned %v cause %v; want offline, unprovisioned, provision_failure", st.State, st.Provisioned, st.Cause)
		return
	}
	r.Advance(5 * time.Second)
	if r.M.Status().State != firmware.StateProvisioning {
		t.Fatalf("state %v; want provisioning again after the backoff", r.M.Status().State)
		return
	}
}

// A token the NVS cannot keep is retried, not run on: the device does not
// connect until it is saved, and does not provision again.
func TestTokenSaveRetried(t *testing.T) {
	r := firmwaretest.NewRig(cfg())
	r.Boot()
	r.WiFiUp()
	r.Connected()
	r.NVS.FailWrite = true
	r.Message(tbapi.TopicProvisionResponse, provisionSuccess("T0KEN"))
	connects := len(r.Session.Connects)
	r.Advance(3 * time.Second)
	st := r.M.Status()
	if st.State == firmware.StateOnline || len(r.Session.Connects) != connects || st.Failures[firmware.FailNVSWrite] < 2 {
		t.Fatalf("with NVS failing: state %v, %d new connects, %d NVS failures; want no connect and retries",
			st.State, len(r.Session.Connects)-connects, st.Failures[firmware.FailNVSWrite])
		return
	}
	r.NVS.FailWrite = false
	r.Advance(10 * time.Second)
	if r.NVS.Data["tb/token"] != "T0KEN" {
		t.Fatalf("token = %q after NVS recovered", r.NVS.Data["tb/token"])
		return
	}
	if got := r.Session.LastConnect(); got.Username != "T0KEN" {
		t.Fatalf("connects as %q; want the saved token (not a new provisioning)", got.Username)
		return
	}
	if n := len(r.Session.On(tbapi.TopicProvisionRequest)); n != 1 {
		t.Fatalf("%d provisioning requests; want 1", n)
		return
	}
}

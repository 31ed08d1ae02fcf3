package firmware_test

import (
	"testing"
	"time"

	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/firmwaretest"
	"github.com/tbsim/tbsim/firmware/tbapi"
)

// TestFailuresCounted checks that every failure the machine sees is counted
// under its own kind and becomes the cause while the device is offline.
func TestFailuresCounted(t *testing.T) {
	provisioning := func(t *testing.T) *firmwaretest.Rig {
		r := firmwaretest.NewRig(cfg())
		r.Boot()
		r.WiFiUp()
		return r
	}
	cases := []struct {
		name string
		run  func(t *testing.T) *firmwaretest.Rig
		want firmware.Failure
	}{
		{"provision FAILURE", func(t *testing.T) *firmwaretest.Rig {
			r := provisioning(t)
			r.Connected()
			r.Message(tbapi.TopicProvisionResponse, `{"status":"FAILURE","errorMsg":"exists"}`)
			return r
		}, firmware.FailProvisionFailure},
		{"provision NOT_FOUND", func(t *testing.T) *firmwaretest.Rig {
			r := provisioning(t)
			r.Connected()
			r.Message(tbapi.TopicProvisionResponse, `{"status":"NOT_FOUND","errorMsg":"no profile"}`)
			return r
		}, firmware.FailProvisionNotFound},
		{"provision malformed", func(t *testing.T) *firmwaretest.Rig {
			r := provisioning(t)
			r.Connected()
			r.Message(tbapi.TopicProvisionResponse, `{"status":`)
			return r
		}, firmware.FailProvisionMalformed},
		{"provision timeout", func(t *testing.T) *firmwaretest.Rig {
			r := provisioning(t)
			r.Connected()
			r.Advance(11 * time.Second)
			return r
		}, firmware.FailProvisionTimeout},
		{"no CONNACK while provisioning", func(t *testing.T) *firmwaretest.Rig {
			r := provisioning(t)
			r.Advance(11 * time.Second)
			return r
		}, firmware.FailConnectTimeout},
		{"token not saved", func(t *testing.T) *firmwaretest.Rig {
			r := provisioning(t)
			r.NVS.FailWrite = true
			r.Connected()
			r.Message(tbapi.TopicProvisionResponse, provisionSuccess("T0"))
			return r
		}, firmware.FailNVSWrite},
		{"refused 5", func(t *testing.T) *firmwaretest.Rig {
			r := firmwaretest.NewRig(cfg())
			r.NVS.Data["tb/token"] = "OLD"
			r.Boot()
			r.WiFiUp()
			r.Refused(5)
			return r
		}, firmware.FailRefusedNotAuthorized},
		{"refused 3", func(t *testing.T) *firmwaretest.Rig {
			r := provisioning(t)
			r.Refused(3)
			return r
		}, firmware.FailRefusedUnavailable},
		{"unreachable", func(t *testing.T) *firmwaretest.Rig {
			r := provisioning(t)
			r.Deliver(firmware.Event{Kind: firmware.EventConnectionLost, Link: firmware.LinkUnreachable, Reason: "dial tcp: connection refused"})
			return r
		}, firmware.FailUnreachable},
		{"server closed while online", func(t *testing.T) *firmwaretest.Rig {
			r := online(t, cfg())
			r.Session.Connected = false
			r.Deliver(firmware.Event{Kind: firmware.EventConnectionLost, Link: firmware.LinkClosed, Reason: "EOF"})
			return r
		}, firmware.FailServerClosed},
		{"keepalive", func(t *testing.T) *firmwaretest.Rig {
			r := online(t, cfg())
			r.Session.Connected = false
			r.Deliver(firmware.Event{Kind: firmware.EventConnectionLost, Link: firmware.LinkKeepalive})
			return r
		}, firmware.FailKeepalive},
		{"wifi", func(t *testing.T) *firmwaretest.Rig {
			r := firmwaretest.NewRig(cfg())
			r.Boot()
			r.Advance(21 * time.Second)
			return r
		}, firmware.FailWiFi},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.run(t)
			st := r.M.Status()
			if st.Failures[c.want] != 1 {
				t.Errorf("Failures[%v] = %d; want 1 (all: %v)", c.want, st.Failures[c.want], st.Failures)
			}
			if got := st.Failures.Total(); got != 1 {
				t.Errorf("total failures = %d; want 1 (all: %v)", got, st.Failures)
			}
			if st.Cause != c.want {
				t.Errorf("Cause = %v; want %v", st.Cause, c.want)
			}
		})
	}
}

// TestFailureCauseClearedOnline: once online again the device has no cause,
// and the counts survive a reset.
func TestFailureCauseClearedOnline(t *testing.T) {
	r := online(t, cfg())
	r.Session.Connected = false
	r.Deliver(firmware.Event{Kind: firmware.EventConnectionLost, Link: firmware.LinkClosed})
	r.Advance(2 * time.Second) // backoff, then connect again
	r.Connected()
	st := r.M.Status()
	if st.State != firmware.StateOnline || st.Cause != firmware.FailNone {
		t.Errorf("state %v cause %v; want online, none", st.State, st.Cause)
	}
	r.Boot()
	if got := r.M.Status().Failures[firmware.FailServerClosed]; got != 1 {
		t.Errorf("after a reset Failures[server_closed] = %d; want 1", got)
	}
}

// TestOTAFailuresCounted: chunk timeouts are counted one by one; the failed
// update once as an OTA failure, a slot refusal as a flash failure.
func TestOTAFailuresCounted(t *testing.T) {
	c := cfg()
	c.ChunkRetries = 2
	r := online(t, c)
	assign(r, "CORE_ESP32", "1.1.0", image(100))
	r.Advance(16 * time.Second) // 3 timeouts of 5 s: 2 retries, then failed
	st := r.M.Status()
	if st.Failures[firmware.FailChunkTimeout] != 3 || st.Failures[firmware.FailOTA] != 1 {
		t.Errorf("chunk timeouts %d, OTA failures %d; want 3 and 1", st.Failures[firmware.FailChunkTimeout], st.Failures[firmware.FailOTA])
	}
	if st.Cause != firmware.FailNone || st.State != firmware.StateOnline {
		t.Errorf("an OTA failure must not take the device offline: state %v cause %v", st.State, st.Cause)
	}

	r = online(t, cfg())
	r.OTA.SlotSize = 10 // too small: Begin refuses
	assign(r, "CORE_ESP32", "1.2.0", image(100))
	if got := r.M.Status().Failures[firmware.FailFlashWrite]; got != 1 {
		t.Errorf("Failures[flash_write] = %d; want 1", got)
	}
}

// assign pushes an assignment of data as ThingsBoard does.
func assign(r *firmwaretest.Rig, title, version string, data []byte) {
	r.Message(tbapi.TopicAttributes, assignment(title, version, data, tbapi.SHA256))
}

func TestFailureNames(t *testing.T) {
	seen := map[string]bool{}
	for f := firmware.FailNone; f < firmware.NumFailures; f++ {
		s := f.String()
		if s == "" || seen[s] || s[0] == 'f' && len(s) > 8 && s[:8] == "failure(" {
			t.Errorf("failure %d has a bad or repeated name %q", f, s)
		}
		seen[s] = true
	}
}

package firmware_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/firmwaretest"
	"github.com/tbsim/tbsim/firmware/tbapi"
)

const mac = "24:0A:C4:12:34:56"

func cfg() firmware.Config {
	c := firmware.Defaults()
	c.ProvisionKey, c.ProvisionSecret = "key", "secret"
	c.Server = "tb.example.com"
	return c
}

// online boots a rig with a stored token and takes it to StateOnline.
func online(t *testing.T, c firmware.Config) *firmwaretest.Rig {
	t.Helper()
	r := firmwaretest.NewRig(c)
	r.NVS.Data["tb/token"] = "TOKEN"
	r.Boot()
	r.WiFiUp()
	r.Connected()
	if st := r.M.Status().State; st != firmware.StateOnline {
		t.Fatalf("state = %v; want online", st)
		return r
	}
	return r
}

// provisionSuccess is ThingsBoard's answer with a generated token.
func provisionSuccess(token string) string {
	return string(tbapi.ProvisionResponse{Status: tbapi.ProvisionSuccess, CredentialsType: tbapi.CredAccessToken, Token: token}.Encode())
}

func TestFirstBootProvisions(t *testing.T) {
	r := firmwaretest.NewRig(cfg())
	r.Boot()
	r.WiFiUp()
	if got := r.Session.LastConnect(); got.Username != "provision" || got.ClientID != mac {
		t.Fatalf("first connect = %+v; want username provision, client id %s", got, mac)
		return
	}
	r.Connected()
	req, ok := r.Session.Last(tbapi.TopicProvisionRequest)
	if !ok {
		t.Fatal("no provision request published")
		return
	}
	if want := `{"deviceName":"` + mac + `","provisionDeviceKey":"key","provisionDeviceSecret":"secret"}`; req.Payload != want {
		t.Fatalf("request = %s; want %s", req.Payload, want)
		return
	}
	r.Message(tbapi.TopicProvisionResponse, provisionSuccess("A1b2C3d4E5f6G7h8I9j0"))
	if got := r.NVS.Data["tb/token"]; got != "A1b2C3d4E5f6G7h8I9j0" {
		t.Fatalf("NVS token = %q", got)
		return
	}
	if r.Session.Disconnects != 1 {
		t.Fatalf("disconnects = %d; want 1 (provision session closed)", r.Session.Disconnects)
		return
	}
	if got := r.Session.LastConnect(); got.Username != "A1b2C3d4E5f6G7h8I9j0" {
		t.Fatalf("second connect = %+v; want the token as username", got)
		return
	}
	r.Connected()
	// The seed README's first-boot transcript, in its order, then what it
	// prints once connected.
	wantLines := []string{
		"Firmware: CORE_ESP32", "Version: 1.0.0", "[NVS] Checking for saved token...",
		"[PROVISION] Not provisioned - will request provisioning", "[PROVISION] Connecting to: tb.example.com",
		"[PROVISION] Sending provisioning request...", "[PROVISION] Device name: " + mac,
		"[PROVISION] Response received!", "[PROVISION] Access Token: A1b2C3d4E5f6G7h8I9j0", "[NVS] Token saved successfully",
		"Connected to ThingsBoard!", "[OTA] Current firmware info sent: CORE_ESP32 v1.0.0",
		"[TELEMETRY] Data sent to ThingsBoard",
	}
	last := -1
	for _, w := range wantLines {
		i := r.Console.Index(w)
		if i < 0 {
			t.Fatalf("console lacks %q:\n%s", w, strings.Join(r.Console.Lines, "\n"))
			return
		}
		if i < last {
			t.Fatalf("%q printed out of order", w)
			return
		}
		last = i
	}
	if !r.M.Status().Provisioned {
		t.Fatal("status not provisioned")
		return
	}
}

func TestSecondBootUsesStoredToken(t *testing.T) {
	r := online(t, cfg())
	if n := len(r.Session.On(tbapi.TopicProvisionRequest)); n != 0 {
		t.Fatalf("provision requests = %d; want 0", n)
		return
	}
	if got := r.Session.Connects; len(got) != 1 || got[0].Username != "TOKEN" {
		t.Fatalf("connects = %+v; want one with the stored token", got)
		return
	}
	if i := r.Console.Index("[NVS] Token loaded: TOKEN"); i < 0 || r.Console.Index("[PROVISION] Already provisioned") != i+1 {
		t.Fatalf("want the token-loaded line, then the seed's \"Already provisioned\":\n%s", strings.Join(r.Console.Lines, "\n"))
		return
	}
}

func TestProvisionRetries(t *testing.T) {
	cases := []struct {
		name    string
		respond func(r *firmwaretest.Rig)
		line    string
	}{
		{"failure", func(r *firmwaretest.Rig) {
			r.Message(tbapi.TopicProvisionResponse, `{"errorMsg":"Failed to provision device!","status":"FAILURE"}`)
		}, "[PROVISION] Failed: FAILURE (Failed to provision device!)"},
		{"not found", func(r *firmwaretest.Rig) {
			r.Message(tbapi.TopicProvisionResponse, `{"errorMsg":"Provision data was not found!","status":"NOT_FOUND"}`)
		}, "[PROVISION] Failed: NOT_FOUND (Provision data was not found!)"},
		{"timeout", func(r *firmwaretest.Rig) { r.Advance(10 * time.Second) }, "[PROVISION] Failed: timeout waiting for response"},
		{"malformed", func(r *firmwaretest.Rig) { r.Message(tbapi.TopicProvisionResponse, `{"status":`) }, "[PROVISION] Failed: malformed response"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := firmwaretest.NewRig(cfg())
			r.Rand.Value = 0xFFFFFFFF // jitter at its maximum
			r.Boot()
			r.WiFiUp()
			var gaps []time.Duration
			for attempt := 0; attempt < 8; attempt++ {
				r.Connected()
				start := r.Clock.T
				c.respond(r)
				if !r.Console.Has(c.line) {
					t.Fatalf("no %q line:\n%s", c.line, strings.Join(r.Console.Lines, "\n"))
					return
				}
				if r.M.Status().State != firmware.StateBackoff {
					t.Fatalf("state = %v; want backoff", r.M.Status().State)
					return
				}
				n := len(r.Session.Connects)
				gap := r.UntilNext()
				r.Advance(gap)
				if len(r.Session.Connects) != n+1 {
					t.Fatalf("attempt %d: no new connect after the backoff", attempt)
					return
				}
				gaps = append(gaps, r.Clock.T.Sub(start))
			}
			if _, ok := r.NVS.Data["tb/token"]; ok {
				t.Fatal("token saved after a failure")
				return
			}
			// Exponential from 1 s, capped at 60 s; never a tight loop.
			for i := 1; i < len(gaps); i++ {
				if gaps[i] < gaps[i-1] {
					t.Fatalf("backoff shrank: %v", gaps)
					return
				}
			}
			if gaps[0] < time.Second/2 || gaps[len(gaps)-1] > 75*time.Second || gaps[5] < 30*time.Second {
				t.Fatalf("backoff gaps %v not exponential within [0.5s, 60s]", gaps)
				return
			}
		})
	}
}

func TestBackoffJitterSpreadsAFleet(t *testing.T) {
	seen := map[time.Duration]bool{}
	for seed := uint32(1); seed <= 20; seed++ {
		r := online(t, cfg())
		r.Rand.Seq = seed * 2654435761
		r.Lost("broker restarted")
		seen[r.UntilNext()] = true
	}
	if len(seen) < 15 {
		t.Fatalf("20 devices chose only %d distinct reconnect delays", len(seen))
		return
	}
}

func TestMQTTBasicProvisioning(t *testing.T) {
	c := cfg()
	c.Credentials = tbapi.CredMQTTBasic
	r := firmwaretest.NewRig(c)
	r.Rand.Seq = 7
	r.Boot()
	r.WiFiUp()
	r.Connected()
	req, _ := r.Session.Last(tbapi.TopicProvisionRequest)
	got, err := tbapi.DecodeProvisionRequest([]byte(req.Payload))
	if err != nil || got.CredentialsType != tbapi.CredMQTTBasic || got.Basic.UserName != mac || len(got.Basic.Password) != 16 {
		t.Fatalf("request = %+v, %v", got, err)
		return
	}
	resp := tbapi.ProvisionResponse{Status: tbapi.ProvisionSuccess, CredentialsType: tbapi.CredMQTTBasic, Basic: got.Basic}
	r.Message(tbapi.TopicProvisionResponse, string(resp.Encode()))
	want := firmware.Credentials{ClientID: got.Basic.ClientID, Username: got.Basic.UserName, Password: got.Basic.Password}
	if r.Session.LastConnect() != want {
		t.Fatalf("connect = %+v; want %+v", r.Session.LastConnect(), want)
		return
	}
	// A second board on the same NVS uses them without provisioning.
	r2 := rigWithNVS(c, r.NVS)
	r2.Boot()
	r2.WiFiUp()
	if r2.Session.LastConnect() != want {
		t.Fatalf("second boot connect = %+v; want %+v", r2.Session.LastConnect(), want)
		return
	}
}

func rigWithNVS(c firmware.Config, nvs *firmwaretest.MemNVS) *firmwaretest.Rig {
	r := firmwaretest.NewRig(c)
	for k, v := range nvs.Data {
		r.NVS.Data[k] = v
	}
	return r
}

func TestNotAuthorizedReprovisions(t *testing.T) {
	r := firmwaretest.NewRig(cfg())
	r.NVS.Data["tb/token"] = "REVOKED"
	r.Boot()
	r.WiFiUp()
	for i := 0; i < 2; i++ {
		r.Refused(firmware.ConnackNotAuthorized)
		if r.NVS.Data["tb/token"] != "REVOKED" {
			t.Fatalf("token erased after %d refusals; want 3", i+1)
			return
		}
		r.Advance(r.UntilNext())
	}
	r.Refused(firmware.ConnackNotAuthorized)
	if _, ok := r.NVS.Data["tb/token"]; ok {
		t.Fatal("token kept after 3 refusals")
		return
	}
	if got := r.Session.LastConnect().Username; got != "provision" {
		t.Fatalf("connect after refusals as %q; want provision", got)
		return
	}
	r.Connected()
	r.Message(tbapi.TopicProvisionResponse, provisionSuccess("NEWTOKEN"))
	r.Connected()
	if st := r.M.Status(); st.State != firmware.StateOnline || st.Reprovisions != 1 {
		t.Fatalf("status = %+v; want online after 1 re-provisioning", st)
		return
	}
}

func TestOtherRefusalsKeepToken(t *testing.T) {
	r := firmwaretest.NewRig(cfg())
	r.NVS.Data["tb/token"] = "TOKEN"
	r.Boot()
	r.WiFiUp()
	for i := 0; i < 5; i++ {
		r.Refused(3) // server unavailable
		r.Advance(r.UntilNext())
	}
	if r.NVS.Data["tb/token"] != "TOKEN" || r.Session.LastConnect().Username != "TOKEN" {
		t.Fatal("CONNACK 3 dropped the token")
		return
	}
}

func TestOnConnect(t *testing.T) {
	r := online(t, cfg())
	wantSubs := []string{tbapi.TopicAttributes, tbapi.TopicRPCRequestFilter}
	for _, w := range wantSubs {
		found := false
		for _, s := range r.Session.Subscriptions {
			found = found || s == w
		}
		if !found {
			t.Errorf("no subscription to %s (have %v)", w, r.Session.Subscriptions)
		}
	}
	tel := r.Session.On(tbapi.TopicTelemetry)
	if len(tel) < 1 || tel[0].Payload != `{"current_fw_title":"CORE_ESP32","current_fw_version":"1.0.0"}` {
		t.Fatalf("first telemetry = %+v; want the current firmware info", tel)
		return
	}
	req, ok := r.Session.Last(tbapi.TopicAttrRequestPrefix)
	if !ok || req.Payload != `{"sharedKeys":"fw_checksum,fw_checksum_algorithm,fw_size,fw_title,fw_version"}` {
		t.Fatalf("attribute request = %+v", req)
		return
	}
	if req.QoS != 1 {
		t.Fatalf("QoS = %d; want 1", req.QoS)
		return
	}
}

func TestTelemetryCadenceAndKeys(t *testing.T) {
	r := online(t, cfg())
	count := func() int { return len(r.Session.On(tbapi.TopicTelemetry)) - 1 } // minus the fw info
	if count() != 1 {
		t.Fatalf("telemetry at connect = %d; want 1", count())
		return
	}
	r.Advance(4999 * time.Millisecond)
	if count() != 1 {
		t.Fatalf("telemetry before 5 s = %d; want 1", count())
		return
	}
	r.Advance(time.Millisecond)
	if count() != 2 {
		t.Fatalf("telemetry at 5 s = %d; want 2", count())
		return
	}
	r.Advance(60 * time.Second)
	if count() != 14 {
		t.Fatalf("telemetry after 65 s = %d; want 14", count())
		return
	}
	last, _ := r.Session.Last(tbapi.TopicTelemetry)
	want := `{"temperature":15.50,"rssi":-61,"channel":6,"bssid":"24:0A:C4:AA:BB:CC","localIp":"10.0.1.2","ssid":"tbsim"}`
	if last.Payload != want {
		t.Fatalf("telemetry = %s; want %s", last.Payload, want)
		return
	}
	if n := r.Console.Count("[TELEMETRY] Data sent to ThingsBoard"); n != 14 {
		t.Fatalf("telemetry lines = %d; want 14", n)
		return
	}
	r.Session.PublishErr = errors.New("not connected")
	r.Advance(5 * time.Second)
	if !r.Console.Has("[TELEMETRY] Failed to send data") {
		t.Fatal("no failure line when publish fails")
		return
	}
}

func TestRPC(t *testing.T) {
	r := online(t, cfg())
	r.Message(tbapi.RPCRequestTopic(7), `{"method":"getTelemetry","params":{}}`)
	resp, _ := r.Session.Last(tbapi.RPCResponseTopic(7))
	if !strings.Contains(resp.Payload, `"temperature":15.50`) {
		t.Fatalf("getTelemetry = %s", resp.Payload)
		return
	}
	r.Message(tbapi.RPCRequestTopic(8), `{"method":"selfDestruct","params":1}`)
	resp, _ = r.Session.Last(tbapi.RPCResponseTopic(8))
	if resp.Payload != `{"error":"unknown method: selfDestruct"}` {
		t.Fatalf("unknown method answer = %s", resp.Payload)
		return
	}
	r.Message(tbapi.RPCRequestTopic(9), `not json`)
	if resp, _ = r.Session.Last(tbapi.RPCResponseTopic(9)); !strings.HasPrefix(resp.Payload, `{"error":"bad request`) {
		t.Fatalf("malformed RPC answer = %s", resp.Payload)
		return
	}
	r.Message(tbapi.RPCRequestTopic(10), `{"method":"getFirmware"}`)
	if resp, _ = r.Session.Last(tbapi.RPCResponseTopic(10)); resp.Payload != `{"title":"CORE_ESP32","version":"1.0.0","state":""}` {
		t.Fatalf("getFirmware = %s", resp.Payload)
		return
	}
	r.Message(tbapi.RPCRequestTopic(11), `{"method":"reboot"}`)
	resp, _ = r.Session.Last(tbapi.RPCResponseTopic(11))
	if r.OTA.Restarts != 0 {
		t.Fatal("restarted before the answer was acknowledged")
		return
	}
	r.Ack(resp.ID)
	if r.OTA.Restarts != 1 || !r.Console.Has("Reset reason: SW") {
		t.Fatalf("restarts = %d; want 1 with reset reason SW", r.OTA.Restarts)
		return
	}
}

func TestEraseTokenForcesProvisioningNextBoot(t *testing.T) {
	r := online(t, cfg())
	r.Deliver(firmware.Event{Kind: firmware.EventEraseToken})
	if _, ok := r.NVS.Data["tb/token"]; ok {
		t.Fatal("token still in NVS")
		return
	}
	if !r.Console.Has("[NVS] Token cleared") {
		t.Fatal("no token-cleared line")
		return
	}
	r.Boot()
	r.WiFiUp()
	if r.Session.LastConnect().Username != "provision" {
		t.Fatal("next boot did not provision")
		return
	}
}

func TestReconnectBackoff(t *testing.T) {
	r := online(t, cfg())
	r.Rand.Value = 0xFFFFFFFF
	var times []time.Time
	for i := 0; i < 6; i++ {
		r.Lost("EOF")
		n := len(r.Session.Connects)
		r.Advance(100 * time.Millisecond)
		if len(r.Session.Connects) != n {
			t.Fatal("reconnected within 100 ms: tight loop")
			return
		}
		r.Advance(r.UntilNext())
		times = append(times, r.Clock.T)
		if len(r.Session.Connects) != n+1 {
			t.Fatalf("no reconnect after backoff %d", i)
			return
		}
		r.Refused(3)
		r.Advance(r.UntilNext())
		r.Connected() // back online resets the backoff
	}
	if !r.Console.Has("[MQTT] Connection lost: EOF") {
		t.Fatal("no connection-lost line")
		return
	}
}

func TestWiFiDropAndTimeout(t *testing.T) {
	r := online(t, cfg())
	r.Deliver(firmware.Event{Kind: firmware.EventWiFiDown, Reason: "BEACON_TIMEOUT"})
	if st := r.M.Status().State; st != firmware.StateWiFi {
		t.Fatalf("state = %v; want wifi", st)
		return
	}
	tel := len(r.Session.On(tbapi.TopicTelemetry))
	r.Advance(time.Minute)
	if len(r.Session.On(tbapi.TopicTelemetry)) != tel {
		t.Fatal("telemetry sent while Wi-Fi is down")
		return
	}
	if r.WiFi.Connects < 2 {
		t.Fatalf("wifi connects = %d; want retries", r.WiFi.Connects)
		return
	}
	r.WiFiUp()
	r.Connected()
	if r.M.Status().State != firmware.StateOnline {
		t.Fatal("not back online")
		return
	}
}

func TestMarkValidPolicies(t *testing.T) {
	for _, c := range []struct {
		policy       firmware.MarkValidPolicy
		validAtBoot  int
		validOnline  int
		beginRefused bool
	}{
		{firmware.MarkValidAtBoot, 1, 1, false},
		{firmware.MarkValidAfterConnect, 0, 1, true},
	} {
		t.Run(c.policy.String(), func(t *testing.T) {
			conf := cfg()
			conf.MarkValid = c.policy
			r := firmwaretest.NewRig(conf)
			r.NVS.Data["tb/token"] = "T"
			r.OTA.Run = firmware.Image{Title: "CORE_ESP32", Version: "1.1.0", PendingVerify: true}
			r.Boot()
			if r.OTA.Valid != c.validAtBoot {
				t.Fatalf("MarkValid calls at boot = %d; want %d", r.OTA.Valid, c.validAtBoot)
				return
			}
			r.WiFiUp()
			r.Connected()
			if r.OTA.Valid != c.validOnline {
				t.Fatalf("MarkValid calls online = %d; want %d", r.OTA.Valid, c.validOnline)
				return
			}
			if !r.Console.Has("Version: 1.1.0") {
				t.Fatal("banner does not show the running image's version")
				return
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := cfg().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
		return
	}
	bad := cfg()
	bad.Title = ""
	bad.TelemetryInterval = 0
	bad.ChunkSize = 70000
	bad.QoS = 2
	bad.BackoffMax = time.Millisecond
	bad.Credentials = "PSK"
	bad.NVSNamespace = "a-namespace-too-long"
	bad.RefusalsBeforeReprovision = 0
	err := bad.Validate()
	for _, field := range []string{"Title", "TelemetryInterval", "ChunkSize", "QoS", "BackoffMax", "Credentials", "NVSNamespace", "RefusalsBeforeReprovision"} {
		if err == nil || !strings.Contains(err.Error(), "config: "+field+":") {
			t.Errorf("Validate error %v does not name %s", err, field)
		}
	}
	if _, err := firmware.New(bad, firmware.Ports{}); err == nil {
		t.Fatal("New accepted a bad config")
		return
	}
	if _, err := firmware.New(cfg(), firmware.Ports{}); err == nil || !strings.Contains(err.Error(), "Clock is nil") {
		t.Fatalf("New with no ports: %v", err)
		return
	}
}

// A malformed payload on any topic is ignored, never a crash.
func TestMalformedMessages(t *testing.T) {
	r := online(t, cfg())
	for _, topic := range []string{tbapi.TopicAttributes, tbapi.AttrResponseTopic(1), tbapi.TopicFwError, "v2/fw/response/x/chunk/0", "unknown/topic"} {
		for _, p := range []string{"", "{", "[]", "\x00\xff", `{"fw_title":{}}`} {
			r.Message(topic, p)
		}
	}
	if r.M.Status().State != firmware.StateOnline {
		t.Fatal("malformed messages took the device offline")
		return
	}
}

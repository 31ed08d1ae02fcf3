package core_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
)

func TestProvisionThenConnect(t *testing.T) {
	r := newRig(t, core.Options{})
	p := r.connect("provision", "provision", "")
	require.True(t, p.pub(tbapi.TopicProvisionRequest, provisionReq("24:0A:C4:00:00:04")), "PUBACK owed")
	m := p.take(tbapi.TopicProvisionResponse)
	require.Equal(t, t0, m.at, "answered at once")
	require.Equal(t, byte(1), m.qos, "no subscription: QoS 1")
	tok := regexp.MustCompile(`^\{"credentialsValue":"([A-Za-z0-9]{20})","credentialsType":"ACCESS_TOKEN","status":"SUCCESS"\}$`).FindStringSubmatch(m.payload)
	require.NotNil(t, tok, m.payload)

	p.pub(tbapi.TopicProvisionRequest, provisionReq("24:0A:C4:00:00:04"))
	require.Equal(t, `{"errorMsg":"Failed to provision device!","status":"FAILURE"}`, p.take(tbapi.TopicProvisionResponse).payload)
	p.pub(tbapi.TopicProvisionRequest, string(tbapi.ProvisionRequest{DeviceName: "x", Key: key, Secret: "nope"}.Encode()))
	require.Equal(t, `{"errorMsg":"Provision data was not found!","status":"NOT_FOUND"}`, p.take(tbapi.TopicProvisionResponse).payload)
	require.Equal(t, int64(1), r.core.Stats().Provisioned)
	require.Equal(t, int64(2), r.core.Stats().ProvisionFailed)

	d := r.connect("24:0A:C4:00:00:04", tok[1], "")
	require.Equal(t, uint64(2), d.sess.ID(), "sessions numbered in connect order")
	bad, code := r.dial("x", "BADTOKEN", "")
	require.Equal(t, core.ConnRefusedNotAuthorized, code, "CONNACK 5 (MQTT 5: 0x86)")
	require.Nil(t, bad.sess)
	require.Equal(t, int64(1), r.core.Stats().Refused)
}

// The provisioning session closes exactly ProvisionCloseAfter after the
// (first) response, whatever its status.
func TestProvisionSessionExpiry(t *testing.T) {
	r := newRig(t, core.Options{})
	p := r.connect("provision", "", "")
	require.Equal(t, byte(1), p.sub(tbapi.TopicProvisionResponse, 1))
	require.Equal(t, core.SubackFailure, p.sub(tbapi.TopicAttributes, 1), "only the response filter")
	r.clock.Advance(5 * time.Second)
	p.pub(tbapi.TopicProvisionRequest, provisionReq("dev-1"))
	r.clock.Advance(10 * time.Second)
	p.pub(tbapi.TopicProvisionRequest, provisionReq("dev-1")) // FAILURE, and no later close
	r.clock.Advance(50*time.Second - time.Nanosecond)
	require.Empty(t, p.closed)
	r.clock.Advance(time.Nanosecond)
	require.Equal(t, core.ReasonProvisionExpired, p.closed)
	require.Equal(t, t0.Add(65*time.Second), p.closedAt)
	require.False(t, p.pub(tbapi.TopicProvisionRequest, provisionReq("dev-2")), "closed: no PUBACK")
	r.clock.Advance(time.Hour)

	// A request without a secret, or another topic, closes at once without an answer.
	for _, c := range []struct{ topic, payload string }{
		{tbapi.TopicProvisionRequest, `{"deviceName":"d","provisionDeviceKey":"k"}`},
		{tbapi.TopicTelemetry, `{"a":1}`},
	} {
		p := r.connect("provision", "provision", "")
		require.False(t, p.pub(c.topic, c.payload))
		require.NotEmpty(t, p.closed)
		p.none()
	}
}

func TestProvisionStrategies(t *testing.T) {
	r := newRig(t, core.Options{})
	pre, err := r.core.CreateProfile(core.ProfileSpec{Name: "pre", ProvisionType: core.CheckPreProvisionedDevices, ProvisionKey: "pk", ProvisionSecret: "ps"})
	require.NoError(t, err)
	_, err = r.core.CreateProfile(core.ProfileSpec{Name: "off", ProvisionType: core.ProvisionDisabled, ProvisionKey: "dk", ProvisionSecret: "ds"})
	require.NoError(t, err)
	d, err := r.core.CreateDevice(core.DeviceSpec{Name: "known", ProfileID: pre.ID})
	require.NoError(t, err)
	p := r.connect("provision", "provision", "")
	ask := func(name, k, sec string) string {
		p.pub(tbapi.TopicProvisionRequest, string(tbapi.ProvisionRequest{DeviceName: name, Key: k, Secret: sec}.Encode()))
		return p.take(tbapi.TopicProvisionResponse).payload
	}
	require.Equal(t, `{"credentialsValue":"`+d.Credentials.Token+`","credentialsType":"ACCESS_TOKEN","status":"SUCCESS"}`, ask("known", "pk", "ps"))
	require.Contains(t, ask("known", "pk", "ps"), `"FAILURE"`, "a repeat fails (ThingsBoard 4.2.1.1+)")
	require.Contains(t, ask("unknown", "pk", "ps"), `"FAILURE"`)
	require.Contains(t, ask("x", "dk", "ds"), `"NOT_FOUND"`, "DISABLED")
	require.Contains(t, ask("   ", key, secret), `"FAILURE"`, "blank name")

	req := tbapi.ProvisionRequest{DeviceName: "basic-1", Key: key, Secret: secret, CredentialsType: tbapi.CredMQTTBasic,
		Basic: tbapi.BasicCredentials{ClientID: "cid", UserName: "user", Password: "pw"}}
	p.pub(tbapi.TopicProvisionRequest, string(req.Encode()))
	require.Equal(t, `{"credentialsValue":{"clientId":"cid","userName":"user","password":"pw"},"credentialsType":"MQTT_BASIC","status":"SUCCESS"}`,
		p.take(tbapi.TopicProvisionResponse).payload)
	r.connect("cid", "user", "pw")
	_, code := r.dial("cid", "user", "wrong")
	require.Equal(t, core.ConnRefusedNotAuthorized, code)
}

// With the same seed and the same calls, the core generates the same
// tokens, names and ids; another seed, other ones.
func TestDeterministicOutputs(t *testing.T) {
	run := func(seed uint64) []string {
		r := newRig(t, core.Options{Rand: rand64(seed)})
		p := r.connect("provision", "provision", "")
		var out []string
		for _, name := range []string{"a", "b", ""} {
			p.pub(tbapi.TopicProvisionRequest, provisionReq(name))
			out = append(out, p.take(tbapi.TopicProvisionResponse).payload)
		}
		for _, d := range r.core.Devices() {
			out = append(out, d.ID, d.Name, d.Credentials.Token)
		}
		pkg, err := r.core.AddFirmware(core.PackageSpec{Title: "T", Version: "1"}, []byte("x"), tbapi.SHA256)
		require.NoError(t, err)
		return append(out, pkg.ID, r.core.RandomString(8))
	}
	a, b := run(7), run(7)
	require.Equal(t, a, b)
	require.NotEqual(t, a, run(8))
}

// The inactivity timeout does not apply to a provisioning session (as on
// ThingsBoard 4.3, which never registers it for activity checks): only its
// close after the response ends it.
func TestProvisionSessionIgnoresInactivity(t *testing.T) {
	r := newRig(t, core.Options{InactivityTimeout: 20 * time.Second, ProvisionCloseAfter: 60 * time.Second})
	p := r.connect("provision", "", "")
	p.pub(tbapi.TopicProvisionRequest, provisionReq("dev-idle"))
	r.clock.Advance(60*time.Second - time.Nanosecond)
	require.Empty(t, p.closed, "idle for 60 s, still open")
	r.clock.Advance(time.Nanosecond)
	require.Equal(t, core.ReasonProvisionExpired, p.closed)
}

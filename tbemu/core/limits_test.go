package core_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
)

// getSessionLimits answers ThingsBoard's SessionLimits as Jackson writes it:
// every limit present, null when not set (Before: "rateLimits":{} without
// limits, and only "messages" with RateLimit.)
func TestSessionLimitsAnswer(t *testing.T) {
	r := newRig(t, core.Options{})
	ask := func(c *client) string {
		t.Helper()
		require.True(t, c.pub(tbapi.RPCRequestTopic(1), `{"method":"getSessionLimits","params":{}}`))
		return c.take(tbapi.RPCResponseTopic(1)).payload
	}
	_, c := r.device("free", core.DeviceSpec{})
	require.Equal(t, `{"maxPayloadSize":65536,"maxInflightMessages":100,`+
		`"rateLimits":{"messages":null,"telemetryMessages":null,"telemetryDataPoints":null}}`, ask(c))

	p, err := r.core.CreateProfile(core.ProfileSpec{Name: "tb", TransportLimits: core.TransportLimits{
		Messages: "20:1,600:60", TelemetryMessages: "10:1,300:60", TelemetryDataPoints: "200:1,6000:60"}})
	require.NoError(t, err)
	_, c = r.device("limited", core.DeviceSpec{ProfileID: p.ID})
	require.Equal(t, `{"maxPayloadSize":65536,"maxInflightMessages":100,`+
		`"rateLimits":{"messages":"20:1,600:60","telemetryMessages":"10:1,300:60","telemetryDataPoints":"200:1,6000:60"}}`, ask(c))
	for range 30 { // answered by the transport: never counted
		ask(c)
	}
	require.Nil(t, c.closedErr())
}

func (c *client) closedErr() error {
	if c.closed == "" {
		return nil
	}
	return errors.New(c.closed)
}

// Each limit is a set of windows that start full and refill smoothly
// (bucket4j's greedy refill); a message needs a token in every window.
// Telemetry takes a telemetry-message token and one data-point token per
// value, other counted messages (the CONNECT too) a message token, per
// device (DefaultTransportRateLimitService.checkLimits).
func TestTransportLimitsAsThingsBoard(t *testing.T) {
	r := newRig(t, core.Options{})
	p, err := r.core.CreateProfile(core.ProfileSpec{Name: "tb", TransportLimits: core.TransportLimits{
		Messages: "3:10", TelemetryMessages: "2:1,3:60", TelemetryDataPoints: "5:1"}})
	require.NoError(t, err)
	d, c := r.device("lim", core.DeviceSpec{ProfileID: p.ID}) // the CONNECT: 1 of 3 messages

	require.True(t, c.pub(tbapi.TopicTelemetry, `{"a":1,"b":2}`))          // 1s: 1 left, 60s: 2, points: 3
	require.True(t, c.pub(tbapi.TopicTelemetry, `{"a":1,"b":null,"c":3}`)) // nulls are not points: 2 taken
	require.True(t, c.pub(tbapi.TopicAttrRequestPrefix+"1", `{}`))         // messages: 1 left
	c.take(tbapi.AttrResponseTopic(1))
	require.True(t, c.pub("v1/devices/me/elsewhere", `x`), "an unknown topic is not counted")
	r.clock.Advance(time.Second) // 1s window full again; 60s window 1 + 3/60
	require.True(t, c.pub(tbapi.TopicTelemetry, `{"a":1,"b":2,"c":3,"d":4,"e":5}`))
	r.clock.Advance(time.Second) // the 60s window has 0.1 token: refused
	require.False(t, c.pub(tbapi.TopicTelemetry, `{"a":1}`))
	require.Equal(t, core.ReasonRateLimit, c.closed)

	// The device's buckets outlive its sessions: the messages window has one
	// token left (3 less the CONNECT and the request, plus 2 s of refill),
	// which the next CONNECT takes.
	c = r.connect("lim", d.Credentials.Token, "")
	require.False(t, c.pub(tbapi.TopicTelemetry, `{}`), "no data points: a message, and none is left")
	_, code := r.dial("lim", d.Credentials.Token, "")
	require.Equal(t, core.ConnRefusedUnavailable, code, "a CONNECT over the limit: CONNACK 3 (MQTT 5: 0x9F)")
	r.clock.Advance(10 * time.Second / 3) // one message token
	c = r.connect("lim", d.Credentials.Token, "")
	require.Equal(t, int64(3), r.core.Stats().RateLimited)

	// Saving the profile renews only the limits that changed.
	p.TransportLimits.Messages = "100:1"
	_, err = r.core.UpdateProfile(p)
	require.NoError(t, err)
	for i := range 50 {
		require.True(t, c.pub(tbapi.TopicAttrRequestPrefix+"2", `{}`), "request %d", i)
	}
	require.False(t, c.pub(tbapi.TopicTelemetry, `{"a":1}`), "the 60 s telemetry window kept its state")
}

// Chunk requests are counted only when the package is looked up: the first
// request of a request id (GetOtaPackageRequestMsg); the chunks after it are
// served from the session's cache without the transport service.
func TestChunkRequestsCountedOncePerRequestID(t *testing.T) {
	r := newRig(t, core.Options{})
	p, err := r.core.CreateProfile(core.ProfileSpec{Name: "ota", TransportLimits: core.TransportLimits{Messages: "2:60"}})
	require.NoError(t, err)
	d, c := r.device("ota", core.DeviceSpec{ProfileID: p.ID}) // 1 of 2
	pkg, err := r.core.AddFirmware(core.PackageSpec{Title: "T", Version: "1", ProfileID: p.ID}, make([]byte, 100000), tbapi.SHA256)
	require.NoError(t, err)
	require.NoError(t, r.core.AssignDeviceFirmware(d.ID, pkg.ID))
	for n := range 25 {
		require.True(t, c.pub(tbapi.FwRequestTopic(1, n), "4096"), "chunk %d", n)
	}
	require.False(t, c.pub(tbapi.FwRequestTopic(2, 0), "4096"), "a new request id is counted")
}

// The old RateLimit is "r:1" for messages and telemetry messages, in
// ThingsBoard's whole numbers; limits are checked as ThingsBoard validates
// them.
func TestLimitsSpelledAsThingsBoard(t *testing.T) {
	for r, want := range map[float64]string{50: "50:1", 2.5: "5:2", 0.1: "1:10", 1.0 / 3: "1:3"} {
		l := core.Profile{RateLimit: r}.Limits()
		require.Equal(t, core.TransportLimits{Messages: want, TelemetryMessages: want}, l, "%g", r)
	}
	l := core.Profile{RateLimit: 5, TransportLimits: core.TransportLimits{Messages: "7:1"}}.Limits()
	require.Equal(t, core.TransportLimits{Messages: "7:1", TelemetryMessages: "5:1"}, l)

	r := newRig(t, core.Options{})
	for _, bad := range []string{"20", "20:", ":1", "0:1", "20:0", "-1:1", "20:1,30:1", "20:1, 600:60", "1.5:1", "20:1;600:60"} {
		_, err := r.core.CreateProfile(core.ProfileSpec{Name: "bad", TransportLimits: core.TransportLimits{TelemetryDataPoints: bad}})
		require.ErrorIs(t, err, core.ErrInvalid, "%q", bad)
	}
	p, err := r.core.CreateProfile(core.ProfileSpec{Name: "good", TransportLimits: core.TransportLimits{Messages: "+20:1,600:60"}})
	require.NoError(t, err, "Long.parseLong takes a plus sign")
	p.TransportLimits.Messages = "x"
	_, err = r.core.UpdateProfile(p)
	require.ErrorIs(t, err, core.ErrInvalid)
}

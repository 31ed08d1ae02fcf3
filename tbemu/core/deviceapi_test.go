package core_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
)

func TestTelemetryTimestampsFromTheClock(t *testing.T) {
	r := newRig(t, core.Options{TelemetryHistory: 10})
	d, c := r.device("t1", core.DeviceSpec{})
	r.clock.Advance(1500 * time.Millisecond)
	require.True(t, c.pub(tbapi.TopicTelemetry, `{"temperature":"15.5","n":null,"ok":true}`))
	require.True(t, c.pub(tbapi.TopicTelemetry, `{"ts":1700000000000,"values":{"rssi":-60}}`))
	require.True(t, c.pub(tbapi.TopicTelemetry, `[{"a":1},{"ts":1700000000001,"values":{"b":"x"}}]`))
	require.True(t, c.pub(tbapi.TopicTelemetry, `{"ts":5}`))
	l := r.core.Latest(d.ID)
	require.Equal(t, t0.Add(1500*time.Millisecond).UnixMilli(), l["temperature"].Ts, "server time is the clock's")
	require.Equal(t, tbapi.Number, l["temperature"].Value.Kind, "numeric strings become numbers")
	require.NotContains(t, l, "n", "nulls are skipped")
	require.Equal(t, int64(1700000000000), l["rssi"].Ts)
	require.Equal(t, "x", l["b"].Value.Str)
	require.Equal(t, "5", l["ts"].Value.Str, "ts without values is a key")
	require.Equal(t, core.DeviceCounters{Msgs: 4, Points: 6, LastActivity: t0.Add(1500 * time.Millisecond).UnixMilli(), LastConnect: t0.UnixMilli()}, r.core.Counters(d.ID))
	require.Len(t, r.core.History(d.ID, "temperature"), 1)
	c.none()

	// An unknown topic gets its PUBACK; an unparseable payload closes the session.
	require.True(t, c.pub("some/unknown/topic", "x"))
	require.False(t, c.pub(tbapi.TopicTelemetry, `{"a":`))
	require.NotEmpty(t, c.closed)
	require.Equal(t, int64(1), r.core.Stats().ParseErrors)
	require.False(t, r.core.Connected(d.ID))
}

func TestAttributeRequestAndPush(t *testing.T) {
	r := newRig(t, core.Options{})
	d, c := r.device("a1", core.DeviceSpec{})
	c.pub(tbapi.TopicAttributes, `{"model":"heltec","fw":1}`)
	require.NoError(t, r.core.SetSharedAttributes(d.ID, []tbapi.Member{{Key: "interval", Value: tbapi.Value{Kind: tbapi.Number, Str: "5"}}}))
	c.none() // not subscribed: no push

	c.pub(tbapi.AttrRequestTopic(1), `{}`)
	m := c.take(tbapi.AttrResponseTopic(1))
	require.Equal(t, `{"client":{"fw":1,"model":"heltec"},"shared":{"interval":5}}`, m.payload, "answered without a subscription")
	require.Equal(t, byte(1), m.qos)
	require.Equal(t, byte(0), c.sub(tbapi.TopicAttrResponseFilter, 0))
	c.pub(tbapi.AttrRequestTopic(2), `{"sharedKeys":"interval,missing,","clientKeys":"model"}`)
	m = c.take(tbapi.AttrResponseTopic(2))
	require.Equal(t, `{"client":{"model":"heltec"},"shared":{"interval":5}}`, m.payload)
	require.Equal(t, byte(0), m.qos, "the subscription's QoS")
	c.pub(tbapi.AttrRequestTopic(3), `{"sharedKeys":"nothing"}`)
	require.Equal(t, `{}`, c.take(tbapi.AttrResponseTopic(3)).payload)

	// Pushes reach the device's subscribed sessions, in connect order.
	second := r.connect("a1-again", d.Credentials.Token, "")
	require.Equal(t, byte(1), second.sub(tbapi.TopicAttributes, 1))
	require.Equal(t, byte(1), c.sub(tbapi.TopicAttributes, 2), "QoS at most 1")
	require.NoError(t, r.core.SetSharedAttributes(d.ID, []tbapi.Member{{Key: "a", Value: str("x")}, {Key: "b", Value: tbapi.Value{Kind: tbapi.Bool, Bool: true}}}))
	require.Equal(t, `{"a":"x","b":true}`, c.take(tbapi.TopicAttributes).payload, "changed keys in one message")
	require.Equal(t, `{"a":"x","b":true}`, second.take(tbapi.TopicAttributes).payload)
	require.NoError(t, r.core.DeleteSharedAttributes(d.ID, []string{"a", "zz"}))
	// Every key asked for, existing or not, as ThingsBoard 4.3 pushes them.
	require.Equal(t, `{"deleted":["a","zz"]}`, c.take(tbapi.TopicAttributes).payload)
	r.srv.Unsubscribe(second.sess, tbapi.TopicAttributes)
	require.NoError(t, r.core.SetSharedAttributes(d.ID, []tbapi.Member{{Key: "c", Value: str("y")}}))
	c.take(tbapi.TopicAttributes)
	second.take(tbapi.TopicAttributes) // the deletion
	second.none()

	// A malformed request closes the session, without an answer.
	require.False(t, c.pub(tbapi.AttrRequestTopic(4), ``))
	require.NotEmpty(t, c.closed)
	c.none()
}

func TestClientSideRPC(t *testing.T) {
	r := newRig(t, core.Options{})
	p, err := r.core.CreateProfile(core.ProfileSpec{Name: "limited", RateLimit: 50})
	require.NoError(t, err)
	_, c := r.device("r1", core.DeviceSpec{ProfileID: p.ID})
	c.pub(tbapi.RPCRequestTopic(7), `{"method":"getSessionLimits","params":{}}`)
	// RateLimit 50 stands for "50:1" messages and telemetry messages; a
	// limit not set is null, as Jackson writes SessionLimits.
	require.JSONEq(t, `{"maxPayloadSize":65536,"maxInflightMessages":100,`+
		`"rateLimits":{"messages":"50:1","telemetryMessages":"50:1","telemetryDataPoints":null}}`,
		c.take(tbapi.RPCResponseTopic(7)).payload)

	c.pub(tbapi.RPCRequestTopic(8), `{"method":"getTime","params":{}}`)
	r.clock.Advance(60*time.Second - time.Nanosecond)
	c.none()
	r.clock.Advance(time.Nanosecond)
	m := c.take(tbapi.RPCResponseTopic(8))
	require.Equal(t, `{"error":"timeout"}`, m.payload)
	require.Equal(t, t0.Add(60*time.Second), m.at)

	// A session that ends first gets nothing, and its timer is gone.
	c.pub(tbapi.RPCRequestTopic(9), `{"method":"getTime"}`)
	pending := r.clock.Pending()
	r.srv.Disconnect(c.sess)
	require.Equal(t, pending-2, r.clock.Pending(), "the RPC timeout and the idle check are cancelled")
	r.clock.Advance(time.Hour)
	c.none()
}

func TestServerSideRPC(t *testing.T) {
	r := newRig(t, core.Options{})
	d, c := r.device("srpc", core.DeviceSpec{})
	type result struct {
		resp string
		err  error
		at   time.Time
	}
	var got []result
	done := func(resp []byte, err error) { got = append(got, result{string(resp), err, r.clock.Now()}) }
	_, err := r.core.StartRPC(d.ID, "ping", tbapi.Value{}, true, time.Second, done)
	require.ErrorIs(t, err, core.ErrOffline, "no RPC without a subscription")

	require.Equal(t, byte(1), c.sub(tbapi.TopicRPCRequestFilter, 1))
	params, _ := tbapi.Parse([]byte(`{"x":1}`))
	_, err = r.core.StartRPC(d.ID, "ping", params, true, time.Second, done)
	require.NoError(t, err)
	m := c.take(tbapi.RPCRequestTopic(1))
	require.Equal(t, `{"method":"ping","params":{"x":1}}`, m.payload)
	r.clock.Advance(300 * time.Millisecond)
	require.True(t, c.pub(tbapi.RPCResponseTopic(1), `{"pong":true}`))
	require.Equal(t, []result{{`{"pong":true}`, nil, t0.Add(300 * time.Millisecond)}}, got)
	r.clock.Advance(5 * time.Minute) // the timeout was cancelled
	require.Len(t, got, 1)

	got = nil
	_, err = r.core.StartRPC(d.ID, "silent", tbapi.Value{}, true, 2*time.Second, done)
	require.NoError(t, err)
	c.take(tbapi.RPCRequestTopic(2))
	start := r.clock.Now()
	r.clock.Advance(2*time.Second - time.Nanosecond)
	require.Empty(t, got)
	r.clock.Advance(time.Nanosecond)
	require.Equal(t, []result{{"", core.ErrTimeout, start.Add(2 * time.Second)}}, got)
	c.pub(tbapi.RPCResponseTopic(2), `late`)
	require.Len(t, got, 1, "a late answer is dropped")

	got = nil
	_, err = r.core.StartRPC(d.ID, "oneway", tbapi.Value{}, false, 0, done)
	require.NoError(t, err)
	require.Equal(t, []result{{"", nil, r.clock.Now()}}, got, "one-way: done once written")
	c.take(tbapi.RPCRequestTopic(3))

	cancel, err := r.core.StartRPC(d.ID, "cancelled", tbapi.Value{}, true, 0, done)
	require.NoError(t, err)
	cancel()
	r.clock.Advance(time.Hour)
	require.Len(t, got, 1, "a cancelled call never completes")
}

func TestChunkServing(t *testing.T) {
	r := newRig(t, core.Options{})
	d, c := r.device("cs", core.DeviceSpec{})
	require.False(t, c.pub(tbapi.FwRequestTopic(1, 0), "4096"), "the session closes: no PUBACK")
	require.Equal(t, tbapi.FwErrNotFound, c.take(tbapi.TopicFwError).payload, "no package assigned")
	require.Equal(t, "firmware request: NOT_FOUND", c.closed)

	data := make([]byte, 70000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	pkg, err := r.core.AddFirmware(core.PackageSpec{Title: "T", Version: "cs"}, data, tbapi.MD5)
	require.NoError(t, err)
	require.NoError(t, r.core.AssignDeviceFirmware(d.ID, pkg.ID))
	c = r.connect("cs", d.Credentials.Token, "")
	chunk := func(req, n int, size string, want []byte, why string) {
		t.Helper()
		require.True(t, c.pub(tbapi.FwRequestTopic(req, n), size))
		got := c.take(tbapi.FwResponseTopic(req, n)).payload
		require.True(t, got == string(want), "%s: got %d bytes; want %d", why, len(got), len(want))
	}
	chunk(2, 2, "4096", data[8192:12288], "a chunk")
	chunk(2, 1, "", data[4096:8192], "an empty payload reuses the request id's size")
	chunk(2, 17, "4096", data[69632:], "the short last chunk")
	chunk(2, 18, "4096", nil, "past the end: empty payload")
	chunk(3, 0, "0", data, "size 0: the whole file")
	chunk(4, 0, "", data, "no size yet: 0")
	chunk(5, 1, "65536", data[65536:], "the largest chunk size")
	require.Equal(t, int64(2*4096+(70000-69632)+2*70000+(70000-65536)), r.core.Stats().ChunkBytes)
	c.none()

	require.False(t, c.pub(tbapi.FwRequestTopic(6, 0), "65537"))
	require.Equal(t, tbapi.FwErrPayloadTooLarge, c.take(tbapi.TopicFwError).payload)
	require.Equal(t, "firmware request: PAYLOAD_TOO_LARGE", c.closed)

	c = r.connect("cs", d.Credentials.Token, "")
	require.False(t, c.pub(tbapi.FwRequestTopic(7, 0), "abc"), "non-numeric: closed")
	require.NotEmpty(t, c.closed)
	c.none()
}

// A session with no packet for InactivityTimeout is closed exactly then; any
// packet (a PINGREQ too) moves the deadline.
func TestInactivityTimeout(t *testing.T) {
	r := newRig(t, core.Options{InactivityTimeout: 600 * time.Second})
	d, idle := r.device("idle", core.DeviceSpec{})
	busy := r.connect("busy", d.Credentials.Token, "")
	r.clock.Advance(100 * time.Second)
	r.srv.Ping(busy.sess)
	r.clock.Advance(500*time.Second - time.Nanosecond)
	require.Empty(t, idle.closed)
	r.clock.Advance(time.Nanosecond)
	require.Equal(t, core.ReasonInactivity, idle.closed)
	require.Equal(t, t0.Add(600*time.Second), idle.closedAt)
	require.Empty(t, busy.closed)
	r.clock.Advance(50 * time.Second)
	busy.pub(tbapi.TopicTelemetry, `{"a":1}`)
	r.clock.AdvanceTo(t0.Add(1250*time.Second - time.Nanosecond))
	require.Empty(t, busy.closed)
	r.clock.Advance(time.Nanosecond)
	require.Equal(t, t0.Add(1250*time.Second), busy.closedAt)
	require.Equal(t, 0, r.clock.Pending(), "nothing left scheduled")
}

func TestRateLimitClosesSession(t *testing.T) {
	r := newRig(t, core.Options{})
	p, err := r.core.CreateProfile(core.ProfileSpec{Name: "limited", RateLimit: 5})
	require.NoError(t, err)
	d, c := r.device("rl", core.DeviceSpec{ProfileID: p.ID})
	for i := 0; i < 25; i++ { // 5 a second: the bucket refills as fast as it drains
		require.True(t, c.pub(tbapi.TopicTelemetry, `{"i":1}`), "message %d", i)
		r.clock.Advance(200 * time.Millisecond)
	}
	for i := 0; i < 5; i++ { // the full bucket of 5 at one instant
		require.True(t, c.pub(tbapi.TopicTelemetry, `{"i":1}`))
	}
	require.False(t, c.pub(tbapi.TopicTelemetry, `{"i":1}`))
	require.Equal(t, core.ReasonRateLimit, c.closed)
	require.Equal(t, int64(1), r.core.Stats().RateLimited)
	require.Equal(t, "rate limit", r.core.Attributes(d.ID, core.ServerScope)["tbsimLastCloseCause"].Value.Str)
}

// Changed credentials and a deleted device close the sessions; nothing is
// delivered after.
func TestDeleteAndCredentialChangesCloseSessions(t *testing.T) {
	r := newRig(t, core.Options{})
	d, c := r.device("del", core.DeviceSpec{})
	c.sub(tbapi.TopicAttributes, 1)
	_, err := r.core.SetCredentials(d.ID, core.Credentials{Type: tbapi.CredAccessToken, Token: "NEWTOKEN"})
	require.NoError(t, err)
	require.Equal(t, core.ReasonCredentialsUpdated, c.closed)
	r.core.SetSharedAttributes(d.ID, []tbapi.Member{{Key: "k", Value: str("v")}})
	_, code := r.dial("del", d.Credentials.Token, "")
	require.Equal(t, core.ConnRefusedNotAuthorized, code, "the old token is refused")
	c = r.connect("del", "NEWTOKEN", "")
	require.NoError(t, r.core.DeleteDevice(d.ID))
	require.Equal(t, core.ReasonDeviceDeleted, c.closed)
	_, code = r.dial("del", "NEWTOKEN", "")
	require.Equal(t, core.ConnRefusedNotAuthorized, code)
}

func TestSubscriptionFilters(t *testing.T) {
	r := newRig(t, core.Options{})
	_, c := r.device("f", core.DeviceSpec{})
	for _, f := range []string{"v2/fw/response/+", "#", "v1/devices/me/+", strings.Repeat("x", 3)} {
		require.Equal(t, core.SubackFailure, c.sub(f, 1), f)
	}
	for _, f := range []string{tbapi.TopicAttributes, tbapi.TopicAttrResponseFilter, tbapi.TopicRPCRequestFilter, tbapi.TopicFwResponseFilter, tbapi.TopicFwError} {
		require.Equal(t, byte(1), c.sub(f, 1), f)
	}
}

// A second session of one device with the same client id ends the first
// (ThingsBoard 4.3, seen); another client id of the device, or the same
// client id of another device, does not.
func TestSameDeviceSameClientIDReplaces(t *testing.T) {
	r := newRig(t, core.Options{})
	d1, _ := r.core.CreateDevice(core.DeviceSpec{Name: "d1"})
	d2, _ := r.core.CreateDevice(core.DeviceSpec{Name: "d2"})
	a := r.connect("cid", d1.Credentials.Token, "")
	other := r.connect("cid2", d1.Credentials.Token, "")
	d2s := r.connect("cid", d2.Credentials.Token, "")
	b := r.connect("cid", d1.Credentials.Token, "")
	require.Equal(t, core.ReasonSessionReplaced, a.closed, "the older session of d1 with client id cid")
	for _, c := range []*client{other, d2s, b} {
		require.Empty(t, c.closed)
	}
}

package tbemu

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/emutest"
)

const (
	key    = "tbsim-provision-key"
	secret = "tbsim-provision-secret"
)

func provisionReq(name string) string {
	return string(tbapi.ProvisionRequest{DeviceName: name, Key: key, Secret: secret}.Encode())
}

func TestProvisionAllowCreate(t *testing.T) {
	s := startServer(t, Options{})
	p := connectTCP(t, s, "provision", "provision", "")
	p.pub(t, tbapi.TopicProvisionRequest, provisionReq("24:0A:C4:00:00:04"))
	resp := string(p.expect(t, tbapi.TopicProvisionResponse))
	m := regexp.MustCompile(`^\{"credentialsValue":"([A-Za-z0-9]{20})","credentialsType":"ACCESS_TOKEN","status":"SUCCESS"\}$`).FindStringSubmatch(resp)
	require.NotNil(t, m, "response %s", resp)
	token := m[1]

	// Same name again: FAILURE; wrong secret: NOT_FOUND; exact bytes.
	p.pub(t, tbapi.TopicProvisionRequest, provisionReq("24:0A:C4:00:00:04"))
	require.Equal(t, `{"errorMsg":"Failed to provision device!","status":"FAILURE"}`, string(p.expect(t, tbapi.TopicProvisionResponse)))
	p.pub(t, tbapi.TopicProvisionRequest, string(tbapi.ProvisionRequest{DeviceName: "x", Key: key, Secret: "nope"}.Encode()))
	require.Equal(t, `{"errorMsg":"Provision data was not found!","status":"NOT_FOUND"}`, string(p.expect(t, tbapi.TopicProvisionResponse)))

	d, ok := s.DeviceByName("24:0A:C4:00:00:04")
	require.True(t, ok)
	require.Equal(t, token, d.Credentials.Token)
	require.Equal(t, "default", d.Type)
	require.Equal(t, "provisioned", s.Attributes(d.ID, ServerScope)["provisionState"].Value.Str)

	// The token is the username; password and client id are ignored.
	connectTCP(t, s, "anything", token, "whatever")
	_, code, err := dialClient(t, tcpDial(s.MQTTAddr()), "c", "BADTOKEN", "")
	require.Error(t, err)
	require.Equal(t, byte(5), code, "a bad token gets CONNACK 5")
}

func TestProvisionSessionRules(t *testing.T) {
	s := startServer(t, Options{ProvisionCloseAfter: 300 * time.Millisecond})
	// Provisioning by client id alone works too (Arduino sets both).
	p, _, err := dialClient(t, tcpDial(s.MQTTAddr()), "provision", "", "")
	require.NoError(t, err)
	require.Equal(t, byte(1), p.sub(t, tbapi.TopicProvisionResponse))
	require.Equal(t, byte(0x80), p.sub(t, "v1/devices/me/attributes"), "other filters refused")
	p.pub(t, tbapi.TopicProvisionRequest, provisionReq("dev-1"))
	p.expect(t, tbapi.TopicProvisionResponse)
	p.closed(t) // closed ProvisionCloseAfter after the response

	// A request without a secret closes the session with no answer.
	p2 := connectTCP(t, s, "provision", "provision", "")
	p2.c.Publish(tbapi.TopicProvisionRequest, 1, false, `{"deviceName":"d","provisionDeviceKey":"k"}`)
	p2.closed(t)
	// Any other topic in a provisioning session closes it too.
	p3 := connectTCP(t, s, "provision", "provision", "")
	p3.c.Publish(tbapi.TopicTelemetry, 1, false, `{"a":1}`)
	p3.closed(t)
}

func TestProvisionMQTTBasic(t *testing.T) {
	s := startServer(t, Options{})
	p := connectTCP(t, s, "provision", "provision", "")
	req := tbapi.ProvisionRequest{DeviceName: "basic-1", Key: key, Secret: secret, CredentialsType: tbapi.CredMQTTBasic,
		Basic: tbapi.BasicCredentials{ClientID: "cid", UserName: "user", Password: "pw"}}
	p.pub(t, tbapi.TopicProvisionRequest, string(req.Encode()))
	require.Equal(t, `{"credentialsValue":{"clientId":"cid","userName":"user","password":"pw"},"credentialsType":"MQTT_BASIC","status":"SUCCESS"}`,
		string(p.expect(t, tbapi.TopicProvisionResponse)))
	connectTCP(t, s, "cid", "user", "pw")
	_, code, err := dialClient(t, tcpDial(s.MQTTAddr()), "cid", "user", "wrong")
	require.Error(t, err)
	require.Equal(t, byte(5), code)
}

func TestProvisionStrategies(t *testing.T) {
	s := startServer(t, Options{})
	pre, err := s.CreateProfile(ProfileSpec{Name: "pre", ProvisionType: CheckPreProvisionedDevices, ProvisionKey: "pk", ProvisionSecret: "ps"})
	require.NoError(t, err)
	_, err = s.CreateProfile(ProfileSpec{Name: "off", ProvisionType: ProvisionDisabled, ProvisionKey: "dk", ProvisionSecret: "ds"})
	require.NoError(t, err)
	d, err := s.CreateDevice(DeviceSpec{Name: "known", ProfileID: pre.ID})
	require.NoError(t, err)
	p := connectTCP(t, s, "provision", "provision", "")
	ask := func(name, k, sec string) string {
		p.pub(t, tbapi.TopicProvisionRequest, string(tbapi.ProvisionRequest{DeviceName: name, Key: k, Secret: sec}.Encode()))
		return string(p.expect(t, tbapi.TopicProvisionResponse))
	}
	require.Equal(t, `{"credentialsValue":"`+d.Credentials.Token+`","credentialsType":"ACCESS_TOKEN","status":"SUCCESS"}`, ask("known", "pk", "ps"),
		"pre-provisioned devices get their existing credentials")
	require.Contains(t, ask("known", "pk", "ps"), `"status":"FAILURE"`, "a repeat fails (ThingsBoard 4.2.1.1+)")
	require.Contains(t, ask("unknown", "pk", "ps"), `"status":"FAILURE"`)
	require.Contains(t, ask("x", "dk", "ds"), `"status":"NOT_FOUND"`, "DISABLED")
	require.Contains(t, ask("   ", key, secret), `"status":"FAILURE"`, "blank name")
}

func TestTelemetryShapes(t *testing.T) {
	s := startServer(t, Options{TelemetryHistory: 10})
	d, err := s.CreateDevice(DeviceSpec{Name: "t1"})
	require.NoError(t, err)
	c := connectTCP(t, s, "t1", d.Credentials.Token, "")
	c.pub(t, tbapi.TopicTelemetry, `{"temperature":"15.5","n":null,"ok":true}`)
	c.pub(t, tbapi.TopicTelemetry, `{"ts":1700000000000,"values":{"rssi":-60}}`)
	c.pub(t, tbapi.TopicTelemetry, `[{"a":1},{"ts":1700000000001,"values":{"b":"x"}}]`)
	c.pub(t, tbapi.TopicTelemetry, `{"ts":5}`)
	l := s.Latest(d.ID)
	require.Equal(t, tbapi.Number, l["temperature"].Value.Kind, "numeric strings become numbers")
	require.NotContains(t, l, "n", "nulls are skipped")
	require.Equal(t, int64(1700000000000), l["rssi"].Ts)
	require.Equal(t, "x", l["b"].Value.Str)
	require.Equal(t, "5", l["ts"].Value.Str, "ts without values is a key")
	cnt := s.Counters(d.ID)
	require.Equal(t, int64(4), cnt.Msgs)
	require.Equal(t, int64(6), cnt.Points)
	require.Len(t, s.History(d.ID, "temperature"), 1)
}

func TestAttributes(t *testing.T) {
	s := startServer(t, Options{})
	d, _ := s.CreateDevice(DeviceSpec{Name: "a1"})
	c := connectTCP(t, s, "a1", d.Credentials.Token, "")
	c.pub(t, tbapi.TopicAttributes, `{"model":"heltec","fw":1}`)
	require.NoError(t, s.SetSharedAttributes(d.ID, []tbapi.Member{{Key: "interval", Value: tbapi.Value{Kind: tbapi.Number, Str: "5"}}}))

	// Not subscribed: no push. A push would have come before this response.
	c.pub(t, tbapi.AttrRequestTopic(1), `{}`)
	m := c.next(t)
	require.Equal(t, tbapi.AttrResponseTopic(1), m.topic, "no push without a subscription")
	require.Equal(t, `{"client":{"fw":1,"model":"heltec"},"shared":{"interval":5}}`, string(m.payload),
		"answered without a subscription")
	c.pub(t, tbapi.AttrRequestTopic(2), `{"sharedKeys":"interval,missing,","clientKeys":"model"}`)
	require.Equal(t, `{"client":{"model":"heltec"},"shared":{"interval":5}}`, string(c.expect(t, tbapi.AttrResponseTopic(2))))
	c.pub(t, tbapi.AttrRequestTopic(3), `{"sharedKeys":"nothing"}`)
	require.Equal(t, `{}`, string(c.expect(t, tbapi.AttrResponseTopic(3))))

	require.Equal(t, byte(1), c.sub(t, tbapi.TopicAttributes))
	require.NoError(t, s.SetSharedAttributes(d.ID, []tbapi.Member{
		{Key: "a", Value: tbapi.Value{Kind: tbapi.String, Str: "x"}}, {Key: "b", Value: tbapi.Value{Kind: tbapi.Bool, Bool: true}}}))
	require.Equal(t, `{"a":"x","b":true}`, string(c.expect(t, tbapi.TopicAttributes)), "changed keys in one message")
	require.NoError(t, s.DeleteSharedAttributes(d.ID, []string{"a", "zz"}))
	// Every key asked for, existing or not, as ThingsBoard 4.3 pushes them.
	require.Equal(t, `{"deleted":["a","zz"]}`, string(c.expect(t, tbapi.TopicAttributes)))
}

func TestErrorsAnsweredAsThingsBoard(t *testing.T) {
	s := startServer(t, Options{})
	d, _ := s.CreateDevice(DeviceSpec{Name: "e1"})
	c := connectTCP(t, s, "e1", d.Credentials.Token, "")
	c.pub(t, "some/unknown/topic", `whatever`)
	c.pub(t, tbapi.TopicTelemetry, `{}`) // acknowledged: the session is still open
	require.Equal(t, byte(0x80), c.sub(t, "v2/fw/response/+"), "refused filter")
	require.Equal(t, byte(0x80), c.sub(t, "#"))

	for name, pub := range map[string][2]string{
		"malformed telemetry":    {tbapi.TopicTelemetry, `{"a":`},
		"array attributes":       {tbapi.TopicAttributes, `[1]`},
		"empty attr request":     {tbapi.AttrRequestTopic(4), ``},
		"non-numeric chunk size": {"v2/fw/request/1/chunk/0", `abc`},
		// Integer.parseInt of the topic's tail (processGetAttributeRequestMsg,
		// processToDeviceRpcResponseMsg: AdaptorException;
		// processToServerRpcRequestMsg: uncaught).
		"attr request id not an integer": {tbapi.AttrRequestTopic(1) + "x", `{}`},
		"rpc response id not an integer": {tbapi.TopicRPCResponsePrefix + "x", `{}`},
		"rpc request id not an integer":  {tbapi.TopicRPCRequestPrefix + "1.5", `{"method":"m"}`},
	} {
		t.Run(name, func(t *testing.T) {
			c := connectTCP(t, s, "e1", d.Credentials.Token, "")
			c.c.Publish(pub[0], 1, false, pub[1])
			c.closed(t)
		})
	}
	t.Run("oversize packet", func(t *testing.T) {
		c := connectTCP(t, s, "e1", d.Credentials.Token, "")
		c.c.Publish(tbapi.TopicTelemetry, 1, false, `{"a":"`+strings.Repeat("x", 70000)+`"}`)
		c.closed(t)
	})
	t.Run("qos 2 gets a PUBACK", func(t *testing.T) {
		c := connectTCP(t, s, "e1", d.Credentials.Token, "")
		tok := c.c.Publish(tbapi.TopicTelemetry, 2, false, `{"q":2}`)
		// paho waits for PUBREC/PUBCOMP; ThingsBoard (and the emulator) answer PUBACK,
		// so the token does not complete, but the message is stored and the session stays.
		tok.WaitTimeout(300 * time.Millisecond)
		require.Eventually(t, func() bool { _, ok := s.Latest(d.ID)["q"]; return ok }, 2*time.Second, 10*time.Millisecond)
		c.pub(t, tbapi.TopicTelemetry, `{}`) // the session stays
	})
}

// Every device uses the same literal topics; a reply must reach only the
// connection that asked, even when all of them subscribed.
func TestRepliesGoToTheAskerOnly(t *testing.T) {
	s := startServer(t, Options{})
	pkg, err := s.AddFirmware(PackageSpec{Title: "T", Version: "2"}, []byte("\xE9firmware"), tbapi.SHA256)
	require.NoError(t, err)
	var cs []*client
	for _, name := range []string{"iso-a", "iso-b"} {
		d, _ := s.CreateDevice(DeviceSpec{Name: name})
		c := connectTCP(t, s, name, d.Credentials.Token, "")
		for _, f := range []string{tbapi.TopicAttrResponseFilter, tbapi.TopicRPCResponseFilter, tbapi.TopicFwResponseFilter, tbapi.TopicAttributes} {
			c.sub(t, f)
		}
		require.NoError(t, s.AssignDeviceFirmware(d.ID, pkg.ID))
		cs = append(cs, c)
	}
	a, b := cs[0], cs[1]
	for _, c := range cs { // the OTA queue's pushes (the deleted fw_tag and fw_url, then fw_*), and nothing else
		require.Equal(t, `{"deleted":["fw_tag","fw_url"]}`, string(c.expect(t, tbapi.TopicAttributes)))
		require.Contains(t, string(c.expect(t, tbapi.TopicAttributes)), `"fw_version":"2"`)
	}
	a.pub(t, tbapi.AttrRequestTopic(1), `{}`)
	require.Equal(t, tbapi.AttrResponseTopic(1), a.next(t).topic)
	a.pub(t, tbapi.RPCRequestTopic(1), `{"method":"getSessionLimits","params":{}}`)
	require.Equal(t, tbapi.RPCResponseTopic(1), a.next(t).topic)
	a.pub(t, tbapi.FwRequestTopic(1, 0), `4`)
	m := a.next(t)
	require.Equal(t, tbapi.FwResponseTopic(1, 0), m.topic)
	require.Equal(t, "\xE9fir", string(m.payload))
	// A leak to b would have been written before b's own answer.
	b.pub(t, tbapi.AttrRequestTopic(7), `{"sharedKeys":"none"}`)
	require.Equal(t, tbapi.AttrResponseTopic(7), b.next(t).topic, "b got nothing of a's")
}

func TestClientSideRPC(t *testing.T) {
	s := startServer(t, Options{ClientRPCTimeout: 200 * time.Millisecond})
	d, _ := s.CreateDevice(DeviceSpec{Name: "r1"})
	c := connectTCP(t, s, "r1", d.Credentials.Token, "")
	c.pub(t, tbapi.RPCRequestTopic(7), `{"method":"getSessionLimits","params":{}}`)
	var limits map[string]any
	require.NoError(t, json.Unmarshal(c.expect(t, tbapi.RPCResponseTopic(7)), &limits))
	require.Equal(t, float64(65536), limits["maxPayloadSize"])
	c.pub(t, tbapi.RPCRequestTopic(8), `{"method":"getTime","params":{}}`)
	require.Equal(t, `{"error":"timeout"}`, string(c.expect(t, tbapi.RPCResponseTopic(8))))
}

func TestServerSideRPC(t *testing.T) {
	s := startServer(t, Options{})
	d, _ := s.CreateDevice(DeviceSpec{Name: "srpc"})
	c := connectTCP(t, s, "srpc", d.Credentials.Token, "")
	_, err := s.SendRPC(t.Context(), d.ID, "ping", tbapi.Value{}, true, time.Second)
	require.ErrorIs(t, err, ErrOffline, "no RPC without a subscription")
	c.sub(t, tbapi.TopicRPCRequestFilter)
	go func() {
		m := <-c.msgs
		id, _ := tbapi.ParseRPCRequestTopic(m.topic)
		if string(m.payload) == `{"method":"ping","params":{"x":1}}` {
			c.c.Publish(tbapi.RPCResponseTopic(id), 1, false, `{"pong":true}`)
		}
	}()
	params, _ := tbapi.Parse([]byte(`{"x":1}`))
	resp, err := s.SendRPC(t.Context(), d.ID, "ping", params, true, 2*time.Second)
	require.NoError(t, err)
	require.Equal(t, `{"pong":true}`, string(resp))
	_, err = s.SendRPC(t.Context(), d.ID, "silent", tbapi.Value{}, true, 100*time.Millisecond)
	require.ErrorIs(t, err, ErrTimeout)
	_, err = s.SendRPC(t.Context(), d.ID, "oneway", tbapi.Value{}, false, 0)
	require.NoError(t, err)
}

func TestDeleteAndCredentialChangesCloseSessions(t *testing.T) {
	s := startServer(t, Options{})
	d, _ := s.CreateDevice(DeviceSpec{Name: "del"})
	c := connectTCP(t, s, "del", d.Credentials.Token, "")
	_, err := s.SetCredentials(d.ID, Credentials{Type: tbapi.CredAccessToken, Token: "NEWTOKEN"})
	require.NoError(t, err)
	c.closed(t)
	_, code, err := dialClient(t, tcpDial(s.MQTTAddr()), "del", d.Credentials.Token, "")
	require.Error(t, err)
	require.Equal(t, byte(5), code, "the old token is refused")
	c = connectTCP(t, s, "del", "NEWTOKEN", "")
	require.NoError(t, s.DeleteDevice(d.ID))
	c.closed(t)
	_, code, _ = dialClient(t, tcpDial(s.MQTTAddr()), "del", "NEWTOKEN", "")
	require.Equal(t, byte(5), code)
}

func TestRateLimitClosesSession(t *testing.T) {
	s := startServer(t, Options{})
	p, err := s.CreateProfile(ProfileSpec{Name: "limited", RateLimit: 5})
	require.NoError(t, err)
	d, _ := s.CreateDevice(DeviceSpec{Name: "rl", ProfileID: p.ID})
	c := connectTCP(t, s, "rl", d.Credentials.Token, "")
	for i := 0; i < 10; i++ {
		c.c.Publish(tbapi.TopicTelemetry, 0, false, `{"i":1}`)
	}
	c.closed(t)
	require.Equal(t, int64(1), s.Stats().RateLimited)
	require.Equal(t, "rate limit", s.Attributes(d.ID, ServerScope)["tbsimLastCloseCause"].Value.Str)
}

// A session with no packet for InactivityTimeout is closed; a device that
// sends anything keeps its session. The core runs on a manual clock, the
// sessions on real sockets through mochi.
func TestInactivityTimeout(t *testing.T) {
	clock := emutest.NewClock(time.Now())
	s := startServer(t, Options{Clock: clock, InactivityTimeout: 600 * time.Second})
	d, _ := s.CreateDevice(DeviceSpec{Name: "idle"})
	idle := connectTCP(t, s, "idle", d.Credentials.Token, "")
	busy := connectTCP(t, s, "busy", d.Credentials.Token, "")
	clock.Advance(300 * time.Second)
	busy.pub(t, tbapi.TopicTelemetry, `{"a":1}`) // acknowledged: seen at +300 s
	clock.Advance(300 * time.Second)
	idle.closed(t)
	busy.pub(t, tbapi.TopicTelemetry, `{"a":2}`) // still open; seen at +600 s
	clock.Advance(600 * time.Second)
	busy.closed(t)
}

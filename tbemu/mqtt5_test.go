package tbemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	paho5 "github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/emutest"
)

// MQTT 5 clients against the emulator on loopback TCP: paho.golang's client,
// and its packet codec on a bare socket where a test must see every packet
// the server writes, in order, up to the close. What ThingsBoard sends is
// read from MqttTransportHandler (v4.3.1.3); see the comments in
// tbemu/core/reasons.go.

// wire is a raw MQTT 5 connection: packets written and read with
// paho.golang's codec, nothing done on the client's side.
type wire struct {
	t  testing.TB
	c  net.Conn
	id uint16
}

type connectSpec struct {
	clientID         string
	user, pass       string
	hasUser, hasPass bool
	keepSession      bool // clean start off
}

// dialWire sends CONNECT and returns the connection and the CONNACK.
func dialWire(t testing.TB, s *Server, cs connectSpec) (*wire, *packets.Connack) {
	t.Helper()
	c, err := net.Dial("tcp", s.MQTTAddr())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	w := &wire{t: t, c: c}
	cp := &packets.Connect{ProtocolName: "MQTT", ProtocolVersion: 5, KeepAlive: 60, CleanStart: !cs.keepSession,
		ClientID: cs.clientID, Username: cs.user, UsernameFlag: cs.hasUser, Password: []byte(cs.pass), PasswordFlag: cs.hasPass,
		Properties: &packets.Properties{}}
	_, err = cp.WriteTo(c)
	require.NoError(t, err)
	p, err := packets.ReadPacket(c)
	require.NoError(t, err)
	ack, ok := p.Content.(*packets.Connack)
	require.True(t, ok, "got %v, want CONNACK", p)
	return w, ack
}

// device connects an MQTT 5 wire with an access token.
func (w *wire) device(s *Server, token string) *wire {
	w.t.Helper()
	w2, ack := dialWire(w.t, s, connectSpec{clientID: "dev", user: token, hasUser: true})
	require.Zero(w.t, ack.ReasonCode, "CONNACK")
	return w2
}

func (w *wire) publish(topic, payload string, qos byte) {
	w.t.Helper()
	p := &packets.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Properties: &packets.Properties{}}
	if qos > 0 {
		w.id++
		p.PacketID = w.id
	}
	_, err := p.WriteTo(w.c)
	require.NoError(w.t, err)
}

func (w *wire) subscribe(filters ...string) {
	w.t.Helper()
	w.id++
	sp := &packets.Subscribe{PacketID: w.id, Properties: &packets.Properties{}}
	for _, f := range filters {
		sp.Subscriptions = append(sp.Subscriptions, packets.SubOptions{Topic: f, QoS: 1})
	}
	_, err := sp.WriteTo(w.c)
	require.NoError(w.t, err)
}

// next reads one packet and describes it.
func (w *wire) next() string {
	w.t.Helper()
	p, err := packets.ReadPacket(w.c)
	require.NoError(w.t, err)
	return describe(p)
}

// rest reads every packet up to the server's close.
func (w *wire) rest() []string {
	w.t.Helper()
	var out []string
	for {
		p, err := packets.ReadPacket(w.c)
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return out
		}
		require.NoError(w.t, err, "after %v", out)
		out = append(out, describe(p))
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func describe(p *packets.ControlPacket) string {
	switch c := p.Content.(type) {
	case *packets.Connack:
		return fmt.Sprintf("CONNACK %#02x present=%t", c.ReasonCode, c.SessionPresent)
	case *packets.Disconnect:
		return fmt.Sprintf("DISCONNECT %#02x", c.ReasonCode)
	case *packets.Puback:
		return fmt.Sprintf("PUBACK %#02x", c.ReasonCode)
	case *packets.Suback:
		codes := make([]string, len(c.Reasons))
		for i, r := range c.Reasons {
			codes[i] = fmt.Sprintf("%#02x", r)
		}
		return "SUBACK " + strings.Join(codes, " ")
	case *packets.Publish:
		return fmt.Sprintf("PUBLISH %s %q", c.Topic, c.Payload)
	}
	return p.String()
}

// A refused CONNECT gets the CONNACK code ThingsBoard chooses from what the
// packet carried (onValidateDeviceResponse), then, under MQTT 5, a
// DISCONNECT with the same code (closeCtx(ctx, returnCode)); MQTT 3.1.1 gets
// the ReturnCodeResolver mapping and the close. The refusal's
// session-present flag is !cleanSession, as ThingsBoard sets it.
// (Before: 0x86 / 5 for all, no DISCONNECT, present=false.)
func TestMQTT5ConnackCodes(t *testing.T) {
	s := startServer(t, Options{})
	for _, tc := range []struct {
		name string
		cs   connectSpec
		want []string
		v311 byte
	}{
		{"bad token", connectSpec{clientID: "c", user: "WRONG", hasUser: true},
			[]string{"CONNACK 0x86 present=false", "DISCONNECT 0x86"}, 5},
		{"user, password and client id", connectSpec{clientID: "c", user: "u", hasUser: true, pass: "p", hasPass: true},
			[]string{"CONNACK 0x86 present=false", "DISCONNECT 0x86"}, 5},
		{"password only", connectSpec{clientID: "c", pass: "p", hasPass: true},
			[]string{"CONNACK 0x86 present=false", "DISCONNECT 0x86"}, 0},
		{"client id only", connectSpec{clientID: "just-an-id"},
			[]string{"CONNACK 0x85 present=false", "DISCONNECT 0x85"}, 2},
		{"client id only, session kept", connectSpec{clientID: "just-an-id", keepSession: true},
			[]string{"CONNACK 0x85 present=true", "DISCONNECT 0x85"}, 0},
		{"blank client id only", connectSpec{clientID: "  "},
			[]string{"CONNACK 0x87 present=false", "DISCONNECT 0x87"}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, ack := dialWire(t, s, tc.cs)
			got := append([]string{describe(&packets.ControlPacket{Content: ack})}, w.rest()...)
			require.Equal(t, tc.want, got)
			if tc.v311 == 0 { // no 3.1.1 counterpart (a password needs a user name there)
				return
			}
			_, code, err := dialClient(t, tcpDial(s.MQTTAddr()), tc.cs.clientID, tc.cs.user, tc.cs.pass)
			require.Error(t, err)
			require.Equal(t, tc.v311, code, "MQTT 3.1.1 CONNACK")
		})
	}
	require.Equal(t, int64(6+4), s.Stats().Refused, "every refusal counted: 6 MQTT 5, 4 MQTT 3.1.1")
}

// Refused filters get 0x8F under MQTT 5 (processSubscribe:
// TOPIC_FILTER_INVALID for every filter it does not serve, in device and
// provisioning sessions alike), through paho.golang's client. (Before:
// 0x87, mochi's "not authorized".)
func TestMQTT5SubackTopicFilterInvalid(t *testing.T) {
	s := startServer(t, Options{})
	d, err := s.CreateDevice(DeviceSpec{Name: "sub5"})
	require.NoError(t, err)
	ctx := context.Background()
	dev := connectPaho5(t, s, "sub5", d.Credentials.Token)
	sa, err := dev.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{
		{Topic: tbapi.TopicAttributes, QoS: 1},
		{Topic: "v2/fw/response/+", QoS: 1}, // what the SDKs ask for, refused
		{Topic: tbapi.TopicRPCRequestFilter, QoS: 0},
		{Topic: "$share/g/v1/devices/me/attributes", QoS: 1},
	}})
	require.Error(t, err, "paho reports the refused filters")
	require.Equal(t, []byte{1, 0x8F, 0, 0x8F}, sa.Reasons)

	prov := connectPaho5(t, s, "provision", "provision")
	sa, err = prov.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{
		{Topic: tbapi.TopicProvisionResponse, QoS: 1}, {Topic: tbapi.TopicAttributes, QoS: 1},
	}})
	require.Error(t, err)
	require.Equal(t, []byte{1, 0x8F}, sa.Reasons)

	// MQTT 3.1.1 has one failure code, 0x80, which ThingsBoard sends too.
	c := connectTCP(t, s, "sub311", d.Credentials.Token, "")
	require.Equal(t, byte(0x80), c.sub(t, "v2/fw/response/+"))
}

// connectPaho5 connects paho.golang's MQTT 5 client over loopback TCP.
func connectPaho5(t testing.TB, s *Server, clientID, user string, onPublish ...func(paho5.PublishReceived) (bool, error)) *paho5.Client {
	t.Helper()
	conn, err := net.Dial("tcp", s.MQTTAddr())
	require.NoError(t, err)
	c := paho5.NewClient(paho5.ClientConfig{Conn: conn, OnPublishReceived: onPublish})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := c.Connect(ctx, &paho5.Connect{ClientID: clientID, Username: user, UsernameFlag: true, KeepAlive: 60, CleanStart: true})
	require.NoError(t, err)
	require.Zero(t, ack.ReasonCode)
	t.Cleanup(func() { c.Disconnect(&paho5.Disconnect{}) })
	return c
}

// Every close the server starts reaches an MQTT 5 client as ThingsBoard's
// closeCtx writes it: a DISCONNECT with its reason code, then the close; an
// unparsable payload of a QoS 1 publish gets PUBACK 0x99 and the session
// stays, an unknown topic PUBACK 0x90. Each case reads the wire up to the
// close. (Before: every close was a bare TCP close, and the 0x99 cases
// closed the session.)
func TestMQTT5ServerCloses(t *testing.T) {
	s := startServer(t, Options{})
	limited, err := s.CreateProfile(ProfileSpec{Name: "limited5", RateLimit: 3})
	require.NoError(t, err)
	pkg, err := s.AddFirmware(PackageSpec{Title: "T5", Version: "1"}, []byte("\xE9 firmware bytes"), tbapi.SHA256)
	require.NoError(t, err)
	n := 0
	newDevice := func(t *testing.T, withFirmware bool, profileID string) (Device, *wire) {
		n++
		d, err := s.CreateDevice(DeviceSpec{Name: fmt.Sprintf("close5-%d", n), ProfileID: profileID})
		require.NoError(t, err)
		if withFirmware {
			require.NoError(t, s.AssignDeviceFirmware(d.ID, pkg.ID))
		}
		w, ack := dialWire(t, s, connectSpec{clientID: d.Name, user: d.Credentials.Token, hasUser: true})
		require.Zero(t, ack.ReasonCode)
		return d, w
	}
	for _, tc := range []struct {
		name     string
		firmware bool
		profile  string
		act      func(w *wire, d Device)
		want     []string
	}{
		// getOtaPackageCallback's Integer.parseInt throws; exceptionCaught
		// closes with SERVER_SHUTTING_DOWN. No PUBACK, no v2/fw/error.
		{"chunk size not a number", true, "", func(w *wire, _ Device) {
			w.publish("v2/fw/request/1/chunk/0", "4k", 1)
		}, []string{"DISCONNECT 0x8b"}},
		{"chunk size with a space", true, "", func(w *wire, _ Device) {
			w.publish("v2/fw/request/1/chunk/0", " 4096", 0)
		}, []string{"DISCONNECT 0x8b"}},
		{"chunk size beyond 32 bits", true, "", func(w *wire, _ Device) {
			w.publish("v2/fw/request/1/chunk/0", "2147483648", 1)
		}, []string{"DISCONNECT 0x8b"}},
		// processToServerRpcRequestMsg catches JSON errors only.
		{"client RPC id not an integer", false, "", func(w *wire, _ Device) {
			w.publish(tbapi.TopicRPCRequestPrefix+"one", `{"method":"getSessionLimits"}`, 1)
		}, []string{"DISCONNECT 0x8b"}},
		// sendOtaPackageError: the error, then IMPLEMENTATION_SPECIFIC_ERROR.
		{"no firmware assigned", false, "", func(w *wire, _ Device) {
			w.publish("v2/fw/request/1/chunk/0", "4096", 1)
		}, []string{`PUBLISH v2/fw/error "NOT_FOUND"`, "DISCONNECT 0x83"}},
		{"chunk too large", true, "", func(w *wire, _ Device) {
			w.publish("v2/fw/request/1/chunk/0", "65537", 1)
		}, []string{`PUBLISH v2/fw/error "PAYLOAD_TOO_LARGE"`, "DISCONNECT 0x83"}},
		// A QoS 0 publish has no PUBACK to carry 0x99: DISCONNECT 0x99.
		{"telemetry not JSON, QoS 0", false, "", func(w *wire, _ Device) {
			w.publish(tbapi.TopicTelemetry, "{", 0)
		}, []string{"DISCONNECT 0x99"}},
		// getPubAckCallback.onError on TbRateLimitsException.
		{"rate limit", false, limited.ID, func(w *wire, _ Device) {
			for range 5 {
				w.publish(tbapi.TopicTelemetry, `{"a":1}`, 0)
			}
		}, []string{"DISCONNECT 0x83"}},
		// onDeviceDeleted; CREDENTIALS_UPDATED → ADMINISTRATIVE_ACTION.
		{"device deleted", false, "", func(w *wire, d Device) {
			require.NoError(t, s.DeleteDevice(d.ID))
		}, []string{"DISCONNECT 0x98"}},
		{"credentials updated", false, "", func(w *wire, d Device) {
			_, err := s.SetCredentials(d.ID, Credentials{Type: tbapi.CredAccessToken, Token: "NEW5" + d.Name})
			require.NoError(t, err)
		}, []string{"DISCONNECT 0x98"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, w := newDevice(t, tc.firmware, tc.profile)
			tc.act(w, d)
			require.Equal(t, tc.want, w.rest())
		})
	}

	t.Run("payload refused, session kept", func(t *testing.T) {
		_, w := newDevice(t, false, "")
		w.publish(tbapi.TopicTelemetry, "{", 1)
		require.Equal(t, "PUBACK 0x99", w.next())
		w.publish("v1/devices/me/nowhere", "{}", 1) // processDevicePublish's last else
		require.Equal(t, "PUBACK 0x90", w.next())
		w.publish(tbapi.TopicAttrRequestPrefix+"7", "[1]", 1)
		require.Equal(t, "PUBACK 0x99", w.next())
		w.publish(tbapi.TopicAttrRequestPrefix+"7x", "{}", 1) // the id: Integer.parseInt fails
		require.Equal(t, "PUBACK 0x99", w.next())
		w.publish(tbapi.TopicRPCResponsePrefix+"x", "{}", 1)
		require.Equal(t, "PUBACK 0x99", w.next())
		w.publish(tbapi.TopicTelemetry, `{"a":1}`, 1)
		require.Equal(t, "PUBACK 0x00", w.next(), "the session is still served")
	})

	t.Run("provisioning session", func(t *testing.T) {
		w, ack := dialWire(t, s, connectSpec{clientID: "p5", user: tbapi.ProvisionUser, hasUser: true})
		require.Zero(t, ack.ReasonCode)
		w.publish(tbapi.TopicProvisionRequest, "not json", 1) // AdaptorException: PUBACK 0x99
		require.Equal(t, "PUBACK 0x99", w.next())
		// RuntimeException: acknowledged with 0x83, then DISCONNECT 0x83
		// (processProvisionSessionMsg; ThingsBoard 4.3 acknowledges first, seen).
		w.publish(tbapi.TopicProvisionRequest, `{"deviceName":"x"}`, 1)
		require.Equal(t, []string{"PUBACK 0x83", "DISCONNECT 0x83"}, w.rest())

		w, _ = dialWire(t, s, connectSpec{clientID: "p5b", user: tbapi.ProvisionUser, hasUser: true})
		w.publish(tbapi.TopicTelemetry, "{}", 1)
		require.Equal(t, []string{"PUBACK 0x90", "DISCONNECT 0x90"}, w.rest(), "acknowledged, then closed (seen on 4.3)")
	})

	// MQTT 3.1.1 has no server DISCONNECT: the same chunk request closes the
	// connection with nothing written.
	t.Run("MQTT 3.1.1", func(t *testing.T) {
		d, err := s.CreateDevice(DeviceSpec{Name: "close311"})
		require.NoError(t, err)
		require.NoError(t, s.AssignDeviceFirmware(d.ID, pkg.ID))
		c, err := net.Dial("tcp", s.MQTTAddr())
		require.NoError(t, err)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write(rawConnect(4, 0x82, d.Credentials.Token))
		require.NoError(t, err)
		ack := make([]byte, 4)
		_, err = io.ReadFull(c, ack)
		require.NoError(t, err)
		require.Equal(t, []byte{0x20, 2, 0, 0}, ack)
		topic, payload := "v2/fw/request/1/chunk/0", "4k"
		pub := append([]byte{0x30, byte(2 + len(topic) + len(payload)), 0, byte(len(topic))}, topic+payload...)
		_, err = c.Write(pub)
		require.NoError(t, err)
		rest, err := io.ReadAll(c)
		if !isReset(err) {
			require.NoError(t, err)
		}
		require.Empty(t, rest)
	})
}

// The inactivity timeout closes an MQTT 5 session with MAXIMUM_CONNECT_TIME
// (onRemoteSessionCloseCommand, SESSION_TIMEOUT); a provisioning session's
// end is DeviceProvisionCallback's bare ctx.close, with no DISCONNECT.
func TestMQTT5TimedCloses(t *testing.T) {
	clock := emutest.NewClock(time.Now())
	s := startServer(t, Options{Clock: clock, InactivityTimeout: 600 * time.Second, ProvisionCloseAfter: 60 * time.Second})
	d, err := s.CreateDevice(DeviceSpec{Name: "idle5"})
	require.NoError(t, err)
	w, ack := dialWire(t, s, connectSpec{clientID: d.Name, user: d.Credentials.Token, hasUser: true})
	require.Zero(t, ack.ReasonCode)
	p, ack := dialWire(t, s, connectSpec{clientID: "p", user: tbapi.ProvisionUser, hasUser: true})
	require.Zero(t, ack.ReasonCode)
	p.publish(tbapi.TopicProvisionRequest, provisionReq("idle5-new"), 1)
	// ThingsBoard acknowledges the request before it publishes the answer.
	require.Equal(t, "PUBACK 0x00", p.next())
	require.Contains(t, p.next(), "PUBLISH /provision/response")
	clock.Advance(60 * time.Second)
	require.Empty(t, p.rest())
	clock.Advance(540 * time.Second)
	require.Equal(t, []string{"DISCONNECT 0x83"}, w.rest()) // ThingsBoard 4.3.1.3: 0x83, not 0xa0
}

// getSessionLimits through paho.golang's MQTT 5 client: the profile's
// transport limits, null where none is set, as
// MqttTransportHandler.onGetSessionLimitsRpc answers; a device over its
// data-point limit is closed with DISCONNECT 0x83. (Before: "rateLimits":{}.)
func TestMQTT5SessionLimits(t *testing.T) {
	s := startServer(t, Options{})
	p, err := s.CreateProfile(ProfileSpec{Name: "limits5", TransportLimits: TransportLimits{
		Messages: "20:1,600:60", TelemetryDataPoints: "4:60"}})
	require.NoError(t, err)
	d, err := s.CreateDevice(DeviceSpec{Name: "limits5", ProfileID: p.ID})
	require.NoError(t, err)
	free, err := s.CreateDevice(DeviceSpec{Name: "free5"})
	require.NoError(t, err)
	ask := func(d Device) string {
		t.Helper()
		got := make(chan string, 1)
		c := connectPaho5(t, s, d.Name, d.Credentials.Token, func(pr paho5.PublishReceived) (bool, error) {
			if pr.Packet.Topic == tbapi.RPCResponseTopic(1) {
				got <- string(pr.Packet.Payload)
			}
			return true, nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.Publish(ctx, &paho5.Publish{Topic: tbapi.RPCRequestTopic(1), QoS: 1, Payload: []byte(`{"method":"getSessionLimits","params":{}}`)})
		require.NoError(t, err)
		select {
		case answer := <-got:
			return answer
		case <-ctx.Done():
			t.Fatal("no getSessionLimits answer")
			return ""
		}
	}
	require.Equal(t, `{"maxPayloadSize":65536,"maxInflightMessages":100,`+
		`"rateLimits":{"messages":"20:1,600:60","telemetryMessages":null,"telemetryDataPoints":"4:60"}}`, ask(d))
	require.Equal(t, `{"maxPayloadSize":65536,"maxInflightMessages":100,`+
		`"rateLimits":{"messages":null,"telemetryMessages":null,"telemetryDataPoints":null}}`, ask(free))

	w, ack := dialWire(t, s, connectSpec{clientID: "limits5-raw", user: d.Credentials.Token, hasUser: true})
	require.Zero(t, ack.ReasonCode)
	w.publish(tbapi.TopicTelemetry, `{"a":1,"b":2,"c":3}`, 1)
	require.Equal(t, "PUBACK 0x00", w.next())
	w.publish(tbapi.TopicTelemetry, `{"a":1,"b":2}`, 1) // 5 points of 4 in 60 s
	require.Equal(t, []string{"DISCONNECT 0x83"}, w.rest())
}

// Opening a session is a message too (SESSION_EVENT_MSG_OPEN): over the
// Messages limit a CONNECT gets CONNACK 0x9F and DISCONNECT 0x96
// (onValidateDeviceResponse, TbRateLimitsException); MQTT 3.1.1 gets 3.
func TestMQTT5ConnectRateLimited(t *testing.T) {
	s := startServer(t, Options{})
	p, err := s.CreateProfile(ProfileSpec{Name: "conn5", TransportLimits: TransportLimits{Messages: "1:3600"}})
	require.NoError(t, err)
	d, err := s.CreateDevice(DeviceSpec{Name: "conn5", ProfileID: p.ID})
	require.NoError(t, err)
	cs := connectSpec{clientID: d.Name, user: d.Credentials.Token, hasUser: true}
	_, ack := dialWire(t, s, cs)
	require.Zero(t, ack.ReasonCode, "the first CONNECT takes the one token")
	w, ack := dialWire(t, s, cs)
	require.Equal(t, []string{"CONNACK 0x9f present=false", "DISCONNECT 0x96"},
		append([]string{describe(&packets.ControlPacket{Content: ack})}, w.rest()...))
	_, code, err := dialClient(t, tcpDial(s.MQTTAddr()), d.Name, d.Credentials.Token, "")
	require.Error(t, err)
	require.Equal(t, byte(3), code)
}

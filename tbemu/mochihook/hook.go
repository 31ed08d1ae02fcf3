package mochihook

import (
	"bytes"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tbsim/tbsim/tbemu/core"
)

// Options configure a Hook (the config argument of mqtt.Server.AddHook).
type Options struct {
	Core *core.Core // required
}

// Hook is the mochi hook of the device API.
type Hook struct {
	mqtt.HookBase
	core     *core.Core
	seq      atomic.Uint64
	sessions sync.Map // *mqtt.Client -> *core.Session; read on every packet, so no mutex
}

// Capabilities returns mochi's defaults set as ThingsBoard's transport is:
// QoS at most 1, 65536-byte packets, no retained messages, no persistent
// sessions.
func Capabilities() *mqtt.Capabilities {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1
	caps.MaximumPacketSize = core.MaxPacketSize
	caps.RetainAvailable = 0
	caps.MaximumSessionExpiryInterval = 0
	return caps
}

// ID returns the hook's id.
func (h *Hook) ID() string { return "thingsboard" }

// Provides declares the events the hook handles.
func (h *Hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnDisconnect,
		mqtt.OnPublish, mqtt.OnSubscribed, mqtt.OnUnsubscribed, mqtt.OnPacketRead, mqtt.OnPacketEncode,
	}, []byte{b})
}

// Init takes the *Options given to AddHook.
func (h *Hook) Init(config any) error {
	opts, ok := config.(*Options)
	if !ok || opts == nil || opts.Core == nil {
		return mqtt.ErrInvalidConfigType
	}
	h.core = opts.Core
	return nil
}

func (h *Hook) session(cl *mqtt.Client) *core.Session {
	if s, ok := h.sessions.Load(cl); ok {
		return s.(*core.Session)
	}
	return nil
}

// OnConnect makes every session's id unique (mochi would evict any session
// with a repeated client id, and v2.7.9 can also drop the session that
// evicted it from its client map; ThingsBoard replaces only the same
// device's, which the core does) and opens the core session. It answers a
// refusal itself, since mochi's own refusal
// (OnConnectAuthenticate false) is always CONNACK 0x86 / 5: ThingsBoard's
// code depends on what the CONNECT carried (core.RefusedConnack), and an
// MQTT 5 client gets a DISCONNECT with the same code after the CONNACK
// (onValidateDeviceResponse's closeCtx(ctx, returnCode)). The session-present
// flag of the refusal is !cleanSession, as ThingsBoard sets it
// (createMqttConnAckMsg).
func (h *Hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	cl.ID = cl.ID + "#" + strconv.FormatUint(h.seq.Add(1), 10)
	s, code := h.core.ConnectMQTT(clientConn{h, cl}, core.ConnectPacket{
		ClientID: pk.Connect.ClientIdentifier, Username: string(pk.Connect.Username), Password: string(pk.Connect.Password),
		HasUsername: pk.Connect.UsernameFlag, HasPassword: pk.Connect.PasswordFlag,
	})
	if code == core.ConnAccepted {
		if pk.ProtocolVersion == 5 {
			s.SetMQTT5()
		}
		h.sessions.Store(cl, s)
		return nil
	}
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, SessionPresent: !pk.Connect.Clean, ReasonCode: core.V311Connack(code)}
	if pk.ProtocolVersion == 5 {
		ack.ReasonCode = code
	}
	if err := cl.WritePacket(ack); err == nil && pk.ProtocolVersion == 5 {
		_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: core.RefusalDisconnect(code)})
	}
	return packets.Code{Code: ack.ReasonCode, Reason: "refused"}
}

// OnConnectAuthenticate accepts the clients OnConnect opened a session for.
func (h *Hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return h.session(cl) != nil
}

// OnPacketRead marks activity: any packet, PINGREQ included, as ThingsBoard counts it.
func (h *Hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if s := h.session(cl); s != nil {
		h.core.Ping(s)
	}
	return pk, nil
}

// OnDisconnect ends the core session.
func (h *Hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if s, ok := h.sessions.LoadAndDelete(cl); ok {
		h.core.Disconnect(s.(*core.Session))
	}
}

// OnACLCheck allows every publish (the core decides in OnPublish) and only
// the subscription filters ThingsBoard grants.
func (h *Hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write || cl.Net.Inline {
		return true
	}
	s := h.session(cl)
	return s != nil && s.CanSubscribe(topic)
}

// OnSubscribed records the granted filters in the core, and gives an MQTT 5
// client 0x8F for each refused one: ThingsBoard refuses filters only by
// topic (processSubscribe: TOPIC_FILTER_INVALID), where mochi's ACL refusal
// says 0x87 (and 0x80 under 3.1.1, which ThingsBoard sends too). mochi writes
// the SUBACK from this very slice after the hook returns.
func (h *Hook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	s := h.session(cl)
	if s == nil {
		return
	}
	for i, f := range pk.Filters {
		if i >= len(codes) {
			break
		}
		switch {
		case codes[i] <= 1:
			h.core.Subscribe(s, f.Filter, codes[i])
		case cl.Properties.ProtocolVersion == 5:
			codes[i] = core.CodeTopicFilterInvalid
		}
	}
}

// OnUnsubscribed forgets the filters.
func (h *Hook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	if s := h.session(cl); s != nil {
		for _, f := range pk.Filters {
			h.core.Unsubscribe(s, f.Filter)
		}
	}
}

var errNoSession = errors.New("no device-API session")

// OnPublish hands every client publish to the core: it is acknowledged
// (PUBACK for QoS 1, also for a QoS 2 publish, which mochi has already
// lowered to 1, as ThingsBoard answers QoS 2) and consumed, never routed;
// unless the core closed the session over it.
func (h *Hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	s := h.session(cl)
	if s == nil {
		cl.Stop(errNoSession)
		return pk, packets.ErrRejectPacket
	}
	// The hook writes the PUBACK itself when the core says ThingsBoard
	// would: before the replies to the publish (seen on 4.3), with its MQTT
	// 5 reason code, or not at all. mochi writes none for a rejected packet.
	v5 := cl.Properties.ProtocolVersion == 5
	h.core.PublishAck(s, pk.TopicName, pk.Payload, pk.FixedHeader.Qos, func(code byte) {
		ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}
		if v5 {
			ack.ReasonCode = code
		}
		cl.WritePacket(ack)
	})
	return pk, packets.ErrRejectPacket
}

// OnPacketEncode gives an accepting CONNACK ThingsBoard's form: its
// session-present flag is !cleanSession even for a new session (a quirk of
// MqttTransportHandler.createMqttConnAckMsg) and it carries no MQTT 5
// properties (seen on 4.3: no Receive Maximum, no Maximum QoS).
func (h *Hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode == 0 {
		pk.SessionPresent = !cl.Properties.Clean
		pk.Properties = packets.Properties{}
	}
	return pk
}

// clientConn is the core's way back to one mochi client.
type clientConn struct {
	h  *Hook
	cl *mqtt.Client
}

// Deliver writes a PUBLISH to this client only. QoS 1 packets get an id and
// an inflight entry so the client's PUBACK is matched. Once the client is
// stopped mochi writes nothing, so nothing is delivered after Close.
func (c clientConn) Deliver(topic string, payload []byte, qos byte) {
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
		TopicName:   topic,
		Payload:     payload,
		Created:     time.Now().Unix(),
	}
	if qos > 0 {
		id, err := c.cl.NextPacketID()
		if err != nil {
			return
		}
		pk.PacketID = uint16(id)
		c.cl.State.Inflight.Set(pk)
	}
	c.cl.WritePacket(pk)
}

// Close forgets the client (mochi does not call OnDisconnect for a client
// whose CONNACK failed) and stops it.
func (c clientConn) Close(reason string) {
	c.h.sessions.Delete(c.cl)
	c.cl.Stop(errors.New(reason))
}

// CloseWithCode is Close after a DISCONNECT with code for an MQTT 5 client,
// as ThingsBoard's closeCtx writes one before closing the channel (MQTT
// 3.1.1 has no server DISCONNECT; code 0 means ThingsBoard sends none).
func (c clientConn) CloseWithCode(reason string, code byte) {
	if code != 0 && c.cl.Properties.ProtocolVersion == 5 {
		_ = c.cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: code})
	}
	c.Close(reason)
}

var (
	_ core.Conn       = clientConn{}
	_ core.CodeCloser = clientConn{}
)

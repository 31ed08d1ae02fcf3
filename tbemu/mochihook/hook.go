package mochihook

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
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

// OnConnect makes every session's id unique: ThingsBoard does not evict a
// session for a repeated client id, a standard broker would.
func (h *Hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	cl.ID = cl.ID + "#" + strconv.FormatUint(h.seq.Add(1), 10)
	return nil
}

// OnConnectAuthenticate opens the core session. A refusal is answered as
// ThingsBoard 4.3 answers it (MqttTransportHandler.onValidateDeviceResponse):
// the CONNACK code depends on which of user name, password and client id
// were sent, and under MQTT 5 a DISCONNECT with the same code follows; then
// the connection closes (mochi's own CONNACK finds it closed).
func (h *Hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	s, code := h.core.Connect(clientConn{h, cl}, pk.Connect.ClientIdentifier, string(pk.Connect.Username), string(pk.Connect.Password))
	if code != core.ConnAccepted {
		v5 := cl.Properties.ProtocolVersion == 5
		reason := refusalCode(pk.Connect, code, v5)
		cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: reason})
		if v5 {
			disc := reason
			if code == core.ConnRefusedRateLimited {
				disc = 0x96 // message rate too high
			}
			cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: disc})
		}
		cl.Stop(packets.ErrBadUsernameOrPassword)
		return false
	}
	if cl.Properties.ProtocolVersion == 5 {
		s.SetMQTT5()
	}
	h.sessions.Store(cl, s)
	return true
}

// refusalCode is ThingsBoard's CONNACK code for a refused CONNECT: bad user
// name or password (MQTT 5 0x86) when a user name came without a password
// or the reverse, or all three fields came; client identifier not valid
// (0x85) for a non-blank client id alone; not authorized (0x87) otherwise.
// MQTT 3.1.1 maps both 0x86 and 0x87 to 5 and 0x85 to 2; a busy server is
// 3 (0x88).
func refusalCode(c packets.ConnectParams, code byte, v5 bool) byte {
	switch code {
	case core.ConnRefusedUnavailable:
		if v5 {
			return 0x88
		}
		return 3
	case core.ConnRefusedRateLimited:
		if v5 {
			return 0x9F
		}
		return 3
	}
	r5, r3 := byte(0x87), byte(5)
	switch {
	case c.UsernameFlag && c.PasswordFlag && c.ClientIdentifier != "" || c.UsernameFlag != c.PasswordFlag:
		r5 = 0x86
	case strings.TrimSpace(c.ClientIdentifier) != "":
		r5, r3 = 0x85, 2
	}
	if v5 {
		return r5
	}
	return r3
}

// OnPacketEncode gives the packets mochi writes ThingsBoard's form:
// CONNACK's session-present flag is !cleanSession even for a new session
// (a quirk of MqttTransportHandler.createMqttConnAckMsg) and carries no
// MQTT 5 properties; a refused MQTT 5 subscription is 0x8F (topic filter
// invalid), not mochi's 0x87; DISCONNECT carries no reason string.
func (h *Hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Connack:
		pk.SessionPresent = !cl.Properties.Clean
		pk.Properties = packets.Properties{}
	case packets.Suback:
		if pk.ProtocolVersion == 5 {
			codes := append([]byte(nil), pk.ReasonCodes...)
			for i, c := range codes {
				if c == packets.ErrNotAuthorized.Code {
					codes[i] = 0x8F
				}
			}
			pk.ReasonCodes = codes
		}
	case packets.Disconnect:
		pk.Properties = packets.Properties{}
	}
	return pk
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

// OnSubscribed records the granted filters in the core.
func (h *Hook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	s := h.session(cl)
	if s == nil {
		return
	}
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] <= 1 {
			h.core.Subscribe(s, f.Filter, codes[i])
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
	// The hook writes the PUBACK itself, when the core says ThingsBoard
	// would: before the replies to the publish, with MQTT 5 reason codes,
	// or not at all. mochi writes none for a rejected packet.
	v5 := s.MQTT5()
	h.core.PublishAck(s, pk.TopicName, pk.Payload, pk.FixedHeader.Qos, func(reason byte) {
		ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}
		if v5 {
			ack.ReasonCode = reason
		}
		cl.WritePacket(ack)
	})
	return pk, packets.ErrRejectPacket
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
// whose CONNACK failed) and stops it; an MQTT 5 client first gets the
// DISCONNECT ThingsBoard sends for that reason.
func (c clientConn) Close(reason string) {
	c.h.sessions.Delete(c.cl)
	if c.cl.Properties.ProtocolVersion == 5 {
		if code, ok := core.DisconnectCode(reason); ok {
			c.cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: code})
		}
	}
	c.cl.Stop(errors.New(reason))
}

var _ core.Conn = clientConn{}

package core

import (
	"errors"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// The calls an adapter makes for its clients' packets.

// Connect opens a session for conn (MqttTransportHandler.processConnect and
// DefaultTransportApiService.validateCredentials): username or client id
// "provision" gives a provisioning session at once; otherwise the access
// token is the username (password and client id ignored), or MQTT_BASIC
// credentials match. A refusal returns a nil session and the MQTT 3.1.1
// code ThingsBoard sends for it: ConnRefusedNotAuthorized, or
// ConnRefusedIdentifier when only a client id was given (an empty user name
// or password counts as absent; ConnectMQTT sees the CONNECT's flags);
// ConnRefusedUnavailable when the core is closed or the device is over its
// Messages rate limit.
func (c *Core) Connect(conn Conn, clientID, username, password string) (*Session, byte) {
	s, code := c.ConnectMQTT(conn, ConnectPacket{ClientID: clientID, Username: username, Password: password,
		HasUsername: username != "", HasPassword: password != ""})
	return s, V311Connack(code)
}

// ConnectPacket is what a CONNECT carried.
type ConnectPacket struct {
	ClientID, Username, Password string
	HasUsername, HasPassword     bool // the CONNECT's flags
}

// ConnectMQTT is Connect for an adapter that sees the CONNECT packet: it
// returns the MQTT 5 CONNACK code (V311Connack maps it for MQTT 3.1.1):
// ConnAccepted; RefusedConnack's code for credentials that match no device;
// CodeServerUnavailable when the core is closed; CodeConnectionRateExceeded
// when the session's opening is over the device's Messages limit (the
// session-open event is counted as a message: onValidateDeviceResponse,
// TbRateLimitsException). RefusalDisconnect gives the DISCONNECT that
// follows a refusal under MQTT 5.
func (c *Core) ConnectMQTT(conn Conn, p ConnectPacket) (*Session, byte) {
	if c.closed.Load() {
		return nil, CodeServerUnavailable
	}
	s := &Session{c: c, conn: conn, clientID: p.ClientID, timers: map[uint64]func() bool{}}
	s.provision = p.Username == tbapi.ProvisionUser || p.ClientID == tbapi.ProvisionUser
	if !s.provision {
		id, ok := c.authenticate(p.ClientID, p.Username, p.Password)
		if !ok {
			c.stats.refused.Add(1)
			return nil, RefusedConnack(p.ClientID, p.HasUsername, p.HasPassword)
		}
		if !c.allow(id, 0) {
			c.stats.refused.Add(1)
			_ = c.rateLimited(id)
			return nil, CodeConnectionRateExceeded
		}
		s.deviceID = id
		// A second session of the same device with the same client id ends
		// the first, as on ThingsBoard 4.3 (seen; MQTT 5: DISCONNECT 0x8E);
		// other client ids, and other devices with this client id, keep theirs.
		for _, old := range c.deviceSessions(id) {
			if old.clientID == p.ClientID {
				c.closeSessionCode(old, ReasonSessionReplaced, CodeSessionTakenOver)
			}
		}
	}
	now := c.clock.Now()
	s.active.Store(now.UnixNano())
	c.sessMu.Lock()
	s.seq = c.seq.Add(1)
	c.sessions[s] = struct{}{}
	if s.deviceID != "" {
		c.byDevice[s.deviceID] = append(c.byDevice[s.deviceID], s)
	}
	c.sessMu.Unlock()
	if !s.provision {
		c.stats.connects.Add(1)
		c.touch(s.deviceID, true)
	}
	if !s.provision {
		// A provisioning session is never registered with ThingsBoard's
		// session activity checks: only its 60 s close ends it (seen on 4.3
		// with a 20 s inactivity timeout).
		c.watchIdle(s, now.Add(c.opts.InactivityTimeout))
	}
	return s, ConnAccepted
}

func (c *Core) authenticate(clientID, user, pass string) (string, bool) {
	st := c.store
	st.mu.RLock()
	defer st.mu.RUnlock()
	basic := func(id string) bool {
		d := st.devices[id]
		return d != nil && d.Credentials.Password == pass
	}
	if user == "" { // MQTT_BASIC by client id only
		id, ok := st.byBasic[clientID+"\x00"]
		return id, ok && basic(id)
	}
	if id, ok := st.byBasic[clientID+"\x00"+user]; ok {
		return id, basic(id)
	}
	if id, ok := st.byToken[user]; ok {
		return id, true // the token is the username; password and client id are ignored
	}
	if id, ok := st.byBasic["\x00"+user]; ok {
		return id, basic(id)
	}
	return "", false
}

// Publish handles a PUBLISH from the client; payload is not kept after it
// returns. Device publishes are consumed, never routed: replies go to this
// session through its Conn, before Publish returns. It returns whether a
// PUBACK is owed: for QoS 1, and for QoS 2 too (ThingsBoard answers QoS 2
// with PUBACK), unless the publish closed the session (an unparseable
// payload, a rate limit, a firmware error...), in which case Conn.Close has
// been called before Publish returns.
func (c *Core) Publish(s *Session, topic string, payload []byte, qos byte) bool {
	ack, _ := c.PublishCode(s, topic, payload, qos)
	return ack
}

// PublishCode is Publish that also returns the PUBACK's reason code for an
// MQTT 5 client: 0 (success), CodeTopicNameInvalid for a topic ThingsBoard
// does not serve, or CodePayloadFormatInvalid for a QoS 1 payload that does
// not parse in a session marked SetMQTT5 (which stays open).
func (c *Core) PublishCode(s *Session, topic string, payload []byte, qos byte) (ack bool, code byte) {
	c.PublishAck(s, topic, payload, qos, func(c byte) { ack, code = true, c })
	return ack && !s.Closed(), code
}

// PublishAck handles a PUBLISH as PublishCode does, reporting the
// acknowledgement through ack (with its MQTT 5 reason code) at the moment
// ThingsBoard writes its PUBACK: before any reply to the publish (seen on
// 4.3: an attribute response, a chunk, a provisioning answer all follow
// their PUBACK), before the close where ThingsBoard acknowledges and then
// closes (protocolError.ackFirst), or not at all (a firmware error, a rate
// limit, a payload that does not parse under MQTT 3.1.1). ack is not
// called for QoS 0.
func (c *Core) PublishAck(s *Session, topic string, payload []byte, qos byte, ack func(code byte)) {
	if s == nil || s.closed.Load() {
		return
	}
	if qos == 0 {
		ack = nil
	}
	c.Ping(s)
	s.mu.Lock()
	s.pendingAck = ack
	s.mu.Unlock()
	var err error
	var code byte
	if s.provision {
		err = c.provisionPublish(s, topic, payload)
	} else {
		code, err = c.devicePublish(s, topic, payload)
	}
	pending := s.takeAck()
	if err != nil {
		var pe *protocolError
		isPE := errors.As(err, &pe)
		if pending != nil && s.mqtt5.Load() && isPE && pe.adaptor {
			c.log.Debug("payload refused", "client", s.clientID, "topic", topic, "error", err)
			pending(pe.code)
			return
		}
		if pending != nil && isPE && pe.ackFirst {
			pending(pe.code)
		}
		c.log.Debug("closing session", "client", s.clientID, "topic", topic, "error", err)
		c.closeSessionCode(s, err.Error(), closeCode("", err))
		return
	}
	if pending != nil && !s.closed.Load() {
		pending(code)
	}
}

// Subscribe handles one filter of a SUBSCRIBE and returns its SUBACK code:
// the granted QoS (at most 1), or SubackFailure for a filter ThingsBoard
// refuses.
func (c *Core) Subscribe(s *Session, filter string, qos byte) byte {
	if s == nil || s.closed.Load() || !s.CanSubscribe(filter) {
		return SubackFailure
	}
	c.Ping(s)
	qos = min(qos, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.subs {
		if s.subs[i].filter == filter {
			s.subs[i].qos = qos
			return qos
		}
	}
	s.subs = append(s.subs, subscription{filter, qos})
	return qos
}

// Unsubscribe handles one filter of an UNSUBSCRIBE.
func (c *Core) Unsubscribe(s *Session, filter string) {
	if s == nil {
		return
	}
	c.Ping(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.subs {
		if s.subs[i].filter == filter {
			s.subs = append(s.subs[:i], s.subs[i+1:]...)
			return
		}
	}
}

// Ping records a packet from the client that needs nothing else from the
// core (PINGREQ, PUBACK...): any packet counts as activity, as in ThingsBoard.
func (c *Core) Ping(s *Session) {
	if s != nil {
		s.active.Store(c.clock.Now().UnixNano())
	}
}

// Disconnect ends a session that the client or the transport closed. It is
// a no-op for a session the core already closed.
func (c *Core) Disconnect(s *Session) {
	if s != nil {
		c.detach(s)
	}
}

// closeSession ends a session from the server side for one of the Reason*
// constants.
func (c *Core) closeSession(s *Session, reason string) {
	c.closeSessionCode(s, reason, closeCode(reason, nil))
}

// closeSessionCode ends a session from the server side; an MQTT 5 client is
// told code first (0: nothing) when its Conn can say it.
func (c *Core) closeSessionCode(s *Session, reason string, code byte) {
	if !c.detach(s) {
		return
	}
	if cc, ok := s.conn.(CodeCloser); ok {
		cc.CloseWithCode(reason, code)
		return
	}
	s.conn.Close(reason)
}

// detach removes s from the tables and cancels its timers; false if it had
// already ended.
func (c *Core) detach(s *Session) bool {
	if !s.closed.CompareAndSwap(false, true) {
		return false
	}
	c.sessMu.Lock()
	delete(c.sessions, s)
	if s.deviceID != "" {
		list := c.byDevice[s.deviceID]
		for i, x := range list {
			if x == s {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(c.byDevice, s.deviceID)
		} else {
			c.byDevice[s.deviceID] = list
		}
	}
	c.sessMu.Unlock()
	s.mu.Lock()
	timers := s.timers
	s.timers = nil
	s.mu.Unlock()
	for _, stop := range timers {
		stop()
	}
	return true
}

// deviceSessions returns the device's live sessions in connect order.
func (c *Core) deviceSessions(id string) []*Session {
	c.sessMu.RLock()
	defer c.sessMu.RUnlock()
	return append([]*Session(nil), c.byDevice[id]...)
}

// Connected reports whether the device has a live session.
func (c *Core) Connected(id string) bool {
	c.sessMu.RLock()
	defer c.sessMu.RUnlock()
	return len(c.byDevice[id]) > 0
}

func (c *Core) closeDevice(id, why string) {
	for _, s := range c.deviceSessions(id) {
		c.closeSession(s, why)
	}
}

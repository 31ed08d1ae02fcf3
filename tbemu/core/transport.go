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
// credentials match. A refusal returns a nil session and
// ConnRefusedNotAuthorized; a closed core ConnRefusedUnavailable.
func (c *Core) Connect(conn Conn, clientID, username, password string) (*Session, byte) {
	if c.closed.Load() {
		return nil, ConnRefusedUnavailable
	}
	s := &Session{c: c, conn: conn, clientID: clientID, timers: map[uint64]func() bool{}}
	s.provision = username == tbapi.ProvisionUser || clientID == tbapi.ProvisionUser
	if !s.provision {
		id, ok := c.authenticate(clientID, username, password)
		if !ok {
			c.stats.refused.Add(1)
			return nil, ConnRefusedNotAuthorized
		}
		s.deviceID = id
		// Opening a session is a message too (SESSION_EVENT_MSG_OPEN): over
		// the device's limit ThingsBoard refuses it (connection rate
		// exceeded; seen on 4.3 right after a close over the limit).
		if !c.allowDevice(id, c.rateLimit(id), c.clock.Now()) {
			c.stats.rateLimited.Add(1)
			return nil, ConnRefusedRateLimited
		}
	}
	if !s.provision {
		// A second session of the same device with the same client id ends
		// the first, as on ThingsBoard 4.3 (seen); other client ids, and
		// other devices with this client id, keep theirs.
		for _, old := range c.deviceSessions(s.deviceID) {
			if old.clientID == clientID {
				c.closeSession(old, ReasonSessionReplaced)
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
		// session activity checks: only its 60 s close ends it (seen on
		// 4.3 with a 20 s inactivity timeout).
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

// PublishAck handles a PUBLISH as ThingsBoard's transport does, reporting
// the acknowledgement through ack (nil for QoS 0) at the moment ThingsBoard
// writes its PUBACK: before any reply to the publish (an attribute response,
// a chunk, a provisioning answer follow their PUBACK on ThingsBoard 4.3), or
// just before the session is closed when ThingsBoard acknowledges and then
// closes (a provisioning session's other topics and bad requests), or not at
// all (a payload that does not parse under MQTT 3.1.1, a firmware error, a
// rate limit: the session closes without one). reason is the MQTT 5 reason
// code (0 success, 0x90 topic name invalid, 0x99 payload format invalid,
// 0x83 implementation specific); under MQTT 5 (Session.SetMQTT5) a payload
// that does not parse is acknowledged with 0x99 and the session stays.
func (c *Core) PublishAck(s *Session, topic string, payload []byte, qos byte, ack func(reason byte)) {
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
	var reason byte
	if s.provision {
		err = c.provisionPublish(s, topic, payload)
	} else {
		reason, err = c.devicePublishReason(s, topic, payload)
	}
	pending := s.takeAck()
	var ae *ackCloseError
	switch {
	case err == nil:
		if pending != nil && !s.closed.Load() {
			pending(reason)
		}
		return
	case errors.As(err, &ae):
		if pending != nil {
			pending(ae.code)
		}
	case s.v5 && isPayloadError(err):
		if pending != nil {
			pending(ReasonPayloadFormatInvalid)
		}
		return
	}
	c.log.Debug("closing session", "client", s.clientID, "topic", topic, "error", err)
	c.closeSession(s, err.Error())
}

// Publish handles a PUBLISH from the client; payload is not kept after it
// returns. Device publishes are consumed, never routed: replies go to this
// session through its Conn, before Publish returns. It returns whether a
// PUBACK is owed: for QoS 1, and for QoS 2 too (ThingsBoard answers QoS 2
// with PUBACK), unless the publish closed the session (an unparseable
// payload, a rate limit, a firmware error...), in which case Conn.Close has
// been called before Publish returns. The PUBACK then follows the replies;
// PublishAck orders them as ThingsBoard does.
func (c *Core) Publish(s *Session, topic string, payload []byte, qos byte) bool {
	acked := false
	c.PublishAck(s, topic, payload, qos, func(byte) { acked = true })
	return acked && !s.closed.Load()
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

// closeSession ends a session from the server side.
func (c *Core) closeSession(s *Session, reason string) {
	if c.detach(s) {
		s.conn.Close(reason)
	}
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

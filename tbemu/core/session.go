package core

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// Conn is an adapter's end of one client connection. It is an alias of an
// interface literal so that code which cannot import tbemu (the simulator)
// can spell the identical type.
type Conn = interface {
	// Deliver writes one PUBLISH to this connection only, at qos (0 or 1).
	// payload is read-only and may be shared. It must not call the core.
	Deliver(topic string, payload []byte, qos byte)
	// Close closes the connection; reason says why (Reason* constants, or
	// the error that closed it). The core calls it at most once per session
	// and calls Deliver no more after it. It must not call the core.
	Close(reason string)
}

// Why the core closes a session (the reason given to Conn.Close). Protocol
// errors (a payload that does not parse, a bad provisioning request, a
// firmware error) give the error's text instead.
const (
	ReasonRateLimit          = "rate limit exceeded"
	ReasonInactivity         = "session inactivity timeout"
	ReasonProvisionExpired   = "provisioning session expired"
	ReasonDeviceDeleted      = "device deleted"
	ReasonCredentialsUpdated = "credentials updated"
	ReasonServerClosing      = "server closing"
	ReasonSessionReplaced    = "a new session of this device has the same client id"
)

// CONNACK return codes of Connect (MQTT 3.1.1, as ReturnCodeResolver maps
// ThingsBoard's MQTT 5 codes: see RefusedConnack and V311Connack).
const (
	ConnAccepted             byte = 0
	ConnRefusedIdentifier    byte = 2 // no user name or password, only a client id
	ConnRefusedUnavailable   byte = 3
	ConnRefusedNotAuthorized byte = 5
)

// SubackFailure is the SUBACK code of a refused filter under MQTT 3.1.1;
// MQTT 5 clients get CodeTopicFilterInvalid (0x8F) for it.
const SubackFailure byte = 0x80

// Session is one authenticated connection: a device's, or a provisioning
// session (username or client id "provision").
type Session struct {
	c         *Core
	seq       uint64 // connect order: 1, 2, ...
	conn      Conn
	clientID  string
	deviceID  string // "" for a provisioning session
	provision bool
	active    atomic.Int64 // unix ns of the last packet from the client
	closed    atomic.Bool
	mqtt5     atomic.Bool // the client speaks MQTT 5 (SetMQTT5)
	// pendingAck is PublishAck's acknowledgement while the publish is being
	// handled: a reply delivered to this session writes it first.
	pendingAck func(code byte)

	mu   sync.Mutex
	subs []subscription // in subscription order: the first match wins
	// fwReq caches, per chunk request id, the package and chunk size (as
	// ThingsBoard caches the package id per request id for the session).
	fwReq map[string]fwRequest
	// timers are the session's scheduled functions, cancelled when it ends.
	timers        map[uint64]func() bool
	nextTimer     uint64
	closeSchedule bool // the provisioning close is scheduled
}

type subscription struct {
	filter string
	qos    byte
}

type fwRequest struct {
	pkgID string
	size  int
}

// ID is the session's number, in connect order from 1.
func (s *Session) ID() uint64 { return s.seq }

// DeviceID is the device's id ("" for a provisioning session).
func (s *Session) DeviceID() string { return s.deviceID }

// ClientID is the client id the session connected with.
func (s *Session) ClientID() string { return s.clientID }

// Provisioning reports whether this is a provisioning session.
func (s *Session) Provisioning() bool { return s.provision }

// Closed reports whether the session has ended.
func (s *Session) Closed() bool { return s.closed.Load() }

// Conn returns the connection the session was opened with.
func (s *Session) Conn() Conn { return s.conn }

// SetMQTT5 tells the core the client speaks MQTT 5, before its first
// publish. ThingsBoard then answers a QoS 1 publish whose payload does not
// parse with PUBACK 0x99 and keeps the session (3.1.1 sessions are closed).
func (s *Session) SetMQTT5() { s.mqtt5.Store(true) }

// allowedFilters are the subscriptions ThingsBoard grants; others get 0x80.
var allowedFilters = map[string]bool{
	tbapi.TopicAttributes: true, tbapi.TopicAttrResponseFilter: true,
	tbapi.TopicRPCRequestFilter: true, tbapi.TopicRPCResponseFilter: true,
	tbapi.TopicFwResponseFilter: true, tbapi.TopicFwError: true,
	"v2/sw/response/+/chunk/+": true, "v2/sw/error": true,
	// The short v2 and gateway filters are granted although the emulator
	// publishes nothing on them (seen on 4.3: v2/a, v1/gateway/rpc granted).
	"v2/a": true, "v2/a/j": true, "v2/a/p": true,
	"v2/a/res/+": true, "v2/a/res/j/+": true, "v2/a/res/p/+": true,
	"v2/r/req/+": true, "v2/r/req/j/+": true, "v2/r/req/p/+": true,
	"v2/r/res/+": true, "v2/r/res/j/+": true, "v2/r/res/p/+": true,
	"v1/gateway/attributes": true, "v1/gateway/rpc": true, "v1/gateway/attributes/response": true,
}

// CanSubscribe reports whether ThingsBoard grants filter to this session:
// a provisioning session only /provision/response, a device session the
// device-API filters. It changes nothing.
func (s *Session) CanSubscribe(filter string) bool {
	if s.provision {
		return filter == tbapi.TopicProvisionResponse
	}
	return allowedFilters[filter]
}

// subscribedQoS returns the QoS of the first subscription matching topic.
func (s *Session) subscribedQoS(topic string) (byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		if topicMatch(sub.filter, topic) {
			return sub.qos, true
		}
	}
	return 0, false
}

// deliver sends a PUBLISH to this session only, at the QoS of the first
// matching subscription or 1 without one (ThingsBoard's rule). It is for
// pushes (attribute updates, server RPC, timeouts), which may run
// concurrently with a publish of the session's and leave its PUBACK alone.
func (c *Core) deliver(s *Session, topic string, payload []byte) {
	qos, ok := s.subscribedQoS(topic)
	if !ok {
		qos = 1
	}
	if !s.closed.Load() {
		s.conn.Deliver(topic, payload, qos)
	}
}

// reply is deliver for the answer to the publish being handled, on its
// goroutine: ThingsBoard acknowledges a request before it answers it, so
// the pending PUBACK goes first.
func (c *Core) reply(s *Session, topic string, payload []byte) {
	if ack := s.takeAck(); ack != nil && !s.closed.Load() {
		ack(0)
	}
	c.deliver(s, topic, payload)
}

// takeAck returns and clears the acknowledgement of the publish being
// handled (PublishAck), if it has not been written yet.
func (s *Session) takeAck() func(byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.pendingAck
	s.pendingAck = nil
	return a
}

// afterAt runs f at t unless the session has ended by then.
func (s *Session) afterAt(t time.Time, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timers == nil {
		return // ended
	}
	id := s.nextTimer
	s.nextTimer++
	// s.mu is held until the stop function is stored, so f's cleanup runs after.
	s.timers[id] = s.c.at(t, func() {
		s.mu.Lock()
		delete(s.timers, id)
		s.mu.Unlock()
		if !s.closed.Load() {
			f()
		}
	})
}

func (s *Session) after(d time.Duration, f func()) { s.afterAt(s.c.clock.Now().Add(d), f) }

// watchIdle closes the session at deadline unless a packet came since, in
// which case it looks again at the new deadline: one timer per session and
// timeout, none per packet.
func (c *Core) watchIdle(s *Session, deadline time.Time) {
	s.afterAt(deadline, func() {
		now := c.clock.Now()
		// Relative to now, so the deadline keeps the clock's location.
		next := now.Add(time.Duration(s.active.Load()-now.UnixNano()) + c.opts.InactivityTimeout)
		if now.Before(next) {
			c.watchIdle(s, next)
			return
		}
		c.closeSession(s, ReasonInactivity)
	})
}

// topicMatch reports whether an MQTT filter matches a topic name, level by
// level without allocating (it runs for every message delivered).
func topicMatch(filter, topic string) bool {
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		t, trest, tmore := strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		if !fmore || !tmore {
			return fmore == tmore || !tmore && frest == "#" // "a/#" matches "a" too
		}
		filter, topic = frest, trest
	}
}

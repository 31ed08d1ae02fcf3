package direct

import (
	"sync"

	"github.com/tbsim/tbsim/tbemu/core"
)

// Conn is the simulator's end of one connection (core.Conn): Deliver
// writes one PUBLISH to that client at qos; Close ends the connection.
type Conn = interface {
	Deliver(topic string, payload []byte, qos byte)
	Close(reason string)
}

// Session is an open session: opaque, given back to the Server as is. ID is
// its number in connect order, from 1.
type Session = interface{ ID() uint64 }

// CONNACK codes of Connect (MQTT 3.1.1, as ThingsBoard sends them).
const (
	ConnAccepted             = core.ConnAccepted
	ConnRefusedIdentifier    = core.ConnRefusedIdentifier
	ConnRefusedUnavailable   = core.ConnRefusedUnavailable
	ConnRefusedNotAuthorized = core.ConnRefusedNotAuthorized
)

// SubackFailure is the SUBACK code of a refused filter.
const SubackFailure = core.SubackFailure

// Server calls the core directly.
type Server struct {
	c *core.Core
}

// New returns a Server over c.
func New(c *core.Core) *Server { return &Server{c: c} }

// Connect opens a session (MQTT CONNECT) and returns it with the CONNACK
// code: ConnAccepted, or a nil Session and ConnRefusedNotAuthorized (a bad
// token), ConnRefusedIdentifier (a client id alone that matches no
// MQTT_BASIC device) or ConnRefusedUnavailable (the core is closed).
func (s *Server) Connect(conn Conn, clientID, username, password string) (Session, byte) {
	g := &guard{conn: conn}
	sess, code := s.c.Connect(g, clientID, username, password)
	if sess == nil {
		return nil, code
	}
	return sess, code
}

// Publish hands the core a PUBLISH from the client. It returns whether a
// PUBACK is owed (QoS 1 or 2, and the session still open); if the publish
// closed the session, conn.Close has been called.
func (s *Server) Publish(sess Session, topic string, payload []byte, qos byte) bool {
	return s.c.Publish(session(sess), topic, payload, qos)
}

// Subscribe handles one filter of a SUBSCRIBE and returns its SUBACK code:
// the granted QoS (0 or 1) or SubackFailure.
func (s *Server) Subscribe(sess Session, filter string, qos byte) byte {
	return s.c.Subscribe(session(sess), filter, qos)
}

// Unsubscribe handles one filter of an UNSUBSCRIBE.
func (s *Server) Unsubscribe(sess Session, filter string) {
	s.c.Unsubscribe(session(sess), filter)
}

// Ping records any other packet from the client (PINGREQ, PUBACK): activity
// that keeps the session from the inactivity timeout.
func (s *Server) Ping(sess Session) { s.c.Ping(session(sess)) }

// Disconnect ends the session from the client's side (DISCONNECT or a lost
// link); conn.Close is not called, and nothing more is delivered.
func (s *Server) Disconnect(sess Session) {
	cs := session(sess)
	if cs == nil {
		return
	}
	s.c.Disconnect(cs)
	if g, ok := cs.Conn().(*guard); ok {
		g.shut()
	}
}

// session unwraps a Session that Connect returned.
func session(s Session) *core.Session {
	cs, _ := s.(*core.Session)
	return cs
}

// guard makes sure nothing reaches the simulator's connection after it is
// closed, even from a real-time clock's goroutine racing with Close.
type guard struct {
	mu     sync.Mutex
	closed bool
	conn   Conn
}

func (g *guard) Deliver(topic string, payload []byte, qos byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.conn.Deliver(topic, payload, qos)
	}
}

func (g *guard) Close(reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		g.conn.Close(reason)
	}
}

func (g *guard) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

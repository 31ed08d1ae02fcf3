package mqtt

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/firmwaretest"
)

// memConn is an in-memory stream: the test plays the broker by appending to
// toClient and reading fromClient. chunk limits each Read (fragmentation).
type memConn struct {
	toClient, fromClient []byte
	chunk                int
	closed               bool
	readErr              error
}

func (m *memConn) Read(p []byte) (int, error) {
	if m.closed {
		return 0, errors.New("use of closed connection")
	}
	n := len(m.toClient)
	if m.chunk > 0 && n > m.chunk {
		n = m.chunk
	}
	n = copy(p, m.toClient[:n])
	m.toClient = m.toClient[n:]
	if n == 0 && m.readErr != nil {
		return 0, m.readErr
	}
	return n, nil
}

func (m *memConn) Write(p []byte) (int, error) {
	if m.closed {
		return 0, errors.New("use of closed connection")
	}
	m.fromClient = append(m.fromClient, p...)
	return len(p), nil
}

func (m *memConn) Close() error { m.closed = true; return nil }

type rig struct {
	c      *Client
	conns  []*memConn
	clock  *firmwaretest.ManualClock
	events []firmware.Event
	onEv   func(firmware.Event)
}

func newRig(opts Options) *rig {
	r := &rig{clock: firmwaretest.NewClock()}
	r.c = New(DialFunc(func() (Conn, error) {
		m := &memConn{}
		r.conns = append(r.conns, m)
		return m, nil
	}), r.clock, opts)
	return r
}

func (r *rig) conn() *memConn { return r.conns[len(r.conns)-1] }

func (r *rig) poll() {
	r.c.Poll(func(ev firmware.Event) {
		r.events = append(r.events, ev)
		if r.onEv != nil {
			r.onEv(ev)
		}
	})
}

// connected takes the rig through CONNECT/CONNACK 0.
func (r *rig) connected(t *testing.T) {
	t.Helper()
	if err := r.c.Connect(firmware.Credentials{ClientID: "dev", Username: "TOKEN"}); err != nil {
		t.Fatal(err)
		return
	}
	r.conn().toClient = append(r.conn().toClient, 0x20, 2, 0, 0)
	r.poll()
	if len(r.events) != 1 || r.events[0].Kind != firmware.EventConnected {
		t.Fatalf("events = %+v; want connected", r.events)
		return
	}
	r.events = nil
	r.conn().fromClient = nil
}

func pkt(first byte, body ...byte) []byte { return appendPacket(nil, first, body) }

func TestConnectBytes(t *testing.T) {
	r := newRig(Options{KeepAlive: 60 * time.Second})
	if err := r.c.Connect(firmware.Credentials{ClientID: "id", Username: "user", Password: "pw"}); err != nil {
		t.Fatal(err)
		return
	}
	// 0x10, remaining 24: "MQTT", level 4, flags user|password|clean, keepalive 60,
	// then the client id, user name and password as length-prefixed strings.
	want := []byte{0x10, 24, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xC2, 0, 60, 0, 2, 'i', 'd', 0, 4, 'u', 's', 'e', 'r', 0, 2, 'p', 'w'}
	if got := r.conn().fromClient; !bytes.Equal(got, want) {
		t.Errorf("CONNECT = % x; want % x", got, want)
	}
}

func TestConnackRefused(t *testing.T) {
	r := newRig(Options{})
	r.c.Connect(firmware.Credentials{ClientID: "dev", Username: "BAD"})
	m := r.conn()
	m.toClient = pkt(0x20, 0, 5)
	r.poll()
	if len(r.events) != 1 || r.events[0].Kind != firmware.EventRefused || r.events[0].Code != 5 {
		t.Fatalf("events = %+v; want refused with code 5", r.events)
		return
	}
	if !m.closed {
		t.Error("connection left open after a refusal")
	}
	if _, err := r.c.Publish("t", nil, 1); err != ErrNotConnected {
		t.Errorf("publish after refusal: %v", err)
	}
}

func TestPublishAcks(t *testing.T) {
	r := newRig(Options{})
	r.connected(t)
	id0, _ := r.c.Publish("a", []byte("x"), 0)
	id1, _ := r.c.Publish("b", []byte("yz"), 1)
	want := append(pkt(0x30, 0, 1, 'a', 'x'), pkt(0x32, 0, 1, 'b', 0, 1, 'y', 'z')...)
	if got := r.conn().fromClient; !bytes.Equal(got, want) {
		t.Fatalf("sent % x; want % x", got, want)
		return
	}
	r.poll() // QoS 0: acknowledged at once
	r.conn().toClient = pkt(0x40, 0, 1)
	r.poll()
	if len(r.events) != 2 || r.events[0].ID != id0 || r.events[1].ID != id1 || r.events[1].Kind != firmware.EventPublished {
		t.Errorf("events = %+v; want published %d then %d", r.events, id0, id1)
	}
}

func TestIncomingPublish(t *testing.T) {
	r := newRig(Options{})
	r.connected(t)
	m := r.conn()
	m.toClient = append(pkt(0x32, 0, 3, 'r', '/', '1', 0x12, 0x34, '{', '}'), pkt(0x30, 0, 1, 'q', 'h', 'i')...)
	m.chunk = 1 // one byte per read: packets cross reads
	for i := 0; i < 20; i++ {
		r.poll()
	}
	if len(r.events) != 2 || r.events[0].Topic != "r/1" || string(r.events[0].Payload) != "{}" ||
		r.events[1].Topic != "q" || string(r.events[1].Payload) != "hi" {
		t.Fatalf("events = %+v", r.events)
		return
	}
	if want := pkt(0x40, 0x12, 0x34); !bytes.Equal(m.fromClient, want) {
		t.Errorf("sent % x; want the PUBACK % x", m.fromClient, want)
	}
}

// TestNoEventsAfterDisconnect: the firmware disconnects while handling a
// message (as after a provisioning response); what else the old connection
// had delivered must not reach it, nor anything after a reconnect.
func TestNoEventsAfterDisconnect(t *testing.T) {
	r := newRig(Options{})
	r.connected(t)
	old := r.conn()
	old.toClient = append(pkt(0x30, 0, 1, 'a', '1'), pkt(0x30, 0, 1, 'b', '2')...)
	r.c.Publish("x", nil, 0) // an acknowledgement pending too
	r.onEv = func(ev firmware.Event) {
		if ev.Kind == firmware.EventPublished {
			r.c.Disconnect()
			r.c.Connect(firmware.Credentials{ClientID: "dev", Username: "NEW"})
		}
	}
	r.poll()
	r.onEv = nil
	r.poll()
	r.poll()
	if len(r.events) != 1 || r.events[0].Kind != firmware.EventPublished {
		t.Errorf("events = %+v; want only the publish acknowledgement", r.events)
	}
	if !old.closed || len(r.conns) != 2 {
		t.Errorf("old connection closed %v, dials %d", old.closed, len(r.conns))
	}
}

func TestKeepAlive(t *testing.T) {
	r := newRig(Options{KeepAlive: 10 * time.Second})
	r.connected(t)
	m := r.conn()
	r.clock.Advance(9 * time.Second)
	r.poll()
	if len(m.fromClient) != 0 {
		t.Fatalf("sent % x before the keepalive", m.fromClient)
		return
	}
	if d := r.c.Deadline(); !d.Equal(r.clock.T.Add(time.Second)) {
		t.Errorf("deadline in %v; want 1s", d.Sub(r.clock.T))
	}
	r.clock.Advance(time.Second)
	r.poll()
	if !bytes.Equal(m.fromClient, []byte{0xC0, 0}) {
		t.Fatalf("sent % x; want PINGREQ", m.fromClient)
		return
	}
	m.toClient = pkt(0xD0) // PINGRESP
	r.clock.Advance(5 * time.Second)
	r.poll()
	r.clock.Advance(5 * time.Second)
	r.poll() // a second PINGREQ, unanswered
	r.clock.Advance(10 * time.Second)
	r.poll()
	if len(r.events) != 1 || r.events[0].Kind != firmware.EventConnectionLost {
		t.Errorf("events = %+v; want connection lost", r.events)
	}
}

func TestBrokenStream(t *testing.T) {
	cases := map[string][]byte{
		"length over 4 bytes": {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01},
		"too large":           {0x30, 0xFF, 0xFF, 0x7F},
		"qos 2":               pkt(0x34, 0, 1, 'a', 0, 1),
		"short topic":         pkt(0x30, 0, 9, 'a'),
		"connack again":       pkt(0x20, 0, 0),
		"unknown type":        pkt(0xF0),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			r := newRig(Options{})
			r.connected(t)
			r.conn().toClient = in
			r.poll()
			if len(r.events) != 1 || r.events[0].Kind != firmware.EventConnectionLost {
				t.Errorf("events = %+v; want connection lost", r.events)
			}
		})
	}
	r := newRig(Options{})
	r.connected(t)
	r.conn().readErr = errors.New("EOF")
	r.poll()
	if len(r.events) != 1 || r.events[0].Reason != "EOF" {
		t.Errorf("events = %+v; want connection lost: EOF", r.events)
	}
}

// FuzzPoll feeds arbitrary broker bytes to a connected client: it must not
// panic, and after a loss no more events may come.
func FuzzPoll(f *testing.F) {
	f.Add([]byte{0x30, 3, 0, 1, 'a'}, uint8(0))
	f.Add(pkt(0x32, 0, 1, 'a', 0, 9, 'x'), uint8(1))
	f.Add([]byte{0x40, 2, 0, 7, 0xD0, 0, 0x90, 3, 0, 1, 1}, uint8(2))
	f.Add([]byte{0x30, 0x80, 0x80, 0x80, 0x01}, uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		r := newRig(Options{MaxPacket: 1024})
		r.connected(t)
		r.c.Publish("t", []byte("p"), 1)
		r.conn().toClient = in
		r.conn().chunk = int(chunk)
		for i := 0; i < 8; i++ {
			r.poll()
		}
		for i, ev := range r.events {
			if ev.Kind == firmware.EventConnectionLost && i != len(r.events)-1 {
				t.Fatalf("events after the loss: %+v", r.events)
				return
			}
		}
	})
}

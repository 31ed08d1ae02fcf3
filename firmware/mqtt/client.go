//go:build go1.23

package mqtt

import (
	"errors"
	"time"

	"github.com/tbsim/tbsim/firmware"
)

// Conn is a byte stream to the broker. Read must not block: it returns
// (0, nil) when nothing has arrived. Write may take fewer bytes than given;
// the client keeps the rest for the next Poll.
type Conn interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
}

// Dialer opens a new stream to the broker (TCP, an in-memory pipe, ...).
type Dialer interface {
	Dial() (Conn, error)
}

// DialFunc adapts a function to Dialer.
type DialFunc func() (Conn, error)

// Dial calls f.
func (f DialFunc) Dial() (Conn, error) { return f() }

// Options configure a Client. Zero values take the defaults.
type Options struct {
	KeepAlive time.Duration // sent in CONNECT; a PINGREQ goes out after this much silence (default 60 s)
	MaxPacket int           // largest packet accepted (default 80 KiB)
}

// Errors.
var (
	ErrNotConnected = errors.New("mqtt: not connected")
	errMalformed    = errors.New("mqtt: malformed packet")
	errTooLarge     = errors.New("mqtt: packet too large")
	errQoS2         = errors.New("mqtt: QoS 2 publish")
	errProtocol     = errors.New("mqtt: unexpected packet")
)

type state uint8

const (
	stateIdle       state = iota
	stateConnecting       // CONNECT sent, waiting for CONNACK
	stateConnected
)

// Client is firmware.Session over a Conn.
type Client struct {
	dial  Dialer
	clock firmware.Clock
	opts  Options

	conn     Conn
	state    state
	gen      uint64 // bumped by Connect and Disconnect: events of older ones are dropped
	in, out  []byte
	buf      []byte
	nextPID  uint16
	nextID   uint32
	inflight map[uint16]uint32 // QoS 1 packet id -> publish id
	acked    []uint32          // QoS 0 publishes to acknowledge at the next Poll
	// Unix nanoseconds, not time.Time: a time.Time field in a type that is
	// put in an interface makes TinyGo link time's formatting and zone code
	// (and through it reflect), about 20 KB.
	lastSent int64
	pingSent int64 // 0: no PINGREQ outstanding
}

var _ firmware.Session = (*Client)(nil)

// New returns a client that dials with d and reads time from clock.
func New(d Dialer, clock firmware.Clock, opts Options) *Client {
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 60 * time.Second
	}
	if opts.MaxPacket <= 0 {
		opts.MaxPacket = 80 << 10
	}
	return &Client{dial: d, clock: clock, opts: opts, buf: make([]byte, 2048)}
}

// Connect drops any current connection, dials, and sends CONNECT (clean
// session). Its outcome arrives from Poll: EventConnected, EventRefused or
// EventConnectionLost.
func (c *Client) Connect(cr firmware.Credentials) error {
	c.drop()
	conn, err := c.dial.Dial()
	if err != nil {
		return err
	}
	c.conn, c.state = conn, stateConnecting
	c.send(connectPacket(cr, c.opts.KeepAlive))
	return nil
}

func connectPacket(cr firmware.Credentials, keepAlive time.Duration) []byte {
	flags := byte(0x02) // clean session
	if cr.Username != "" {
		flags |= 0x80
	}
	if cr.Password != "" {
		flags |= 0x40
	}
	secs := int(keepAlive / time.Second)
	if secs > 0xFFFF {
		secs = 0xFFFF
	}
	body := appendString(nil, "MQTT")
	body = append(body, 4, flags, byte(secs>>8), byte(secs))
	body = appendString(body, cr.ClientID)
	if cr.Username != "" {
		body = appendString(body, cr.Username)
	}
	if cr.Password != "" {
		body = appendString(body, cr.Password)
	}
	return appendPacket(nil, typeConnect<<4, body)
}

// Disconnect sends DISCONNECT if it can and closes the connection. No event
// of it is delivered afterwards.
func (c *Client) Disconnect() {
	if c.conn != nil && c.state == stateConnected {
		c.send([]byte{typeDisconnect << 4, 0})
		c.flush()
	}
	c.drop()
}

// drop forgets the connection and everything pending on it.
func (c *Client) drop() {
	if c.conn != nil {
		c.conn.Close()
	}
	c.conn, c.state = nil, stateIdle
	c.gen++
	c.in, c.out, c.acked = c.in[:0], c.out[:0], c.acked[:0]
	c.inflight = nil
	c.pingSent = 0
}

// Publish sends a message and returns the id that EventPublished will carry.
func (c *Client) Publish(topic string, payload []byte, qos byte) (uint32, error) {
	if c.state != stateConnected {
		return 0, ErrNotConnected
	}
	c.nextID++
	id := c.nextID
	body := appendString(nil, topic)
	first := byte(typePublish << 4)
	if qos > 0 {
		pid := c.packetID()
		body = append(body, byte(pid>>8), byte(pid))
		if c.inflight == nil {
			c.inflight = map[uint16]uint32{}
		}
		c.inflight[pid] = id
		first |= 1 << 1
	} else {
		c.acked = append(c.acked, id)
	}
	c.send(appendPacket(nil, first, append(body, payload...)))
	return id, nil
}

// Subscribe asks for a topic filter; the SUBACK is not reported.
func (c *Client) Subscribe(filter string, qos byte) error {
	if c.state != stateConnected {
		return ErrNotConnected
	}
	pid := c.packetID()
	body := append([]byte{byte(pid >> 8), byte(pid)}, appendString(nil, filter)...)
	c.send(appendPacket(nil, typeSubscribe<<4|0x02, append(body, qos)))
	return nil
}

// packetID returns the next non-zero packet identifier.
func (c *Client) packetID() uint16 {
	c.nextPID++
	if c.nextPID == 0 {
		c.nextPID = 1
	}
	return c.nextPID
}

func (c *Client) send(p []byte) {
	c.out = append(c.out, p...)
	c.lastSent = c.clock.Now().UnixNano()
	c.flush()
}

// flush writes what the stream takes now; a write error surfaces at Poll.
func (c *Client) flush() error {
	for len(c.out) > 0 && c.conn != nil {
		n, err := c.conn.Write(c.out)
		c.out = c.out[:copy(c.out, c.out[n:])]
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

// Deadline is when Poll must next run to keep the connection alive, zero
// when there is no connection. A loop also polls when its stream has data.
func (c *Client) Deadline() time.Time {
	switch {
	case c.conn == nil:
		return time.Time{}
	case c.pingSent != 0:
		return time.Unix(0, c.pingSent+int64(c.opts.KeepAlive))
	}
	return time.Unix(0, c.lastSent+int64(c.opts.KeepAlive))
}

package tbdiff

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// MQTT control packet types.
const (
	pConnect     = 1
	pConnack     = 2
	pPublish     = 3
	pPuback      = 4
	pPubrec      = 5
	pSubscribe   = 8
	pSuback      = 9
	pUnsubscribe = 10
	pUnsuback    = 11
	pPingreq     = 12
	pPingresp    = 13
	pDisconnect  = 14
	pClosed      = 0 // not a packet: the server closed the connection
)

var packetNames = map[byte]string{
	pConnack: "CONNACK", pPublish: "PUBLISH", pPuback: "PUBACK", pPubrec: "PUBREC", pSuback: "SUBACK",
	pUnsuback: "UNSUBACK", pPingresp: "PINGRESP", pDisconnect: "DISCONNECT", pClosed: "CLOSED",
}

// Packet is one packet the server sent, as the client saw it, or the end
// of the connection (Type pClosed).
type Packet struct {
	Type    byte
	Flags   byte
	Topic   string
	Payload []byte
	QoS     byte
	ID      uint16
	Codes   []byte // CONNACK: flags, code; PUBACK/DISCONNECT (v5): reason; SUBACK/UNSUBACK: codes
	Props   []byte // MQTT 5 properties, raw
	At      time.Duration
}

// Client is a raw MQTT client: it writes exactly the packets it is told to
// and records every packet the server sends, so two servers can be compared
// byte for byte. It never retries, reconnects or acknowledges on its own,
// except that a QoS 1 PUBLISH from the server is PUBACKed, as every device
// does (AutoAck).
type Client struct {
	conn    net.Conn
	v5      bool
	start   time.Time
	in      chan Packet
	nextID  uint16
	AutoAck bool

	wmu sync.Mutex
}

// ConnectOpts are the CONNECT fields a sequence sets.
type ConnectOpts struct {
	V5                 bool
	ClientID           string
	Username, Password *string
	Clean              bool
	Keepalive          uint16
}

// Str returns a pointer to s (CONNECT's optional fields).
func Str(s string) *string { return &s }

// Dial opens a TCP connection to addr and sends CONNECT; the CONNACK (or the
// close) is the first packet Next returns.
func Dial(addr string, o ConnectOpts) (*Client, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, v5: o.V5, start: time.Now(), in: make(chan Packet, 1024), AutoAck: true}
	go c.read()
	if err := c.write(encodeConnect(o)); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the socket without DISCONNECT.
func (c *Client) Close() { c.conn.Close() }

// Disconnect sends DISCONNECT and closes.
func (c *Client) Disconnect() {
	body := []byte{}
	if c.v5 {
		body = []byte{0}
	}
	c.write(packet(pDisconnect<<4, body))
	c.conn.Close()
}

func (c *Client) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

// WriteRaw sends bytes as they are (a malformed or oversized packet).
func (c *Client) WriteRaw(b []byte) error { return c.write(b) }

// id returns the next packet id (1, 2, ...).
func (c *Client) id() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// Publish sends a PUBLISH and returns its packet id (0 for QoS 0).
func (c *Client) Publish(topic string, payload []byte, qos byte) uint16 {
	var id uint16
	if qos > 0 {
		id = c.id()
	}
	c.write(encodePublish(c.v5, topic, payload, qos, id))
	return id
}

// Subscribe sends one SUBSCRIBE with the filters, all at qos.
func (c *Client) Subscribe(qos byte, filters ...string) uint16 {
	id := c.id()
	var body []byte
	body = binary.BigEndian.AppendUint16(body, id)
	if c.v5 {
		body = append(body, 0)
	}
	for _, f := range filters {
		body = appendStr(body, f)
		body = append(body, qos)
	}
	c.write(packet(pSubscribe<<4|2, body))
	return id
}

// Unsubscribe sends one UNSUBSCRIBE.
func (c *Client) Unsubscribe(filters ...string) uint16 {
	id := c.id()
	var body []byte
	body = binary.BigEndian.AppendUint16(body, id)
	if c.v5 {
		body = append(body, 0)
	}
	for _, f := range filters {
		body = appendStr(body, f)
	}
	c.write(packet(pUnsubscribe<<4|2, body))
	return id
}

// Ping sends PINGREQ.
func (c *Client) Ping() { c.write([]byte{pPingreq << 4, 0}) }

// Next returns the next packet from the server, or ok false when none came
// within d.
func (c *Client) Next(d time.Duration) (Packet, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case p, ok := <-c.in:
		if !ok {
			return Packet{}, false
		}
		return p, true
	case <-t.C:
		return Packet{}, false
	}
}

func (c *Client) read() {
	defer close(c.in)
	r := bufio.NewReaderSize(c.conn, 1<<16)
	for {
		p, err := readPacket(r, c.v5)
		if err != nil {
			c.in <- Packet{Type: pClosed, At: time.Since(c.start)}
			return
		}
		p.At = time.Since(c.start)
		if p.Type == pPublish && p.QoS > 0 && c.AutoAck {
			body := binary.BigEndian.AppendUint16(nil, p.ID)
			c.write(packet(pPuback<<4, body))
		}
		c.in <- p
	}
}

func readPacket(r *bufio.Reader, v5 bool) (Packet, error) {
	first, err := r.ReadByte()
	if err != nil {
		return Packet{}, err
	}
	n, err := readVarint(r)
	if err != nil {
		return Packet{}, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Packet{}, err
	}
	p := Packet{Type: first >> 4, Flags: first & 0x0F}
	b := body
	u16 := func() uint16 {
		if len(b) < 2 {
			b = nil
			return 0
		}
		v := binary.BigEndian.Uint16(b)
		b = b[2:]
		return v
	}
	props := func() {
		if !v5 || len(b) == 0 {
			return
		}
		l, k := binary.Uvarint(b) // MQTT's variable byte integer is LEB128
		if k <= 0 || int(l) > len(b)-k {
			b = nil
			return
		}
		p.Props = append([]byte{}, b[k:k+int(l)]...)
		b = b[k+int(l):]
	}
	switch p.Type {
	case pConnack:
		p.Codes = append([]byte{}, b[:min(2, len(b))]...)
		b = b[min(2, len(b)):]
		props()
	case pPublish:
		p.QoS = (p.Flags >> 1) & 3
		tl := int(u16())
		if tl > len(b) {
			return p, errors.New("short publish")
		}
		p.Topic = string(b[:tl])
		b = b[tl:]
		if p.QoS > 0 {
			p.ID = u16()
		}
		props()
		p.Payload = append([]byte{}, b...)
	case pPuback, pPubrec:
		p.ID = u16()
		if len(b) > 0 {
			p.Codes = []byte{b[0]}
			b = b[1:]
			props()
		}
	case pSuback, pUnsuback:
		p.ID = u16()
		props()
		p.Codes = append([]byte{}, b...)
	case pDisconnect:
		if len(b) > 0 {
			p.Codes = []byte{b[0]}
			b = b[1:]
			props()
		}
	}
	return p, nil
}

func readVarint(r *bufio.Reader) (int, error) {
	n, mult := 0, 1
	for i := 0; i < 4; i++ {
		d, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n += int(d&0x7F) * mult
		if d&0x80 == 0 {
			return n, nil
		}
		mult *= 128
	}
	return 0, errors.New("malformed remaining length")
}

func appendVarint(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func packet(first byte, body []byte) []byte {
	b := appendVarint([]byte{first}, len(body))
	return append(b, body...)
}

func encodeConnect(o ConnectOpts) []byte {
	var body []byte
	body = appendStr(body, "MQTT")
	level := byte(4)
	if o.V5 {
		level = 5
	}
	body = append(body, level)
	var flags byte
	if o.Clean {
		flags |= 0x02
	}
	if o.Username != nil {
		flags |= 0x80
	}
	if o.Password != nil {
		flags |= 0x40
	}
	body = append(body, flags)
	ka := o.Keepalive
	if ka == 0 {
		ka = 60
	}
	body = binary.BigEndian.AppendUint16(body, ka)
	if o.V5 {
		body = append(body, 0) // no properties
	}
	body = appendStr(body, o.ClientID)
	if o.Username != nil {
		body = appendStr(body, *o.Username)
	}
	if o.Password != nil {
		body = appendStr(body, *o.Password)
	}
	return packet(pConnect<<4, body)
}

func encodePublish(v5 bool, topic string, payload []byte, qos byte, id uint16) []byte {
	body := appendStr(nil, topic)
	if qos > 0 {
		body = binary.BigEndian.AppendUint16(body, id)
	}
	if v5 {
		body = append(body, 0)
	}
	body = append(body, payload...)
	return packet(pPublish<<4|qos<<1, body)
}

// String renders a packet for a transcript: type, QoS, codes, topic and
// payload (text as it is, bytes as a length and a digest). Packet ids the
// server chose are left out: they are its bookkeeping, not behaviour.
func (p Packet) String() string {
	var sb strings.Builder
	sb.WriteString(packetNames[p.Type])
	switch p.Type {
	case pConnack:
		if len(p.Codes) == 2 {
			fmt.Fprintf(&sb, " sp=%d code=0x%02x", p.Codes[0]&1, p.Codes[1])
		}
	case pPublish:
		fmt.Fprintf(&sb, " qos%d %s %s", p.QoS, p.Topic, payloadString(p.Payload))
		if p.Flags&1 != 0 {
			sb.WriteString(" retain")
		}
	case pPuback, pPubrec:
		fmt.Fprintf(&sb, " id=%d", p.ID)
		if len(p.Codes) > 0 {
			fmt.Fprintf(&sb, " reason=0x%02x", p.Codes[0])
		}
	case pSuback, pUnsuback:
		fmt.Fprintf(&sb, " id=%d codes=%x", p.ID, p.Codes)
	case pDisconnect:
		if len(p.Codes) > 0 {
			fmt.Fprintf(&sb, " reason=0x%02x", p.Codes[0])
		}
	}
	if len(p.Props) > 0 {
		fmt.Fprintf(&sb, " props=%x", p.Props)
	}
	return sb.String()
}

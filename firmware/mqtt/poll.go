//go:build go1.23

package mqtt

import (
	"strconv"

	"github.com/tbsim/tbsim/firmware"
)

// Poll does the connection's work: it acknowledges QoS 0 publishes, writes
// what is pending, reads what arrived, turns packets into events for emit,
// and sends PINGREQ or gives up on a silent broker. It returns early when an
// event's handler disconnects or reconnects.
func (c *Client) Poll(emit func(firmware.Event)) {
	if c.conn == nil {
		return
	}
	gen := c.gen
	for len(c.acked) > 0 {
		id := c.acked[0]
		c.acked = c.acked[1:]
		if emit(firmware.Event{Kind: firmware.EventPublished, ID: id}); c.gen != gen {
			return
		}
	}
	if err := c.flush(); err != nil {
		c.lost(emit, "write: "+err.Error())
		return
	}
	if err := c.read(); err != nil {
		// Packets that arrived before the error still count.
		if c.handleAll(emit, gen) && c.gen == gen {
			c.lost(emit, err.Error())
		}
		return
	}
	if !c.handleAll(emit, gen) {
		return
	}
	c.keepAlive(emit)
}

// read appends what the stream has to c.in.
func (c *Client) read() error {
	for {
		n, err := c.conn.Read(c.buf)
		c.in = append(c.in, c.buf[:n]...)
		if err != nil {
			return err
		}
		if n < len(c.buf) {
			return nil
		}
	}
}

// handleAll handles the complete packets in c.in. It reports false when the
// connection changed or ended meanwhile (the caller must stop).
func (c *Client) handleAll(emit func(firmware.Event), gen uint64) bool {
	for c.gen == gen {
		p, n, err := parse(c.in, c.opts.MaxPacket)
		if err != nil {
			c.lost(emit, err.Error())
			return false
		}
		if n == 0 {
			return true
		}
		ev, err := c.handle(p)
		if len(c.in) >= n { // handle may have dropped the connection and its input
			c.in = c.in[:copy(c.in, c.in[n:])]
		}
		if err != nil {
			c.lost(emit, err.Error())
			return false
		}
		if ev.Kind != firmware.EventTick {
			emit(ev)
		}
	}
	return false
}

// handle applies one packet; an event of kind EventTick means none.
func (c *Client) handle(p packet) (firmware.Event, error) {
	none := firmware.Event{Kind: firmware.EventTick}
	c.pingSent = 0 // the broker is alive
	switch {
	case p.typ == typeConnack && c.state == stateConnecting:
		if len(p.body) != 2 {
			return none, errMalformed
		}
		if code := p.body[1]; code != 0 {
			c.drop() // the broker closes the connection too
			return firmware.Event{Kind: firmware.EventRefused, Code: code}, nil
		}
		c.state = stateConnected
		return firmware.Event{Kind: firmware.EventConnected}, nil
	case c.state != stateConnected:
		return none, errProtocol
	case p.typ == typePublish:
		m, err := parsePublish(p)
		if err != nil {
			return none, err
		}
		if m.qos == 1 {
			c.send([]byte{typePuback << 4, 2, byte(m.id >> 8), byte(m.id)})
		}
		return firmware.Event{Kind: firmware.EventMessage, Topic: m.topic, Payload: m.payload}, nil
	case p.typ == typePuback:
		if len(p.body) != 2 {
			return none, errMalformed
		}
		pid := uint16(p.body[0])<<8 | uint16(p.body[1])
		if id, ok := c.inflight[pid]; ok {
			delete(c.inflight, pid)
			return firmware.Event{Kind: firmware.EventPublished, ID: id}, nil
		}
		return none, nil
	case p.typ == typeSuback || p.typ == typeUnsuback || p.typ == typePingresp:
		return none, nil
	}
	return none, errProtocol
}

// keepAlive sends PINGREQ after KeepAlive of silence from us, and gives up
// when no packet came back within KeepAlive of it.
func (c *Client) keepAlive(emit func(firmware.Event)) {
	now := c.clock.Now().UnixNano()
	keep := int64(c.opts.KeepAlive)
	if c.pingSent != 0 {
		if now >= c.pingSent+keep {
			c.lost(emit, "keepalive timeout: no answer to PINGREQ in "+strconv.Itoa(int(c.opts.KeepAlive.Seconds()))+" s")
		}
		return
	}
	if now >= c.lastSent+keep {
		c.send([]byte{typePingreq << 4, 0})
		c.pingSent = now
	}
}

// lost ends the connection and reports it.
func (c *Client) lost(emit func(firmware.Event), reason string) {
	c.drop()
	emit(firmware.Event{Kind: firmware.EventConnectionLost, Reason: reason})
}

//go:build go1.23

package netstack

type tcpState uint8

const (
	stResolving tcpState = iota // waiting for the gateway's MAC
	stSynSent
	stEstablished
	stClosed
)

// Conn is a TCP client connection. Read and Write never block: Read returns
// (0, nil) when nothing has arrived, Write queues.
type Conn struct {
	s       *Stack
	ip      [4]byte
	lport   uint16
	rport   uint16
	state   tcpState
	err     error // why it closed
	iss     uint32
	sndUna  uint32 // oldest unacknowledged sequence number
	sndNxt  uint32
	rcvNxt  uint32
	sndWnd  uint32
	out     []byte // unacknowledged and unsent bytes, from sndUna
	in      []byte
	sentAt  int64 // last (re)transmission of what is unacknowledged
	tries   int
	seg     []byte
	finRecv bool
}

// Dial opens a connection to ip:port through the gateway; it completes
// during later Polls. now seeds the initial sequence number.
func (s *Stack) Dial(ip [4]byte, port uint16, now int64) (*Conn, error) {
	if s.conn != nil && s.conn.state != stClosed {
		return nil, ErrBusy
	}
	s.port++
	if s.port < defaultPort {
		s.port = defaultPort
	}
	iss := uint32(now>>10) ^ uint32(s.port)<<16
	c := &Conn{s: s, ip: ip, lport: s.port, rport: port, iss: iss, sndUna: iss, sndNxt: iss, seg: make([]byte, tcpHdr+mss)}
	s.conn = c
	c.timers(now)
	return c, nil
}

// Read takes what has arrived. After the peer closed and everything was
// read, or after a reset, it returns the error.
func (c *Conn) Read(p []byte) (int, error) {
	n := copy(p, c.in)
	c.in = c.in[:copy(c.in, c.in[n:])]
	if n == 0 && (c.state == stClosed || c.finRecv) {
		if c.err != nil {
			return 0, c.err
		}
		return 0, ErrClosed
	}
	return n, nil
}

// Write queues p; it fails once the connection is closed.
func (c *Conn) Write(p []byte) (int, error) {
	if c.state == stClosed {
		return 0, c.err
	}
	c.out = append(c.out, p...)
	if c.state == stEstablished && len(c.out) == len(p) { // nothing was in flight: send now
		c.sentAt = 0
	}
	return len(p), nil
}

// Close resets the connection (the firmware only closes when it gives up on
// a session, and a reset frees the server's side at once).
func (c *Conn) Close() error {
	if c.state == stEstablished || c.state == stSynSent {
		c.send(flagRST|flagACK, c.sndNxt, nil)
	}
	c.close(ErrClosed)
	return nil
}

func (c *Conn) close(err error) {
	if c.state != stClosed {
		c.state, c.err = stClosed, err
	}
}

// timers sends what is due: the SYN, new data, or a retransmission.
func (c *Conn) timers(now int64) {
	switch c.state {
	case stResolving:
		if c.s.resolve(now) {
			c.state, c.sentAt, c.tries = stSynSent, 0, 0
			c.timers(now)
		}
	case stSynSent:
		if c.sentAt == 0 || now-c.sentAt >= rto {
			if c.tries++; c.tries > maxTries {
				c.close(ErrTimeout)
				return
			}
			c.sentAt = now
			c.sndNxt = c.iss + 1
			c.send(flagSYN, c.iss, nil)
		}
	case stEstablished:
		if len(c.out) == 0 {
			return
		}
		if c.sentAt != 0 && now-c.sentAt < rto {
			return
		}
		if c.sentAt != 0 {
			if c.tries++; c.tries > maxTries {
				c.Close()
				c.err = ErrTimeout
				return
			}
		}
		c.sentAt = now
		c.transmit()
	}
}

// transmit sends everything unacknowledged, from sndUna, in MSS pieces
// within the peer's window.
func (c *Conn) transmit() {
	limit := min(len(c.out), int(c.sndWnd))
	if limit == 0 {
		limit = min(len(c.out), 1) // probe a zero window
	}
	for off := 0; off < limit; off += mss {
		end := min(off+mss, limit)
		c.send(flagACK|flagPSH, c.sndUna+uint32(off), c.out[off:end])
	}
	c.sndNxt = c.sndUna + uint32(limit)
}

func (c *Conn) send(flags byte, seq uint32, data []byte) {
	seg := c.seg[:tcpHdr+len(data)]
	put16(seg, c.lport)
	put16(seg[2:], c.rport)
	put32(seg[4:], seq)
	put32(seg[8:], c.rcvNxt)
	seg[12] = tcpHdr / 4 << 4
	if flags&flagSYN != 0 {
		put32(seg[8:], 0)
	}
	seg[13] = flags
	put16(seg[14:], uint16(recvWindow-min(len(c.in), recvWindow)))
	put16(seg[16:], 0)
	put16(seg[18:], 0)
	copy(seg[tcpHdr:], data)
	c.s.sendTCP(c.ip, seg)
}

// segment handles one TCP segment for this connection.
func (c *Conn) segment(src [4]byte, seg []byte, now int64) {
	if len(seg) < tcpHdr || src != c.ip || be16(seg) != c.rport || be16(seg[2:]) != c.lport {
		c.s.Dropped++
		return
	}
	off := int(seg[12]>>4) * 4
	if off < tcpHdr || off > len(seg) {
		c.s.Dropped++
		return
	}
	seq, ack, flags := be32(seg[4:]), be32(seg[8:]), seg[13]
	c.sndWnd = uint32(be16(seg[14:]))
	data := seg[off:]
	switch c.state {
	case stSynSent:
		if flags&flagRST != 0 && flags&flagACK != 0 && ack == c.iss+1 {
			c.close(ErrReset)
			return
		}
		if flags&(flagSYN|flagACK) != flagSYN|flagACK || ack != c.iss+1 {
			c.s.Dropped++
			return
		}
		c.rcvNxt, c.sndUna, c.sndNxt = seq+1, ack, ack
		c.state, c.sentAt, c.tries = stEstablished, 0, 0
		c.send(flagACK, c.sndNxt, nil)
		c.timers(now)
	case stEstablished:
		c.established(seq, ack, flags, data, now)
	default:
		c.s.Dropped++
	}
}

func (c *Conn) established(seq, ack uint32, flags byte, data []byte, now int64) {
	if flags&flagRST != 0 {
		if seq == c.rcvNxt {
			c.close(ErrReset)
		}
		return
	}
	if flags&flagACK != 0 && int32(ack-c.sndUna) > 0 && int32(ack-c.sndNxt) <= 0 {
		n := int(ack - c.sndUna)
		c.out = c.out[:copy(c.out, c.out[n:])]
		c.sndUna, c.tries = ack, 0
		c.sentAt = 0 // send the rest (or nothing) at once
		if len(c.out) == 0 {
			c.sndNxt = c.sndUna
		}
	}
	if seq != c.rcvNxt { // out of order or a retransmission: ask for the next one
		if len(data) > 0 || flags&flagFIN != 0 {
			c.s.Dropped++
			c.send(flagACK, c.sndNxt, nil)
		}
		return
	}
	if room := recvWindow - len(c.in); len(data) > room {
		data = data[:room]
	}
	c.in = append(c.in, data...)
	c.rcvNxt += uint32(len(data))
	if flags&flagFIN != 0 && !c.finRecv {
		c.finRecv = true
		c.rcvNxt++
	}
	if len(data) > 0 || flags&flagFIN != 0 {
		c.send(flagACK, c.sndNxt, nil)
	}
	c.timers(now)
}

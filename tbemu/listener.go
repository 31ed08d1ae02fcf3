package tbemu

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tbsim/tbsim/tbemu/core"
)

// ListenerStats are one listener's figures, in GET /api/tbsim/stats under
// "listeners".
type ListenerStats struct {
	Addr     string `json:"addr"`
	Open     int64  `json:"open"`     // connections open now (MQTT and MQTTS count together)
	Accepted int64  `json:"accepted"` // connections accepted since start
	// AcceptErrors counts failed accepts, FDExhausted those for lack of file
	// descriptors (EMFILE, ENFILE); Failing is true while a burst lasts.
	AcceptErrors    int64  `json:"acceptErrors"`
	FDExhausted     int64  `json:"fdExhausted"`
	Failing         bool   `json:"failing"`
	LastAcceptError string `json:"lastAcceptError,omitempty"`
	// MaxConnections is the limit (0: none); RefusedOverLimit counts the
	// connections refused beyond it.
	MaxConnections   int   `json:"maxConnections"`
	RefusedOverLimit int64 `json:"refusedOverLimit"`
	// MQTT only: connections closed for not sending a whole CONNECT within
	// the connect timeout, and for a CONNECT that breaks the protocol.
	ConnectTimeouts int64 `json:"connectTimeouts"`
	ProtocolErrors  int64 `json:"protocolErrors"`
}

// guardListener keeps a listener serving through accept errors, bounds its
// connections and counts what happens to them.
//
// mochi's listeners return from their accept loop on the first error, so a
// moment without file descriptors (EMFILE) would end MQTT for good. Accept
// here never returns an error but net.ErrClosed: it retries with backoff
// (5 ms doubling to 1 s, as net/http's Server does) and logs once when a
// burst of failures starts and once when it ends, not once per retry.
// Beyond MaxConnections a connection is refused at once (refuse answers it:
// CONNACK "server unavailable" for MQTT) and never reaches the broker.
type guardListener struct {
	net.Listener
	name   string
	log    *slog.Logger
	max    int
	refuse func(net.Conn) // nil: close
	closed chan struct{}
	once   sync.Once

	// open is shared by the listeners under one limit (MQTT and MQTTS).
	open                                         *atomic.Int64
	accepted, acceptErrors, fdExhausted, refused atomic.Int64
	connectTimeouts, protocolErrors              atomic.Int64

	mu         sync.Mutex // the burst bookkeeping below
	failing    bool
	failSince  time.Time
	failCount  int64
	lastErr    string
	overLimit  bool
	refusedRun int64
	refusers   chan struct{} // bounds the goroutines answering refused connections
	nowFunc    func() time.Time
	sleepFunc  func(time.Duration, <-chan struct{}) bool
}

const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	maxRefusers      = 64
)

// newGuardListener guards l; open counts the connections under the limit
// max (0: none), nil for a counter of its own.
func newGuardListener(l net.Listener, name string, max int, open *atomic.Int64, refuse func(net.Conn), log *slog.Logger) *guardListener {
	if open == nil {
		open = new(atomic.Int64)
	}
	return &guardListener{Listener: l, name: name, max: max, open: open, refuse: refuse, log: log,
		closed: make(chan struct{}), refusers: make(chan struct{}, maxRefusers),
		nowFunc: time.Now, sleepFunc: sleepOrClosed}
}

func sleepOrClosed(d time.Duration, closed <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-closed:
		return false
	}
}

// Accept returns the next connection under the limit; its only error is
// net.ErrClosed.
func (l *guardListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, net.ErrClosed
			}
			l.acceptFailed(err)
			delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
			if !l.sleepFunc(delay, l.closed) {
				return nil, net.ErrClosed
			}
			continue
		}
		delay = 0
		l.acceptOK()
		if l.max > 0 && l.open.Load() >= int64(l.max) {
			l.overTheLimit(c)
			continue
		}
		l.underTheLimit()
		l.open.Add(1)
		l.accepted.Add(1)
		return &countedConn{Conn: c, l: l}, nil
	}
}

// Close stops Accept, including one waiting out a backoff.
func (l *guardListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

func (l *guardListener) acceptFailed(err error) {
	l.acceptErrors.Add(1)
	fd := errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
	if fd {
		l.fdExhausted.Add(1)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = err.Error()
	l.failCount++
	if l.failing {
		return
	}
	l.failing, l.failSince = true, l.nowFunc()
	args := []any{"listener", l.name, "addr", l.Addr().String(), "error", err, "open", l.open.Load()}
	if fd {
		args = append(args, "hint", "out of file descriptors: raise the limit (ulimit -n) or lower --max-connections")
	}
	l.log.Error("accept failing; retrying with backoff until it works again", args...)
}

func (l *guardListener) acceptOK() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.failing {
		return
	}
	l.log.Warn("accepting again", "listener", l.name, "failedAccepts", l.failCount,
		"for", l.nowFunc().Sub(l.failSince).Round(time.Millisecond).String())
	l.failing, l.failCount = false, 0
}

func (l *guardListener) overTheLimit(c net.Conn) {
	l.refused.Add(1)
	l.mu.Lock()
	if !l.overLimit {
		l.overLimit = true
		l.log.Warn("connection limit reached: refusing new connections", "listener", l.name, "limit", l.max)
	}
	l.refusedRun++
	l.mu.Unlock()
	if l.refuse == nil {
		c.Close()
		return
	}
	select {
	case l.refusers <- struct{}{}:
		go func() {
			defer func() { <-l.refusers }()
			l.refuse(c)
		}()
	default: // a flood: no goroutine per connection, just close
		c.Close()
	}
}

func (l *guardListener) underTheLimit() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.overLimit {
		l.log.Info("below the connection limit again", "listener", l.name, "refused", l.refusedRun)
		l.overLimit, l.refusedRun = false, 0
	}
}

func (l *guardListener) stats() ListenerStats {
	l.mu.Lock()
	failing, last := l.failing, l.lastErr
	l.mu.Unlock()
	return ListenerStats{
		Addr: l.Addr().String(), Open: l.open.Load(), Accepted: l.accepted.Load(),
		AcceptErrors: l.acceptErrors.Load(), FDExhausted: l.fdExhausted.Load(), Failing: failing, LastAcceptError: last,
		MaxConnections: l.max, RefusedOverLimit: l.refused.Load(),
		ConnectTimeouts: l.connectTimeouts.Load(), ProtocolErrors: l.protocolErrors.Load(),
	}
}

// countedConn gives its slot back when closed (once).
type countedConn struct {
	net.Conn
	l    *guardListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// mqttListener wraps each connection in an mqttConn.
type mqttListener struct {
	net.Listener
	g       *guardListener
	timeout time.Duration
}

func (l *mqttListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(l.timeout))
	return &mqttConn{Conn: c, g: l.g}, nil
}

// mqttConn watches a connection until its CONNECT has been read whole.
// Until then a deadline set at accept bounds it: a socket that never sends
// a CONNECT, or sends it a byte at a time, is closed ConnectTimeout after it
// was accepted (ThingsBoard's transport has no such limit, so idle sockets
// there hold a file descriptor until the client goes; here they would
// exhaust the server's). Its first bytes are checked as Netty's MqttDecoder
// checks them in ThingsBoard: a first packet other than CONNECT, fixed
// header flags, an unknown protocol name or level, or the reserved connect
// flag set close the connection with no CONNACK (mochi would answer an
// MQTT 3.1.1 client with CONNACK 0x82, a code 3.1.1 does not have). Once
// the CONNECT is read the deadline is lifted and mochi's keepalive takes over.
type mqttConn struct {
	net.Conn
	g      *guardListener
	done   bool   // the CONNECT has been read; only Read's goroutine touches these
	head   []byte // the CONNECT's first bytes, as many as the checks need
	need   int64  // the CONNECT's length once known (0: not yet)
	seen   int64
	timed  bool
	broken error
}

// connectHead is how many bytes the checks need: the fixed header (at most
// 5), the protocol name (at most 2+6), the level and the flags.
const connectHead = 15

func (c *mqttConn) Read(b []byte) (int, error) {
	if c.broken != nil {
		return 0, c.broken
	}
	n, err := c.Conn.Read(b)
	if c.done {
		return n, err
	}
	if n > 0 {
		if perr := c.scan(b[:n]); perr != nil {
			c.g.protocolErrors.Add(1)
			c.broken = perr
			c.Conn.Close()
			return 0, perr
		}
		if c.done {
			c.Conn.SetDeadline(time.Time{})
		}
	}
	var ne net.Error
	if err != nil && !c.done && !c.timed && errors.As(err, &ne) && ne.Timeout() {
		c.timed = true
		c.g.connectTimeouts.Add(1)
	}
	return n, err
}

// errProtocol is a CONNECT the server refuses to parse.
type errProtocol string

func (e errProtocol) Error() string { return "MQTT protocol violation: " + string(e) }

// scan feeds bytes of the CONNECT to the checks.
func (c *mqttConn) scan(p []byte) error {
	c.seen += int64(len(p))
	if len(c.head) < connectHead {
		c.head = append(c.head, p[:min(len(p), connectHead-len(c.head))]...)
		if err := checkConnectHead(c.head, &c.need); err != nil {
			return err
		}
	}
	if c.need > 0 && c.seen >= c.need {
		c.done = true
	}
	return nil
}

// checkConnectHead checks as much of a CONNECT's start as h holds and sets
// *need to its whole length once the fixed header is complete.
func checkConnectHead(h []byte, need *int64) error {
	if h[0] != 0x10 {
		if h[0]>>4 == 1 {
			return errProtocol("CONNECT fixed header flags must be 0")
		}
		return errProtocol("the first packet must be CONNECT")
	}
	rem, i, mul := 0, 1, 1
	for {
		if i > 4 {
			return errProtocol("CONNECT remaining length exceeds 4 bytes")
		}
		if i >= len(h) {
			return nil // wait for more
		}
		b := h[i]
		i++
		rem += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
	}
	if rem < 10 {
		return errProtocol("CONNECT too short")
	}
	if rem > core.MaxPacketSize {
		return errProtocol("CONNECT larger than the maximum packet size")
	}
	*need = int64(i + rem)
	v := h[i:] // the variable header
	if len(v) < 2 {
		return nil
	}
	nameLen := int(v[0])<<8 | int(v[1])
	if nameLen != 4 && nameLen != 6 {
		return errProtocol("unknown protocol name")
	}
	if len(v) < 2+nameLen+2 {
		return nil
	}
	name, level, flags := string(v[2:2+nameLen]), v[2+nameLen], v[3+nameLen]
	switch {
	case name == "MQTT" && (level == 4 || level == 5), name == "MQIsdp" && level == 3:
	default:
		return errProtocol("unacceptable protocol name or level")
	}
	if flags&1 != 0 {
		return errProtocol("the reserved CONNECT flag must be 0") // [MQTT-3.1.2-3]
	}
	return nil
}

// refuseMQTT answers a connection over the limit as mochi answers a client
// over MaximumClients: CONNACK 3 "server unavailable" (MQTT 5: 0x89 "server
// busy"), after reading the CONNECT (closing with unread bytes would send a
// reset that can overtake the CONNACK).
func refuseMQTT(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	var head [connectHead]byte
	n, _ := io.ReadAtLeast(c, head[:], 2)
	var need int64
	if n < 2 || checkConnectHead(head[:n], &need) != nil {
		return
	}
	for n < connectHead && int64(n) < need {
		m, err := c.Read(head[n:])
		n += m
		if err != nil {
			return
		}
	}
	if need <= 0 || need > 4096 || checkConnectHead(head[:n], &need) != nil {
		return
	}
	if rest := need - int64(n); rest > 0 {
		if _, err := io.CopyN(io.Discard, c, rest); err != nil {
			return
		}
	}
	ack := []byte{0x20, 0x02, 0x00, 0x03}
	if level := connectLevel(head[:n]); level == 5 {
		ack = []byte{0x20, 0x03, 0x00, 0x89, 0x00}
	}
	c.Write(ack)
}

// connectLevel is the protocol level of a checked CONNECT head.
func connectLevel(h []byte) byte {
	i := 1
	for i < len(h) && h[i]&0x80 != 0 {
		i++
	}
	i++
	nameLen := int(h[i])<<8 | int(h[i+1])
	return h[i+2+nameLen]
}

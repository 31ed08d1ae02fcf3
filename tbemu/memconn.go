package tbemu

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// memPipe returns the two ends of an in-memory connection. Unlike net.Pipe
// it is buffered like a socket: a write returns once its bytes are queued
// (up to memPipeWindow per direction), so the writer does not wait for the
// reader to be scheduled; deadlines are stored, not armed, and cost a timer
// only when a call has to wait. In a fleet of thousands that is most of
// what the in-memory transport costs.
func memPipe() (net.Conn, net.Conn) {
	a, b := newPipeBuf(), newPipeBuf()
	return &memConn{rd: a, wr: b, local: memAddr{}, remote: memAddr{}},
		&memConn{rd: b, wr: a, local: memAddr{}, remote: memAddr{}}
}

// memPipeWindow bounds the bytes queued in one direction: a writer waits
// beyond it, as on a socket whose buffer is full. An OTA chunk of a whole
// file is written in several turns.
const memPipeWindow = 256 << 10

// pipeBuf is one direction: bytes written and not yet read.
type pipeBuf struct {
	// One timer for each side's waits, taken and put back (concurrent
	// writers each get their own): a deadline that must be waited on no
	// longer costs a new timer each time.
	rtimer, wtimer atomic.Pointer[time.Timer]
	mu             sync.Mutex
	buf            []byte
	box            *[]byte // from bigBufs with buf, to put buf back in without allocating
	off            int     // read position in buf
	closed         bool    // the writer closed: readers get EOF once drained
	gone           bool    // the reader closed: writers get EPIPE
	readable       chan struct{}
	writable       chan struct{}
}

func newPipeBuf() *pipeBuf {
	return &pipeBuf{readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// wait blocks until c is signalled or the deadline passes.
func wait(c chan struct{}, deadline time.Time, timer *atomic.Pointer[time.Timer]) error {
	if deadline.IsZero() {
		<-c
		return nil
	}
	d := time.Until(deadline)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	// Since Go 1.23 a stopped or reset timer delivers nothing stale, so one
	// can be reused.
	t := timer.Swap(nil)
	if t == nil {
		t = time.NewTimer(d)
	} else {
		t.Reset(d)
	}
	defer func() { t.Stop(); timer.Store(t) }()
	select {
	case <-c:
		return nil
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
}

// bigBufs holds drained buffers of large writes (OTA chunks), so that a
// connection that just gave one back does not allocate the next: sync.Pool
// keeps them per CPU and lets the GC take them when idle, so idle
// connections still hold only a small buffer each.
var bigBufs sync.Pool

const smallBuf = 2048

// expired: a deadline that has passed fails the call, data or not (as on a
// socket).
func expired(deadline time.Time) bool { return !deadline.IsZero() && !time.Now().Before(deadline) }

func (p *pipeBuf) read(b []byte, deadline func() time.Time) (int, error) {
	for {
		if expired(deadline()) {
			return 0, os.ErrDeadlineExceeded
		}
		p.mu.Lock()
		if p.gone {
			p.mu.Unlock()
			return 0, net.ErrClosed
		}
		if n := len(p.buf) - p.off; n > 0 {
			n = copy(b, p.buf[p.off:])
			p.off += n
			if p.off == len(p.buf) {
				// Drained: keep a small buffer for the next packet, give a
				// large one (an OTA chunk's) back, so 10,000 idle connections
				// hold a few KiB each, not their largest burst.
				p.buf, p.off = p.buf[:0], 0
				if cap(p.buf) > smallBuf {
					box := p.box
					if box == nil {
						box = new([]byte)
					}
					*box, p.box, p.buf = p.buf, nil, nil
					bigBufs.Put(box)
				}
			}
			more := len(p.buf) > p.off
			p.mu.Unlock()
			signal(p.writable)
			if more {
				signal(p.readable) // for the next read
			}
			return n, nil
		}
		if p.closed {
			p.mu.Unlock()
			return 0, io.EOF
		}
		p.mu.Unlock()
		if err := wait(p.readable, deadline(), &p.rtimer); err != nil {
			return 0, err
		}
	}
}

func (p *pipeBuf) write(b []byte, deadline func() time.Time) (int, error) {
	written := 0
	for {
		if expired(deadline()) {
			return written, os.ErrDeadlineExceeded
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return written, net.ErrClosed // this end was closed
		}
		if p.gone {
			p.mu.Unlock()
			return written, &net.OpError{Op: "write", Net: "mem", Err: os.NewSyscallError("write", syscall.EPIPE)}
		}
		if p.off > 0 && p.off == len(p.buf) {
			p.buf, p.off = p.buf[:0], 0
		}
		if room := memPipeWindow - (len(p.buf) - p.off); room > 0 {
			if p.off > len(p.buf)/2 && p.off > 0 { // reclaim the read part
				p.buf = append(p.buf[:0], p.buf[p.off:]...)
				p.off = 0
			}
			n := min(room, len(b)-written)
			if len(p.buf) == 0 && n > smallBuf && cap(p.buf) < n {
				if box, _ := bigBufs.Get().(*[]byte); box != nil && cap(*box) >= n {
					p.buf, *box, p.box = (*box)[:0], nil, box // the box carries the next one back
				}
			}
			p.buf = append(p.buf, b[written:written+n]...)
			written += n
			p.mu.Unlock()
			signal(p.readable)
			if written == len(b) {
				return written, nil
			}
			continue
		}
		p.mu.Unlock()
		if err := wait(p.writable, deadline(), &p.wtimer); err != nil {
			return written, err
		}
	}
}

// shutWrite: no more bytes will come (the writer closed).
func (p *pipeBuf) shutWrite() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	signal(p.readable)
}

// shutRead: nobody reads any more (the reader closed).
func (p *pipeBuf) shutRead() {
	p.mu.Lock()
	p.gone, p.buf, p.off = true, nil, 0
	p.mu.Unlock()
	signal(p.writable)
	signal(p.readable)
}

// memConn is one end of memPipe.
type memConn struct {
	rd, wr        *pipeBuf
	local, remote net.Addr

	dmu       sync.Mutex
	rdl, wdl  time.Time
	closeOnce sync.Once
}

func (c *memConn) readDeadline() time.Time {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return c.rdl
}

func (c *memConn) writeDeadline() time.Time {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return c.wdl
}

func (c *memConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	return c.rd.read(b, c.readDeadline)
}

func (c *memConn) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	return c.wr.write(b, c.writeDeadline)
}

// Close ends both directions: the peer reads what was queued, then EOF;
// its writes fail.
func (c *memConn) Close() error {
	c.closeOnce.Do(func() {
		c.wr.shutWrite()
		c.rd.shutRead()
	})
	return nil
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

func (c *memConn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	c.rdl, c.wdl = t, t
	c.dmu.Unlock()
	// A call already waiting looks again (and sees the new deadline on its
	// next wait): wake it.
	signal(c.rd.readable)
	signal(c.wr.writable)
	return nil
}

func (c *memConn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	c.rdl = t
	c.dmu.Unlock()
	signal(c.rd.readable)
	return nil
}

func (c *memConn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	c.wdl = t
	c.dmu.Unlock()
	signal(c.wr.writable)
	return nil
}

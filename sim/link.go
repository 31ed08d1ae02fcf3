package sim

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tbsim/tbsim/device"
)

// Impairment degrades the link between devices and the server: every write
// from a device is delayed by Latency plus up to Jitter, and with probability
// Loss by a further retransmission timeout (what packet loss looks like to a
// TCP application). The zero value is a clean link.
type Impairment struct {
	Latency time.Duration
	Jitter  time.Duration
	Loss    float64
	RTO     time.Duration // default 200 ms (Linux's minimum TCP RTO)
}

// Link wraps a dialer so the impairment can be changed while connections are open.
type Link struct {
	dial device.Dialer
	imp  atomic.Pointer[Impairment]
	mu   sync.Mutex
	rng  *rand.Rand
}

// NewLink wraps dial; seed drives the jitter and loss draws.
func NewLink(dial device.Dialer, seed uint64) *Link {
	return &Link{dial: dial, rng: rand.New(rand.NewPCG(seed, 0x11))}
}

// Set changes the impairment of every connection, open or future.
func (l *Link) Set(i Impairment) {
	if i.RTO == 0 {
		i.RTO = 200 * time.Millisecond
	}
	l.imp.Store(&i)
}

// Clear restores a clean link.
func (l *Link) Clear() { l.imp.Store(nil) }

// Dial is the impaired dialer.
func (l *Link) Dial(ctx context.Context) (net.Conn, error) {
	c, err := l.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &impairedConn{Conn: c, l: l}, nil
}

func (l *Link) delay() time.Duration {
	i := l.imp.Load()
	if i == nil {
		return 0
	}
	d := i.Latency
	l.mu.Lock()
	if i.Jitter > 0 {
		d += time.Duration(l.rng.Int64N(int64(i.Jitter)))
	}
	if i.Loss > 0 && l.rng.Float64() < i.Loss {
		d += i.RTO
	}
	l.mu.Unlock()
	return d
}

type impairedConn struct {
	net.Conn
	l *Link
}

func (c *impairedConn) Write(p []byte) (int, error) {
	if d := c.l.delay(); d > 0 {
		time.Sleep(d)
	}
	return c.Conn.Write(p)
}

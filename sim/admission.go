package sim

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Admission limits the connection handshakes in flight (device.Gate). With
// a fixed limit it is a semaphore; adaptive, it is AIMD as TCP runs its
// window: the limit grows by one per handshake while handshakes are quick
// (slow start), then by 1/limit, and shrinks by 30% at most once per second
// when a handshake took longer than Slow or the event loop is lagging. So a
// fleet limited by its own CPU queues devices in FIFO order instead of
// letting their timeouts fire and their retries add more work. The ramp
// stays an upper bound: admission only ever delays a connect.
type Admission struct {
	// Slow is the handshake time that counts as congestion (default 2.5 s,
	// a quarter of the firmware's 10 s connect timeout).
	Slow time.Duration

	mu        sync.Mutex
	limit     float64
	fixed     bool
	slowStart bool
	minLimit  float64
	inflight  int
	waiters   []chan struct{}
	lastCut   time.Time
	lagging   func() bool

	Wait      Trend // time devices waited for a slot (only those that waited)
	handshake Trend
	peak      atomic.Int64
	cuts      atomic.Int64
}

// NewAdmission returns an adaptive gate when fixed is 0, else a fixed one.
// lagging, if set, reports that the simulator's event loop is running late.
func NewAdmission(fixed int, lagging func() bool) *Admission {
	a := &Admission{Slow: 2500 * time.Millisecond, limit: 32, slowStart: true, minLimit: 4, lagging: lagging}
	if fixed > 0 {
		a.limit, a.fixed = float64(fixed), true
	}
	return a
}

// TryAcquire takes a slot if one is free and nobody is queued before us.
func (a *Admission) TryAcquire() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.waiters) == 0 && a.inflight < a.cap() {
		a.take()
		return true
	}
	return false
}

// Acquire waits in FIFO order for a slot.
func (a *Admission) Acquire(ctx context.Context) bool {
	start := time.Now()
	a.mu.Lock()
	if len(a.waiters) == 0 && a.inflight < a.cap() {
		a.take()
		a.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	a.waiters = append(a.waiters, ch)
	a.mu.Unlock()
	select {
	case <-ch: // the slot was taken for us
		a.Wait.Observe(time.Since(start))
		return true
	case <-ctx.Done():
		a.mu.Lock()
		defer a.mu.Unlock()
		for i, w := range a.waiters {
			if w == ch {
				a.waiters = append(a.waiters[:i], a.waiters[i+1:]...)
				return false
			}
		}
		// Granted while we gave up: hand the slot on.
		a.inflight--
		a.grant()
		return false
	}
}

// Release frees a slot and adapts the limit to how long it was held.
func (a *Admission) Release(d time.Duration, ok bool) {
	a.handshake.Observe(d)
	a.mu.Lock()
	defer a.mu.Unlock()
	// The window grows only while it is used (as TCP validates its cwnd):
	// a limit far above the handshakes in flight would mean nothing when
	// the load arrives.
	used := float64(a.inflight) >= a.limit/2
	a.inflight--
	if !a.fixed {
		congested := d > a.Slow || (a.lagging != nil && a.lagging())
		switch {
		case congested:
			if now := time.Now(); now.Sub(a.lastCut) >= time.Second {
				a.limit = max(a.minLimit, a.limit*0.7)
				a.lastCut, a.slowStart = now, false
				a.cuts.Add(1)
			}
		case !used:
		case a.slowStart:
			a.limit++
		default:
			a.limit += 1 / a.limit
		}
	}
	a.grant()
}

func (a *Admission) cap() int { return int(a.limit) }

func (a *Admission) take() {
	a.inflight++
	if n := int64(a.inflight); n > a.peak.Load() {
		a.peak.Store(n)
	}
}

// grant hands free slots to the queue, oldest first; the caller holds mu.
func (a *Admission) grant() {
	for len(a.waiters) > 0 && a.inflight < a.cap() {
		ch := a.waiters[0]
		a.waiters = a.waiters[1:]
		a.take()
		close(ch)
	}
}

// AdmissionStats is the gate at one instant.
type AdmissionStats struct {
	Adaptive bool       `json:"adaptive"`
	Limit    int        `json:"limit"`
	InFlight int        `json:"inFlight"`
	Queued   int        `json:"queued"`
	Peak     int64      `json:"peakInFlight"`
	Cuts     int64      `json:"limitCuts"` // times congestion shrank the limit
	Wait     TrendStats `json:"-"`
}

// Stats returns the gate's state.
func (a *Admission) Stats() AdmissionStats {
	a.mu.Lock()
	s := AdmissionStats{Adaptive: !a.fixed, Limit: a.cap(), InFlight: a.inflight, Queued: len(a.waiters)}
	a.mu.Unlock()
	s.Peak, s.Cuts, s.Wait = a.peak.Load(), a.cuts.Load(), a.Wait.Stats()
	return s
}

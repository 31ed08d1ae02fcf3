package emutest

import (
	"container/heap"
	"sync"
	"time"
)

// Clock is a manual clock: time moves only when Advance or AdvanceTo is
// called, and the functions scheduled with At run then, on the caller's
// goroutine, in time order (first scheduled first at equal times), each
// seeing Now equal to its own time. It is safe for concurrent use, but its
// functions run one at a time.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers timerHeap
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// At schedules f at t (at the current time if t has passed); it never runs f
// itself. stop cancels it and reports whether it was still pending.
func (c *Clock) At(t time.Time, f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Before(c.now) {
		t = c.now
	}
	c.seq++
	tm := &timer{at: t, seq: c.seq, f: f, index: -1}
	heap.Push(&c.timers, tm)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if tm.index < 0 {
			return false
		}
		heap.Remove(&c.timers, tm.index)
		return true
	}
}

// Advance moves the clock forward by d, running every function due by then.
func (c *Clock) Advance(d time.Duration) { c.AdvanceTo(c.Now().Add(d)) }

// AdvanceTo moves the clock to t (never backwards), running every function
// due by then, including those they schedule.
func (c *Clock) AdvanceTo(t time.Time) {
	for c.runNext(t) {
	}
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
}

// Run runs every function due now (scheduled at or before the current time).
func (c *Clock) Run() { c.AdvanceTo(c.Now()) }

// Next returns the time of the next scheduled function.
func (c *Clock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].at, true
}

// Pending returns the number of scheduled functions.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// runNext runs the first function due by limit, if any.
func (c *Clock) runNext(limit time.Time) bool {
	c.mu.Lock()
	if len(c.timers) == 0 || c.timers[0].at.After(limit) {
		c.mu.Unlock()
		return false
	}
	tm := heap.Pop(&c.timers).(*timer)
	if tm.at.After(c.now) {
		c.now = tm.at
	}
	c.mu.Unlock()
	tm.f()
	return true
}

type timer struct {
	at    time.Time
	seq   uint64
	f     func()
	index int // in the heap; -1 once run or stopped
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

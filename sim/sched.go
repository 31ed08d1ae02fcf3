package sim

import (
	"container/heap"
	"time"
)

// Sched is a discrete-event scheduler: one virtual clock and one queue of
// events, run by one goroutine. Events at the same instant run in the order
// they were scheduled, so a run is a pure function of its inputs and seed.
// Nothing in it sleeps: time jumps to the next event.
type Sched struct {
	now  time.Time
	q    eventQueue
	seq  uint64
	runs uint64
}

// Epoch is where virtual time starts: a fixed instant, so logs and reports
// of two runs are byte-identical.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewSched returns a scheduler whose clock reads start.
func NewSched(start time.Time) *Sched { return &Sched{now: start} }

type event struct {
	at  time.Time
	seq uint64
	f   func()
	idx int // position in the heap; -1 once run or stopped
}

// Timer is a scheduled event; Stop cancels it.
type Timer struct {
	s *Sched
	e *event
}

// Stop cancels the event; false if it already ran or was stopped.
func (t Timer) Stop() bool {
	if t.e == nil || t.e.idx < 0 {
		return false
	}
	heap.Remove(&t.s.q, t.e.idx)
	t.e.idx = -1
	return true
}

// Now returns the virtual time.
func (s *Sched) Now() time.Time { return s.now }

// At runs f at t (now, if t is in the past).
func (s *Sched) At(t time.Time, f func()) Timer {
	if t.Before(s.now) {
		t = s.now
	}
	s.seq++
	e := &event{at: t, seq: s.seq, f: f}
	heap.Push(&s.q, e)
	return Timer{s, e}
}

// After runs f after d.
func (s *Sched) After(d time.Duration, f func()) Timer { return s.At(s.now.Add(d), f) }

// Pending is the number of events queued.
func (s *Sched) Pending() int { return len(s.q) }

// Runs is the number of events run so far.
func (s *Sched) Runs() uint64 { return s.runs }

// Next returns when the next event is due.
func (s *Sched) Next() (time.Time, bool) {
	if len(s.q) == 0 {
		return time.Time{}, false
	}
	return s.q[0].at, true
}

// Step runs the next event; false when the queue is empty.
func (s *Sched) Step() bool {
	if len(s.q) == 0 {
		return false
	}
	e := heap.Pop(&s.q).(*event)
	e.idx = -1
	s.now = e.at
	s.runs++
	e.f()
	return true
}

// RunUntil runs every event due up to deadline, checking stop after each
// instant's events; it returns true as soon as stop holds (the clock then
// reads that instant), false at the deadline (the clock then reads deadline).
func (s *Sched) RunUntil(deadline time.Time, stop func() bool) bool {
	if stop != nil && stop() {
		return true
	}
	for len(s.q) > 0 && !s.q[0].at.After(deadline) {
		at := s.q[0].at
		for len(s.q) > 0 && s.q[0].at.Equal(at) {
			s.Step()
		}
		if stop != nil && stop() {
			return true
		}
	}
	if deadline.After(s.now) {
		s.now = deadline
	}
	return false
}

// eventQueue orders events by time, then by scheduling order.
type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}
func (q *eventQueue) Push(x any) {
	e := x.(*event)
	e.idx = len(*q)
	*q = append(*q, e)
}
func (q *eventQueue) Pop() any {
	old := *q
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*q = old[:n-1]
	return e
}

package sim

import "time"

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
	at  int64 // unix ns: an integer compare in the heap
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
	t.s.q.remove(t.e.idx)
	return true
}

// NewTimer returns a stopped timer that runs f when due; Reset arms it.
// One timer re-armed many times costs no allocation per arming.
func (s *Sched) NewTimer(f func()) Timer {
	return Timer{s, &event{f: f, idx: -1}}
}

// Reset (re)arms the timer for t, as if newly scheduled now.
func (t Timer) Reset(at time.Time) {
	s := t.s
	if t.e.idx >= 0 {
		s.q.remove(t.e.idx)
	}
	if at.Before(s.now) {
		at = s.now
	}
	s.seq++
	t.e.at, t.e.seq = at.UnixNano(), s.seq
	s.q.push(t.e)
}

// Armed reports whether the timer is waiting to run.
func (t Timer) Armed() bool { return t.e != nil && t.e.idx >= 0 }

// Now returns the virtual time.
func (s *Sched) Now() time.Time { return s.now }

// At runs f at t (now, if t is in the past).
func (s *Sched) At(t time.Time, f func()) Timer {
	if t.Before(s.now) {
		t = s.now
	}
	s.seq++
	e := &event{at: t.UnixNano(), seq: s.seq, f: f}
	s.q.push(e)
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
	return time.Unix(0, s.q[0].at).UTC(), true
}

// Step runs the next event; false when the queue is empty.
func (s *Sched) Step() bool {
	if len(s.q) == 0 {
		return false
	}
	e := s.q.pop()
	if e.at != s.now.UnixNano() {
		s.now = time.Unix(0, e.at).UTC()
	}
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
	end := deadline.UnixNano()
	for len(s.q) > 0 && s.q[0].at <= end {
		at := s.q[0].at
		for len(s.q) > 0 && s.q[0].at == at {
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

// eventQueue is a 4-ary min-heap of events by (time, scheduling order),
// typed (no interface calls) and shallow: the simulator pushes and pops
// millions of events.
type eventQueue []*event

func (q eventQueue) less(i, j int) bool {
	a, b := q[i], q[j]
	return a.at < b.at || a.at == b.at && a.seq < b.seq
}

func (q eventQueue) swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}

func (q *eventQueue) push(e *event) {
	e.idx = len(*q)
	*q = append(*q, e)
	q.up(e.idx)
}

func (q *eventQueue) pop() *event {
	e := (*q)[0]
	q.remove(0)
	return e
}

// remove takes out the event at i.
func (q *eventQueue) remove(i int) {
	h := *q
	n := len(h) - 1
	e := h[i]
	if i != n {
		h.swap(i, n)
	}
	h[n] = nil
	*q = h[:n]
	if i != n {
		if !q.down(i) {
			q.up(i)
		}
	}
	e.idx = -1
}

func (q eventQueue) up(i int) {
	for i > 0 {
		p := (i - 1) / 4
		if !q.less(i, p) {
			return
		}
		q.swap(i, p)
		i = p
	}
}

// down sifts i toward the leaves; it reports whether it moved.
func (q eventQueue) down(i int) bool {
	start, n := i, len(q)
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if q.less(k, m) {
				m = k
			}
		}
		if !q.less(m, i) {
			break
		}
		q.swap(i, m)
		i = m
	}
	return i > start
}

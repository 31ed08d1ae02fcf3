package sim

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// Events run in (time, scheduling order), stopped ones never, re-armed
// timers at their new time: checked against a sort of the same schedule.
func TestSchedOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := NewSched(Epoch)
	type rec struct {
		at  time.Duration
		seq int
	}
	var want, got []rec
	var timers []Timer
	for i := range 5000 {
		at := time.Duration(rng.IntN(100)) * time.Millisecond
		r := rec{at, i}
		timers = append(timers, s.At(Epoch.Add(at), func() { got = append(got, r) }))
		want = append(want, r)
	}
	// Stop a third of them.
	stopped := map[int]bool{}
	for i := 0; i < 5000; i += 3 {
		if !timers[i].Stop() {
			t.Fatalf("Stop of a pending event failed")
		}
		stopped[i] = true
	}
	want = slices.DeleteFunc(want, func(r rec) bool { return stopped[r.seq] })
	slices.SortStableFunc(want, func(a, b rec) int { return int(a.at - b.at) })
	s.RunUntil(Epoch.Add(time.Second), nil)
	if !slices.Equal(got, want) {
		t.Fatalf("run order differs from (time, scheduling order)")
	}
	if s.Now() != Epoch.Add(time.Second) {
		t.Fatalf("clock %s after RunUntil; want the deadline", s.Now())
	}

	// A reusable timer: re-armed before it fires, it fires once, at the new time.
	fired := []time.Time{}
	tm := s.NewTimer(func() { fired = append(fired, s.Now()) })
	tm.Reset(s.Now().Add(time.Second))
	tm.Reset(s.Now().Add(2 * time.Second))
	s.RunUntil(s.Now().Add(3*time.Second), nil)
	if len(fired) != 1 || fired[0] != Epoch.Add(3*time.Second) {
		t.Fatalf("timer fired at %v; want once at +3s", fired)
	}
	if tm.Armed() || tm.Stop() {
		t.Fatal("a fired timer is still armed")
	}
}

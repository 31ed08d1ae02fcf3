package sim

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A fixed gate is a FIFO semaphore: the queue is served oldest first.
func TestAdmissionFixedFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := NewAdmission(1, nil)
		if !a.TryAcquire() {
			t.Fatal("first TryAcquire failed")
		}
		if a.TryAcquire() {
			t.Fatal("second TryAcquire got a slot beyond the limit")
		}
		order := make(chan int, 3)
		for i := range 3 {
			go func() {
				if a.Acquire(context.Background()) {
					order <- i
				}
			}()
			synctest.Wait() // queued in this order
		}
		for want := range 3 {
			a.Release(time.Millisecond, true)
			synctest.Wait()
			if got := <-order; got != want {
				t.Fatalf("slot %d went to waiter %d", want, got)
			}
		}
		if s := a.Stats(); s.InFlight != 1 || s.Queued != 0 || s.Wait.Count != 3 {
			t.Fatalf("stats %+v; want 1 in flight, none queued, 3 waits", s)
		}
	})
}

// A waiter that gives up leaves the queue; a slot granted as it gave up is
// handed on, not lost.
func TestAdmissionCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := NewAdmission(1, nil)
		a.TryAcquire()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan bool)
		go func() { done <- a.Acquire(ctx) }()
		synctest.Wait()
		cancel()
		if <-done {
			t.Fatal("a cancelled Acquire reported a slot")
		}
		a.Release(time.Millisecond, true)
		if !a.TryAcquire() {
			t.Fatal("the slot was lost")
		}
	})
}

// Adaptive: quick handshakes grow the limit while it is in use (not while
// idle); slow ones, or a lagging event loop, cut it by 30% at most once a
// second.
func TestAdmissionAIMD(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lag := false
		a := NewAdmission(0, func() bool { return lag })
		start := a.Stats().Limit
		for range 10 { // one at a time: the window is not used, so it stays
			a.TryAcquire()
			a.Release(5*time.Millisecond, true)
		}
		if got := a.Stats().Limit; got != start {
			t.Fatalf("an idle gate grew: %d -> %d", start, got)
		}
		fill := func() int { // take every free slot
			n := 0
			for a.TryAcquire() {
				n++
			}
			return n
		}
		n := fill()
		for range n / 2 { // the first half of releases happen with the window in use
			a.Release(5*time.Millisecond, true)
		}
		if got := a.Stats().Limit; got <= start {
			t.Fatalf("limit after quick handshakes in a full window = %d; want above %d (slow start)", got, start)
		}
		for range n - n/2 {
			a.Release(5*time.Millisecond, true)
		}
		grown := a.Stats().Limit
		fill()
		a.Release(3*time.Second, false)
		cut := a.Stats().Limit
		if cut != int(float64(grown)*0.7) {
			t.Fatalf("limit after a slow handshake = %d; want %d", cut, int(float64(grown)*0.7))
		}
		a.Release(3*time.Second, false)
		if got := a.Stats().Limit; got != cut {
			t.Fatalf("a second cut within a second: %d -> %d", cut, got)
		}
		time.Sleep(time.Second) // virtual time
		lag = true
		a.Release(time.Millisecond, true)
		if got := a.Stats().Limit; got >= cut {
			t.Fatalf("a lagging event loop did not cut the limit (%d)", got)
		}
		if a.Stats().Cuts != 2 {
			t.Fatalf("cuts = %d; want 2", a.Stats().Cuts)
		}
	})
}

// The generator is labelled bound when deadlines fire late, and says so.
func TestHealthLabel(t *testing.T) {
	var h Health
	for range 1000 {
		h.Late(time.Millisecond)
	}
	if s := h.Stats(); s.Bound {
		t.Fatalf("1 ms lag labelled generator-bound: %s", s.Why)
	}
	for range 50 {
		h.Late(3400 * time.Millisecond)
	}
	s := h.Stats()
	if !s.Bound {
		t.Fatalf("3.4 s lag not labelled: %s", s.Why)
	}
	for _, want := range []string{"deadlines fired up to 3.4s late", "latencies above describe tbsim, not the server"} {
		if !strings.Contains(s.Why, want) {
			t.Errorf("Why = %q; want it to say %q", s.Why, want)
		}
	}
}

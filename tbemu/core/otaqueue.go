package core

import (
	"sync"
	"time"
)

// otaQueue releases queued devices like ThingsBoard's OTA queue: at most
// OTAPackSize per OTAPackInterval. A window of one interval opens with the
// first release after an idle spell; devices queued while it has room are
// released at once (at the current instant, on the clock), the rest at the
// window boundaries, a pack per window, exactly on schedule. Nothing is
// scheduled while the queue is empty.
type otaQueue struct {
	mu       sync.Mutex
	items    []string  // device ids, first queued first
	start    time.Time // the current window's start (zero: none yet)
	released int       // devices released in the current window
	busy     bool      // a release is scheduled or running
	stop     func() bool
}

func (c *Core) enqueueOTA(id string) {
	q := &c.ota
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = append(q.items, id)
	if !q.busy {
		c.scheduleRelease()
	}
}

// scheduleRelease schedules the next pack: now if the window has room or
// has ended, else at its end. The caller holds q.mu.
func (c *Core) scheduleRelease() {
	q := &c.ota
	at := c.clock.Now()
	if end := q.start.Add(c.opts.OTAPackInterval); !q.start.IsZero() && q.released >= c.opts.OTAPackSize && at.Before(end) {
		at = end
	}
	q.busy = true
	q.stop = c.at(at, func() { c.releaseOTA(at) })
}

// releaseOTA initiates the next pack; at is the time it was scheduled for.
func (c *Core) releaseOTA(at time.Time) {
	q := &c.ota
	q.mu.Lock()
	interval := c.opts.OTAPackInterval
	if q.start.IsZero() || !c.clock.Now().Before(q.start.Add(interval)) {
		// A new window: at the scheduled time (not when a busy real clock
		// got round to it, so packs do not drift), never inside the last one.
		start := at
		if end := q.start.Add(interval); !q.start.IsZero() && start.Before(end) {
			start = end
		}
		q.start, q.released = start, 0
	}
	n := min(c.opts.OTAPackSize-q.released, len(q.items))
	batch := append([]string(nil), q.items[:n]...)
	q.items = q.items[n:]
	q.released += n
	q.mu.Unlock()

	for _, id := range batch {
		c.initiate(id)
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 {
		c.scheduleRelease()
	} else {
		q.busy, q.stop = false, nil
	}
}

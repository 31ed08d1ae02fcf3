package core

import (
	"sort"
	"sync"
	"time"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// otaQueue releases queued devices like ThingsBoard's OTA queue: at most
// OTAPackSize per OTAPackInterval, spread evenly (see otaPace: the "pack"
// and "window" below are one device and interval/size, or a few devices
// per 50 ms tick for a fast queue). A window opens with the
// first release after an idle spell; devices queued while it has room are
// released at once (at the current instant, on the clock), the rest at the
// window boundaries, a pack per window, exactly on schedule. Nothing is
// scheduled while the queue is empty.
//
// Each queued device's place (devState.Queued, from seq) is persisted with
// its state, so New releases the queue again, in order, after a restart.
type otaQueue struct {
	mu       sync.Mutex
	seq      uint64    // the last place given
	items    []string  // device ids, first queued first
	start    time.Time // the current window's start (zero: none yet)
	released int       // devices released in the current window
	busy     bool      // a release is scheduled or running
	stop     func() bool
}

// enqueueOTA queues a device; st is its state, in which its place is kept.
func (c *Core) enqueueOTA(id string, st *devState) {
	q := &c.ota
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	st.mu.Lock()
	st.Queued = q.seq
	st.mu.Unlock()
	c.store.markDirty(id, st)
	q.items = append(q.items, id)
	if !q.busy {
		c.scheduleRelease()
	}
}

// restoreOTAQueue queues again, after a restart, every device the queue had
// not released: those with a place, in the order of their places; then those
// QUEUED in a state file written before places were kept, in the order they
// were queued (target_fw_ts, then name); then those whose assignment reached
// the file but whose QUEUED state did not (a kill -9 within a flush
// interval of it), by name, as a rollout queues them.
func (c *Core) restoreOTAQueue() {
	type entry struct {
		id, name string
		place    uint64
		ts       int64
	}
	var placed, legacy, lost []entry
	st := c.store
	st.mu.RLock()
	for id, d := range st.devices {
		ds := st.state[id]
		pkg := st.packages[st.assigned(d)]
		if ds == nil || pkg == nil {
			continue
		}
		ds.mu.Lock()
		text := func(k string) string { s, _ := ds.Latest[k].Value.Text(); return s }
		e := entry{id: id, name: d.Name, place: ds.Queued}
		e.ts, _ = ds.Latest[tbapi.KeyTargetFwTs].Value.Int64()
		switch {
		case text(tbapi.KeyTargetFwTitle) != pkg.Title || text(tbapi.KeyTargetFwVersion) != pkg.Version:
			lost = append(lost, e)
		case ds.Queued > 0:
			placed = append(placed, e)
		case text(tbapi.KeyFwState) == string(tbapi.FwQueued):
			legacy = append(legacy, e)
		}
		ds.mu.Unlock()
	}
	st.mu.RUnlock()
	sort.Slice(placed, func(i, j int) bool { return placed[i].place < placed[j].place })
	sort.Slice(legacy, func(i, j int) bool {
		if legacy[i].ts != legacy[j].ts {
			return legacy[i].ts < legacy[j].ts
		}
		return legacy[i].name < legacy[j].name
	})
	sort.Slice(lost, func(i, j int) bool { return lost[i].name < lost[j].name })

	q := &c.ota
	q.mu.Lock()
	for _, e := range placed {
		q.items = append(q.items, e.id)
		q.seq = max(q.seq, e.place)
	}
	q.mu.Unlock()
	for _, e := range legacy {
		if ds := st.stateOf(e.id); ds != nil {
			c.enqueueOTA(e.id, ds)
		}
	}
	for _, e := range lost {
		c.firmwareChanged(e.id)
	}
	q.mu.Lock()
	if len(q.items) > 0 && !q.busy {
		c.scheduleRelease()
	}
	n := len(q.items)
	q.mu.Unlock()
	if n > 0 {
		c.log.Info("OTA queue restored", "devices", n, "placed", len(placed), "legacy", len(legacy), "reassigned", len(lost))
	}
}

// QueuedOTA returns the device ids the OTA queue has not released yet, in
// the order it will release them.
func (c *Core) QueuedOTA() []string {
	c.ota.mu.Lock()
	defer c.ota.mu.Unlock()
	return append([]string(nil), c.ota.items...)
}

// scheduleRelease schedules the next pack: now if the window has room or
// has ended, else at its end. The caller holds q.mu.
// otaPace is the queue's effective pack: ThingsBoard does not release
// OTAPackSize devices at once but spreads them over the interval, one every
// OTAPackInterval/OTAPackSize (DefaultTbCoreConsumerService
// .processFirmwareMsgs sleeps that long after each device; seen on 4.3: about
// one device per 600 ms at 100 per 60 s, the first at once). Spacings under
// otaMinTick are grouped into packs of one tick, so a fast queue (the
// default 100 per second) does not write the state file per device.
func (c *Core) otaPace() (size int, interval time.Duration) {
	spacing := c.opts.OTAPackInterval / time.Duration(c.opts.OTAPackSize)
	if spacing <= 0 {
		spacing = time.Nanosecond
	}
	if spacing >= otaMinTick {
		return 1, spacing
	}
	n := int((otaMinTick + spacing - 1) / spacing)
	return n, time.Duration(n) * spacing
}

const otaMinTick = 50 * time.Millisecond

func (c *Core) scheduleRelease() {
	otaSize, otaInterval := c.otaPace()
	q := &c.ota
	at := c.clock.Now()
	if end := q.start.Add(otaInterval); !q.start.IsZero() && q.released >= otaSize && at.Before(end) {
		at = end
	}
	q.busy = true
	q.stop = c.at(at, func() { c.releaseOTA(at) })
}

// releaseOTA initiates the next pack; at is the time it was scheduled for.
func (c *Core) releaseOTA(at time.Time) {
	otaSize, otaInterval := c.otaPace()
	q := &c.ota
	q.mu.Lock()
	interval := otaInterval
	if q.start.IsZero() || !c.clock.Now().Before(q.start.Add(interval)) {
		// A new window: at the scheduled time (not when a busy real clock
		// got round to it, so packs do not drift), never inside the last one.
		start := at
		if end := q.start.Add(interval); !q.start.IsZero() && start.Before(end) {
			start = end
		}
		q.start, q.released = start, 0
	}
	n := min(otaSize-q.released, len(q.items))
	batch := append([]string(nil), q.items[:n]...)
	q.items = q.items[n:]
	q.released += n
	q.mu.Unlock()

	// The whole pack is written in one transaction before any device is
	// told: one write per pack, not two per device, and a device never acts
	// on a release that a kill -9 could undo.
	pushes := make([][][]byte, len(batch))
	for i, id := range batch {
		pushes[i] = c.initiate(id)
	}
	if err := c.store.flushDirty(); err != nil {
		c.log.Error("OTA queue: write the released pack", "error", err)
	}
	for i, id := range batch {
		for _, p := range pushes[i] {
			c.push(id, p)
		}
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 {
		c.scheduleRelease()
	} else {
		q.busy, q.stop = false, nil
	}
}

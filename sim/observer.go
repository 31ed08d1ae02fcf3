package sim

import (
	"sync/atomic"
	"time"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/tbapi"
)

// Metrics are the fleet's measurements; every method is safe to call
// concurrently and none takes a lock on the hot path.
type Metrics struct {
	Provision  Trend // provisioning started to credentials saved
	Connect    Trend // CONNECT to CONNACK 0
	PublishAck Trend // PUBLISH to PUBACK
	// PublishSteady is PublishAck from the first instant every device was
	// online: the steady state, without the ramp's provisioning storm.
	PublishSteady Trend
	ChunkRTT      Trend // chunk request to chunk
	OTA           Trend // update seen (DOWNLOADING) to UPDATED after the reboot

	Outcomes    Counter // provisioned, reprovisioned, connect ok/refused, ota updated/failed, publishes
	Disconnects Counter // established connections lost, by cause

	failures failureCounts // every failure event, by cause (the taxonomy)

	otaBytes          atomic.Int64 // chunk bytes written
	otaFirst, otaLast atomic.Int64 // unix ns of the first and last chunk bytes: the download window
	everOnline        atomic.Bool  // some device was online at some point of the run

	devices   int64        // in the fleet, set at construction
	onlineNow atomic.Int64 // devices online now, kept by transition
	steady    atomic.Bool  // every device has been online at once
}

// publishAck records a PUBACK (and in the steady state, that too).
func (m *Metrics) publishAck(topic string, d time.Duration) {
	m.PublishAck.Observe(d)
	if m.steady.Load() {
		m.PublishSteady.Observe(d)
	}
	m.Outcomes.Add("publish acked", 1)
	if topic == tbapi.TopicTelemetry {
		m.Outcomes.Add("telemetry acked", 1)
	}
}

// OTAWindow is the time between the first and the last chunk written by any
// device: the span the aggregate download rate is computed over.
func (m *Metrics) OTAWindow() time.Duration {
	return time.Duration(m.otaLast.Load() - m.otaFirst.Load())
}

// Failures lists the failure events counted so far, by cause, largest first.
func (m *Metrics) Failures() []ErrorCause { return m.failures.snapshot() }

// tracker is per-board state for latencies; only the board's goroutine
// touches its entry.
type tracker struct {
	provStart time.Time
	otaStart  time.Time
}

// observer adapts a Fleet to device.Observer.
type observer Fleet

func (o *observer) Transition(b *device.Board, prev, cur device.BoardStatus, at time.Time) {
	f := (*Fleet)(o)
	pos := int(b.Identity().Index) - f.first
	if f.flash != nil && prev.BootCount >= 1 && cur.BootCount > prev.BootCount {
		// A reset (power cycle, OTA reboot): persist the flash now, not only at the end.
		if err := f.flash.saveOne(b, f.boots[pos]+cur.BootCount); err != nil {
			f.log.Warn("save flash state", "device", cur.Name, "error", err)
		}
	}
	f.metrics.transition(&f.track[pos], prev, cur, at)
}

// transition counts what changed between two statuses of one device: its
// failures by cause, provisioning, OTA bytes and outcomes. t is the device's
// tracker; one goroutine at a time per device.
func (m *Metrics) transition(t *tracker, prev, cur device.BoardStatus, at time.Time) {
	for k := firmware.FailNone + 1; k < firmware.NumFailures; k++ {
		if n := cur.Failures[k] - prev.Failures[k]; n > 0 {
			m.failures.add(k, int64(n), cur.Name, cur.OTAError)
		}
	}
	if cur.State == firmware.StateOnline && prev.State != firmware.StateOnline {
		m.everOnline.Store(true)
		if m.onlineNow.Add(1) >= m.devices && m.devices > 0 {
			m.steady.Store(true)
		}
	} else if prev.State == firmware.StateOnline && cur.State != firmware.StateOnline {
		m.onlineNow.Add(-1)
	}
	if cur.State == firmware.StateProvisioning && prev.State != firmware.StateProvisioning && t.provStart.IsZero() {
		t.provStart = at
	}
	if cur.Provisioned && !prev.Provisioned && cur.BootCount == prev.BootCount {
		if !t.provStart.IsZero() {
			m.Provision.Observe(at.Sub(t.provStart))
			t.provStart = time.Time{}
		}
		m.Outcomes.Add("provisioned", 1)
	}
	if cur.Reprovisions > prev.Reprovisions {
		m.Outcomes.Add("reprovisioned", 1)
	}
	if n := cur.OTAWritten - prev.OTAWritten; n > 0 || cur.BootCount != prev.BootCount && cur.OTAWritten > 0 {
		if n <= 0 { // the counter restarted with the boot
			n = cur.OTAWritten
		}
		m.otaBytes.Add(n)
		m.otaFirst.CompareAndSwap(0, at.UnixNano())
		m.otaLast.Store(at.UnixNano())
	}
	if cur.OTAState == prev.OTAState {
		return
	}
	switch cur.OTAState {
	case tbapi.FwDownloading:
		if t.otaStart.IsZero() {
			t.otaStart = at
		}
	case tbapi.FwUpdated:
		if !t.otaStart.IsZero() {
			m.OTA.Observe(at.Sub(t.otaStart))
			t.otaStart = time.Time{}
			m.Outcomes.Add("ota updated", 1)
		}
	case tbapi.FwFailed:
		t.otaStart = time.Time{}
		m.Outcomes.Add("ota failed", 1)
	}
}

func (o *observer) Connected(d time.Duration, outcome string) {
	(*Fleet)(o).metrics.connected(d, outcome == "ok")
}

func (o *observer) PublishAck(topic string, d time.Duration) {
	(*Fleet)(o).metrics.publishAck(topic, d)
}

func (o *observer) ChunkRTT(d time.Duration) { (*Fleet)(o).metrics.ChunkRTT.Observe(d) }

func (o *observer) Lost(link firmware.LinkError, reason string) {
	(*Fleet)(o).metrics.Disconnects.Add(linkCause(link), 1)
}

func (o *observer) Late(d time.Duration) { (*Fleet)(o).health.Late(d) }

// linkCause names a lost connection's cause with the taxonomy's IDs.
func linkCause(l firmware.LinkError) string {
	switch l {
	case firmware.LinkUnreachable:
		return firmware.FailUnreachable.String()
	case firmware.LinkTimeout:
		return firmware.FailNetworkTimeout.String()
	case firmware.LinkKeepalive:
		return firmware.FailKeepalive.String()
	case firmware.LinkClosed:
		return firmware.FailServerClosed.String()
	case firmware.LinkRateLimited:
		return firmware.FailRateLimited.String()
	}
	return firmware.FailNetwork.String()
}

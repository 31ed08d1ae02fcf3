package sim

import (
	"strings"
	"sync"
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
	ChunkRTT   Trend // chunk request to chunk
	OTA        Trend // update seen (DOWNLOADING) to UPDATED after the reboot

	Outcomes    Counter // provisioned, reprovisioned, connect ok/refused, ota updated/failed
	Disconnects Counter // by cause
	Errors      Counter // by cause, with an example device in examples
	OTABytes    Counter // "bytes": chunk bytes written

	otaFirst, otaLast atomic.Int64 // unix ns of the first and last chunk bytes: the download window

	examples sync.Map // cause -> device name
}

// OTAWindow is the time between the first and the last chunk written by any
// device: the span the aggregate download rate is computed over.
func (m *Metrics) OTAWindow() time.Duration {
	return time.Duration(m.otaLast.Load() - m.otaFirst.Load())
}

// Example returns a device that hit an error cause.
func (m *Metrics) Example(cause string) string {
	v, _ := m.examples.Load(cause)
	s, _ := v.(string)
	return s
}

func (m *Metrics) fail(cause, dev string) {
	m.Errors.Add(cause, 1)
	m.examples.LoadOrStore(cause, dev)
}

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
	m := f.metrics
	pos := int(b.Identity().Index) - f.first
	t := &f.track[pos]
	if f.flash != nil && prev.BootCount >= 1 && cur.BootCount > prev.BootCount {
		// A reset (power cycle, OTA reboot): persist the flash now, not only at the end.
		if err := f.flash.saveOne(b, f.boots[pos]+cur.BootCount); err != nil {
			f.log.Warn("save flash state", "device", cur.Name, "error", err)
		}
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
		m.fail("token refused (CONNACK 5), re-provisioned", cur.Name)
	}
	if n := cur.OTAWritten - prev.OTAWritten; n > 0 || cur.BootCount != prev.BootCount && cur.OTAWritten > 0 {
		if n <= 0 { // the counter restarted with the boot
			n = cur.OTAWritten
		}
		m.OTABytes.Add("bytes", n)
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
		m.fail("OTA failed: "+cur.OTAError, cur.Name)
	}
}

func (o *observer) Connected(d time.Duration, outcome string) {
	m := (*Fleet)(o).metrics
	if outcome == "ok" {
		m.Connect.Observe(d)
	}
	m.Outcomes.Add("connect "+outcomeClass(outcome), 1)
}

func (o *observer) PublishAck(topic string, d time.Duration) {
	m := (*Fleet)(o).metrics
	m.PublishAck.Observe(d)
	m.Outcomes.Add("publish acked", 1)
	if topic == tbapi.TopicTelemetry {
		m.Outcomes.Add("telemetry acked", 1)
	}
}

func (o *observer) ChunkRTT(d time.Duration) { (*Fleet)(o).metrics.ChunkRTT.Observe(d) }

func (o *observer) Lost(cause string) { (*Fleet)(o).metrics.Disconnects.Add(disconnectClass(cause), 1) }

func outcomeClass(outcome string) string {
	switch {
	case outcome == "ok":
		return "ok"
	case outcome == "refused 5" || outcome == "refused 4":
		return "refused: not authorized"
	case strings.HasPrefix(outcome, "refused"):
		return outcome
	}
	return "failed: " + disconnectClass(outcome)
}

// disconnectClass sorts a connection error into the causes the summary shows.
func disconnectClass(cause string) string {
	c := strings.ToLower(cause)
	switch {
	case strings.Contains(c, "pingresp"), strings.Contains(c, "keepalive"):
		return "keepalive"
	case strings.Contains(c, "eof"), strings.Contains(c, "closed"), strings.Contains(c, "reset by peer"), strings.Contains(c, "broken pipe"):
		return "server closed"
	case strings.Contains(c, "refused"):
		return "connection refused"
	case strings.Contains(c, "timeout"):
		return "network timeout"
	}
	return "network"
}

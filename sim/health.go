package sim

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Health watches the simulator itself, so a result limited by tbsim is
// labelled as such instead of being reported as the server's latency: how
// late firmware deadlines fire (the event loop's lag), the process's CPU
// against the cores it may use, and the handshakes in flight.
type Health struct {
	Lag Trend // how late deadlines fired

	recentLag atomic.Int64 // max lag (ns) since the last sample
	lagging   atomic.Bool  // the last sample's lag was over laggingAt

	mu       sync.Mutex
	cores    int
	started  time.Time
	lastCPU  time.Duration
	lastAt   time.Time
	cpuTotal time.Duration
	peakCPU  float64 // cores used in the busiest sample window
	nowCPU   float64 // cores used in the last sample
	window   []float64
	// The whole machine's busy CPU time at the start and the last sample
	// (machOK: /proc/stat was readable at the start).
	machStart, machLast time.Duration
	machOK              bool
	busy                int // samples with CPU at 90% of the cores or more
	samples             int
}

// laggingAt is the event-loop lag above which the admission gate backs off.
const laggingAt = 500 * time.Millisecond

// Late records one deadline's lateness.
func (h *Health) Late(d time.Duration) {
	h.Lag.Observe(d)
	for {
		m := h.recentLag.Load()
		if int64(d) <= m || h.recentLag.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// Lagging reports whether the event loop ran late in the last second.
func (h *Health) Lagging() bool { return h.lagging.Load() }

// run samples once a second until ctx ends.
func (h *Health) run(ctx context.Context) {
	h.mu.Lock()
	h.cores = runtime.GOMAXPROCS(0)
	now := time.Now()
	h.started, h.lastAt, h.lastCPU = now, now, processCPU()
	h.machStart, h.machOK = machineCPU()
	h.machLast = h.machStart
	h.mu.Unlock()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			h.sample(time.Now())
			return
		case now := <-t.C:
			h.sample(now)
		}
	}
}

func (h *Health) sample(now time.Time) {
	lag := time.Duration(h.recentLag.Swap(0))
	h.lagging.Store(lag > laggingAt)
	cpu := processCPU()
	mach, machOK := machineCPU()
	h.mu.Lock()
	defer h.mu.Unlock()
	if machOK && h.machOK {
		h.machLast = mach
	}
	dt := now.Sub(h.lastAt)
	if dt <= 0 {
		return
	}
	used := float64(cpu-h.lastCPU) / float64(dt)
	h.cpuTotal += cpu - h.lastCPU
	h.nowCPU = used
	h.lastCPU, h.lastAt = cpu, now
	// The peak is over 5 s windows: one busy second (a GC, the ramp's first
	// burst) is not saturation.
	h.window = append(h.window, used)
	if len(h.window) > 5 {
		h.window = h.window[1:]
	}
	if len(h.window) == 5 {
		sum := 0.0
		for _, u := range h.window {
			sum += u
		}
		h.peakCPU = max(h.peakCPU, sum/5)
	}
	h.samples++
	if used >= 0.9*float64(h.cores) {
		h.busy++
	}
}

// GeneratorStats is the simulator's own health over a run.
type GeneratorStats struct {
	Cores       int        `json:"cores"`       // GOMAXPROCS: the CPUs tbsim may use
	CPUAvg      float64    `json:"cpuAvg"`      // cores used on average over the run
	CPUPeak     float64    `json:"cpuPeak"`     // cores used in the busiest 5 s
	CPUNow      float64    `json:"cpuNow"`      // cores used in the last second
	BusySeconds int        `json:"busySeconds"` // seconds with 90% of the cores or more in use
	Lag         TrendStats `json:"-"`
	Admission   AdmissionStats
	// Bound says the run was limited by tbsim, not the server: deadlines
	// fired late (lag p99 over 200 ms or max over 2 s); Why says how.
	Bound bool   `json:"bound"`
	Why   string `json:"why"`
}

// Stats summarises the run so far.
func (h *Health) Stats() GeneratorStats {
	h.mu.Lock()
	s := GeneratorStats{Cores: h.cores, CPUPeak: h.peakCPU, CPUNow: h.nowCPU, BusySeconds: h.busy}
	if el := h.lastAt.Sub(h.started); el > 0 {
		s.CPUAvg = float64(h.cpuTotal) / float64(el)
	}
	if s.CPUPeak == 0 && h.samples > 0 && h.samples < 5 {
		s.CPUPeak = s.CPUAvg // a run shorter than one window
	}
	machine := ""
	if el := h.lastAt.Sub(h.started); h.machOK && el > 0 {
		machine = fmt.Sprintf(", the whole machine %.1f of %d", float64(h.machLast-h.machStart)/float64(el), runtime.NumCPU())
	}
	h.mu.Unlock()
	s.Lag = h.Lag.Stats()
	s.Bound = s.Lag.P99 > 200*time.Millisecond || s.Lag.Max > 2*time.Second
	// The machine's figure tells a busy machine (other processes, the server
	// under test beside tbsim) from tbsim's own load when deadlines run late.
	cpu := fmt.Sprintf("tbsim used %.1f of %d cores (busiest 5 s: %.1f)%s", s.CPUAvg, s.Cores, s.CPUPeak, machine)
	lag := fmt.Sprintf("deadlines fired up to %s late (p99 %s)", round(s.Lag.Max), round(s.Lag.P99))
	if s.Bound {
		s.Why = cpu + "; " + lag + ": latencies above describe tbsim, not the server"
	} else {
		s.Why = cpu + "; " + lag + ": not generator-bound"
	}
	return s
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

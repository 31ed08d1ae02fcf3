package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/tbsim/tbsim/sim"
)

// Progress is what the live view shows besides a snapshot: the run's planned
// length, the ramp, and the rates since the previous refresh.
type Progress struct {
	Duration time.Duration // 0: until Ctrl-C
	Ramp     float64       // devices per second, the upper bound
	Rates    Rates
}

// IntervalRates are the rates between two snapshots.
func IntervalRates(prev, cur sim.Snapshot) Rates {
	secs := (cur.Elapsed - prev.Elapsed).Seconds()
	if secs <= 0 {
		return Rates{}
	}
	delta := func(name string) float64 { return float64(cur.Outcomes.Get(name) - prev.Outcomes.Get(name)) }
	return Rates{
		Telemetry: delta("telemetry acked") / secs,
		Publishes: delta("publish acked") / secs,
		Chunks:    float64(cur.Trends["chunk"].Count-prev.Trends["chunk"].Count) / secs,
	}
}

func elapsed(s sim.Snapshot, p Progress) string {
	e := s.Elapsed.Round(time.Second).String()
	if p.Duration > 0 {
		return e + "/" + p.Duration.Round(time.Second).String()
	}
	return e
}

func gateText(s sim.Snapshot, p Progress) string {
	a := s.Generator.Admission
	if a.Limit == 0 {
		return fmt.Sprintf("ramp ≤ %g/s, no handshake limit", p.Ramp)
	}
	mode := "fixed"
	if a.Adaptive {
		mode = "adaptive"
	}
	return fmt.Sprintf("ramp ≤ %g/s, handshakes %d in flight / limit %d (%s), %d queued", p.Ramp, a.InFlight, a.Limit, mode, a.Queued)
}

func errorsText(s sim.Snapshot, n int) string {
	if s.ErrorTotal == 0 {
		return "errors: none"
	}
	var parts []string
	for i, e := range s.Errors {
		if i == n {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", e.Cause+detail(e.Detail), e.Count))
	}
	return fmt.Sprintf("errors: %d (%s)", s.ErrorTotal, strings.Join(parts, ", "))
}

func detail(d string) string {
	if d == "" {
		return ""
	}
	return "[" + d + "]"
}

// Live is the terminal block the live view redraws.
func Live(s sim.Snapshot, p Progress) []string {
	g := s.Generator
	lines := []string{
		fmt.Sprintf("tbsim  %s  devices %d/%d  provisioned %d  online %d", elapsed(s, p), s.Started, s.Devices, s.Provisioned, s.Online),
		fmt.Sprintf("  rates/s: telemetry %.1f  all publishes %.1f  chunks %.1f", p.Rates.Telemetry, p.Rates.Publishes, p.Rates.Chunks),
		"  states: " + joinCounts(s.ByState),
		"  OTA: " + joinCounts(s.OTAStates) + "   versions: " + joinCounts(s.Versions),
		"  " + gateText(s, p),
		fmt.Sprintf("  generator: cpu %.1f/%d cores now (%.1f on average), deadlines late p99 %s max %s", g.CPUNow, g.Cores, g.CPUAvg, d(g.Lag.P99), d(g.Lag.Max)),
		"  " + errorsText(s, 4),
	}
	if len(s.Disconnects) > 0 {
		lines = append(lines, "  disconnects: "+countsText(s.Disconnects))
	}
	return lines
}

// Line is the one-line status for logs and non-terminal output: the same
// figures as Live.
func Line(s sim.Snapshot, p Progress) string {
	a, g := s.Generator.Admission, s.Generator
	return fmt.Sprintf("t=%s devices=%d/%d provisioned=%d online=%d telemetry/s=%.1f publishes/s=%.1f chunks/s=%.1f ota=[%s] handshakes=%d/%d queued=%d cpu=%.1f/%d lag.p99=%s %s",
		elapsed(s, p), s.Started, s.Devices, s.Provisioned, s.Online, p.Rates.Telemetry, p.Rates.Publishes, p.Rates.Chunks,
		joinCounts(s.OTAStates), a.InFlight, a.Limit, a.Queued, g.CPUNow, g.Cores, d(g.Lag.P99), strings.ReplaceAll(errorsText(s, 3), ": ", "="))
}

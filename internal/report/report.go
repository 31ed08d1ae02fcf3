package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tbsim/tbsim/internal/verdict"
	"github.com/tbsim/tbsim/internal/version"
	"github.com/tbsim/tbsim/sim"
)

// Summary is what a run reports at its end (text and --json).
type Summary struct {
	Seed   uint64
	Server string
	Snap   sim.Snapshot
	// Duration is the run's length (the snapshot's elapsed time).
	Duration time.Duration
	// OTA is the emulator's view, per package label: devices per fw_state
	// (embedded server only).
	OTA map[string]map[string]int
	// Thresholds are the --threshold results (nil without thresholds).
	Thresholds []verdict.Result
	// Verdict is the exit code and why; RuntimeError is the runtime error
	// behind an exit code 1, if any (a merge counts it against the fleet).
	ExitCode     int
	Reason       string
	RuntimeError string

	// Version is the tbsim that wrote the summary.
	Version string
	// Shard is the slice of the fleet this run simulated ({0, 1}: all of
	// it), FleetDevices the whole fleet's size.
	Shard        sim.Shard
	FleetDevices int
	// OTATarget is the version of the run's rollout (for ota.success).
	OTATarget string
	// Server is what the embedded server counted (nil with --server).
	ServerCounts *ServerCounts
	// Shards lists the summaries a merged summary was made of.
	Shards []ShardResult
}

// ServerCounts are the embedded server's own counts, which the
// telemetry.lost and server.rate_limited metrics need.
type ServerCounts struct {
	Telemetry   int64 `json:"telemetry"`
	RateLimited int64 `json:"rate_limited"`
}

// ShardResult is one input of a merged summary.
type ShardResult struct {
	File     string `json:"file"`
	Shard    string `json:"shard"` // i/n
	Devices  int    `json:"devices"`
	ExitCode int    `json:"exit_code"`
	Reason   string `json:"reason"`
}

// NewSummary wraps a snapshot of a whole fleet (set Shard and
// FleetDevices for a shard).
func NewSummary(seed uint64, server string, s sim.Snapshot) Summary {
	return Summary{Seed: seed, Server: server, Snap: s, Duration: s.Elapsed, Version: version.Get().Short(),
		Shard: sim.Shard{Index: 0, Count: 1}, FleetDevices: s.Devices}
}

// Extra is what the metric language needs besides the snapshot.
func (s Summary) Extra() verdict.Extra {
	x := verdict.Extra{Target: s.OTATarget}
	if c := s.ServerCounts; c != nil {
		x.ServerTelemetry, x.ServerRateLimited = &c.Telemetry, &c.RateLimited
	}
	return x
}

// Rates are per second over the run: acknowledged telemetry, every
// acknowledged publish (telemetry, reports, chunk requests, RPC answers) and
// OTA chunks received.
type Rates struct {
	Telemetry float64 `json:"telemetry"`
	Publishes float64 `json:"publishes"`
	Chunks    float64 `json:"chunks"`
}

// Rates computes the run's average rates.
func (s Summary) Rates() Rates {
	secs := s.Duration.Seconds()
	if secs <= 0 {
		return Rates{}
	}
	return Rates{
		Telemetry: float64(s.Snap.Outcomes.Get("telemetry acked")) / secs,
		Publishes: float64(s.Snap.Outcomes.Get("publish acked")) / secs,
		Chunks:    float64(s.Snap.Trends["chunk"].Count) / secs,
	}
}

// OTARateMBps is the aggregate download rate over the download window.
func (s Summary) OTARateMBps() float64 {
	if secs := s.Snap.OTAWindow.Seconds(); secs > 0 {
		return float64(s.Snap.OTABytes) / 1e6 / secs
	}
	return 0
}

var trendRows = []struct{ key, label string }{
	{"provision", "provisioning"}, {"connect", "connect"}, {"publish", "publish → PUBACK"},
	{"publish_steady", "  once all online"},
	{"chunk", "chunk round trip"}, {"ota", "OTA end to end"},
}

// WriteText writes the k6-style summary.
func WriteText(w io.Writer, s Summary) {
	sn := s.Snap
	row := func(label, format string, args ...any) {
		dots := max(3, 24-len([]rune(label)))
		fmt.Fprintf(w, "     %s %s: %s\n", label, strings.Repeat(".", dots), fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(w, "\n  tbsim summary: %d devices, %s against %s, seed %d\n\n", sn.Devices, s.Duration.Round(time.Millisecond), s.Server, s.Seed)
	row("devices", "%d started, %d provisioned (%d this run), %d online, %d boots, %d re-provisioned",
		sn.Started, sn.Provisioned, sn.Outcomes.Get("provisioned"), sn.Online, sn.Boots, sn.Outcomes.Get("reprovisioned"))
	if len(sn.ByState) > 0 {
		row("states", "%s", joinCounts(sn.ByState))
	}
	for _, r := range trendRows {
		t := sn.Trends[r.key]
		if t.Count == 0 {
			continue
		}
		row(r.label, "avg=%s p50=%s p90=%s p95=%s p99=%s max=%s count=%d",
			d(t.Avg), d(t.P50), d(t.P90), d(t.P95), d(t.P99), d(t.Max), t.Count)
	}
	rt := s.Rates()
	row("rates", "telemetry %.1f/s, all publishes %.1f/s, chunks %.1f/s (acknowledged, averaged over the run)", rt.Telemetry, rt.Publishes, rt.Chunks)
	if len(sn.Versions) > 0 {
		row("running versions", "%s", joinCounts(sn.Versions))
	}
	if len(sn.OTAStates) > 0 || sn.OTABytes > 0 {
		row("OTA", "%s; %d updated, %d failed; %.1f MB downloaded in %s, %.2f MB/s aggregate", joinCounts(sn.OTAStates),
			sn.Outcomes.Get("ota updated"), sn.Outcomes.Get("ota failed"), float64(sn.OTABytes)/1e6, sn.OTAWindow.Round(time.Millisecond), s.OTARateMBps())
	}
	for _, pkg := range sortedKeys(s.OTA) {
		row("OTA "+pkg, "%s", joinCounts(s.OTA[pkg]))
	}
	if ok, failed := sn.Outcomes.Get("connect ok"), sn.Outcomes.Get("connect failed"); ok+failed > 0 {
		row("connects", "ok %d, failed %d", ok, failed)
	}
	if len(sn.Disconnects) > 0 {
		row("disconnects", "%s", countsText(sn.Disconnects))
	}
	if sn.ErrorTotal == 0 {
		row("errors", "none")
	} else {
		row("errors", "%d in all", sn.ErrorTotal)
	}
	for i, e := range sn.Errors {
		if i == 8 {
			row("", "... %d more causes (see --json)", len(sn.Errors)-8)
			break
		}
		row("error", "%d × %s (e.g. %s)", e.Count, e.Text, e.Example)
	}
	for i, g := range sn.Offline {
		if i == 8 {
			row("", "... %d more groups (see --json)", len(sn.Offline)-8)
			break
		}
		row("not online", "%d %s: %s (e.g. %s)", g.Count, g.State, g.Text, strings.Join(g.Examples, ", "))
	}
	gen := sn.Generator
	label := "generator"
	if gen.Bound {
		label = "GENERATOR-BOUND"
	}
	row(label, "%s", gen.Why)
	if a := gen.Admission; a.Limit > 0 {
		mode := "fixed"
		if a.Adaptive {
			mode = "adaptive"
		}
		row("handshakes", "limit %d (%s), peak %d in flight, %d cuts; waited p99=%s max=%s (%d devices waited)",
			a.Limit, mode, a.Peak, a.Cuts, d(a.Wait.P99), d(a.Wait.Max), a.Wait.Count)
	}
	if len(s.Thresholds) > 0 {
		fmt.Fprintf(w, "\n  thresholds\n")
		for _, r := range s.Thresholds {
			mark := "✓"
			if !r.Passed {
				mark = "✗"
			}
			dots := max(3, 30-len([]rune(r.Threshold)))
			fmt.Fprintf(w, "     %s %s %s: %s\n", mark, r.Threshold, strings.Repeat(".", dots), r.Measured)
		}
	}
	if s.Reason != "" {
		fmt.Fprintf(w, "\n  verdict: %s\n", s.Reason)
	}
	fmt.Fprintln(w)
}

func d(x time.Duration) string {
	switch {
	case x >= time.Second:
		return fmt.Sprintf("%.2fs", x.Seconds())
	case x >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(x)/1e6)
	}
	return fmt.Sprintf("%dµs", x.Microseconds())
}

func joinCounts(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func countsText(c sim.Counts) string {
	var parts []string
	for _, e := range c {
		parts = append(parts, fmt.Sprintf("%s %d", e.Name, e.Count))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tbsim/tbsim/sim"
)

// Summary is what a run reports at its end (text and --json).
type Summary struct {
	Seed     uint64        `json:"seed"`
	Server   string        `json:"server"`
	Duration time.Duration `json:"duration"`
	sim.Snapshot
	Provisions  int64   `json:"provisionsThisRun"` // devices that provisioned during this run
	PublishRate float64 `json:"publishRate"`       // acknowledged publishes per second
	OTARateMBps float64 `json:"otaRateMBps"`       // aggregate chunk bytes per second
	// OTA is the emulator's view, per package label: devices per fw_state
	// (embedded server only).
	OTA map[string]map[string]int `json:"ota,omitempty"`
}

// NewSummary derives rates from a snapshot.
func NewSummary(seed uint64, server string, s sim.Snapshot) Summary {
	sum := Summary{Seed: seed, Server: server, Duration: s.Elapsed, Snapshot: s, Provisions: s.Outcomes.Get("provisioned")}
	if secs := s.Elapsed.Seconds(); secs > 0 {
		sum.PublishRate = float64(s.Outcomes.Get("publish acked")) / secs
	}
	if secs := s.OTAWindow.Seconds(); secs > 0 {
		sum.OTARateMBps = float64(s.OTABytes) / 1e6 / secs
	}
	return sum
}

// WriteJSON writes the summary as indented JSON.
func WriteJSON(w io.Writer, s Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

var trendRows = []struct{ key, label string }{
	{"provision", "provisioning"}, {"connect", "connect"}, {"publish", "publish → PUBACK"},
	{"chunk", "chunk round trip"}, {"ota", "OTA end to end"},
}

// WriteText writes the k6-style summary.
func WriteText(w io.Writer, s Summary) {
	row := func(label, format string, args ...any) {
		dots := max(3, 24-len([]rune(label)))
		fmt.Fprintf(w, "     %s %s: %s\n", label, strings.Repeat(".", dots), fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(w, "\n  tbsim summary: %d devices, %s against %s, seed %d\n\n", s.Devices, s.Duration.Round(time.Millisecond), s.Server, s.Seed)
	row("devices", "%d started, %d provisioned (%d this run), %d online, %d boots, %d re-provisioned",
		s.Started, s.Provisioned, s.Provisions, s.Online, s.Boots, s.Reprovisions)
	if len(s.ByState) > 0 {
		row("states", "%s", joinCounts(s.ByState))
	}
	for _, r := range trendRows {
		t := s.Trends[r.key]
		if t.Count == 0 {
			continue
		}
		row(r.label, "avg=%s p50=%s p90=%s p95=%s p99=%s max=%s count=%d",
			d(t.Avg), d(t.P50), d(t.P90), d(t.P95), d(t.P99), d(t.Max), t.Count)
	}
	row("publishes acked", "%d (%.1f/s)", s.Outcomes.Get("publish acked"), s.PublishRate)
	if len(s.Versions) > 0 {
		row("running versions", "%s", joinCounts(s.Versions))
	}
	if len(s.OTAStates) > 0 || s.OTABytes > 0 {
		row("OTA", "%s; %d updated, %d failed; %.1f MB downloaded in %s, %.2f MB/s aggregate", joinCounts(s.OTAStates),
			s.Outcomes.Get("ota updated"), s.Outcomes.Get("ota failed"), float64(s.OTABytes)/1e6, s.OTAWindow.Round(time.Millisecond), s.OTARateMBps)
	}
	for _, pkg := range sortedKeys(s.OTA) {
		row("OTA "+pkg, "%s", joinCounts(s.OTA[pkg]))
	}
	var conn []string
	for _, c := range s.Outcomes {
		if strings.HasPrefix(c.Name, "connect ") {
			conn = append(conn, fmt.Sprintf("%s %d", strings.TrimPrefix(c.Name, "connect "), c.Count))
		}
	}
	if len(conn) > 0 {
		row("connects", "%s", strings.Join(conn, ", "))
	}
	if len(s.Disconnects) > 0 {
		row("disconnects", "%s", countsText(s.Disconnects))
	}
	if len(s.Errors) == 0 {
		row("errors", "none")
	}
	for i, e := range s.Errors {
		if i == 5 {
			row("", "... %d more causes (see --json)", len(s.Errors)-5)
			break
		}
		row("error", "%d × %s (e.g. %s)", e.Count, e.Cause, e.Example)
	}
	fmt.Fprintln(w)
}

// Line is the one-line status for logs and non-terminal output.
func Line(s sim.Snapshot, rate float64) string {
	return fmt.Sprintf("t=%s devices=%d/%d provisioned=%d online=%d msg/s=%.1f ota=[%s] errors=%d",
		s.Elapsed.Round(time.Second), s.Started, s.Devices, s.Provisioned, s.Online, rate,
		joinCounts(s.OTAStates), countsTotal(s.Errors))
}

func countsTotal(es []sim.ErrorCause) int64 {
	var n int64
	for _, e := range es {
		n += e.Count
	}
	return n
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

// WritePrometheus writes the snapshot in the Prometheus text format.
func WritePrometheus(w io.Writer, s sim.Snapshot) {
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v)
	}
	gauge("tbsim_devices", "Devices in this process's fleet.", float64(s.Devices))
	gauge("tbsim_devices_started", "Devices powered on.", float64(s.Started))
	gauge("tbsim_devices_provisioned", "Devices holding credentials.", float64(s.Provisioned))
	gauge("tbsim_devices_online", "Devices connected to ThingsBoard.", float64(s.Online))
	fmt.Fprintf(w, "# HELP tbsim_devices_by_state Devices per firmware state.\n# TYPE tbsim_devices_by_state gauge\n")
	for _, k := range sortedKeys(s.ByState) {
		fmt.Fprintf(w, "tbsim_devices_by_state{state=%q} %d\n", k, s.ByState[k])
	}
	fmt.Fprintf(w, "# HELP tbsim_ota_devices Devices per last reported fw_state.\n# TYPE tbsim_ota_devices gauge\n")
	for _, k := range sortedKeys(s.OTAStates) {
		fmt.Fprintf(w, "tbsim_ota_devices{fw_state=%q} %d\n", k, s.OTAStates[k])
	}
	fmt.Fprintf(w, "# HELP tbsim_events_total Events by outcome.\n# TYPE tbsim_events_total counter\n")
	for _, c := range s.Outcomes {
		fmt.Fprintf(w, "tbsim_events_total{outcome=%q} %d\n", c.Name, c.Count)
	}
	fmt.Fprintf(w, "# HELP tbsim_disconnects_total Lost connections by cause.\n# TYPE tbsim_disconnects_total counter\n")
	for _, c := range s.Disconnects {
		fmt.Fprintf(w, "tbsim_disconnects_total{cause=%q} %d\n", c.Name, c.Count)
	}
	for _, r := range trendRows {
		t := s.Trends[r.key]
		name := "tbsim_" + r.key + "_seconds"
		fmt.Fprintf(w, "# HELP %s %s latency.\n# TYPE %s summary\n", name, r.label, name)
		for _, q := range []struct {
			q string
			v time.Duration
		}{{"0.5", t.P50}, {"0.9", t.P90}, {"0.95", t.P95}, {"0.99", t.P99}} {
			fmt.Fprintf(w, "%s{quantile=%q} %g\n", name, q.q, q.v.Seconds())
		}
		fmt.Fprintf(w, "%s_sum %g\n%s_count %d\n", name, (t.Avg * time.Duration(t.Count)).Seconds(), name, t.Count)
	}
}

// Live is the terminal block the live view redraws.
func Live(s sim.Snapshot, rate float64) []string {
	lines := []string{
		fmt.Sprintf("tbsim  %s  devices %d/%d  provisioned %d  online %d  telemetry %.1f msg/s",
			s.Elapsed.Round(time.Second), s.Started, s.Devices, s.Provisioned, s.Online, rate),
		"  states: " + joinCounts(s.ByState),
		"  OTA:    " + joinCounts(s.OTAStates) + "   versions: " + joinCounts(s.Versions),
	}
	if len(s.Disconnects) > 0 {
		lines = append(lines, "  disconnects: "+countsText(s.Disconnects))
	}
	for i, e := range s.Errors {
		if i == 3 {
			break
		}
		lines = append(lines, fmt.Sprintf("  error: %d × %s (e.g. %s)", e.Count, e.Cause, e.Example))
	}
	return lines
}

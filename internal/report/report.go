package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tbsim/tbsim/internal/verdict"
	"github.com/tbsim/tbsim/sim"
)

// Schema names the JSON summary's layout; it changes when a field changes meaning.
const Schema = "tbsim.summary/v1"

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
	// Verdict is the exit code and why.
	ExitCode int
	Reason   string
}

// NewSummary wraps a snapshot.
func NewSummary(seed uint64, server string, s sim.Snapshot) Summary {
	return Summary{Seed: seed, Server: server, Snap: s, Duration: s.Elapsed}
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

// JSON layout (documented in the README): snake_case keys, durations in
// milliseconds with _ms in the key, causes as arrays of objects.
type jsonSummary struct {
	Schema     string               `json:"schema"`
	Seed       uint64               `json:"seed"`
	Server     string               `json:"server"`
	DurationMs float64              `json:"duration_ms"`
	Devices    jsonDevices          `json:"devices"`
	LatencyMs  map[string]jsonTrend `json:"latency_ms"`
	Counts     jsonCounts           `json:"counts"`
	RatesPerS  Rates                `json:"rates_per_s"`
	OTA        jsonOTA              `json:"ota"`
	Disconnect []jsonCount          `json:"disconnects"`
	Errors     jsonErrors           `json:"errors"`
	NotOnline  []sim.OfflineGroup   `json:"not_online"`
	Generator  jsonGenerator        `json:"generator"`
	Thresholds []verdict.Result     `json:"thresholds"`
	Verdict    jsonVerdict          `json:"verdict"`
}

type jsonDevices struct {
	Total              int            `json:"total"`
	Started            int            `json:"started"`
	Provisioned        int            `json:"provisioned"`
	ProvisionedThisRun int64          `json:"provisioned_this_run"`
	Online             int            `json:"online"`
	EverOnline         bool           `json:"ever_online"`
	Reprovisioned      int64          `json:"reprovisioned"`
	Boots              int            `json:"boots"`
	Bricked            int            `json:"bricked"`
	Stranded           int            `json:"stranded"`
	ByState            map[string]int `json:"by_state"`
	Versions           map[string]int `json:"versions"`
	FwStates           map[string]int `json:"fw_states"`
}

type jsonTrend struct {
	Count uint64  `json:"count"`
	Avg   float64 `json:"avg"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func msTrend(t sim.TrendStats) jsonTrend {
	return jsonTrend{Count: t.Count, Avg: ms(t.Avg), P50: ms(t.P50), P90: ms(t.P90), P95: ms(t.P95), P99: ms(t.P99), Max: ms(t.Max)}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type jsonCounts struct {
	PublishesAcked int64 `json:"publishes_acked"`
	TelemetryAcked int64 `json:"telemetry_acked"`
	Chunks         int64 `json:"chunks"`
	ConnectsOK     int64 `json:"connects_ok"`
	ConnectsFailed int64 `json:"connects_failed"`
}

type jsonOTA struct {
	Bytes    int64                     `json:"bytes"`
	WindowMs float64                   `json:"window_ms"`
	MBPerS   float64                   `json:"mb_per_s"`
	Updated  int64                     `json:"updated"`
	Failed   int64                     `json:"failed"`
	Packages map[string]map[string]int `json:"packages,omitempty"`
}

type jsonCount struct {
	Cause string `json:"cause"`
	Count int64  `json:"count"`
}

type jsonErrors struct {
	Total  int64            `json:"total"`
	Causes []sim.ErrorCause `json:"causes"`
}

type jsonGenerator struct {
	Cores       int           `json:"cores"`
	CPUAvg      float64       `json:"cpu_avg"`
	CPUPeak     float64       `json:"cpu_peak"`
	BusySeconds int           `json:"busy_seconds"`
	LagMs       jsonTrend     `json:"lag_ms"`
	Bound       bool          `json:"bound"`
	Why         string        `json:"why"`
	Admission   jsonAdmission `json:"admission"`
}

type jsonAdmission struct {
	Adaptive bool      `json:"adaptive"`
	Limit    int       `json:"limit"`
	Peak     int64     `json:"peak_in_flight"`
	Cuts     int64     `json:"limit_cuts"`
	WaitMs   jsonTrend `json:"wait_ms"`
}

type jsonVerdict struct {
	Passed   bool   `json:"passed"`
	ExitCode int    `json:"exit_code"`
	Reason   string `json:"reason"`
}

func (s Summary) json() jsonSummary {
	sn := s.Snap
	j := jsonSummary{
		Schema: Schema, Seed: s.Seed, Server: s.Server, DurationMs: ms(s.Duration),
		Devices: jsonDevices{
			Total: sn.Devices, Started: sn.Started, Provisioned: sn.Provisioned,
			ProvisionedThisRun: sn.Outcomes.Get("provisioned"), Online: sn.Online, EverOnline: sn.EverOnline,
			Reprovisioned: sn.Outcomes.Get("reprovisioned"), Boots: sn.Boots, Bricked: sn.Bricked, Stranded: sn.Stranded,
			ByState: nonNil(sn.ByState), Versions: nonNil(sn.Versions), FwStates: nonNil(sn.OTAStates),
		},
		LatencyMs: map[string]jsonTrend{},
		Counts: jsonCounts{
			PublishesAcked: sn.Outcomes.Get("publish acked"), TelemetryAcked: sn.Outcomes.Get("telemetry acked"),
			Chunks: int64(sn.Trends["chunk"].Count), ConnectsOK: sn.Outcomes.Get("connect ok"), ConnectsFailed: sn.Outcomes.Get("connect failed"),
		},
		RatesPerS: s.Rates(),
		OTA: jsonOTA{Bytes: sn.OTABytes, WindowMs: ms(sn.OTAWindow), MBPerS: s.OTARateMBps(),
			Updated: sn.Outcomes.Get("ota updated"), Failed: sn.Outcomes.Get("ota failed"), Packages: s.OTA},
		Disconnect: []jsonCount{},
		Errors:     jsonErrors{Total: sn.ErrorTotal, Causes: sn.Errors},
		NotOnline:  sn.Offline,
		Generator: jsonGenerator{Cores: sn.Generator.Cores, CPUAvg: sn.Generator.CPUAvg, CPUPeak: sn.Generator.CPUPeak,
			BusySeconds: sn.Generator.BusySeconds, LagMs: msTrend(sn.Generator.Lag), Bound: sn.Generator.Bound, Why: sn.Generator.Why,
			Admission: jsonAdmission{Adaptive: sn.Generator.Admission.Adaptive, Limit: sn.Generator.Admission.Limit,
				Peak: sn.Generator.Admission.Peak, Cuts: sn.Generator.Admission.Cuts, WaitMs: msTrend(sn.Generator.Admission.Wait)}},
		Thresholds: s.Thresholds,
		Verdict:    jsonVerdict{Passed: s.ExitCode == 0, ExitCode: s.ExitCode, Reason: s.Reason},
	}
	for k, t := range sn.Trends {
		j.LatencyMs[k] = msTrend(t)
	}
	for _, d := range sn.Disconnects {
		j.Disconnect = append(j.Disconnect, jsonCount{d.Name, d.Count})
	}
	if j.Errors.Causes == nil {
		j.Errors.Causes = []sim.ErrorCause{}
	}
	if j.NotOnline == nil {
		j.NotOnline = []sim.OfflineGroup{}
	}
	if j.Thresholds == nil {
		j.Thresholds = []verdict.Result{}
	}
	return j
}

func nonNil(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// WriteJSON writes the summary as indented JSON.
func WriteJSON(w io.Writer, s Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s.json())
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

// WritePrometheus writes the snapshot in the Prometheus text format.
func WritePrometheus(w io.Writer, s sim.Snapshot) {
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v)
	}
	gauge("tbsim_devices", "Devices in this process's fleet.", float64(s.Devices))
	gauge("tbsim_devices_started", "Devices powered on.", float64(s.Started))
	gauge("tbsim_devices_provisioned", "Devices holding credentials.", float64(s.Provisioned))
	gauge("tbsim_devices_online", "Devices connected to ThingsBoard.", float64(s.Online))
	gauge("tbsim_devices_stranded", "Devices refused provisioning for their own name with no token: never online by themselves.", float64(s.Stranded))
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
	fmt.Fprintf(w, "# HELP tbsim_failures_total Failures devices saw, by cause (stranded: devices).\n# TYPE tbsim_failures_total counter\n")
	for _, e := range s.Errors {
		fmt.Fprintf(w, "tbsim_failures_total{cause=%q,detail=%q} %d\n", e.Cause, e.Detail, e.Count)
	}
	g := s.Generator
	gauge("tbsim_generator_cpu_cores", "Cores tbsim used on average over the run.", g.CPUAvg)
	gauge("tbsim_generator_cores", "Cores tbsim may use (GOMAXPROCS).", float64(g.Cores))
	gauge("tbsim_generator_lag_p99_seconds", "99th percentile of how late firmware deadlines fired.", g.Lag.P99.Seconds())
	bound := 0.0
	if g.Bound {
		bound = 1
	}
	gauge("tbsim_generator_bound", "1 when the run was limited by tbsim itself, not the server.", bound)
	gauge("tbsim_handshakes_limit", "Admission limit on connection handshakes in flight.", float64(g.Admission.Limit))
	gauge("tbsim_handshakes_in_flight", "Connection handshakes in flight.", float64(g.Admission.InFlight))
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

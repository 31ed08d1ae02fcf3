// Package verdict is tbsim's one metric language: the named values a run
// produces (from a sim.Snapshot), thresholds of the form "METRIC OP VALUE"
// over them, and their evaluation. `tbsim run --threshold` and scenario
// `expect:` lines are parsed and judged here, so both mean the same thing.
//
// It may import the standard library and sim (for the snapshot and the
// failure taxonomy); nothing imports it but the CLI and the scenario runner.
package verdict

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tbsim/tbsim/sim"
)

// Values are a run's metrics by name, with the fleet size that percentages
// of counts refer to.
type Values struct {
	m       map[string]float64
	devices float64
}

// Extra is what a snapshot alone does not know.
type Extra struct {
	// Target is the version of the last rollout, for ota.success.
	Target string
	// ServerTelemetry and ServerRateLimited come from the embedded server
	// (nil: not known, the metrics read 0).
	ServerTelemetry   *int64
	ServerRateLimited *int64
}

// FromSnapshot names every metric of a snapshot.
func FromSnapshot(s sim.Snapshot, x Extra) Values {
	m := map[string]float64{}
	for name, t := range s.Trends {
		m[name+".avg"] = t.Avg.Seconds()
		m[name+".p50"] = t.P50.Seconds()
		m[name+".p90"] = t.P90.Seconds()
		m[name+".p95"] = t.P95.Seconds()
		m[name+".p99"] = t.P99.Seconds()
		m[name+".max"] = t.Max.Seconds()
		m[name+".count"] = float64(t.Count)
	}
	n := float64(s.Devices)
	m["devices"] = n
	m["started"] = float64(s.Started)
	m["online"] = float64(s.Online)
	m["boots"] = float64(s.Boots)
	m["bricked"] = float64(s.Bricked)
	m["stranded"] = float64(s.Stranded)
	m["reprovisioned"] = float64(s.Outcomes.Get("reprovisioned"))
	m["provisioned"] = float64(s.Outcomes.Get("provisioned"))
	m["telemetry.acked"] = float64(s.Outcomes.Get("telemetry acked"))
	m["publish.acked"] = float64(s.Outcomes.Get("publish acked"))
	m["disconnects"] = float64(s.Disconnects.Total())
	m["connects.failed"] = float64(s.Outcomes.Get("connect failed"))
	m["errors"] = float64(s.ErrorTotal)
	for _, e := range s.Errors {
		m["errors."+e.Cause] += float64(e.Count)
	}
	m["ota.updated"] = float64(s.OTAStates["UPDATED"])
	m["ota.failed"] = float64(s.OTAStates["FAILED"])
	if x.Target != "" && n > 0 {
		m["ota.success"] = 100 * float64(s.Versions[x.Target]) / n
	}
	for ver, c := range s.Versions {
		m["version."+ver] = float64(c)
	}
	if x.ServerTelemetry != nil {
		m["telemetry.lost"] = max(0, m["telemetry.acked"]-float64(*x.ServerTelemetry))
	}
	if x.ServerRateLimited != nil {
		m["server.rate_limited"] = float64(*x.ServerRateLimited)
	}
	g := s.Generator
	m["generator.cpu"] = g.CPUAvg
	m["generator.cpu_peak"] = g.CPUPeak
	m["generator.lag.p99"] = g.Lag.P99.Seconds()
	m["generator.lag.max"] = g.Lag.Max.Seconds()
	if g.Bound {
		m["generator.bound"] = 1
	}
	m["admission.wait.p99"] = g.Admission.Wait.P99.Seconds()
	return Values{m: m, devices: n}
}

// Get returns a metric (0 when absent, e.g. a version no device runs).
func (v Values) Get(name string) float64 { return v.m[name] }

// Set overrides a metric (the scenario runner adds what only it knows).
func (v Values) Set(name string, x float64) { v.m[name] = x }

var trendNames = map[string]bool{"provision": true, "connect": true, "publish": true, "publish_steady": true, "chunk": true, "ota": true}
var trendFields = map[string]bool{"avg": true, "p50": true, "p90": true, "p95": true, "p99": true, "max": true, "count": true}
var plainMetrics = map[string]bool{
	"ota.success": true, "ota.updated": true, "ota.failed": true, "reprovisioned": true, "provisioned": true,
	"online": true, "started": true, "boots": true, "bricked": true, "stranded": true, "devices": true,
	"telemetry.lost": true, "telemetry.acked": true, "publish.acked": true, "connects.failed": true,
	"disconnects": true, "server.rate_limited": true, "errors": true, "generator.cpu": true,
	"generator.cpu_peak": true, "generator.lag.p99": true, "generator.lag.max": true, "generator.bound": true,
	"admission.wait.p99": true,
}

// growing are metrics that never decrease during a run: a threshold that
// caps one cannot recover once it failed.
var growing = map[string]bool{
	"errors": true, "reprovisioned": true, "provisioned": true, "boots": true, "disconnects": true,
	"connects.failed": true, "telemetry.acked": true, "publish.acked": true, "server.rate_limited": true,
	"generator.lag.max": true,
}

// serverMetrics are counted by the embedded server: against an external one
// they are unknown, never 0.
var serverMetrics = map[string]bool{"telemetry.lost": true, "server.rate_limited": true}

// NeedsEmbedded reports whether a metric is known only with the embedded
// server.
func NeedsEmbedded(m string) bool { return serverMetrics[m] }

// Known reports whether a metric name exists.
func Known(m string) bool {
	if plainMetrics[m] || strings.HasPrefix(m, "version.") {
		return true
	}
	if c, ok := strings.CutPrefix(m, "errors."); ok {
		for _, id := range sim.CauseIDs() {
			if id == c {
				return true
			}
		}
		return false
	}
	a, b, ok := strings.Cut(m, ".")
	return ok && trendNames[a] && trendFields[b]
}

// isCount says whether a metric counts devices or events, so that comparing
// it with a percentage means a share of the fleet.
func isCount(m string) bool {
	return m != "ota.success" && !strings.HasPrefix(m, "generator.") && !strings.HasPrefix(m, "admission.") &&
		!strings.Contains(m, ".p") && !strings.HasSuffix(m, ".avg") && !strings.HasSuffix(m, ".max")
}

// Threshold is "METRIC OP VALUE".
type Threshold struct {
	Text   string
	Metric string
	Op     string
	Value  float64
	Unit   string // "s" durations, "%" percentages, "" counts
}

var reThreshold = regexp.MustCompile(`^([a-z_][a-z0-9_.\-]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)$`)

// Parse reads a threshold; the error says what is wrong and what is wanted.
func Parse(s string) (Threshold, error) {
	m := reThreshold.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Threshold{}, fmt.Errorf("%q: want METRIC OP VALUE, e.g. provision.p95 < 2s, errors == 0 or online >= 99%%", s)
	}
	t := Threshold{Text: strings.TrimSpace(s), Metric: m[1], Op: m[2]}
	if !Known(t.Metric) {
		return Threshold{}, fmt.Errorf("%q: unknown metric %q (see the README's metrics list)", s, t.Metric)
	}
	raw := m[3]
	switch {
	case strings.HasSuffix(raw, "%"):
		v, err := strconv.ParseFloat(strings.TrimSuffix(raw, "%"), 64)
		if err != nil {
			return Threshold{}, fmt.Errorf("%q: bad percentage %q", s, raw)
		}
		t.Value, t.Unit = v, "%"
	default:
		if d, err := time.ParseDuration(raw); err == nil && strings.IndexFunc(raw, isLetter) >= 0 {
			t.Value, t.Unit = d.Seconds(), "s"
		} else if v, err := strconv.ParseFloat(raw, 64); err == nil {
			t.Value = v
		} else {
			return Threshold{}, fmt.Errorf("%q: value %q is not a number, a duration or a percentage", s, raw)
		}
	}
	return t, nil
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r == 'µ' }

// Measure returns the metric as the threshold compares it (a count against
// a percentage becomes a share of the fleet).
func (t Threshold) Measure(v Values) float64 {
	x := v.m[t.Metric]
	if t.Unit == "%" && isCount(t.Metric) && v.devices > 0 {
		return 100 * x / v.devices
	}
	return x
}

func (t Threshold) holds(x float64) bool {
	switch t.Op {
	case "<":
		return x < t.Value
	case "<=":
		return x <= t.Value
	case ">":
		return x > t.Value
	case ">=":
		return x >= t.Value
	case "==":
		return x == t.Value
	}
	return x != t.Value
}

// Format prints a measured value in the threshold's unit.
func (t Threshold) Format(x float64) string {
	switch t.Unit {
	case "s":
		return time.Duration(x * float64(time.Second)).Round(time.Microsecond).String()
	case "%":
		return strconv.FormatFloat(x, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}

// Final says whether a failure of t can no longer recover: t caps a metric
// that only grows (as k6's abortOnFail is meant for). Percentages of
// counts are excluded: the fleet's share can still move.
func (t Threshold) Final(v Values) bool {
	grows := growing[t.Metric] || strings.HasPrefix(t.Metric, "errors.") ||
		strings.HasSuffix(t.Metric, ".count") || strings.HasSuffix(t.Metric, ".max")
	if !grows || t.Unit == "%" {
		return false
	}
	x := t.Measure(v)
	switch t.Op {
	case "<", "<=":
		return !t.holds(x)
	case "==":
		return x > t.Value
	}
	return false
}

// Result is one threshold judged.
type Result struct {
	Threshold string  `json:"threshold"`
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`    // in the threshold's unit: seconds, percent or a count
	Measured  string  `json:"measured"` // the value as people read it
	Passed    bool    `json:"passed"`
}

// Check judges t against v.
func (t Threshold) Check(v Values) Result {
	if _, ok := v.m[t.Metric]; !ok && (serverMetrics[t.Metric] || t.Metric == "ota.success") {
		// A criterion on what this run could not measure fails: reading it
		// as 0 would pass telemetry.lost==0 against any server.
		why := "needs the embedded server"
		if t.Metric == "ota.success" {
			why = "needs the rollout's version"
		}
		return Result{Threshold: t.Text, Metric: t.Metric, Measured: "not measured (" + why + ")"}
	}
	x := t.Measure(v)
	return Result{Threshold: t.Text, Metric: t.Metric, Value: x, Measured: t.Format(x), Passed: t.holds(x)}
}

// CheckAll judges every threshold; ok is false when any failed.
func CheckAll(ts []Threshold, v Values) (rs []Result, ok bool) {
	ok = true
	for _, t := range ts {
		r := t.Check(v)
		ok = ok && r.Passed
		rs = append(rs, r)
	}
	return rs, ok
}

// Names lists every metric name the language knows, with placeholders for
// the families (VERSION, CAUSE), for help texts.
func Names() []string {
	var out []string
	for m := range plainMetrics {
		out = append(out, m)
	}
	for t := range trendNames {
		for f := range trendFields {
			out = append(out, t+"."+f)
		}
	}
	sort.Strings(out)
	return append(out, "version.VERSION", "errors.CAUSE")
}

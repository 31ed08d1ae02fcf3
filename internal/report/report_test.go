package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/internal/verdict"
	"github.com/tbsim/tbsim/sim"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func fixture() sim.Snapshot {
	ms := time.Millisecond
	s := sim.Snapshot{
		Elapsed: 61 * time.Second, Devices: 500, Started: 500, Provisioned: 498, Online: 497,
		ByState:  map[string]int{"online": 497, "backoff": 2, "provisioning": 1},
		Versions: map[string]int{"1.0.0": 3, "1.1.0": 497}, OTAStates: map[string]int{"UPDATED": 497, "FAILED": 3},
		Reprovisions: 2, Boots: 1000, Stranded: 1, EverOnline: true,
		Outcomes: sim.Counts{{Name: "publish acked", Count: 6000}, {Name: "telemetry acked", Count: 5000}, {Name: "connect ok", Count: 1000},
			{Name: "provisioned", Count: 500}, {Name: "ota updated", Count: 497}, {Name: "ota failed", Count: 3}, {Name: "connect failed", Count: 6}, {Name: "reprovisioned", Count: 2}},
		Disconnects: sim.Counts{{Name: "server_closed", Count: 4}, {Name: "network", Count: 1}},
		Errors: []sim.ErrorCause{
			{Cause: "refused_not_authorized", Text: sim.CauseText("refused_not_authorized"), Count: 6, Example: "24:0A:C4:00:00:08"},
			{Cause: "ota_failed", Detail: "checksum mismatch (SHA256)", Text: "OTA failed: checksum mismatch (SHA256)", Count: 3, Example: "24:0A:C4:00:00:04"},
			{Cause: "stranded", Text: sim.CauseText("stranded"), Count: 1, Example: "24:0A:C4:00:00:0C"},
		},
		ErrorTotal: 10,
		Offline: []sim.OfflineGroup{{State: "backoff", Cause: "refused_not_authorized", Text: sim.CauseText("refused_not_authorized"), Count: 2, Examples: []string{"24:0A:C4:00:00:08", "24:0A:C4:00:00:10"}},
			{State: "backoff", Cause: "stranded", Text: sim.CauseText("stranded"), Count: 1, Examples: []string{"24:0A:C4:00:00:0C"}}},
		OTABytes: 521_000_000, OTAWindow: 10 * time.Second,
		Generator: sim.GeneratorStats{Cores: 2, CPUAvg: 0.4, CPUPeak: 1.1, CPUNow: 0.3, Lag: sim.TrendStats{Count: 9000, P99: 3 * ms, Max: 40 * ms},
			Why:       "tbsim used 0.4 of 2 cores (busiest 5 s: 1.1); deadlines fired up to 40ms late (p99 3ms): not generator-bound",
			Admission: sim.AdmissionStats{Adaptive: true, Limit: 64, InFlight: 1, Peak: 40}},
	}
	// Latencies as a fleet records them: spread between a low and a high
	// value, every one observed into a trend.
	spread := func(n int, lo, hi time.Duration) sim.Histogram {
		var tr sim.Trend
		for i := range n {
			tr.Observe(lo + (hi-lo)*time.Duration(i*i)/time.Duration(n*n))
		}
		return tr.Histogram()
	}
	s.Histograms = map[string]sim.Histogram{
		"provision": spread(500, 5*ms, 90*ms), "connect": {}, "publish": spread(6000, 150*time.Microsecond, 1500*ms), "publish_steady": spread(5000, 150*time.Microsecond, 900*ms),
		"chunk": {}, "ota": spread(497, 3*time.Second, 6100*ms), "generator.lag": spread(9000, 0, 40*ms), "admission.wait": spread(3, 15*ms, 21*ms),
	}
	s.Trends = map[string]sim.TrendStats{}
	for _, name := range sim.TrendNames {
		s.Trends[name] = s.Histograms[name].Stats()
	}
	s.Generator.Lag = s.Histograms["generator.lag"].Stats()
	s.Generator.Admission.Wait = s.Histograms["admission.wait"].Stats()
	return s
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./internal/report -update to create it")
	require.Equal(t, string(want), string(got))
}

func TestSummaryText(t *testing.T) {
	s := NewSummary(42, "embedded server", fixture())
	require.InDelta(t, 98.36, s.Rates().Publishes, 0.01)
	require.InDelta(t, 81.97, s.Rates().Telemetry, 0.01)
	require.InDelta(t, 52.1, s.OTARateMBps(), 0.01, "bytes over the download window, not the whole run")
	s.OTA = map[string]map[string]int{"CORE_ESP32 1.1.0": {"UPDATED": 497, "FAILED": 3}}
	s.Thresholds = []verdict.Result{{Threshold: "errors == 0", Measured: "10"}, {Threshold: "provision.p95 < 2s", Measured: "25ms", Passed: true}}
	s.ExitCode, s.Reason = 3, "1 of 2 thresholds failed"
	var b bytes.Buffer
	WriteText(&b, s)
	golden(t, "summary.golden", b.Bytes())
}

// The JSON is what programs read: a schema, milliseconds, causes as objects.
func TestSummaryJSON(t *testing.T) {
	var b bytes.Buffer
	s := NewSummary(42, "x", fixture())
	s.ExitCode, s.Reason = 3, "1 of 1 thresholds failed"
	require.NoError(t, WriteJSON(&b, s))
	var back struct {
		Schema     string  `json:"schema"`
		DurationMs float64 `json:"duration_ms"`
		Devices    struct {
			Provisioned        int `json:"provisioned"`
			ProvisionedThisRun int `json:"provisioned_this_run"`
			Stranded           int `json:"stranded"`
		} `json:"devices"`
		LatencyMs map[string]map[string]any `json:"latency_ms"`
		Errors    struct {
			Total  int `json:"total"`
			Causes []struct {
				Cause, Detail, Example string
				Count                  int
			} `json:"causes"`
		} `json:"errors"`
		NotOnline []struct{ State, Cause string } `json:"not_online"`
		Verdict   struct {
			ExitCode int `json:"exit_code"`
		} `json:"verdict"`
	}
	dec := json.NewDecoder(&b)
	dec.DisallowUnknownFields()
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b.Bytes(), &raw))
	require.NoError(t, json.Unmarshal(b.Bytes(), &back))
	require.Equal(t, Schema, back.Schema)
	require.Equal(t, 61000.0, back.DurationMs)
	require.Contains(t, back.LatencyMs["provision"], "histogram", "v2 keeps the buckets, so shards merge exactly")
	require.Equal(t, 498, back.Devices.Provisioned)
	require.Equal(t, 500, back.Devices.ProvisionedThisRun)
	require.Equal(t, 1, back.Devices.Stranded)
	require.Equal(t, ms(s.Snap.Trends["provision"].P95), back.LatencyMs["provision"]["p95"])
	require.Equal(t, 10, back.Errors.Total)
	require.Equal(t, "ota_failed", back.Errors.Causes[1].Cause)
	require.Equal(t, "checksum mismatch (SHA256)", back.Errors.Causes[1].Detail)
	require.Equal(t, "stranded", back.NotOnline[1].Cause)
	require.Equal(t, 3, back.Verdict.ExitCode)
	for _, k := range []string{"schema", "tbsim_version", "seed", "server", "shard", "duration_ms", "devices", "latency_ms", "counts", "rates_per_s", "ota", "disconnects", "errors", "not_online", "generator", "thresholds", "verdict"} {
		require.Contains(t, raw, k)
	}
	require.Len(t, raw, 17, "no duplicate or stray top-level fields")
}

func TestLiveAndLine(t *testing.T) {
	p := Progress{Duration: 2 * time.Minute, Ramp: 2000, Rates: Rates{Telemetry: 99.5, Publishes: 120, Chunks: 3}}
	lines := Live(fixture(), p)
	require.Equal(t, "tbsim  1m1s/2m0s  devices 500/500  provisioned 498  online 497", lines[0])
	require.Equal(t, "  rates/s: telemetry 99.5  all publishes 120.0  chunks 3.0", lines[1])
	require.Contains(t, strings.Join(lines, "\n"), "handshakes 1 in flight / limit 64 (adaptive), 0 queued")
	require.Contains(t, strings.Join(lines, "\n"), "errors: 10 (refused_not_authorized 6, ota_failed[checksum mismatch (SHA256)] 3, stranded 1)")
	line := Line(fixture(), p)
	require.Contains(t, line, "t=1m1s/2m0s devices=500/500 provisioned=498 online=497 telemetry/s=99.5 publishes/s=120.0 chunks/s=3.0")
	require.Contains(t, line, "errors=10 (refused_not_authorized 6")
}

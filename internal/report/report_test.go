package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/sim"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func fixture() sim.Snapshot {
	ms := time.Millisecond
	return sim.Snapshot{
		Elapsed: 61 * time.Second, Devices: 500, Started: 500, Provisioned: 498, Online: 497,
		ByState:  map[string]int{"online": 497, "backoff": 2, "provisioning": 1},
		Versions: map[string]int{"1.0.0": 3, "1.1.0": 497}, OTAStates: map[string]int{"UPDATED": 497, "FAILED": 3},
		Reprovisions: 2, Boots: 1000,
		Trends: map[string]sim.TrendStats{
			"provision": {Count: 500, Avg: 12 * ms, P50: 10 * ms, P90: 20 * ms, P95: 25 * ms, P99: 40 * ms, Max: 90 * ms},
			"publish":   {Count: 6000, Avg: 300 * time.Microsecond, P50: 200 * time.Microsecond, P90: 500 * time.Microsecond, P95: 800 * time.Microsecond, P99: 2 * ms, Max: 1500 * ms},
			"ota":       {Count: 497, Avg: 4 * time.Second, P50: 3900 * ms, P90: 5 * time.Second, P95: 5500 * ms, P99: 6 * time.Second, Max: 6100 * ms},
		},
		Outcomes:    sim.Counts{{Name: "publish acked", Count: 6000}, {Name: "connect ok", Count: 1000}, {Name: "provisioned", Count: 500}, {Name: "ota updated", Count: 497}, {Name: "ota failed", Count: 3}, {Name: "connect refused: not authorized", Count: 6}},
		Disconnects: sim.Counts{{Name: "server closed", Count: 4}, {Name: "network", Count: 1}},
		Errors:      []sim.ErrorCause{{Cause: "OTA failed: checksum mismatch (SHA256): got aa, want bb", Count: 3, Example: "24:0A:C4:00:00:04"}},
		OTABytes:    521_000_000, OTAWindow: 10 * time.Second,
	}
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
	require.InDelta(t, 98.36, s.PublishRate, 0.01)
	require.InDelta(t, 52.1, s.OTARateMBps, 0.01, "bytes over the download window, not the whole run")
	s.OTA = map[string]map[string]int{"CORE_ESP32 1.1.0": {"UPDATED": 497, "FAILED": 3}}
	var b bytes.Buffer
	WriteText(&b, s)
	golden(t, "summary.golden", b.Bytes())
}

func TestSummaryJSONRoundTrip(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, NewSummary(42, "x", fixture())))
	var back map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &back))
	require.Equal(t, float64(498), back["provisioned"])
	require.Equal(t, float64(500), back["provisionsThisRun"])
	require.Contains(t, back, "trends")
}

func TestPrometheus(t *testing.T) {
	var b bytes.Buffer
	WritePrometheus(&b, fixture())
	golden(t, "metrics.golden", b.Bytes())
}

func TestLiveAndLine(t *testing.T) {
	lines := Live(fixture(), 99.5)
	require.Contains(t, lines[0], "devices 500/500  provisioned 498  online 497  telemetry 99.5 msg/s")
	require.Contains(t, Line(fixture(), 99.5), "online=497 msg/s=99.5 ota=[FAILED 3, UPDATED 497] errors=3")
}

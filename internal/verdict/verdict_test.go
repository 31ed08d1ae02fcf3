package verdict

import (
	"strings"
	"testing"
	"time"

	"github.com/tbsim/tbsim/sim"
)

func snap() sim.Snapshot {
	return sim.Snapshot{
		Devices: 200, Started: 200, Online: 198, Stranded: 1,
		Versions:  map[string]int{"1.0.0": 10, "1.1.0": 190},
		OTAStates: map[string]int{"UPDATED": 190, "FAILED": 2},
		Trends:    map[string]sim.TrendStats{"provision": {Count: 200, P95: 1500 * time.Millisecond, Max: 3 * time.Second}},
		Outcomes:  sim.Counts{{Name: "provisioned", Count: 200}, {Name: "connect failed", Count: 7}},
		Errors: []sim.ErrorCause{{Cause: "server_closed", Count: 4}, {Cause: "ota_failed", Detail: "checksum mismatch (SHA256)", Count: 2},
			{Cause: "ota_failed", Detail: "image rejected", Count: 1}, {Cause: "stranded", Count: 1}},
		ErrorTotal: 8,
		Generator:  sim.GeneratorStats{CPUAvg: 1.9, Bound: true, Lag: sim.TrendStats{P99: 3400 * time.Millisecond}},
	}
}

func TestThresholds(t *testing.T) {
	v := FromSnapshot(snap(), Extra{Target: "1.1.0"})
	for _, c := range []struct {
		text     string
		measured string
		passed   bool
	}{
		{"provision.p95 < 2s", "1.5s", true},
		{"provision.p95<1s", "1.5s", false},
		{"errors == 0", "8", false},
		{"errors.server_closed <= 4", "4", true},
		{"errors.ota_failed == 3", "3", true},
		{"stranded == 0", "1", false},
		{"online >= 99%", "99.0%", true},
		{"online > 99%", "99.0%", false},
		{"ota.success >= 95%", "95.0%", true},
		{"version.1.0.0 == 10", "10", true},
		{"version.9.9.9 == 0", "0", true},
		{"connects.failed < 10", "7", true},
		{"generator.bound == 0", "1", false},
		{"generator.lag.p99 < 1s", "3.4s", false},
		{"generator.cpu <= 1.9", "1.9", true},
	} {
		th, err := Parse(c.text)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.text, err)
			continue
		}
		r := th.Check(v)
		if r.Measured != c.measured || r.Passed != c.passed {
			t.Errorf("%q: measured %s passed %v; want %s %v", c.text, r.Measured, r.Passed, c.measured, c.passed)
		}
	}
}

// What a run could not measure fails with the reason, never reads as 0:
// telemetry.lost against an external server, ota.success without a target.
func TestUnmeasuredFails(t *testing.T) {
	lost := int64(0)
	for _, c := range []struct {
		text  string
		x     Extra
		want  string
		isBad bool
	}{
		{"telemetry.lost == 0", Extra{}, "not measured (needs the embedded server)", true},
		{"server.rate_limited == 0", Extra{}, "not measured (needs the embedded server)", true},
		{"ota.success == 0%", Extra{}, "not measured (needs the rollout's version)", true},
		{"server.rate_limited == 0", Extra{ServerTelemetry: &lost, ServerRateLimited: &lost}, "0", false},
	} {
		th, err := Parse(c.text)
		if err != nil {
			t.Fatal(err)
		}
		r := th.Check(FromSnapshot(snap(), c.x))
		if r.Measured != c.want || r.Passed == c.isBad {
			t.Errorf("%q: measured %q passed %v; want %q passed %v", c.text, r.Measured, r.Passed, c.want, !c.isBad)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"happiness > 3":        `unknown metric "happiness"`,
		"errors is 0":          "want METRIC OP VALUE",
		"errors.gremlins > 0":  `unknown metric "errors.gremlins"`,
		"online >= lots%":      "bad percentage",
		"provision.p95 < soon": "not a number, a duration or a percentage",
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v; want an error with %q", in, err, want)
		}
	}
}

// Final is true only for a failed cap on a metric that never decreases.
func TestFinal(t *testing.T) {
	v := FromSnapshot(snap(), Extra{})
	for text, want := range map[string]bool{
		"errors == 0":            true,
		"errors < 100":           false, // holds, may still fail later but has not
		"connects.failed <= 5":   true,
		"provision.max < 2s":     true,
		"provision.p95 < 1s":     false, // a percentile can come back down
		"online >= 100%":         false,
		"errors.server_closed<1": true,
		"errors <= 1%":           false, // a share of the fleet
	} {
		th, err := Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		if got := th.Final(v); got != want {
			t.Errorf("Final(%q) = %v; want %v", text, got, want)
		}
	}
}

// FuzzParse: no input panics, and what parses prints back as it was given.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"provision.p95 < 2s", "errors==0", "online >= 99%", "version.1.2.3 != 4", "errors.stranded<=1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		th, err := Parse(s)
		if err != nil {
			return
		}
		if !Known(th.Metric) || th.Text != strings.TrimSpace(s) {
			t.Fatalf("Parse(%q) = %+v", s, th)
		}
		th.Check(FromSnapshot(snap(), Extra{}))
	})
}

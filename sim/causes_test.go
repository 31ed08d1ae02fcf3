package sim

import (
	"testing"
	"time"
)

func TestOTAErrorClass(t *testing.T) {
	for in, want := range map[string]string{
		"checksum mismatch (SHA256): got aa11, want bb22":                 "checksum mismatch (SHA256)",
		"chunk 12: no answer after 12 retries, 1.5s":                      "chunk N: no answer after N retries, Ns",
		"image rejected: wrong chip: want ESP32-S3 (9), got ESP32-C3 (5)": "image rejected: wrong chip: want ESP32-S3 (N), got ESP32-C3 (N)",
		"write chunk 3: UPDATE_ERROR_SPACE":                               "write chunk N: UPDATE_ERROR_SPACE",
		"":                                                                "unknown",
		"rollback: CORE_ESP32 v1.1.0 was not confirmed, running v1.0.0": "rollback: CORE_ESP32 v1.1.0 was not confirmed, running v1.0.0",
	} {
		if got := OTAErrorClass(in); got != want {
			t.Errorf("OTAErrorClass(%q) = %q; want %q", in, got, want)
		}
	}
}

// Quantiles come off the buckets within their 1% resolution, never above
// the maximum seen.
func TestTrendStats(t *testing.T) {
	var tr Trend
	for us := 1; us <= 10000; us++ {
		tr.Observe(time.Duration(us) * time.Microsecond)
	}
	s := tr.Stats()
	near := func(name string, got, want time.Duration) {
		if d := got - want; d < -want/100 || d > want/100 {
			t.Errorf("%s = %s; want %s ± 1%%", name, got, want)
		}
	}
	near("p50", s.P50, 5000*time.Microsecond)
	near("p90", s.P90, 9000*time.Microsecond)
	near("p95", s.P95, 9500*time.Microsecond)
	near("p99", s.P99, 9900*time.Microsecond)
	if s.Max != 10*time.Millisecond || s.Count != 10000 || s.Avg != 5000*time.Microsecond {
		t.Errorf("max %s count %d avg %s", s.Max, s.Count, s.Avg)
	}
	var one Trend
	one.Observe(3 * time.Millisecond)
	if s := one.Stats(); s.P50 != 3*time.Millisecond || s.P99 != 3*time.Millisecond {
		t.Errorf("a single value: p50 %s p99 %s; want 3ms (clamped to the max)", s.P50, s.P99)
	}
}

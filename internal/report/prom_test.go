package report

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/internal/version"
	"github.com/tbsim/tbsim/sim"
)

// fixedCollector exports the fixture with a fixed build, so the golden
// file does not depend on how the test binary was built.
func fixedCollector() *Collector {
	c := NewCollector(fixture)
	c.build = version.Info{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26"}
	return c
}

func gather(t *testing.T, c prometheus.Collector) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry() // checks every metric against its description
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	return mfs
}

func TestPrometheus(t *testing.T) {
	var b bytes.Buffer
	for _, mf := range gather(t, fixedCollector()) {
		_, err := expfmt.MetricFamilyToText(&b, mf)
		require.NoError(t, err)
	}
	golden(t, "metrics.golden", b.Bytes())

	problems, err := promlint.NewWithMetricFamilies(gather(t, fixedCollector())).Lint()
	require.NoError(t, err)
	require.Empty(t, problems, "promtool's lint rules")
}

// The histograms' classic buckets agree with the trend: each bucket's
// count is the number of observations at or below its bound (to within
// one sub-bucket), and the native buckets add up to the count.
func TestHistogramBuckets(t *testing.T) {
	var tr sim.Trend
	var vals []time.Duration
	for i := range 5000 {
		// 50 µs to about 7 minutes, log-uniform: every range tbsim sees.
		v := time.Duration(50*math.Pow(1.003, float64(i))) * time.Microsecond
		vals = append(vals, v)
		tr.Observe(v)
	}
	var out dto.Metric
	require.NoError(t, histogramMetric(latencyDescs["ota"], tr.Histogram()).Write(&out))
	h := out.Histogram
	require.Equal(t, uint64(len(vals)), h.GetSampleCount())
	require.Len(t, h.Bucket, len(LatencyBuckets))
	for _, b := range h.Bucket {
		exact := 0
		for _, v := range vals {
			if v.Seconds() <= b.GetUpperBound() {
				exact++
			}
		}
		got := int(b.GetCumulativeCount())
		require.LessOrEqual(t, got, exact, "le=%g", b.GetUpperBound())
		// At most the values in the sub-bucket straddling the bound (under
		// 1% of its value) are counted above it.
		straddling := 0
		for _, v := range vals {
			if v.Seconds() <= b.GetUpperBound() && v.Seconds() > b.GetUpperBound()*0.99 {
				straddling++
			}
		}
		require.GreaterOrEqual(t, got, exact-straddling, "le=%g", b.GetUpperBound())
	}
	require.Equal(t, int32(NativeSchema), h.GetSchema())
	var native int64
	var cur int64
	for _, d := range h.PositiveDelta {
		cur += d
		native += cur
	}
	require.Equal(t, int64(len(vals)), native+int64(h.GetZeroCount()), "every observation is in a native bucket")
}

// /metrics answers the text format with its version and charset, has Go's
// and the process's metrics and the build, and gives protobuf (with
// native histograms) to a scraper that asks for it.
func TestMetricsHandler(t *testing.T) {
	srv := httptest.NewServer(MetricsHandler(NewRegistry(fixture)))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ct := resp.Header.Get("Content-Type")
	require.True(t, strings.HasPrefix(ct, "text/plain; version=0.0.4; charset=utf-8"), "Content-Type %q", ct)
	for _, want := range []string{"\ngo_goroutines ", "\nprocess_cpu_seconds_total ", "\ngo_build_info{", "\ntbsim_build_info{",
		"\ntbsim_provision_seconds_bucket{le=\"0.1\"} ", `tbsim_failures_total{cause="keepalive",detail=""} 0`} {
		require.Contains(t, string(body), want)
	}

	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Contains(t, resp.Header.Get("Content-Type"), "application/vnd.google.protobuf")
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	found := false
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
		if mf.GetName() == "tbsim_publish_seconds" {
			h := mf.Metric[0].Histogram
			require.NotEmpty(t, h.PositiveSpan, "native buckets")
			require.NotEmpty(t, h.Bucket, "classic buckets")
			found = true
		}
	}
	require.True(t, found)
}

// nativeIndex agrees with the definition i = ceil(8 log2 v), powers of two
// included.
func TestNativeIndex(t *testing.T) {
	for _, v := range []float64{1e-6, 0.5, 1, 2, 3, 1024, 0.0001234, 59.9, 600, math.Exp2(3.0 / 8), math.Exp2(-13.0/8) * 1.0000001} {
		if got, want := nativeIndex(v), int(math.Ceil(math.Log2(v)*8)); got != want {
			t.Errorf("nativeIndex(%g) = %d; want %d", v, got, want)
		}
	}
	for us := uint64(1); us < 1<<30; us = us*5/4 + 1 {
		v := float64(us) / 1e6
		if got, want := nativeIndex(v), int(math.Ceil(math.Log2(v)*8)); got != want {
			t.Fatalf("nativeIndex(%g) = %d; want %d", v, got, want)
		}
	}
}

// The devices record into sim's atomics only: the fleet does not depend on
// the metrics library (its Observe takes no lock; the library stays at the
// exporter).
func TestSimWithoutMetricsLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tbsim/tbsim/sim").Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		require.False(t, strings.HasPrefix(dep, "github.com/prometheus/"), "sim depends on %s", dep)
	}
}

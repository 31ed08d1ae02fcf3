package metricslib

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/tbsim/tbsim/internal/report"
	"github.com/tbsim/tbsim/sim"
)

// latencies are sub-millisecond to seconds, log-uniform, precomputed so the
// benchmarks measure recording, not the random source.
var latencies = func() []time.Duration {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]time.Duration, 4096)
	for i := range out {
		out[i] = time.Duration(float64(50*time.Microsecond) * (1 + rng.ExpFloat64()*300))
	}
	return out
}()

func promHistogram(native bool) prometheus.Histogram {
	o := prometheus.HistogramOpts{Name: "x_seconds", Help: "x", Buckets: report.LatencyBuckets}
	if native {
		o.NativeHistogramBucketFactor = 1.1
	}
	return prometheus.NewHistogram(o)
}

func BenchmarkRecord(b *testing.B) {
	var tr sim.Trend
	pc, pn := promHistogram(false), promHistogram(true)
	vmr := vm.NewSet().NewHistogram("x_seconds")
	vml := vm.NewSet().NewPrometheusHistogramExt("x_seconds", report.LatencyBuckets)
	for _, c := range []struct {
		name    string
		observe func(time.Duration)
	}{
		{"tbsim-trend", tr.Observe},
		{"client_golang-classic", func(d time.Duration) { pc.Observe(d.Seconds()) }},
		{"client_golang-classic+native", func(d time.Duration) { pn.Observe(d.Seconds()) }},
		{"victoriametrics-vmrange", func(d time.Duration) { vmr.Update(d.Seconds()) }},
		{"victoriametrics-le", func(d time.Duration) { vml.Update(d.Seconds()) }},
	} {
		b.Run(c.name+"/serial", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				c.observe(latencies[i&4095])
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					c.observe(latencies[i&4095])
				}
			})
		})
	}
}

const histograms, observations = 7, 100_000

func BenchmarkExport(b *testing.B) {
	names := []string{"provision", "connect", "publish", "chunk", "ota", "generator.lag", "admission.wait"}
	var trends [histograms]sim.Trend
	lib := prometheus.NewRegistry()
	libNative := prometheus.NewRegistry()
	set := vm.NewSet()
	for k := range histograms {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: fmt.Sprintf("h%d_seconds", k), Help: "x", Buckets: report.LatencyBuckets})
		hn := prometheus.NewHistogram(prometheus.HistogramOpts{Name: fmt.Sprintf("h%d_seconds", k), Help: "x", Buckets: report.LatencyBuckets, NativeHistogramBucketFactor: 1.1})
		lib.MustRegister(h)
		libNative.MustRegister(hn)
		vh := set.NewPrometheusHistogramExt(fmt.Sprintf("h%d_seconds", k), report.LatencyBuckets)
		for i := range observations {
			d := latencies[(i*7+k)&4095]
			trends[k].Observe(d)
			h.Observe(d.Seconds())
			hn.Observe(d.Seconds())
			vh.Update(d.Seconds())
		}
	}
	ours := prometheus.NewRegistry()
	ours.MustRegister(report.NewCollector(func() sim.Snapshot {
		s := sim.Snapshot{Histograms: map[string]sim.Histogram{}}
		for k, n := range names {
			s.Histograms[n] = trends[k].Histogram()
		}
		return s
	}))
	text := func(reg *prometheus.Registry) func(*bytes.Buffer) {
		return func(w *bytes.Buffer) {
			mfs, err := reg.Gather()
			if err != nil {
				b.Fatal(err)
			}
			for _, mf := range mfs {
				expfmt.MetricFamilyToText(w, mf)
			}
		}
	}
	for _, c := range []struct {
		name  string
		write func(*bytes.Buffer)
	}{
		{"tbsim-collector", text(ours)},
		{"client_golang-classic", text(lib)},
		{"client_golang-classic+native", text(libNative)},
		{"victoriametrics-le", func(w *bytes.Buffer) { set.WritePrometheus(w) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var w bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				w.Reset()
				c.write(&w)
			}
			b.ReportMetric(float64(w.Len()), "bytes/scrape")
		})
	}
}

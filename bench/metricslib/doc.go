// Package metricslib measures what the metrics library costs tbsim, in its
// own module so that VictoriaMetrics/metrics, the candidate not chosen,
// stays out of tbsim's go.mod:
//
//	cd bench/metricslib && go test -run '^$' -bench . -count 3
//
// Recording: a latency observed into sim.Trend (tbsim's lock-free atomics,
// what the devices do now) against the same observation into a
// client_golang histogram (classic buckets, and classic plus native) and
// into VictoriaMetrics/metrics histograms (vmrange and le buckets), from
// one goroutine and from all (RunParallel: devices record concurrently).
//
// Exporting: one scrape of seven latency histograms holding 100,000
// observations each, as text: tbsim's collector (buckets copied from the
// atomics into const histograms) against the library's own histograms.
//
// The figures are in the README ("Metrics") and the issue 15 note.
package metricslib

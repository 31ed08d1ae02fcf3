// Package report renders a fleet's snapshot: the k6-style end-of-run
// summary, the JSON written by --json (and read back by ReadJSON, so that
// Merge can combine the summaries of a sharded run exactly), the live
// status line, and the Prometheus exporter.
//
// # Imports
//
// sim, firmware (state names), internal/verdict and internal/version,
// prometheus/client_golang and the standard library.
//
// # Concurrency
//
// Everything here is a pure function of a snapshot, except the Collector,
// which calls its snapshot function once per scrape from the HTTP server's
// goroutines. The devices never see the metrics library: they record into
// sim's lock-free atomics, and a scrape copies those (bench/metricslib
// measures both paths against the library's own histograms).
package report

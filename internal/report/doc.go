// Package report renders a fleet's snapshot: the k6-style end-of-run
// summary, the JSON written by --json, the live status line, and the
// Prometheus text exposition. It imports sim and the standard library.
package report

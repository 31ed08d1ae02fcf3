// Package fatalreturn is a go/analysis analyzer for tests that also run under
// `tinygo test`: TinyGo 0.33's testing package does not stop a test at
// t.Fatal, t.FailNow or t.Skip (it has no runtime.Goexit; it marks the test
// failed and returns), so code after them runs on bad state, and a skipped
// test counts as failed. It reports every such call that is not the last
// statement of its function and not followed by a return.
//
// Tests that must skip (they need an OS, go list, a network) belong behind
// `//go:build !tinygo` instead.
//
// # Imports
//
// golang.org/x/tools/go/analysis and the standard library; PC only.
package fatalreturn

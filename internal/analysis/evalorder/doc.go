// Package evalorder is a go/analysis analyzer for one class of bug that
// differs between gc and TinyGo: a statement that reads a variable and, in the
// same statement, lets a call change it (a pointer-method call on it, or its
// address passed to a call).
//
// The Go spec orders the calls of a statement left to right but leaves
// unspecified when a plain variable operand is read relative to those calls.
// gc reads it after the calls, TinyGo before, so
//
//	return r, r.decodeBasic(cv) // decodeBasic has a pointer receiver
//
// returned the decoded r under gc and the empty r under TinyGo (issue 11: a
// device provisioned with MQTT_BASIC connected with empty credentials). Write
// the call first, in its own statement.
//
// # What it flags
//
// In each simple statement (and each if/for/switch condition), a use of a
// variable path v, v.f, v.f.g (not inside the call's own receiver or
// arguments, which are evaluated before it) together with a call that may
// write that path:
//   - a method with a pointer receiver called on an addressable v (implicit
//     &v), or called on a pointer p whose pointee is then read as p.f;
//   - &v (or &v.f) passed anywhere in the statement.
//
// Function literals are skipped (their bodies run later), as are assignment
// targets (assigned after every operand is evaluated), except in op-assignments
// (x.n += x.grow()), which read their target.
//
// # Imports
//
// golang.org/x/tools/go/analysis and the standard library. It runs on the
// PC only (internal/analysis/cmd/tbvet, `go vet -vettool`), never on the chip.
package evalorder

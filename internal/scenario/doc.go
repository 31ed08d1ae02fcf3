// Package scenario loads and runs scripted fleet stories: a fleet, a server
// (the embedded emulator, or an external one for the steps that make sense
// there), ordered steps (waits, rollouts, faults, server actions) and
// expectations on metrics in k6's spirit. Files are YAML, decoded strictly:
// an unknown key, a wrong type, an unknown step or condition is an error
// naming the file, line and field.
//
// It imports sim, tbemu, device, firmware and yaml.v3; the CLI (tbsim
// scenario) and the Go tests (TestShippedScenarios) drive it.
package scenario

// Package sim runs a fleet: N device.Boards with identities from (seed,
// index), an optional shard of a larger fleet, a connection ramp with jitter,
// transports (in-memory to an embedded tbemu, TCP or TLS to any server, local
// source addresses), lock-free metrics with HDR-style latency percentiles,
// fleet state (NVS and flash) in a state directory, and fault actions
// (power-cycle, Wi-Fi drops, token erasure).
//
// # Imports
//
// device, device/espimage, firmware (configuration), bbolt and
// the standard library. Not tbemu: the caller passes a Dialer, so the same
// fleet drives the embedded emulator or a real ThingsBoard.
//
// # Concurrency
//
// Fleet.Run owns one goroutine per board and returns only after all of them
// have stopped and the state is flushed. Snapshot and the fault actions may be
// called from any goroutine while it runs.
package sim

// Package core is ThingsBoard's device API as the emulator implements it,
// with no transport: sessions and their authentication, provisioning,
// telemetry, attributes, RPC both ways, firmware packages, the OTA queue and
// chunk serving, rate limits, idle-session reaping, provisioning-session
// expiry and persistence. The contract is ../shared/spec/thingsboard.md.
//
// # Basics
//
// Adapters turn a transport into calls: Connect opens a session for a
// connection, Publish, Subscribe, Unsubscribe and Ping feed it the client's
// packets, Disconnect ends it. The core answers through the Conn the session
// was opened with: Deliver writes one PUBLISH to that one connection (replies
// ignore subscriptions, as ThingsBoard's do), Close ends it with a reason.
// The Go API (CreateDevice, AssignProfileFirmware, SetSharedAttributes,
// StartRPC, ...) is what the REST adapter and tests use.
//
// The adapters are tbemu/mochihook (a mochi-mqtt hook), tbemu/rest
// (ThingsBoard's REST subset) and tbemu/direct (in-process calls for a
// simulator). Package tbemu assembles the first two into a server.
//
// # Time and randomness
//
// The core never sleeps and starts no goroutine. Every delay (OTA packs,
// provisioning-session close, client RPC timeout, server RPC timeout,
// inactivity, state flush) is a function scheduled on Options.Clock, and the
// rate limits read its Now. Generated tokens, names and ids come from
// Options.Rand. With a virtual clock and a seeded source the core's outputs
// are a function of its inputs: where a map is iterated on the way to an
// output (pushes to several sessions, listings, the OTA queue) the order is
// sorted.
//
// # Concurrency
//
// Every method may be called from any goroutine (mochi calls from one per
// client; a real-time clock runs timers on their own). Each session's state
// has its own lock, each device's state too; the device table is under an
// RWMutex and the session table is locked only on connect and disconnect, so
// no exclusive lock is shared by all inbound packets. Under a virtual clock
// everything runs on the caller's goroutine.
//
// # State
//
// With Options.StatePath the state is a bbolt file. A lock file beside it
// (path + ".lock") keeps it to one process and names that process to a
// second one (ErrStateLocked). An existing file is checked before use: the
// pages its meta page counts must all be there and sound, records must
// decode and package bytes must match their SHA-256; otherwise ErrStateDamaged,
// never a panic. Package bytes are stored once per content and deleted with
// the last package that uses them; when free pages are most of the file,
// opening it rewrites it without them. Each queued device's place in the OTA
// queue is part of its persisted state, so New releases the queue again, in
// order, after a restart (kill -9 included).
//
// # Caveats
//
// Conn.Deliver and Conn.Close, and functions given to Clock.At, must not call
// the core back synchronously. Payloads passed to Deliver are read-only and
// may be shared (a chunk is a slice of the package).
//
// # Imports
//
// The standard library, bbolt and firmware/tbapi. Never mochi or net/http
// (those are adapters), nor firmware, device or sim.
package core

// Package tbemu is an embedded, ThingsBoard-compatible server: a mochi-mqtt
// broker that behaves like ThingsBoard's MQTT transport (device API: token
// and MQTT_BASIC auth, provisioning, telemetry, attributes, RPC, firmware
// OTA), plus a subset of ThingsBoard's REST API on the same paths, so that
// real firmware, the official SDKs and tbsim's devices cannot tell it from
// ThingsBoard on those paths. The contract is ../shared/spec/thingsboard.md.
//
// # Basics
//
//	srv, err := tbemu.New(tbemu.Options{MQTTAddr: "127.0.0.1:1883", HTTPAddr: "127.0.0.1:8080"})
//	go srv.Run(ctx)
//	conn, err := srv.Dial(ctx) // in-memory connection, no file descriptor
//
// A default device profile ("default", provision key and secret in Options)
// exists from the start. Devices provision themselves or are created through
// the Go API or REST. Firmware packages are uploaded, assigned to a profile or
// a device, and rolled out through an OTA queue like ThingsBoard's.
//
// Replies (provisioning, attribute and RPC responses, firmware chunks) are
// written to the one connection that asked, whether or not it subscribed, as
// ThingsBoard does; every device uses the same literal v1/devices/me topics,
// so routing them through the broker would leak one device's replies to all.
// Shared-attribute pushes and server-side RPC need a subscription. Device
// publishes are acknowledged and consumed, never routed.
//
// # Layout
//
// Server is an assembly; the parts can be used on their own:
//
//   - tbemu/core: the device API with no transport, driven by calls and an
//     injected clock and random source (the Go API of Server is its, promoted
//     from the embedded *core.Core).
//   - tbemu/mochihook: the core as a self-contained mochi-mqtt hook, for any
//     mochi broker.
//   - tbemu/rest: the REST subset over the core (net/http).
//   - tbemu/direct: the core behind plain in-process calls, for a
//     discrete-event simulator on a virtual clock.
//   - tbemu/emutest: a manual clock for tests.
//
// # Listeners
//
// The TCP, TLS and HTTP listeners are the server's own, served by mochi's
// generic listener (listeners.Net) and net/http: an accept error (EMFILE
// when file descriptors run out) is retried with backoff, never the end of
// the listener, and logged once per burst. MQTT connections are limited
// (Options.MaxConnections, derived from the file-descriptor limit; beyond it
// CONNACK 3), must send a whole CONNECT within Options.ConnectTimeout, and
// a CONNECT that breaks the protocol is closed before mochi sees it (see
// mqttConn). Figures per listener are in Server.Stats and GET
// /api/tbsim/stats. The in-memory listener (Dial) has none of this: its
// clients are the simulator's own.
//
// # State
//
// With Options.StatePath the core keeps everything in a bbolt file, locked
// for one process (a lock file beside it names the holder) and checked when
// opened: a truncated or corrupt file is core.ErrStateDamaged, never a panic.
// The OTA queue is persisted with the devices and resumes after a restart.
//
// # Deliberate differences from ThingsBoard
//
//   - The OTA queue default is 100 devices per second (ThingsBoard: 100 per
//     60 s); set Options.OTAPackSize/OTAPackInterval for ThingsBoard's pace.
//   - CHECK_PRE_PROVISIONED_DEVICES answers a repeat request with FAILURE, as
//     ThingsBoard 4.2.1.1 and later do (SUCCESS up to 4.2.1).
//   - No rule engine: client-side RPC other than getSessionLimits is answered
//     {"error":"timeout"} after ClientRPCTimeout, as ThingsBoard answers when
//     no rule chain replies. X.509 credentials, gateways and the v2 short
//     telemetry topics are not emulated.
//   - Software packages (v2/sw) are not assigned: a request gets NOT_FOUND,
//     as ThingsBoard answers a device without one.
//   - A connection must send its CONNECT within ConnectTimeout; ThingsBoard's
//     transport has no such limit (no idle handler in its Netty pipeline).
//     MQTT connections are limited, and failed REST logins per address;
//     ThingsBoard locks the user after failed logins instead.
//   - Latest telemetry and client attributes are persisted in batches once a
//     second, so a kill -9 loses at most the last second of them; devices,
//     credentials, profiles, packages and shared attributes are written at once.
//
// # Imports
//
// mochi-mqtt, net/http, bbolt, the standard library, firmware/tbapi (shared
// topic and payload code) and its own subpackages. Never firmware, device or
// sim: tbemu is a black box that speaks MQTT and HTTP. The core imports
// neither mochi nor net/http, and the adapters do not import each other
// (internal/depcheck guards both).
package tbemu

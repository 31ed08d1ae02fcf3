//go:build go1.23

// Package mqtt is a small MQTT 3.1.1 client for the firmware's Session port
// with no goroutines and no timers: the caller's loop calls Poll, which reads
// what the connection has, turns packets into firmware events, answers QoS 1
// publishes and keeps the connection alive. It runs over any byte stream
// (Conn): TCP on a PC, an in-memory stream in tests and under TinyGo, the
// chip's network stack on a board.
//
// It lives in firmware/ because it is device code under the same rules as
// the state machine (TinyGo-safe, standard library allowlist, guarded by
// firmware/deps_test.go), though the state machine itself never imports it:
// it is one implementation of the port, chosen by the board's main loop
// (esp32/cmd/fw) or a test.
//
// # Session contract
//
// Events reach the caller only from Poll, through its emit function, and only
// for the connection that is current when they are emitted: when an event's
// handler calls Disconnect or Connect (the firmware does, after a
// provisioning response), Poll stops and the old connection's remaining
// bytes and events are dropped. QoS 0 publishes are acknowledged
// (EventPublished) at the next Poll, QoS 1 ones at their PUBACK.
//
// # Caveats
//
// Clean sessions only, no QoS 2, no retained or will messages, no
// unsubscribe: what the ThingsBoard device API uses. Packets larger than
// Options.MaxPacket (default 80 KiB: ThingsBoard's 64 KiB chunks plus
// headers) end the connection.
//
// # Imports
//
// errors, strconv, time and package firmware (for the event and credential
// types). Not safe for concurrent use: one loop owns a Client.
package mqtt

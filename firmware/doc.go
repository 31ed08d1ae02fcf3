//go:build go1.23

// Package firmware is the device program of a tbsim device: the seed's
// Arduino firmware for a Heltec WiFi LoRa 32 V3 rewritten as a pure,
// synchronous state machine, so the same code runs as one goroutine per
// simulated board on a PC, as the main loop of a real ESP32 under TinyGo, and
// under a deterministic scheduler in tests.
//
// # Basics
//
// A Machine is driven by events (Boot, Tick, Wi-Fi up/down, MQTT connected,
// refused or lost, message received, publish acknowledged, erase token) passed
// to Handle, which returns the next deadline: the caller calls Handle(Tick)
// at that time. The machine acts only through the ports in Ports (clock, NVS,
// MQTT session, OTA writer, Wi-Fi, temperature sensor, random source,
// console); it never starts goroutines or timers and never blocks.
//
// Its story: boot banner and token from NVS; Wi-Fi; provisioning when there is
// no token (connect as "provision", request with the Wi-Fi MAC as device name,
// save the token, reconnect with it); on connect, report the running firmware,
// subscribe, ask for the fw_* shared attributes, then telemetry every 5 s; OTA
// into the other slot with ThingsBoard's chunk protocol, checksum, image
// validation, reboot and UPDATED; reconnects with exponential backoff and
// jitter; re-provisioning after repeated "not authorized" refusals.
//
// # Imports
//
// TinyGo-safe: the standard library allowlist in deps_test.go (no os, net,
// reflect-heavy codecs, log/slog), firmware/tbapi, and nothing newer than the
// Go 1.23 standard library: every file carries "//go:build go1.23" so go vet's
// stdversion check catches newer APIs.
//
// # Concurrency
//
// A Machine is not safe for concurrent use: exactly one goroutine (the board's
// loop) calls Handle. Port methods are called from inside Handle and must not
// call back into the Machine; their outcomes arrive later as events.
package firmware

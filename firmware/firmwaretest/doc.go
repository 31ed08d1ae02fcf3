//go:build go1.23

// Package firmwaretest provides working in-memory fakes for every port of
// package firmware (a manual clock, an NVS with ESP-IDF's limits, a scripted
// MQTT session, an OTA writer with two slots, Wi-Fi, sensor, random source,
// console) and a Rig that wires them to a Machine and drives its deadlines
// deterministically. It is for tests; like the firmware it imports only the
// standard library allowlist, so it also runs under `tinygo test`.
package firmwaretest

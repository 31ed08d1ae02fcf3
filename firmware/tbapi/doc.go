//go:build go1.23

// Package tbapi is ThingsBoard's MQTT device API on the wire: topic names and
// their parsing, the JSON payloads a device sends and receives (and the ones the
// server answers with, so the emulator and the firmware agree byte for byte), and
// the seven OTA checksum algorithms with ThingsBoard's encoding.
//
// The ground truth is ../shared/spec/thingsboard.md, which follows ThingsBoard's
// source (MqttTopics, JsonConverter, JsonMqttAdaptor) where it differs from the
// docs.
//
// # Imports
//
// tbapi is compiled into the device firmware with TinyGo, so it imports only the
// firmware allowlist (see firmware/deps_test.go): errors, strconv, strings, bytes,
// encoding/hex, encoding/binary, crypto/*, hash/*, sort, math and
// github.com/twmb/murmur3. In particular it does not use encoding/json (reflection)
// but its own small JSON reader and writer (json.go). Every file carries
// "//go:build go1.23" so that go vet's stdversion check rejects APIs newer than
// TinyGo 0.33's standard library.
//
// # Caveats
//
// Decoders never panic: they return an error for anything malformed, and the
// JSON reader caps nesting depth. They are fuzzed (see *_fuzz_test.go; the corpus
// lives in testdata/fuzz).
package tbapi

//go:build go1.23

// Package appimage verifies an ESP-IDF application image as it streams in,
// chunk by chunk, with the rules of esp_image_verify (esp_image_format.c, as
// ../shared/spec/esp32.md §1 gives them): magic 0xE9, chip id, 1 to 16
// segments each a multiple of 4 bytes below 16 MiB, the first at least 256
// bytes (the app descriptor), flash-mapped segments aligned to their load
// address modulo 64 KiB, the XOR checksum seeded with 0xEF at
// roundup16(end+1)-1, and the appended SHA-256 when the header says so.
//
// It is the TinyGo-safe core of device/espimage's Parse: the chip's OTA port
// (esp32) cannot keep a megabyte image in RAM, nor read back what it wrote,
// so it verifies while writing. A differential fuzz test holds the two to the
// same verdicts.
//
// # Imports
//
// errors, crypto/sha256, hash (the firmware allowlist).
package appimage

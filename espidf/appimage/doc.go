//go:build go1.23

// Package appimage verifies an ESP-IDF application image as it streams in,
// chunk by chunk, with the rules of esp_image_verify (esp_image_format.c, as
// ../shared/spec/esp32.md §1 gives them): magic 0xE9, chip id, 1 to 16
// segments each a multiple of 4 bytes below 16 MiB, flash-mapped segments
// aligned to their load address modulo the 64 KiB MMU page, the XOR
// checksum seeded with 0xEF at roundup16(end+1)-1, and the appended SHA-256
// when the header says so. An application must also carry its descriptor
// (magic 0xABCD5432 at offset 0x20); an ESP-IDF bootloader and an ESP8266
// image are named as such (ErrBootloader, ErrESP8266).
//
// It also holds each chip's memory map (soc.h, the bootloader's linker
// script) and the second-stage bootloader's load-address check
// (CheckLoad, Verifier.Bootable: verify_load_addresses), for the ESP32,
// S2, S3 and C3.
//
// It is the TinyGo-safe core of device/espimage: the chip's OTA port (esp32)
// cannot keep a megabyte image in RAM, nor read back what it wrote, so it
// verifies while writing, and device/espimage takes its rules from here.
// Differential fuzz tests hold the two to the same verdicts.
//
// # Imports
//
// errors, strconv, crypto/sha256, hash (the firmware allowlist).
package appimage

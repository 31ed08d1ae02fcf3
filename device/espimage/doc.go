// Package espimage reads, validates and builds ESP-IDF application images
// (the .bin PlatformIO and ESP-IDF produce), following esp_image_format.c and
// esp_app_format.h as ../shared/spec/esp32.md summarises them. The rules an
// image must meet that the chip's own verifier also applies (memory maps,
// load addresses, what an application is) live in espidf/appimage, which
// this package calls, so the two cannot drift apart.
//
// # Basics
//
// Parse checks what esp_image_verify checks at esp_ota_end and at boot: the
// 24-byte header (magic 0xE9, chip id), up to 16 segments with their length
// and flash-mapping alignment rules, the XOR checksum seeded with 0xEF at
// roundup16(end+1)-1, and the appended SHA-256. It then requires the
// esp_app_desc_t at offset 0x20 (magic 0xABCD5432), as esp_https_ota does,
// and reads it (version, project name, IDF version). A file that is no
// application is named: an ESP-IDF bootloader (ErrBootloader), an ESP8266
// image (ErrESP8266), an image without a descriptor (ErrNoAppDesc); Parse
// then returns what it read as well. Errors say what is wrong and where:
// "wrong chip: want ESP32-S3 (9), got ESP32-C3 (5)", "truncated at offset N".
//
// Image.CheckLoad is the bootloader's own check before it boots an image
// (verify_load_addresses): every segment it copies to RAM must lie in the
// chip's DRAM, IRAM or RTC memory and clear of the bootloader's. ESP-IDF
// does not run it when an update ends, so neither does Parse: an image that
// fails it is written and selected, then refused at the next boot.
//
// Build writes a valid image for a chip, title, version and size, laid out
// as ESP-IDF lays out an app (DROM with the descriptor, small DRAM and IRAM
// segments, the bulk as IROM), with deterministic bytes, so tests and users
// can make test firmware that a real bootloader loads. Assemble writes an
// image of any segments, checking nothing.
//
// # Caveats
//
// Secure-boot signatures, encrypted images, chip revision limits beyond the
// header fields and eFuse checks are not modelled. Load addresses are
// checked for the ESP32, S2, S3 and C3 only. Arduino images carry the IDF
// library's descriptor (version "esp-idf: v4.4.7 ..."), not the sketch's,
// so callers must not take a firmware's version from it.
//
// It imports the standard library and espidf/appimage.
package espimage

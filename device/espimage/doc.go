// Package espimage reads, validates and builds ESP-IDF application images
// (the .bin PlatformIO and ESP-IDF produce), following esp_image_format.c and
// esp_app_format.h as ../shared/spec/esp32.md summarises them.
//
// # Basics
//
// Parse checks what esp_image_verify checks at esp_ota_end and at boot: the
// 24-byte header (magic 0xE9, chip id), up to 16 segments with their length
// and flash-mapping alignment rules, the XOR checksum seeded with 0xEF at
// roundup16(end+1)-1, and the appended SHA-256. It also reads the
// esp_app_desc_t at offset 0x20 (version, project name, IDF version). Errors
// say what is wrong and where: "wrong chip: want ESP32-S3 (9), got ESP32-C3
// (5)", "truncated at offset N".
//
// Build writes a valid image for a chip, title, version and size, with
// deterministic padding, so tests and users can make test firmware.
//
// # Caveats
//
// Secure-boot signatures, encrypted images, chip revision limits beyond the
// header fields and eFuse checks are not modelled. Arduino images carry the
// IDF library's descriptor (version "esp-idf: v4.4.7 ..."), not the sketch's,
// so callers must not take a firmware's version from it.
//
// It imports only the standard library.
package espimage

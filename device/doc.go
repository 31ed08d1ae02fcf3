// Package device models the hardware around the firmware: a Heltec WiFi LoRa
// 32 V3 (ESP32-S3FN8, 8 MB flash), faithful to ../shared/spec/esp32.md.
//
// # Basics
//
//   - Identity: a base MAC from a real Espressif OUI and 22 bits permuted
//     from (fleet seed, device index); names are the station MAC.
//   - NVS: firmware.NVS with ESP-IDF's limits, in memory (MemNVS) or in one
//     bbolt file for a whole fleet (BoltNVS: a bucket per device, a nested
//     bucket per namespace, writes merged with DB.Batch).
//   - Flash: the default_8MB.csv layout, otadata with ESP-IDF's sequence
//     numbers, states and CRC, the bootloader's slot choice with rollback, and
//     the firmware.OTA port (Arduino Update semantics plus esp_ota_* checks),
//     validating images with package espimage. Slot contents live in an
//     ImageStore, once per SHA-256.
//   - Radio: Wi-Fi values (SSID, BSSID, channel, RSSI random walk, private IP),
//     connect delays and failures.
//   - Board: firmware + these models + one goroutine that feeds the firmware
//     its events, with an MQTT session on paho over a caller-given dialer.
//
// # Imports
//
// firmware and firmware/tbapi (the ports it implements), device/espimage,
// bbolt, paho and the standard library. Never tbemu or sim.
//
// # Concurrency
//
// A Board's state machine runs on the Board's goroutine only; Status and
// Console may be called from any goroutine. BoltNVS and ImageStore are safe
// for concurrent use by many boards; Flash and MemNVS belong to one board.
package device

//go:build go1.23

// Package nvs reads and writes ESP-IDF's non-volatile storage in ESP-IDF's own
// on-flash format, so that one partition image means the same thing to an
// ESP-IDF (or Arduino Preferences) device, to ESP-IDF's tools
// (nvs_partition_gen.py, nvs_tool.py) and to tbsim: a dump of a real board's
// nvs partition can join a simulated fleet (tbsim devices import), a
// simulated device's storage can be flashed (tbsim devices export), and the
// firmware on the chip keeps its token where an ESP-IDF build would.
//
// It lives outside firmware/ and esp32/ because both sides use it: the PC
// (cmd/tbsim, over an in-memory copy) and the chip (esp32, over the SPI
// flash). It is TinyGo-safe for that reason.
//
// # Format
//
// The partition is a sequence of 4096-byte pages (one per flash sector). A
// page has a 32-byte header (state, sequence number, version 0xFE, CRC-32 of
// bytes 4..27), a 32-byte bitmap with 2 bits per entry (11 empty, 10
// written, 00 erased), then 126 entries of 32 bytes. An entry is one item
// header (namespace index, type, span, chunk index, CRC-32 of bytes 0..3 and
// 8..31, a NUL-padded key of at most 15 characters, 8 bytes of data); a
// string or blob chunk is a header followed by span-1 entries of data, with
// its length and data CRC-32 in the header. Namespaces are U8 items in
// namespace 0 whose value is the namespace's index (1..254). Every CRC is
// esp_rom_crc32_le(0xFFFFFFFF, ...), which is Go's
// crc32.Update(0xFFFFFFFF, crc32.IEEETable, ...).
//
// Writes follow ESP-IDF (nvs_page.cpp, nvs_storage.cpp, nvs_pagemanager.cpp):
// an item is written first and marked written after; an update writes the new
// item, then erases the old one; a full page is marked FULL and the next
// free page is initialised with the next sequence number; when one free page
// is left, the page with the most erased entries is marked FREEING, its live
// items are copied to the free page, and it is erased. Open completes what a
// power cut interrupted, as nvs_flash_init does: a FREEING page is moved
// again, half-written entries are erased, and of two copies of a key the
// later one wins.
//
// # Caveats
//
// Strings are the only type written (what the firmware stores); reading
// understands every type, including blobs in both the multi-page (version 2)
// and the legacy single-chunk format. Encrypted NVS is not supported. The
// Store keeps a copy of the whole partition in RAM (20 KB for Arduino's
// nvs partition): reads never touch the flash, which on the ESP32-C3 also
// sidesteps the memory-mapped window showing the flash as it was at boot.
//
// # Imports
//
// The firmware allowlist only (errors, strconv, hash/crc32, ...): no fmt, no
// reflect, no goroutines. A Store is not safe for concurrent use.
package nvs

//go:build tinygo

// Package esp32 wires the firmware's ports to an ESP32-C3 under TinyGo: the
// console on UART0, the clock, the hardware RNG, the reset reason and
// esp_restart, the SPI flash (through the ROM's esp_rom_spiflash_*
// functions), NVS in ESP-IDF's format on that flash (package espidf/nvs),
// OTA into the other app slot with otadata in ESP-IDF's format, and the
// network: in the emulator the OpenCores Ethernet MAC (openeth.go) with
// firmware/netstack, on a real chip a seam for Wi-Fi. esp32/cmd/fw is the
// main loop.
//
// Every file is `//go:build tinygo`: `go build ./...` on a PC skips the
// package, and CI builds it with ../shared/tools/tinygo (see esp32/build.sh).
//
// # Flash layout
//
// TinyGo 0.33 writes a program that the chip's ROM boots at offset 0, with
// no ESP-IDF second-stage bootloader, partition table or otadata (TinyGo's
// builder/esp.go). The program's own layout (Layout) therefore starts the
// data partitions after the program, below 2 MiB (the ROM refuses writes past
// the flash size in the image header, which TinyGo sets to 2 MB). On a board
// flashed with ESP-IDF's bootloader the Arduino layout applies instead (nvs
// at 0x9000): only the offsets change.
//
// # Caveats
//
//   - The heap must end below 0x3FCDE710, where the ROM keeps its .bss and
//     .data (ESP-IDF's bootloader.memory.ld.in): TinyGo's esp32c3.ld lets it
//     run to 0x3FCE0000, and the collector's bookkeeping there breaks the ROM's
//     flash functions. esp32/target/esp32c3-tbsim.ld moves _heap_end; build
//     with esp32/build.sh, which uses it.
//   - Reads go through the memory-mapped flash window (0x3C000000+offset),
//     which shows the flash as it was at boot (the ROM's read function
//     returns zeros under QEMU); NVS keeps its own RAM copy, so this is only
//     a limit for other readers.
//   - Wi-Fi: TinyGo's espradio (0.40 and later) cannot be built by this
//     toolchain; NoWiFi is the seam where it goes (see wifi.go). On a board
//     without the emulator's Ethernet the firmware retries Wi-Fi forever.
//   - The QEMU eFuse holds no MAC: the device name reads 00:00:00:00:00:00.
//
// # Imports
//
// machine, device/esp, the firmware and its ports, espidf/nvs. No goroutines:
// the main loop is single-threaded, like the state machine.
package esp32

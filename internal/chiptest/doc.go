// Package chiptest boots the real firmware in the emulated ESP32-C3: it
// builds esp32/cmd/fw with ../shared/tools/tinygo, lays out a flash image
// (the program at 0, an NVS partition that `tbsim devices export` wrote at
// the nvs offset), runs ../shared/tools/qemu-esp32c3 and reads the serial
// log, then parses the NVS the chip wrote. TestOTAPort runs the OTA port on
// the chip (esp32/cmd/otatest) and checks the app slot and otadata it wrote.
// TestFullLoop boots with --nic: the firmware provisions against `tbsim
// server` on the host over the emulated Ethernet, saves its token, reboots,
// reconnects and sends telemetry.
//
// The tests run only with TBSIM_CHIP_TESTS=1 (the TinyGo/QEMU section of
// .ci/run sets it): they need the shared tools and take tens of seconds.
package chiptest

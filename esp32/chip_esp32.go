//go:build tinygo && esp32

// The original ESP32 (Xtensa LX6). TinyGo 0.33 on this machine only compiles
// it to LLVM IR (Debian's LLVM has no Xtensa back end), which CI does so the
// Xtensa boards are at least type-checked; the S3 has no TinyGo 0.33 target.

package esp32

import (
	"device/esp"

	"github.com/tbsim/tbsim/firmware"
)

// hasOpenEth: QEMU's esp32c3 machine can add the OpenCores Ethernet MAC.
const hasOpenEth = false

func rng() uint32 { return esp.RNG.DATA.Get() }

// efuseMAC reads BLK0's factory MAC (words 1 and 2).
func efuseMAC() (lo, hi uint32) {
	return esp.EFUSE.GetBLK0_RDATA1(), esp.EFUSE.GetBLK0_RDATA2_RD_MAC_1()
}

// resetReason maps the ESP32's RTC reset causes as ESP-IDF's
// esp_system/port/soc/esp32/reset_reason.c does.
func resetReason(cause uint32) firmware.ResetReason {
	switch cause {
	case 0x01:
		return firmware.ResetPowerOn
	case 0x03, 0x0C: // SW_RESET, SW_CPU_RESET
		return firmware.ResetSW
	case 0x05:
		return firmware.ResetDeepSleep
	case 0x07:
		return firmware.ResetTaskWDT
	case 0x08:
		return firmware.ResetIntWDT
	case 0x09, 0x0B, 0x0D, 0x10:
		return firmware.ResetWDT
	case 0x0F:
		return firmware.ResetBrownout
	case 0x06:
		return firmware.ResetSDIO
	}
	return firmware.ResetUnknown
}

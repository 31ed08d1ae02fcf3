//go:build tinygo && esp32c3

package esp32

import (
	"device/esp"
	"machine"

	"github.com/tbsim/tbsim/firmware"
)

// hasOpenEth: QEMU's esp32c3 machine can add the OpenCores Ethernet MAC.
const hasOpenEth = true

func rng() uint32 {
	v, _ := machine.GetRNG() // never fails on the C3
	return v
}

// efuseMAC reads BLK1's MAC_SPI_SYS_0 and the MAC half of MAC_SPI_SYS_1.
func efuseMAC() (lo, hi uint32) {
	return esp.EFUSE.GetRD_MAC_SPI_SYS_0(), esp.EFUSE.GetRD_MAC_SPI_SYS_1_MAC_1()
}

// resetReason maps the C3's reset causes as ESP-IDF's
// esp_system/port/soc/esp32c3/reset_reason.c does (codes from
// soc/esp32c3/include/soc/reset_reasons.h).
func resetReason(cause uint32) firmware.ResetReason {
	switch cause {
	case 0x01:
		return firmware.ResetPowerOn
	case 0x03, 0x0C: // CORE_SW, CPU0_SW
		return firmware.ResetSW
	case 0x05:
		return firmware.ResetDeepSleep
	case 0x07:
		return firmware.ResetTaskWDT
	case 0x08:
		return firmware.ResetIntWDT
	case 0x09, 0x10, 0x12, 0x0D, 0x0B, 0x11:
		return firmware.ResetWDT
	case 0x0F:
		return firmware.ResetBrownout
	case 0x15, 0x16:
		return firmware.ResetUSB
	}
	return firmware.ResetUnknown
}

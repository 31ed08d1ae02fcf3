//go:build tinygo

package esp32

import (
	"device/esp"
	"machine"
	"time"

	"github.com/tbsim/tbsim/firmware"
)

// Console is the serial port: UART0 with -serial=uart, a line per call with
// "\r\n" as Arduino's Serial.println ends it.
type Console struct{}

var _ firmware.Console = Console{}

var crlf = []byte("\r\n")

// Println writes one line.
func (Console) Println(line string) {
	machine.Serial.Write([]byte(line))
	machine.Serial.Write(crlf)
}

// Clock is the system timer. On bare metal TinyGo's time.Now is the Unix
// epoch plus the uptime until something sets the time, which is all the
// firmware needs: it only compares instants.
type Clock struct{}

var _ firmware.Clock = Clock{}

// Now returns the time.
func (Clock) Now() time.Time { return time.Now() }

// Rand is the hardware random number generator (esp_random).
type Rand struct{}

var _ firmware.Rand = Rand{}

// Uint32 returns 32 random bits.
func (Rand) Uint32() uint32 { return rng() }

// ResetReason is esp_reset_reason(): the RTC reset cause of the CPU, mapped
// per chip as ESP-IDF maps it (chip_*.go).
func ResetReason() firmware.ResetReason {
	return resetReason(esp.RTC_CNTL.GetRESET_STATE_RESET_CAUSE_PROCPU())
}

// Restart resets the digital core (RTC_CNTL_SW_SYS_RST), as esp_restart
// does; the next boot reads ResetSW.
func Restart() {
	esp.RTC_CNTL.SetOPTIONS0_SW_SYS_RST(1)
	for {
	}
}

// MAC returns the station MAC from eFuse, uppercase with colons. eFuse
// keeps the six bytes in reverse order.
func MAC() string { return macString(BaseMAC()) }

// BaseMAC is the eFuse MAC as bytes.
func BaseMAC() [6]byte {
	lo, hi := efuseMAC()
	return [6]byte{byte(hi >> 8), byte(hi), byte(lo >> 24), byte(lo >> 16), byte(lo >> 8), byte(lo)}
}

func macString(b [6]byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 17)
	for i, c := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, digits[c>>4], digits[c&0xF])
	}
	return string(out)
}

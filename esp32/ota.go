//go:build tinygo

package esp32

import (
	"errors"

	"github.com/tbsim/tbsim/firmware"
)

// ErrNoOTA is what Begin returns until the OTA port writes the app slot.
var ErrNoOTA = errors.New("ota: not available on this board yet")

// OTA is the firmware's OTA port on the chip.
type OTA struct {
	// RestartHook runs instead of resetting the chip when set (tests, and
	// the main loop's last words).
	RestartHook func()
}

var _ firmware.OTA = (*OTA)(nil)

// Begin refuses: see ErrNoOTA.
func (o *OTA) Begin(size int) error { return ErrNoOTA }

// Write refuses.
func (o *OTA) Write(p []byte) error { return ErrNoOTA }

// End refuses.
func (o *OTA) End() error { return ErrNoOTA }

// Abort does nothing.
func (o *OTA) Abort() {}

// SetBoot refuses.
func (o *OTA) SetBoot(title, version string) error { return ErrNoOTA }

// MarkValid confirms nothing: the program at offset 0 is the factory app.
func (o *OTA) MarkValid() error { return nil }

// Running is the factory image (its title and version come from the config).
func (o *OTA) Running() firmware.Image { return firmware.Image{} }

// Restart resets the chip.
func (o *OTA) Restart() {
	if o.RestartHook != nil {
		o.RestartHook()
		return
	}
	Restart()
}

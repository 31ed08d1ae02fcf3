//go:build go1.23

package firmwaretest

import (
	"errors"

	"github.com/tbsim/tbsim/firmware"
)

// MemOTA is an in-memory OTA writer with two slots. It checks what the real
// one checks cheaply (size, first byte 0xE9, running image confirmed); image
// validation at End is replaced by EndErr.
type MemOTA struct {
	SlotSize int
	Run      firmware.Image // running image
	Written  []byte         // inactive slot contents of the current update
	Begun    bool
	Aborts   int
	Ended    bool
	Pending  *firmware.Image // set by SetBoot: boots at the next restart
	Restarts int
	Valid    int // MarkValid calls

	BeginErr, WriteErr, EndErr, SetBootErr error
}

var _ firmware.OTA = (*MemOTA)(nil)

// Errors of MemOTA, named after ESP-IDF's and Arduino Update's.
var (
	ErrRollbackInvalidState = errors.New("ESP_ERR_OTA_ROLLBACK_INVALID_STATE")
	ErrSize                 = errors.New("UPDATE_ERROR_SIZE")
	ErrMagic                = errors.New("UPDATE_ERROR_MAGIC_BYTE")
	ErrNotRunning           = errors.New("no update running")
)

// Begin starts an update.
func (o *MemOTA) Begin(size int) error {
	if o.BeginErr != nil {
		return o.BeginErr
	}
	if o.Run.PendingVerify {
		return ErrRollbackInvalidState
	}
	if size <= 0 || (o.SlotSize > 0 && size > o.SlotSize) {
		return ErrSize
	}
	o.Begun, o.Ended, o.Written = true, false, o.Written[:0]
	return nil
}

// Write appends to the slot.
func (o *MemOTA) Write(p []byte) error {
	if !o.Begun {
		return ErrNotRunning
	}
	if o.WriteErr != nil {
		return o.WriteErr
	}
	if len(o.Written) == 0 && len(p) > 0 && p[0] != 0xE9 {
		return ErrMagic
	}
	o.Written = append(o.Written, p...)
	return nil
}

// End finishes the update.
func (o *MemOTA) End() error {
	if !o.Begun {
		return ErrNotRunning
	}
	o.Begun = false
	if o.EndErr != nil {
		return o.EndErr
	}
	o.Ended = true
	return nil
}

// Abort drops the update.
func (o *MemOTA) Abort() {
	o.Begun = false
	o.Aborts++
}

// SetBoot selects the written image for the next boot.
func (o *MemOTA) SetBoot(title, version string) error {
	if !o.Ended {
		return ErrNotRunning
	}
	if o.SetBootErr != nil {
		return o.SetBootErr
	}
	o.Pending = &firmware.Image{Title: title, Version: version, PendingVerify: true}
	return nil
}

// MarkValid confirms the running image.
func (o *MemOTA) MarkValid() error {
	o.Valid++
	o.Run.PendingVerify = false
	return nil
}

// Running returns the running image.
func (o *MemOTA) Running() firmware.Image { return o.Run }

// Restart counts; the Rig reboots the machine.
func (o *MemOTA) Restart() { o.Restarts++ }

// Reboot switches to the pending image, as the bootloader would.
func (o *MemOTA) Reboot() {
	if o.Pending != nil {
		o.Run, o.Pending = *o.Pending, nil
	}
}

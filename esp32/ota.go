//go:build tinygo

package esp32

import (
	"errors"

	"github.com/tbsim/tbsim/espidf/appimage"
	"github.com/tbsim/tbsim/espidf/otadata"
	"github.com/tbsim/tbsim/firmware"
)

// OTA errors, named after Arduino Update's.
var (
	ErrOTASize       = errors.New("UPDATE_ERROR_SIZE")
	ErrOTAMagic      = errors.New("UPDATE_ERROR_MAGIC_BYTE")
	ErrOTANotRunning = errors.New("ota: no update in progress")
	ErrOTAPending    = errors.New("ESP_ERR_OTA_ROLLBACK_INVALID_STATE")
)

// OTA is the firmware's OTA port on the flash: the image goes into the
// inactive app slot (Layout.App1, ota_1), verified as it streams (package
// appimage: esp_image_verify's rules for an ESP32-C3 image), and SetBoot
// writes otadata in ESP-IDF's format (package otadata), as
// esp_ota_set_boot_partition does.
//
// Like Arduino's Update, the first 16 bytes are held back until the image
// verified, so a half-written slot never looks bootable.
//
// # Caveats
//
// The ROM boots offset 0 and TinyGo 0.33 writes no second-stage bootloader,
// so on this layout nothing reads otadata at boot: the program at 0 keeps
// running, and the firmware reports the update as rolled back. With ESP-IDF's
// bootloader and partition table in front (a real board's layout) the same
// writes select the new slot.
type OTA struct {
	// RestartHook runs instead of resetting the chip when set.
	RestartHook func()

	slot, data Partition
	flash      *Flash
	v          *appimage.Verifier
	size, off  int
	head       [16]byte
	sector     []byte // the sector being filled
	written    bool   // an image verified since Begin
	otadata    [2]otadata.Entry
}

var _ firmware.OTA = (*OTA)(nil)

// NewOTA returns the port over Layout's app1 and otadata partitions.
func NewOTA() *OTA {
	o := &OTA{slot: Layout.App1, data: Layout.OTAData}
	o.flash = NewFlash(o.slot)
	// otadata as it was at boot; later writes are tracked in o.otadata.
	od := NewFlash(o.data)
	for i := range o.otadata {
		var b [32]byte
		od.ReadAt(b[:], int64(i*otadata.SectorSize))
		o.otadata[i] = otadata.Decode(b[:])
	}
	return o
}

// Begin starts an update of size bytes into the inactive slot.
func (o *OTA) Begin(size int) error {
	if size <= 0 || size > int(o.slot.Size) {
		return ErrOTASize
	}
	o.v = appimage.NewVerifier(appimage.ChipESP32C3)
	o.size, o.off, o.written = size, 0, false
	o.sector = o.sector[:0]
	return nil
}

// Write appends to the slot, a sector at a time.
func (o *OTA) Write(p []byte) error {
	if o.v == nil {
		return ErrOTANotRunning
	}
	if o.off == 0 && len(p) > 0 && p[0] != 0xE9 {
		return ErrOTAMagic
	}
	if o.off+len(p) > o.size {
		return ErrOTASize
	}
	o.v.Write(p)
	for len(p) > 0 {
		if o.off < len(o.head) {
			n := copy(o.head[o.off:], p)
			o.sector = append(o.sector, erased16[:n]...) // held back: written last
			o.off, p = o.off+n, p[n:]
		} else {
			n := min(len(p), sectorSize-len(o.sector))
			o.sector = append(o.sector, p[:n]...)
			o.off, p = o.off+n, p[n:]
		}
		if len(o.sector) == sectorSize {
			if err := o.flushSector(); err != nil {
				return err
			}
		}
	}
	return nil
}

var erased16 = [16]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// flushSector erases the sector the buffer belongs to and programs it.
func (o *OTA) flushSector() error {
	start := (o.off - 1) / sectorSize
	if err := o.flash.EraseBlocks(int64(start), 1); err != nil {
		return err
	}
	for len(o.sector)%4 != 0 {
		o.sector = append(o.sector, 0xFF)
	}
	_, err := o.flash.WriteAt(o.sector, int64(start*sectorSize))
	o.sector = o.sector[:0]
	return err
}

// End writes the rest, verifies the image and only then writes its first
// 16 bytes.
func (o *OTA) End() error {
	if o.v == nil {
		return ErrOTANotRunning
	}
	v := o.v
	o.v = nil
	if len(o.sector) > 0 {
		if err := o.flushSector(); err != nil {
			return err
		}
	}
	if o.off != o.size {
		return appimage.ErrTruncated
	}
	if err := v.Finish(); err != nil {
		return err
	}
	if _, err := o.flash.WriteAt(o.head[:], 0); err != nil {
		return err
	}
	o.written = true
	return nil
}

// Abort drops the update; the slot keeps no valid header.
func (o *OTA) Abort() { o.v = nil }

// SetBoot selects the new slot in otadata (state NEW), writing the inactive
// sector: erase, then the 32-byte entry.
func (o *OTA) SetBoot(title, version string) error {
	if !o.written {
		return ErrOTANotRunning
	}
	sector, e := otadata.Select(o.otadata, 1, 2)
	od := NewFlash(o.data)
	if err := od.EraseBlocks(int64(sector), 1); err != nil {
		return err
	}
	b := e.Bytes()
	if _, err := od.WriteAt(b[:], int64(sector*otadata.SectorSize)); err != nil {
		return err
	}
	o.otadata[sector] = e
	return nil
}

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

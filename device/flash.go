package device

import (
	"errors"
	"fmt"

	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/espidf/otadata"
	"github.com/tbsim/tbsim/firmware"
)

// Partition is one row of a partition table.
type Partition struct {
	Name    string
	Type    uint8 // 0 app, 1 data
	Subtype uint8
	Offset  uint32
	Size    uint32
}

// Default8MB is arduino-esp32's default_8MB.csv, the Heltec V3's layout.
var Default8MB = []Partition{
	{"nvs", 1, 0x02, 0x9000, 0x5000},
	{"otadata", 1, 0x00, 0xE000, 0x2000},
	{"app0", 0, 0x10, 0x10000, 0x330000},
	{"app1", 0, 0x11, 0x340000, 0x330000},
	{"spiffs", 1, 0x82, 0x670000, 0x180000},
	{"coredump", 1, 0x03, 0x7F0000, 0x10000},
}

// SlotSize is the size of each OTA app slot in Default8MB.
const SlotSize = 0x330000

// Errors of the OTA port: Arduino Update's and esp_ota_*'s names.
var (
	ErrUpdateSize      = errors.New("UPDATE_ERROR_SIZE")
	ErrUpdateSpace     = errors.New("UPDATE_ERROR_SPACE")
	ErrUpdateMagic     = errors.New("UPDATE_ERROR_MAGIC_BYTE")
	ErrUpdateAbort     = errors.New("UPDATE_ERROR_ABORT")
	ErrUpdateActivate  = errors.New("UPDATE_ERROR_ACTIVATE")
	ErrUpdateNotBegun  = errors.New("UPDATE_ERROR_NOT_BEGUN")
	ErrUpdateRunning   = errors.New("update already running")
	ErrRollbackPending = errors.New("ESP_ERR_OTA_ROLLBACK_INVALID_STATE")
	ErrValidateFailed  = errors.New("ESP_ERR_OTA_VALIDATE_FAILED")
	ErrNoBootableApp   = errors.New("no bootable app partition")
)

// Slot is what an app partition holds.
type Slot struct {
	Blob *Blob // nil: erased (or unbootable: the first bytes held back)
	// Title and Version of the ThingsBoard assignment that wrote the slot (the
	// descriptor of an Arduino image names the IDF library, not the sketch).
	Title   string
	Version string
	Desc    *espimage.AppDesc // the image's own descriptor, kept as well
}

// Flash is one device's flash: otadata, two app slots and an in-progress
// update. Power loss is modelled by the caller dropping the Flash's RAM state
// (PowerCycle): what was written stays, an open update is lost.
type Flash struct {
	Chip    espimage.Chip
	Otadata [2]OTAEntry
	Slots   [2]Slot
	store   *ImageStore

	running int // slot running since the last boot, -1 before the first
	update  *update
	// CutNextOtadataWrite simulates power loss after the erase of the next
	// otadata sector write (before the 32 bytes are written).
	CutNextOtadataWrite bool
}

type update struct {
	slot int
	size int
	w    *BlobWriter
}

// NewFlash returns a factory-fresh flash: the factory image in app0 (as a
// USB flash writes it) and boot_app0.bin's otadata.
func NewFlash(store *ImageStore, chip espimage.Chip, factory *Blob, title, version string) *Flash {
	f := &Flash{Chip: chip, Otadata: BootApp0(), store: store, running: -1}
	f.Slots[0] = Slot{Blob: factory, Title: title, Version: version}
	return f
}

// Boot runs the second-stage bootloader's choice with rollback enabled
// (bootloader_utility_get_selected_boot_partition): PENDING_VERIFY entries
// become ABORTED, the active entry's slot boots, NEW becomes PENDING_VERIFY;
// a slot that fails verification falls back to the other one. It also drops
// any update in progress (RAM does not survive a reset).
func (f *Flash) Boot() (int, error) {
	f.update = nil
	for i := range f.Otadata {
		if f.Otadata[i].Valid() && f.Otadata[i].State == OTAPendingVerify {
			f.writeEntry(i, withState(f.Otadata[i], OTAAborted))
		}
	}
	slot := 0
	act := otadata.Active(f.Otadata)
	if act >= 0 {
		slot = otadata.Slot(f.Otadata[act].Seq, len(f.Slots))
	}
	if !f.bootable(slot) {
		other := 1 - slot
		if !f.bootable(other) {
			f.running = -1
			return -1, ErrNoBootableApp
		}
		f.running = other
		return other, nil
	}
	if act >= 0 && f.Otadata[act].State == OTANew {
		f.writeEntry(act, withState(f.Otadata[act], OTAPendingVerify))
	}
	f.running = slot
	return slot, nil
}

func withState(e OTAEntry, s OTAState) OTAEntry {
	e.State = s
	return e
}

// writeEntry erases sector i and writes e, as write_otadata does; a cut
// leaves the sector erased.
func (f *Flash) writeEntry(i int, e OTAEntry) {
	f.Otadata[i] = ErasedEntry
	if f.CutNextOtadataWrite {
		f.CutNextOtadataWrite = false
		return
	}
	f.Otadata[i] = e
}

// bootable is the bootloader's image_load(ESP_IMAGE_LOAD) of a slot: the
// image verifies, and every segment it copies to RAM may be loaded there
// (verify_load_addresses). An update can write and select an image that
// fails the second check; the bootloader then boots the other slot.
func (f *Flash) bootable(slot int) bool {
	b := f.Slots[slot].Blob
	if b == nil {
		return false
	}
	img, err := b.Image(f.Chip)
	return err == nil && img.CheckLoad() == nil
}

// Running returns the running slot (-1 before Boot).
func (f *Flash) Running() int { return f.running }

// RunningImage implements firmware.OTA.Running.
func (f *Flash) RunningImage() firmware.Image {
	if f.running < 0 {
		return firmware.Image{}
	}
	s := f.Slots[f.running]
	img := firmware.Image{Title: s.Title, Version: s.Version}
	if act := otadata.Active(f.Otadata); act >= 0 && otadata.Slot(f.Otadata[act].Seq, len(f.Slots)) == f.running {
		img.PendingVerify = f.Otadata[act].State == OTAPendingVerify
	}
	return img
}

// Begin starts an update of size bytes into the slot not running. Like
// esp_ota_begin it refuses while the running image is unconfirmed.
func (f *Flash) Begin(size int) error {
	if f.update != nil {
		return ErrUpdateRunning
	}
	if size <= 0 || size > SlotSize {
		return fmt.Errorf("%w: %d bytes for a slot of %d", ErrUpdateSize, size, SlotSize)
	}
	if f.RunningImage().PendingVerify {
		return ErrRollbackPending
	}
	target := 1 - max(f.running, 0)
	f.Slots[target] = Slot{} // erased as the writes reach it
	f.update = &update{slot: target, size: size, w: f.store.NewWriter(size)}
	return nil
}

// Write appends to the update. The first byte must be 0xE9, as Update checks.
func (f *Flash) Write(p []byte) error {
	u := f.update
	if u == nil {
		return ErrUpdateNotBegun
	}
	if u.w.Len()+len(p) > u.size {
		f.Abort()
		return fmt.Errorf("%w: %d bytes past the announced %d", ErrUpdateSpace, u.w.Len()+len(p)-u.size, u.size)
	}
	if u.w.Len() == 0 && len(p) > 0 && p[0] != espimage.Magic {
		f.Abort()
		return fmt.Errorf("%w: first byte 0x%02X", ErrUpdateMagic, p[0])
	}
	u.w.Write(p)
	return nil
}

// End checks that every byte arrived and validates the image (esp_image_verify
// for this chip); the slot then holds it, not yet selected for boot.
func (f *Flash) End() error {
	u := f.update
	if u == nil {
		return ErrUpdateNotBegun
	}
	f.update = nil
	if u.w.Len() != u.size {
		return fmt.Errorf("%w: %d of %d bytes written", ErrUpdateAbort, u.w.Len(), u.size)
	}
	blob := u.w.Commit()
	img, err := blob.Image(f.Chip)
	if err != nil {
		blob.Release()
		return fmt.Errorf("%w: %w: %w", ErrUpdateActivate, ErrValidateFailed, err)
	}
	f.Slots[u.slot] = Slot{Blob: blob, Desc: img.Desc}
	return nil
}

// Abort drops the update; the slot keeps no bootable image (Arduino holds
// the first 16 bytes back until End).
func (f *Flash) Abort() {
	if f.update != nil {
		f.update.w.Discard()
		f.update = nil
	}
}

// SetBoot selects the slot End filled for the next boot
// (esp_ota_set_boot_partition): verify again, then write the new sequence
// number to the inactive otadata sector in state NEW.
func (f *Flash) SetBoot(title, version string) error {
	target := 1 - max(f.running, 0)
	s := &f.Slots[target]
	if s.Blob == nil {
		return ErrUpdateNotBegun
	}
	if _, err := s.Blob.Image(f.Chip); err != nil {
		return fmt.Errorf("%w: %w", ErrValidateFailed, err)
	}
	s.Title, s.Version = title, version
	f.writeEntry(otadata.Select(f.Otadata, target, len(f.Slots)))
	return nil
}

// MarkValid confirms the running image
// (esp_ota_mark_app_valid_cancel_rollback): the active sector is rewritten VALID.
func (f *Flash) MarkValid() error {
	act := otadata.Active(f.Otadata)
	if act < 0 || otadata.Slot(f.Otadata[act].Seq, len(f.Slots)) != f.running {
		return nil // factory-style boot: nothing to confirm
	}
	if f.Otadata[act].State != OTAValid {
		f.writeEntry(act, withState(f.Otadata[act], OTAValid))
	}
	return nil
}

// Updating reports whether an update is open.
func (f *Flash) Updating() bool { return f.update != nil }

// SelectedSlot is the slot otadata selects, without verifying its image
// (0 when no entry is valid, as the bootloader falls back to ota_0).
func (f *Flash) SelectedSlot() int {
	if act := otadata.Active(f.Otadata); act >= 0 {
		return otadata.Slot(f.Otadata[act].Seq, len(f.Slots))
	}
	return 0
}

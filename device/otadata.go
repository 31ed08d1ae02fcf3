package device

import "github.com/tbsim/tbsim/espidf/otadata"

// The otadata format and the bootloader's rules for it are espidf/otadata's,
// which the chip's OTA port uses too; these names are the PC model's API.

// OTAState is esp_ota_img_states_t.
type OTAState = otadata.State

// OTA image states.
const (
	OTANew           = otadata.StateNew
	OTAPendingVerify = otadata.StatePendingVerify
	OTAValid         = otadata.StateValid
	OTAInvalid       = otadata.StateInvalid
	OTAAborted       = otadata.StateAborted
	OTAUndefined     = otadata.StateUndefined
)

// OTAEntry is esp_ota_select_entry_t, the 32 bytes at the start of each
// otadata sector. An erased sector reads as all 0xFF.
type OTAEntry = otadata.Entry

// ErasedEntry is what an erased sector holds.
var ErasedEntry = OTAEntry{Seq: 0xFFFFFFFF, Label: [20]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, State: OTAUndefined, CRC: 0xFFFFFFFF}

// EntryCRC is esp_rom_crc32_le(UINT32_MAX, &seq, 4).
func EntryCRC(seq uint32) uint32 { return otadata.CRC(seq) }

// NewEntry returns an entry with its CRC and an erased label.
func NewEntry(seq uint32, state OTAState) OTAEntry { return otadata.New(seq, state) }

// BootApp0 is otadata as PlatformIO flashes it with boot_app0.bin: sector 0
// selects app0 in state UNDEFINED, sector 1 holds an invalid entry.
func BootApp0() [2]OTAEntry {
	e1 := ErasedEntry
	e1.Seq = 0
	return [2]OTAEntry{NewEntry(1, OTAUndefined), e1}
}

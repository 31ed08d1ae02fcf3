package device

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"
)

// OTAState is esp_ota_img_states_t.
type OTAState uint32

// otadata states (esp_flash_partitions.h).
const (
	OTANew           OTAState = 0
	OTAPendingVerify OTAState = 1
	OTAValid         OTAState = 2
	OTAInvalid       OTAState = 3
	OTAAborted       OTAState = 4
	OTAUndefined     OTAState = 0xFFFFFFFF
)

// String names the state as ESP-IDF does, without the prefix.
func (s OTAState) String() string {
	switch s {
	case OTANew:
		return "NEW"
	case OTAPendingVerify:
		return "PENDING_VERIFY"
	case OTAValid:
		return "VALID"
	case OTAInvalid:
		return "INVALID"
	case OTAAborted:
		return "ABORTED"
	case OTAUndefined:
		return "UNDEFINED"
	}
	return "state(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// OTAEntry is esp_ota_select_entry_t, the 32 bytes at the start of each
// otadata sector. An erased sector reads as all 0xFF.
type OTAEntry struct {
	Seq   uint32
	Label [20]byte
	State OTAState
	CRC   uint32
}

// ErasedEntry is what an erased sector holds.
var ErasedEntry = OTAEntry{Seq: 0xFFFFFFFF, Label: [20]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, State: OTAUndefined, CRC: 0xFFFFFFFF}

// EntryCRC is esp_rom_crc32_le(UINT32_MAX, &seq, 4): a CRC-32 over the four
// sequence bytes only, from an initial 0xFFFFFFFF (not crc32.ChecksumIEEE).
func EntryCRC(seq uint32) uint32 {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], seq)
	return crc32.Update(0xFFFFFFFF, crc32.IEEETable, b[:])
}

// NewEntry returns an entry with its CRC.
func NewEntry(seq uint32, state OTAState) OTAEntry {
	e := ErasedEntry
	e.Seq, e.State, e.CRC = seq, state, EntryCRC(seq)
	return e
}

// Valid is bootloader_common_ota_select_valid: a sequence number is set, the
// state is neither INVALID nor ABORTED, and the CRC matches.
func (e OTAEntry) Valid() bool {
	return e.Seq != 0xFFFFFFFF && e.State != OTAInvalid && e.State != OTAAborted && e.CRC == EntryCRC(e.Seq)
}

// Bytes encodes the entry as it sits in flash.
func (e OTAEntry) Bytes() [32]byte {
	var b [32]byte
	binary.LittleEndian.PutUint32(b[0:], e.Seq)
	copy(b[4:24], e.Label[:])
	binary.LittleEndian.PutUint32(b[24:], uint32(e.State))
	binary.LittleEndian.PutUint32(b[28:], e.CRC)
	return b
}

// activeEntry returns the index (0 or 1) of the active otadata entry, or -1:
// of the valid entries, the one with the higher sequence number.
func activeEntry(d [2]OTAEntry) int {
	switch v0, v1 := d[0].Valid(), d[1].Valid(); {
	case v0 && v1:
		if d[1].Seq > d[0].Seq {
			return 1
		}
		return 0
	case v0:
		return 0
	case v1:
		return 1
	}
	return -1
}

// slotOf is the OTA slot an entry selects: (seq - 1) % number of slots.
func slotOf(seq uint32, slots int) int { return int((seq - 1) % uint32(slots)) }

// BootApp0 is otadata as PlatformIO flashes it with boot_app0.bin: sector 0
// selects app0 in state UNDEFINED, sector 1 holds an invalid entry.
func BootApp0() [2]OTAEntry {
	e1 := ErasedEntry
	e1.Seq = 0
	return [2]OTAEntry{NewEntry(1, OTAUndefined), e1}
}

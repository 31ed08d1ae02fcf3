//go:build go1.23

// Package otadata reads and writes ESP-IDF's OTA selection (the otadata
// partition: two 4 KiB sectors, each starting with one 32-byte
// esp_ota_select_entry_t), so that an ESP-IDF second-stage bootloader picks
// the slot our OTA port chose (esp_flash_partitions.h, esp_ota_ops.c,
// bootloader_common_loader.c; ../shared/spec/esp32.md §2.2).
//
// TinyGo-safe (hash/crc32 and strconv only), for the chip's OTA port and the
// PC's flash model (device), so both follow the same rules.
package otadata

import (
	"hash/crc32"
	"strconv"
)

// State is esp_ota_img_states_t.
type State uint32

// OTA image states.
const (
	StateNew           State = 0
	StatePendingVerify State = 1
	StateValid         State = 2
	StateInvalid       State = 3
	StateAborted       State = 4
	StateUndefined     State = 0xFFFFFFFF
)

// String names the state as ESP-IDF does, without the prefix.
func (s State) String() string {
	switch s {
	case StateNew:
		return "NEW"
	case StatePendingVerify:
		return "PENDING_VERIFY"
	case StateValid:
		return "VALID"
	case StateInvalid:
		return "INVALID"
	case StateAborted:
		return "ABORTED"
	case StateUndefined:
		return "UNDEFINED"
	}
	return "state(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// SectorSize is the size of each of the two otadata sectors.
const SectorSize = 4096

// Entry is esp_ota_select_entry_t: seq, 20 label bytes, state, crc.
type Entry struct {
	Seq   uint32
	Label [20]byte
	State State
	CRC   uint32
}

// CRC is esp_rom_crc32_le(UINT32_MAX, &seq, 4).
func CRC(seq uint32) uint32 {
	b := [4]byte{byte(seq), byte(seq >> 8), byte(seq >> 16), byte(seq >> 24)}
	return crc32.Update(0xFFFFFFFF, crc32.IEEETable, b[:])
}

// New returns an entry with its CRC and an erased label.
func New(seq uint32, state State) Entry {
	e := Entry{Seq: seq, State: state, CRC: CRC(seq)}
	for i := range e.Label {
		e.Label[i] = 0xFF
	}
	return e
}

// Decode reads an entry from its 32 bytes.
func Decode(b []byte) Entry {
	var e Entry
	e.Seq = le32(b)
	copy(e.Label[:], b[4:24])
	e.State = State(le32(b[24:]))
	e.CRC = le32(b[28:])
	return e
}

// Bytes encodes the entry as it sits on flash.
func (e Entry) Bytes() [32]byte {
	var b [32]byte
	put32(b[0:], e.Seq)
	copy(b[4:24], e.Label[:])
	put32(b[24:], uint32(e.State))
	put32(b[28:], e.CRC)
	return b
}

// Valid is bootloader_common_ota_select_valid.
func (e Entry) Valid() bool {
	return e.Seq != 0xFFFFFFFF && e.State != StateInvalid && e.State != StateAborted && e.CRC == CRC(e.Seq)
}

// Active returns which of the two entries selects the boot slot (the valid
// one with the higher seq), or -1.
func Active(d [2]Entry) int {
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

// Slot is the OTA slot an entry selects: (seq-1) % slots.
func Slot(seq uint32, slots int) int { return int((seq - 1) % uint32(slots)) }

// Select is what esp_ota_set_boot_partition writes to make slot boot next:
// the sector to write (the inactive one) and the entry, whose seq is the
// smallest above the active one that selects slot, in state NEW (rollback
// enabled, as Arduino's library builder sets it).
func Select(d [2]Entry, slot, slots int) (sector int, e Entry) {
	a := Active(d)
	if a < 0 {
		return 0, New(uint32(slot+1), StateNew)
	}
	seq := d[a].Seq + 1
	for Slot(seq, slots) != slot {
		seq++
	}
	return 1 - a, New(seq, StateNew)
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

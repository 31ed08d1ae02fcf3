package espimage

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
)

// BuildOptions describe a test image.
type BuildOptions struct {
	Chip    Chip
	Title   string // esp_app_desc_t project_name (cut to 31 bytes)
	Version string // esp_app_desc_t version (cut to 31 bytes)
	Size    int    // total file size; rounded up to a multiple of 16, at least MinSize
}

// MinSize is the smallest image Build writes: header, four segments (DROM
// with the descriptor, DRAM, IRAM, IROM), checksum padding and the digest.
const MinSize = 368

// layout is where an ESP-IDF app's segments load on a chip, from ESP-IDF's
// linker scripts (components/esp_system/ld/<chip>/memory.ld.in) and
// soc/<chip>/include/soc/soc.h.
type layout struct {
	drom, irom uint32 // SOC_DROM_LOW, SOC_IROM_LOW
	// sharedMMU: the instruction and data buses map flash through one MMU
	// table (S3, C3), so the DROM pages start after the IROM pages, as
	// ESP-IDF links them (rodata at 0x3C0B0020 after 0xB pages of text).
	sharedMMU bool
	iram      uint32 // iram0_0_seg origin: where .iram0.text starts
	// dram is dram0_0_seg's origin. With diram set (the S2, S3 and C3 share
	// SRAM between the buses), .dram0.data starts where the IRAM text ends,
	// seen from the data bus (iram - diram).
	dram  uint32
	diram uint32
}

var layouts = map[Chip]layout{
	ESP32:   {drom: 0x3F400000, irom: 0x400D0000, iram: 0x40080000, dram: 0x3FFB0000},
	ESP32S2: {drom: 0x3F000000, irom: 0x40080000, iram: 0x40022000, diram: 0x70000},
	ESP32S3: {drom: 0x3C000000, irom: 0x42000000, sharedMMU: true, iram: 0x40378000, diram: 0x6F0000},
	ESP32C3: {drom: 0x3C000000, irom: 0x42000000, sharedMMU: true, iram: 0x40380000, diram: 0x700000},
}

// Caps on the RAM segments: a real app's IRAM text and initialised DRAM
// data are tens of KiB; the rest of the image is flash-mapped.
const (
	maxIRAM = 16 << 10
	maxDRAM = 8 << 10
)

// Build writes a valid image laid out as ESP-IDF lays out an app: DROM
// segment 0 (the app descriptor, then read-only data) mapped at file offset
// 0x20, a small DRAM segment, a small IRAM segment holding the entry point,
// and the bulk as IROM mapped at the same offset in its 64 KiB MMU page as
// in the file; then the checksum and the SHA-256. Every RAM segment lies in
// the chip's memory, clear of the bootloader's, so the image also passes
// the bootloader's CheckLoad. The bytes are deterministic (derived from
// chip, title and version) and the file is exactly o.Size bytes.
func Build(o BuildOptions) ([]byte, error) {
	l, ok := layouts[o.Chip]
	if !ok {
		return nil, fmt.Errorf("build: chip %v not supported (ESP32, ESP32-S2, ESP32-S3, ESP32-C3)", o.Chip)
	}
	size := max((o.Size+15)&^15, MinSize)
	body := size - 32 // roundup16(end+1)
	end := body - 4   // a multiple of 4 within the last 16-byte block
	payload := end - HeaderSize - 4*SegHeaderSize
	dramLen := min(max(payload/64&^3, 4), maxDRAM)
	iramLen := min(max(payload/32&^3, 4), maxIRAM)
	rest := payload - dramLen - iramLen
	dromLen := max(rest/3&^3, AppDescSize)
	iromLen := rest - dromLen

	fill := newFiller(o)
	desc := make([]byte, dromLen)
	writeDesc(desc[:AppDescSize], o)
	fill.read(desc[AppDescSize:])
	dram, iram, irom := fill.bytes(dramLen), fill.bytes(iramLen), fill.bytes(iromLen)

	// The IROM segment's data starts at this file offset: its load address
	// keeps the offset within the page (esp_image_format.c verify_segment_header).
	iromOff := HeaderSize + 4*SegHeaderSize + dromLen + dramLen + iramLen
	iromLoad := l.irom + uint32(iromOff%flashPageAlign)
	dromLoad := l.drom + AppDescOffset
	if l.sharedMMU {
		pages := (iromOff%flashPageAlign + iromLen + flashPageAlign - 1) / flashPageAlign
		dromLoad += uint32(pages * flashPageAlign)
	}
	dramLoad := l.dram
	if l.diram != 0 {
		dramLoad = (l.iram+uint32(iramLen)+15)&^15 - l.diram
	}
	return Assemble(o.Chip, l.iram, []RawSegment{{dromLoad, desc}, {dramLoad, dram}, {l.iram, iram}, {iromLoad, irom}}), nil
}

// RawSegment is one segment for Assemble.
type RawSegment struct {
	LoadAddr uint32
	Data     []byte // a multiple of 4 bytes
}

// Assemble writes an image of segs for chip as esptool's elf2image writes
// one: the header (entry, DIO at 80 MHz, 8 MB flash, SHA-256 appended), the
// segments in order, the zero padding with the checksum, and the digest. It
// checks nothing, so tests can make images a bootloader refuses.
func Assemble(chip Chip, entry uint32, segs []RawSegment) []byte {
	end := HeaderSize
	for _, s := range segs {
		end += SegHeaderSize + len(s.Data)
	}
	body := ChecksumOffset(end) + 1
	out := make([]byte, body+sha256.Size)
	out[0], out[1], out[2], out[3] = Magic, byte(len(segs)), 2, 0x3F // DIO, 80 MHz / 8 MB
	binary.LittleEndian.PutUint32(out[4:], entry)
	out[8] = 0xEE // WP pin disabled
	binary.LittleEndian.PutUint16(out[12:], uint16(chip))
	out[23] = 1 // hash appended
	off, sum := HeaderSize, byte(checksumSeed)
	for _, s := range segs {
		binary.LittleEndian.PutUint32(out[off:], s.LoadAddr)
		binary.LittleEndian.PutUint32(out[off+4:], uint32(len(s.Data)))
		off += SegHeaderSize + copy(out[off+SegHeaderSize:], s.Data)
		for _, b := range s.Data {
			sum ^= b
		}
	}
	out[body-1] = sum
	digest := sha256.Sum256(out[:body])
	copy(out[body:], digest[:])
	return out
}

func writeDesc(d []byte, o BuildOptions) {
	binary.LittleEndian.PutUint32(d, AppDescMagic)
	copy(d[16:47], o.Version)
	copy(d[48:79], o.Title)
	copy(d[80:95], "00:00:00")
	copy(d[96:111], "Jan  1 2026")
	copy(d[112:143], "tbsim-espimage")
}

// filler yields xorshift bytes seeded from the options, so two versions
// differ everywhere and the same options always give the same image.
type filler struct{ x uint64 }

func newFiller(o BuildOptions) *filler {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s\x00%s", o.Chip, o.Title, o.Version)
	return &filler{x: h.Sum64() | 1}
}

func (f *filler) read(b []byte) {
	var w [8]byte
	for i := 0; i < len(b); i += 8 {
		f.x ^= f.x << 13
		f.x ^= f.x >> 7
		f.x ^= f.x << 17
		binary.LittleEndian.PutUint64(w[:], f.x)
		copy(b[i:], w[:])
	}
}

func (f *filler) bytes(n int) []byte {
	b := make([]byte, n)
	f.read(b)
	return b
}

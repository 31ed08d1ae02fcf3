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

// MinSize is the smallest image Build writes: header, a descriptor segment, a
// 4-byte code segment, checksum padding and the digest.
const MinSize = 336

// memory maps used by Build: where segment 0 (DROM, holding the descriptor)
// and the code segment (IRAM) load, per chip.
var buildMaps = map[Chip]struct{ drom, iram uint32 }{
	ESP32:   {0x3F400020, 0x40080000},
	ESP32S2: {0x3F000020, 0x40022000},
	ESP32S3: {0x3C000020, 0x40370000},
	ESP32C3: {0x3C000020, 0x40380000},
}

// Build writes a valid image: header with hash_appended, segment 0 with the
// app descriptor at 0x20, one IRAM segment of deterministic bytes (derived
// from chip, title and version) sized so the file is exactly o.Size bytes,
// the checksum and the SHA-256.
func Build(o BuildOptions) ([]byte, error) {
	m, ok := buildMaps[o.Chip]
	if !ok {
		return nil, fmt.Errorf("build: chip %v not supported (ESP32, ESP32-S2, ESP32-S3, ESP32-C3)", o.Chip)
	}
	size := max((o.Size+15)&^15, MinSize)
	body := size - 32 // roundup16(end+1)
	end := body - 4   // a multiple of 4 within the last 16-byte block
	codeLen := end - HeaderSize - 2*SegHeaderSize - AppDescSize
	out := make([]byte, size)
	out[0], out[1], out[2], out[3] = Magic, 2, 2, 0x3F // 2 segments, DIO, 80 MHz / 8 MB
	binary.LittleEndian.PutUint32(out[4:], m.iram+4)
	out[8] = 0xEE // WP pin disabled
	binary.LittleEndian.PutUint16(out[12:], uint16(o.Chip))
	out[23] = 1 // hash appended

	off := HeaderSize
	binary.LittleEndian.PutUint32(out[off:], m.drom)
	binary.LittleEndian.PutUint32(out[off+4:], AppDescSize)
	writeDesc(out[AppDescOffset:AppDescOffset+AppDescSize], o)
	off = AppDescOffset + AppDescSize
	binary.LittleEndian.PutUint32(out[off:], m.iram)
	binary.LittleEndian.PutUint32(out[off+4:], uint32(codeLen))
	fill(out[off+SegHeaderSize:off+SegHeaderSize+codeLen], o)

	sum := byte(checksumSeed)
	for _, r := range [][2]int{{AppDescOffset, AppDescOffset + AppDescSize}, {off + SegHeaderSize, end}} {
		for _, b := range out[r[0]:r[1]] {
			sum ^= b
		}
	}
	out[ChecksumOffset(end)] = sum
	digest := sha256.Sum256(out[:body])
	copy(out[body:], digest[:])
	return out, nil
}

func writeDesc(d []byte, o BuildOptions) {
	binary.LittleEndian.PutUint32(d, AppDescMagic)
	copy(d[16:47], o.Version)
	copy(d[48:79], o.Title)
	copy(d[80:95], "00:00:00")
	copy(d[96:111], "Jan  1 2026")
	copy(d[112:143], "tbsim-espimage")
}

// fill writes xorshift bytes seeded from the options, so two versions differ
// everywhere and the same options always give the same image.
func fill(b []byte, o BuildOptions) {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s\x00%s", o.Chip, o.Title, o.Version)
	x := h.Sum64() | 1
	for i := 0; i < len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], x)
		copy(b[i:], w[:])
	}
}

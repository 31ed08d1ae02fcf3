//go:build go1.23

package appimage

import (
	"crypto/sha256"
	"errors"
	"hash"
)

// Chip ids (esp_app_format.h esp_chip_id_t).
const (
	ChipESP32   uint16 = 0x0000
	ChipESP32S2 uint16 = 0x0002
	ChipESP32C3 uint16 = 0x0005
	ChipESP32S3 uint16 = 0x0009
	AnyChip     uint16 = 0xFFFF
)

// Verification errors.
var (
	ErrMagic     = errors.New("image: bad magic byte (want 0xE9)")
	ErrWrongChip = errors.New("image: built for another chip")
	ErrSegment   = errors.New("image: bad segment")
	ErrTruncated = errors.New("image: truncated")
	ErrChecksum  = errors.New("image: checksum mismatch")
	ErrSHA256    = errors.New("image: SHA-256 mismatch")
	// ErrESP8266: an ESP8266 image (see IsESP8266), which no ESP32 boots.
	ErrESP8266 = errors.New("ESP8266 image, not supported")
	// ErrBootloader: a well-formed image with no app descriptor whose
	// segments all load into RAM, such as ESP-IDF's second-stage bootloader.
	ErrBootloader = errors.New("bootloader image, not an application")
	// ErrNoAppDesc: no esp_app_desc_t magic (0xABCD5432) at offset 0x20.
	ErrNoAppDesc = errors.New("image: no app descriptor (magic 0xABCD5432 at offset 0x20)")
	// ErrLoadAddress: a segment the bootloader refuses to load (LoadError).
	ErrLoadAddress = errors.New("image: segment load address invalid")
)

const (
	headerSize  = 24
	segHdrSize  = 8
	maxSegments = 16
	maxSegLen   = 16 << 20
	descSize    = 256
	seed        = 0xEF
)

type stage uint8

const (
	stHeader stage = iota
	stSegHeader
	stSegData
	stPadding
	stChecksum
	stHash
	stDone
)

// Verifier checks an image written to it in pieces of any size.
type Verifier struct {
	want    uint16
	stage   stage
	need    int // bytes left in the current stage
	pos     int // bytes consumed
	buf     []byte
	chip    uint16
	nseg    int
	seg     int
	hashed  bool
	sum     byte
	h       hash.Hash
	err     error
	segData int // file offset of the current segment's data

	desc  [4]byte // bytes 0x20-0x23: the app descriptor's magic word
	entry uint32
	segs  [maxSegments]Seg
}

// NewVerifier starts a verification for chip (AnyChip accepts any).
func NewVerifier(chip uint16) *Verifier {
	return &Verifier{want: chip, need: headerSize, sum: seed, h: sha256.New()}
}

// Write consumes bytes; it never fails (the verdict comes from Finish), and
// bytes after a complete image are ignored, as esp_image_verify ignores the
// rest of the partition.
func (v *Verifier) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && v.err == nil && v.stage != stDone {
		k := min(v.need, len(p))
		chunk := p[:k]
		p = p[k:]
		if v.stage != stHash {
			v.h.Write(chunk) // the digest covers everything up to the checksum byte
		}
		for i := max(v.pos, AppDescOffset); i < min(v.pos+k, AppDescOffset+4); i++ {
			v.desc[i-AppDescOffset] = chunk[i-v.pos]
		}
		v.consume(chunk)
		v.pos += k
		v.need -= k
		if v.need == 0 && v.err == nil {
			v.next()
		}
	}
	return n, nil
}

func (v *Verifier) consume(chunk []byte) {
	switch v.stage {
	case stHeader, stSegHeader, stHash:
		v.buf = append(v.buf, chunk...)
	case stSegData:
		for _, b := range chunk {
			v.sum ^= b
		}
	case stChecksum:
		if chunk[0] != v.sum {
			v.err = ErrChecksum
		}
	}
	if v.stage == stHeader && v.pos == 0 && chunk[0] != 0xE9 {
		v.err = ErrMagic
		if chunk[0] == magicESP8266V2 {
			v.err = ErrESP8266
		}
	}
}

// next ends a stage and sets up the following one.
func (v *Verifier) next() {
	switch v.stage {
	case stHeader:
		h := v.buf
		v.chip = uint16(h[12]) | uint16(h[13])<<8
		v.entry = le32(h[4:])
		v.nseg, v.hashed = int(h[1]), h[23] == 1
		switch {
		case IsESP8266(h):
			v.err = ErrESP8266
		case v.want != AnyChip && v.chip != v.want:
			v.err = ErrWrongChip
		case v.nseg == 0 || v.nseg > maxSegments:
			v.err = ErrSegment
		}
		v.segHeader()
	case stSegHeader:
		v.segmentData()
	case stSegData:
		v.seg++
		if v.seg < v.nseg {
			v.segHeader()
			return
		}
		end := v.pos
		v.stage, v.need = stPadding, (end+1+15)&^15-1-end
		if v.need == 0 {
			v.next()
		}
	case stPadding:
		v.stage, v.need = stChecksum, 1
	case stChecksum:
		if !v.hashed {
			v.stage = stDone
			return
		}
		v.stage, v.need, v.buf = stHash, 32, v.buf[:0]
	case stHash:
		if string(v.h.Sum(nil)) != string(v.buf) {
			v.err = ErrSHA256
		}
		v.stage = stDone
	}
}

func (v *Verifier) segHeader() {
	v.stage, v.need, v.buf = stSegHeader, segHdrSize, v.buf[:0]
}

func (v *Verifier) segmentData() {
	b := v.buf
	load := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	n := int(uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24)
	v.segData = v.pos
	mapped := FlashMapped(v.chip, load)
	v.segs[v.seg] = Seg{load, uint32(n)}
	switch {
	case n%4 != 0 || n >= maxSegLen || n < 0:
		v.err = ErrSegment
	case mapped && uint32(v.segData)%mmuPage != load%mmuPage:
		v.err = ErrSegment
	}
	v.stage, v.need = stSegData, n
	if n == 0 && v.err == nil {
		v.next()
	}
}

// Finish returns the verdict once the whole image has been written:
// esp_image_verify's, plus the app descriptor an application must carry
// (esp_https_ota checks it; see CheckApp).
func (v *Verifier) Finish() error {
	if v.err != nil {
		return v.err
	}
	if v.stage != stDone {
		return ErrTruncated
	}
	return CheckApp(v.chip, v.entry, le32(v.desc[:]), v.segs[:v.nseg])
}

// Bootable is the second-stage bootloader's verdict on a verified image:
// every segment it would copy to RAM checked with CheckLoad. A verified
// image that is not bootable is written and selected by esp_ota_end and
// esp_ota_set_boot_partition alike, and refused only at the next boot.
func (v *Verifier) Bootable() error {
	if err := v.Finish(); err != nil {
		return err
	}
	for i := 0; i < v.nseg; i++ {
		if err := CheckLoad(v.chip, i, v.segs[i].Load, v.segs[i].Len); err != nil {
			return err
		}
	}
	return nil
}

// Size is the image's length, known once Finish succeeds.
func (v *Verifier) Size() int { return v.pos }

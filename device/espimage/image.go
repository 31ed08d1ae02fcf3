package espimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/tbsim/tbsim/espidf/appimage"
)

// Chip is esp_chip_id_t, the chip id in the image header.
type Chip uint16

// Chip ids (esp_app_format.h).
const (
	ESP32   Chip = 0x0000
	ESP32S2 Chip = 0x0002
	ESP32C3 Chip = 0x0005
	ESP32S3 Chip = 0x0009
	ESP32C2 Chip = 0x000C
	ESP32C6 Chip = 0x000D
	ESP32H2 Chip = 0x0010
	ESP32P4 Chip = 0x0012
	ESP32C5 Chip = 0x0017
	AnyChip Chip = 0xFFFF // for Parse: accept any chip id
)

var chipNames = map[Chip]string{
	ESP32: "ESP32", ESP32S2: "ESP32-S2", ESP32C3: "ESP32-C3", ESP32S3: "ESP32-S3", ESP32C2: "ESP32-C2",
	ESP32C6: "ESP32-C6", ESP32H2: "ESP32-H2", ESP32P4: "ESP32-P4", ESP32C5: "ESP32-C5",
}

// String names the chip, e.g. "ESP32-S3".
func (c Chip) String() string {
	if n, ok := chipNames[c]; ok {
		return n
	}
	return "chip 0x" + strconv.FormatUint(uint64(c), 16)
}

// ParseChip reads "esp32s3", "ESP32-S3" and the like.
func ParseChip(s string) (Chip, bool) {
	norm := func(x string) string {
		return string(bytes.ToLower(bytes.ReplaceAll([]byte(x), []byte("-"), nil)))
	}
	for c, n := range chipNames {
		if norm(n) == norm(s) {
			return c, true
		}
	}
	return 0, false
}

// Format constants.
const (
	Magic          = 0xE9
	AppDescMagic   = 0xABCD5432
	HeaderSize     = 24
	SegHeaderSize  = 8
	AppDescOffset  = HeaderSize + SegHeaderSize // 0x20
	AppDescSize    = 256
	MaxSegments    = 16
	maxSegmentLen  = 16 << 20
	checksumSeed   = 0xEF
	flashPageAlign = 0x10000
)

// Header is esp_image_header_t.
type Header struct {
	SegmentCount uint8
	SPIMode      uint8
	SPISpeedSize uint8 // low nibble speed, high nibble flash size
	Entry        uint32
	Chip         Chip
	MinRevFull   uint16
	MaxRevFull   uint16
	HashAppended bool
}

// Segment is one loadable segment.
type Segment struct {
	LoadAddr uint32
	Offset   int // file offset of the data
	Len      int
}

// AppDesc is esp_app_desc_t.
type AppDesc struct {
	SecureVersion uint32
	Version       string
	ProjectName   string
	Time          string
	Date          string
	IDFVersion    string
}

// Image is a parsed image. Parse returns it validated; with ErrBootloader,
// ErrNoAppDesc or ErrESP8266 it returns what it read as well, for tools.
type Image struct {
	Header
	Segments       []Segment
	Checksum       byte
	ChecksumOffset int
	SHA256         [32]byte // the appended digest (zero if none)
	Size           int      // bytes the image occupies, digest included
	Desc           *AppDesc // the app descriptor (nil when not an application)
	// Bootloader is the esp_bootloader_desc_t of a bootloader built by
	// ESP-IDF 5.2 or later (with ErrBootloader; nil for older ones).
	Bootloader *BootloaderDesc
	// ESP8266 is set with ErrESP8266: the 8-byte header's fields (Header
	// holds magic-independent ones: SegmentCount, SPIMode, SPISpeedSize,
	// Entry) and, for a V1 image, its segments.
	ESP8266 *ESP8266Image
}

// BootloaderDesc is esp_bootloader_desc_t (80 bytes at offset 0x20).
type BootloaderDesc struct {
	Version    uint32
	IDFVersion string
	DateTime   string
}

// ESP8266Image describes an ESP8266 image (esptool's ESP8266ROMFirmwareImage
// or, magic 0xEA, ESP8266V2FirmwareImage).
type ESP8266Image struct {
	V2       bool      // magic 0xEA
	Segments []Segment // V1: the segments after the 8-byte header, as far as they fit the file
}

// Validation errors. Parse wraps them with detail; use errors.Is. The kinds
// an application image must not be are espidf/appimage's, so both verifiers
// name them alike.
var (
	ErrTruncated = errors.New("truncated")
	ErrMagic     = errors.New("bad magic")
	ErrWrongChip = errors.New("wrong chip")
	ErrSegment   = errors.New("bad segment")
	ErrChecksum  = errors.New("checksum mismatch")
	ErrSHA256    = errors.New("SHA-256 mismatch")

	ErrESP8266     = appimage.ErrESP8266
	ErrBootloader  = appimage.ErrBootloader
	ErrNoAppDesc   = appimage.ErrNoAppDesc
	ErrLoadAddress = appimage.ErrLoadAddress
)

func truncated(off int) error { return fmt.Errorf("%w at offset %d", ErrTruncated, off) }

// Parse validates data as an application image for chip want (AnyChip skips
// the chip check), as esp_image_verify does at esp_ota_end and
// esp_ota_set_boot_partition, and requires the app descriptor, as
// esp_https_ota does. It does not check load addresses: the bootloader does
// that when it boots the image (CheckLoad). Bytes after the image (slot
// padding) are ignored.
func Parse(data []byte, want Chip) (*Image, error) {
	if appimage.IsESP8266(data[:min(len(data), HeaderSize)]) {
		return esp8266(data)
	}
	if len(data) < HeaderSize {
		return nil, truncated(len(data))
	}
	if data[0] != Magic {
		return nil, fmt.Errorf("%w: want 0xE9, got 0x%02X", ErrMagic, data[0])
	}
	img := &Image{Header: Header{
		SegmentCount: data[1], SPIMode: data[2], SPISpeedSize: data[3],
		Entry:        binary.LittleEndian.Uint32(data[4:]),
		Chip:         Chip(binary.LittleEndian.Uint16(data[12:])),
		MinRevFull:   binary.LittleEndian.Uint16(data[15:]),
		MaxRevFull:   binary.LittleEndian.Uint16(data[17:]),
		HashAppended: data[23] == 1,
	}}
	if want != AnyChip && img.Chip != want {
		return nil, fmt.Errorf("%w: want %v (%d), got %v (%d)", ErrWrongChip, want, want, img.Chip, img.Chip)
	}
	if img.SegmentCount == 0 || img.SegmentCount > MaxSegments {
		return nil, fmt.Errorf("%w: %d segments (1 to %d allowed)", ErrSegment, img.SegmentCount, MaxSegments)
	}
	end, err := img.readSegments(data)
	if err != nil {
		return nil, err
	}
	if err := img.verify(data, end); err != nil {
		return nil, err
	}
	return img.classify(data)
}

// classify requires what makes a verified image an application (the same
// decision as appimage.CheckApp), and says what it is otherwise.
func (img *Image) classify(data []byte) (*Image, error) {
	segs := make([]appimage.Seg, len(img.Segments))
	for i, s := range img.Segments {
		segs[i] = appimage.Seg{Load: s.LoadAddr, Len: uint32(s.Len)}
	}
	magic := binary.LittleEndian.Uint32(data[AppDescOffset:])
	err := appimage.CheckApp(uint16(img.Chip), img.Entry, magic, segs)
	switch {
	case err == nil:
		img.Desc = readDesc(data)
		return img, nil
	case errors.Is(err, ErrBootloader):
		img.Bootloader = readBootloaderDesc(data, img.Segments[0])
		what := "no app descriptor; its " + strconv.Itoa(len(img.Segments)) + " segments load into RAM and it starts in one"
		if d := img.Bootloader; d != nil {
			what += "; bootloader descriptor: ESP-IDF " + d.IDFVersion + ", built " + d.DateTime
		}
		return img, fmt.Errorf("%w (%s)", ErrBootloader, what)
	case errors.Is(err, ErrNoAppDesc):
		return img, fmt.Errorf("%w: got 0x%08X", ErrNoAppDesc, magic)
	}
	return nil, fmt.Errorf("%w 0: length %d, too short for the 256-byte app descriptor", ErrSegment, img.Segments[0].Len)
}

// CheckLoad is the second-stage bootloader's check of a verified image
// before it boots it (verify_load_addresses): every segment it copies to
// RAM must lie in the chip's DRAM, IRAM or RTC memory and clear of the
// bootloader's own. An image that fails it is written and selected by an
// update like any other, and refused at the next boot. Chips without a
// memory map here pass.
func (img *Image) CheckLoad() error {
	for i, s := range img.Segments {
		if err := appimage.CheckLoad(uint16(img.Chip), i, s.LoadAddr, uint32(s.Len)); err != nil {
			return err
		}
	}
	return nil
}

// esp8266 describes an ESP8266 image and refuses it.
func esp8266(data []byte) (*Image, error) {
	e := &ESP8266Image{V2: data[0] != Magic}
	img := &Image{ESP8266: e}
	if len(data) >= 8 {
		img.SegmentCount, img.SPIMode, img.SPISpeedSize = data[1], data[2], data[3]
		img.Entry = binary.LittleEndian.Uint32(data[4:])
	}
	if e.V2 {
		return img, fmt.Errorf("%w (V2 format, magic 0xEA)", ErrESP8266)
	}
	off := 8
	for i := 0; i < int(img.SegmentCount) && i < MaxSegments && off+SegHeaderSize <= len(data); i++ {
		s := Segment{LoadAddr: binary.LittleEndian.Uint32(data[off:]), Offset: off + SegHeaderSize,
			Len: int(binary.LittleEndian.Uint32(data[off+4:]))}
		if s.Len < 0 || s.Offset+s.Len > len(data) {
			break
		}
		e.Segments = append(e.Segments, s)
		off = s.Offset + s.Len
	}
	return img, fmt.Errorf("%w (8-byte header: %d segments, entry 0x%08X)", ErrESP8266, img.SegmentCount, img.Entry)
}

func (img *Image) readSegments(data []byte) (int, error) {
	off := HeaderSize
	sum := byte(checksumSeed)
	for i := 0; i < int(img.SegmentCount); i++ {
		if len(data) < off+SegHeaderSize {
			return 0, truncated(len(data))
		}
		s := Segment{LoadAddr: binary.LittleEndian.Uint32(data[off:]), Offset: off + SegHeaderSize}
		n := binary.LittleEndian.Uint32(data[off+4:])
		if n%4 != 0 || n >= maxSegmentLen {
			return 0, fmt.Errorf("%w %d at offset %d: length %d (must be a multiple of 4 below 16 MiB)", ErrSegment, i, off, n)
		}
		s.Len = int(n)
		if appimage.FlashMapped(uint16(img.Chip), s.LoadAddr) && s.Offset%flashPageAlign != int(s.LoadAddr%flashPageAlign) {
			return 0, fmt.Errorf("%w %d: flash-mapped at 0x%08X but at file offset 0x%X (must agree modulo 64 KiB)", ErrSegment, i, s.LoadAddr, s.Offset)
		}
		if len(data) < s.Offset+s.Len {
			return 0, truncated(len(data))
		}
		for _, b := range data[s.Offset : s.Offset+s.Len] {
			sum ^= b
		}
		img.Segments = append(img.Segments, s)
		off = s.Offset + s.Len
	}
	img.Checksum = sum
	return off, nil
}

// ChecksumOffset returns where the checksum byte of an image whose last
// segment ends at end sits: the last byte of the zero padding that rounds
// end+1 up to 16 (esp_image_format.c process_checksum).
func ChecksumOffset(end int) int { return (end+1+15)&^15 - 1 }

func (img *Image) verify(data []byte, end int) error {
	img.ChecksumOffset = ChecksumOffset(end)
	if len(data) <= img.ChecksumOffset {
		return truncated(len(data))
	}
	if got := data[img.ChecksumOffset]; got != img.Checksum {
		return fmt.Errorf("%w: stored 0x%02X at offset 0x%X, computed 0x%02X", ErrChecksum, got, img.ChecksumOffset, img.Checksum)
	}
	img.Size = img.ChecksumOffset + 1
	if img.HashAppended {
		if len(data) < img.Size+32 {
			return truncated(len(data))
		}
		copy(img.SHA256[:], data[img.Size:img.Size+32])
		if sum := sha256.Sum256(data[:img.Size]); sum != img.SHA256 {
			return fmt.Errorf("%w: appended %x, computed %x", ErrSHA256, img.SHA256[:8], sum[:8])
		}
		img.Size += 32
	}
	return nil
}

func readDesc(data []byte) *AppDesc {
	d := data[AppDescOffset : AppDescOffset+AppDescSize]
	if binary.LittleEndian.Uint32(d) != AppDescMagic {
		return nil
	}
	return &AppDesc{
		SecureVersion: binary.LittleEndian.Uint32(d[4:]),
		Version:       cstring(d[16:48]),
		ProjectName:   cstring(d[48:80]),
		Time:          cstring(d[80:96]),
		Date:          cstring(d[96:112]),
		IDFVersion:    cstring(d[112:144]),
	}
}

// readBootloaderDesc reads esp_bootloader_desc_t from segment 0, where an
// ESP-IDF 5.2+ bootloader keeps it (magic byte 0x50).
func readBootloaderDesc(data []byte, s Segment) *BootloaderDesc {
	if s.Len < 80 || data[s.Offset] != appimage.BootloaderDescMagic {
		return nil
	}
	d := data[s.Offset : s.Offset+80]
	return &BootloaderDesc{Version: binary.LittleEndian.Uint32(d[4:]), IDFVersion: cstring(d[8:40]), DateTime: cstring(d[40:64])}
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

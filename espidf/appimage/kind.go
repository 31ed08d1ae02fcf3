//go:build go1.23

package appimage

// Descriptor magics: esp_app_desc_t's word at file offset 0x20 of an app
// (components/esp_app_format/include/esp_app_desc.h), and the byte that
// starts esp_bootloader_desc_t in a bootloader built by ESP-IDF 5.2 or later
// (components/esp_bootloader_format/include/esp_bootloader_desc.h).
const (
	AppDescMagic        = 0xABCD5432
	BootloaderDescMagic = 0x50
	AppDescOffset       = headerSize + segHdrSize // 0x20
)

// magicESP8266V2 starts an ESP8266 "V2" image (esptool's
// ESP8266V2FirmwareImage.IMAGE_V2_MAGIC); no ESP32 image starts with it.
const magicESP8266V2 = 0xEA

// KnownChip reports whether id is one of esp_app_format.h's esp_chip_id_t
// values (ESP-IDF master, 2026).
func KnownChip(id uint16) bool {
	switch id {
	case 0x0000, 0x0002, 0x0005, 0x0009, 0x000C, 0x000D, 0x0010, 0x0012, 0x0014, 0x0017, 0x0019, 0x001C, 0x0020:
		return true
	}
	return false
}

// IsESP8266 tells an ESP8266 image from the first 24 bytes of a file. An
// ESP8266 image has an 8-byte header, so the ESP32 header's chip id and
// hash_appended bytes are really its first segment's length and data. As
// esptool's image_info decides it (cmds.py _parse_image_info_header): magic
// 0xEA, or magic 0xE9 with an unknown chip id or a hash_appended byte other
// than 0 or 1; and, so that a damaged ESP32 header is not taken for one,
// the first segment must load into the ESP8266's DRAM (0x3FFE8000) or IRAM
// (0x40100000-0x40110000: esptool's memory map, plus the IRAM block the
// ROM loads deep-sleep stubs into) with a length that is a multiple of 4.
func IsESP8266(h []byte) bool {
	if len(h) >= 1 && h[0] == magicESP8266V2 {
		return true
	}
	if len(h) < headerSize || h[0] != 0xE9 {
		return false
	}
	if KnownChip(uint16(h[12])|uint16(h[13])<<8) && h[23] <= 1 {
		return false
	}
	load := le32(h[8:])
	n := le32(h[12:])
	ramLoad := load >= 0x3FFE8000 && load < 0x40000000 || load >= 0x40100000 && load < 0x40110000
	return ramLoad && n%4 == 0 && n < 0x20000
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// Seg is a segment's load address and length.
type Seg struct{ Load, Len uint32 }

// CheckApp decides, once an image's structure verified, whether it is an
// application: its descriptor magic at 0x20, and segment 0 large enough to
// hold the 256-byte descriptor (verify_segment_header). An image without
// the descriptor that runs from RAM only (no flash-mapped segment, the
// entry point inside a loaded segment) is what ESP-IDF's second-stage
// bootloader looks like: it is named a bootloader image.
func CheckApp(chip uint16, entry, descMagic uint32, segs []Seg) error {
	if descMagic == AppDescMagic {
		if segs[0].Len < descSize {
			return ErrSegment
		}
		return nil
	}
	entryLoaded := false
	for _, s := range segs {
		if FlashMapped(chip, s.Load) {
			return ErrNoAppDesc
		}
		entryLoaded = entryLoaded || entry >= s.Load && uint64(entry) < uint64(s.Load)+uint64(s.Len)
	}
	if entryLoaded {
		return ErrBootloader
	}
	return ErrNoAppDesc
}

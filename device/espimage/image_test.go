package espimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbsim/tbsim/espidf/appimage"
)

func TestBuildParse(t *testing.T) {
	for _, chip := range []Chip{ESP32, ESP32S2, ESP32S3, ESP32C3} {
		for _, size := range []int{0, MinSize, 1000, 4096, 1 << 20} {
			img, err := Build(BuildOptions{Chip: chip, Title: "CORE_ESP32", Version: "1.1.0", Size: size})
			if err != nil {
				t.Fatal(err)
			}
			if want := max((size+15)&^15, MinSize); len(img) != want {
				t.Fatalf("%v size %d: got %d bytes; want %d", chip, size, len(img), want)
			}
			p, err := Parse(img, chip)
			if err != nil {
				t.Fatalf("%v size %d: %v", chip, size, err)
			}
			if p.Size != len(img) || p.Desc == nil || p.Desc.Version != "1.1.0" || p.Desc.ProjectName != "CORE_ESP32" || !p.HashAppended {
				t.Fatalf("%v: parsed %+v desc %+v", chip, p, p.Desc)
			}
			if err := p.CheckLoad(); err != nil {
				t.Fatalf("%v size %d: the bootloader would refuse it: %v", chip, size, err)
			}
			checkLayout(t, p, len(img))
			// Slot padding after the image is ignored.
			if _, err := Parse(append(img, bytes.Repeat([]byte{0xFF}, 100)...), chip); err != nil {
				t.Fatalf("padded: %v", err)
			}
		}
	}
	a, _ := Build(BuildOptions{Chip: ESP32S3, Title: "T", Version: "1", Size: 4096})
	b, _ := Build(BuildOptions{Chip: ESP32S3, Title: "T", Version: "1", Size: 4096})
	c, _ := Build(BuildOptions{Chip: ESP32S3, Title: "T", Version: "2", Size: 4096})
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatal("Build is not deterministic per (chip, title, version)")
	}
	if _, err := Build(BuildOptions{Chip: ESP32H2}); err == nil {
		t.Fatal("Build accepted an unsupported chip")
	}
}

// checkLayout holds a built image to ESP-IDF's layout: DROM first with the
// descriptor, the RAM segments small and inside the chip's DRAM and IRAM,
// and (past a few KiB) the bulk of the bytes flash-mapped.
func checkLayout(t *testing.T, p *Image, size int) {
	t.Helper()
	chip := uint16(p.Chip)
	var names []string
	mapped := 0
	for _, s := range p.Segments {
		name := appimage.RegionName(chip, s.LoadAddr)
		names = append(names, name)
		switch name {
		case "DROM", "IROM":
			mapped += s.Len
		case "DRAM", "IRAM":
			if s.Len > 16<<10 {
				t.Fatalf("%v: %s segment of %d bytes", p.Chip, name, s.Len)
			}
		}
	}
	if got := strings.Join(names, ","); got != "DROM,DRAM,IRAM,IROM" {
		t.Fatalf("%v: segments %s; want DROM,DRAM,IRAM,IROM", p.Chip, got)
	}
	if size >= 64<<10 && mapped < size*9/10 {
		t.Fatalf("%v: %d of %d bytes flash-mapped; want the bulk", p.Chip, mapped, size)
	}
	if appimage.RegionName(chip, p.Entry) != "IRAM" {
		t.Fatalf("%v: entry 0x%08X not in IRAM", p.Chip, p.Entry)
	}
}

// reseal recomputes an image's checksum and digest after a test changed it,
// so only the change itself is judged.
func reseal(t *testing.T, img []byte) []byte {
	t.Helper()
	var segs []RawSegment
	off := HeaderSize
	for i := 0; i < int(img[1]); i++ {
		n := int(binary.LittleEndian.Uint32(img[off+4:]))
		segs = append(segs, RawSegment{binary.LittleEndian.Uint32(img[off:]), img[off+8 : off+8+n]})
		off += 8 + n
	}
	out := Assemble(Chip(binary.LittleEndian.Uint16(img[12:])), binary.LittleEndian.Uint32(img[4:]), segs)
	copy(out[:HeaderSize], img[:HeaderSize])
	sum := sha256.Sum256(out[:len(out)-32])
	copy(out[len(out)-32:], sum[:])
	return out
}

// esp8266V1 is an ESP8266 image's start as esptool writes it: an 8-byte
// header (magic, 2 segments, DIO, 4 MB at 40 MHz, entry in IRAM), then an
// IRAM and a DRAM segment.
func esp8266V1() []byte {
	b := []byte{0xE9, 2, 2, 0x40, 0x94, 0x02, 0x10, 0x40}
	b = binary.LittleEndian.AppendUint32(b, 0x40100000)
	b = binary.LittleEndian.AppendUint32(b, 1396)
	b = append(b, make([]byte, 1396)...)
	b = binary.LittleEndian.AppendUint32(b, 0x3FFE8000)
	b = binary.LittleEndian.AppendUint32(b, 776)
	return append(b, make([]byte, 776+16)...)
}

// bootloaderC3 is shaped like esptool's bootloader_esp32c3.bin: DRAM and
// IRAM segments only, no app descriptor.
func bootloaderC3() []byte {
	return Assemble(ESP32C3, 0x403C0000, []RawSegment{
		{0x3FCD6100, make([]byte, 20)}, {0x3FCD6114, make([]byte, 512)}, {0x403C0000, make([]byte, 1024)},
	})
}

// bootloaderV52 carries esp_bootloader_desc_t, as ESP-IDF 5.2 bootloaders
// (esptool's bootloader_esp32_v5_2.bin) do.
func bootloaderV52() []byte {
	d := make([]byte, 80)
	d[0] = 0x50
	d[4] = 1
	copy(d[8:], "v5.2-dev-254-g1950b15")
	copy(d[40:], "Apr 25 2023 00:13:32")
	return Assemble(ESP32, 0x40080650, []RawSegment{{0x3FFF0030, d}, {0x40078000, make([]byte, 64)}, {0x40080400, make([]byte, 0x300)}})
}

func TestNotAnApplication(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		chip Chip
		err  error
		msg  string
		what func(*Image) bool
	}{
		{"ESP8266 V1", esp8266V1(), AnyChip, ErrESP8266, "ESP8266 image, not supported (8-byte header: 2 segments, entry 0x40100294)",
			func(p *Image) bool {
				return p.ESP8266 != nil && len(p.ESP8266.Segments) == 2 && p.ESP8266.Segments[1].LoadAddr == 0x3FFE8000
			}},
		{"ESP8266 V1 for an S3", esp8266V1(), ESP32S3, ErrESP8266, "ESP8266 image", nil},
		{"ESP8266 V2", []byte{0xEA, 4, 2, 0x40, 0, 0, 0x10, 0x40, 1, 2, 3, 4}, AnyChip, ErrESP8266, "V2 format, magic 0xEA", nil},
		{"bootloader", bootloaderC3(), ESP32C3, ErrBootloader, "bootloader image, not an application (no app descriptor; its 3 segments load into RAM and it starts in one)",
			func(p *Image) bool { return len(p.Segments) == 3 && p.Bootloader == nil }},
		{"IDF 5.2 bootloader", bootloaderV52(), AnyChip, ErrBootloader, "bootloader descriptor: ESP-IDF v5.2-dev-254-g1950b15, built Apr 25 2023 00:13:32",
			func(p *Image) bool { return p.Bootloader != nil && p.Bootloader.Version == 1 }},
	}
	good, _ := Build(BuildOptions{Chip: ESP32S3, Title: "T", Version: "1", Size: 2048})
	noDesc := append([]byte(nil), good...)
	copy(noDesc[AppDescOffset:], []byte{0, 0, 0, 0})
	cases = append(cases, struct {
		name string
		data []byte
		chip Chip
		err  error
		msg  string
		what func(*Image) bool
	}{"no descriptor", reseal(t, noDesc), ESP32S3, ErrNoAppDesc, "no app descriptor (magic 0xABCD5432 at offset 0x20): got 0x00000000", nil})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(c.data, c.chip)
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v; want %v containing %q", err, c.err, c.msg)
			}
			if c.what != nil && (p == nil || !c.what(p)) {
				t.Fatalf("described as %+v", p)
			}
		})
	}
}

// The bootloader's load-address check (verify_load_addresses), on the case
// of issue 14: the old Build put almost every byte in one IRAM segment,
// about 1 MiB at 0x40370000 on the S3, which a real bootloader refuses.
func TestCheckLoad(t *testing.T) {
	desc := make([]byte, AppDescSize)
	writeDesc(desc, BuildOptions{Title: "T", Version: "1"})
	cases := []struct {
		name string
		chip Chip
		segs []RawSegment
		want string // "" = loads
	}{
		{"S3: 1 MiB of IRAM", ESP32S3, []RawSegment{{0x3C000020, desc}, {0x40370000, make([]byte, 1<<20)}},
			"segment 1 0x40370000-0x40470000 invalid: bad load address range"},
		{"S3: over the bootloader's data", ESP32S3, []RawSegment{{0x3C000020, desc}, {0x3FCE2000, make([]byte, 0x1000)}},
			"segment 1 0x3fce2000-0x3fce3000 invalid: overlaps bootloader data"},
		{"S3: over the bootloader's stack", ESP32S3, []RawSegment{{0x3C000020, desc}, {0x3FCE8000, make([]byte, 16)}},
			"overlaps bootloader stack"},
		{"S3: over the loader's IRAM", ESP32S3, []RawSegment{{0x3C000020, desc}, {0x403CC000, make([]byte, 16)}},
			"overlaps loader IRAM"},
		{"S3: the loader's IRAM seen as DRAM", ESP32S3, []RawSegment{{0x3C000020, desc}, {0x3FCDB700, make([]byte, 16)}},
			"segment 1 0x3fcdb700-0x3fcdb710 invalid: overlaps loader IRAM"},
		{"S3: RTC fast and slow", ESP32S3, []RawSegment{{0x3C000020, desc}, {0x600FE000, make([]byte, 64)}, {0x50000000, make([]byte, 16)}}, ""},
		{"S3: padding at 0", ESP32S3, []RawSegment{{0x3C000020, desc}, {0, make([]byte, 64)}}, ""},
		{"C3: where its bootloader's data is", ESP32C3, []RawSegment{{0x3C000020, desc}, {0x3FCD6100, make([]byte, 20)}}, "overlaps bootloader data"},
		{"C3: IRAM after the I-cache", ESP32C3, []RawSegment{{0x3C000020, desc}, {0x40380000, make([]byte, 4096)}}, ""},
		{"ESP32: APP CPU cache", ESP32, []RawSegment{{0x3F400020, desc}, {0x40078000, make([]byte, 64)}}, "bad load address range"},
		// D/IRAM is word-reversed on the ESP32: IRAM 0x400A9000-0x400AA000 is DRAM 0x3FFF5FFC-0x3FFF6FFC.
		{"ESP32: reversed D/IRAM clear", ESP32, []RawSegment{{0x3F400020, desc}, {0x400A8000, make([]byte, 0x1000)}}, ""},
		{"ESP32: reversed D/IRAM over data", ESP32, []RawSegment{{0x3F400020, desc}, {0x400A9000, make([]byte, 0x1000)}}, "overlaps bootloader data"},
		{"S2: the blink example's RAM", ESP32S2, []RawSegment{{0x3F000020, desc}, {0x3FFBDE90, make([]byte, 8268)}, {0x40022000, make([]byte, 21380)}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(Assemble(c.chip, 0, c.segs), c.chip)
			if err != nil {
				t.Fatal(err)
			}
			err = p.CheckLoad()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrLoadAddress) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("CheckLoad = %v; want %q", err, c.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	good, _ := Build(BuildOptions{Chip: ESP32S3, Title: "T", Version: "1", Size: 2048})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		data []byte
		chip Chip
		err  error
		msg  string
	}{
		{"wrong chip", good, ESP32C3, ErrWrongChip, "wrong chip: want ESP32-C3 (5), got ESP32-S3 (9)"},
		{"not an image", []byte(strings.Repeat("hello world ", 10)), ESP32S3, ErrMagic, "bad magic: want 0xE9, got 0x68"},
		{"short header", good[:10], ESP32S3, ErrTruncated, "truncated at offset 10"},
		{"truncated body", good[:1000], ESP32S3, ErrTruncated, "truncated at offset 1000"},
		{"missing digest", good[:len(good)-1], ESP32S3, ErrTruncated, "truncated at offset 2047"},
		{"bad checksum", mut(func(b []byte) []byte { b[500] ^= 1; return b }), ESP32S3, ErrChecksum, "checksum mismatch"},
		{"bad sha", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ESP32S3, ErrSHA256, "SHA-256 mismatch"},
		{"no segments", mut(func(b []byte) []byte { b[1] = 0; return b }), ESP32S3, ErrSegment, "0 segments"},
		{"17 segments", mut(func(b []byte) []byte { b[1] = 17; return b }), ESP32S3, ErrSegment, "17 segments"},
		{"odd segment length", mut(func(b []byte) []byte { b[28] = 3; return b }), ESP32S3, ErrSegment, "multiple of 4"},
		{"misaligned DROM", mut(func(b []byte) []byte { b[24] = 0x40; return b }), ESP32S3, ErrSegment, "modulo 64 KiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.data, c.chip)
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v; want %v containing %q", err, c.err, c.msg)
			}
		})
	}
	// The checksum covers data only, so a flipped segment-header byte that keeps
	// the layout valid is still caught by the SHA-256.
	withSHA := mut(func(b []byte) []byte { b[4] ^= 0xFF; return b }) // entry address
	if _, err := Parse(withSHA, ESP32S3); !errors.Is(err, ErrSHA256) {
		t.Fatalf("entry address change: %v; want SHA-256 mismatch", err)
	}
}

// The spec's test vector (esptool test/images/esp_idf_blink_esp32s2.bin):
// 182 368 bytes, checksum 0x18 at 0x2C83F, SHA-256 appended. The arithmetic
// is checked always; the file itself when TBSIM_ESPTOOL_IMAGES names a folder
// holding it (esptool's test images are not redistributed here).
func TestEsptoolBlinkVector(t *testing.T) {
	for end := 0x2C830; end <= 0x2C83F; end++ { // end is exclusive: the checksum may sit right at it
		if got := ChecksumOffset(end); got != 0x2C83F {
			t.Fatalf("ChecksumOffset(0x%X) = 0x%X; want 0x2C83F", end, got)
		}
	}
	if ChecksumOffset(0x2C840) != 0x2C84F {
		t.Fatal("data filling a whole block must push the checksum to the next block")
	}
	if total := ChecksumOffset(0x2C830) + 1 + sha256.Size; total != 182368 {
		t.Fatalf("file length = %d; want 182368", total)
	}
	dir := os.Getenv("TBSIM_ESPTOOL_IMAGES")
	if dir == "" {
		t.Skip("TBSIM_ESPTOOL_IMAGES not set; arithmetic checked, file not")
	}
	data, err := os.ReadFile(filepath.Join(dir, "esp_idf_blink_esp32s2.bin"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := Parse(data, ESP32S2)
	if err != nil {
		t.Fatal(err)
	}
	if img.SegmentCount != 6 || img.SPIMode != 2 || img.SPISpeedSize != 0x1F || img.Checksum != 0x18 ||
		img.ChecksumOffset != 0x2C83F || img.Size != len(data) || img.Desc == nil ||
		img.Desc.Version != "qa-test-v5.0-20220830-4-g4532e6" || img.Desc.ProjectName != "blink" {
		t.Fatalf("parsed %+v, desc %+v", img, img.Desc)
	}
	if _, err := Parse(data, ESP32S3); !errors.Is(err, ErrWrongChip) || !strings.Contains(err.Error(), "want ESP32-S3 (9), got ESP32-S2 (2)") {
		t.Fatalf("as S3: %v", err)
	}
	if err := img.CheckLoad(); err != nil {
		t.Fatalf("a real application the bootloader refuses: %v", err)
	}
}

// esptool's other test images (test/images, esptool master): its
// bootloaders are named as such, its ESP8266 images refused as ESP8266
// images, and its bare headers rejected. Run when TBSIM_ESPTOOL_IMAGES
// names a folder holding them.
func TestEsptoolImages(t *testing.T) {
	dir := os.Getenv("TBSIM_ESPTOOL_IMAGES")
	if dir == "" {
		t.Skip("TBSIM_ESPTOOL_IMAGES not set")
		return
	}
	cases := []struct {
		file string
		err  error
		msg  string
	}{
		{"bootloader_esp32_v5_2.bin", ErrBootloader, "bootloader descriptor: ESP-IDF v5.2-dev-254-g1950b15"},
		{"bootloader_esp32.bin", ErrBootloader, "its 4 segments load into RAM"},
		{"bootloader_esp32c3.bin", ErrBootloader, "its 4 segments load into RAM"},
		{"bootloader_esp8266.bin", ErrESP8266, "3 segments, entry 0x40100294"},
		{"esp8266_deepsleep.bin", ErrESP8266, "1 segments, entry 0x4010F29C"},
		{"esp32s3_header.bin", ErrNoAppDesc, "got 0x00000000"},
		{"esp32c3_header_min_rev.bin", ErrNoAppDesc, "got 0x00000000"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, c.file))
			if err != nil {
				t.Skip(err)
				return
			}
			_, err = Parse(data, AnyChip)
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v; want %v containing %q", err, c.err, c.msg)
			}
		})
	}
}

func TestParseChip(t *testing.T) {
	for in, want := range map[string]Chip{"esp32s3": ESP32S3, "ESP32-C3": ESP32C3, "esp32": ESP32} {
		if got, ok := ParseChip(in); !ok || got != want {
			t.Errorf("ParseChip(%q) = %v, %v", in, got, ok)
		}
	}
	if _, ok := ParseChip("esp8266"); ok {
		t.Error("esp8266 accepted")
	}
}

func FuzzParse(f *testing.F) {
	img, _ := Build(BuildOptions{Chip: ESP32S3, Title: "T", Version: "1", Size: MinSize})
	f.Add(img)
	f.Add(img[:100])
	f.Add([]byte{0xE9, 16, 0, 0})
	f.Add(esp8266V1())
	f.Add(bootloaderC3())
	f.Add(bootloaderV52())
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, AnyChip)
		if errors.Is(err, ErrBootloader) || errors.Is(err, ErrNoAppDesc) || errors.Is(err, ErrESP8266) {
			if p == nil {
				t.Fatalf("%v without the image it read", err)
			}
			return
		}
		if err != nil {
			return
		}
		if p.Size > len(data) || len(p.Segments) != int(p.SegmentCount) || p.Desc == nil {
			t.Fatalf("inconsistent parse: size %d of %d bytes", p.Size, len(data))
		}
		p.CheckLoad() // must not panic on any segment
	})
}

package espimage

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, AnyChip)
		if err != nil {
			return
		}
		if p.Size > len(data) || len(p.Segments) != int(p.SegmentCount) {
			t.Fatalf("inconsistent parse: size %d of %d bytes", p.Size, len(data))
		}
	})
}

//go:build !tinygo

package appimage_test

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/espidf/appimage"
)

// stream feeds img to a Verifier in pieces of piece bytes.
func stream(img []byte, chip uint16, piece int) *appimage.Verifier {
	v := appimage.NewVerifier(chip)
	for len(img) > 0 {
		k := min(piece, len(img))
		v.Write(img[:k])
		img = img[k:]
	}
	return v
}

var fuzzChips = [...]espimage.Chip{espimage.ESP32C3, espimage.ESP32S3, espimage.ESP32, espimage.ESP32S2}

// sameVerdict holds the streaming verifier to device/espimage: both accept
// or both reject an image as an application; they agree on the kinds an
// application must not be (ESP8266, bootloader, no descriptor); and for an
// accepted image, on whether the bootloader would load it.
func sameVerdict(t *testing.T, img []byte, chip espimage.Chip, piece int) {
	t.Helper()
	p, perr := espimage.Parse(img, chip)
	v := stream(img, uint16(chip), piece)
	verr := v.Finish()
	if (perr == nil) != (verr == nil) {
		t.Fatalf("espimage says %v, appimage says %v", perr, verr)
		return
	}
	for _, kind := range []error{appimage.ErrESP8266, appimage.ErrBootloader, appimage.ErrNoAppDesc} {
		if errors.Is(perr, kind) != (verr == kind) {
			t.Fatalf("espimage says %v, appimage says %v", perr, verr)
			return
		}
	}
	if perr != nil {
		return
	}
	lerr, berr := p.CheckLoad(), v.Bootable()
	if (lerr == nil) != (berr == nil) || lerr != nil && lerr.Error() != berr.Error() {
		t.Fatalf("bootloader: espimage says %v, appimage says %v", lerr, berr)
		return
	}
}

// FuzzSameVerdict damages one byte of a valid image of one of the four
// chips and compares the verdicts.
func FuzzSameVerdict(f *testing.F) {
	f.Add(uint32(0), byte(0), uint16(1))
	f.Add(uint32(1), byte(0x10), uint16(7))
	f.Add(uint32(28), byte(3), uint16(64))
	f.Add(uint32(12), byte(9), uint16(4096))
	f.Add(uint32(0x10000000|76), byte(0x40), uint16(33))  // S3: the DRAM segment's load address
	f.Add(uint32(0x20000000|0x22), byte(0x01), uint16(5)) // ESP32: the descriptor's magic
	f.Fuzz(func(t *testing.T, at uint32, xor byte, piece uint16) {
		chip := fuzzChips[at>>28&3]
		img, err := espimage.Build(espimage.BuildOptions{Chip: chip, Title: "t", Version: "1", Size: 2048})
		if err != nil {
			t.Fatal(err)
			return
		}
		img[int(at&0x0FFFFFFF)%len(img)] ^= xor
		sameVerdict(t, img, chip, int(piece)%5000+1)
	})
}

// FuzzSameVerdictBytes compares the verdicts on any bytes, seeded with
// images of each kind: applications for the four chips, a RAM-only image
// (the shape of ESP-IDF's bootloader), an app whose IRAM segment is far
// past the chip's IRAM, and an ESP8266 header.
func FuzzSameVerdictBytes(f *testing.F) {
	for _, c := range fuzzChips {
		img, _ := espimage.Build(espimage.BuildOptions{Chip: c, Title: "t", Version: "1", Size: 1024})
		f.Add(img, uint8(c), uint16(100))
	}
	f.Add(ramOnly(), uint8(espimage.ESP32C3), uint16(9))
	big, _ := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: "t", Version: "1", Size: 1024})
	binary.LittleEndian.PutUint32(big[findSeg(big, 2):], 0x40470000) // IRAM text past SOC_IRAM_HIGH
	f.Add(appendSHA(big[:len(big)-32]), uint8(espimage.ESP32S3), uint16(1024))
	f.Add([]byte{0xE9, 1, 0, 0x20, 0, 0, 0x10, 0x40, 0, 0, 0x10, 0x40, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 0x40}, uint8(0), uint16(3))
	f.Add([]byte{0xEA, 4, 0, 0x20}, uint8(0), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, chip uint8, piece uint16) {
		c := espimage.AnyChip
		if chip < 0xF0 {
			c = fuzzChips[chip&3]
		}
		sameVerdict(t, data, c, int(piece)%5000+1)
	})
}

// findSeg returns the file offset of segment i's header.
func findSeg(img []byte, i int) int {
	off := 24
	for ; i > 0; i-- {
		off += 8 + int(binary.LittleEndian.Uint32(img[off+4:]))
	}
	return off
}

// ramOnly is a well-formed C3 image whose two segments load into DRAM and
// IRAM and which has no app descriptor: what ESP-IDF's bootloader looks like.
func ramOnly() []byte {
	img := []byte{0xE9, 2, 2, 0x10, 0x00, 0x00, 0x3C, 0x40, 0xEE, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	sum := byte(0xEF)
	for _, s := range []struct{ load, n uint32 }{{0x3FCD6100, 20}, {0x403C0000, 32}} {
		img = binary.LittleEndian.AppendUint32(img, s.load)
		img = binary.LittleEndian.AppendUint32(img, s.n)
		for i := range s.n {
			b := byte(i*13 + 1)
			img = append(img, b)
			sum ^= b
		}
	}
	for (len(img)+1)%16 != 0 {
		img = append(img, 0)
	}
	img = append(img, sum)
	return appendSHA(img)
}

// appendSHA appends the SHA-256 of img (header through checksum).
func appendSHA(img []byte) []byte {
	d := sha256.Sum256(img)
	return append(img, d[:]...)
}

//go:build !tinygo

package appimage

import (
	"testing"

	"github.com/tbsim/tbsim/device/espimage"
)

// FuzzSameVerdict holds the streaming verifier to device/espimage.Parse:
// for any damage to a valid image, both accept or both reject.
func FuzzSameVerdict(f *testing.F) {
	f.Add(uint32(0), byte(0), uint16(1))
	f.Add(uint32(1), byte(0x10), uint16(7))
	f.Add(uint32(28), byte(3), uint16(64))
	f.Add(uint32(12), byte(9), uint16(4096))
	f.Fuzz(func(t *testing.T, at uint32, xor byte, piece uint16) {
		img, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32C3, Title: "t", Version: "1", Size: 2048})
		if err != nil {
			t.Fatal(err)
			return
		}
		img[int(at)%len(img)] ^= xor
		_, perr := espimage.Parse(img, espimage.ESP32C3)
		verr := verify(img, ChipESP32C3, int(piece)%5000+1)
		if (perr == nil) != (verr == nil) {
			t.Fatalf("byte %d ^ %#x: espimage says %v, appimage says %v", int(at)%len(img), xor, perr, verr)
			return
		}
	})
}

package appimage

import (
	"crypto/sha256"
	"testing"
)

// build makes a minimal valid C3 image: one 256-byte DROM segment at the
// descriptor's place, checksum, SHA-256.
func build(hashed bool) []byte {
	img := make([]byte, 24+8+256)
	img[0], img[1] = 0xE9, 1
	img[12] = byte(ChipESP32C3)
	if hashed {
		img[23] = 1
	}
	load := uint32(0x3C000020) // file offset 0x20 == load address mod 64 KiB
	for i := 0; i < 4; i++ {
		img[24+i] = byte(load >> (8 * i))
	}
	img[28], img[29] = 0, 1 // 256 bytes
	sum := byte(seed)
	for i := 32; i < len(img); i++ {
		img[i] = byte(i * 7)
	}
	img[32], img[33], img[34], img[35] = 0x32, 0x54, 0xCD, 0xAB // esp_app_desc_t magic
	for i := 32; i < len(img); i++ {
		sum ^= img[i]
	}
	for (len(img)+1)%16 != 0 {
		img = append(img, 0)
	}
	img = append(img, sum)
	if hashed {
		d := sha256.Sum256(img)
		img = append(img, d[:]...)
	}
	return img
}

func verify(img []byte, chip uint16, piece int) error {
	v := NewVerifier(chip)
	for len(img) > 0 {
		k := min(piece, len(img))
		v.Write(img[:k])
		img = img[k:]
	}
	return v.Finish()
}

func TestVerify(t *testing.T) {
	for _, hashed := range []bool{false, true} {
		img := build(hashed)
		for _, piece := range []int{1, 7, 4096} {
			if err := verify(img, ChipESP32C3, piece); err != nil {
				t.Errorf("valid image (hash %v, pieces of %d): %v", hashed, piece, err)
			}
		}
		if err := verify(append(img, 1, 2, 3), ChipESP32C3, 5); err != nil {
			t.Errorf("trailing bytes: %v", err)
		}
		cases := []struct {
			name string
			mut  func([]byte) []byte
			chip uint16
			want error
		}{
			{"magic", func(b []byte) []byte { b[0] = 0xE8; return b }, ChipESP32C3, ErrMagic},
			{"chip", func(b []byte) []byte { return b }, ChipESP32S3, ErrWrongChip},
			{"no segments", func(b []byte) []byte { b[1] = 0; return b }, ChipESP32C3, ErrSegment},
			{"odd length", func(b []byte) []byte { b[28] = 2; return b }, ChipESP32C3, ErrSegment},
			{"data", func(b []byte) []byte { b[100] ^= 1; return b }, ChipESP32C3, ErrChecksum},
			{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, AnyChip, ErrTruncated},
		}
		for _, c := range cases {
			b := c.mut(append([]byte(nil), img...))
			if err := verify(b, c.chip, 3); err != c.want {
				if !(c.name == "truncated" && !hashed && err == ErrTruncated) {
					t.Errorf("%s (hash %v): err = %v; want %v", c.name, hashed, err, c.want)
				}
			}
		}
	}
	img := build(true)
	img[len(img)-1] ^= 1
	if err := verify(img, AnyChip, 64); err != ErrSHA256 {
		t.Errorf("bad digest: err = %v; want ErrSHA256", err)
	}
}

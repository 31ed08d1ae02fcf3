package nvs

import (
	"strconv"
	"testing"
)

// FuzzOpen feeds damaged partitions (3 pages; the input is laid over an
// image our writer produced) to Open: it must never panic, whatever it
// reads must be listable, and a write after it must read back.
func FuzzOpen(f *testing.F) {
	f.Add([]byte{}, 0)
	f.Add([]byte{0xFE, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFE}, 0)
	f.Add([]byte{0x00}, 100)
	f.Add([]byte{0xF8, 0xFF, 0xFF, 0xFF}, 0)    // a FREEING page
	f.Add([]byte{0xAA, 0x21, 0x7F, 0xFF}, 64)   // a string header with a wild span
	f.Add([]byte{0x00, 0x48, 0x01, 0xFF}, 4096) // a blob index
	f.Fuzz(func(t *testing.T, patch []byte, at int) {
		const n = 3 * PageSize
		img := seedImage()
		if at < 0 {
			at = -at
		}
		at %= n
		copy(img[at:], patch)
		s, err := Open(img, n)
		if err != nil {
			return
		}
		for _, e := range s.Entries() {
			if e.Namespace == "" || e.Key == "" {
				t.Fatalf("entry without a name: %+v", e)
				return
			}
		}
		if err := s.SetString("fz", "k", "value"); err != nil {
			return
		}
		r, err := Open(img, n)
		if err != nil {
			t.Fatalf("reopen after a good write: %v", err)
			return
		}
		if v, err := r.GetString("fz", "k"); err != nil || v != "value" {
			t.Fatalf("read back %q, %v", v, err)
			return
		}
	})
}

func seedImage() MemFlash {
	m := NewMemFlash(3 * PageSize)
	s, err := Open(m, len(m))
	if err != nil {
		panic(err)
	}
	for i := 0; i < 40; i++ {
		if err := s.SetString("tb", "k"+strconv.Itoa(i%9), strconv.Itoa(i)+"0123456789abcdef0123456789abcdef"); err != nil {
			panic(err)
		}
	}
	return m
}

package nvs

import (
	"strconv"
	"strings"
	"testing"
)

// cutFlash loses power after budget operations: the operation that runs out
// is torn (half of a write lands, an erase does not happen) and every later
// one fails.
type cutFlash struct {
	MemFlash
	budget int
}

var errPowerCut = &Error{"power cut"}

func (c *cutFlash) spend() bool {
	c.budget--
	return c.budget >= 0
}

func (c *cutFlash) WriteAt(p []byte, off int64) (int, error) {
	if !c.spend() {
		if c.budget == -1 {
			c.MemFlash.WriteAt(p[:len(p)/2], off)
		}
		return 0, errPowerCut
	}
	return c.MemFlash.WriteAt(p, off)
}

func (c *cutFlash) EraseBlocks(start, n int64) error {
	if !c.spend() {
		return errPowerCut
	}
	return c.MemFlash.EraseBlocks(start, n)
}

// TestPowerCut cuts the power at every step of an update, from states where
// that update also fills a page or moves one, and checks what ESP-IDF
// promises: after the next boot the key holds the old or the new value.
func TestPowerCut(t *testing.T) {
	for prefill := 0; prefill < 400; prefill += 7 {
		base := NewMemFlash(size)
		s := open(t, base)
		if s == nil {
			return
		}
		old := ""
		for i := 0; i <= prefill; i++ {
			old = "v" + strconv.Itoa(i) + strings.Repeat("-", i%90)
			if err := s.SetString("tb", "token", old); err != nil {
				t.Fatal(err)
				return
			}
			if err := s.SetString("tb", "other"+strconv.Itoa(i%5), strconv.Itoa(i)); err != nil {
				t.Fatal(err)
				return
			}
		}
		next := "new" + strings.Repeat("+", prefill%70)
		for budget := 0; ; budget++ {
			f := &cutFlash{MemFlash: append(MemFlash(nil), base...), budget: budget}
			s, err := Open(f, size)
			if err != nil {
				t.Fatalf("prefill %d budget %d: open before the cut: %v", prefill, budget, err)
				return
			}
			err = s.SetString("tb", "token", next)
			r, oerr := Open(f.MemFlash, size)
			if oerr != nil {
				t.Fatalf("prefill %d budget %d: open after the cut: %v", prefill, budget, oerr)
				return
			}
			got, gerr := r.GetString("tb", "token")
			if gerr != nil || got != old && got != next {
				t.Fatalf("prefill %d budget %d: token = %.20q, %v; want the old %.20q or the new %.20q", prefill, budget, got, gerr, old, next)
				return
			}
			if err == nil {
				if got != next {
					t.Fatalf("prefill %d: completed update reads %.20q", prefill, got)
					return
				}
				break
			}
		}
	}
}

package nvs

import (
	"strconv"
	"strings"
	"testing"
)

const size = 0x5000 // Arduino's nvs partition: 5 pages

func open(t *testing.T, f Flash) *Store {
	t.Helper()
	s, err := Open(f, size)
	if err != nil {
		t.Fatalf("Open: %v", err)
		return nil
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	f := NewMemFlash(size)
	s := open(t, f)
	if s == nil {
		return
	}
	if _, err := s.GetString("tb", "token"); !IsNotFound(err) {
		t.Errorf("empty store: err = %v; want not found", err)
	}
	long := strings.Repeat("x", MaxStringLen)
	for _, kv := range [][3]string{{"tb", "token", "A1b2C3"}, {"tb", "mqtt_user", ""}, {"esp32", "boots", "1"}, {"big", "v", long}} {
		if err := s.SetString(kv[0], kv[1], kv[2]); err != nil {
			t.Fatalf("SetString(%q, %q): %v", kv[0], kv[1], err)
			return
		}
	}
	if err := s.SetString("tb", "v", long+"y"); err != ErrValueTooLong {
		t.Errorf("4000-byte string: err = %v; want ErrValueTooLong", err)
	}
	if err := s.SetString("tb", "sixteen_chars_ke", "v"); err != ErrKeyTooLong {
		t.Errorf("16-character key: err = %v; want ErrKeyTooLong", err)
	}
	r := open(t, f) // what a reboot reads back
	if r == nil {
		return
	}
	for _, kv := range [][3]string{{"tb", "token", "A1b2C3"}, {"tb", "mqtt_user", ""}, {"esp32", "boots", "1"}, {"big", "v", long}} {
		if got, err := r.GetString(kv[0], kv[1]); err != nil || got != kv[2] {
			t.Errorf("after reopen %s/%s = %.20q, %v; want %.20q", kv[0], kv[1], got, err, kv[2])
		}
	}
	if err := r.Erase("tb", "token"); err != nil {
		t.Fatal(err)
		return
	}
	if err := r.Erase("tb", "never"); err != nil {
		t.Errorf("erasing a missing key: %v", err)
	}
	if _, err := open(t, f).GetString("tb", "token"); !IsNotFound(err) {
		t.Errorf("erased token: err = %v; want not found", err)
	}
	if got := len(open(t, f).Entries()); got != 3 {
		t.Errorf("entries = %d; want 3", got)
	}
}

// TestManyUpdates rewrites keys until pages fill and get moved many times;
// every reopen must read the last values.
func TestManyUpdates(t *testing.T) {
	f := NewMemFlash(size)
	s := open(t, f)
	if s == nil {
		return
	}
	for i := 0; i < 3000; i++ {
		v := strings.Repeat(strconv.Itoa(i), 1+i%50)
		if err := s.SetString("tb", "token", v); err != nil {
			t.Fatalf("update %d: %v", i, err)
			return
		}
		if err := s.SetString("tb", "n"+strconv.Itoa(i%7), strconv.Itoa(i)); err != nil {
			t.Fatalf("update %d: %v", i, err)
			return
		}
		if i%97 == 0 {
			r := open(t, f)
			if r == nil {
				return
			}
			if got, err := r.GetString("tb", "token"); err != nil || got != v {
				t.Fatalf("after %d updates token = %.30q, %v; want %.30q", i, got, err, v)
				return
			}
			s = r
		}
	}
}

// TestNoSpace fills the partition with distinct keys: the write that does not
// fit fails, and what was written stays readable.
func TestNoSpace(t *testing.T) {
	f := NewMemFlash(3 * PageSize)
	s, err := Open(f, 3*PageSize)
	if err != nil {
		t.Fatal(err)
		return
	}
	var n int
	for n = 0; n < 1000; n++ {
		if err = s.SetString("ns", "k"+strconv.Itoa(n), strings.Repeat("v", 100)); err != nil {
			break
		}
	}
	if err != ErrNotEnoughSpace {
		t.Fatalf("after %d keys err = %v; want ErrNotEnoughSpace", n, err)
		return
	}
	r, err := Open(f, 3*PageSize)
	if err != nil {
		t.Fatal(err)
		return
	}
	if got := len(r.Entries()); got != n {
		t.Errorf("entries after reopen = %d; want %d", got, n)
	}
}

package tbapi

import (
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
)

// The hand-written helpers must agree with the standard library they replace
// (the test may import it: it does not ship).

var intInputs = []string{"", "0", "-0", "+0", "7", "-7", "+", "-", "007", "12a", " 1", "1 ", "0x10", "1_000",
	"2147483647", "2147483648", "-2147483648", "-2147483649", "9223372036854775807", "9223372036854775808",
	"-9223372036854775808", "-9223372036854775809", "99999999999999999999999", "٣"}

func TestParseIntMatchesStrconv(t *testing.T) {
	for _, s := range intInputs {
		for _, bits := range []uint{32, 64} {
			checkParseInt(t, s, bits)
		}
	}
}

func checkParseInt(t *testing.T, s string, bits uint) {
	want, err := strconv.ParseInt(s, 10, int(bits))
	got, ok := parseInt(s, bits)
	if ok != (err == nil) || ok && got != want {
		t.Errorf("parseInt(%q, %d) = %d, %v; strconv says %d, %v", s, bits, got, ok, want, err)
	}
}

func FuzzParseInt(f *testing.F) {
	for _, s := range intInputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkParseInt(t, s, 32)
		checkParseInt(t, s, 64)
	})
}

func TestHexAndFold(t *testing.T) {
	b := []byte{0, 1, 0x7f, 0x80, 0xab, 0xff}
	if got, want := hexString(b), hex.EncodeToString(b); got != want {
		t.Errorf("hexString = %s; want %s", got, want)
	}
	if got := appendLE(nil, 0x0102030405060708, 8); hex.EncodeToString(got) != "0807060504030201" {
		t.Errorf("appendLE = %x", got)
	}
	for _, c := range [][2]string{{"abc", "ABC"}, {"ABC", "abd"}, {"md5", "MD5"}, {"a", "ab"}, {"é", "É"}, {"0c7e7fd8", "0C7E7FD8"}} {
		want := strings.EqualFold(c[0], c[1]) && c[0] != "é" // non-ASCII folds only in strings.EqualFold
		if got := asciiEqualFold(c[0], c[1]); got != want {
			t.Errorf("asciiEqualFold(%q, %q) = %v; want %v", c[0], c[1], got, want)
		}
	}
	for _, name := range []string{"md5", "Sha256", "MURMUR3_128", "crc32"} {
		if _, ok := ParseAlgorithm(name); !ok {
			t.Errorf("ParseAlgorithm(%q) failed", name)
		}
	}
}

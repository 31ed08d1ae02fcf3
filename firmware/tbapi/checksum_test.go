package tbapi

import (
	"bytes"
	"testing"
)

// Vectors: CRC-32/IEEE check value; Guava's Murmur3Hash32Test and
// Murmur3Hash128Test known values, written as Guava's HashCode.toString()
// (little-endian for CRC32 and the murmur hashes, as ThingsBoard stores them).
func TestChecksumVectors(t *testing.T) {
	fox := []byte("The quick brown fox jumps over the lazy dog")
	cases := []struct {
		alg  Algorithm
		in   []byte
		want string
	}{
		{CRC32, []byte("123456789"), "2639f4cb"}, // 0xcbf43926
		{Murmur3_32, fox, "23f74f2e"},            // 0x2e4ff723
		{Murmur3_128, fox, "6c1b07bc7bbc4be347939ac4a93c437a"},
		{MD5, fox, "9e107d9d372bb6826bd81d3542a419d6"},
		{SHA256, fox, "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"},
		{SHA384, fox, "ca737f1014a48f4c0b6dd43cb177b0afd9e5169367544c494011e3317dbf9a509cb1e5dc1e85a941bbee3d7f2afbc9b1"},
		{SHA512, fox, "07e547d9586f6a73f73fbac0435ed76951218fb7d0c8d788a309d785436bbb642e93a252a954f23912547d1e8a3b5ed6e1bfd7097821233fa0538f3db854fee6"},
	}
	for _, c := range cases {
		if got := ChecksumHex(c.alg, c.in); got != c.want {
			t.Errorf("%v = %s; want %s", c.alg, got, c.want)
		}
	}
}

// The firmware hashes chunk by chunk; any split must give the one-shot result.
func TestChecksumIncremental(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz!"), 500)
	for _, a := range Algorithms {
		want := ChecksumHex(a, data)
		for _, chunk := range []int{1, 3, 15, 16, 17, 4096} {
			c := NewChecksum(a)
			for off := 0; off < len(data); off += chunk {
				c.Write(data[off:min(off+chunk, len(data))])
			}
			if got := c.Hex(); got != want {
				t.Errorf("%v in chunks of %d = %s; want %s", a, chunk, got, want)
			}
		}
	}
}

func TestParseAlgorithm(t *testing.T) {
	for _, a := range Algorithms {
		for _, s := range []string{a.String(), bytesLower(a.String())} {
			got, ok := ParseAlgorithm(s)
			if !ok || got != a {
				t.Errorf("ParseAlgorithm(%q) = %v, %v", s, got, ok)
			}
		}
	}
	if _, ok := ParseAlgorithm("SHA1"); ok {
		t.Error("SHA1 accepted")
	}
	if NewChecksum(0) != nil {
		t.Error("NewChecksum(0) != nil")
	}
	if !ChecksumEqual("ABcd", "abCD") {
		t.Error("ChecksumEqual is case-sensitive")
	}
}

func bytesLower(s string) string { return string(bytes.ToLower([]byte(s))) }

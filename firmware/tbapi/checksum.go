//go:build go1.23

package tbapi

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"hash/crc32"

	"github.com/twmb/murmur3"
)

// Algorithm is one of ThingsBoard's OTA checksum algorithms (ChecksumAlgorithm).
type Algorithm uint8

// The seven algorithms ThingsBoard offers.
const (
	MD5 Algorithm = iota + 1
	SHA256
	SHA384
	SHA512
	CRC32
	Murmur3_32
	Murmur3_128
)

// Algorithms lists every algorithm.
var Algorithms = []Algorithm{MD5, SHA256, SHA384, SHA512, CRC32, Murmur3_32, Murmur3_128}

var algorithmNames = [...]string{"", "MD5", "SHA256", "SHA384", "SHA512", "CRC32", "MURMUR3_32", "MURMUR3_128"}

// String returns ThingsBoard's name for the algorithm.
func (a Algorithm) String() string {
	if int(a) < len(algorithmNames) && a != 0 {
		return algorithmNames[a]
	}
	return "UNKNOWN"
}

// ParseAlgorithm reads an algorithm name, case-insensitively as the REST API does.
func ParseAlgorithm(s string) (Algorithm, bool) {
	for i, n := range algorithmNames {
		if i > 0 && asciiEqualFold(n, s) {
			return Algorithm(i), true
		}
	}
	return 0, false
}

// Checksum computes a firmware checksum incrementally, chunk by chunk.
type Checksum struct {
	alg Algorithm
	h   hash.Hash
}

// NewChecksum starts a checksum. It returns nil for an unknown algorithm.
func NewChecksum(a Algorithm) *Checksum {
	var h hash.Hash
	switch a {
	case MD5:
		h = md5.New()
	case SHA256:
		h = sha256.New()
	case SHA384:
		h = sha512.New384()
	case SHA512:
		h = sha512.New()
	case CRC32:
		h = crc32.NewIEEE()
	case Murmur3_32:
		h = murmur3.New32()
	case Murmur3_128:
		h = murmur3.New128()
	default:
		return nil
	}
	return &Checksum{alg: a, h: h}
}

// Write adds data to the checksum. It never fails.
func (c *Checksum) Write(p []byte) (int, error) { return c.h.Write(p) }

// Hex returns the checksum as ThingsBoard writes it: Guava's
// HashCode.toString(), lowercase hex of the hash bytes, where CRC32 and the
// murmur hashes are little-endian (CRC 0xd87f7e0c reads "0c7e7fd8").
func (c *Checksum) Hex() string {
	var b []byte
	switch c.alg {
	case CRC32, Murmur3_32:
		b = appendLE(nil, uint64(c.h.(hash.Hash32).Sum32()), 4)
	case Murmur3_128:
		h1, h2 := c.h.(murmur3.Hash128).Sum128()
		b = appendLE(appendLE(nil, h1, 8), h2, 8)
	default:
		b = c.h.Sum(nil)
	}
	return hexString(b)
}

// ChecksumHex computes the checksum of data in one call.
func ChecksumHex(a Algorithm, data []byte) string {
	c := NewChecksum(a)
	if c == nil {
		return ""
	}
	c.Write(data)
	return c.Hex()
}

// ChecksumEqual compares two encoded checksums, ignoring case (the Arduino SDK
// lowercases before comparing).
func ChecksumEqual(a, b string) bool { return asciiEqualFold(a, b) }

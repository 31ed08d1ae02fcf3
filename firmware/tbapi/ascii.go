//go:build go1.23

package tbapi

// These few lines replace encoding/hex (which imports fmt), encoding/binary
// (which imports reflect), strings.EqualFold/ToUpper (which link the unicode
// tables) and strconv.ParseInt (which compares errors as interfaces, and that
// links TinyGo's reflect) in the firmware: on the ESP32-C3 they cost about
// 14 KB of flash for work that is ASCII, decimal and little-endian only
// (measured in the note of issue 11).

const hexDigits = "0123456789abcdef"

// hexString is hex.EncodeToString: lowercase, two digits per byte.
func hexString(b []byte) string {
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = hexDigits[c>>4], hexDigits[c&0xF]
	}
	return string(out)
}

// appendLE appends the low n bytes of v, least significant first.
func appendLE(b []byte, v uint64, n int) []byte {
	for i := 0; i < n; i++ {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// asciiEqualFold is strings.EqualFold for ASCII: checksums and algorithm
// names are ASCII, and a non-ASCII byte only ever equals itself.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// parseInt is strconv.ParseInt(s, 10, bits): an optional sign, then at least
// one decimal digit, and the value must fit in bits.
func parseInt(s string, bits uint) (int64, bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	limit := uint64(1) << (bits - 1) // |min|; max is limit-1
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (limit-d)/10 {
			return 0, false // n*10+d > limit, checked before it can wrap
		}
		n = n*10 + d
	}
	if neg {
		return -int64(n), true
	}
	if n == limit {
		return 0, false
	}
	return int64(n), true
}

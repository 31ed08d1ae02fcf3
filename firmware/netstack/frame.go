//go:build go1.23

package netstack

// Ethernet, ARP, IPv4 and TCP field offsets and values.
const (
	ethHdr      = 14
	etherIPv4   = 0x0800
	etherARP    = 0x0806
	ipHdr       = 20
	protoTCP    = 6
	tcpHdr      = 20
	flagFIN     = 0x01
	flagSYN     = 0x02
	flagRST     = 0x04
	flagPSH     = 0x08
	flagACK     = 0x10
	maxFrame    = 1514
	mss         = 1460
	recvWindow  = 8192
	defaultPort = 49152
)

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func put16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }
func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// sum adds 16-bit big-endian words to a one's-complement accumulator.
func sum(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xFFFF + acc>>16
	}
	return ^uint16(acc)
}

// tcpChecksum covers the pseudo-header (source, destination, protocol,
// length) and the segment.
func tcpChecksum(src, dst [4]byte, seg []byte) uint16 {
	acc := sum(0, src[:])
	acc = sum(acc, dst[:])
	acc += protoTCP + uint32(len(seg))
	return fold(sum(acc, seg))
}

//go:build go1.23

package netstack

import "errors"

// NIC is the network card: it sends whole Ethernet frames and hands over
// received ones without blocking (0 when none is waiting).
type NIC interface {
	Send(frame []byte) error
	Recv(buf []byte) int
}

// Config is the board's static address.
type Config struct {
	MAC     [6]byte
	IP      [4]byte
	Gateway [4]byte // every destination is reached through it
}

// Errors.
var (
	ErrClosed  = errors.New("tcp: connection closed")
	ErrReset   = errors.New("tcp: connection reset by peer")
	ErrTimeout = errors.New("tcp: no answer")
	ErrBusy    = errors.New("tcp: a connection is already open")
)

// Timing, in nanoseconds of the clock Poll gets.
const (
	arpRetry = int64(500e6)
	rto      = int64(400e6)
	maxTries = 12
)

// Stack is the board's IPv4 stack with at most one TCP connection.
type Stack struct {
	nic     NIC
	cfg     Config
	gwMAC   [6]byte
	haveGW  bool
	arpAt   int64 // when the last ARP request for the gateway went out
	ipID    uint16
	port    uint16
	conn    *Conn
	rx, tx  []byte
	Dropped int // frames ignored (not for us, malformed, out of order)
}

// New returns a stack on nic.
func New(nic NIC, cfg Config) *Stack {
	return &Stack{nic: nic, cfg: cfg, port: defaultPort, rx: make([]byte, maxFrame+64), tx: make([]byte, maxFrame)}
}

// Poll handles every frame waiting at the card, then the timers
// (ARP, retransmission). now is in nanoseconds.
func (s *Stack) Poll(now int64) {
	for {
		n := s.nic.Recv(s.rx)
		if n <= 0 {
			break
		}
		s.frame(s.rx[:n], now)
	}
	if c := s.conn; c != nil {
		c.timers(now)
	}
}

func (s *Stack) frame(f []byte, now int64) {
	if len(f) < ethHdr {
		s.Dropped++
		return
	}
	switch be16(f[12:]) {
	case etherARP:
		s.arp(f[ethHdr:])
	case etherIPv4:
		s.ipv4(f[ethHdr:], now)
	default:
		s.Dropped++
	}
}

// arp answers requests for our address and learns the gateway's MAC.
func (s *Stack) arp(p []byte) {
	if len(p) < 28 || be16(p) != 1 || be16(p[2:]) != etherIPv4 || p[4] != 6 || p[5] != 4 {
		s.Dropped++
		return
	}
	var senderMAC [6]byte
	var senderIP, target [4]byte
	copy(senderMAC[:], p[8:14])
	copy(senderIP[:], p[14:18])
	copy(target[:], p[24:28])
	if senderIP == s.cfg.Gateway {
		s.gwMAC, s.haveGW = senderMAC, true
	}
	if be16(p[6:]) == 1 && target == s.cfg.IP {
		s.sendARP(2, senderMAC, senderIP)
	}
}

func (s *Stack) sendARP(op uint16, mac [6]byte, ip [4]byte) {
	f := s.tx[:ethHdr+28]
	dst := mac
	if op == 1 {
		dst = [6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	}
	s.ethernet(f, dst, etherARP)
	p := f[ethHdr:]
	put16(p, 1)
	put16(p[2:], etherIPv4)
	p[4], p[5] = 6, 4
	put16(p[6:], op)
	copy(p[8:], s.cfg.MAC[:])
	copy(p[14:], s.cfg.IP[:])
	copy(p[18:], mac[:])
	copy(p[24:], ip[:])
	s.nic.Send(f)
}

func (s *Stack) ethernet(f []byte, dst [6]byte, typ uint16) {
	copy(f, dst[:])
	copy(f[6:], s.cfg.MAC[:])
	put16(f[12:], typ)
}

// resolve asks for the gateway's MAC (again after arpRetry); it reports
// whether the MAC is known.
func (s *Stack) resolve(now int64) bool {
	if s.haveGW {
		return true
	}
	if s.arpAt == 0 || now-s.arpAt >= arpRetry {
		s.arpAt = now
		s.sendARP(1, [6]byte{}, s.cfg.Gateway)
	}
	return false
}

func (s *Stack) ipv4(p []byte, now int64) {
	if len(p) < ipHdr || p[0]>>4 != 4 {
		s.Dropped++
		return
	}
	hl := int(p[0]&0x0F) * 4
	total := int(be16(p[2:]))
	var dst, src [4]byte
	copy(src[:], p[12:16])
	copy(dst[:], p[16:20])
	switch {
	case hl < ipHdr || total < hl || total > len(p) || fold(sum(0, p[:hl])) != 0:
		s.Dropped++ // malformed (frames may carry padding past total)
	case dst != s.cfg.IP || be16(p[6:])&0x3FFF != 0 || p[9] != protoTCP:
		s.Dropped++ // not ours, fragmented, or not TCP
	case s.conn == nil || tcpChecksum(src, dst, p[hl:total]) != 0:
		s.Dropped++
	default:
		s.conn.segment(src, p[hl:total], now)
	}
}

// sendIP wraps a TCP segment (already in s.tx after the IP header) and sends it.
func (s *Stack) sendTCP(dst [4]byte, seg []byte) {
	f := s.tx[:ethHdr+ipHdr+len(seg)]
	s.ethernet(f, s.gwMAC, etherIPv4)
	ip := f[ethHdr:]
	ip[0], ip[1] = 0x45, 0
	put16(ip[2:], uint16(ipHdr+len(seg)))
	s.ipID++
	put16(ip[4:], s.ipID)
	put16(ip[6:], 0x4000) // don't fragment
	ip[8], ip[9] = 64, protoTCP
	put16(ip[10:], 0)
	copy(ip[12:], s.cfg.IP[:])
	copy(ip[16:], dst[:])
	put16(ip[10:], fold(sum(0, ip[:ipHdr])))
	copy(ip[ipHdr:], seg)
	put16(ip[ipHdr+16:], 0)
	put16(ip[ipHdr+16:], tcpChecksum(s.cfg.IP, dst, ip[ipHdr:]))
	s.nic.Send(f)
}

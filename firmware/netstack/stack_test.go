package netstack

import (
	"bytes"
	"testing"
)

// pipeNIC records what the stack sends and feeds it what the test queues.
type pipeNIC struct {
	sent  [][]byte
	queue [][]byte
}

func (p *pipeNIC) Send(f []byte) error {
	p.sent = append(p.sent, append([]byte(nil), f...))
	return nil
}

func (p *pipeNIC) Recv(buf []byte) int {
	if len(p.queue) == 0 {
		return 0
	}
	f := p.queue[0]
	p.queue = p.queue[1:]
	return copy(buf, f)
}

var (
	boardMAC = [6]byte{2, 0, 0, 0, 0, 1}
	gwMAC    = [6]byte{0x52, 0x55, 10, 0, 2, 2}
	cfg      = Config{MAC: boardMAC, IP: [4]byte{10, 0, 2, 15}, Gateway: [4]byte{10, 0, 2, 2}}
)

// peer plays the gateway and a TCP server behind it.
type peer struct {
	nic *pipeNIC
	seq uint32
}

func (p *peer) arpReply() []byte {
	f := make([]byte, ethHdr+28)
	copy(f, boardMAC[:])
	copy(f[6:], gwMAC[:])
	put16(f[12:], etherARP)
	a := f[ethHdr:]
	put16(a, 1)
	put16(a[2:], etherIPv4)
	a[4], a[5] = 6, 4
	put16(a[6:], 2)
	copy(a[8:], gwMAC[:])
	copy(a[14:], cfg.Gateway[:])
	copy(a[18:], boardMAC[:])
	copy(a[24:], cfg.IP[:])
	return f
}

// tcp builds a segment from the server to the board.
func (p *peer) tcp(lport uint16, seq, ack uint32, flags byte, data []byte) []byte {
	seg := make([]byte, tcpHdr+len(data))
	put16(seg, 1883)
	put16(seg[2:], lport)
	put32(seg[4:], seq)
	put32(seg[8:], ack)
	seg[12], seg[13] = 5<<4, flags
	put16(seg[14:], 65535)
	copy(seg[tcpHdr:], data)
	server := [4]byte{10, 0, 2, 2}
	put16(seg[16:], tcpChecksum(server, cfg.IP, seg))
	f := make([]byte, ethHdr+ipHdr+len(seg))
	copy(f, boardMAC[:])
	copy(f[6:], gwMAC[:])
	put16(f[12:], etherIPv4)
	ip := f[ethHdr:]
	ip[0], ip[8], ip[9] = 0x45, 64, protoTCP
	put16(ip[2:], uint16(ipHdr+len(seg)))
	copy(ip[12:], server[:])
	copy(ip[16:], cfg.IP[:])
	put16(ip[10:], fold(sum(0, ip[:ipHdr])))
	copy(ip[ipHdr:], seg)
	return f
}

// parseSent returns the TCP fields of a frame the board sent.
func parseSent(t *testing.T, f []byte) (seq, ack uint32, flags byte, data []byte) {
	t.Helper()
	ip := f[ethHdr:]
	if fold(sum(0, ip[:ipHdr])) != 0 {
		t.Errorf("bad IP header checksum")
	}
	seg := ip[ipHdr:be16(ip[2:])]
	if tcpChecksum(cfg.IP, [4]byte{10, 0, 2, 2}, seg) != 0 {
		t.Errorf("bad TCP checksum")
	}
	return be32(seg[4:]), be32(seg[8:]), seg[13], seg[tcpHdr:]
}

func TestHandshakeDataClose(t *testing.T) {
	nic := &pipeNIC{}
	s := New(nic, cfg)
	c, err := s.Dial([4]byte{10, 0, 2, 2}, 1883, 1e9)
	if err != nil {
		t.Fatal(err)
		return
	}
	if len(nic.sent) != 1 || be16(nic.sent[0][12:]) != etherARP {
		t.Fatalf("first frame is not an ARP request: %d frames", len(nic.sent))
		return
	}
	p := &peer{nic: nic, seq: 5000}
	nic.queue = append(nic.queue, p.arpReply())
	s.Poll(1e9 + 1)
	seq, _, flags, _ := parseSent(t, nic.sent[len(nic.sent)-1])
	if flags != flagSYN {
		t.Fatalf("flags %#x; want SYN", flags)
		return
	}
	lport := be16(nic.sent[len(nic.sent)-1][ethHdr+ipHdr:])
	nic.queue = append(nic.queue, p.tcp(lport, 5000, seq+1, flagSYN|flagACK, nil))
	s.Poll(1e9 + 2)
	c.Write([]byte("hello"))
	s.Poll(1e9 + 3)
	_, ack, flags, data := parseSent(t, nic.sent[len(nic.sent)-1])
	if string(data) != "hello" || ack != 5001 || flags&flagACK == 0 {
		t.Fatalf("sent %q ack %d flags %#x", data, ack, flags)
		return
	}
	// No ACK: the data goes again after the timeout.
	n := len(nic.sent)
	s.Poll(1e9 + 3 + rto)
	if len(nic.sent) != n+1 {
		t.Fatalf("no retransmission")
		return
	}
	// The server acknowledges and answers in two segments, one out of order.
	nic.queue = append(nic.queue, p.tcp(lport, 5004, seq+6, flagACK, []byte("ld")), p.tcp(lport, 5001, seq+6, flagACK|flagPSH, []byte("wor")))
	s.Poll(2e9)
	buf := make([]byte, 16)
	got, _ := c.Read(buf)
	if string(buf[:got]) != "wor" {
		t.Errorf("read %q; want wor (the out-of-order segment dropped)", buf[:got])
	}
	nic.queue = append(nic.queue, p.tcp(lport, 5004, seq+6, flagACK|flagFIN, []byte("ld")))
	s.Poll(2e9 + 1)
	got, _ = c.Read(buf)
	if string(buf[:got]) != "ld" {
		t.Errorf("read %q; want ld", buf[:got])
	}
	if _, err := c.Read(buf); err != ErrClosed {
		t.Errorf("after FIN: err = %v; want ErrClosed", err)
	}
	nic.queue = append(nic.queue, p.tcp(lport, 5007, 0, flagRST, nil))
	s.Poll(2e9 + 2)
}

func TestARPReply(t *testing.T) {
	nic := &pipeNIC{}
	s := New(nic, cfg)
	req := (&peer{}).arpReply()
	put16(req[ethHdr+6:], 1) // a request for our address
	nic.queue = append(nic.queue, req)
	s.Poll(1)
	if len(nic.sent) != 1 || be16(nic.sent[0][ethHdr+6:]) != 2 || !bytes.Equal(nic.sent[0][ethHdr+8:ethHdr+14], boardMAC[:]) {
		t.Errorf("no ARP reply with our MAC")
	}
}

// FuzzFrame feeds arbitrary frames to a stack with an open connection: no
// panic, and a Read never returns more than what arrived.
func FuzzFrame(f *testing.F) {
	p := &peer{}
	f.Add(p.arpReply())
	f.Add(p.tcp(49153, 1, 1, flagACK, []byte("x")))
	f.Add(p.tcp(49153, 1, 1, flagSYN|flagACK, nil))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, frame []byte) {
		nic := &pipeNIC{}
		s := New(nic, cfg)
		c, _ := s.Dial([4]byte{10, 0, 2, 2}, 1883, 1)
		nic.queue = append(nic.queue, p.arpReply(), frame, frame)
		s.Poll(2)
		s.Poll(3 + rto)
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		if n > len(frame) {
			t.Fatalf("read %d bytes from a %d-byte frame", n, len(frame))
			return
		}
		c.Write([]byte("abc"))
		s.Poll(4 + 2*rto)
		c.Close()
	})
}

package tbemu

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// The in-memory connection passes the standard net.Conn conformance suite
// (ordering, concurrent use, deadlines, close semantics).
func TestMemPipeConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		c1, c2 = memPipe()
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// Writes are buffered like a socket's: a writer does not wait for the
// reader up to the window, and waits (until its deadline) beyond it.
func TestMemPipeWindow(t *testing.T) {
	a, b := memPipe()
	defer a.Close()
	defer b.Close()
	small := bytes.Repeat([]byte{1}, 1000)
	if n, err := a.Write(small); n != 1000 || err != nil {
		t.Fatalf("write with nobody reading: %d, %v", n, err)
	}
	a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	big := make([]byte, memPipeWindow)
	n, err := a.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n != memPipeWindow-1000 {
		t.Fatalf("write past the window: %d, %v; want %d and a deadline error", n, err, memPipeWindow-1000)
	}
	got, err := io.ReadAll(io.LimitReader(b, memPipeWindow))
	if err != nil || len(got) != memPipeWindow || got[0] != 1 || got[len(got)-1] != 0 {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	a.Close()
	if n, err := b.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v; want EOF", n, err)
	}
	if _, err := b.Write([]byte{1}); err == nil {
		t.Fatal("write to a closed peer succeeded")
	}
}

// A chunk-sized write and its read allocate nothing once the pipe has
// carried one (the drained buffer is reused), deadlines set or not: an OTA
// through the in-memory transport copied every byte into a new buffer.
func TestMemPipeReusesBuffers(t *testing.T) {
	a, b := memPipe()
	defer a.Close()
	defer b.Close()
	chunk := bytes.Repeat([]byte{7}, 4096+40)
	got := make([]byte, len(chunk))
	round := func() {
		a.SetWriteDeadline(time.Now().Add(time.Minute))
		if _, err := a.Write(chunk); err != nil {
			t.Fatal(err)
			return
		}
		b.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := io.ReadFull(b, got); err != nil {
			t.Fatal(err)
			return
		}
	}
	round()
	// Under -race sync.Pool drops a quarter of what it is given.
	if allocs := testing.AllocsPerRun(200, round); allocs > 0.5 {
		t.Fatalf("%.2f allocations per chunk through the pipe; want about 0", allocs)
	}
	if !bytes.Equal(got, chunk) {
		t.Fatal("bytes changed on the way")
	}
}

// A read that waits past its deadline reuses its timer and still times
// out; the next wait with a later deadline is not woken by the old timer.
func TestMemPipeDeadlineReuse(t *testing.T) {
	a, b := memPipe()
	defer a.Close()
	defer b.Close()
	for range 3 {
		b.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := b.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read with nothing sent: %v; want a deadline error", err)
			return
		}
	}
	b.SetReadDeadline(time.Now().Add(time.Minute))
	go a.Write([]byte{9})
	buf := make([]byte, 1)
	if n, err := b.Read(buf); n != 1 || err != nil || buf[0] != 9 {
		t.Fatalf("read after reused timers: %d, %v", n, err)
	}
}

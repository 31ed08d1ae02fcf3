package main

import (
	"bytes"
	"strings"
	"testing"
)

// The live block is redrawn in place, cut to the terminal's width, and lines
// printed through the view land above it and are never erased.
func TestTermView(t *testing.T) {
	var out bytes.Buffer
	width := 20
	v := newTermView(&out, func() int { return width })

	v.Update([]string{"short", "a line much longer than twenty columns"})
	if got, want := out.String(), "short\na line much longer…\n"; got != want {
		t.Fatalf("first draw = %q; want %q", got, want)
	}

	out.Reset()
	v.Print("[24:0A:C4:00:00:01] Firmware: CORE_ESP32")
	// Up 2 rows, erase, the console line, then the block again.
	want := "\r\x1b[2A\x1b[J[24:0A:C4:00:00:01] Firmware: CORE_ESP32\nshort\na line much longer…\n"
	if got := out.String(); got != want {
		t.Fatalf("print = %q; want %q", got, want)
	}

	// After the terminal shrinks, the old lines wrap onto more rows: all of
	// them are erased, none left behind as a stale copy.
	out.Reset()
	width = 10
	v.Update([]string{"x"})
	if got, want := out.String(), "\r\x1b[3A\x1b[Jx\n"; got != want {
		t.Fatalf("redraw after a resize = %q; want %q", got, want)
	}

	// Log records written through the view are whole lines above the block.
	out.Reset()
	v.Write([]byte("level=WARN msg=one\nlevel=WARN "))
	v.Write([]byte("msg=two\n"))
	if got := out.String(); strings.Count(got, "level=WARN msg=one\n") != 1 || strings.Count(got, "level=WARN msg=two\n") != 1 {
		t.Fatalf("log lines = %q", got)
	}

	out.Reset()
	v.Close()
	if got, want := out.String(), "\r\x1b[1A\x1b[J"; got != want {
		t.Fatalf("close = %q; want %q", got, want)
	}
}

func TestCut(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{{"abc", 3, "abc"}, {"abcd", 3, "ab…"}, {"µµµµ", 2, "µ…"}, {"abc", 0, "abc"}} {
		if got := cut(c.in, c.n); got != c.want {
			t.Errorf("cut(%q, %d) = %q; want %q", c.in, c.n, got, c.want)
		}
	}
}

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"unicode/utf8"

	"golang.org/x/term"
)

// termView is the live block at the bottom of a terminal: it is redrawn in
// place, every line cut to the terminal's width, and lines printed through
// it (a device's serial log, log records) go above the block and stay.
type termView struct {
	mu    sync.Mutex
	w     io.Writer
	width func() int // columns; re-read at every draw (the terminal may be resized)
	shown []int      // rune lengths of the lines on screen, to count their rows
	last  []string
	buf   []byte // a partial line written through Write
}

func newTermView(w io.Writer, width func() int) *termView {
	return &termView{w: w, width: width}
}

// terminalWidth returns f's width when f is a terminal.
func terminalWidth(f *os.File) func() int {
	return func() int {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return w
		}
		return 80
	}
}

// clear moves the cursor to the block's first row and erases to the end of
// the screen. Rows are counted at the current width: a line drawn before a
// resize may now wrap onto several.
func (v *termView) clear(width int) {
	rows := 0
	for _, n := range v.shown {
		rows += max(1, (n+width-1)/width)
	}
	if rows > 0 {
		fmt.Fprintf(v.w, "\r\x1b[%dA\x1b[J", rows)
	}
	v.shown = v.shown[:0]
}

func (v *termView) draw(width int) {
	for _, l := range v.last {
		l = cut(l, width-1) // never the last column: some terminals wrap there
		fmt.Fprintf(v.w, "%s\n", l)
		v.shown = append(v.shown, utf8.RuneCountInString(l))
	}
}

// Update replaces the block.
func (v *termView) Update(lines []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	width := v.width()
	v.clear(width)
	v.last = append(v.last[:0], lines...)
	v.draw(width)
}

// Print writes a line above the block.
func (v *termView) Print(line string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	width := v.width()
	v.clear(width)
	fmt.Fprintln(v.w, line)
	v.draw(width)
}

// Write prints whole lines above the block (for a logger).
func (v *termView) Write(p []byte) (int, error) {
	v.mu.Lock()
	v.buf = append(v.buf, p...)
	var lines []string
	for {
		i := bytes.IndexByte(v.buf, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(v.buf[:i]))
		v.buf = v.buf[i+1:]
	}
	v.mu.Unlock()
	for _, l := range lines {
		v.Print(l)
	}
	return len(p), nil
}

// Close erases the block.
func (v *termView) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clear(v.width())
	v.last = nil
}

// cut shortens s to at most n runes, marking the cut.
func cut(s string, n int) string {
	if n < 1 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

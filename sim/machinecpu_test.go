package sim

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	in := "cpu  100 20 30 5000 400 5 6 7 0 0\ncpu0 50 10 15 2500 200 2 3 3 0 0\n"
	got, ok := parseProcStat([]byte(in))
	if want := 168 * 10 * time.Millisecond; !ok || got != want {
		t.Fatalf("parseProcStat = %v, %v; want %v (idle and iowait left out)", got, ok, want)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, ok := parseProcStat([]byte(bad)); ok {
			t.Errorf("parseProcStat(%q) accepted", bad)
		}
	}
}

// On Linux the health line gives the whole machine's CPU beside tbsim's,
// measured from /proc/stat over the run.
func TestHealthMachineCPU(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc/stat")
	}
	var h Health
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.run(ctx); close(done) }()
	for h.Stats().CPUNow == 0 && !strings.Contains(h.Stats().Why, "whole machine") {
		time.Sleep(10 * time.Millisecond) // the first sample comes after a second
	}
	cancel()
	<-done
	if s := h.Stats(); !strings.Contains(s.Why, "the whole machine") {
		t.Fatalf("Why = %q; want the whole machine's CPU", s.Why)
	}
}

package scenario

import (
	"context"
	"strings"
	"testing"
)

// The search finds, on its own, the stranding of the seed firmware: a power
// cut after the server created the device and before the token reached NVS.
// It shrinks it to that one fault, and the replay reproduces it.
func TestFuzzFindsStranding(t *testing.T) {
	if testing.Short() {
		t.Skip("runs fleets")
	}
	r, err := Fuzz(context.Background(), FuzzOptions{Seed: 1, Schedules: 20, Shrink: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.First == nil || !breaks(r.First, InvTokenKept) {
		t.Fatalf("no stranding found in 20 schedules: %+v", r)
	}
	if len(r.First.Faults) != 1 || !strings.Contains(r.First.Faults[0], "when provisioning") {
		t.Fatalf("shrunk to %v; want the one power cut during provisioning", r.First.Faults)
	}
	again, err := Fuzz(context.Background(), FuzzOptions{Seed: r.First.Seed, Schedules: 1, Keep: r.Kept})
	if err != nil {
		t.Fatal(err)
	}
	if again.First == nil || again.First.Violations[0].Detail != r.First.Violations[0].Detail {
		t.Fatalf("the replay (%s) did not reproduce the violation", r.Replay)
	}
}

// With the firmware's write-ahead token the same search finds nothing.
func TestFuzzWriteAheadClean(t *testing.T) {
	if testing.Short() {
		t.Skip("runs fleets")
	}
	r, err := Fuzz(context.Background(), FuzzOptions{Seed: 1, Schedules: 60, WriteAheadToken: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Failing) > 0 {
		var b strings.Builder
		WriteFuzz(&b, r)
		t.Fatalf("violations with the write-ahead token:\n%s", b.String())
	}
}

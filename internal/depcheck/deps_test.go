// Package depcheck guards the import rules of design.md (the firmware's own
// allowlist is checked in firmware/deps_test.go).
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

const (
	mod   = "github.com/tbsim/tbsim"
	mochi = "github.com/mochi-mqtt/server"
)

// deps returns every package pkg depends on (transitively).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		// Fail, not skip: a guard that skips guards nothing.
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestImportRules(t *testing.T) {
	rules := []struct {
		pkg       string
		forbidden []string
		why       string
	}{
		{mod + "/tbemu/...", []string{mod + "/firmware", mod + "/device", mod + "/sim", mod + "/internal"},
			"tbemu is a black box that speaks MQTT and HTTP; only firmware/tbapi is shared"},
		{mod + "/tbemu/core", []string{mochi, "net/http", mod + "/tbemu/mochihook", mod + "/tbemu/rest", mod + "/tbemu/direct"},
			"the emulator's core knows no transport: mochi and net/http are its adapters"},
		{mod + "/tbemu/mochihook", []string{mod + "/tbemu/rest", mod + "/tbemu/direct"}, "adapters do not import each other"},
		{mod + "/tbemu/rest", []string{mochi, mod + "/tbemu/mochihook", mod + "/tbemu/direct"}, "adapters do not import each other"},
		{mod + "/tbemu/direct", []string{mochi, "net/http", mod + "/tbemu/mochihook", mod + "/tbemu/rest"},
			"adapters do not import each other; the simulator's adapter needs no network"},
		{mod + "/tbemu/emutest", []string{mod + "/"}, "test helpers for the core: the standard library only"},
		{mod + "/sim", []string{mod + "/tbemu", mod + "/cmd"}, "the fleet gets a dialer, it does not own a server"},
		{mod + "/device", []string{mod + "/tbemu", mod + "/sim", mod + "/internal"}, "adapters do not import each other"},
		{mod + "/firmware/...", []string{mod + "/device", mod + "/sim", mod + "/tbemu", mod + "/internal"}, "the firmware is the innermost layer"},
		{mod + "/espidf/...", []string{mod + "/firmware", mod + "/device", mod + "/sim", mod + "/tbemu", mod + "/internal"},
			"the ESP-IDF formats are shared by the chip and the PC: they depend on nothing else of ours"},
	}
	for _, r := range rules {
		for _, d := range deps(t, r.pkg) {
			if d == mod+"/firmware/tbapi" || d == r.pkg {
				continue
			}
			for _, f := range r.forbidden {
				if d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/") {
					t.Errorf("%s depends on %s: %s", r.pkg, d, r.why)
				}
			}
		}
	}
}

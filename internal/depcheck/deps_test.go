// Package depcheck guards the import rules of design.md (the firmware's own
// allowlist is checked in firmware/deps_test.go).
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
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
		{"github.com/tbsim/tbsim/tbemu", []string{"github.com/tbsim/tbsim/firmware", "github.com/tbsim/tbsim/device", "github.com/tbsim/tbsim/sim", "github.com/tbsim/tbsim/internal"},
			"tbemu is a black box that speaks MQTT and HTTP; only firmware/tbapi is shared"},
		{"github.com/tbsim/tbsim/sim", []string{"github.com/tbsim/tbsim/tbemu", "github.com/tbsim/tbsim/cmd"}, "the fleet gets a dialer, it does not own a server"},
		{"github.com/tbsim/tbsim/device", []string{"github.com/tbsim/tbsim/tbemu", "github.com/tbsim/tbsim/sim", "github.com/tbsim/tbsim/internal"}, "adapters do not import each other"},
		{"github.com/tbsim/tbsim/firmware/...", []string{"github.com/tbsim/tbsim/device", "github.com/tbsim/tbsim/sim", "github.com/tbsim/tbsim/tbemu", "github.com/tbsim/tbsim/internal"}, "the firmware is the innermost layer"},
		{"github.com/tbsim/tbsim/espidf/...", []string{"github.com/tbsim/tbsim/firmware", "github.com/tbsim/tbsim/device", "github.com/tbsim/tbsim/sim", "github.com/tbsim/tbsim/tbemu", "github.com/tbsim/tbsim/internal"}, "the ESP-IDF formats are shared by the chip and the PC: they depend on nothing else of ours"},
	}
	for _, r := range rules {
		for _, d := range deps(t, r.pkg) {
			if d == "github.com/tbsim/tbsim/firmware/tbapi" {
				continue
			}
			for _, f := range r.forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s depends on %s: %s", r.pkg, d, r.why)
				}
			}
		}
	}
}

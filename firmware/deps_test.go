//go:build !tinygo

package firmware_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// allowed is the firmware's import allowlist (design.md): what TinyGo 0.33
// compiles for a bare-metal ESP32 without an OS. Prefix entries end in "/".
var allowed = []string{
	"errors", "strconv", "strings", "time", "bytes", "sort", "math",
	"encoding/hex", "encoding/binary", "hash", "hash/", "crypto/",
	"github.com/tbsim/tbsim/firmware", // the firmware's own packages
	"github.com/twmb/murmur3",         // MURMUR3 checksums; imports only hash, math/bits, unsafe
}

// forbidden names why the usual suspects are out, for a clearer failure.
var forbidden = map[string]string{
	"os":                              "no OS on the ESP32",
	"net":                             "the MQTT session is a port",
	"log/slog":                        "log through the Console port",
	"encoding/json":                   "reflection-heavy; use tbapi's JSON",
	"reflect":                         "TinyGo's reflect is partial",
	"fmt":                             "large and reflection-based on TinyGo",
	"sync":                            "the machine is single-threaded",
	"github.com/mochi-mqtt/server/v2": "server side only",
}

func isAllowed(path string) bool {
	for _, a := range allowed {
		if path == a || strings.HasSuffix(a, "/") && strings.HasPrefix(path, a) || strings.HasPrefix(path, a+"/") {
			return true
		}
	}
	return false
}

type listedPackage struct {
	ImportPath string
	Imports    []string
	Module     *struct{ Path string }
}

func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-json"}, args...)...).Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
		return nil
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
			return nil
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestFirmwareImports fails when a package under firmware/ (or a third-party
// package it uses) imports something outside the allowlist. Direct imports
// only: the standard library itself reaches os through crypto/..., which
// TinyGo provides.
func TestFirmwareImports(t *testing.T) {
	pkgs := goList(t, "github.com/tbsim/tbsim/firmware/...")
	if len(pkgs) < 3 {
		t.Fatalf("go list found %d firmware packages", len(pkgs))
		return
	}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if why, ok := forbidden[imp]; ok {
				t.Errorf("%s imports %s: %s", p.ImportPath, imp, why)
			} else if !isAllowed(imp) {
				t.Errorf("%s imports %s, which is not on the firmware allowlist", p.ImportPath, imp)
			}
		}
	}
	for _, p := range goList(t, "github.com/twmb/murmur3") {
		for _, imp := range p.Imports {
			if !isAllowed(imp) && imp != "math/bits" && imp != "unsafe" {
				t.Errorf("%s (used by the firmware) imports %s", p.ImportPath, imp)
			}
		}
	}
}

//go:build !tinygo

package firmware_test

import (
	"encoding/json"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// allowed is the firmware's import allowlist (design.md): what TinyGo 0.33
// compiles for a bare-metal ESP32 without an OS. Only these may be imported
// directly by a firmware package.
var allowed = map[string]bool{
	"errors": true, "strconv": true, "strings": true, "time": true, "bytes": true,
	"sort": true, "math": true, "math/bits": true, "hash": true, "hash/crc32": true,
	// The checksums ThingsBoard offers; TinyGo's tests of these pass.
	"crypto/md5": true, "crypto/sha256": true, "crypto/sha512": true,
	"github.com/twmb/murmur3": true, // MURMUR3 checksums; imports only hash, math/bits, unsafe
}

// ownRoots are the TinyGo-safe trees this guard covers (the firmware, and the
// ESP-IDF formats the chip shares with the PC); they may import each other.
var ownRoots = []string{"github.com/tbsim/tbsim/firmware", "github.com/tbsim/tbsim/espidf"}

// heavy is what the firmware must not reach at all, directly or through
// another package, with the reason.
var heavy = map[string]string{
	"fmt":                             "large and reflection-based on TinyGo (encoding/hex pulls it in: write the hex)",
	"reflect":                         "TinyGo's reflect is partial and costs ~6 KB (encoding/binary pulls it in: append the bytes)",
	"encoding/json":                   "reflection-heavy; use tbapi's JSON",
	"encoding/binary":                 "imports reflect",
	"encoding/hex":                    "imports fmt",
	"log":                             "log through the Console port",
	"log/slog":                        "log through the Console port",
	"net":                             "the MQTT session is a port",
	"net/http":                        "no network stack on the chip",
	"os/exec":                         "no OS on the ESP32",
	"os/signal":                       "no OS on the ESP32",
	"crypto/tls":                      "TinyGo's tls.Client panics: not implemented",
	"crypto/rand":                     "randomness comes through the Rand port",
	"regexp":                          "large; the firmware parses by hand",
	"text/template":                   "reflection-based",
	"github.com/mochi-mqtt/server/v2": "server side only",
}

// tinygoOwn are the standard packages TinyGo replaces with its own
// implementation (the directories of TinyGo 0.33's src/): what gc's versions
// import says nothing about what TinyGo links, so the walk stops there.
// (gc's crypto reaches os and sync this way; TinyGo's os and sync are
// bare-metal stubs.)
var tinygoOwn = map[string]bool{
	"runtime": true, "os": true, "sync": true, "syscall": true, "reflect": true,
	"internal/reflectlite": true, "internal/task": true, "internal/abi": true,
	"internal/bytealg": true, "internal/fuzz": true, "internal/binary": true,
	"crypto/rand": true, "crypto/tls": true, "net": true, "unique": true, "testing": true,
	"crypto/internal/boring/sig": true,
}

type listedPackage struct {
	ImportPath string
	Standard   bool
	Imports    []string
}

// goList runs go list; a failure fails the test, since a guard that skips
// guards nothing.
func goList(t *testing.T, args ...string) map[string]listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list %v: %v\n%s", args, err, stderr)
		return nil
	}
	pkgs := map[string]listedPackage{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
			return nil
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

func isOwn(path string) bool {
	for _, r := range ownRoots {
		if path == r || strings.HasPrefix(path, r+"/") {
			return true
		}
	}
	return false
}

func ownPatterns() []string {
	var p []string
	for _, r := range ownRoots {
		p = append(p, r+"/...")
	}
	return p
}

// TestFirmwareImports fails when a firmware package imports something that is
// neither another firmware package nor on the allowlist.
func TestFirmwareImports(t *testing.T) {
	pkgs := goList(t, ownPatterns()...)
	if len(pkgs) < 3 {
		t.Fatalf("go list found %d firmware packages; want at least 3", len(pkgs))
		return
	}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if why, bad := heavy[imp]; bad {
				t.Errorf("%s imports %s: %s", p.ImportPath, imp, why)
			} else if !allowed[imp] && !isOwn(imp) {
				t.Errorf("%s imports %s, which is not on the firmware allowlist", p.ImportPath, imp)
			}
		}
	}
}

// TestFirmwareClosure walks everything the firmware reaches, through the
// standard library too, up to the packages TinyGo implements itself, and
// fails on anything heavy or outside the standard library, with the chain
// that reaches it.
func TestFirmwareClosure(t *testing.T) {
	all := goList(t, append([]string{"-deps"}, ownPatterns()...)...)
	var roots []string
	for path := range all {
		if isOwn(path) {
			roots = append(roots, path)
		}
	}
	sort.Strings(roots)
	if len(roots) < 3 {
		t.Fatalf("go list found %d firmware packages; want at least 3", len(roots))
		return
	}
	via := map[string]string{} // package -> the package that first reached it
	queue := append([]string(nil), roots...)
	for _, r := range roots {
		via[r] = ""
	}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		if why, bad := heavy[path]; bad {
			t.Errorf("the firmware reaches %s (%s): %s", path, chain(via, path), why)
			continue
		}
		p, ok := all[path]
		if !ok {
			t.Errorf("go list -deps did not list %s", path)
			continue
		}
		if !p.Standard && !isOwn(path) && !allowed[path] {
			t.Errorf("the firmware reaches %s (%s), outside the standard library and the allowlist", path, chain(via, path))
			continue
		}
		if tinygoOwn[path] {
			continue
		}
		for _, imp := range p.Imports {
			if _, seen := via[imp]; !seen {
				via[imp] = path
				queue = append(queue, imp)
			}
		}
	}
}

func chain(via map[string]string, path string) string {
	c := []string{path}
	for p := via[path]; p != ""; p = via[p] {
		c = append(c, p)
	}
	for i, j := 0, len(c)-1; i < j; i, j = i+1, j-1 {
		c[i], c[j] = c[j], c[i]
	}
	return strings.Join(c, " -> ")
}

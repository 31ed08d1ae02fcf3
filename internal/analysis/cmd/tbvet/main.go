// Command tbvet runs tbsim's own analyzers (evalorder, fatalreturn) over
// packages given as go list patterns, tests included, and exits 1 when one of
// them reports something:
//
//	go run ./internal/analysis/cmd/tbvet ./firmware/...
//
// For esp32/, which only TinyGo builds, .ci/run runs it with TinyGo's GOROOT,
// GOOS/GOARCH and build tags (tinygo info) and Go 1.23's go command.
//
// It loads and type-checks the packages from source with go/packages, so the
// same binary also checks code that only TinyGo builds: run it with TinyGo's
// GOROOT, GOOS/GOARCH and build tags in the environment (see .ci/run), and
// `-tags` for the tags.
package main

import (
	"flag"
	"fmt"
	"go/token"
	"os"
	"sort"

	"github.com/tbsim/tbsim/internal/analysis/evalorder"
	"github.com/tbsim/tbsim/internal/analysis/fatalreturn"
	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/packages"
)

func main() {
	tags := flag.String("tags", "", "comma-separated build tags")
	tests := flag.Bool("test", true, "also check the packages' tests")
	modfile := flag.String("modfile", "", "go.mod to use instead of the module's (TinyGo's Go 1.23 needs one saying go 1.23)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: tbvet [-tags list] [-test=false] packages...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	n, err := vet(*tags, *modfile, *tests, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "tbvet:", err)
		os.Exit(1)
	}
	if n > 0 {
		os.Exit(1)
	}
}

// vet loads the packages, runs the analyzers and prints their findings; it
// returns how many there were.
func vet(tags, modfile string, tests bool, patterns []string) (int, error) {
	cfg := &packages.Config{Mode: packages.LoadAllSyntax, Tests: tests}
	if tags != "" {
		cfg.BuildFlags = append(cfg.BuildFlags, "-tags="+tags)
	}
	if modfile != "" {
		// A build flag, not GOFLAGS: go/packages also runs go list outside
		// module mode, where -modfile is an error.
		cfg.BuildFlags = append(cfg.BuildFlags, "-modfile="+modfile)
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return 0, err
	}
	if packages.PrintErrors(pkgs) > 0 {
		return 0, fmt.Errorf("packages did not load")
	}
	if len(pkgs) == 0 {
		return 0, fmt.Errorf("no packages match %v", patterns)
	}
	g, err := checker.Analyze([]*analysis.Analyzer{evalorder.Analyzer, fatalreturn.Analyzer}, pkgs, nil)
	if err != nil {
		return 0, err
	}
	var lines []string
	seen := map[string]bool{} // a file is in both a package and its test variant
	for act := range g.All() {
		if !act.IsRoot {
			continue
		}
		for _, d := range act.Diagnostics {
			line := position(act.Package.Fset, d.Pos) + ": " + act.Analyzer.Name + ": " + d.Message
			if !seen[line] {
				seen[line] = true
				lines = append(lines, line)
			}
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	fmt.Fprintf(os.Stderr, "tbvet: %d packages, %d findings\n", len(pkgs), len(lines))
	return len(lines), nil
}

func position(fset *token.FileSet, p token.Pos) string {
	pos := fset.Position(p)
	if wd, err := os.Getwd(); err == nil {
		if rel, ok := cutPrefix(pos.Filename, wd+string(os.PathSeparator)); ok {
			pos.Filename = rel
		}
	}
	return pos.String()
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return s, false
}

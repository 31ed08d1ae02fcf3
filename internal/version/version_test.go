package version

import (
	"runtime"
	"strings"
	"testing"
)

// The Go version always comes from the running binary; -ldflags values win
// over the build information.
func TestGet(t *testing.T) {
	i := Get()
	if i.GoVersion != runtime.Version() {
		t.Errorf("GoVersion = %q; want %q", i.GoVersion, runtime.Version())
	}
	if i.Version == "" {
		t.Error("Version is empty; want (devel) or a module version")
	}
	version, revision = "v9.8.7", "0123456789abcdef0123"
	defer func() { version, revision = "", "" }()
	i = Get()
	if i.Version != "v9.8.7" || i.Revision != "0123456789abcdef0123" {
		t.Errorf("Get() = %+v; want the -ldflags values", i)
	}
	if got := i.Short(); !strings.HasPrefix(got, "v9.8.7+0123456789ab") {
		t.Errorf("Short() = %q; want v9.8.7+0123456789ab...", got)
	}
	if got := i.String(); !strings.Contains(got, "tbsim v9.8.7, revision 0123456789abcdef0123, built with go") {
		t.Errorf("String() = %q", got)
	}
}

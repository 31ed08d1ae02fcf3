package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags -X when the build information lacks them.
var (
	version  string
	revision string
)

// Info is what a binary knows about its own build.
type Info struct {
	Version   string // module version such as v1.2.3, or (devel)
	Revision  string // VCS revision, "" when unknown
	Modified  bool   // built from a checkout with uncommitted changes
	GoVersion string
}

// Get reads the build information; -ldflags values win over it.
func Get() Info {
	i := Info{Version: "(devel)", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		i.Version = version
	}
	if revision != "" {
		i.Revision = revision
	}
	return i
}

// Short is the version and revision in one word, for reports.
func (i Info) Short() string {
	if i.Revision == "" {
		return i.Version
	}
	rev := i.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if i.Modified {
		rev += "-dirty"
	}
	return i.Version + "+" + rev
}

// String is the line `tbsim version` prints.
func (i Info) String() string {
	rev := i.Revision
	if rev == "" {
		rev = "unknown"
	} else if i.Modified {
		rev += " (modified)"
	}
	return fmt.Sprintf("tbsim %s, revision %s, built with %s for %s/%s", i.Version, rev, i.GoVersion, runtime.GOOS, runtime.GOARCH)
}

// Package scenarios ships tbsim's scenario files, embedded into the binary
// (tbsim scenario ls, tbsim scenario run NAME).
package scenarios

import (
	"embed"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Names lists the shipped scenarios (file names without .yaml).
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(out)
	return out
}

// Read returns a shipped scenario's file name and contents.
func Read(name string) (string, []byte, error) {
	file := strings.TrimSuffix(path.Base(name), ".yaml") + ".yaml"
	data, err := files.ReadFile(file)
	return "scenarios/" + file, data, err
}

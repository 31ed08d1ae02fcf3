package main

import (
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestDevicesNVSScripts runs testdata/script_nvs: devices import/export with
// partitions ESP-IDF's own generator wrote ($IDFDATA).
func TestDevicesNVSScripts(t *testing.T) {
	idf, err := filepath.Abs("../../espidf/nvs/testdata/idf")
	if err != nil {
		t.Fatal(err)
		return
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script_nvs",
		Setup: func(env *testscript.Env) error {
			env.Setenv("IDFDATA", idf)
			return nil
		},
	})
}

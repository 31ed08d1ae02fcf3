package main

import (
	"errors"
	"fmt"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu"
)

// ensureOTAPackage stores the --ota image in the embedded server, or finds
// it there from an earlier run of the same state dir: the same title,
// version and bytes are reused (a rollout interrupted by a kill resumes),
// other bytes under that title and version are an error that says so.
func ensureOTAPackage(e *env, emu *tbemu.Server, o *runOptions, data []byte) (tbemu.Package, error) {
	title := o.otaTitle
	if title == "" {
		title = o.fwTitle
	}
	pkg, created, err := emu.EnsureFirmware(tbemu.PackageSpec{Title: title, Version: o.otaVersion}, data, tbapi.SHA256)
	switch {
	case errors.Is(err, tbemu.ErrTooLarge):
		return pkg, usageErr("--ota %s: %v", o.otaFile, err)
	case errors.Is(err, tbemu.ErrConflict):
		return pkg, &exitError{ExitRuntime, fmt.Errorf("--ota %s: %w; or pass --reset-state to start the fleet over", o.otaFile, err)}
	case err != nil:
		return pkg, fmt.Errorf("--ota %s: %w", o.otaFile, err)
	case !created:
		e.log.Info("--ota: the package is in the state dir from an earlier run: reused", "title", title, "version", o.otaVersion)
	}
	return pkg, nil
}

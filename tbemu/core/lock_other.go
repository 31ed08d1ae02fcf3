//go:build !unix

package core

import "os"

// flock is not available here: the state file is guarded by bbolt's own
// lock only (a second process waits, then gets "open in another process").
func flock(*os.File) error { return nil }

func funlock(*os.File) error { return nil }

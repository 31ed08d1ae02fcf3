//go:build !unix

package sim

import "os"

// flock is not available here: the state directory is not locked.
func flock(*os.File) error { return nil }

func funlock(*os.File) error { return nil }

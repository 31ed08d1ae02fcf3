//go:build unix

package core

import (
	"os"
	"syscall"
)

// flock takes an exclusive lock on f without waiting; the kernel drops it
// when the process dies, so a kill -9 leaves no stale lock.
func flock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) }

func funlock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

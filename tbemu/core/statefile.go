package core

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrStateLocked is returned when another process has the state file open.
var ErrStateLocked = errors.New("state file in use")

// ErrStateDamaged is returned for a state file that cannot be trusted.
var ErrStateDamaged = errors.New("state file damaged")

// boltWait bounds the wait for bbolt's own lock, held by a process that
// did not take the lock file (an older tbsim, or a bbolt tool).
const boltWait = 2 * time.Second

// compactAbove is how much free space (pages bbolt keeps for reuse, such as
// those of a deleted package's bytes) makes opening rewrite the file.
const compactAbove = 4 << 20

// stateFile is the open bbolt file with the lock beside it.
type stateFile struct {
	db     *bolt.DB
	unlock func()
}

// openStateFile takes the lock file beside path (a second process is told
// which process has it), checks an existing file (truncated or corrupt is
// ErrStateDamaged, never a panic or a fault), opens it, and rewrites it
// without its free pages when they are most of it, so bytes freed in an
// earlier run leave the file too.
func openStateFile(path string, log *slog.Logger) (_ *stateFile, err error) {
	unlock, err := lockStateFile(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("state file %s: %w", path, err)
	case st.Size() == 0:
		// bbolt initialises an empty file; say so, since a file that lost
		// its contents looks the same.
		log.Warn("state file is empty: starting with no devices", "path", path)
	default:
		if err := checkStateFile(path, st.Size()); err != nil {
			return nil, err
		}
	}
	db, err := openBolt(path, &bolt.Options{Timeout: boltWait})
	if err != nil {
		return nil, err
	}
	if db, err = compactIfMostlyFree(db, path, log); err != nil {
		return nil, err
	}
	return &stateFile{db: db, unlock: unlock}, nil
}

func (f *stateFile) close() error {
	err := f.db.Close()
	f.unlock()
	return err
}

// lockStateFile takes path+".lock" for this process until unlock. The file
// names the holder (pid and command line) so a second process can say who
// it is; the kernel drops the lock when the holder dies, kill -9 included.
func lockStateFile(path string) (unlock func(), err error) {
	lockPath := path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state file lock: %w", err)
	}
	if err := flock(f); err != nil {
		holder, _ := os.ReadFile(lockPath)
		f.Close()
		who := strings.TrimSpace(string(holder))
		if who == "" {
			who = "another process"
		}
		return nil, fmt.Errorf("%w: %s is used by %s; stop it, or give this one another state file", ErrStateLocked, path, who)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "pid %d (%s)\n", os.Getpid(), strings.Join(os.Args, " "))
	return func() {
		f.Truncate(0)
		funlock(f)
		f.Close()
	}, nil
}

// checkStateFile opens the file read-only and checks it: the file must hold
// every page its meta page counts (a truncated file otherwise faults, not
// panics, when bbolt reads past its end), and every page must be sound.
// bbolt panics on some damage: that becomes ErrStateDamaged too.
func checkStateFile(path string, size int64) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, fmt.Errorf("%v", r))
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: boltWait})
	if errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("%w: %s is open in another process", ErrStateLocked, path)
	}
	if err != nil {
		return damaged(path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if need := tx.Size(); size < need {
			return damaged(path, fmt.Errorf("truncated: %d bytes, its pages need %d", size, need))
		}
		var first error
		for cerr := range tx.Check() { // drained: the checker stops when it is done
			if first == nil {
				first = cerr
			}
		}
		if first != nil {
			return damaged(path, first)
		}
		return nil
	})
}

// openBolt opens the file for writing; a panic in bbolt is an error.
func openBolt(path string, opts *bolt.Options) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, damaged(path, fmt.Errorf("%v", r))
		}
	}()
	db, err = bolt.Open(path, 0o600, opts)
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is open in another process", ErrStateLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return db, nil
}

// compactIfMostlyFree rewrites the file with its live data only when more
// than compactAbove bytes, and more than half the file, are free pages.
// bbolt reuses free pages but never gives them back to the file system, so a
// deleted 150 MB package would otherwise stay in the file for good. The copy
// is written beside the file and renamed over it: a kill -9 midway leaves
// the old file whole.
func compactIfMostlyFree(db *bolt.DB, path string, log *slog.Logger) (*bolt.DB, error) {
	stats := db.Stats()
	free := int64(stats.FreePageN+stats.PendingPageN) * int64(db.Info().PageSize)
	st, err := os.Stat(path)
	if err != nil || free < compactAbove || free*2 < st.Size() {
		return db, nil
	}
	tmp := path + ".compact"
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, nil)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("compact state %s: %w", path, err)
	}
	if err := bolt.Compact(dst, db, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		db.Close()
		return nil, fmt.Errorf("compact state %s: %w", path, err)
	}
	if err := errors.Join(dst.Close(), db.Close()); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("compact state %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("compact state %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // the rename itself survives a power cut
		d.Close()
	}
	after, _ := os.Stat(path)
	var newSize int64
	if after != nil {
		newSize = after.Size()
	}
	log.Info("state file compacted", "path", path, "before", st.Size(), "after", newSize)
	return openBolt(path, &bolt.Options{Timeout: boltWait})
}

func damaged(path string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "panic: ")
	return fmt.Errorf("%w: %s: %s; restore it from a backup, or remove it to start over (devices provision again)", ErrStateDamaged, path, msg)
}

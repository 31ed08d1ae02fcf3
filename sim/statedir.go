package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The files of a state directory.
const (
	NVSFile    = "nvs.db"
	FlashFile  = "flash.db"
	ServerFile = "server.db"
	lockFile   = "lock"
)

// lockWait bounds the wait for another process's bbolt lock.
const lockWait = 2 * time.Second

// ErrStateLocked is returned when another process uses the state directory.
var ErrStateLocked = errors.New("state directory in use")

// ErrStateDamaged is returned for a state file that cannot be trusted.
var ErrStateDamaged = errors.New("state file damaged")

// LockStateDir takes the directory for this process (creating it) until
// unlock. A second process gets ErrStateLocked with the first one's pid and
// command line: two fleets on one NVS file would corrupt each other's story.
func LockStateDir(dir string) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if err := flock(f); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		who := strings.TrimSpace(string(holder))
		if who == "" {
			who = "another process"
		}
		return nil, fmt.Errorf("%w: %s is used by %s; stop it or use another --state-dir", ErrStateLocked, dir, who)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "pid %d (%s)\n", os.Getpid(), strings.Join(os.Args, " "))
	return func() error {
		f.Truncate(0)
		funlock(f)
		return f.Close()
	}, nil
}

// ResetState removes the state files, knowingly: every device starts over
// (and provisions again; a real ThingsBoard then refuses the names it knows).
func ResetState(dir string) error {
	var errs []error
	for _, name := range []string{NVSFile, FlashFile, ServerFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CheckState verifies the state files before a run: each one that exists
// must be a sound bbolt file (a truncated or corrupt file is an error that
// says what to do, never a panic), and an NVS file lost next to a flash file
// that knows devices is refused rather than silently taken as new (every
// token would be gone and, on a real server, every device stranded).
func CheckState(dir string) error {
	sizes := map[string]int64{}
	for _, name := range []string{NVSFile, FlashFile, ServerFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			sizes[name] = -1
			continue
		}
		if err != nil {
			return err
		}
		sizes[name] = st.Size()
		if st.Size() == 0 {
			continue
		}
		if err := CheckBolt(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	flashDevices := 0
	if sizes[FlashFile] > 0 {
		recs, err := ReadFlashState(filepath.Join(dir, FlashFile))
		if err != nil {
			return damaged(filepath.Join(dir, FlashFile), err)
		}
		flashDevices = len(recs)
	}
	if sizes[NVSFile] <= 0 && flashDevices > 0 {
		what := "missing"
		if sizes[NVSFile] == 0 {
			what = "empty"
		}
		return fmt.Errorf("%w: %s is %s but %s knows %d devices: their NVS (tokens) was lost; restore %s from a backup, or pass --reset-state to start the fleet over (devices provision again)",
			ErrStateDamaged, filepath.Join(dir, NVSFile), what, FlashFile, flashDevices, NVSFile)
	}
	if sizes[ServerFile] == 0 && sizes[NVSFile] > 0 {
		return fmt.Errorf("%w: %s is empty but %s holds device tokens the embedded server would no longer know; restore it, or pass --reset-state",
			ErrStateDamaged, filepath.Join(dir, ServerFile), NVSFile)
	}
	return nil
}

// CheckBolt opens a bbolt file read-only and checks every page. bbolt
// panics on some damaged files, and a truncated one can make it read past
// the mapping (a fault, which only SetPanicOnFault makes recoverable): the
// file's size is compared with what its pages need before anything reads
// them, and what panics anyway becomes an error too.
func CheckBolt(path string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, fmt.Errorf("%v", r))
		}
	}()
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockWait})
	if errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("%w: %s is open in another process", ErrStateLocked, path)
	}
	if err != nil {
		return damaged(path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if need := tx.Size(); st.Size() < need {
			return damaged(path, fmt.Errorf("truncated: %d bytes, its pages need %d", st.Size(), need))
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

func damaged(path string, err error) error {
	err = errors.New(strings.TrimPrefix(err.Error(), "panic: "))
	return fmt.Errorf("%w: %s: %v; restore it from a backup, or pass --reset-state to start over (devices provision again)", ErrStateDamaged, path, err)
}

package tbemu

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// writeState makes a state file with devices and a 1 MB package.
func writeState(t *testing.T, path string) {
	t.Helper()
	s, err := New(Options{StatePath: path})
	require.NoError(t, err)
	for i := range 50 {
		_, err := s.CreateDevice(DeviceSpec{Name: fmt.Sprintf("d%03d", i)})
		require.NoError(t, err)
	}
	_, err = s.AddFirmware(PackageSpec{Title: "T", Version: "1"}, firmwareBytes(1<<20, 1), tbapi.SHA256)
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// highWater is the size a state file's pages need.
func highWater(t *testing.T, path string) int64 {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	var n int64
	db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// A truncated or corrupt state file is ErrStateDamaged naming the file and
// what to do; never a panic or a fault (either would kill this test binary).
func TestStateFileDamaged(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	writeState(t, good)
	orig, err := os.ReadFile(good)
	require.NoError(t, err)
	hw := highWater(t, good)
	pageSize := int64(os.Getpagesize())

	damage := map[string]func([]byte) []byte{
		"metas only":     func(b []byte) []byte { return b[:2*pageSize] },
		"half":           func(b []byte) []byte { return b[:hw/2] },
		"one page short": func(b []byte) []byte { return b[:hw-pageSize] },
		"in the package": func(b []byte) []byte { return b[:hw-200<<10] },
	}
	scribble := func(seed uint64, lo, hi int64) func([]byte) []byte {
		return func(b []byte) []byte {
			r := rand.New(rand.NewPCG(seed, 2))
			b = append([]byte(nil), b...)
			at := lo + r.Int64N(hi-lo)
			for j := at; j < at+pageSize && j < int64(len(b)); j++ {
				b[j] = byte(r.Uint32())
			}
			return b
		}
	}
	for i := range 8 { // random bytes over a page: in the entities' pages, or anywhere
		damage[fmt.Sprintf("scribbled early %d", i)] = scribble(uint64(i), 2*pageSize, 24*pageSize)
		damage[fmt.Sprintf("scribbled %d", i)] = scribble(uint64(i), 2*pageSize, hw-pageSize)
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "server.db")
			require.NoError(t, os.WriteFile(path, f(orig), 0o600))
			s, err := New(Options{StatePath: path})
			if err == nil {
				// Scribbles over free or unused bytes may be harmless: then
				// the file must be whole.
				t.Log("opened")
				require.Len(t, s.Devices(), 50, "a damaged file opened with missing devices")
				s.Close()
				return
			}
			t.Log(err)
			require.ErrorIs(t, err, ErrStateDamaged)
			require.Regexp(t, "^state file damaged: "+regexp.QuoteMeta(path)+": .*; restore it from a backup, or remove it to start over", err.Error())
		})
	}
}

// One process per state file: the second is told which process has it.
func TestStateFileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.db")
	s, err := New(Options{StatePath: path})
	require.NoError(t, err)
	_, err = New(Options{StatePath: path})
	require.ErrorIs(t, err, ErrStateLocked)
	require.Regexp(t, fmt.Sprintf(`^state file in use: %s is used by pid %d \(.*\); stop it`, regexp.QuoteMeta(path), os.Getpid()), err.Error())
	require.NoError(t, s.Close())
	s, err = New(Options{StatePath: path})
	require.NoError(t, err, "the lock goes with the first server")
	require.NoError(t, s.Close())
	require.False(t, errors.Is(err, ErrStateLocked))
}

package tbemu

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/emutest"
)

// A rollout survives a kill -9 of the server: the devices the queue had not
// released are released again after the restart, in the order they were
// queued, one every interval/size. (Before: they stayed QUEUED for good.)
func TestRolloutSurvivesKill(t *testing.T) {
	if path := os.Getenv("TBEMU_ROLLOUT_CHILD"); path != "" {
		rolloutChild(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "server.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestRolloutSurvivesKill$")
	cmd.Env = append(os.Environ(), "TBEMU_ROLLOUT_CHILD="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(out)
	ready := false
	for lines.Scan() {
		if lines.Text() == "first pack released" {
			ready = true
			break
		}
	}
	require.True(t, ready, "the child did not start the rollout")
	// kill -9 while six of the seven devices wait in the queue.
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()

	clock := emutest.NewClock(time.Now())
	s, err := New(Options{StatePath: path, Clock: clock, OTAPackSize: 2, OTAPackInterval: time.Minute})
	require.NoError(t, err)
	defer s.Close()
	state := func() string {
		var b strings.Builder
		for i := range 7 {
			d, ok := s.DeviceByName(fmt.Sprintf("r%d", i))
			require.True(t, ok)
			v, _ := s.Latest(d.ID)[tbapi.KeyFwState].Value.Text()
			fmt.Fprintf(&b, "r%d=%s ", i, v)
		}
		return strings.TrimSpace(b.String())
	}
	// The restored queue releases its first device at once, then one every
	// 30 s (2 a minute), in the order of the rollout (names), not in map order.
	clock.Run()
	require.Equal(t, "r0=INITIATED r1=INITIATED r2=QUEUED r3=QUEUED r4=QUEUED r5=QUEUED r6=QUEUED", state())
	clock.Advance(30 * time.Second)
	require.Equal(t, "r0=INITIATED r1=INITIATED r2=INITIATED r3=QUEUED r4=QUEUED r5=QUEUED r6=QUEUED", state())
	clock.Advance(4 * 30 * time.Second)
	require.Equal(t, "r0=INITIATED r1=INITIATED r2=INITIATED r3=INITIATED r4=INITIATED r5=INITIATED r6=INITIATED", state())
	require.Empty(t, s.QueuedOTA())
	d, _ := s.DeviceByName("r6")
	require.Equal(t, "1.1.0", s.Attributes(d.ID, SharedScope)[tbapi.KeyFwVersion].Value.Str, "released devices get the fw_* attributes")

	// Pushing the same package again is a no-op; other bytes are refused.
	pkg, created, err := s.EnsureFirmware(PackageSpec{Title: "CORE_ESP32", Version: "1.1.0"}, firmwareBytes(20000, 3), tbapi.SHA256)
	require.NoError(t, err)
	require.False(t, created)
	prof, _ := s.DefaultProfile()
	require.NoError(t, s.AssignProfileFirmware(prof.ID, pkg.ID))
	require.Empty(t, s.QueuedOTA(), "assigning the same package again queues nobody")
	_, _, err = s.EnsureFirmware(PackageSpec{Title: "CORE_ESP32", Version: "1.1.0"}, firmwareBytes(20000, 4), tbapi.SHA256)
	require.ErrorIs(t, err, ErrConflict)
	require.Regexp(t, `^package CORE_ESP32 1\.1\.0 already exists with other bytes \(20000 bytes, SHA-256 [0-9a-f]{12}; these are 20000 bytes, SHA-256 [0-9a-f]{12}\): give this build a new version$`, err.Error())
}

// rolloutChild queues seven devices, two per hour (one per 30 minutes), and
// waits to be killed once the first is out.
func rolloutChild(path string) {
	s, err := New(Options{StatePath: path, OTAPackSize: 2, OTAPackInterval: time.Hour})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	var ids []string
	for i := range 7 {
		d, err := s.CreateDevice(DeviceSpec{Name: fmt.Sprintf("r%d", i)})
		if err != nil {
			os.Exit(4)
		}
		ids = append(ids, d.ID)
	}
	pkg, err := s.AddFirmware(PackageSpec{Title: "CORE_ESP32", Version: "1.1.0"}, firmwareBytes(20000, 3), tbapi.SHA256)
	if err != nil {
		os.Exit(5)
	}
	prof, _ := s.DefaultProfile()
	if err := s.AssignProfileFirmware(prof.ID, pkg.ID); err != nil {
		os.Exit(6)
	}
	for s.Attributes(ids[0], SharedScope)[tbapi.KeyFwVersion].Value.Str != "1.1.0" {
		time.Sleep(5 * time.Millisecond)
	}
	// A write that flushes at once, after any flush under way: r0's
	// INITIATED is in the file when the parent kills this process.
	s.SetServerAttributes(ids[0], []tbapi.Member{{Key: "k", Value: tbapi.Value{Kind: tbapi.Number, Str: "1"}}})
	fmt.Println("first pack released")
	select {}
}

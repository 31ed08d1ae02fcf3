package sim_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/sim"
	"github.com/tbsim/tbsim/tbemu"
)

func fastFirmware(key, secret string) firmware.Config {
	c := firmware.Defaults()
	c.ProvisionKey, c.ProvisionSecret = key, secret
	c.TelemetryInterval = 200 * time.Millisecond
	c.BackoffMin, c.BackoffMax = 100*time.Millisecond, time.Second
	return c
}

func startEmu(t *testing.T, opts tbemu.Options) *tbemu.Server {
	opts.OTAPackInterval = 10 * time.Millisecond
	s, err := tbemu.New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// runFleet runs a fleet until cond holds (or fails after 30 s), then stops it.
func runFleet(t *testing.T, opts sim.Options, cond func(sim.Snapshot) bool) sim.Snapshot {
	t.Helper()
	f, err := sim.New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	var snap sim.Snapshot
	for {
		snap = f.Snapshot()
		if cond(snap) {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("condition not reached: %+v", snap)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
	return snap
}

func TestFleetAgainstEmulator(t *testing.T) {
	emu := startEmu(t, tbemu.Options{})
	dir := t.TempDir()
	opts := sim.Options{
		Devices: 20, Seed: 7, Ramp: 500, Firmware: fastFirmware("tbsim-provision-key", "tbsim-provision-secret"),
		WiFi: device.WiFiConfig{ConnectMin: 10 * time.Millisecond, ConnectMax: 50 * time.Millisecond},
		Dial: emu.Dial, StateDir: dir, BootTime: time.Millisecond,
	}
	snap := runFleet(t, opts, func(s sim.Snapshot) bool { return s.Online == 20 && s.Trends["publish"].Count > 40 })
	require.Equal(t, 20, snap.Provisioned)
	require.Equal(t, int64(20), snap.Outcomes.Get("provisioned"))
	require.Equal(t, uint64(20), snap.Trends["provision"].Count)
	require.Equal(t, int64(20), emu.Stats().Provisioned)
	require.Len(t, emu.Devices(), 20)

	// Second run on the same state: stored tokens, nobody provisions.
	snap = runFleet(t, opts, func(s sim.Snapshot) bool { return s.Online == 20 })
	require.Equal(t, int64(0), snap.Outcomes.Get("provisioned"))
	require.Equal(t, int64(20), emu.Stats().Provisioned)

	// An update to the whole profile: everyone UPDATED; the end-to-end trend filled.
	img, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: "CORE_ESP32", Version: "1.1.0", Size: 100_000})
	require.NoError(t, err)
	pkg, err := emu.AddFirmware(tbemu.PackageSpec{Title: "CORE_ESP32", Version: "1.1.0"}, img, tbapi.SHA256)
	require.NoError(t, err)
	prof, _ := emu.DefaultProfile()
	require.NoError(t, emu.AssignProfileFirmware(prof.ID, pkg.ID))
	snap = runFleet(t, opts, func(s sim.Snapshot) bool { return s.Versions["1.1.0"] == 20 && s.OTAStates["UPDATED"] == 20 })
	require.Equal(t, uint64(20), snap.Trends["ota"].Count)
	require.Greater(t, snap.Trends["chunk"].Count, uint64(20*20))
	require.Equal(t, map[string]int{"UPDATED": 20}, emu.OTAProgress()[pkg.ID])

	// The flash state was saved: the next run boots 1.1.0 at once.
	snap = runFleet(t, opts, func(s sim.Snapshot) bool { return s.Online == 20 })
	require.Equal(t, 20, snap.Versions["1.1.0"])
	require.Equal(t, int64(0), snap.Outcomes.Get("ota updated"))
}

func mustDevice(t *testing.T, emu *tbemu.Server, name string) tbemu.Device {
	d, ok := emu.DeviceByName(name)
	require.True(t, ok, name)
	return d
}

func TestShards(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 3; i++ {
		s, err := sim.ParseShard(string(rune('0'+i)) + "/3")
		require.NoError(t, err)
		lo, hi := s.Range(100)
		for g := lo; g < hi; g++ {
			require.False(t, seen[g])
			seen[g] = true
		}
	}
	require.Len(t, seen, 100)
	for _, bad := range []string{"3/3", "-1/2", "1", "a/b", "0/0"} {
		_, err := sim.ParseShard(bad)
		require.Error(t, err, bad)
	}
}

func TestFaults(t *testing.T) {
	emu := startEmu(t, tbemu.Options{})
	opts := sim.Options{
		Devices: 6, Seed: 1, Ramp: 1000, Firmware: fastFirmware("tbsim-provision-key", "tbsim-provision-secret"),
		WiFi: device.WiFiConfig{ConnectMin: 10 * time.Millisecond, ConnectMax: 20 * time.Millisecond},
		Dial: emu.Dial, BootTime: time.Millisecond,
	}
	f, err := sim.New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.Run(ctx)
	require.Eventually(t, func() bool { return f.Snapshot().Online == 6 }, 20*time.Second, 20*time.Millisecond)
	pick := f.Pick(2, 99)
	require.Equal(t, pick, f.Pick(2, 99), "deterministic")
	f.EraseTokens(pick)
	f.PowerCycle(pick)
	require.Eventually(t, func() bool {
		s := f.Snapshot()
		return s.Online == 4 && s.Boots == 8 && emu.Stats().ProvisionFailed >= 2
	}, 20*time.Second, 20*time.Millisecond, "power-cycled devices provision again, and fail: ThingsBoard refuses an existing name")
	for _, i := range pick {
		require.NoError(t, emu.DeleteDevice(mustDevice(t, emu, f.Boards()[i].Identity().Name()).ID))
	}
	require.Eventually(t, func() bool { return f.Snapshot().Online == 6 }, 20*time.Second, 20*time.Millisecond,
		"once the server forgets them, they provision and come back")
	f.DropWiFi(f.Pick(6, 1), 300*time.Millisecond)
	require.Eventually(t, func() bool { return f.Snapshot().Online < 6 }, 5*time.Second, 10*time.Millisecond)
}

// Building a huge fleet stops when its context ends (Ctrl-C), instead of
// building every board first.
func TestNewContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := sim.NewContext(ctx, sim.Options{Devices: 10_000_000, Firmware: firmware.Defaults(), Dial: func(context.Context) (net.Conn, error) { return nil, errors.New("unused") }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("NewContext = %v; want context.Canceled", err)
	}
}

// A second process on a state dir is refused with the first one's pid.
func TestLockStateDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := sim.LockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks are per open file description: a second open in this
	// process conflicts like another process would.
	_, err = sim.LockStateDir(dir)
	if !errors.Is(err, sim.ErrStateLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second lock = %v; want sim.ErrStateLocked naming pid %d", err, os.Getpid())
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	unlock, err = sim.LockStateDir(dir)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock()
}

// A lost provisioning answer (the server created the device, the token never
// reached NVS), through the real parts: with the seed's behaviour the device
// is stranded and reported so; with the write-ahead token it comes back.
func TestLostAnswerStrandsOrRecovers(t *testing.T) {
	for _, writeAhead := range []bool{false, true} {
		t.Run(map[bool]string{false: "seed", true: "write-ahead"}[writeAhead], func(t *testing.T) {
			emu := startEmu(t, tbemu.Options{})
			dir := t.TempDir()
			fw := fastFirmware("tbsim-provision-key", "tbsim-provision-secret")
			fw.WriteAheadToken = writeAhead
			opts := sim.Options{
				Devices: 3, Seed: 9, Ramp: 500, Firmware: fw,
				WiFi: device.WiFiConfig{ConnectMin: 10 * time.Millisecond, ConnectMax: 20 * time.Millisecond},
				Dial: emu.Dial, StateDir: dir, BootTime: time.Millisecond,
			}
			runFleet(t, opts, func(s sim.Snapshot) bool { return s.Online == 3 })

			// The state a power cut leaves between the server's answer and the
			// NVS write: the token is gone; with write-ahead, the chosen token
			// (the one the server holds) is still in NVS.
			name := device.NewIdentity(9, 0).Name()
			d, ok := emu.DeviceByName(name)
			require.True(t, ok)
			nvs, err := device.OpenBoltNVS(filepath.Join(dir, sim.NVSFile))
			require.NoError(t, err)
			dev := nvs.Device(name)
			require.NoError(t, dev.Erase("tb", "token"))
			if writeAhead {
				require.NoError(t, dev.SetString("tb", "token_ahead", d.Credentials.Token))
			}
			require.NoError(t, nvs.Close())

			if !writeAhead {
				snap := runFleet(t, opts, func(s sim.Snapshot) bool { return s.Stranded == 1 && s.Online == 2 })
				require.Equal(t, int64(1), snap.Errors[len(snap.Errors)-1].Count)
				var found bool
				for _, e := range snap.Errors {
					found = found || e.Cause == sim.CauseStranded && e.Example == name
				}
				require.True(t, found, "stranded device %s not reported: %+v", name, snap.Errors)
				return
			}
			snap := runFleet(t, opts, func(s sim.Snapshot) bool { return s.Online == 3 })
			require.Equal(t, 0, snap.Stranded)
			require.Len(t, emu.Devices(), 3, "no new device on the server")
		})
	}
}

// A disk that fills during a run (nvs.db capped at its size, through the
// real bbolt file): the token writes that fail are counted as nvs_write
// errors with an example device, and no device runs on with a token its NVS
// does not hold (it retries the write instead).
func TestNVSDiskFull(t *testing.T) {
	emu := startEmu(t, tbemu.Options{})
	dir := t.TempDir()
	opts := sim.Options{
		Devices: 2, Seed: 4, Ramp: 500, Firmware: fastFirmware("tbsim-provision-key", "tbsim-provision-secret"),
		WiFi: device.WiFiConfig{ConnectMin: 10 * time.Millisecond, ConnectMax: 20 * time.Millisecond},
		Dial: emu.Dial, StateDir: dir, BootTime: time.Millisecond,
	}
	runFleet(t, opts, func(s sim.Snapshot) bool { return s.Online == 2 })
	st, err := os.Stat(filepath.Join(dir, sim.NVSFile))
	require.NoError(t, err)

	opts.Devices, opts.NVSMaxBytes = 200, int(st.Size())
	nvsErrors := func(s sim.Snapshot) (n int64, example string) {
		for _, e := range s.Errors {
			if e.Cause == "nvs_write" {
				return e.Count, e.Example
			}
		}
		return 0, ""
	}
	snap := runFleet(t, opts, func(s sim.Snapshot) bool {
		n, _ := nvsErrors(s)
		return n > 0 && len(emu.Devices()) == 200
	})
	n, example := nvsErrors(snap)
	require.Positive(t, n)
	require.NotEmpty(t, example)
	require.Less(t, snap.Online, 200, "every device online although the disk is full")

	// What the devices hold: a device online had its token written.
	nvs, err := device.OpenBoltNVSReadOnly(filepath.Join(dir, sim.NVSFile))
	require.NoError(t, err)
	defer nvs.Close()
	saved := 0
	for i := range 200 {
		if tok, _ := nvs.Device(device.NewIdentity(4, uint32(i)).Name()).GetString("tb", "token"); tok != "" {
			saved++
		}
	}
	require.Less(t, saved, 200, "all tokens saved: the cap did not bite")
	fi, err := os.Stat(filepath.Join(dir, sim.NVSFile))
	require.NoError(t, err)
	require.LessOrEqual(t, fi.Size(), st.Size(), "the file grew past its cap")
}

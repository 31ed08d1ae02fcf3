package scenario

import (
	"context"
	"time"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/sim"
	"github.com/tbsim/tbsim/tbemu"
)

// world is where a scenario runs: real time (a goroutine per device, paho,
// mochi, the wall clock) or virtual time (one goroutine, one clock, the
// emulator core called directly). The runner's steps are written once
// against it.
type world interface {
	// elapsed is the time since the fleet started (virtual in virtual mode).
	elapsed() time.Duration
	statuses() []device.BoardStatus
	snapshot() sim.Snapshot
	console(i int) []device.Line
	pick(n int, seed uint64) []int
	powerCycle(pos []int)
	eraseTokens(pos []int)
	dropWiFi(pos []int, d time.Duration)
	// setLink impairs the devices' link; for > 0 restores it after that long.
	setLink(i sim.Impairment, restoreAfter time.Duration)
	// sleep lets time pass.
	sleep(ctx context.Context, d time.Duration) error
	// waitFor lets time pass until cond holds (true) or timeout (false).
	waitFor(ctx context.Context, timeout time.Duration, cond func() bool) (bool, error)
	// restartBroker takes the server away for down, keeping its state.
	restartBroker(ctx context.Context, down time.Duration) error
	// emu is the embedded server's management API (nil with an external server).
	emu() emulator
	// serverStats is the telemetry the server stored (across restarts) and
	// the publishes its rate limit refused; ok is false without one.
	serverStats() (telemetry, rateLimited int64, ok bool)
	// rpc sends a two-way server-side RPC and waits for its answer.
	rpc(ctx context.Context, deviceID, method string, params tbapi.Value, timeout time.Duration) error
	// mode names the world for reports ("realtime" or "virtual").
	mode() string
	close() error
}

// emulator is the part of the embedded server's Go API the steps use; both
// tbemu.Server (real time) and its core (virtual time) provide it.
type emulator interface {
	DefaultProfile() (tbemu.Profile, bool)
	UpdateProfile(p tbemu.Profile) (tbemu.Profile, error)
	AddFirmware(spec tbemu.PackageSpec, data []byte, alg tbapi.Algorithm) (tbemu.Package, error)
	AssignProfileFirmware(profileID, pkgID string) error
	AssignDeviceFirmware(deviceID, pkgID string) error
	ReplacePackageData(id string, data []byte) error
	Package(id string) (tbemu.Package, bool)
	DeviceByName(name string) (tbemu.Device, bool)
	DeleteDevice(id string) error
	SetCredentials(id string, c tbemu.Credentials) (tbemu.Device, error)
	SetSharedAttributes(id string, values []tbapi.Member) error
}

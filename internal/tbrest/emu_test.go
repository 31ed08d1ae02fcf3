package tbrest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/tbemu"
	"github.com/tbsim/tbsim/tbemu/emutest"
)

// startEmu runs tbemu's REST API on loopback, on a manual clock.
func startEmu(t *testing.T) (*tbemu.Server, *emutest.Clock) {
	t.Helper()
	clock := emutest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := tbemu.New(tbemu.Options{HTTPAddr: "127.0.0.1:0", Clock: clock})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, clock
}

// The emulator answers as the recorded ThingsBoard does, so the client goes
// through a token's life against it too: past the access token's 9000 s it
// refreshes, past the refresh token's week it logs in again, and a key with
// no value is absent. (Before: the emulator answered an expired token with
// errorCode 10, the client gave up, and missing keys were left out of the
// answer where ThingsBoard writes them with a null value.)
func TestEmulatorTokenLife(t *testing.T) {
	s, clock := startEmu(t)
	d, err := s.CreateDevice(tbemu.DeviceSpec{Name: "life"})
	require.NoError(t, err)
	ctx := context.Background()
	c, err := Login(ctx, "http://"+s.HTTPAddr(), "tenant@thingsboard.org", "tenant")
	require.NoError(t, err)
	first := c.token

	clock.Advance(9001 * time.Second)
	devs, err := c.Devices(ctx)
	require.NoError(t, err)
	require.Len(t, devs, 1)
	require.NotEqual(t, first, c.token, "refreshed")

	clock.Advance(8 * 24 * time.Hour)
	v, err := c.Latest(ctx, d.ID, "fw_state", "current_fw_version")
	require.NoError(t, err, "logged in again")
	require.Empty(t, v, "keys with no value are absent")
}

// Requests that find the token expired together renew it together: every
// one succeeds (run with -race).
func TestEmulatorConcurrentRenewal(t *testing.T) {
	s, clock := startEmu(t)
	ctx := context.Background()
	c, err := Login(ctx, "http://"+s.HTTPAddr(), "tenant@thingsboard.org", "tenant")
	require.NoError(t, err)
	clock.Advance(9001 * time.Second)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := c.Devices(ctx)
			errs <- err
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
}

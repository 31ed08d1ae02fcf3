// Package tbdiff compares what an MQTT client sees from two servers that
// claim ThingsBoard's device API: tbsim's emulator and a real ThingsBoard.
// Each sequence (provisioning, auth, telemetry, attributes, RPC, OTA, ...)
// runs against both with a raw MQTT client that records every packet the
// server sends (topic, payload bytes, QoS, reason codes, the close) and
// the facts the REST API then shows; the two transcripts, normalised only
// where they must differ (generated tokens and ids, timestamps, the names
// each run chooses), must be equal.
//
// The test (TestDifferential) skips without a ThingsBoard address; see
// diff_test.go for the environment it reads. TestEmulatorMatchesRecording
// compares the emulator with a transcript recorded from ThingsBoard, so the
// comparison keeps guarding the emulator where no ThingsBoard runs (CI).
package tbdiff

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"time"

	"github.com/tbsim/tbsim/internal/tbrest"
)

// Params is how a server is configured, where the sequences depend on it.
// ThingsBoard's defaults are in TBDefaults; the emulator under comparison
// must be configured alike (or proportionally, for durations: timings are
// compared as shares of the server's own setting).
type Params struct {
	ProvisionCloseAfter time.Duration // a provisioning session closes this long after its answer (TB: 60 s, hard-coded)
	ClientRPCTimeout    time.Duration // CLIENT_SIDE_RPC_TIMEOUT (60 s)
	OTAPackSize         int           // TB_QUEUE_CORE_OTA_PACK_SIZE (100)
	OTAPackInterval     time.Duration // TB_QUEUE_CORE_OTA_PACK_INTERVAL_MS (60 s)
	Inactivity          time.Duration // TB_TRANSPORT_SESSIONS_INACTIVITY_TIMEOUT; 0 skips the idle sequence (600 s is too long)
	RateLimit           int           // messages per second per device the server enforces; 0 skips the rate-limit sequence
	Quiet               time.Duration // how long to wait for packets that should not come
	Slow                bool          // run the sequences that wait for the timings above
}

// TBDefaults are ThingsBoard 4.3's defaults.
var TBDefaults = Params{
	ProvisionCloseAfter: 60 * time.Second,
	ClientRPCTimeout:    60 * time.Second,
	OTAPackSize:         100,
	OTAPackInterval:     60 * time.Second,
	Quiet:               1500 * time.Millisecond,
	Slow:                true,
}

// Target is one server under comparison.
type Target struct {
	Name   string
	MQTT   string // host:port
	REST   *tbrest.Client
	Params Params

	Key, Secret string // the diff profile's provisioning credentials
	ProfileID   string
	ProfileName string
	run         string // this run's prefix for names
}

// The profile the sequences provision into; created or updated on each
// server with these credentials.
const (
	DiffProfile = "tbsim-diff"
	DiffKey     = "tbsim-diff-key"
	DiffSecret  = "tbsim-diff-secret"
)

// Prepare logs in and sets up the diff profile on one server.
func Prepare(ctx context.Context, name, mqttAddr, restURL, user, password string, p Params) (*Target, error) {
	c, err := tbrest.Login(ctx, restURL, user, password)
	if err != nil {
		return nil, err
	}
	prof, err := c.ProvisioningProfile(ctx, DiffProfile, DiffKey, DiffSecret)
	if err != nil {
		return nil, fmt.Errorf("%s: provisioning profile: %w", name, err)
	}
	return &Target{Name: name, MQTT: mqttAddr, REST: c, Params: p, Key: DiffKey, Secret: DiffSecret,
		ProfileID: prof.ID(), ProfileName: DiffProfile, run: randomString(6)}, nil
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alnum))))
		b[i] = alnum[k.Int64()]
	}
	return string(b)
}

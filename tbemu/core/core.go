package core

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Core. The zero value is a usable in-memory core on
// the wall clock.
type Options struct {
	StatePath string // bbolt file; "" keeps everything in memory

	// The default device profile's provisioning key and secret
	// (defaults "tbsim-provision-key" / "tbsim-provision-secret").
	ProvisionKey    string
	ProvisionSecret string

	// ProvisionCloseAfter closes a provisioning session this long after its
	// response (ThingsBoard: 60 s).
	ProvisionCloseAfter time.Duration
	// OTA queue: at most OTAPackSize devices per OTAPackInterval (ThingsBoard:
	// 100 per 60 s; default here 100 per second).
	OTAPackSize     int
	OTAPackInterval time.Duration
	// ClientRPCTimeout answers client-side RPCs with {"error":"timeout"}
	// (ThingsBoard: 60 s).
	ClientRPCTimeout time.Duration
	// InactivityTimeout closes a session with no packet for that long
	// (ThingsBoard: 600 s); keepalive itself is not enforced, as in ThingsBoard.
	InactivityTimeout time.Duration
	// FlushInterval is how long a changed latest value or client attribute
	// waits before it is written to the state file (default 1 s).
	FlushInterval time.Duration
	// TelemetryHistory keeps that many values per key in memory for checks (0: none).
	TelemetryHistory int
	// MaxPackageSize bounds a package's data (default DefaultMaxPackageSize,
	// the largest OTA slot; negative: no limit). Larger uploads get ErrTooLarge.
	MaxPackageSize int64

	Clock  Clock        // nil: RealClock
	Rand   Rand         // nil: crypto/rand
	Logger *slog.Logger // nil: discard
}

func (o *Options) ensureDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.ProvisionKey, "tbsim-provision-key")
	def(&o.ProvisionSecret, "tbsim-provision-secret")
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	dur(&o.ProvisionCloseAfter, 60*time.Second)
	dur(&o.OTAPackInterval, time.Second)
	dur(&o.ClientRPCTimeout, 60*time.Second)
	dur(&o.InactivityTimeout, 600*time.Second)
	dur(&o.FlushInterval, time.Second)
	if o.OTAPackSize <= 0 {
		o.OTAPackSize = 100
	}
	if o.MaxPackageSize == 0 {
		o.MaxPackageSize = DefaultMaxPackageSize
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Rand == nil {
		o.Rand = cryptoRand{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// DefaultMaxPackageSize is the largest OTA app slot of the ESP32-S3 boards
// tbsim simulates (0x330000 bytes): an image larger than that cannot be
// written by any device, so the server refuses to store it.
const DefaultMaxPackageSize = 0x330000

// Core is the device API. Create it with New; it is safe for concurrent use.
type Core struct {
	buckets sync.Map // device id -> *rateBucket
	opts    Options
	log     *slog.Logger
	clock   Clock
	rndMu   sync.Mutex
	rnd     *rand.Rand
	store   *store

	// life is held for reading by every timer function while it runs and
	// for writing by Close, so none runs once Close has begun.
	life   sync.RWMutex
	closed atomic.Bool

	sessMu   sync.RWMutex
	sessions map[*Session]struct{}
	byDevice map[string][]*Session // live sessions per device, in connect order
	seq      atomic.Uint64

	ota      otaQueue
	rpc      rpcTable
	stats    counters
	limiters sync.Map // device id -> *deviceLimits, made at its first limited message

	flushMu   sync.Mutex
	flushStop func() bool // the scheduled flush
}

// counters are emulator-wide event counts.
type counters struct {
	connects, refused, provisioned, provisionFailed, telemetryMsgs, chunkBytes atomic.Int64
	rateLimited, parseErrors                                                   atomic.Int64
}

// New opens the state (if Options.StatePath is set) and creates the default
// device profile when there is none.
func New(opts Options) (*Core, error) {
	opts.ensureDefaults()
	c := &Core{
		opts: opts, log: opts.Logger, clock: opts.Clock, rnd: rand.New(opts.Rand),
		sessions: map[*Session]struct{}{}, byDevice: map[string][]*Session{},
		rpc: rpcTable{next: map[string]int{}, wait: map[string]*pendingRPC{}},
	}
	st, err := newStore(opts.StatePath, opts.TelemetryHistory, c.scheduleFlush, opts.Logger)
	if err != nil {
		return nil, err
	}
	c.store = st
	if err := c.ensureDefaultProfile(); err != nil {
		st.close()
		return nil, err
	}
	c.restoreOTAQueue()
	return c, nil
}

// Now is the core's clock.
func (c *Core) Now() time.Time { return c.clock.Now() }

func (c *Core) nowMs() int64 { return c.clock.Now().UnixMilli() }

// at runs f at t on the clock unless the core has closed by then.
func (c *Core) at(t time.Time, f func()) func() bool {
	return c.clock.At(t, func() {
		c.life.RLock()
		defer c.life.RUnlock()
		if !c.closed.Load() {
			f()
		}
	})
}

// scheduleFlush writes the batched state FlushInterval from now; the store
// asks for it when its dirty set stops being empty.
func (c *Core) scheduleFlush() {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.flushStop = c.at(c.clock.Now().Add(c.opts.FlushInterval), func() {
		if err := c.store.flushScheduled(); err != nil {
			c.log.Error("flush state", "error", err)
		}
	})
}

// Close closes every session (reason "server closing"), cancels the
// scheduled work, writes the batched state and closes the state file.
func (c *Core) Close() error {
	c.life.Lock()
	already := c.closed.Swap(true)
	c.life.Unlock()
	if already {
		return nil
	}
	c.ota.mu.Lock()
	if c.ota.stop != nil {
		c.ota.stop()
	}
	c.ota.mu.Unlock()
	c.flushMu.Lock()
	if c.flushStop != nil {
		c.flushStop() // store.close flushes
	}
	c.flushMu.Unlock()
	for _, s := range c.allSessions() {
		c.closeSession(s, ReasonServerClosing)
	}
	c.rpc.cancelAll()
	return c.store.close()
}

// allSessions returns the live sessions in connect order.
func (c *Core) allSessions() []*Session {
	c.sessMu.RLock()
	out := make([]*Session, 0, len(c.sessions))
	for s := range c.sessions {
		out = append(out, s)
	}
	c.sessMu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// Stats is GET /api/tbsim/stats, for the CLI's live view.
type Stats struct {
	Devices         int                       `json:"devices"`
	Connected       int                       `json:"connected"`
	Connects        int64                     `json:"connects"`
	Refused         int64                     `json:"refused"`
	Provisioned     int64                     `json:"provisioned"`
	ProvisionFailed int64                     `json:"provisionFailed"`
	TelemetryMsgs   int64                     `json:"telemetryMessages"`
	ChunkBytes      int64                     `json:"chunkBytes"`
	RateLimited     int64                     `json:"rateLimited"`
	ParseErrors     int64                     `json:"parseErrors"`
	OTA             map[string]map[string]int `json:"ota"` // package id -> fw_state -> devices
}

// Stats returns the emulator's counters.
func (c *Core) Stats() Stats {
	c.sessMu.RLock()
	connected := len(c.byDevice)
	c.sessMu.RUnlock()
	c.store.mu.RLock()
	devices := len(c.store.devices)
	c.store.mu.RUnlock()
	return Stats{
		Devices: devices, Connected: connected,
		Connects: c.stats.connects.Load(), Refused: c.stats.refused.Load(),
		Provisioned: c.stats.provisioned.Load(), ProvisionFailed: c.stats.provisionFailed.Load(),
		TelemetryMsgs: c.stats.telemetryMsgs.Load(), ChunkBytes: c.stats.chunkBytes.Load(),
		RateLimited: c.stats.rateLimited.Load(), ParseErrors: c.stats.parseErrors.Load(),
		OTA: c.OTAProgress(),
	}
}

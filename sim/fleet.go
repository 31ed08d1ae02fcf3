package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/firmware"
)

// Shard is the slice i of n of a fleet ("i/n", 0-based). The zero value is
// the whole fleet.
type Shard struct{ Index, Count int }

// ParseShard reads "i/n" with 0 <= i < n.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard %q: want i/n with 0 <= i < n, e.g. 0/4", s)
	}
	return Shard{i, n}, nil
}

// Range returns the global device indices [lo, hi) of this shard of a fleet
// of total devices: contiguous slices, so shards never overlap.
func (s Shard) Range(total int) (lo, hi int) {
	if s.Count <= 1 {
		return 0, total
	}
	return total * s.Index / s.Count, total * (s.Index + 1) / s.Count
}

// Options configure a fleet.
type Options struct {
	Devices  int    // devices in the whole fleet (a shard runs its slice)
	Seed     uint64 // identities, Wi-Fi, jitter
	Shard    Shard
	Ramp     float64 // connections started per second (default 2000)
	Firmware firmware.Config
	WiFi     device.WiFiConfig
	Dial     device.Dialer
	// StateDir holds nvs.db (every device's NVS) and flash.db (otadata and
	// slot images), so the next run boots where this one stopped. "" keeps
	// everything in memory.
	StateDir string
	BootTime time.Duration
	Logger   *slog.Logger
	// OnLine gets every serial line of every device (keep it cheap).
	OnLine func(device string, l device.Line)
	// Factory is the factory image in app0 (default: built for the firmware's
	// title and version).
	Factory []byte
	// MaxInFlight bounds the connection handshakes in flight: 0 adapts the
	// limit to how fast handshakes complete (see Admission), a negative
	// value removes the gate.
	MaxInFlight int
}

// Fleet is a running set of boards.
type Fleet struct {
	opts    Options
	log     *slog.Logger
	store   *device.ImageStore
	nvs     *device.BoltNVS
	mem     map[string]*device.MemNVS
	flash   *flashDB
	boards  []*device.Board
	track   []tracker
	boots   []int // boot counts of earlier runs, per board
	first   int
	metrics *Metrics
	health  *Health
	gate    *Admission
	byName  map[string]int
	started time.Time
	mu      sync.Mutex // guards live and started
	live    []bool
}

// New builds the fleet's boards (nothing runs until Run).
func New(opts Options) (*Fleet, error) { return NewContext(context.Background(), opts) }

// NewContext is New, stopping early (with ctx's error) when ctx ends: a
// fleet of millions takes a while to build.
func NewContext(ctx context.Context, opts Options) (*Fleet, error) {
	if opts.Devices <= 0 {
		return nil, errors.New("fleet: Devices must be positive")
	}
	if opts.Dial == nil {
		return nil, errors.New("fleet: Dial is nil")
	}
	if opts.Ramp <= 0 {
		opts.Ramp = 2000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := opts.Firmware.Validate(); err != nil {
		return nil, err
	}
	opts.WiFi.Seed = opts.Seed
	f := &Fleet{opts: opts, log: opts.Logger, store: device.NewImageStore(), metrics: &Metrics{}, health: &Health{}, byName: map[string]int{}}
	if opts.MaxInFlight >= 0 {
		f.gate = NewAdmission(opts.MaxInFlight, f.health.Lagging)
	}
	if opts.Factory == nil {
		img, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: opts.Firmware.Title, Version: opts.Firmware.Version, Size: 64 << 10})
		if err != nil {
			return nil, err
		}
		opts.Factory = img
	}
	if err := f.openState(); err != nil {
		return nil, err
	}
	factory := f.store.Add(opts.Factory)
	lo, hi := opts.Shard.Range(opts.Devices)
	f.first = lo
	if lo == hi {
		f.closeState()
		return nil, fmt.Errorf("fleet: shard %d/%d of %d devices has no devices", opts.Shard.Index, opts.Shard.Count, opts.Devices)
	}
	for g := lo; g < hi; g++ {
		if g%1024 == 0 && ctx.Err() != nil {
			f.closeState()
			return nil, ctx.Err()
		}
		b, err := f.newBoard(uint32(g), factory)
		if err != nil {
			f.closeState()
			return nil, err
		}
		f.byName[b.Identity().Name()] = len(f.boards)
		f.boards = append(f.boards, b)
	}
	f.track = make([]tracker, len(f.boards))
	f.metrics.devices = int64(len(f.boards))
	f.live = make([]bool, len(f.boards))
	return f, nil
}

func (f *Fleet) openState() error {
	if f.opts.StateDir == "" {
		f.mem = map[string]*device.MemNVS{}
		return nil
	}
	if err := os.MkdirAll(f.opts.StateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	nvs, err := device.OpenBoltNVS(filepath.Join(f.opts.StateDir, "nvs.db"))
	if err != nil {
		return err
	}
	fl, err := openFlashDB(filepath.Join(f.opts.StateDir, "flash.db"))
	if err != nil {
		nvs.Close()
		return err
	}
	f.nvs, f.flash = nvs, fl
	return nil
}

func (f *Fleet) closeState() error {
	var errs []error
	if f.flash != nil {
		errs = append(errs, f.flash.close())
		f.flash = nil
	}
	if f.nvs != nil {
		errs = append(errs, f.nvs.Close())
		f.nvs = nil
	}
	return errors.Join(errs...)
}

// Close releases a fleet that will not Run (its state files).
func (f *Fleet) Close() error { return f.closeState() }

func (f *Fleet) newBoard(index uint32, factory *device.Blob) (*device.Board, error) {
	id := device.NewIdentity(f.opts.Seed, index)
	name := id.Name()
	var nvs firmware.NVS
	if f.nvs != nil {
		nvs = f.nvs.Device(name)
	} else {
		m := device.NewMemNVS()
		f.mem[name] = m
		nvs = m
	}
	var flash *device.Flash
	boots := 0
	if f.flash != nil {
		fl, n, ok, err := f.flash.load(name, f.store)
		if err != nil {
			f.log.Warn("flash state unreadable, factory reset", "device", name, "error", err)
		}
		if ok {
			flash, boots = fl, n
		}
	}
	f.boots = append(f.boots, boots)
	if flash == nil {
		flash = device.NewFlash(f.store, espimage.ESP32S3, factory, f.opts.Firmware.Title, f.opts.Firmware.Version)
	}
	o := device.BoardOptions{
		Identity: id, Firmware: f.opts.Firmware, NVS: nvs, Flash: flash, WiFi: f.opts.WiFi,
		Dial: f.opts.Dial, Logger: f.log, BootTime: f.opts.BootTime, Observer: (*observer)(f),
	}
	if f.gate != nil {
		o.Gate = f.gate
	}
	if f.opts.OnLine != nil {
		o.OnLine = func(l device.Line) { f.opts.OnLine(name, l) }
	}
	return device.NewBoard(o)
}

// Boards returns the fleet's boards, in index order.
func (f *Fleet) Boards() []*device.Board { return f.boards }

// Board returns the board of a device name (its MAC), if this fleet or shard has it.
func (f *Fleet) Board(name string) (*device.Board, bool) {
	i, ok := f.byName[name]
	if !ok {
		return nil, false
	}
	return f.boards[i], true
}

// Health returns the simulator's own health figures.
func (f *Fleet) Health() *Health { return f.health }

// Admission returns the handshake gate (nil when disabled).
func (f *Fleet) Admission() *Admission { return f.gate }

// Metrics returns the live metrics.
func (f *Fleet) Metrics() *Metrics { return f.metrics }

// Run starts the boards at the ramp rate (with jitter), runs them until ctx
// ends, then stops them all and saves the fleet state.
func (f *Fleet) Run(ctx context.Context) error {
	f.mu.Lock()
	f.started = time.Now()
	f.mu.Unlock()
	rng := rand.New(rand.NewPCG(f.opts.Seed, 0x5eed))
	var wg sync.WaitGroup
	step := time.Duration(float64(time.Second) / f.opts.Ramp)
	f.log.Info("fleet starting", "devices", len(f.boards), "ramp", f.opts.Ramp, "seed", f.opts.Seed)
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		f.health.run(ctx)
	}()
ramp:
	for i, b := range f.boards {
		at := f.started.Add(time.Duration(i)*step + time.Duration(rng.Int64N(int64(step)+1)))
		select {
		case <-ctx.Done():
			break ramp
		case <-time.After(time.Until(at)):
		}
		wg.Add(1)
		f.mu.Lock()
		f.live[i] = true
		f.mu.Unlock()
		go func() {
			defer wg.Done()
			b.Run(ctx)
		}()
	}
	<-ctx.Done()
	wg.Wait()
	<-healthDone
	f.log.Info("fleet stopped", "devices", len(f.boards))
	var err error
	if f.flash != nil {
		err = f.flash.saveAll(f.boards, f.boots)
	}
	return errors.Join(err, f.closeState())
}

// Started returns when Run began.
func (f *Fleet) Started() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started
}

// Pick chooses n distinct board positions deterministically from seed.
func (f *Fleet) Pick(n int, seed uint64) []int {
	n = min(max(n, 0), len(f.boards))
	perm := rand.New(rand.NewPCG(seed, 0x9c)).Perm(len(f.boards))
	return perm[:n]
}

// PowerCycle cuts and restores power on the boards at the given positions.
func (f *Fleet) PowerCycle(pos []int) { f.each(pos, (*device.Board).PowerCycle) }

// EraseTokens erases the stored token of the boards (they provision at the next boot).
func (f *Fleet) EraseTokens(pos []int) { f.each(pos, (*device.Board).EraseToken) }

// DropWiFi takes the boards' access point away for d.
func (f *Fleet) DropWiFi(pos []int, d time.Duration) {
	f.each(pos, func(b *device.Board) { b.DropWiFi(d) })
}

// each applies fn to the boards at once and returns when every one is done.
func (f *Fleet) each(pos []int, fn func(*device.Board)) {
	var wg sync.WaitGroup
	for _, i := range pos {
		f.mu.Lock()
		live := i >= 0 && i < len(f.boards) && f.live[i]
		f.mu.Unlock()
		if live {
			wg.Add(1)
			go func(b *device.Board) {
				defer wg.Done()
				fn(b)
			}(f.boards[i])
		}
	}
	wg.Wait()
}

package device

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/firmware"
)

// BoardOptions configure one simulated device.
type BoardOptions struct {
	Identity Identity
	Firmware firmware.Config
	NVS      firmware.NVS // the device's partition (BoltNVS.Device or MemNVS)
	Flash    *Flash       // its flash; NewBoard makes one from Store and Factory when nil
	Store    *ImageStore
	Factory  *Blob // the factory image for a new Flash
	WiFi     WiFiConfig
	Dial     Dialer
	Logger   *slog.Logger // nil: discard
	// ConsoleLines bounds the serial-log ring buffer (default 24: enough for
	// a failure report; --console streams every line through OnLine).
	ConsoleLines int
	// BootTime is the reset-to-app_main delay (default 300 ms, the S3's log).
	BootTime time.Duration
	// OnLine, if set, is called with every serial line (from the board's goroutine).
	OnLine func(Line)
	// Observer, if set, is told what happens, for metrics.
	Observer Observer
	// Gate, if set, admits connection handshakes (see Gate).
	Gate Gate
}

// Observer receives a board's measurements. Transition, Connected, Lost and
// Late are called from the board's goroutine, only for the current
// connection; PublishAck and ChunkRTT from paho's goroutines, concurrently.
type Observer interface {
	// Transition reports a status change, with the time it was seen.
	Transition(b *Board, prev, cur BoardStatus, at time.Time)
	// Connected reports a connection attempt: its duration and outcome
	// ("ok", "refused N", or the network error).
	Connected(d time.Duration, outcome string)
	PublishAck(topic string, d time.Duration)
	ChunkRTT(d time.Duration)
	// Lost reports an established connection that dropped, with its cause.
	Lost(link firmware.LinkError, reason string)
	// Late reports how late a firmware deadline fired: the event loop's lag,
	// which grows when the simulator itself runs short of CPU.
	Late(d time.Duration)
}

// Line is one serial line with the time it was printed.
type Line struct {
	Time time.Time
	Text string
}

// BoardStatus is a snapshot for the fleet and tests.
type BoardStatus struct {
	Name string
	firmware.Status
	BootCount int
	LastReset firmware.ResetReason
	Bricked   bool // no bootable image
}

// Board is one simulated device: firmware, hardware models and the goroutine
// that feeds the firmware its events and wakes it at its deadlines.
type Board struct {
	opts   BoardOptions
	log    *slog.Logger
	m      *firmware.Machine
	radio  *Radio
	sess   *session
	events chan boardEvent
	ctx    context.Context
	done   chan struct{}

	status  atomic.Pointer[BoardStatus]
	boots   int
	reset   firmware.ResetReason
	bricked bool
	restart bool
	wifiGen uint64

	// The firmware's clock is the wall clock minus the time the board spent
	// queued at the Gate: a device waiting for the simulator's turn is not
	// waiting for the server, so its timeouts do not run meanwhile.
	offset   time.Duration
	pausedAt time.Time

	mu      sync.Mutex
	console []Line
	head    int
	full    bool
}

// boardEvent carries the generation of the session (or Wi-Fi attempt) it
// belongs to; 0 is for control events that always apply.
type boardEvent struct {
	gen     uint64
	wifi    bool
	ev      firmware.Event
	control func()
	done    chan struct{} // closed once a control event ran and the status shows it
	resume  bool          // the session got its Gate slot
	report  reportKind    // what to tell the Observer when the event applies
	took    time.Duration // reportConnect: CONNECT to outcome
	outcome string        // reportConnect: "ok", "refused N" or the error
}

type reportKind uint8

const (
	reportNone    reportKind = iota
	reportConnect            // a connection attempt ended
	reportLost               // an established connection dropped
)

// NewBoard wires a device. Call Run to power it on.
func NewBoard(o BoardOptions) (*Board, error) {
	if o.Dial == nil || o.NVS == nil {
		return nil, errors.New("board: Dial and NVS are required")
	}
	if o.Flash == nil {
		if o.Store == nil || o.Factory == nil {
			return nil, errors.New("board: a Flash, or a Store and Factory image, is required")
		}
		o.Flash = NewFlash(o.Store, espimage.ESP32S3, o.Factory, o.Firmware.Title, o.Firmware.Version)
	}
	if o.ConsoleLines <= 0 {
		o.ConsoleLines = 24
	}
	if o.BootTime == 0 {
		o.BootTime = 300 * time.Millisecond
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := &Board{
		opts:    o,
		log:     log.With("device", o.Identity.Name()),
		events:  make(chan boardEvent, 8), // small: 10,000 boards hold one each; a full queue holds paho back
		done:    make(chan struct{}),
		console: make([]Line, o.ConsoleLines),
	}
	rng := rand.New(rand.NewPCG(o.WiFi.Seed, uint64(o.Identity.Index)+1))
	b.radio = NewRadio(o.WiFi, o.Identity, rng)
	b.sess = &session{b: b}
	m, err := firmware.New(o.Firmware, firmware.Ports{
		Clock: boardClock{b}, NVS: o.NVS, Session: b.sess, OTA: boardOTA{o.Flash, b},
		WiFi: boardWiFi{b}, Sensor: b.radio, Rand: rngPort{rng}, Console: b,
	})
	if err != nil {
		return nil, err
	}
	b.m = m
	b.publishStatus()
	return b, nil
}

// Run powers the device on and runs it until ctx ends, then drops its
// connection (like pulling the plug; NVS writes are already durable).
func (b *Board) Run(ctx context.Context) error {
	b.ctx = ctx
	defer close(b.done)
	defer b.sess.Disconnect()
	next := b.powerOn(ctx, firmware.ResetPowerOn)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due time.Time // wall time of the armed deadline
	for {
		b.publishStatus()
		timer.Stop()
		var tc <-chan time.Time
		if !next.IsZero() && b.pausedAt.IsZero() {
			due = next.Add(b.offset)
			timer.Reset(time.Until(due))
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case be := <-b.events:
			switch {
			case be.control != nil:
				be.control()
				next = b.m.Deadline()
				if b.restart {
					b.restart = false
					next = b.powerOn(ctx, firmware.ResetSW)
				}
				b.publishStatus()
				close(be.done)
			case be.wifi && be.gen != b.wifiGen, !be.wifi && be.gen != b.sess.gen:
				continue // from a connection or attempt that is gone
			case be.resume:
				b.resume()
			default:
				b.report(be)
				next = b.m.Handle(be.ev)
			}
		case <-tc:
			if o := b.opts.Observer; o != nil {
				o.Late(time.Since(due)) // includes waiting for a CPU: that is the lag
			}
			next = b.m.Handle(firmware.Event{Kind: firmware.EventTick})
		}
		if b.restart {
			b.restart = false
			next = b.powerOn(ctx, firmware.ResetSW)
		}
	}
}

// powerOn is a reset: RAM state gone, the bootloader picks a slot, the app boots.
func (b *Board) powerOn(ctx context.Context, reason firmware.ResetReason) time.Time {
	b.sess.Disconnect()
	b.wifiGen++
	b.boots++
	b.reset = reason
	if _, err := b.opts.Flash.Boot(); err != nil {
		b.bricked = true
		b.Println("rst:0x" + reason.String() + " invalid header: no bootable app partition")
		return time.Time{}
	}
	select {
	case <-time.After(b.opts.BootTime):
	case <-ctx.Done():
		return time.Time{}
	}
	return b.m.Handle(firmware.Event{Kind: firmware.EventBoot, Reset: reason})
}

// send delivers an event from another goroutine (paho, timers).
func (b *Board) send(be boardEvent) {
	select {
	case b.events <- be:
	case <-b.done:
	}
}

// report tells the Observer about an event of the current connection.
func (b *Board) report(be boardEvent) {
	o := b.opts.Observer
	if o == nil {
		return
	}
	switch be.report {
	case reportConnect:
		o.Connected(be.took, be.outcome)
	case reportLost:
		o.Lost(be.ev.Link, be.ev.Reason)
	}
}

// pause stops the firmware's clock while the session waits at the Gate.
func (b *Board) pause() {
	if b.pausedAt.IsZero() {
		b.pausedAt = time.Now()
	}
}

// resume restarts the firmware's clock where it stopped.
func (b *Board) resume() {
	if !b.pausedAt.IsZero() {
		b.offset += time.Since(b.pausedAt)
		b.pausedAt = time.Time{}
	}
}

// now is the firmware's time (see offset); board goroutine only.
func (b *Board) now() time.Time {
	if !b.pausedAt.IsZero() {
		return b.pausedAt.Add(-b.offset)
	}
	return time.Now().Add(-b.offset)
}

// control runs f on the board's goroutine and returns once it ran (or the
// board stopped), so a fault action is visible in Status when it returns.
func (b *Board) control(f func()) {
	ev := boardEvent{control: f, done: make(chan struct{})}
	select {
	case b.events <- ev:
	case <-b.done:
		return
	}
	select {
	case <-ev.done:
	case <-b.done:
	}
}

// PowerCycle cuts power at this instant and restores it: an open update is
// lost, NVS and flash keep what was written. It returns once the device has
// booted again.
func (b *Board) PowerCycle() {
	b.control(func() { b.powerOn(b.ctx, firmware.ResetPowerOn) })
}

// DropWiFi takes the access point away for d.
func (b *Board) DropWiFi(d time.Duration) {
	b.control(func() {
		b.radio.DropUntil(time.Now().Add(d))
		b.wifiGen++
		b.m.Handle(firmware.Event{Kind: firmware.EventWiFiDown, Reason: "BEACON_TIMEOUT"})
	})
}

// EraseToken is the seed's clearTokenFromNVS(): the next boot provisions.
func (b *Board) EraseToken() {
	b.control(func() { b.m.Handle(firmware.Event{Kind: firmware.EventEraseToken}) })
}

// Status returns the latest snapshot; safe from any goroutine.
func (b *Board) Status() BoardStatus { return *b.status.Load() }

func (b *Board) publishStatus() {
	cur := &BoardStatus{
		Name: b.opts.Identity.Name(), Status: b.m.Status(),
		BootCount: b.boots, LastReset: b.reset, Bricked: b.bricked,
	}
	prev := b.status.Swap(cur)
	if o := b.opts.Observer; o != nil && prev != nil && *prev != *cur {
		o.Transition(b, *prev, *cur, time.Now())
	}
}

// Println is the firmware's console port: the ring buffer, the OnLine hook
// and a debug log line.
func (b *Board) Println(text string) {
	l := Line{Time: time.Now(), Text: text}
	b.mu.Lock()
	b.console[b.head] = l
	b.head = (b.head + 1) % len(b.console)
	b.full = b.full || b.head == 0
	b.mu.Unlock()
	if b.opts.OnLine != nil {
		b.opts.OnLine(l)
	}
	b.log.Debug("serial", "line", text)
}

// Console returns the buffered serial lines, oldest first.
func (b *Board) Console() []Line {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.full {
		return append([]Line(nil), b.console[:b.head]...)
	}
	return append(append([]Line(nil), b.console[b.head:]...), b.console[:b.head]...)
}

// Identity returns the board's identity.
func (b *Board) Identity() Identity { return b.opts.Identity }

// Flash returns the board's flash; read it only while the board is stopped
// or from an Observer's Transition (the board's goroutine).
func (b *Board) Flash() *Flash { return b.opts.Flash }

type boardClock struct{ b *Board }

func (c boardClock) Now() time.Time { return c.b.now() }

type rngPort struct{ r *rand.Rand }

func (p rngPort) Uint32() uint32 { return p.r.Uint32() }

// boardOTA is the flash's OTA port plus the reset the board performs.
type boardOTA struct {
	*Flash
	b *Board
}

func (o boardOTA) Running() firmware.Image { return o.Flash.RunningImage() }
func (o boardOTA) Restart()                { o.b.restart = true }

// boardWiFi starts connect attempts whose outcome arrives as an event later.
type boardWiFi struct{ b *Board }

func (w boardWiFi) Connect() {
	b := w.b
	b.wifiGen++
	gen := b.wifiGen
	d, fail := b.radio.Attempt(time.Now())
	time.AfterFunc(d, func() {
		ev := firmware.Event{Kind: firmware.EventWiFiUp}
		if fail != "" {
			ev = firmware.Event{Kind: firmware.EventWiFiDown, Reason: fail}
		}
		select {
		case b.events <- boardEvent{gen: gen, wifi: true, ev: ev}:
		case <-b.done:
		}
	})
}

func (w boardWiFi) MAC() string             { return w.b.opts.Identity.Name() }
func (w boardWiFi) Info() firmware.WiFiInfo { return w.b.radio.Info() }

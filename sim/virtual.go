package sim

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/tbapi"
)

// Server is the emulator as the virtual fleet drives it: synchronous calls,
// answers through callbacks, time through the same Sched. tbemu's direct
// adapter provides it (wired by the caller: sim does not import tbemu).
type Server interface {
	// Connect opens a session and returns the CONNACK code (0: accepted;
	// the session is nil otherwise). deliver receives every PUBLISH the
	// server sends this session, in order; closed is called once if the
	// server ends the session, with the cause when the server knows it.
	Connect(clientID, username, password string, deliver func(topic string, payload []byte),
		closed func(cause firmware.LinkError, why string)) (ServerConn, byte)
}

// ServerConn is one open session on a Server.
type ServerConn interface {
	// Publish hands the server a device's PUBLISH; acked says whether a
	// PUBACK follows (the server may instead close the session). payload
	// is not kept after Publish returns (the fleet reuses its buffers).
	Publish(topic string, payload []byte, qos byte) (acked bool)
	// Subscribe returns the SUBACK code.
	Subscribe(filter string, qos byte) byte
	// Close is the device's DISCONNECT (or its TCP connection closing).
	Close()
}

// VirtualOptions configure a virtual fleet.
type VirtualOptions struct {
	Devices  int
	Seed     uint64
	Ramp     float64 // devices powered on per virtual second (default 2000)
	Firmware firmware.Config
	WiFi     device.WiFiConfig
	BootTime time.Duration // reset to app start (default 300 ms)
	Factory  []byte        // factory image (default: built for the firmware's title and version)
	Sched    *Sched        // the clock, shared with the server
	Server   Server
	// Latency is the network's one-way delay between a device and the
	// server (default 500 µs); SetLink adds an impairment to device writes,
	// as sim.Link does in real time.
	Latency      time.Duration
	OnLine       func(device string, l device.Line)
	ConsoleLines int // serial ring per device (default 24)
	// EventLog, if set, gets one line per event a device handles: the
	// replayable trace of the run.
	EventLog io.Writer
	// OnStatus, if set, sees every status change of device i as it happens
	// (fault search: act at an exact moment, track a device's history).
	OnStatus func(i int, prev, cur device.BoardStatus)
}

// VFleet is a fleet in virtual time: every device's firmware, its hardware
// models and its link to the server advance on one Sched, in one goroutine.
type VFleet struct {
	opts    VirtualOptions
	s       *Sched
	store   *device.ImageStore
	boards  []*vboard
	byName  map[string]int
	metrics *Metrics
	health  *Health
	started time.Time
	link    Impairment // on device writes
	linkRng *rand.Rand
	version uint64 // bumped at every status change
	down    bool   // the server refuses connections (a restart in progress)
	log     io.Writer
	bufs    [][]byte // payload copies in transit, reused (all on the Sched's goroutine)
}

// payload copies p for its time on the link.
func (f *VFleet) payload(p []byte) []byte {
	if n := len(f.bufs); n > 0 {
		b := f.bufs[n-1]
		f.bufs = f.bufs[:n-1]
		return append(b[:0], p...)
	}
	return append(make([]byte, 0, max(len(p), 256)), p...)
}

// release takes back a copy from payload once the server has read it; big
// buffers (OTA chunks do not pass here, but a large publish could) are left
// to the collector.
func (f *VFleet) release(b []byte) {
	if cap(b) <= 4096 && len(f.bufs) < 4096 {
		f.bufs = append(f.bufs, b)
	}
}

// NewVirtual builds the fleet; Start powers it on.
func NewVirtual(o VirtualOptions) (*VFleet, error) {
	if o.Devices <= 0 {
		return nil, errors.New("virtual fleet: Devices must be positive")
	}
	if o.Sched == nil || o.Server == nil {
		return nil, errors.New("virtual fleet: Sched and Server are required")
	}
	if err := o.Firmware.Validate(); err != nil {
		return nil, err
	}
	if o.Ramp <= 0 {
		o.Ramp = 2000
	}
	if o.BootTime == 0 {
		o.BootTime = 300 * time.Millisecond
	}
	if o.ConsoleLines <= 0 {
		o.ConsoleLines = 24
	}
	if o.Latency == 0 {
		o.Latency = 500 * time.Microsecond
	}
	o.WiFi.Seed = o.Seed
	f := &VFleet{opts: o, s: o.Sched, store: device.NewImageStore(), byName: map[string]int{}, metrics: &Metrics{},
		health: &Health{}, linkRng: rand.New(rand.NewPCG(o.Seed, 0x11)), log: o.EventLog}
	if o.Factory == nil {
		img, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: o.Firmware.Title, Version: o.Firmware.Version, Size: 64 << 10})
		if err != nil {
			return nil, err
		}
		o.Factory = img
	}
	factory := f.store.Add(o.Factory)
	f.metrics.devices = int64(o.Devices)
	for i := range o.Devices {
		b, err := f.newBoard(i, factory)
		if err != nil {
			return nil, err
		}
		f.byName[b.id.Name()] = i
		f.boards = append(f.boards, b)
	}
	return f, nil
}

// Start schedules the power-on of every device at the ramp rate, with
// jitter from the seed.
func (f *VFleet) Start() {
	f.started = f.s.Now()
	rng := rand.New(rand.NewPCG(f.opts.Seed, 0x5eed))
	step := time.Duration(float64(time.Second) / f.opts.Ramp)
	for i, b := range f.boards {
		at := f.started.Add(time.Duration(i)*step + time.Duration(rng.Int64N(int64(step)+1)))
		f.s.At(at, func() {
			b.live = true
			b.powerOn(firmware.ResetPowerOn)
		})
	}
}

// Sched returns the fleet's scheduler.
func (f *VFleet) Sched() *Sched { return f.s }

// Len is the number of devices.
func (f *VFleet) Len() int { return len(f.boards) }

// Status returns device i's status.
func (f *VFleet) Status(i int) device.BoardStatus { return f.boards[i].status }

// Statuses returns every device's status, in index order.
func (f *VFleet) Statuses() []device.BoardStatus {
	out := make([]device.BoardStatus, len(f.boards))
	for i, b := range f.boards {
		out[i] = b.status
	}
	return out
}

// Index returns the position of a device name.
func (f *VFleet) Index(name string) (int, bool) {
	i, ok := f.byName[name]
	return i, ok
}

// Console returns device i's buffered serial lines, oldest first.
func (f *VFleet) Console(i int) []device.Line { return f.boards[i].lines() }

// Metrics returns the fleet's measurements.
func (f *VFleet) Metrics() *Metrics { return f.metrics }

// Snapshot summarises the fleet at the current virtual instant.
func (f *VFleet) Snapshot() Snapshot {
	var elapsed time.Duration
	if !f.started.IsZero() {
		elapsed = f.s.Now().Sub(f.started)
	}
	return buildSnapshot(len(f.boards), func(i int) (device.BoardStatus, bool) {
		b := f.boards[i]
		return b.status, b.live
	}, f.metrics, f.health, nil, elapsed)
}

// Pick chooses n distinct device positions deterministically from seed
// (the same choice as Fleet.Pick).
func (f *VFleet) Pick(n int, seed uint64) []int {
	n = min(max(n, 0), len(f.boards))
	return rand.New(rand.NewPCG(seed, 0x9c)).Perm(len(f.boards))[:n]
}

// PowerCycle cuts power on the devices at this instant; they boot again
// after the boot time.
func (f *VFleet) PowerCycle(pos []int) {
	for _, i := range pos {
		if b := f.boards[i]; b.live {
			f.trace(b, "power-cycle")
			b.powerOn(firmware.ResetPowerOn)
		}
	}
}

// EraseTokens erases the devices' stored credentials (clearTokenFromNVS).
func (f *VFleet) EraseTokens(pos []int) {
	for _, i := range pos {
		if b := f.boards[i]; b.live {
			b.handle(firmware.Event{Kind: firmware.EventEraseToken})
		}
	}
}

// DropWiFi takes the devices' access point away for d.
func (f *VFleet) DropWiFi(pos []int, d time.Duration) {
	for _, i := range pos {
		if b := f.boards[i]; b.live && !b.booting {
			b.radio.DropUntil(f.s.Now().Add(d))
			b.wifiGen++
			b.handle(firmware.Event{Kind: firmware.EventWiFiDown, Reason: "BEACON_TIMEOUT"})
		}
	}
}

// SetLink impairs every device write, on open and future connections
// (the zero value restores a clean link).
func (f *VFleet) SetLink(i Impairment) {
	if i.RTO == 0 {
		i.RTO = 200 * time.Millisecond
	}
	f.link = i
}

// CutOtadata makes the next otadata write of each device lose power after
// the sector's erase: the device dies there and boots again.
func (f *VFleet) CutOtadata(pos []int) {
	for _, i := range pos {
		f.boards[i].flash.CutNextOtadataWrite = true
	}
}

// NVS returns device i's storage (for checks after a run).
func (f *VFleet) NVS(i int) firmware.NVS { return f.boards[i].nvs }

// Version changes whenever a device's status does: a condition on statuses
// needs no new look until it moves.
func (f *VFleet) Version() uint64 { return f.version }

// ServerDown makes connection attempts fail as unreachable (a broker
// restart); the caller closes the server's sessions itself.
func (f *VFleet) ServerDown(down bool) { f.down = down }

// delay draws one message's one-way delay; device writes also suffer the
// link's impairment.
func (f *VFleet) delay(up bool) time.Duration {
	d := f.opts.Latency
	if !up {
		return d
	}
	i := f.link
	d += i.Latency
	if i.Jitter > 0 {
		d += time.Duration(f.linkRng.Int64N(int64(i.Jitter)))
	}
	if i.Loss > 0 && f.linkRng.Float64() < i.Loss {
		d += i.RTO
	}
	return d
}

func (f *VFleet) trace(b *vboard, what string) {
	if f.log != nil {
		fmt.Fprintf(f.log, "%s %s %s\n", f.s.Now().Sub(Epoch), b.id.Name(), what)
	}
}

// vboard is one device in virtual time: the firmware, its models, its session.
type vboard struct {
	f       *VFleet
	idx     int
	id      device.Identity
	m       *firmware.Machine
	nvs     *device.MemNVS
	flash   *device.Flash
	radio   *device.Radio
	sess    vsession
	status  device.BoardStatus
	track   tracker
	live    bool // powered on by the ramp
	booting bool // between a reset and the app's start
	bootGen uint64
	boots   int
	reset   firmware.ResetReason
	bricked bool
	restart bool
	wifiGen uint64
	timer   Timer
	timerAt time.Time

	console []device.Line
	head    int
	full    bool
}

func (f *VFleet) newBoard(i int, factory *device.Blob) (*vboard, error) {
	id := device.NewIdentity(f.opts.Seed, uint32(i))
	b := &vboard{f: f, idx: i, id: id, nvs: device.NewMemNVS(), console: make([]device.Line, f.opts.ConsoleLines)}
	b.flash = device.NewFlash(f.store, espimage.ESP32S3, factory, f.opts.Firmware.Title, f.opts.Firmware.Version)
	rng := rand.New(rand.NewPCG(f.opts.Seed, uint64(i)+1))
	b.radio = device.NewRadio(f.opts.WiFi, id, rng)
	b.sess.b = b
	m, err := firmware.NewShared(&f.opts.Firmware, firmware.Ports{
		Clock: vclock{f.s}, NVS: b.nvs, Session: &b.sess, OTA: vota{b.flash, b},
		WiFi: vwifi{b}, Sensor: b.radio, Rand: rngPort{rng}, Console: b,
	})
	if err != nil {
		return nil, err
	}
	b.m = m
	b.status = device.BoardStatus{Name: id.Name(), Status: m.Status()}
	return b, nil
}

type vclock struct{ s *Sched }

func (c vclock) Now() time.Time { return c.s.Now() }

type rngPort struct{ r *rand.Rand }

func (p rngPort) Uint32() uint32 { return p.r.Uint32() }

// vota is the flash's OTA port plus the reset the board performs.
type vota struct {
	*device.Flash
	b *vboard
}

func (o vota) Running() firmware.Image { return o.Flash.RunningImage() }
func (o vota) Restart()                { o.b.restart = true }

type vwifi struct{ b *vboard }

func (w vwifi) Connect() {
	b := w.b
	b.wifiGen++
	gen := b.wifiGen
	d, fail := b.radio.Attempt(b.f.s.Now())
	b.f.s.After(d, func() {
		if gen != b.wifiGen || b.booting {
			return
		}
		ev := firmware.Event{Kind: firmware.EventWiFiUp}
		if fail != "" {
			ev = firmware.Event{Kind: firmware.EventWiFiDown, Reason: fail}
		}
		b.handle(ev)
	})
}

func (w vwifi) MAC() string             { return w.b.id.Name() }
func (w vwifi) Info() firmware.WiFiInfo { return w.b.radio.Info() }

// Println is the console port.
func (b *vboard) Println(text string) {
	l := device.Line{Time: b.f.s.Now(), Text: text}
	b.console[b.head] = l
	b.head = (b.head + 1) % len(b.console)
	b.full = b.full || b.head == 0
	if on := b.f.opts.OnLine; on != nil {
		on(b.id.Name(), l)
	}
}

func (b *vboard) lines() []device.Line {
	if !b.full {
		return append([]device.Line(nil), b.console[:b.head]...)
	}
	return append(append([]device.Line(nil), b.console[b.head:]...), b.console[:b.head]...)
}

// powerOn is a reset: the session and RAM are gone, the bootloader picks a
// slot, and the app starts after the boot time.
func (b *vboard) powerOn(reason firmware.ResetReason) {
	b.sess.Disconnect()
	b.wifiGen++
	b.stopTimer()
	b.boots++
	b.reset = reason
	b.restart = false
	b.bootGen++
	gen := b.bootGen
	if _, err := b.flash.Boot(); err != nil {
		b.bricked, b.booting = true, false
		b.Println("rst:0x" + reason.String() + " invalid header: no bootable app partition")
		b.publish()
		return
	}
	b.booting = true
	b.publish()
	b.f.s.After(b.f.opts.BootTime, func() {
		if gen != b.bootGen {
			return // reset again while booting
		}
		b.booting = false
		b.handle(firmware.Event{Kind: firmware.EventBoot, Reset: reason})
	})
}

// handle feeds the machine one event and follows up: a restart it asked
// for, its next deadline, the status for the metrics.
func (b *vboard) handle(ev firmware.Event) {
	if b.booting && ev.Kind != firmware.EventBoot {
		return
	}
	if b.f.log != nil {
		b.f.trace(b, eventText(ev))
	}
	armed := b.flash.CutNextOtadataWrite
	next := b.m.Handle(ev)
	if armed && !b.flash.CutNextOtadataWrite {
		// The otadata write was cut: power was lost in the middle of it.
		b.f.trace(b, "power lost during an otadata write")
		b.powerOn(firmware.ResetPowerOn)
		return
	}
	if b.restart {
		b.powerOn(firmware.ResetSW)
		return
	}
	b.arm(next)
	b.publish()
}

func eventText(ev firmware.Event) string {
	s := ev.Kind.String()
	switch ev.Kind {
	case firmware.EventMessage:
		s += " " + ev.Topic + " " + strconv.Itoa(len(ev.Payload))
	case firmware.EventRefused:
		s += " " + strconv.Itoa(int(ev.Code))
	case firmware.EventPublished:
		s += " " + strconv.FormatUint(uint64(ev.ID), 10)
	case firmware.EventConnectionLost, firmware.EventWiFiDown:
		s += " " + ev.Reason
	}
	return s
}

// arm keeps the board's one timer at the machine's deadline.
func (b *vboard) arm(next time.Time) {
	if b.timer.e == nil {
		b.timer = b.f.s.NewTimer(func() {
			b.timerAt = time.Time{}
			b.handle(firmware.Event{Kind: firmware.EventTick})
		})
	}
	if next.Equal(b.timerAt) && b.timer.Armed() {
		return
	}
	if next.IsZero() {
		b.stopTimer()
		return
	}
	b.timerAt = next
	b.timer.Reset(next)
}

func (b *vboard) stopTimer() {
	b.timer.Stop()
	b.timerAt = time.Time{}
}

// publish refreshes the status and counts what changed.
func (b *vboard) publish() {
	cur := device.BoardStatus{Name: b.status.Name, Status: b.m.Status(), BootCount: b.boots, LastReset: b.reset, Bricked: b.bricked}
	if cur != b.status {
		prev := b.status
		b.f.metrics.transition(&b.track, prev, cur, b.f.s.Now())
		b.status = cur
		b.f.version++
		if on := b.f.opts.OnStatus; on != nil {
			on(b.idx, prev, cur)
		}
	}
}

var errVNotConnected = errors.New("mqtt: not connected")

// vsession is firmware.Session over the virtual link: each direction of a
// connection is a FIFO with the link's delay; events of a connection that
// is gone are dropped.
type vsession struct {
	b     *vboard
	att   *vattempt
	gen   uint64
	pubID uint32
	chunk time.Time // when the last chunk request left, for the round trip
}

type vattempt struct {
	gen       uint64
	conn      ServerConn
	up, down  time.Time // last delivery time per direction: TCP keeps order
	closed    bool      // the device closed it
	connected bool      // CONNACK 0 arrived
}

func (a *vattempt) upAt(f *VFleet) time.Time {
	t := f.s.Now().Add(f.delay(true))
	if t.Before(a.up) {
		t = a.up
	}
	a.up = t
	return t
}

func (a *vattempt) downAt(f *VFleet) time.Time {
	t := f.s.Now().Add(f.delay(false))
	if t.Before(a.down) {
		t = a.down
	}
	a.down = t
	return t
}

func (s *vsession) Connect(c firmware.Credentials) error {
	s.Disconnect()
	s.gen++
	a := &vattempt{gen: s.gen}
	s.att = a
	b, f := s.b, s.b.f
	start := f.s.Now()
	current := func() bool { return s.gen == a.gen && !a.closed }
	if f.down {
		f.s.At(a.downAt(f).Add(f.delay(true)), func() {
			if current() {
				b.f.metrics.connected(f.s.Now().Sub(start), false)
				b.handle(firmware.Event{Kind: firmware.EventConnectionLost, Link: firmware.LinkUnreachable, Reason: "unreachable: connection refused"})
			}
		})
		return nil
	}
	// TCP handshake, then CONNECT: the server sees it after one round trip
	// and a half; the CONNACK comes back after one more way.
	f.s.At(a.upAt(f).Add(f.delay(false)), func() {
		if a.closed {
			return
		}
		deliver := func(topic string, payload []byte) {
			f.s.At(a.downAt(f), func() {
				if !current() {
					return
				}
				if len(topic) > len("v2/fw/response/") && topic[:len("v2/fw/response/")] == "v2/fw/response/" && !s.chunk.IsZero() {
					f.metrics.ChunkRTT.Observe(f.s.Now().Sub(s.chunk))
				}
				b.handle(firmware.Event{Kind: firmware.EventMessage, Topic: topic, Payload: payload})
			})
		}
		closed := func(cause firmware.LinkError, why string) {
			f.s.At(a.downAt(f), func() {
				if current() {
					if a.connected {
						f.metrics.Disconnects.Add(linkCause(cause), 1)
					}
					b.handle(firmware.Event{Kind: firmware.EventConnectionLost, Link: cause, Reason: why})
				}
			})
		}
		conn, code := f.opts.Server.Connect(c.ClientID, c.Username, c.Password, deliver, closed)
		if code == 0 {
			a.conn = conn
		}
		f.s.At(a.downAt(f), func() {
			if !current() {
				return
			}
			f.metrics.connected(f.s.Now().Sub(start), code == 0)
			if code != 0 {
				b.handle(firmware.Event{Kind: firmware.EventRefused, Code: code})
				return
			}
			a.connected = true
			b.handle(firmware.Event{Kind: firmware.EventConnected})
		})
	})
	return nil
}

func (s *vsession) Disconnect() {
	a := s.att
	if a == nil {
		return
	}
	s.att = nil
	s.gen++
	f := s.b.f
	// The DISCONNECT follows whatever the device sent before it.
	f.s.At(a.upAt(f), func() {
		a.closed = true
		if a.conn != nil {
			a.conn.Close()
		}
	})
}

func (s *vsession) Publish(topic string, payload []byte, qos byte) (uint32, error) {
	a := s.att
	if a == nil || !a.connected {
		return 0, errVNotConnected
	}
	s.pubID++
	id, f, b := s.pubID, s.b.f, s.b
	p := f.payload(payload) // the caller reuses its buffer
	sent := f.s.Now()
	if len(topic) > len("v2/fw/request/") && topic[:len("v2/fw/request/")] == "v2/fw/request/" {
		s.chunk = sent
	}
	f.s.At(a.upAt(f), func() {
		acked := a.conn != nil && a.conn.Publish(topic, p, qos)
		f.release(p)
		if !acked || qos == 0 {
			return
		}
		// The PUBACK's arrival time is known now. The metric is taken at
		// once and the event is only delivered when the firmware waits for
		// it (a restart): most PUBACKs then cost no event at all.
		at := a.downAt(f)
		if s.gen != a.gen || a.closed {
			// Stored by the server, but the device's connection is gone:
			// the acknowledgement never reaches it.
			f.metrics.Outcomes.Add("publish ack lost", 1)
			if topic == tbapi.TopicTelemetry {
				f.metrics.Outcomes.Add("telemetry ack lost", 1)
			}
			return
		}
		f.metrics.publishAck(topic, at.Sub(sent))
		if b.m.AwaitsAck(id) {
			f.s.At(at, func() {
				if s.gen == a.gen && !a.closed {
					b.handle(firmware.Event{Kind: firmware.EventPublished, ID: id})
				}
			})
		}
	})
	return id, nil
}

func (s *vsession) Subscribe(filter string, qos byte) error {
	a := s.att
	if a == nil || !a.connected {
		return errVNotConnected
	}
	f := s.b.f
	f.s.At(a.upAt(f), func() {
		if a.conn != nil && !a.closed {
			a.conn.Subscribe(filter, qos)
		}
	})
	return nil
}

var _ firmware.Session = (*vsession)(nil)

// connected records a connection attempt's outcome.
func (m *Metrics) connected(d time.Duration, ok bool) {
	if ok {
		m.Connect.Observe(d)
		m.Outcomes.Add("connect ok", 1)
		return
	}
	m.Outcomes.Add("connect failed", 1)
}

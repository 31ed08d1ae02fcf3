package scenario

import (
	"context"
	"io"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/sim"
	"github.com/tbsim/tbsim/tbemu/core"
	"github.com/tbsim/tbsim/tbemu/direct"
)

// virtual runs the fleet and the emulator core on one virtual clock in this
// goroutine: every device, every message and every server timer is an
// event of one queue, so a seed gives the same run, byte for byte, on any
// machine, and time costs nothing while nothing happens.
type virtual struct {
	s     *sim.Sched
	core  *core.Core
	srv   *emuServer
	fleet *sim.VFleet
	start time.Time
}

func newVirtual(r *runner) (*virtual, error) {
	s := sim.NewSched(sim.Epoch)
	c, err := core.New(core.Options{
		OTAPackSize: r.sc.Server.OTAPackSize, OTAPackInterval: orDur(r.sc.Server.OTAPackInterval, 100*time.Millisecond),
		Clock: schedClock{s}, Rand: rand.NewPCG(r.seed, 0xe3), Logger: r.opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	key, secret, err := setupServer(c, r.sc.Server)
	if err != nil {
		c.Close()
		return nil, err
	}
	fo := r.fleetOptions()
	fo.Firmware.ProvisionKey, fo.Firmware.ProvisionSecret = key, secret
	w := &virtual{s: s, core: c, srv: &emuServer{d: direct.New(c)}}
	var log io.Writer
	if r.opts.EventLog != nil {
		log = r.opts.EventLog
	}
	w.fleet, err = sim.NewVirtual(sim.VirtualOptions{
		Devices: fo.Devices, Seed: fo.Seed, Ramp: fo.Ramp, Firmware: fo.Firmware, WiFi: fo.WiFi,
		BootTime: fo.BootTime, Sched: s, Server: w.srv, EventLog: log,
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	w.start = s.Now()
	w.fleet.Start()
	return w, nil
}

func (w *virtual) mode() string { return "virtual" }

func (w *virtual) close() error { return w.core.Close() }

func (w *virtual) elapsed() time.Duration { return w.s.Now().Sub(w.start) }

func (w *virtual) statuses() []device.BoardStatus { return w.fleet.Statuses() }

func (w *virtual) snapshot() sim.Snapshot { return w.fleet.Snapshot() }

func (w *virtual) console(i int) []device.Line { return w.fleet.Console(i) }

func (w *virtual) pick(n int, seed uint64) []int { return w.fleet.Pick(n, seed) }

func (w *virtual) powerCycle(pos []int) { w.fleet.PowerCycle(pos) }

func (w *virtual) eraseTokens(pos []int) { w.fleet.EraseTokens(pos) }

func (w *virtual) dropWiFi(pos []int, d time.Duration) { w.fleet.DropWiFi(pos, d) }

func (w *virtual) setLink(i sim.Impairment, restoreAfter time.Duration) {
	w.fleet.SetLink(i)
	if restoreAfter > 0 {
		w.s.After(restoreAfter, func() { w.fleet.SetLink(sim.Impairment{}) })
	}
}

// cancelled checks ctx now and then: a long virtual run still stops on Ctrl-C.
func cancelled(ctx context.Context) func() bool {
	n := 0
	return func() bool {
		n++
		return n%4096 == 0 && ctx.Err() != nil
	}
}

func (w *virtual) sleep(ctx context.Context, d time.Duration) error {
	w.s.RunUntil(w.s.Now().Add(d), cancelled(ctx))
	return ctx.Err()
}

// waitFor runs events until cond holds; cond looks at statuses, so it is
// asked again only when one changed.
func (w *virtual) waitFor(ctx context.Context, timeout time.Duration, cond func() bool) (bool, error) {
	stop, seen := cancelled(ctx), ^uint64(0)
	held := false
	w.s.RunUntil(w.s.Now().Add(timeout), func() bool {
		if stop() {
			return true
		}
		if v := w.fleet.Version(); v != seen {
			seen = v
			held = cond()
		}
		return held
	})
	return held, ctx.Err()
}

// restartBroker closes every session, refuses connections for down, then
// serves again; the core keeps its state, as a restart on a state file does.
func (w *virtual) restartBroker(ctx context.Context, down time.Duration) error {
	w.fleet.ServerDown(true)
	w.srv.dropAll()
	err := w.sleep(ctx, down)
	w.fleet.ServerDown(false)
	return err
}

func (w *virtual) emu() emulator { return w.core }

func (w *virtual) serverStats() (int64, int64, bool) {
	st := w.core.Stats()
	return st.TelemetryMsgs, st.RateLimited, true
}

// rpc starts the call and runs the simulation until it is answered.
func (w *virtual) rpc(ctx context.Context, deviceID, method string, params tbapi.Value, timeout time.Duration) error {
	var done bool
	var rerr error
	if _, err := w.core.StartRPC(deviceID, method, params, true, timeout, func(_ []byte, err error) {
		done, rerr = true, err
	}); err != nil {
		return err
	}
	stop := cancelled(ctx)
	w.s.RunUntil(w.s.Now().Add(timeout+time.Second), func() bool { return done || stop() })
	if err := ctx.Err(); err != nil {
		return err
	}
	return rerr
}

// schedClock is sim.Sched as the core's clock.
type schedClock struct{ s *sim.Sched }

func (c schedClock) Now() time.Time                       { return c.s.Now() }
func (c schedClock) At(t time.Time, f func()) func() bool { return c.s.At(t, f).Stop }

// emuServer is the core's direct adapter as sim.Server; it keeps the open
// sessions in connect order so a restart closes them in a fixed order.
type emuServer struct {
	d    *direct.Server
	open map[*emuSession]struct{}
}

func (e *emuServer) Connect(clientID, user, pass string, deliver func(string, []byte),
	closed func(firmware.LinkError, string)) (sim.ServerConn, byte) {
	conn := &emuConn{deliver: deliver, closed: closed}
	s, code := e.d.Connect(conn, clientID, user, pass)
	if s == nil {
		return nil, code
	}
	es := &emuSession{e: e, s: s, conn: conn}
	conn.sess = es
	if e.open == nil {
		e.open = map[*emuSession]struct{}{}
	}
	e.open[es] = struct{}{}
	return es, code
}

// dropAll closes every session from the server's side (a broker going away).
func (e *emuServer) dropAll() {
	open := make([]*emuSession, 0, len(e.open))
	for s := range e.open {
		open = append(open, s)
	}
	sort.Slice(open, func(i, j int) bool { return open[i].s.ID() < open[j].s.ID() })
	e.open = nil
	for _, s := range open {
		if !s.gone {
			s.gone = true
			e.d.Disconnect(s.s)
			s.conn.closed(firmware.LinkClosed, core.ReasonServerClosing)
		}
	}
}

func (e *emuServer) forget(s *emuSession) { delete(e.open, s) }

type emuConn struct {
	deliver func(string, []byte)
	closed  func(firmware.LinkError, string)
	sess    *emuSession
}

func (c *emuConn) Deliver(topic string, payload []byte, qos byte) { c.deliver(topic, payload) }

// Close is the core ending the session; the cause is known here, unlike
// on a socket, so a rate limit is counted as one.
func (c *emuConn) Close(reason string) {
	cause := firmware.LinkClosed
	if reason == core.ReasonRateLimit {
		cause = firmware.LinkRateLimited
	}
	if s := c.sess; s != nil {
		s.gone = true
		s.e.forget(s)
	}
	c.closed(cause, reason)
}

type emuSession struct {
	e    *emuServer
	s    direct.Session
	conn *emuConn
	gone bool
}

func (s *emuSession) Publish(topic string, p []byte, qos byte) bool {
	return s.e.d.Publish(s.s, topic, p, qos)
}

func (s *emuSession) Subscribe(filter string, qos byte) byte {
	return s.e.d.Subscribe(s.s, filter, qos)
}

func (s *emuSession) Close() {
	if !s.gone {
		s.gone = true
		s.e.forget(s)
		s.e.d.Disconnect(s.s)
	}
}

package scenario

import (
	"context"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/sim"
	"github.com/tbsim/tbsim/tbemu"
)

// serverBox holds the embedded emulator so it can be restarted under the fleet.
type serverBox struct {
	mu       sync.Mutex
	opts     tbemu.Options
	s        *tbemu.Server
	cancel   context.CancelFunc
	done     chan struct{}
	received int64 // telemetry received by earlier instances
	limited  int64 // rate-limited publishes of earlier instances
}

func (b *serverBox) start() error {
	s, err := tbemu.New(b.opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	b.mu.Lock()
	b.s, b.cancel, b.done = s, cancel, done
	b.mu.Unlock()
	return nil
}

func (b *serverBox) stop() {
	b.mu.Lock()
	s, cancel, done := b.s, b.cancel, b.done
	b.s = nil
	b.mu.Unlock()
	if s == nil {
		return
	}
	st := s.Stats()
	b.received += st.TelemetryMsgs
	b.limited += st.RateLimited
	cancel()
	<-done
}

func (b *serverBox) server() *tbemu.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s
}

func (b *serverBox) dial(ctx context.Context) (net.Conn, error) {
	s := b.server()
	if s == nil {
		// What a client sees while the broker is down: the connection is refused.
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	return s.Dial(ctx)
}

// realtime runs the fleet as goroutines over paho against the embedded
// server's mochi broker (in-memory pipes) or an external server over TCP.
type realtime struct {
	dir       string
	box       *serverBox
	link      *sim.Link
	fleet     *sim.Fleet
	stopFleet context.CancelFunc
	fleetDone chan error
	start     time.Time
}

func newRealtime(ctx context.Context, r *runner) (*realtime, error) {
	fo := r.fleetOptions()
	dir, err := os.MkdirTemp("", "tbsim-scenario-")
	if err != nil {
		return nil, err
	}
	w := &realtime{dir: dir}
	fo.StateDir = dir + "/fleet"
	if ext := r.sc.Server.External; ext != "" {
		fo.Firmware.ProvisionKey, fo.Firmware.ProvisionSecret = r.sc.Server.ProvisionKey, r.sc.Server.ProvisionSecret
		if fo.Dial, err = sim.NewDialer(sim.TransportOptions{Server: ext}); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	} else {
		w.box = &serverBox{opts: tbemu.Options{
			StatePath: dir + "/server.db", OTAPackSize: r.sc.Server.OTAPackSize,
			OTAPackInterval: orDur(r.sc.Server.OTAPackInterval, 100*time.Millisecond), Logger: r.opts.Logger,
		}}
		if err := w.box.start(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		key, secret, err := setupServer(w.box.server(), r.sc.Server)
		if err != nil {
			w.box.stop()
			os.RemoveAll(dir)
			return nil, err
		}
		fo.Firmware.ProvisionKey, fo.Firmware.ProvisionSecret = key, secret
		fo.Dial = w.box.dial
	}
	w.link = sim.NewLink(fo.Dial, r.seed)
	fo.Dial = w.link.Dial
	if w.fleet, err = sim.New(fo); err != nil {
		w.close()
		return nil, err
	}
	fctx, stop := context.WithCancel(ctx)
	w.stopFleet, w.fleetDone = stop, make(chan error, 1)
	w.start = time.Now()
	go func() { w.fleetDone <- w.fleet.Run(fctx) }()
	return w, nil
}

// setupServer applies the scenario's server settings to a fresh emulator and
// returns the provisioning key and secret.
func setupServer(e emulator, spec ServerSpec) (string, string, error) {
	prof, _ := e.DefaultProfile()
	if rl := spec.RateLimit; rl > 0 {
		prof.RateLimit = rl
		if _, err := e.UpdateProfile(prof); err != nil {
			return "", "", err
		}
	}
	return prof.ProvisionKey, prof.ProvisionSecret, nil
}

func (w *realtime) mode() string { return "realtime" }

func (w *realtime) close() error {
	var err error
	if w.stopFleet != nil {
		w.stopFleet()
		err = <-w.fleetDone
		w.stopFleet = nil
	}
	if w.box != nil {
		w.box.stop()
	}
	os.RemoveAll(w.dir)
	return err
}

func (w *realtime) elapsed() time.Duration { return time.Since(w.start) }

func (w *realtime) statuses() []device.BoardStatus {
	var out []device.BoardStatus
	for _, b := range w.fleet.Boards() {
		out = append(out, b.Status())
	}
	return out
}

func (w *realtime) snapshot() sim.Snapshot { return w.fleet.Snapshot() }

func (w *realtime) console(i int) []device.Line { return w.fleet.Boards()[i].Console() }

func (w *realtime) pick(n int, seed uint64) []int { return w.fleet.Pick(n, seed) }

func (w *realtime) powerCycle(pos []int) { w.fleet.PowerCycle(pos) }

func (w *realtime) eraseTokens(pos []int) { w.fleet.EraseTokens(pos) }

func (w *realtime) dropWiFi(pos []int, d time.Duration) { w.fleet.DropWiFi(pos, d) }

func (w *realtime) setLink(i sim.Impairment, restoreAfter time.Duration) {
	w.link.Set(i)
	if restoreAfter > 0 {
		time.AfterFunc(restoreAfter, w.link.Clear)
	}
}

func (w *realtime) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// waitFor polls: the fleet runs on its own goroutines.
func (w *realtime) waitFor(ctx context.Context, timeout time.Duration, cond func() bool) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (w *realtime) restartBroker(ctx context.Context, down time.Duration) error {
	w.box.stop()
	w.sleep(ctx, down)
	return w.box.start()
}

func (w *realtime) emu() emulator {
	if w.box == nil {
		return nil
	}
	if s := w.box.server(); s != nil {
		return s
	}
	return nil
}

func (w *realtime) serverStats() (int64, int64, bool) {
	if w.box == nil {
		return 0, 0, false
	}
	s := w.box.server()
	if s == nil {
		return 0, 0, false
	}
	st := s.Stats()
	return w.box.received + st.TelemetryMsgs, w.box.limited + st.RateLimited, true
}

func (w *realtime) rpc(ctx context.Context, deviceID, method string, params tbapi.Value, timeout time.Duration) error {
	_, err := w.box.server().SendRPC(ctx, deviceID, method, params, true, timeout)
	return err
}

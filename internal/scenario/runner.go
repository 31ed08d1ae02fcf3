package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/sim"
	"github.com/tbsim/tbsim/tbemu"
)

// RunOptions adjust a run.
type RunOptions struct {
	Seed   *uint64 // overrides the file's seed
	Logger *slog.Logger
	// Progress, if set, gets one line per step as it finishes.
	Progress io.Writer
}

// StepResult is one step's outcome.
type StepResult struct {
	Index    int           `json:"index"`
	Line     string        `json:"line"`
	Action   string        `json:"action"`
	Start    time.Duration `json:"start"`
	Duration time.Duration `json:"duration"`
	Status   string        `json:"status"` // ok, failed, skipped
	Detail   string        `json:"detail,omitempty"`
	Devices  []DeviceTail  `json:"devices,omitempty"` // for a failure: devices involved, with their serial log's tail
}

// DeviceTail is a device and the last lines of its serial log.
type DeviceTail struct {
	Name string   `json:"name"`
	Tail []string `json:"tail"`
}

// ExpResult is one expectation's outcome.
type ExpResult struct {
	Expect   string `json:"expect"`
	Measured string `json:"measured"`
	Passed   bool   `json:"passed"`
}

// Result is a scenario's outcome.
type Result struct {
	Name         string        `json:"name"`
	File         string        `json:"file"`
	Seed         uint64        `json:"seed"`
	Duration     time.Duration `json:"duration"`
	Passed       bool          `json:"passed"`
	Error        string        `json:"error,omitempty"` // a runtime error (not a failed expectation)
	Steps        []StepResult  `json:"steps"`
	Expectations []ExpResult   `json:"expectations"`
	Replay       string        `json:"replay,omitempty"`
}

// serverBox holds the embedded emulator so it can be restarted under the fleet.
type serverBox struct {
	mu       sync.Mutex
	opts     tbemu.Options
	s        *tbemu.Server
	cancel   context.CancelFunc
	done     chan struct{}
	received int64 // telemetry received by earlier instances
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
	b.received += s.Stats().TelemetryMsgs
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
		return nil, errors.New("broker down: connection refused")
	}
	return s.Dial(ctx)
}

// runner is one run's state.
type runner struct {
	sc      *Scenario
	opts    RunOptions
	seed    uint64
	box     *serverBox
	link    *sim.Link
	fleet   *sim.Fleet
	target  string
	lastPkg string
	start   time.Time
}

// Run runs a scenario against the embedded server (or the external one).
func Run(ctx context.Context, sc *Scenario, opts RunOptions) *Result {
	r := &runner{sc: sc, opts: opts, seed: sc.Seed}
	if opts.Seed != nil {
		r.seed = *opts.Seed
	}
	res := &Result{Name: sc.Name, File: sc.File, Seed: r.seed}
	res.Replay = fmt.Sprintf("tbsim scenario run %s --seed %d", sc.File, r.seed)
	if err := r.run(ctx, res); err != nil {
		res.Error = err.Error()
	}
	res.Passed = res.Error == ""
	for _, s := range res.Steps {
		res.Passed = res.Passed && s.Status == "ok"
	}
	for _, e := range res.Expectations {
		res.Passed = res.Passed && e.Passed
	}
	return res
}

func (r *runner) fleetOptions() sim.Options {
	fs := r.sc.Fleet
	fw := firmware.Defaults()
	if fs.Firmware.Title != "" {
		fw.Title = fs.Firmware.Title
	}
	if fs.Firmware.Version != "" {
		fw.Version = fs.Firmware.Version
	}
	fw.TelemetryInterval = orDur(fs.TelemetryInterval, time.Second)
	if fs.MarkValid == "after-connect" {
		fw.MarkValid = firmware.MarkValidAfterConnect
	}
	if fs.ChunkSize != nil {
		fw.ChunkSize = *fs.ChunkSize
	}
	if fs.ChunkRetries != nil {
		fw.ChunkRetries = *fs.ChunkRetries
	}
	fw.ChunkTimeout = orDur(fs.ChunkTimeout, fw.ChunkTimeout)
	fw.BackoffMin = orDur(fs.BackoffMin, 500*time.Millisecond)
	fw.BackoffMax = orDur(fs.BackoffMax, 5*time.Second)
	lo, hi := 50*time.Millisecond, 200*time.Millisecond
	if fs.WiFi.Connect != "" {
		lo, hi, _ = parseRange(fs.WiFi.Connect)
	}
	ramp := fs.Ramp
	if ramp == 0 {
		ramp = 500
	}
	return sim.Options{
		Devices: fs.Devices, Seed: r.seed, Ramp: ramp, Firmware: fw,
		WiFi:     device.WiFiConfig{ConnectMin: lo, ConnectMax: hi, FailRate: fs.WiFi.FailRate},
		BootTime: orDur(fs.BootTime, 50*time.Millisecond), Logger: r.opts.Logger,
	}
}

func orDur(d Duration, def time.Duration) time.Duration {
	if d > 0 {
		return d.D()
	}
	return def
}

func (r *runner) run(ctx context.Context, res *Result) error {
	fo := r.fleetOptions()
	dir, err := os.MkdirTemp("", "tbsim-scenario-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fo.StateDir = dir + "/fleet"
	if ext := r.sc.Server.External; ext != "" {
		fo.Firmware.ProvisionKey, fo.Firmware.ProvisionSecret = r.sc.Server.ProvisionKey, r.sc.Server.ProvisionSecret
		if fo.Dial, err = sim.NewDialer(sim.TransportOptions{Server: ext}); err != nil {
			return err
		}
	} else {
		r.box = &serverBox{opts: tbemu.Options{
			StatePath: dir + "/server.db", OTAPackSize: r.sc.Server.OTAPackSize,
			OTAPackInterval: orDur(r.sc.Server.OTAPackInterval, 100*time.Millisecond), Logger: r.opts.Logger,
		}}
		if err := r.box.start(); err != nil {
			return err
		}
		defer r.box.stop()
		prof, _ := r.box.server().DefaultProfile()
		if rl := r.sc.Server.RateLimit; rl > 0 {
			prof.RateLimit = rl
			if _, err := r.box.server().UpdateProfile(prof); err != nil {
				return err
			}
		}
		fo.Firmware.ProvisionKey, fo.Firmware.ProvisionSecret = prof.ProvisionKey, prof.ProvisionSecret
		fo.Dial = r.box.dial
	}
	r.link = sim.NewLink(fo.Dial, r.seed)
	fo.Dial = r.link.Dial
	if r.fleet, err = sim.New(fo); err != nil {
		return err
	}
	fctx, stopFleet := context.WithCancel(ctx)
	fleetDone := make(chan error, 1)
	r.start = time.Now()
	go func() { fleetDone <- r.fleet.Run(fctx) }()
	defer func() {
		stopFleet()
		<-fleetDone
	}()

	failed := false
	for i, st := range r.sc.Steps {
		action, _ := st.kind()
		sr := StepResult{Index: i, Line: r.sc.line(r.sc.stepLines, i), Action: action, Start: time.Since(r.start)}
		if failed || ctx.Err() != nil {
			sr.Status = "skipped"
			res.Steps = append(res.Steps, sr)
			continue
		}
		detail, devs, err := r.step(ctx, i, st)
		sr.Duration = time.Since(r.start) - sr.Start
		sr.Detail, sr.Status = detail, "ok"
		if err != nil {
			sr.Status, sr.Detail, failed = "failed", err.Error(), true
			sr.Devices = r.tails(devs, 3, 12)
		}
		if r.opts.Progress != nil {
			fmt.Fprintf(r.opts.Progress, "  %-7s step %d %s (line %s) %s %s\n", sr.Status, i+1, action, sr.Line, sr.Duration.Round(time.Millisecond), sr.Detail)
		}
		res.Steps = append(res.Steps, sr)
	}
	v := r.view()
	for _, e := range r.sc.exps {
		c := e.Check(v.metrics)
		res.Expectations = append(res.Expectations, ExpResult{Expect: c.Threshold, Measured: c.Measured, Passed: c.Passed})
	}
	res.Duration = time.Since(r.start)
	return nil
}

func (r *runner) server() *tbemu.Server {
	if r.box == nil {
		return nil
	}
	return r.box.server()
}

func (r *runner) view() *view {
	var received int64
	if r.box != nil {
		received = r.box.received
	}
	return buildView(r.fleet, r.server(), r.target, received)
}

// tails returns up to n devices with the last k lines of their serial log.
func (r *runner) tails(names []string, n, k int) []DeviceTail {
	byName := map[string]*device.Board{}
	for _, b := range r.fleet.Boards() {
		byName[b.Identity().Name()] = b
	}
	var out []DeviceTail
	for _, name := range names {
		if len(out) == n {
			break
		}
		b := byName[name]
		if b == nil {
			continue
		}
		lines := b.Console()
		var tail []string
		for _, l := range lines[max(0, len(lines)-k):] {
			tail = append(tail, l.Time.Format("15:04:05.000")+" "+l.Text)
		}
		out = append(out, DeviceTail{Name: name, Tail: tail})
	}
	return out
}

func (r *runner) step(ctx context.Context, i int, st Step) (string, []string, error) {
	switch {
	case st.Wait != nil:
		return r.wait(ctx, r.sc.conds[i], st.Wait.Timeout.D())
	case st.Sleep != nil:
		select {
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-time.After(st.Sleep.D()):
		}
		return st.Sleep.D().String(), nil, nil
	case st.Rollout != nil:
		return r.rollout(ctx, i, st.Rollout)
	case st.PowerCycle != nil:
		return r.onDevices(ctx, i, st.PowerCycle, "power-cycled", func(p []int) { r.fleet.PowerCycle(p) })
	case st.DropWiFi != nil:
		return r.onDevices(ctx, i, st.DropWiFi, "Wi-Fi dropped for "+st.DropWiFi.For.D().String()+" on",
			func(p []int) { r.fleet.DropWiFi(p, st.DropWiFi.For.D()) })
	case st.EraseTokens != nil:
		return r.onDevices(ctx, i, st.EraseTokens, "tokens erased on", func(p []int) {
			r.fleet.EraseTokens(p)
			if st.EraseTokens.Reboot {
				r.fleet.PowerCycle(p)
			}
		})
	case st.RestartBroker != nil:
		r.box.stop()
		select {
		case <-ctx.Done():
		case <-time.After(st.RestartBroker.Down.D()):
		}
		if err := r.box.start(); err != nil {
			return "", nil, err
		}
		return "broker down for " + st.RestartBroker.Down.D().String(), nil, nil
	case st.DeleteDevices != nil:
		return r.serverAction(ctx, i, st.DeleteDevices, "deleted on the server", func(d tbemu.Device) error {
			return r.server().DeleteDevice(d.ID)
		})
	case st.ChangeCredentials != nil:
		return r.serverAction(ctx, i, st.ChangeCredentials, "credentials changed", func(d tbemu.Device) error {
			_, err := r.server().SetCredentials(d.ID, tbemu.Credentials{Type: tbapi.CredAccessToken, Token: fmt.Sprintf("revoked%013d", time.Now().UnixNano()%1e13)})
			return err
		})
	case st.RateLimit != nil:
		prof, _ := r.server().DefaultProfile()
		prof.RateLimit = st.RateLimit.MessagesPerSecond
		_, err := r.server().UpdateProfile(prof)
		return fmt.Sprintf("%g messages/s per device", prof.RateLimit), nil, err
	case st.SharedAttributes != nil:
		members, err := toMembers(st.SharedAttributes.Values)
		if err != nil {
			return "", nil, err
		}
		return r.serverAction(ctx, i, orAll(st.SharedAttributes.Devices), "shared attributes set on", func(d tbemu.Device) error {
			return r.server().SetSharedAttributes(d.ID, members)
		})
	case st.RPC != nil:
		params, err := toValue(st.RPC.Params)
		if err != nil {
			return "", nil, err
		}
		timeout := orDur(st.RPC.Timeout, 5*time.Second)
		return r.serverAction(ctx, i, orAll(st.RPC.Devices), "answered "+st.RPC.Method+":", func(d tbemu.Device) error {
			_, err := r.server().SendRPC(ctx, d.ID, st.RPC.Method, params, true, timeout)
			return err
		})
	case st.Link != nil:
		l := st.Link
		r.link.Set(sim.Impairment{Latency: l.Latency.D(), Jitter: l.Jitter.D(), Loss: l.Loss})
		detail := fmt.Sprintf("latency %s + jitter %s, loss %g", l.Latency.D(), l.Jitter.D(), l.Loss)
		if l.For > 0 {
			time.AfterFunc(l.For.D(), r.link.Clear)
			detail += " for " + l.For.D().String()
		}
		return detail, nil, nil
	case st.CorruptPackage != nil:
		if r.lastPkg == "" {
			return "", nil, errors.New("corrupt_package: no rollout before it")
		}
		p, _ := r.server().Package(r.lastPkg)
		data := make([]byte, p.Size)
		if len(data) > 0 {
			data[0] = espimage.Magic
		}
		return "package " + p.Title + " " + p.Version + " now serves other bytes", nil, r.server().ReplacePackageData(p.ID, data)
	}
	return "", nil, errors.New("empty step")
}

func orAll(s *Selection) *Selection {
	if s == nil {
		return &Selection{Fraction: 1}
	}
	return s
}

func (r *runner) wait(ctx context.Context, c condition, timeout time.Duration) (string, []string, error) {
	deadline := time.Now().Add(timeout)
	for {
		ok, where, rest := c.holds(r.view())
		if ok {
			return c.text + ": " + where, nil, nil
		}
		if time.Now().After(deadline) {
			return "", rest, fmt.Errorf("%q not reached in %s: %s", c.text, timeout, where)
		}
		select {
		case <-ctx.Done():
			return "", rest, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pick resolves a selection to board positions; with When, it waits until
// enough devices are at that moment and takes them.
func (r *runner) pick(ctx context.Context, i int, s *Selection) ([]int, error) {
	boards := r.fleet.Boards()
	if len(s.Names) > 0 {
		var pos []int
		for _, n := range s.Names {
			found := false
			for j, b := range boards {
				if b.Identity().Name() == strings.ToUpper(n) {
					pos, found = append(pos, j), true
				}
			}
			if !found {
				return nil, fmt.Errorf("no device named %s in the fleet", n)
			}
		}
		return pos, nil
	}
	n := s.Count
	if s.Fraction > 0 {
		n = int(s.Fraction*float64(len(boards)) + 0.5)
	}
	if n == 0 {
		n = len(boards)
	}
	at := moment(s.When)
	if at == nil {
		return r.fleet.Pick(n, r.seed+uint64(i)*7919), nil
	}
	deadline := time.Now().Add(orDur(s.Timeout, 30*time.Second))
	for {
		var pos []int
		for j, b := range boards {
			if at(b.Status()) {
				pos = append(pos, j)
			}
		}
		if len(pos) >= n {
			sort.Ints(pos)
			return pos[:n], nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d devices were %s within %s, want %d", len(pos), s.When, orDur(s.Timeout, 30*time.Second), n)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func moment(when string) func(device.BoardStatus) bool {
	switch when {
	case "downloading":
		return func(b device.BoardStatus) bool { return b.Downloading && b.OTABytes > 0 }
	case "updating":
		return func(b device.BoardStatus) bool { return b.OTAState == tbapi.FwUpdating }
	case "pending-verify":
		return func(b device.BoardStatus) bool { return b.PendingVerify }
	}
	return nil
}

func (r *runner) names(pos []int) []string {
	var out []string
	for _, p := range pos {
		out = append(out, r.fleet.Boards()[p].Identity().Name())
	}
	return out
}

func (r *runner) onDevices(ctx context.Context, i int, s *Selection, verb string, f func([]int)) (string, []string, error) {
	pos, err := r.pick(ctx, i, s)
	if err != nil {
		return "", nil, err
	}
	f(pos)
	return fmt.Sprintf("%s %d devices", verb, len(pos)), r.names(pos), nil
}

func (r *runner) serverAction(ctx context.Context, i int, s *Selection, verb string, f func(tbemu.Device) error) (string, []string, error) {
	pos, err := r.pick(ctx, i, s)
	if err != nil {
		return "", nil, err
	}
	names := r.names(pos)
	var failed []string
	var first error
	for _, n := range names {
		d, ok := r.server().DeviceByName(n)
		if !ok {
			failed = append(failed, n)
			first = cmpErr(first, fmt.Errorf("device %s is not on the server", n))
			continue
		}
		if err := f(d); err != nil {
			failed = append(failed, n)
			first = cmpErr(first, fmt.Errorf("%s: %w", n, err))
		}
	}
	if first != nil {
		return "", failed, fmt.Errorf("%d of %d devices failed, first: %w", len(failed), len(names), first)
	}
	return fmt.Sprintf("%s %d devices", verb, len(names)), nil, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (r *runner) rollout(ctx context.Context, i int, ro *RolloutStep) (string, []string, error) {
	title := ro.Title
	if title == "" {
		title = r.sc.Fleet.Firmware.Title
		if title == "" {
			title = firmware.Defaults().Title
		}
	}
	var data []byte
	var err error
	if ro.File != "" {
		if data, err = os.ReadFile(ro.File); err != nil {
			return "", nil, err
		}
	} else {
		chip := espimage.ESP32S3
		if ro.Chip != "" {
			var ok bool
			if chip, ok = espimage.ParseChip(ro.Chip); !ok {
				return "", nil, fmt.Errorf("rollout.chip %q: unknown chip", ro.Chip)
			}
		}
		size := ro.Size
		if size == 0 {
			size = 100_000
		}
		if data, err = espimage.Build(espimage.BuildOptions{Chip: chip, Title: title, Version: ro.Version, Size: size}); err != nil {
			return "", nil, err
		}
	}
	alg := tbapi.SHA256
	if ro.Algorithm != "" {
		var ok bool
		if alg, ok = tbapi.ParseAlgorithm(ro.Algorithm); !ok {
			return "", nil, fmt.Errorf("rollout.algorithm %q: unknown", ro.Algorithm)
		}
	}
	s := r.server()
	pkg, err := s.AddFirmware(tbemu.PackageSpec{Title: title, Version: ro.Version}, data, alg)
	if err != nil {
		return "", nil, err
	}
	r.lastPkg = pkg.ID
	if ro.Corrupt {
		bad := append([]byte(nil), data...)
		bad[len(bad)/2] ^= 0xFF
		if err := s.ReplacePackageData(pkg.ID, bad); err != nil {
			return "", nil, err
		}
	}
	r.target = ro.Version
	if ro.Devices == nil {
		prof, _ := s.DefaultProfile()
		return fmt.Sprintf("%s %s (%d bytes, %s) assigned to the profile", title, ro.Version, len(data), alg), nil, s.AssignProfileFirmware(prof.ID, pkg.ID)
	}
	return r.serverAction(ctx, i, ro.Devices, title+" "+ro.Version+" assigned to", func(d tbemu.Device) error {
		return s.AssignDeviceFirmware(d.ID, pkg.ID)
	})
}

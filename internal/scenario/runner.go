package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
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
	Seed *uint64 // overrides the file's seed
	// Mode overrides the file's mode: "virtual" (default: one goroutine on
	// a virtual clock, replayable bit for bit) or "realtime" (goroutines,
	// paho and mochi on the wall clock).
	Mode string
	// EventLog, in virtual mode, gets every event a device handles.
	EventLog io.Writer
	Logger   *slog.Logger
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
	Name     string        `json:"name"`
	File     string        `json:"file"`
	Seed     uint64        `json:"seed"`
	Duration time.Duration `json:"duration"`
	// Started is when the scenario started: on the virtual clock in
	// virtual mode (sim.Epoch, so reports replay byte for byte), on the
	// wall clock in real time.
	Started      time.Time    `json:"started"`
	Passed       bool         `json:"passed"`
	Error        string       `json:"error,omitempty"` // a runtime error (not a failed expectation)
	Steps        []StepResult `json:"steps"`
	Expectations []ExpResult  `json:"expectations"`
	Replay       string       `json:"replay,omitempty"`
	Mode         string       `json:"mode"`
}

// runner is one run's state.
type runner struct {
	sc      *Scenario
	opts    RunOptions
	seed    uint64
	w       world
	target  string
	lastPkg string
}

// Run runs a scenario against the embedded server (or the external one).
func Run(ctx context.Context, sc *Scenario, opts RunOptions) *Result {
	r := &runner{sc: sc, opts: opts, seed: sc.Seed}
	if opts.Seed != nil {
		r.seed = *opts.Seed
	}
	res := &Result{Name: sc.Name, File: sc.File, Seed: r.seed, Mode: r.mode(), Started: sim.Epoch}
	if res.Mode == ModeRealtime {
		res.Started = time.Now()
	}
	res.Replay = fmt.Sprintf("tbsim scenario run %s --seed %d --mode %s", sc.File, r.seed, res.Mode)
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
	fw.Server = sim.ServerHost(r.sc.Server.External) // what "[PROVISION] Connecting to:" names
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
	fw.WriteAheadToken = fs.WriteAheadToken
	fw.AcceptOtherTitle = fs.AcceptOtherTitle
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

// mode is the world this run uses: the option, the file's, else virtual;
// an external server is only reachable in real time.
func (r *runner) mode() string {
	switch {
	case r.opts.Mode != "":
		return r.opts.Mode
	case r.sc.Mode != "":
		return r.sc.Mode
	case r.sc.Server.External != "":
		return ModeRealtime
	}
	return ModeVirtual
}

// The two modes.
const (
	ModeVirtual  = "virtual"
	ModeRealtime = "realtime"
)

func (r *runner) run(ctx context.Context, res *Result) error {
	var w world
	var err error
	switch r.mode() {
	case ModeRealtime:
		w, err = newRealtime(ctx, r)
	case ModeVirtual:
		if r.sc.Server.External != "" {
			return fmt.Errorf("mode virtual cannot reach an external server (%s): use --mode realtime", r.sc.Server.External)
		}
		w, err = newVirtual(r)
	default:
		return fmt.Errorf("mode %q: want virtual or realtime", r.mode())
	}
	if err != nil {
		return err
	}
	r.w = w
	defer w.close()

	failed := false
	for i, st := range r.sc.Steps {
		action, _ := st.kind()
		sr := StepResult{Index: i, Line: r.sc.line(r.sc.stepLines, i), Action: action, Start: w.elapsed()}
		if failed || ctx.Err() != nil {
			sr.Status = "skipped"
			res.Steps = append(res.Steps, sr)
			continue
		}
		detail, devs, err := r.step(ctx, i, st)
		sr.Duration = w.elapsed() - sr.Start
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
	res.Duration = w.elapsed()
	return nil
}

func (r *runner) view() *view { return buildView(r.w, r.target) }

// tails returns up to n devices with the last k lines of their serial log.
func (r *runner) tails(names []string, n, k int) []DeviceTail {
	byName := map[string]int{}
	for i, st := range r.w.statuses() {
		byName[st.Name] = i
	}
	var out []DeviceTail
	for _, name := range names {
		if len(out) == n {
			break
		}
		i, ok := byName[name]
		if !ok {
			continue
		}
		lines := r.w.console(i)
		var tail []string
		for _, l := range lines[max(0, len(lines)-k):] {
			tail = append(tail, l.Time.Format("15:04:05.000")+" "+l.Text)
		}
		out = append(out, DeviceTail{Name: name, Tail: tail})
	}
	return out
}

func (r *runner) step(ctx context.Context, i int, st Step) (string, []string, error) {
	w := r.w
	switch {
	case st.Wait != nil:
		return r.wait(ctx, r.sc.conds[i], st.Wait.Timeout.D())
	case st.Sleep != nil:
		return st.Sleep.D().String(), nil, w.sleep(ctx, st.Sleep.D())
	case st.Rollout != nil:
		return r.rollout(ctx, i, st.Rollout)
	case st.PowerCycle != nil:
		return r.onDevices(ctx, i, st.PowerCycle, "power-cycled", w.powerCycle)
	case st.DropWiFi != nil:
		return r.onDevices(ctx, i, st.DropWiFi, "Wi-Fi dropped for "+st.DropWiFi.For.D().String()+" on",
			func(p []int) { w.dropWiFi(p, st.DropWiFi.For.D()) })
	case st.EraseTokens != nil:
		return r.onDevices(ctx, i, st.EraseTokens, "tokens erased on", func(p []int) {
			w.eraseTokens(p)
			if st.EraseTokens.Reboot {
				w.powerCycle(p)
			}
		})
	case st.RestartBroker != nil:
		if err := w.restartBroker(ctx, st.RestartBroker.Down.D()); err != nil {
			return "", nil, err
		}
		return "broker down for " + st.RestartBroker.Down.D().String(), nil, nil
	case st.DeleteDevices != nil:
		return r.serverAction(ctx, i, st.DeleteDevices, "deleted on the server", func(d tbemu.Device) error {
			return w.emu().DeleteDevice(d.ID)
		})
	case st.ChangeCredentials != nil:
		n := 0
		return r.serverAction(ctx, i, st.ChangeCredentials, "credentials changed", func(d tbemu.Device) error {
			n++ // a new token per device, from the seed: replayable
			_, err := w.emu().SetCredentials(d.ID, tbemu.Credentials{Type: tbapi.CredAccessToken, Token: fmt.Sprintf("revoked%03d%07d", i, n)})
			return err
		})
	case st.RateLimit != nil:
		prof, _ := w.emu().DefaultProfile()
		prof.RateLimit = st.RateLimit.MessagesPerSecond
		_, err := w.emu().UpdateProfile(prof)
		return fmt.Sprintf("%g messages/s per device", prof.RateLimit), nil, err
	case st.SharedAttributes != nil:
		members, err := toMembers(st.SharedAttributes.Values)
		if err != nil {
			return "", nil, err
		}
		return r.serverAction(ctx, i, orAll(st.SharedAttributes.Devices), "shared attributes set on", func(d tbemu.Device) error {
			return w.emu().SetSharedAttributes(d.ID, members)
		})
	case st.RPC != nil:
		params, err := toValue(st.RPC.Params)
		if err != nil {
			return "", nil, err
		}
		timeout := orDur(st.RPC.Timeout, 5*time.Second)
		return r.serverAction(ctx, i, orAll(st.RPC.Devices), "answered "+st.RPC.Method+":", func(d tbemu.Device) error {
			return w.rpc(ctx, d.ID, st.RPC.Method, params, timeout)
		})
	case st.Link != nil:
		l := st.Link
		w.setLink(sim.Impairment{Latency: l.Latency.D(), Jitter: l.Jitter.D(), Loss: l.Loss}, l.For.D())
		detail := fmt.Sprintf("latency %s + jitter %s, loss %g", l.Latency.D(), l.Jitter.D(), l.Loss)
		if l.For > 0 {
			detail += " for " + l.For.D().String()
		}
		return detail, nil, nil
	case st.CorruptPackage != nil:
		if r.lastPkg == "" {
			return "", nil, errors.New("corrupt_package: no rollout before it")
		}
		p, _ := w.emu().Package(r.lastPkg)
		data := make([]byte, p.Size)
		if len(data) > 0 {
			data[0] = espimage.Magic
		}
		return "package " + p.Title + " " + p.Version + " now serves other bytes", nil, w.emu().ReplacePackageData(p.ID, data)
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
	var where string
	var rest []string
	ok, err := r.w.waitFor(ctx, timeout, func() bool {
		var held bool
		held, where, rest = c.holds(&view{boards: r.w.statuses()}) // conditions read statuses only
		return held
	})
	switch {
	case err != nil:
		return "", rest, err
	case !ok:
		return "", rest, fmt.Errorf("%q not reached in %s: %s", c.text, timeout, where)
	}
	return c.text + ": " + where, nil, nil
}

// pick resolves a selection to device positions; with When, it waits until
// enough devices are at that moment and takes the first of them by position
// (exact in virtual time: the first instant at which enough are there).
func (r *runner) pick(ctx context.Context, i int, s *Selection) ([]int, error) {
	sts := r.w.statuses()
	if len(s.Names) > 0 {
		var pos []int
		for _, n := range s.Names {
			found := false
			for j, b := range sts {
				if b.Name == strings.ToUpper(n) {
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
		n = int(s.Fraction*float64(len(sts)) + 0.5)
	}
	if n == 0 {
		n = len(sts)
	}
	at := moment(s.When)
	if at == nil {
		return r.w.pick(n, r.seed+uint64(i)*7919), nil
	}
	var pos []int
	timeout := orDur(s.Timeout, 30*time.Second)
	ok, err := r.w.waitFor(ctx, timeout, func() bool {
		pos = pos[:0]
		for j, b := range r.w.statuses() {
			if at(b) {
				pos = append(pos, j)
			}
		}
		return len(pos) >= n
	})
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, fmt.Errorf("only %d devices were %s within %s, want %d", len(pos), s.When, timeout, n)
	}
	sort.Ints(pos)
	return pos[:n], nil
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
	sts := r.w.statuses()
	var out []string
	for _, p := range pos {
		out = append(out, sts[p].Name)
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
		d, ok := r.w.emu().DeviceByName(n)
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
	s := r.w.emu()
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

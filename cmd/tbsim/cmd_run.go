package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/internal/report"
	"github.com/tbsim/tbsim/internal/verdict"
	"github.com/tbsim/tbsim/sim"
	"github.com/tbsim/tbsim/tbemu"
)

type runOptions struct {
	devices           int
	duration          time.Duration
	ramp              string
	seed              uint64
	shard             string
	stateDir          string
	server            string
	provisionKey      string
	provisionSecret   string
	caFile            string
	insecure          bool
	certFile, keyFile string
	sourceIPs         []string
	telemetryInterval time.Duration
	fwTitle           string
	fwVersion         string
	otaFile           string
	otaVersion        string
	otaTitle          string
	otaAfter          time.Duration
	otaPackSize       int
	otaPackInterval   time.Duration
	listen            string
	metrics           string
	jsonFile          string
	console           string
	wifiConnect       string
	thresholds        []string
	abortOnFail       bool
	resetState        bool
	writeAhead        bool
	acceptOtherTitle  bool
	chunkSize         int
	maxInFlight       int
}

func (o *runOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.SortFlags = false
	f.IntVar(&o.devices, "devices", 500, "number of devices (in the whole fleet when sharded)")
	f.DurationVar(&o.duration, "duration", 0, "stop after this long (0: run until Ctrl-C)")
	f.StringVar(&o.ramp, "ramp", "2000/s", "connection ramp-up rate, devices per second (N/s)")
	f.Uint64Var(&o.seed, "seed", 1, "fleet seed: identities, Wi-Fi values, jitter")
	f.StringVar(&o.shard, "shard", "", "run slice i of n of the fleet's identities (i/n, 0-based)")
	f.StringVar(&o.stateDir, "state-dir", "tbsim-state", "fleet state (NVS, flash); a second run reconnects with stored tokens")
	f.BoolVar(&o.resetState, "reset-state", false, "delete the state dir's files first: every device starts over and provisions again")
	f.StringVar(&o.server, "server", "", "ThingsBoard MQTT address, mqtt://host:1883 or mqtts://host:8883 (default: embedded server)")
	f.StringVar(&o.provisionKey, "provision-key", "", "device profile provision key (env "+envProvisionKey+"; embedded: automatic)")
	f.StringVar(&o.provisionSecret, "provision-secret", "", "device profile provision secret (env "+envProvisionSecret+"; embedded: automatic)")
	f.StringVar(&o.caFile, "ca-file", "", "PEM CA certificates for mqtts")
	f.BoolVar(&o.insecure, "insecure-skip-verify", false, "do not verify the server certificate (mqtts)")
	f.StringVar(&o.certFile, "cert", "", "client certificate (PEM) for mqtts")
	f.StringVar(&o.keyFile, "key", "", "client key (PEM) for mqtts")
	f.StringSliceVar(&o.sourceIPs, "source-ip", nil, "local addresses to dial from, in turn (comma-separated)")
	f.DurationVar(&o.telemetryInterval, "telemetry-interval", 5*time.Second, "telemetry period of every device")
	f.StringVar(&o.fwTitle, "fw-title", "CORE_ESP32", "title of the initial firmware image")
	f.StringVar(&o.fwVersion, "fw-version", "1.0.0", "version of the initial firmware image")
	f.StringVar(&o.otaFile, "ota", "", "embedded server: roll out this firmware .bin mid-run (see tbsim firmware build)")
	f.StringVar(&o.otaVersion, "ota-version", "", "version of the --ota firmware; with --server, the version an external rollout installs (for ota.success)")
	f.StringVar(&o.otaTitle, "ota-title", "", "title of the --ota firmware (default: --fw-title)")
	f.DurationVar(&o.otaAfter, "ota-after", 30*time.Second, "when to assign the --ota firmware, after start")
	f.IntVar(&o.otaPackSize, "ota-pack-size", 100, "embedded server's OTA queue: devices started per pack (ThingsBoard: 100)")
	f.DurationVar(&o.otaPackInterval, "ota-pack-interval", time.Second, "embedded server's OTA queue: time between packs (ThingsBoard: 60s)")
	f.StringVar(&o.listen, "listen", "", "also expose the embedded server's MQTT on this TCP address (e.g. :1883)")
	f.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on this address (e.g. :9100)")
	f.StringVar(&o.jsonFile, "json", "", "write the summary as JSON to this file")
	f.StringVar(&o.console, "console", "", "stream this device's serial log (its MAC) to stderr")
	f.StringVar(&o.wifiConnect, "wifi-connect", "1s-5s", "Wi-Fi connect time range, min-max")
	f.IntVar(&o.chunkSize, "chunk-size", 4096, "firmware: bytes per OTA chunk request (the Arduino SDK asks 4096; 0 = the whole file; at most 65536)")
	f.BoolVar(&o.acceptOtherTitle, "accept-other-title", false, "firmware option: download an assignment whose fw_title differs from the running image's (the Arduino SDK reports it FAILED)")
	f.BoolVar(&o.writeAhead, "write-ahead-token", false, "firmware option: choose the access token and keep it in NVS before provisioning, so a lost answer does not strand the device")
	f.StringArrayVar(&o.thresholds, "threshold", nil, "pass/fail criterion METRIC OP VALUE, e.g. 'provision.p95<2s', 'errors==0', 'online>=99%' (repeatable; exit 3 when one fails)")
	f.BoolVar(&o.abortOnFail, "abort-on-fail", false, "stop the run as soon as a threshold fails that can no longer recover (such as errors==0)")
	f.IntVar(&o.maxInFlight, "max-inflight", 0, "connection handshakes in flight: 0 adapts the limit to tbsim's own load, N fixes it, -1 removes it")
}

func newRunCmd(e *env) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a simulated fleet",
		Long: `Run a fleet of simulated devices. Without --server it starts the embedded
ThingsBoard-compatible server in-process and connects the devices to it over
in-memory connections; with --server it load-tests a real ThingsBoard.`,
		Example: `  # 500 devices against the embedded server, until Ctrl-C
  tbsim run --devices 500

  # the same fleet, an update after 30 s, summary as JSON
  tbsim firmware build --version 1.1.0 -o fw.bin
  tbsim run --devices 500 --duration 5m --ota fw.bin --ota-version 1.1.0 --json summary.json

  # load-test a ThingsBoard: shard 0 of 4 of a 20,000-device fleet
  tbsim run --server mqtts://tb.example.com --provision-key K --provision-secret S \
    --devices 20000 --shard 0/4 --ramp 100/s`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runFleet(cmd.Context(), e, o) },
	}
	o.addFlags(cmd)
	return cmd
}

// parseThresholds reads every --threshold.
func parseThresholds(flags []string) ([]verdict.Threshold, error) {
	var ts []verdict.Threshold
	var errs []error
	for _, s := range flags {
		t, err := verdict.Parse(s)
		if err != nil {
			errs = append(errs, usageErr("--threshold %v", err))
			continue
		}
		ts = append(ts, t)
	}
	return ts, errors.Join(errs...)
}

// maxDevices bounds --devices: beyond it the fleet's own memory is the limit.
const maxDevices = 10_000_000

func parseRamp(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "/s"), 64)
	if err != nil || v <= 0 || v > 1e6 {
		return 0, usageErr("--ramp %q: want a positive rate up to 1000000/s, such as 200/s", s)
	}
	return v, nil
}

func parseRange(flag, s string) (time.Duration, time.Duration, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := time.ParseDuration(a)
	hi, err2 := time.ParseDuration(b)
	if !ok || err1 != nil || err2 != nil || lo < 0 || hi < lo || hi > time.Minute {
		return 0, 0, usageErr("--%s %q: want min-max durations up to 1m, such as 1s-5s", flag, s)
	}
	return lo, hi, nil
}

// build turns the flags into fleet options, checking every flag.
func (o *runOptions) build() (sim.Options, error) {
	var errs []error
	if o.devices <= 0 || o.devices > maxDevices {
		errs = append(errs, usageErr("--devices %d: want a positive number up to %d", o.devices, maxDevices))
	}
	inRange := func(flag string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			errs = append(errs, usageErr("--%s %s: want %s to %s", flag, d, lo, hi))
		}
	}
	inRange("telemetry-interval", o.telemetryInterval, 100*time.Millisecond, 24*time.Hour)
	inRange("ota-after", o.otaAfter, 0, 24*time.Hour)
	inRange("ota-pack-interval", o.otaPackInterval, time.Millisecond, 24*time.Hour)
	if o.otaPackSize < 1 || o.otaPackSize > 1_000_000 {
		errs = append(errs, usageErr("--ota-pack-size %d: want 1 to 1000000", o.otaPackSize))
	}
	if o.duration < 0 {
		errs = append(errs, usageErr("--duration %s: want a positive duration, or 0 to run until Ctrl-C", o.duration))
	}
	if o.maxInFlight < -1 {
		errs = append(errs, usageErr("--max-inflight %d: want 0 (adaptive), a positive limit, or -1 (none)", o.maxInFlight))
	}
	if ths, err := parseThresholds(o.thresholds); err != nil {
		errs = append(errs, err)
	} else {
		for _, t := range ths {
			// Refused now rather than judged as 0 at the end: the metric is
			// unknown against an external server, or without a target.
			if o.server != "" && verdict.NeedsEmbedded(t.Metric) {
				errs = append(errs, usageErr("--threshold %s: %s is counted by the embedded server; with --server it is unknown", t.Text, t.Metric))
			}
			if t.Metric == "ota.success" && o.otaVersion == "" {
				errs = append(errs, usageErr("--threshold %s: ota.success needs --ota-version (the version the rollout installs; with --server, the one tbsim ota push sends)", t.Text))
			}
		}
	}
	ramp, err := parseRamp(o.ramp)
	errs = append(errs, err)
	var shard sim.Shard
	if o.shard != "" {
		if shard, err = sim.ParseShard(o.shard); err != nil {
			errs = append(errs, usageErr("--shard: %v", err))
		} else if lo, hi := shard.Range(o.devices); o.devices > 0 && lo == hi {
			errs = append(errs, usageErr("--shard %s of a %d-device fleet has no devices: use at most %d shards", o.shard, o.devices, o.devices))
		}
	}
	lo, hi, err := parseRange("wifi-connect", o.wifiConnect)
	errs = append(errs, err)
	if o.server != "" && (o.provisionKey == "" || o.provisionSecret == "") {
		errs = append(errs, usageErr("--server needs --provision-key and --provision-secret (the device profile's provisioning credentials)"))
	}
	if o.server != "" && (o.otaFile != "" || o.listen != "") {
		errs = append(errs, usageErr("--ota and --listen apply to the embedded server; with --server use tbsim ota push --url"))
	}
	if o.otaFile != "" && o.otaVersion == "" {
		errs = append(errs, usageErr("--ota needs --ota-version"))
	}
	fw := firmware.Defaults()
	fw.Title, fw.Version, fw.TelemetryInterval = o.fwTitle, o.fwVersion, o.telemetryInterval
	fw.Server = sim.ServerHost(o.server)
	fw.ProvisionKey, fw.ProvisionSecret = o.provisionKey, o.provisionSecret
	fw.WriteAheadToken = o.writeAhead
	fw.AcceptOtherTitle = o.acceptOtherTitle
	fw.ChunkSize = o.chunkSize
	if err := fw.Validate(); err != nil {
		errs = append(errs, &exitError{ExitUsage, err})
	}
	if err := errors.Join(errs...); err != nil {
		return sim.Options{}, &exitError{ExitUsage, err}
	}
	return sim.Options{
		Devices: o.devices, Seed: o.seed, Shard: shard, Ramp: ramp, Firmware: fw,
		WiFi: device.WiFiConfig{ConnectMin: lo, ConnectMax: hi}, StateDir: o.stateDir, MaxInFlight: o.maxInFlight,
	}, nil
}

func runFleet(ctx context.Context, e *env, o *runOptions) error {
	opts, err := o.build()
	if err != nil {
		return err
	}
	thresholds, _ := parseThresholds(o.thresholds) // checked by build
	if o.jsonFile != "" {
		// Checked before the run, not after: an hour's run must not end in
		// "cannot write the report".
		if err := checkWritable(o.jsonFile); err != nil {
			return &exitError{ExitUsage, fmt.Errorf("--json: %w", err)}
		}
	}
	var consoleName string
	if o.console != "" {
		mac, err := device.ParseMAC(o.console)
		if err != nil {
			return &exitError{ExitUsage, fmt.Errorf("--console: %w", err)}
		}
		consoleName = mac.String()
	}

	if o.stateDir != "" {
		unlock, err := sim.LockStateDir(o.stateDir)
		if err != nil {
			return err
		}
		defer unlock()
		if o.resetState {
			if err := sim.ResetState(o.stateDir); err != nil {
				return err
			}
		}
		if err := sim.CheckState(o.stateDir); err != nil {
			return err
		}
	}

	// The live view owns stderr on a terminal: log records and serial lines
	// are printed above its block.
	var view *termView
	stderr := e.stderr
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		view = newTermView(f, terminalWidth(f))
		stderr = view
		e.log = slog.New(slog.NewTextHandler(view, &slog.HandlerOptions{Level: e.logLevel}))
	}
	opts.Logger = e.log

	var emu *tbemu.Server
	serverName := o.server
	if o.server == "" {
		// The embedded server keeps its devices and tokens in the state dir too,
		// so a second run reconnects with the stored tokens.
		var statePath string
		if o.stateDir != "" {
			if err := os.MkdirAll(o.stateDir, 0o755); err != nil {
				return err
			}
			statePath = filepath.Join(o.stateDir, "server.db")
		}
		emu, err = tbemu.New(tbemu.Options{MQTTAddr: o.listen, StatePath: statePath, Logger: e.log,
			OTAPackSize: o.otaPackSize, OTAPackInterval: o.otaPackInterval})
		if err != nil {
			return err
		}
		prof, _ := emu.DefaultProfile()
		opts.Firmware.ProvisionKey, opts.Firmware.ProvisionSecret = prof.ProvisionKey, prof.ProvisionSecret
		opts.Dial = emu.Dial
		serverName = "embedded server"
		if o.listen != "" {
			serverName += " (also on " + emu.MQTTAddr() + ")"
		}
	} else {
		opts.Dial, err = sim.NewDialer(sim.TransportOptions{Server: o.server, CAFile: o.caFile, Insecure: o.insecure,
			CertFile: o.certFile, KeyFile: o.keyFile, SourceIPs: o.sourceIPs})
		if err != nil {
			return &exitError{ExitUsage, err}
		}
	}
	closeEmu := func() error {
		if emu == nil {
			return nil
		}
		return emu.Close()
	}
	var otaData []byte
	var otaPkg tbemu.Package
	if o.otaFile != "" {
		if otaData, err = os.ReadFile(o.otaFile); err != nil {
			return errors.Join(&exitError{ExitUsage, fmt.Errorf("--ota: %w", err)}, closeEmu())
		}
		if _, err := espimage.Parse(otaData, espimage.ESP32S3); err != nil {
			e.log.Warn("the --ota file is not a valid ESP32-S3 image: devices will reject it", "error", err)
		}
		// Stored now, assigned at --ota-after: a run killed mid-rollout can be
		// started again with the same flags (the package is reused, the queue
		// resumes), and other bytes under the same version fail here, not later.
		if otaPkg, err = ensureOTAPackage(e, emu, o, otaData); err != nil {
			return errors.Join(err, closeEmu())
		}
	}
	if consoleName != "" {
		var mu sync.Mutex
		opts.OnLine = func(dev string, l device.Line) {
			if dev == consoleName {
				mu.Lock()
				fmt.Fprintf(stderr, "%s [%s] %s\n", l.Time.Format("15:04:05.000"), dev, l.Text)
				mu.Unlock()
			}
		}
	}
	fleet, err := sim.NewContext(ctx, opts) // Ctrl-C while a large fleet is built stops it
	if err != nil {
		return errors.Join(err, closeEmu())
	}
	if consoleName != "" {
		if _, ok := fleet.Board(consoleName); !ok {
			fleet.Close()
			return errors.Join(usageErr("--console %s: no such device in this fleet%s (tbsim devices ls lists the names; --seed and --devices decide them)",
				consoleName, shardNote(o.shard)), closeEmu())
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	var wg sync.WaitGroup
	emuDone := make(chan error, 1)
	emuCtx, stopEmu := context.WithCancel(context.Background())
	defer stopEmu()
	if emu != nil {
		go func() { emuDone <- emu.Run(emuCtx) }()
	}
	if o.metrics != "" {
		srv, err := serveMetrics(o.metrics, fleet)
		if err != nil {
			fleet.Close()
			stopEmu()
			return errors.Join(&exitError{ExitUsage, err}, <-emuDone)
		}
		defer srv.Close()
	}
	if otaData != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-runCtx.Done():
				return
			case <-time.After(o.otaAfter):
			}
			if err := rollOut(emu, otaPkg); err != nil {
				e.log.Error("OTA rollout failed", "error", err)
			}
		}()
	}
	extra := func() verdict.Extra {
		x := verdict.Extra{Target: o.otaVersion}
		if emu != nil {
			st := emu.Stats()
			x.ServerTelemetry, x.ServerRateLimited = &st.TelemetryMsgs, &st.RateLimited
		}
		return x
	}
	var aborted atomic.Pointer[string]
	if o.abortOnFail && len(thresholds) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
				}
				v := verdict.FromSnapshot(fleet.Snapshot(), extra())
				for _, th := range thresholds {
					if th.Final(v) {
						why := fmt.Sprintf("aborted: threshold %q failed (measured %s) and can no longer recover", th.Text, th.Format(th.Measure(v)))
						aborted.Store(&why)
						cancel()
						return
					}
				}
			}
		}()
	}
	progress := report.Progress{Duration: o.duration, Ramp: opts.Ramp}
	wg.Add(1)
	go func() {
		defer wg.Done()
		liveView(runCtx, e.stderr, view, fleet, progress)
	}()

	err = fleet.Run(runCtx)
	wg.Wait()
	sum := report.NewSummary(o.seed, serverName, fleet.Snapshot())
	sum.FleetDevices, sum.OTATarget = o.devices, o.otaVersion
	if opts.Shard.Count > 0 {
		sum.Shard = opts.Shard
	}
	if emu != nil {
		sum.OTA = map[string]map[string]int{}
		for id, states := range emu.OTAProgress() {
			if p, ok := emu.Package(id); ok {
				sum.OTA[p.Title+" "+p.Version] = states
			}
		}
		st := emu.Stats()
		sum.ServerCounts = &report.ServerCounts{Telemetry: st.TelemetryMsgs, RateLimited: st.RateLimited}
	}
	if emu != nil {
		stopEmu()
		err = errors.Join(err, <-emuDone)
	}
	sum.Thresholds, _ = verdict.CheckAll(thresholds, verdict.FromSnapshot(sum.Snap, sum.Extra()))
	sum.ExitCode, sum.Reason = judge(sum, aborted.Load(), err)
	if err != nil {
		sum.RuntimeError = err.Error()
	}
	report.WriteText(e.stdout, sum)
	if o.jsonFile != "" {
		if werr := writeJSONFile(o.jsonFile, sum); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	switch {
	case err != nil:
		return err
	case sum.ExitCode != ExitOK:
		return &exitError{sum.ExitCode, errors.New(sum.Reason)}
	}
	return nil
}

// judge decides the run's exit code, in this order: a runtime error (1); no
// device ever online while failures were counted, i.e. the server was
// unreachable or refused everyone for the whole run (1); a failed threshold
// (3); otherwise 0.
func judge(s report.Summary, aborted *string, err error) (int, string) {
	sn := s.Snap
	failed := 0
	for _, r := range s.Thresholds {
		if !r.Passed {
			failed++
		}
	}
	switch {
	case err != nil:
		return ExitRuntime, "runtime error: " + err.Error()
	case !sn.EverOnline && sn.ErrorTotal > 0:
		top := sn.Errors[0]
		return ExitRuntime, fmt.Sprintf("no device ever came online in %s: %d of %d started devices failed; top cause: %d × %s (e.g. %s)",
			s.Duration.Round(time.Second), sn.Started, sn.Devices, top.Count, top.Text, top.Example)
	case aborted != nil:
		return ExitExpected, *aborted
	case failed > 0:
		return ExitExpected, fmt.Sprintf("%d of %d thresholds failed", failed, len(s.Thresholds))
	case len(s.Thresholds) > 0:
		return ExitOK, fmt.Sprintf("all %d thresholds passed", len(s.Thresholds))
	}
	return ExitOK, ""
}

func shardNote(shard string) string {
	if shard == "" {
		return ""
	}
	return " or not in shard " + shard
}

// checkWritable makes sure path can be written, creating it if needed.
func checkWritable(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

func rollOut(emu *tbemu.Server, pkg tbemu.Package) error {
	prof, _ := emu.DefaultProfile()
	return emu.AssignProfileFirmware(prof.ID, pkg.ID)
}

func writeJSONFile(path string, s report.Summary) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	if err := report.WriteJSON(f, s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func serveMetrics(addr string, fleet *sim.Fleet) (*http.Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", report.MetricsHandler(report.NewRegistry(fleet.Snapshot)))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return srv, nil
}

// liveView refreshes the block on a terminal every second, or prints one
// line every 5 s otherwise: never one line per device or per event.
func liveView(ctx context.Context, w io.Writer, view *termView, fleet *sim.Fleet, p report.Progress) {
	every := 5 * time.Second
	if view != nil {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	prev := fleet.Snapshot()
	for {
		select {
		case <-ctx.Done():
			if view != nil {
				view.Close()
			}
			return
		case <-t.C:
			s := fleet.Snapshot()
			p.Rates = report.IntervalRates(prev, s)
			prev = s
			if view == nil {
				fmt.Fprintln(w, report.Line(s, p))
				continue
			}
			view.Update(report.Live(s, p))
		}
	}
}

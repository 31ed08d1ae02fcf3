package tbdiff

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tbsim/tbsim/tbemu"
)

// The environment TestDifferential reads. Only the ThingsBoard address is
// required; without it the test skips.
//
//	TBSIM_THINGSBOARD_MQTT      host:port of ThingsBoard's MQTT transport
//	TBSIM_THINGSBOARD_HTTP      its REST base URL (http://host:8080)
//	TBSIM_THINGSBOARD_USER      tenant administrator (tenant@thingsboard.org)
//	TBSIM_THINGSBOARD_PASSWORD  (tenant)
//	TBSIM_EMULATOR_MQTT, _HTTP, _USER, _PASSWORD
//	                            a running tbsim server to compare instead of
//	                            the in-process emulator (configured alike)
//	TBSIM_DIFF_RATE_LIMIT       N: ThingsBoard's tenant profile limits a device
//	                            to N messages per second ("N:1"); runs the
//	                            rate-limit sequence
//	TBSIM_DIFF_INACTIVITY       a duration: ThingsBoard runs with
//	                            TB_TRANSPORT_SESSIONS_INACTIVITY_TIMEOUT at it;
//	                            runs the idle sequence
//	TBSIM_DIFF_OTA_PACK         SIZE/INTERVAL of ThingsBoard's OTA queue (100/60s)
//	TBSIM_DIFF_FAST             1: skip the sequences that wait a minute
//	TBSIM_DIFF_ONLY             a regular expression of sequence names
//	TBSIM_DIFF_RECORD           write ThingsBoard's transcripts to this file
//	                            (the recording TestEmulatorMatchesRecording reads)
func TestDifferential(t *testing.T) {
	tbMQTT := os.Getenv("TBSIM_THINGSBOARD_MQTT")
	if tbMQTT == "" {
		t.Skip("no ThingsBoard to compare with: set TBSIM_THINGSBOARD_MQTT and TBSIM_THINGSBOARD_HTTP")
	}
	p, err := paramsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tb, err := Prepare(ctx, "thingsboard", tbMQTT, envOr("TBSIM_THINGSBOARD_HTTP", "http://127.0.0.1:8080"),
		envOr("TBSIM_THINGSBOARD_USER", "tenant@thingsboard.org"), envOr("TBSIM_THINGSBOARD_PASSWORD", "tenant"), p)
	if err != nil {
		t.Fatal(err)
	}
	var emu *Target
	if addr := os.Getenv("TBSIM_EMULATOR_MQTT"); addr != "" {
		emu, err = Prepare(ctx, "emulator", addr, envOr("TBSIM_EMULATOR_HTTP", "http://127.0.0.1:8080"),
			envOr("TBSIM_EMULATOR_USER", "tenant@thingsboard.org"), envOr("TBSIM_EMULATOR_PASSWORD", "tenant"), p)
	} else {
		emu, err = startEmulator(t, p)
	}
	if err != nil {
		t.Fatal(err)
	}
	seqs := selected(t, p)
	// Both servers at once: the slow sequences spend their time waiting.
	var tbOut, emuOut [][]string
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); tbOut = runAll(ctx, tb, seqs) }()
	go func() { defer wg.Done(); emuOut = runAll(ctx, emu, seqs) }()
	wg.Wait()
	if path := os.Getenv("TBSIM_DIFF_RECORD"); path != "" {
		if err := writeRecording(path, p, seqs, tbOut); err != nil {
			t.Fatal(err)
		}
	}
	for i, sq := range seqs {
		t.Run(sq.Name, func(t *testing.T) {
			t.Logf("thingsboard:\n%s", strings.Join(tbOut[i], "\n"))
			if d := Diff("thingsboard", tbOut[i], "emulator", emuOut[i]); d != "" {
				t.Errorf("the emulator differs:\n%s", d)
			}
		})
	}
}

// TestEmulatorMatchesRecording runs the sequences against the in-process
// emulator and compares them with what ThingsBoard 4.3.1.3 answered when
// recorded (testdata/), so the emulator stays ThingsBoard's double where no
// ThingsBoard runs. The minute-long timings run scaled down: they are
// compared as shares of each server's own setting.
func TestEmulatorMatchesRecording(t *testing.T) {
	rec, err := readRecording("testdata/thingsboard-4.3.1.3.txt")
	if err != nil {
		t.Fatalf("the recording: %v", err)
	}
	if testing.Short() {
		t.Skip("about 15 s of sequences")
	}
	// Durations a tenth of ThingsBoard's: timings are compared as shares of
	// each server's own setting, to a tenth (a half for the idle timeout).
	p := rec.params
	p.Quiet = 300 * time.Millisecond
	scale := func(d time.Duration) time.Duration { return d / 10 }
	p.ProvisionCloseAfter = scale(p.ProvisionCloseAfter)
	p.ClientRPCTimeout = scale(p.ClientRPCTimeout)
	p.OTAPackInterval = scale(p.OTAPackInterval)
	p.Inactivity = scale(p.Inactivity)
	// ThingsBoard ran the idle and rate-limit sequences with its inactivity
	// timeout and rate limit set, the others without: two emulators alike.
	limited := map[string]bool{"idle-timeout": true, "rate-limit": true}
	plain := p
	plain.Inactivity, plain.RateLimit = 0, 0
	emuPlain, err := startEmulator(t, plain)
	if err != nil {
		t.Fatal(err)
	}
	emuLimited, err := startEmulator(t, p)
	if err != nil {
		t.Fatal(err)
	}
	var plainSeqs, limitedSeqs []Sequence
	for _, sq := range Sequences {
		if _, ok := rec.transcripts[sq.Name]; !ok {
			continue
		}
		if limited[sq.Name] {
			limitedSeqs = append(limitedSeqs, sq)
		} else {
			plainSeqs = append(plainSeqs, sq)
		}
	}
	var outPlain, outLimited [][]string
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); outPlain = runAll(context.Background(), emuPlain, plainSeqs) }()
	go func() { defer wg.Done(); outLimited = runAll(context.Background(), emuLimited, limitedSeqs) }()
	wg.Wait()
	check := func(seqs []Sequence, out [][]string) {
		for i, sq := range seqs {
			t.Run(sq.Name, func(t *testing.T) {
				if d := Diff("thingsboard 4.3.1.3 (recorded)", rec.transcripts[sq.Name], "emulator", out[i]); d != "" {
					t.Errorf("the emulator differs from the recording:\n%s", d)
				}
			})
		}
	}
	check(plainSeqs, outPlain)
	check(limitedSeqs, outLimited)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func paramsFromEnv() (Params, error) {
	p := TBDefaults
	if v := os.Getenv("TBSIM_DIFF_RATE_LIMIT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, fmt.Errorf("TBSIM_DIFF_RATE_LIMIT: %v", err)
		}
		p.RateLimit = n
	}
	if v := os.Getenv("TBSIM_DIFF_INACTIVITY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return p, fmt.Errorf("TBSIM_DIFF_INACTIVITY: %v", err)
		}
		p.Inactivity = d
	}
	if v := os.Getenv("TBSIM_DIFF_OTA_PACK"); v != "" {
		size, interval, ok := strings.Cut(v, "/")
		n, err1 := strconv.Atoi(size)
		d, err2 := time.ParseDuration(interval)
		if !ok || err1 != nil || err2 != nil {
			return p, fmt.Errorf("TBSIM_DIFF_OTA_PACK %q: want SIZE/INTERVAL, e.g. 100/60s", v)
		}
		p.OTAPackSize, p.OTAPackInterval = n, d
	}
	p.Slow = os.Getenv("TBSIM_DIFF_FAST") == ""
	return p, nil
}

func selected(t *testing.T, p Params) []Sequence {
	var re *regexp.Regexp
	if v := os.Getenv("TBSIM_DIFF_ONLY"); v != "" {
		re = regexp.MustCompile(v)
	}
	var out []Sequence
	for _, sq := range Sequences {
		if (sq.Slow && !p.Slow) || (re != nil && !re.MatchString(sq.Name)) {
			continue
		}
		out = append(out, sq)
	}
	if len(out) == 0 {
		t.Skip("no sequence selected")
	}
	return out
}

// runAll runs the sequences concurrently (the slow ones spend their time
// waiting) and returns their transcripts in order.
func runAll(ctx context.Context, tg *Target, seqs []Sequence) [][]string {
	out := make([][]string, len(seqs))
	var wg sync.WaitGroup
	for i, sq := range seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = RunSequence(ctx, tg, sq)
		}()
	}
	wg.Wait()
	return out
}

// startEmulator runs tbemu in-process on loopback, configured as p says
// ThingsBoard is.
func startEmulator(t *testing.T, p Params) (*Target, error) {
	srv, err := tbemu.New(tbemu.Options{
		MQTTAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		ProvisionCloseAfter: p.ProvisionCloseAfter, ClientRPCTimeout: p.ClientRPCTimeout,
		OTAPackSize: p.OTAPackSize, OTAPackInterval: p.OTAPackInterval,
		InactivityTimeout: p.Inactivity, TelemetryHistory: 100, MaxConnections: -1,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(5 * time.Second); strings.HasSuffix(srv.MQTTAddr(), ":0") || srv.MQTTAddr() == "" || srv.HTTPAddr() == ""; {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("emulator did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tg, err := Prepare(context.Background(), "emulator", srv.MQTTAddr(), "http://"+srv.HTTPAddr(), "tenant@thingsboard.org", "tenant", p)
	if err != nil {
		return nil, err
	}
	if p.RateLimit > 0 {
		// ThingsBoard limits devices in the tenant profile; the emulator per
		// device profile.
		prof, _ := srv.Profile(tg.ProfileID)
		prof.RateLimit = float64(p.RateLimit)
		if _, err := srv.UpdateProfile(prof); err != nil {
			return nil, err
		}
	}
	return tg, nil
}

type recording struct {
	params      Params
	transcripts map[string][]string
}

// The recording format: "# param NAME VALUE" lines, then per sequence
// "## NAME" and its transcript lines.
func writeRecording(path string, p Params, seqs []Sequence, out [][]string) error {
	var sb strings.Builder
	sb.WriteString("# Transcripts of ThingsBoard's answers to the tbdiff sequences (go test ./internal/tbdiff -run TestDifferential with TBSIM_DIFF_RECORD).\n")
	fmt.Fprintf(&sb, "# param provision_close %s\n# param client_rpc_timeout %s\n# param ota_pack %d/%s\n# param inactivity %s\n# param rate_limit %d\n",
		p.ProvisionCloseAfter, p.ClientRPCTimeout, p.OTAPackSize, p.OTAPackInterval, p.Inactivity, p.RateLimit)
	for i, sq := range seqs {
		fmt.Fprintf(&sb, "## %s\n", sq.Name)
		for _, l := range out[i] {
			sb.WriteString(l + "\n")
		}
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

func readRecording(path string) (*recording, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &recording{params: TBDefaults, transcripts: map[string][]string{}}
	var cur string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "# param "):
			f := strings.Fields(l)
			if len(f) != 4 {
				return nil, fmt.Errorf("%s: bad line %q", path, l)
			}
			var err error
			switch f[2] {
			case "provision_close":
				r.params.ProvisionCloseAfter, err = time.ParseDuration(f[3])
			case "client_rpc_timeout":
				r.params.ClientRPCTimeout, err = time.ParseDuration(f[3])
			case "ota_pack":
				size, iv, _ := strings.Cut(f[3], "/")
				r.params.OTAPackSize, err = strconv.Atoi(size)
				if err == nil {
					r.params.OTAPackInterval, err = time.ParseDuration(iv)
				}
			case "inactivity":
				r.params.Inactivity, err = time.ParseDuration(f[3])
			case "rate_limit":
				r.params.RateLimit, err = strconv.Atoi(f[3])
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %q: %v", path, l, err)
			}
		case strings.HasPrefix(l, "# "):
		case strings.HasPrefix(l, "## "):
			cur = strings.TrimPrefix(l, "## ")
			r.transcripts[cur] = []string{}
		case cur != "":
			r.transcripts[cur] = append(r.transcripts[cur], l)
		}
	}
	return r, nil
}

package seedlog_test

import (
	"context"
	"flag"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/internal/seedlog"
	"github.com/tbsim/tbsim/sim"
	"github.com/tbsim/tbsim/tbemu"
	"github.com/tbsim/tbsim/tbemu/core"
	"github.com/tbsim/tbsim/tbemu/direct"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the TCP run")

// The line that ends a boot's transcript: the first telemetry, as in the
// seed's subsequent-boot transcript.
const lastLine = "[TELEMETRY] Data sent to ThingsBoard"

// boots is one device's first and subsequent boot, masked.
type boots struct{ first, subsequent []string }

// check holds a run to the golden files (the whole transcript, additions at
// their places) and to the seed's own lines.
func check(t *testing.T, b boots) {
	t.Helper()
	for _, c := range []struct {
		file string
		log  []string
		seed []string
	}{
		{"first-boot.golden", b.first, append(append([]string(nil), seedlog.FirstBoot...), seedlog.Online()...)},
		{"subsequent-boot.golden", b.subsequent, seedlog.SubsequentBoot},
	} {
		require.NoError(t, seedlog.Compare(c.log, c.seed), c.file)
		path := filepath.Join("testdata", c.file)
		if *update {
			require.NoError(t, os.WriteFile(path, []byte(strings.Join(c.log, "\n")+"\n"), 0o644))
		}
		golden, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, string(golden), strings.Join(c.log, "\n")+"\n", "%s (go test -update rewrites it)", c.file)
	}
}

// The golden files are the seed's lines plus listed additions only: an
// -update cannot slip in a line the seed does not print.
func TestGoldenFilesAreTheSeeds(t *testing.T) {
	for file, seed := range map[string][]string{
		"first-boot.golden":      append(append([]string(nil), seedlog.FirstBoot...), seedlog.Online()...),
		"subsequent-boot.golden": seedlog.SubsequentBoot,
	} {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		require.NoError(t, err)
		require.NoError(t, seedlog.Compare(strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"), seed), file)
	}
}

// recorder collects a board's serial lines until the boot's last line.
type recorder struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func newRecorder() *recorder { return &recorder{done: make(chan struct{})} }

func (r *recorder) line(text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.done:
		return // the boot's transcript is complete
	default:
	}
	r.lines = append(r.lines, text)
	if text == lastLine {
		close(r.done)
	}
}

func (r *recorder) wait(t *testing.T) []string {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.mu.Lock()
		defer r.mu.Unlock()
		require.FailNow(t, "no telemetry within 30 s", strings.Join(r.lines, "\n"))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// bootOnce powers a board on, records its serial log up to the first
// telemetry, and powers it off (a new Board on the same NVS is the next boot).
func bootOnce(t *testing.T, o device.BoardOptions) []string {
	t.Helper()
	rec := newRecorder()
	o.OnLine = func(l device.Line) { rec.line(l.Text) }
	b, err := device.NewBoard(o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	lines := rec.wait(t)
	cancel()
	<-done
	return lines
}

func maskAll(m seedlog.Mask, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = m.Apply(l)
	}
	return out
}

// One device's first and subsequent boot through the real parts: the Board
// (paho, the firmware, flash and NVS models) against the embedded server
// (tbemu: mochi and the emulator core), over a loopback socket and over an
// in-memory pipe.
func TestSeedTranscriptsRealTime(t *testing.T) {
	for _, transport := range []string{"tcp", "pipe"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			opts := tbemu.Options{}
			if transport == "tcp" {
				opts.MQTTAddr = "127.0.0.1:0"
			}
			emu, err := tbemu.New(opts)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan struct{})
			go func() { emu.Run(ctx); close(served) }()
			t.Cleanup(func() { cancel(); <-served })

			fw := firmware.Defaults()
			prof, _ := emu.DefaultProfile()
			fw.ProvisionKey, fw.ProvisionSecret = prof.ProvisionKey, prof.ProvisionSecret
			dial := device.Dialer(emu.Dial)
			fw.Server = "embedded"
			if transport == "tcp" {
				addr := emu.MQTTAddr()
				fw.Server, _, _ = net.SplitHostPort(addr)
				dial = func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "tcp", addr) }
			}
			factory, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: fw.Title, Version: fw.Version, Size: 64 << 10})
			require.NoError(t, err)
			store := device.NewImageStore()
			id := device.NewIdentity(7, 0)
			nvs := device.NewMemNVS()
			o := device.BoardOptions{
				Identity: id, Firmware: fw, NVS: nvs, Store: store, Factory: store.Add(factory), Dial: dial,
				WiFi:     device.WiFiConfig{ConnectMin: 10 * time.Millisecond, ConnectMax: 20 * time.Millisecond},
				BootTime: 10 * time.Millisecond,
			}
			o.Flash = device.NewFlash(store, espimage.ESP32S3, o.Factory, fw.Title, fw.Version)
			first := bootOnce(t, o)
			second := bootOnce(t, o)

			token, err := nvs.GetString(fw.NVSNamespace, "token")
			require.NoError(t, err)
			m := seedlog.Mask{MAC: id.Name(), Token: token, Server: fw.Server}
			check(t, boots{maskAll(m, first), maskAll(m, second)})
		})
	}
}

// The same device in virtual time: the firmware, the device models and the
// emulator core on one virtual clock (sim.NewVirtual wired to the core
// through tbemu/direct, as the scenario runner does). The golden files are
// the same: virtual time must not change what a device prints.
func TestSeedTranscriptsVirtual(t *testing.T) {
	s := sim.NewSched(sim.Epoch)
	c, err := core.New(core.Options{Clock: schedClock{s}, Rand: rand.NewPCG(7, 0)})
	require.NoError(t, err)
	defer c.Close()
	prof, _ := c.DefaultProfile()
	fw := firmware.Defaults()
	fw.Server = "embedded"
	fw.ProvisionKey, fw.ProvisionSecret = prof.ProvisionKey, prof.ProvisionSecret
	var lines []string
	telemetry := 0
	f, err := sim.NewVirtual(sim.VirtualOptions{
		Devices: 1, Seed: 7, Firmware: fw, Sched: s, Server: &directServer{d: direct.New(c)},
		OnLine: func(_ string, l device.Line) {
			if telemetry == 0 {
				lines = append(lines, l.Text)
			}
			if l.Text == lastLine {
				telemetry++
			}
		},
	})
	require.NoError(t, err)
	f.Start()
	require.True(t, s.RunUntil(s.Now().Add(time.Minute), func() bool { return telemetry > 0 }), "first boot: no telemetry\n%s", strings.Join(lines, "\n"))
	first := lines
	lines, telemetry = nil, 0
	f.PowerCycle([]int{0})
	require.True(t, s.RunUntil(s.Now().Add(time.Minute), func() bool { return telemetry > 0 }), "second boot: no telemetry\n%s", strings.Join(lines, "\n"))

	token, err := f.NVS(0).GetString(fw.NVSNamespace, "token")
	require.NoError(t, err)
	m := seedlog.Mask{MAC: f.Status(0).Name, Token: token, Server: fw.Server}
	check(t, boots{maskAll(m, first), maskAll(m, lines)})
}

func TestCompare(t *testing.T) {
	seed := []string{"a", "b", "c"}
	require.NoError(t, seedlog.Compare([]string{"a", "Reset reason: POWERON", "b", "[WIFI] Connecting...", "c"}, seed))
	for name, log := range map[string][]string{
		"missing":   {"a", "c"},
		"reordered": {"a", "c", "b"},
		"reworded":  {"a", "B", "c"},
		"extra":     {"a", "b", "x", "c"},
		"trailing":  {"a", "b", "c", "d"},
	} {
		require.Error(t, seedlog.Compare(log, seed), name)
	}
	m := seedlog.Mask{MAC: "24:0A:C4:00:00:01", Token: "A1b2C3d4E5f6G7h8I9j0", Server: "tb.example.com"}
	require.Equal(t, "[PROVISION] Device name: XX:XX:XX:XX:XX:XX", m.Apply("[PROVISION] Device name: 24:0A:C4:00:00:01"))
	require.Equal(t, "[NVS] Token loaded: xxxxxxxxxxxxxxxx", m.Apply("[NVS] Token loaded: A1b2C3d4E5f6G7h8I9j0"))
	require.Equal(t, "[NVS] Token loaded: OTHERTOKEN", m.Apply("[NVS] Token loaded: OTHERTOKEN"), "only the device's own token is masked")
	require.Equal(t, "[WIFI] Connected to tbsim, IP: <ip>, RSSI: <rssi> dBm", m.Apply("[WIFI] Connected to tbsim, IP: 10.1.2.3, RSSI: -57 dBm"))
}

// schedClock is sim.Sched as the core's clock.
type schedClock struct{ s *sim.Sched }

func (c schedClock) Now() time.Time                       { return c.s.Now() }
func (c schedClock) At(t time.Time, f func()) func() bool { return c.s.At(t, f).Stop }

// directServer is the emulator core's direct adapter as sim.Server.
type directServer struct{ d *direct.Server }

func (e *directServer) Connect(clientID, user, pass string, deliver func(string, []byte),
	closed func(firmware.LinkError, string)) (sim.ServerConn, byte) {
	conn := &directConn{deliver: deliver, closed: closed}
	s, code := e.d.Connect(conn, clientID, user, pass)
	if s == nil {
		return nil, code
	}
	return &directSession{d: e.d, s: s, conn: conn}, code
}

type directConn struct {
	deliver func(string, []byte)
	closed  func(firmware.LinkError, string)
	gone    bool
}

func (c *directConn) Deliver(topic string, payload []byte, _ byte) { c.deliver(topic, payload) }

func (c *directConn) Close(reason string) {
	c.gone = true
	c.closed(firmware.LinkClosed, reason)
}

type directSession struct {
	d    *direct.Server
	s    direct.Session
	conn *directConn
}

func (s *directSession) Publish(topic string, p []byte, qos byte) bool {
	return s.d.Publish(s.s, topic, p, qos)
}

func (s *directSession) Subscribe(filter string, qos byte) byte {
	return s.d.Subscribe(s.s, filter, qos)
}

func (s *directSession) Close() {
	if !s.conn.gone {
		s.conn.gone = true
		s.d.Disconnect(s.s)
	}
}

//go:build !tinygo

package mqtt_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/firmwaretest"
	"github.com/tbsim/tbsim/firmware/mqtt"
	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu"
)

// The behaviour a Session owes the firmware, checked against the embedded
// ThingsBoard over real TCP, with the real state machine driving the client
// from one loop (as esp32/cmd/fw does on the chip).

func startServer(t *testing.T) *tbemu.Server {
	t.Helper()
	s, err := tbemu.New(tbemu.Options{MQTTAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 5*time.Second, "the MQTT listener", func() bool {
		a := s.MQTTAddr()
		return a != "" && !strings.HasSuffix(a, ":0")
	})
	return s
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("no %s within %v", what, d)
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// tcpConn makes a net.Conn non-blocking for the client: a reader goroutine
// (owned by the test's stream, not by the client) queues what arrives.
type tcpConn struct {
	c    net.Conn
	mu   sync.Mutex
	data []byte
	err  error
}

func dialTCP(addr string) mqtt.DialFunc {
	return func() (mqtt.Conn, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		tc := &tcpConn{c: c}
		go tc.pump()
		return tc, nil
	}
}

func (t *tcpConn) pump() {
	buf := make([]byte, 4096)
	for {
		n, err := t.c.Read(buf)
		t.mu.Lock()
		t.data = append(t.data, buf[:n]...)
		if err != nil {
			t.err = err
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
}

func (t *tcpConn) Read(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := copy(p, t.data)
	t.data = t.data[n:]
	if n == 0 && t.err != nil {
		if errors.Is(t.err, net.ErrClosed) {
			return 0, errors.New("closed")
		}
		return 0, t.err
	}
	return n, nil
}

func (t *tcpConn) Write(p []byte) (int, error) { return t.c.Write(p) }
func (t *tcpConn) Close() error                { return t.c.Close() }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// device is the firmware with the MQTT client as its Session and the loop
// that drives both.
type device struct {
	m      *firmware.Machine
	c      *mqtt.Client
	nvs    *firmwaretest.MemNVS
	con    *firmwaretest.Console
	wifi   *firmwaretest.FakeWiFi
	next   time.Time
	events []firmware.Event
}

func newDevice(t *testing.T, s *tbemu.Server, mac string) *device {
	d := &device{nvs: firmwaretest.NewNVS(), con: &firmwaretest.Console{}, wifi: firmwaretest.NewWiFi()}
	d.wifi.Mac = mac
	d.c = mqtt.New(dialTCP(s.MQTTAddr()), wallClock{}, mqtt.Options{KeepAlive: 2 * time.Second})
	cfg := firmware.Defaults()
	cfg.ProvisionKey, cfg.ProvisionSecret = "tbsim-provision-key", "tbsim-provision-secret"
	cfg.TelemetryInterval = 200 * time.Millisecond
	m, err := firmware.New(cfg, firmware.Ports{
		Clock: wallClock{}, NVS: d.nvs, Session: d.c, OTA: &firmwaretest.MemOTA{SlotSize: 1 << 20},
		WiFi: d.wifi, Sensor: &firmwaretest.FixedSensor{C: 12.5}, Rand: &firmwaretest.SeqRand{Seq: 7}, Console: d.con,
	})
	if err != nil {
		t.Fatal(err)
		return nil
	}
	d.m = m
	return d
}

func (d *device) handle(ev firmware.Event) {
	d.events = append(d.events, ev)
	d.next = d.m.Handle(ev)
}

// run drives the loop until cond holds or d passes.
func (d *device) run(t *testing.T, timeout time.Duration, what string, cond func() bool) bool {
	t.Helper()
	return waitFor(t, timeout, what, func() bool {
		d.c.Poll(d.handle)
		if !d.next.IsZero() && !time.Now().Before(d.next) {
			d.handle(firmware.Event{Kind: firmware.EventTick})
		}
		return cond()
	})
}

func (d *device) boot() {
	d.handle(firmware.Event{Kind: firmware.EventBoot, Reset: firmware.ResetPowerOn})
	d.handle(firmware.Event{Kind: firmware.EventWiFiUp})
}

func (d *device) count(kind firmware.EventKind) int {
	n := 0
	for _, ev := range d.events {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

func TestProvisionConnectTelemetry(t *testing.T) {
	s := startServer(t)
	d := newDevice(t, s, "24:0A:C4:00:11:01")
	d.boot()
	if !d.run(t, 10*time.Second, "online state", func() bool { return d.m.Status().State == firmware.StateOnline }) {
		t.Logf("console:\n%s", strings.Join(d.con.Lines, "\n"))
		return
	}
	dev, ok := s.DeviceByName("24:0A:C4:00:11:01")
	if !ok {
		t.Fatal("the server has no device of that name")
		return
	}
	if got := d.nvs.Data["tb/token"]; got != dev.Credentials.Token {
		t.Errorf("NVS token %q; server token %q", got, dev.Credentials.Token)
	}
	if !d.run(t, 5*time.Second, "telemetry at the server", func() bool {
		v, ok := s.Latest(dev.ID)["temperature"]
		f, _ := v.Value.Float64()
		return ok && f == 12.5
	}) {
		t.Logf("latest: %+v", s.Latest(dev.ID))
	}
	// QoS 1 publishes come back acknowledged, each once.
	d.run(t, 5*time.Second, "acknowledged publishes", func() bool { return d.count(firmware.EventPublished) >= 5 })
	seen := map[uint32]bool{}
	for _, ev := range d.events {
		if ev.Kind == firmware.EventPublished {
			if seen[ev.ID] {
				t.Errorf("publish %d acknowledged twice", ev.ID)
			}
			seen[ev.ID] = true
		}
	}
	if n := d.count(firmware.EventConnected); n != 2 {
		t.Errorf("connected %d times; want 2 (provisioning, then with the token)", n)
	}
}

func TestRefusedAndRPC(t *testing.T) {
	s := startServer(t)
	bad := newDevice(t, s, "24:0A:C4:00:11:02")
	bad.nvs.Data["tb/token"] = "NOSUCHTOKEN"
	bad.boot()
	bad.run(t, 5*time.Second, "a refusal", func() bool { return bad.count(firmware.EventRefused) > 0 })
	for _, ev := range bad.events {
		if ev.Kind == firmware.EventRefused && ev.Code != firmware.ConnackNotAuthorized {
			t.Errorf("refused with code %d; want %d", ev.Code, firmware.ConnackNotAuthorized)
		}
	}

	d := newDevice(t, s, "24:0A:C4:00:11:03")
	d.boot()
	if !d.run(t, 10*time.Second, "online state", func() bool { return d.m.Status().State == firmware.StateOnline }) {
		return
	}
	dev, _ := s.DeviceByName("24:0A:C4:00:11:03")
	// Subscriptions go out before the first publish once online: its PUBACK
	// means the server has them. (The provisioning request's PUBACK counts
	// too: like ThingsBoard, the server acknowledges it before it answers.)
	before := d.count(firmware.EventPublished)
	d.run(t, 5*time.Second, "a PUBACK", func() bool { return d.count(firmware.EventPublished) > before })
	var reply []byte
	var rpcErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		reply, rpcErr = s.SendRPC(context.Background(), dev.ID, "getFirmware", tbapi.Value{Kind: tbapi.Object}, true, 5*time.Second)
	}()
	d.run(t, 6*time.Second, "the RPC answer", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	if rpcErr != nil || !strings.Contains(string(reply), `"title":"CORE_ESP32"`) {
		t.Errorf("RPC reply %s, %v", reply, rpcErr)
	}
}

// TestServerClosesAndContract: the server drops the device; the loss is
// reported once, and after Disconnect nothing of the old session arrives.
func TestServerClosesAndContract(t *testing.T) {
	s := startServer(t)
	d := newDevice(t, s, "24:0A:C4:00:11:04")
	d.boot()
	if !d.run(t, 10*time.Second, "online state", func() bool { return d.m.Status().State == firmware.StateOnline }) {
		return
	}
	dev, _ := s.DeviceByName("24:0A:C4:00:11:04")
	if err := s.DeleteDevice(dev.ID); err != nil {
		t.Fatal(err)
		return
	}
	d.run(t, 5*time.Second, "the connection loss", func() bool { return d.count(firmware.EventConnectionLost) > 0 })

	// A raw session: subscribe, let the server push, disconnect before
	// polling: the pushed message must never be emitted.
	s2 := newDevice(t, s, "24:0A:C4:00:11:05")
	s2.boot()
	if !s2.run(t, 10*time.Second, "online state", func() bool { return s2.m.Status().State == firmware.StateOnline }) {
		return
	}
	dev2, _ := s.DeviceByName("24:0A:C4:00:11:05")
	before := len(s2.events)
	if err := s.SetSharedAttributes(dev2.ID, []tbapi.Member{{Key: "color", Value: tbapi.Value{Kind: tbapi.String, Str: "red"}}}); err != nil {
		t.Fatal(err)
		return
	}
	time.Sleep(100 * time.Millisecond) // give the push time to arrive in the socket; the assertion is that it is dropped
	s2.c.Disconnect()
	s2.c.Poll(s2.handle)
	if got := s2.events[before:]; len(got) != 0 {
		t.Errorf("events after Disconnect: %+v", got)
	}
}

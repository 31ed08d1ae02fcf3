package sim

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/tbapi"
)

// vtiny is the smallest synchronous server the virtual fleet can run
// against: provisioning with one token per name, telemetry counting, the fw_*
// attributes of one image on request, and chunk serving. The real emulator
// core (tbemu) is wired in by internal/scenario; this keeps sim's tests
// self-contained.
type vtiny struct {
	s         *Sched
	tokens    map[string]string // token -> name
	names     map[string]bool
	fw        []byte
	info      tbapi.FwInfo
	telemetry int
	sessions  []*vconn // in connect order: a server must not let map order reach its output
}

type vconn struct {
	t         *vtiny
	provision bool
	deliver   func(string, []byte)
	closed    func(firmware.LinkError, string)
	gone      bool
}

func newVTiny(s *Sched, fw []byte) *vtiny {
	t := &vtiny{s: s, tokens: map[string]string{}, names: map[string]bool{}, fw: fw}
	if fw != nil {
		t.info = tbapi.FwInfo{Title: "CORE_ESP32", Version: "1.1.0", Size: int64(len(fw)), Algorithm: "SHA256", Checksum: tbapi.ChecksumHex(tbapi.SHA256, fw)}
	}
	return t
}

func (t *vtiny) Connect(clientID, user, pass string, deliver func(string, []byte), closed func(firmware.LinkError, string)) (ServerConn, byte) {
	c := &vconn{t: t, deliver: deliver, closed: closed}
	switch {
	case user == tbapi.ProvisionUser:
		c.provision = true
	case t.tokens[user] == "":
		return nil, 5
	}
	t.sessions = append(t.sessions, c)
	return c, 0
}

func (c *vconn) Publish(topic string, payload []byte, qos byte) bool {
	if c.gone {
		return false
	}
	t := c.t
	switch {
	case c.provision && topic == tbapi.TopicProvisionRequest:
		req, _ := tbapi.DecodeProvisionRequest(payload)
		resp := tbapi.ProvisionResponse{Status: tbapi.ProvisionFailure}
		if !t.names[req.DeviceName] {
			t.names[req.DeviceName] = true
			tok := fmt.Sprintf("tok%017d", len(t.tokens))
			t.tokens[tok] = req.DeviceName
			resp = tbapi.ProvisionResponse{Status: tbapi.ProvisionSuccess, CredentialsType: tbapi.CredAccessToken, Token: tok}
		}
		c.deliver(tbapi.TopicProvisionResponse, resp.Encode())
	case topic == tbapi.TopicTelemetry:
		t.telemetry++
	default:
		if id, ok := tbapi.ParseAttrRequestTopic(topic); ok {
			c.deliver(tbapi.AttrResponseTopic(id), tbapi.AttrResponse{Shared: t.info.Members()}.Encode())
		} else if ct, ok := tbapi.ParseChunkTopic(topic); ok && ct.Request {
			size, _, _ := tbapi.ParseChunkSize(payload)
			var data []byte
			if start := size * ct.Chunk; start < len(t.fw) {
				data = t.fw[start:min(start+size, len(t.fw))]
			}
			ct.Request = false
			c.deliver(ct.String(), data)
		}
	}
	return true
}

func (c *vconn) Subscribe(string, byte) byte { return 1 }

func (c *vconn) Close() { c.gone = true }

// dropAll closes every session from the server's side.
func (t *vtiny) dropAll() {
	for _, c := range t.sessions {
		if !c.gone {
			c.gone = true
			c.closed(firmware.LinkClosed, "server closed the connection")
		}
	}
	t.sessions = nil
}

func virtualFleet(t *testing.T, n int, fw []byte, log *bytes.Buffer) (*VFleet, *vtiny) {
	t.Helper()
	s := NewSched(Epoch)
	srv := newVTiny(s, fw)
	cfg := firmware.Defaults()
	cfg.ProvisionKey, cfg.ProvisionSecret = "k", "s"
	o := VirtualOptions{Devices: n, Seed: 7, Firmware: cfg, Sched: s, Server: srv,
		WiFi: device.WiFiConfig{ConnectMin: 50 * time.Millisecond, ConnectMax: 200 * time.Millisecond}}
	if log != nil {
		o.EventLog = log
	}
	f, err := NewVirtual(o)
	if err != nil {
		t.Fatal(err)
	}
	f.Start()
	return f, srv
}

func allOnline(f *VFleet) func() bool {
	return func() bool {
		for _, st := range f.Statuses() {
			if st.State != firmware.StateOnline {
				return false
			}
		}
		return true
	}
}

// A virtual fleet provisions, reports telemetry every 5 s of virtual time,
// and takes an update, without a goroutine or a sleep.
func TestVirtualFleet(t *testing.T) {
	fw, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: "CORE_ESP32", Version: "1.1.0", Size: 30000})
	if err != nil {
		t.Fatal(err)
	}
	f, srv := virtualFleet(t, 50, fw, nil)
	s := f.Sched()
	if !s.RunUntil(s.Now().Add(time.Minute), func() bool {
		for _, st := range f.Statuses() {
			if st.Version != "1.1.0" || st.OTAState != tbapi.FwUpdated || st.State != firmware.StateOnline {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("not all updated within a virtual minute: %+v", f.Snapshot().ByState)
	}
	took := s.Now().Sub(Epoch)
	s.RunUntil(s.Now().Add(time.Minute), nil)
	snap := f.Snapshot()
	if snap.Online != 50 || snap.Outcomes.Get("provisioned") != 50 || snap.ErrorTotal != 0 {
		t.Fatalf("online %d provisioned %d errors %v", snap.Online, snap.Outcomes.Get("provisioned"), snap.Errors)
	}
	// Each device reports every 5 s: about 12 per device in the last minute.
	if srv.telemetry < 50*12 {
		t.Fatalf("server got %d telemetry messages; want at least %d", srv.telemetry, 50*12)
	}
	if st, all := snap.Trends["publish_steady"], snap.Trends["publish"]; st.Count == 0 || st.Count >= all.Count {
		t.Fatalf("steady-state PUBACKs %d of %d: want those after every device was online, some but not all", st.Count, all.Count)
	}
	if got := snap.Trends["publish"]; got.P50 < time.Millisecond || got.P50 > 2*time.Millisecond {
		t.Fatalf("publish p50 = %s; want the link's round trip (1 ms)", got.P50)
	}
	t.Logf("all updated at %s of virtual time; %d events", took, s.Runs())
}

// Same seed, same inputs: the same bytes out.
func TestVirtualReplay(t *testing.T) {
	run := func() []byte {
		var log bytes.Buffer
		f, srv := virtualFleet(t, 20, nil, &log)
		s := f.Sched()
		s.RunUntil(s.Now().Add(20*time.Second), nil)
		srv.dropAll()
		f.ServerDown(true)
		s.RunUntil(s.Now().Add(3*time.Second), nil)
		f.ServerDown(false)
		f.PowerCycle(f.Pick(5, 3))
		s.RunUntil(s.Now().Add(40*time.Second), nil)
		for i := range f.Len() {
			for _, l := range f.Console(i) {
				fmt.Fprintf(&log, "%s %s\n", l.Time.Format(time.RFC3339Nano), l.Text)
			}
		}
		return log.Bytes()
	}
	a, b := run(), run()
	if len(a) < 10000 {
		t.Fatalf("event log only %d bytes", len(a))
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two runs with the same seed differ")
	}
}

// BenchmarkVirtualTelemetryHour: 1,000 devices report every 5 s for one
// virtual hour against the small test server (the emulator core's cost is
// measured where it is wired, in internal/scenario).
func BenchmarkVirtualTelemetryHour(b *testing.B) {
	for range b.N {
		s := NewSched(Epoch)
		srv := newVTiny(s, nil)
		cfg := firmware.Defaults()
		f, err := NewVirtual(VirtualOptions{Devices: 1000, Seed: 1, Firmware: cfg, Sched: s, Server: srv})
		if err != nil {
			b.Fatal(err)
		}
		f.Start()
		s.RunUntil(s.Now().Add(time.Hour), nil)
		b.ReportMetric(float64(srv.telemetry), "msgs")
		b.ReportMetric(float64(s.Runs()), "events")
	}
}

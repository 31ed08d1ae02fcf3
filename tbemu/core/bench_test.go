package core_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
	"github.com/tbsim/tbsim/tbemu/direct"
	"github.com/tbsim/tbsim/tbemu/emutest"
)

type nopConn struct{}

func (nopConn) Deliver(string, []byte, byte) {}
func (nopConn) Close(string)                 {}

// BenchmarkTelemetry is one telemetry publish through the direct adapter on
// a manual clock, as the simulator makes it.
//
//	go test ./tbemu/core -run '^$' -bench Telemetry
func BenchmarkTelemetry(b *testing.B) {
	clock := emutest.NewClock(t0)
	c, _ := core.New(core.Options{Clock: clock})
	defer c.Close()
	srv := direct.New(c)
	d, _ := c.CreateDevice(core.DeviceSpec{Name: "bench"})
	s, _ := srv.Connect(nopConn{}, d.Name, d.Credentials.Token, "")
	payload := []byte(`{"temperature":15.3,"rssi":-61,"channel":6,"bssid":"AA:BB:CC:DD:EE:FF","localIp":"192.168.1.23","ssid":"lab"}`)
	b.ReportAllocs()
	for b.Loop() {
		srv.Publish(s, tbapi.TopicTelemetry, payload, 1)
	}
}

// BenchmarkDeviceMemory reports the core's memory per device with an open
// session and one telemetry message stored.
func BenchmarkDeviceMemory(b *testing.B) {
	const n = 10000
	for b.Loop() {
		clock := emutest.NewClock(t0)
		c, _ := core.New(core.Options{Clock: clock})
		srv := direct.New(c)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range n {
			d, _ := c.CreateDevice(core.DeviceSpec{Name: fmt.Sprint("dev", i)})
			s, _ := srv.Connect(nopConn{}, d.Name, d.Credentials.Token, "")
			srv.Subscribe(s, tbapi.TopicAttributes, 1)
			srv.Publish(s, tbapi.TopicTelemetry, []byte(`{"temperature":15.3,"rssi":-61}`), 1)
		}
		clock.Advance(time.Second)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/device")
		c.Close()
	}
}

package sim_test

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/sim"
	"github.com/tbsim/tbsim/tbemu"
)

// BenchmarkRealtimeMemory: the heap and goroutine stacks per device of a
// real-time fleet (firmware, models, paho, the embedded server over
// in-memory pipes), once every device is online (TBSIM_BENCH_DEVICES, default
// 2,000; HEAPPROF=FILE writes the heap profile).
func BenchmarkRealtimeMemory(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("TBSIM_BENCH_DEVICES")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		runtime.GC()
		var m0 runtime.MemStats
		runtime.ReadMemStats(&m0)
		g0 := runtime.NumGoroutine()
		emu, err := tbemu.New(tbemu.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go emu.Run(ctx)
		fw := fastFirmware("tbsim-provision-key", "tbsim-provision-secret")
		fw.TelemetryInterval = 5 * time.Second
		f, err := sim.New(sim.Options{Devices: n, Seed: 1, Ramp: 2000, Firmware: fw, Dial: emu.Dial,
			WiFi: device.WiFiConfig{ConnectMin: 10 * time.Millisecond, ConnectMax: 50 * time.Millisecond}, BootTime: time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		for f.Snapshot().Online < n {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(6 * time.Second) // a telemetry round: steady state
		for range 3 {
			runtime.GC()
		}
		var m1 runtime.MemStats
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapInuse-m0.HeapInuse)/float64(n)/1024, "heapKiB/device")
		b.ReportMetric(float64(m1.StackInuse-m0.StackInuse)/float64(n)/1024, "stackKiB/device")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/float64(n), "goroutines/device")
		if p := os.Getenv("GOROUTINES"); p != "" {
			w, _ := os.Create(p)
			pprof.Lookup("goroutine").WriteTo(w, 1)
			w.Close()
		}
		if p := os.Getenv("HEAPPROF"); p != "" {
			w, _ := os.Create(p)
			pprof.WriteHeapProfile(w)
			w.Close()
		}
		cancel()
		<-done
	}
}

package scenario

import (
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/sim"
	"github.com/tbsim/tbsim/tbemu/core"
	"github.com/tbsim/tbsim/tbemu/direct"
)

// virtualWorld builds n devices and the emulator core on one virtual clock.
func virtualWorld(tb testing.TB, n int, interval time.Duration) (*sim.Sched, *core.Core, *sim.VFleet) {
	s := sim.NewSched(sim.Epoch)
	c, err := core.New(core.Options{Clock: schedClock{s}, Rand: rand.NewPCG(1, 0xe3), OTAPackSize: 1000, OTAPackInterval: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	prof, _ := c.DefaultProfile()
	fw := firmware.Defaults()
	fw.ProvisionKey, fw.ProvisionSecret = prof.ProvisionKey, prof.ProvisionSecret
	fw.TelemetryInterval = interval
	f, err := sim.NewVirtual(sim.VirtualOptions{Devices: n, Seed: 1, Firmware: fw, Sched: s, Server: &emuServer{d: direct.New(c)},
		WiFi: device.WiFiConfig{ConnectMin: time.Second, ConnectMax: 5 * time.Second}, ConsoleLines: 8})
	if err != nil {
		tb.Fatal(err)
	}
	f.Start()
	return s, c, f
}

// BenchmarkVirtualDay: 1,000 devices report every 5 s for 24 simulated
// hours and take one 1 MiB rollout after the first hour
// (TBSIM_BENCH_HOURS shortens the day for a quick look).
func BenchmarkVirtualDay(b *testing.B) {
	hours := 24
	if h, err := strconv.Atoi(os.Getenv("TBSIM_BENCH_HOURS")); err == nil && h > 0 {
		hours = h
	}
	img, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: "CORE_ESP32", Version: "1.1.0", Size: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		start := time.Now()
		s, c, f := virtualWorld(b, 1000, 5*time.Second)
		s.RunUntil(s.Now().Add(time.Hour), nil)
		pkg, err := c.AddFirmware(core.PackageSpec{Title: "CORE_ESP32", Version: "1.1.0"}, img, tbapi.SHA256)
		if err != nil {
			b.Fatal(err)
		}
		prof, _ := c.DefaultProfile()
		if err := c.AssignProfileFirmware(prof.ID, pkg.ID); err != nil {
			b.Fatal(err)
		}
		s.RunUntil(s.Now().Add(time.Duration(hours-1)*time.Hour), nil)
		snap := f.Snapshot()
		if snap.Versions["1.1.0"] != 1000 || snap.Online != 1000 {
			b.Fatalf("after %dh: %d at 1.1.0, %d online, errors %v", hours, snap.Versions["1.1.0"], snap.Online, snap.Errors)
		}
		b.ReportMetric(time.Since(start).Seconds(), "wall-s")
		b.ReportMetric(float64(c.Stats().TelemetryMsgs), "telemetry")
		b.ReportMetric(float64(s.Runs()), "events")
		c.Close()
	}
}

// BenchmarkVirtualMillion: 1,000,000 devices provision and report every 5 s
// for 10 simulated minutes in one process; reports the heap per device
// (TBSIM_BENCH_DEVICES changes the count).
func BenchmarkVirtualMillion(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("TBSIM_BENCH_DEVICES")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		start := time.Now()
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, c, f := virtualWorld(b, n, 5*time.Second)
		s.RunUntil(s.Now().Add(10*time.Minute), nil)
		snap := f.Snapshot()
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		if snap.Online != n {
			b.Fatalf("%d of %d online; errors %v", snap.Online, n, snap.Errors)
		}
		if path := os.Getenv("TBSIM_BENCH_HEAPPROF"); path != "" {
			f, err := os.Create(path) // the live heap, for the split per part
			if err != nil {
				b.Fatal(err)
			}
			pprof.WriteHeapProfile(f)
			f.Close()
		}
		b.ReportMetric(time.Since(start).Seconds(), "wall-s")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n)/1024, "KiB/device")
		b.ReportMetric(float64(c.Stats().TelemetryMsgs), "telemetry")
		runtime.KeepAlive(f)
		c.Close()
	}
}

package tbemu

import (
	"context"
	"net"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// BenchmarkOTA5000 connects TBEMU_BENCH_DEVICES (default 5000) paho clients
// over the in-memory listener and, per iteration, has every one download a
// 1 MiB package in 64 KiB chunks at once. It reports the aggregate rate,
// heap per connection (server and paho client together, one process) and CPU.
//
//	go test ./tbemu -run '^$' -bench OTA5000 -benchtime 3x
func BenchmarkOTA5000(b *testing.B) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("TBEMU_BENCH_DEVICES")); err == nil {
		n = v
	}
	s := startServer(b, Options{})
	data := firmwareBytes(1<<20, 1)
	pkg, err := s.AddFirmware(PackageSpec{Title: "T", Version: "bench"}, data, tbapi.SHA256)
	if err != nil {
		b.Fatal(err)
	}
	prof, _ := s.DefaultProfile()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	type dev struct {
		c  paho.Client
		ch chan []byte
	}
	devs := make([]dev, n)
	for i := range devs {
		d, err := s.CreateDevice(DeviceSpec{Name: "bench-" + strconv.Itoa(i)})
		if err != nil {
			b.Fatal(err)
		}
		ch := make(chan []byte, 1)
		opts := paho.NewClientOptions().AddBroker("tcp://mem:1883").SetClientID(d.Name).SetUsername(d.Credentials.Token).
			SetProtocolVersion(4).SetAutoReconnect(false).SetOrderMatters(false).
			SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) { return s.Dial(context.Background()) }).
			SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { ch <- m.Payload() })
		c := paho.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			b.Fatalf("connect %d: %v", i, tok.Error())
		}
		devs[i] = dev{c, ch}
	}
	b.Cleanup(func() {
		for _, d := range devs {
			d.c.Disconnect(0)
		}
	})
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if err := s.AssignProfileFirmware(prof.ID, pkg.ID); err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	b.SetBytes(int64(len(data)) * int64(n))
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		var wg sync.WaitGroup
		for i := range devs {
			wg.Add(1)
			go func(d dev) {
				defer wg.Done()
				got := 0
				for k := 0; got < len(data); k++ {
					d.c.Publish(tbapi.FwRequestTopic(it+1, k), 0, false, "65536")
					got += len(<-d.ch)
				}
			}(devs[i])
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse)/float64(n)/1024, "KiB/conn")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/b.Elapsed().Seconds(), "cores")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package tbemu

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// BenchmarkServerMemoryPerConnection: the server's heap and goroutine
// stacks per open device connection, with raw MQTT clients (no paho in the
// process) over loopback TCP.
func BenchmarkServerMemoryPerConnection(b *testing.B) {
	const n = 2000
	for range b.N {
		s, err := New(Options{MQTTAddr: "127.0.0.1:0"})
		if err != nil {
			b.Fatal(err)
		}
		go s.Run(b.Context())
		for i := range n {
			if _, err := s.CreateDevice(DeviceSpec{Name: fmt.Sprintf("dev%05d", i), Credentials: Credentials{Type: "ACCESS_TOKEN", Token: fmt.Sprintf("tok%017d", i)}}); err != nil {
				b.Fatal(err)
			}
		}
		g0 := runtime.NumGoroutine()
		runtime.GC()
		var m0 runtime.MemStats
		runtime.ReadMemStats(&m0)
		conns := make([]net.Conn, n)
		for i := range n {
			c, err := net.Dial("tcp", s.MQTTAddr())
			if err != nil {
				b.Fatal(err)
			}
			cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
			cp.ProtocolName, cp.ProtocolVersion, cp.CleanSession, cp.Keepalive = "MQTT", 4, true, 60
			cp.ClientIdentifier, cp.UsernameFlag, cp.Username = fmt.Sprintf("dev%05d", i), true, fmt.Sprintf("tok%017d", i)
			if err := cp.Write(c); err != nil {
				b.Fatal(err)
			}
			r := bufio.NewReader(c)
			if _, err := packets.ReadPacket(r); err != nil {
				b.Fatal(err)
			}
			sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
			sp.MessageID, sp.Topics, sp.Qoss = 1, []string{"v1/devices/me/attributes", "v1/devices/me/rpc/request/+"}, []byte{1, 1}
			sp.Write(c)
			packets.ReadPacket(r)
			conns[i] = c
		}
		time.Sleep(200 * time.Millisecond)
		for range 4 { // stacks shrink at a GC after one that saw them mostly unused
			runtime.GC()
		}
		var m1 runtime.MemStats
		runtime.ReadMemStats(&m1)
		heap := float64(m1.HeapInuse-m0.HeapInuse) / n / 1024
		stacks := float64(m1.StackInuse-m0.StackInuse) / n / 1024
		b.ReportMetric(heap, "heapKiB/conn")
		b.ReportMetric(stacks, "stackKiB/conn")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/conn")
		if p := os.Getenv("GOROUTINES"); p != "" {
			f, _ := os.Create(p)
			pprof.Lookup("goroutine").WriteTo(f, 1)
			f.Close()
		}
		if p := os.Getenv("HEAPPROF"); p != "" {
			f, _ := os.Create(p)
			pprof.WriteHeapProfile(f)
			f.Close()
		}
		for _, c := range conns {
			c.Close()
		}
		s.Close()
	}
}

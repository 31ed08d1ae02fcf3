// Command mqttload is the benchmarks' MQTT publisher: N paho clients, each
// publishing a payload of a given size at a given QoS every interval (paced)
// or a given number of messages back to back (saturating), against any
// broker. It is the "same publisher" that puts the same load on tbsim's
// server and on mosquitto, and the bare paho client a tbsim device is
// compared with.
//
//	mqttload -broker tcp://127.0.0.1:1883 -clients 5000 -interval 5s -duration 60s
//	mqttload -broker tcp://127.0.0.1:1883 -clients 1000 -messages 300
//
// With -provision KEY:SECRET each client first provisions itself on a
// ThingsBoard-style server (username "provision") and publishes with the
// token it gets; otherwise it connects anonymously. It prints one line of
// figures at the end; the measured window starts once every client is
// connected.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	broker := flag.String("broker", "tcp://127.0.0.1:1883", "broker URL")
	clients := flag.Int("clients", 1000, "clients")
	interval := flag.Duration("interval", 5*time.Second, "paced: time between a client's messages")
	duration := flag.Duration("duration", 60*time.Second, "paced: how long to publish once all are connected")
	messages := flag.Int("messages", 0, "saturating: messages per client, back to back (0: paced)")
	size := flag.Int("size", 200, "payload bytes")
	qos := flag.Int("qos", 1, "QoS")
	topic := flag.String("topic", "v1/devices/me/telemetry", "topic")
	provision := flag.String("provision", "", "KEY:SECRET: provision each client first (ThingsBoard device API)")
	ramp := flag.Float64("ramp", 1000, "connects per second")
	serverPID := flag.Int("server-pid", 0, "measure this process's CPU during the window and its memory per connection (Linux /proc)")
	flag.Parse()
	rssBefore := rssKiB(*serverPID)

	payload := []byte(`{"temperature":21.5,"pad":"` + strings.Repeat("x", max(0, *size-30)) + `"}`)
	cs := make([]mqtt.Client, *clients)
	var wg sync.WaitGroup
	var connectErr atomic.Int64
	step := time.Duration(float64(time.Second) / *ramp)
	start := time.Now()
	for i := range cs {
		time.Sleep(time.Until(start.Add(time.Duration(i) * step)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("load-%06d", i)
			user := ""
			if *provision != "" {
				tok, err := provisionToken(*broker, name, *provision)
				if err != nil {
					connectErr.Add(1)
					return
				}
				user = tok
			}
			c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(*broker).SetClientID(name).SetUsername(user).
				SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetKeepAlive(60 * time.Second).
				SetConnectTimeout(30 * time.Second).SetOrderMatters(false))
			if t := c.Connect(); t.Wait() && t.Error() != nil {
				connectErr.Add(1)
				return
			}
			cs[i] = c
		}()
	}
	wg.Wait()
	connected := time.Since(start)

	rssAfter := rssKiB(*serverPID)
	var sent, acked, failed atomic.Int64
	var latMu sync.Mutex
	var lats []time.Duration
	pub := func(c mqtt.Client) {
		t0 := time.Now()
		sent.Add(1)
		tok := c.Publish(*topic, byte(*qos), false, payload)
		go func() {
			if tok.Wait(); tok.Error() != nil {
				failed.Add(1)
				return
			}
			acked.Add(1)
			d := time.Since(t0)
			latMu.Lock()
			lats = append(lats, d)
			latMu.Unlock()
		}()
	}
	window := time.Now()
	srvCPU0, selfCPU0 := cpuSeconds(*serverPID), selfCPU()
	var pwg sync.WaitGroup
	for _, c := range cs {
		if c == nil {
			continue
		}
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			if *messages > 0 {
				for range *messages {
					pub(c)
				}
				return
			}
			// Spread the clients over the interval, then a fixed cadence.
			next := window.Add(time.Duration(rand.Int64N(int64(*interval))))
			for next.Before(window.Add(*duration)) {
				time.Sleep(time.Until(next))
				pub(c)
				next = next.Add(*interval)
			}
		}()
	}
	pwg.Wait()
	for deadline := time.Now().Add(30 * time.Second); acked.Load()+failed.Load() < sent.Load() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(window)
	srvCPU, self := cpuSeconds(*serverPID)-srvCPU0, selfCPU()-selfCPU0
	latMu.Lock()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	q := func(p float64) time.Duration {
		if len(lats) == 0 {
			return 0
		}
		return lats[min(len(lats)-1, int(p*float64(len(lats))))]
	}
	out := map[string]any{
		"clients": *clients, "connect_errors": connectErr.Load(), "connect_s": connected.Seconds(),
		"sent": sent.Load(), "acked": acked.Load(), "failed": failed.Load(), "window_s": elapsed.Seconds(),
		"rate_per_s":    float64(acked.Load()) / elapsed.Seconds(),
		"puback_p50_ms": float64(q(0.50).Microseconds()) / 1000, "puback_p99_ms": float64(q(0.99).Microseconds()) / 1000,
		"publisher_cpu_s": self, "publisher_us_per_msg": 1e6 * self / float64(max(acked.Load(), 1)),
	}
	if *serverPID > 0 {
		out["server_cpu_s"] = srvCPU
		out["server_us_per_msg"] = 1e6 * srvCPU / float64(max(acked.Load(), 1))
		out["server_kib_per_conn"] = float64(rssAfter-rssBefore) / float64(max(*clients, 1))
		out["server_rss_kib"] = rssKiB(*serverPID)
	}
	latMu.Unlock()
	json.NewEncoder(os.Stdout).Encode(out)
	for _, c := range cs {
		if c != nil {
			c.Disconnect(0)
		}
	}
}

// provisionToken asks a ThingsBoard-style server for a token for name.
func provisionToken(broker, name, keySecret string) (string, error) {
	key, secret, _ := strings.Cut(keySecret, ":")
	got := make(chan []byte, 1)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(name).SetUsername("provision").
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(30 * time.Second).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- m.Payload() }))
	if t := c.Connect(); t.Wait() && t.Error() != nil {
		return "", t.Error()
	}
	defer c.Disconnect(0)
	c.Subscribe("/provision/response", 1, nil).Wait()
	req, _ := json.Marshal(map[string]string{"deviceName": name, "provisionDeviceKey": key, "provisionDeviceSecret": secret})
	c.Publish("/provision/request", 1, false, req)
	select {
	case p := <-got:
		var r struct{ Status, CredentialsValue string }
		if err := json.Unmarshal(p, &r); err != nil || r.Status != "SUCCESS" {
			return "", fmt.Errorf("provisioning %s: %s", name, p)
		}
		return r.CredentialsValue, nil
	case <-time.After(30 * time.Second):
		return "", fmt.Errorf("provisioning %s: no answer", name)
	}
}

// cpuSeconds is a process's user+system CPU time (/proc/PID/stat).
func cpuSeconds(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) start past ')'.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	var ut, st float64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return (ut + st) / 100 // USER_HZ
}

// rssKiB is a process's resident set (/proc/PID/status VmRSS).
func rssKiB(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var n int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &n)
			return n
		}
	}
	return 0
}

// selfCPU is this process's CPU time.
func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

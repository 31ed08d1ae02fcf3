package device

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/tbapi"
)

// tinyTB is the smallest ThingsBoard that takes a board through its story:
// provisioning with one generated token, fw_* attributes for one image, and
// chunk serving. The full emulator is package tbemu; this only answers.
type tinyTB struct {
	mqtt.HookBase
	srv      *mqtt.Server
	token    string
	fw       []byte
	fwInfo   tbapi.FwInfo
	mu       sync.Mutex
	provised int
	conns    int
	seen     []packets.Packet    // publishes on test/ and RPC response topics, in arrival order
	order    map[string][]string // per client: "S filter" / "P topic", as read
}

func (h *tinyTB) ID() string { return "tiny-tb" }

func (h *tinyTB) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnPacketRead}, []byte{b})
}

// OnConnect makes every connection's id unique inside mochi, as tbemu's hook
// does. A board provisions and then connects with the same client id (its
// MAC); in mochi v2.7.9 the first session's teardown checks IsTakenOver and
// then calls Clients.Delete(id), and a second session that took over in
// between is deleted from the client map: still connected, but nothing
// routed by mochi reaches it. One such loss failed CI.
func (h *tinyTB) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	h.mu.Lock()
	h.conns++
	cl.ID += "#" + strconv.Itoa(h.conns)
	h.mu.Unlock()
	return nil
}

// OnPacketRead keeps the order in which a session's SUBSCRIBEs and
// PUBLISHes reached the broker.
func (h *tinyTB) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	var e string
	switch pk.FixedHeader.Type {
	case packets.Subscribe:
		for _, f := range pk.Filters {
			e += "S " + f.Filter
		}
	case packets.Publish:
		e = "P " + pk.TopicName
	default:
		return pk, nil
	}
	h.mu.Lock()
	if h.order == nil {
		h.order = map[string][]string{}
	}
	h.order[cl.ID] = append(h.order[cl.ID], e)
	h.mu.Unlock()
	return pk, nil
}

func (h *tinyTB) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	u := string(pk.Connect.Username)
	return u == tbapi.ProvisionUser || u == h.token
}

func (h *tinyTB) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

func (h *tinyTB) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	topic, payload := pk.TopicName, append([]byte(nil), pk.Payload...)
	// Replies go to the asking session whether or not it subscribed, and
	// before the request's PUBACK, as ThingsBoard sends them (spec section 1).
	reply := func(t string, p []byte) {
		_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: t, Payload: p})
	}
	if strings.HasPrefix(topic, "test/") || strings.HasPrefix(topic, tbapi.TopicRPCResponsePrefix) {
		h.mu.Lock()
		h.seen = append(h.seen, packets.Packet{TopicName: topic, Payload: payload})
		h.mu.Unlock()
	}
	switch {
	case topic == tbapi.TopicProvisionRequest:
		h.mu.Lock()
		h.provised++
		h.mu.Unlock()
		reply(tbapi.TopicProvisionResponse, tbapi.ProvisionResponse{Status: tbapi.ProvisionSuccess, CredentialsType: tbapi.CredAccessToken, Token: h.token}.Encode())
	default:
		if id, ok := tbapi.ParseAttrRequestTopic(topic); ok {
			reply(tbapi.AttrResponseTopic(id), tbapi.AttrResponse{Shared: h.fwInfo.Members()}.Encode())
		} else if c, ok := tbapi.ParseChunkTopic(topic); ok && c.Request {
			size, _, _ := tbapi.ParseChunkSize(payload)
			var data []byte
			if start := size * c.Chunk; start < len(h.fw) {
				data = h.fw[start:min(start+size, len(h.fw))]
			}
			c.Request = false
			reply(c.String(), data)
		}
	}
	return pk, nil
}

func (h *tinyTB) provisions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.provised
}

func startTinyTB(t *testing.T, fw []byte) (*tinyTB, string) {
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	h := &tinyTB{srv: srv, token: "A1b2C3d4E5f6G7h8I9j0", fw: fw, fwInfo: tbapi.FwInfo{
		Title: "CORE_ESP32", Version: "1.1.0", Size: int64(len(fw)), Algorithm: "SHA256",
		Checksum: tbapi.ChecksumHex(tbapi.SHA256, fw),
	}}
	require.NoError(t, srv.AddHook(h, nil))
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	require.NoError(t, srv.AddListener(l))
	go srv.Serve()
	t.Cleanup(func() { closeBroker(srv, l) })
	return h, l.Address()
}

// closeBroker shuts mochi down without its Close deadlock (v2.7.9:
// GetByListener read-locks the clients twice; a client deleting itself in
// between blocks both): close the listener without the client callback, stop
// the clients, wait until mochi forgot them, then Close.
func closeBroker(srv *mqtt.Server, l *listeners.TCP) {
	l.Close(func(string) {})
	live := func() int {
		n := 0
		for _, cl := range srv.Clients.GetAll() {
			if !cl.Net.Inline {
				cl.Stop(nil)
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(5 * time.Second); live() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	srv.Close()
}

func waitFor(t *testing.T, b *Board, what string, cond func(BoardStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond(b.Status()) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	var lines []string
	for _, l := range b.Console() {
		lines = append(lines, l.Text)
	}
	t.Fatalf("timed out waiting for %s; status %+v; console:\n%s", what, b.Status(), strings.Join(lines, "\n"))
}

// One board through real parts: a mochi broker on a loopback socket, paho,
// bbolt NVS, flash with image validation. First boot provisions, sends
// telemetry, takes the update, reboots into it and reports UPDATED; a second
// board on the same NVS file boots with the stored token.
func TestBoardEndToEnd(t *testing.T) {
	fw, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: "CORE_ESP32", Version: "1.1.0", Size: 50000})
	require.NoError(t, err)
	h, addr := startTinyTB(t, fw)
	nvsPath := filepath.Join(t.TempDir(), "nvs.db")
	nvs, err := OpenBoltNVS(nvsPath)
	require.NoError(t, err)
	defer nvs.Close()
	store := NewImageStore()
	factory, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: "CORE_ESP32", Version: "1.0.0", Size: 4096})
	require.NoError(t, err)
	id := NewIdentity(1, 0)
	fwCfg := firmware.Defaults()
	fwCfg.ProvisionKey, fwCfg.ProvisionSecret = "k", "s"
	fwCfg.TelemetryInterval = 100 * time.Millisecond
	opts := BoardOptions{
		Identity: id, Firmware: fwCfg, NVS: nvs.Device(id.Name()), Store: store, Factory: store.Add(factory),
		WiFi:         WiFiConfig{ConnectMin: 10 * time.Millisecond, ConnectMax: 20 * time.Millisecond},
		Dial:         func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "tcp", addr) },
		BootTime:     10 * time.Millisecond,
		ConsoleLines: 64, // the whole story, first boot included
	}
	b, err := NewBoard(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()

	waitFor(t, b, "UPDATED on 1.1.0", func(s BoardStatus) bool {
		return s.Version == "1.1.0" && s.OTAState == tbapi.FwUpdated && s.State == firmware.StateOnline
	})
	st := b.Status()
	require.Equal(t, 2, st.BootCount, "one power-on, one restart into the update")
	require.Equal(t, firmware.ResetSW, st.LastReset)
	require.Equal(t, 1, h.provisions())
	tok, err := nvs.Device(id.Name()).GetString("tb", "token")
	require.NoError(t, err)
	require.Equal(t, h.token, tok)
	console := b.Console()
	var text []string
	for _, l := range console {
		text = append(text, l.Text)
	}
	all := strings.Join(text, "\n")
	for _, want := range []string{"[PROVISION] Access Token: " + h.token, "[NVS] Token saved successfully", "[TELEMETRY] Data sent to ThingsBoard", "[OTA] Checksum verified (SHA256)", "Version: 1.1.0", "Reset reason: SW"} {
		require.Contains(t, all, want)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Board.Run did not return after its context ended")
	}

	// A second board object on the same bbolt file: stored token, no provisioning.
	b2, err := NewBoard(opts)
	require.NoError(t, err)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go b2.Run(ctx2)
	waitFor(t, b2, "online", func(s BoardStatus) bool { return s.State == firmware.StateOnline })
	require.Equal(t, 1, h.provisions(), "the second boot provisioned again")
	var lines []string
	for _, l := range b2.Console() {
		lines = append(lines, l.Text)
	}
	require.Contains(t, strings.Join(lines, "\n"), "[NVS] Token loaded: "+h.token)
}

// The board's fault actions through real parts: Wi-Fi drop, erase token plus
// power cycle (the next boot provisions again), and the console ring bound.
func TestBoardFaults(t *testing.T) {
	fw, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: "CORE_ESP32", Version: "1.0.0", Size: 4096})
	require.NoError(t, err)
	h, addr := startTinyTB(t, fw)
	h.fwInfo = tbapi.FwInfo{} // nothing assigned
	store := NewImageStore()
	id := NewIdentity(2, 5)
	fwCfg := firmware.Defaults()
	fwCfg.TelemetryInterval = 50 * time.Millisecond
	fwCfg.BackoffMin, fwCfg.BackoffMax = 50*time.Millisecond, 200*time.Millisecond
	b, err := NewBoard(BoardOptions{
		Identity: id, Firmware: fwCfg, NVS: NewMemNVS(), Store: store, Factory: store.Add(fw),
		WiFi:         WiFiConfig{ConnectMin: 10 * time.Millisecond, ConnectMax: 20 * time.Millisecond},
		Dial:         func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "tcp", addr) },
		BootTime:     time.Millisecond,
		ConsoleLines: 16,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)
	waitFor(t, b, "online", func(s BoardStatus) bool { return s.State == firmware.StateOnline })

	b.DropWiFi(300 * time.Millisecond)
	waitFor(t, b, "wifi down", func(s BoardStatus) bool { return s.State != firmware.StateOnline })
	waitFor(t, b, "back online", func(s BoardStatus) bool { return s.State == firmware.StateOnline })

	b.EraseToken()
	b.PowerCycle()
	waitFor(t, b, "online after re-provisioning", func(s BoardStatus) bool {
		return s.BootCount == 2 && s.State == firmware.StateOnline && h.provisions() == 2
	})
	require.Equal(t, firmware.ResetPowerOn, b.Status().LastReset)
	require.Len(t, b.Console(), 16, "the serial ring keeps its bound")
}

func (h *tinyTB) received() []packets.Packet {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]packets.Packet(nil), h.seen...)
}

// onlineBoard starts a board against a tinyTB and waits until it is online.
func onlineBoard(t *testing.T) (*Board, *tinyTB) {
	fw, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: "CORE_ESP32", Version: "1.0.0", Size: 4096})
	require.NoError(t, err)
	h, addr := startTinyTB(t, fw)
	h.fwInfo = tbapi.FwInfo{}
	store := NewImageStore()
	fwCfg := firmware.Defaults()
	fwCfg.TelemetryInterval = time.Hour
	b, err := NewBoard(BoardOptions{
		Identity: NewIdentity(3, 1), Firmware: fwCfg, NVS: NewMemNVS(), Store: store, Factory: store.Add(fw),
		WiFi:     WiFiConfig{ConnectMin: time.Millisecond, ConnectMax: 2 * time.Millisecond},
		Dial:     func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "tcp", addr) },
		BootTime: time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, b, "online", func(s BoardStatus) bool { return s.State == firmware.StateOnline })
	// Online means the SUBSCRIBE left, not that the broker has it yet: what
	// the test publishes before then would reach nobody.
	for deadline := time.Now().Add(20 * time.Second); len(h.srv.Topics.Subscribers(tbapi.RPCRequestTopic(1)).Subscriptions) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the board's RPC subscription never reached the broker")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return b, h
}

// Messages reach the firmware in the order the server sent them: 300 RPC
// requests sent back to back are answered in that order (with paho's
// order-matters off, each went to a goroutine of its own and overtook others).
func TestSessionInboundOrder(t *testing.T) {
	_, h := onlineBoard(t)
	const n = 300
	for i := 1; i <= n; i++ {
		require.NoError(t, h.srv.Publish(tbapi.RPCRequestTopic(i), []byte(`{"method":"getFirmware","params":{}}`), false, 1))
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(h.received()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := h.received()
	require.Len(t, got, n, "every request answered")
	for i, p := range got {
		id, ok := tbapi.ParseRPCResponseTopic(p.TopicName)
		require.True(t, ok, p.TopicName)
		require.Equal(t, i+1, id, "answer %d is for request %d: reordered", i+1, id)
	}
}

// Publish sends what the caller passed at the time of the call: the caller
// may reuse its buffer at once (the firmware does, for telemetry). Without
// the copy the broker saw overwritten bytes, and -race flagged paho's writer.
func TestSessionPublishCopiesPayload(t *testing.T) {
	b, h := onlineBoard(t)
	const n = 200
	b.control(func() {
		buf := make([]byte, 64)
		for i := range n {
			copy(buf, fmt.Sprintf("original %03d", i))
			_, err := b.sess.Publish("test/copy", buf[:12], 1)
			require.NoError(t, err)
			copy(buf, "OVERWRITTEN!")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for len(h.received()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := h.received()
	require.Len(t, got, n)
	for i, p := range got {
		require.Equal(t, fmt.Sprintf("original %03d", i), string(p.Payload))
	}
}

// An update the bootloader cannot load (issue 14: an IRAM segment past the
// S3's IRAM, "bad load address range"), through the real parts: the
// firmware downloads and verifies it, ESP-IDF's esp_ota_end and
// set_boot_partition accept it, the board restarts, the bootloader falls
// back to 1.0.0, and the firmware reports the update FAILED once online.
func TestBoardUnbootableUpdateRollsBack(t *testing.T) {
	factory, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: "CORE_ESP32", Version: "1.0.0", Size: 4096})
	require.NoError(t, err)
	update := espimage.Assemble(espimage.ESP32S3, 0x40378000, []espimage.RawSegment{
		{LoadAddr: 0x3C000020, Data: factory[espimage.AppDescOffset : espimage.AppDescOffset+espimage.AppDescSize]},
		{LoadAddr: 0x403E0000, Data: make([]byte, 4096)}, // SOC_IRAM_HIGH: just past the IRAM
	})
	h, addr := startTinyTB(t, update)
	store := NewImageStore()
	fwCfg := firmware.Defaults()
	fwCfg.ProvisionKey, fwCfg.ProvisionSecret = "k", "s"
	b, err := NewBoard(BoardOptions{
		Identity: NewIdentity(4, 0), Firmware: fwCfg, NVS: NewMemNVS(), Store: store, Factory: store.Add(factory),
		WiFi:     WiFiConfig{ConnectMin: time.Millisecond, ConnectMax: 2 * time.Millisecond},
		Dial:     func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "tcp", addr) },
		BootTime: time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, b, "FAILED on 1.0.0 after a restart", func(s BoardStatus) bool {
		return s.BootCount == 2 && s.State == firmware.StateOnline && s.OTAState == tbapi.FwFailed
	})
	st := b.Status()
	require.Equal(t, "1.0.0", st.Version)
	require.Equal(t, firmware.ResetSW, st.LastReset)
	require.Contains(t, st.OTAError, "rollback: CORE_ESP32 v1.1.0 did not boot")
	require.Equal(t, 0, b.opts.Flash.Running())
	require.Equal(t, 1, h.provisions())
}

// A session's SUBSCRIBEs reach the server before a PUBLISH the firmware
// issued after them, as a real device's single socket writes them. paho
// queues the two kinds on separate channels (oboundP, obound); one copier
// goroutine over unbuffered channels keeps them in order, and this holds
// us to it: a PUBLISH that passed a SUBSCRIBE would miss pushes. Several
// boards, each connecting twice (provisioning, then with the token).
func TestBoardSubscribesBeforePublishing(t *testing.T) {
	h, addr := startTinyTB(t, nil)
	factory, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: "CORE_ESP32", Version: "1.0.0", Size: 4096})
	require.NoError(t, err)
	const n = 20
	var boards []*Board
	for i := range n {
		store := NewImageStore()
		fwCfg := firmware.Defaults()
		fwCfg.ProvisionKey, fwCfg.ProvisionSecret = "k", "s"
		b, err := NewBoard(BoardOptions{
			Identity: NewIdentity(uint64(100+i), 0), Firmware: fwCfg, NVS: NewMemNVS(), Store: store, Factory: store.Add(factory),
			WiFi:     WiFiConfig{ConnectMin: time.Millisecond, ConnectMax: 2 * time.Millisecond},
			Dial:     func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "tcp", addr) },
			BootTime: time.Millisecond,
		})
		require.NoError(t, err)
		boards = append(boards, b)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { b.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	for _, b := range boards {
		waitFor(t, b, "online", func(s BoardStatus) bool { return s.State == firmware.StateOnline })
	}
	// Online means the fw attribute request left; wait until the broker read it.
	for deadline := time.Now().Add(20 * time.Second); ; {
		h.mu.Lock()
		got := 0
		for _, o := range h.order {
			for _, e := range o {
				if strings.HasPrefix(e, "P v1/devices/me/attributes/request/") {
					got++
				}
			}
		}
		h.mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.order) != 2*n {
		t.Fatalf("%d sessions seen; want %d", len(h.order), 2*n)
		return
	}
	for id, o := range h.order {
		lastSub, firstPub := -1, -1
		for i, e := range o {
			if strings.HasPrefix(e, "S ") {
				lastSub = i
			} else if firstPub < 0 {
				firstPub = i
			}
		}
		if firstPub < 0 || lastSub > firstPub {
			t.Fatalf("session %s: a PUBLISH passed a SUBSCRIBE: %v", id, o)
			return
		}
	}
}

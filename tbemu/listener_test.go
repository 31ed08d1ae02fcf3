package tbemu

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// getStats reads GET /api/tbsim/stats.
func getStats(t *testing.T, httpAddr string) Stats {
	t.Helper()
	rc := &restClient{t: t, base: "http://" + httpAddr}
	var tok struct{ Token string }
	require.Equal(t, 200, rc.json("POST", "/api/auth/login", map[string]string{"username": "tenant@thingsboard.org", "password": "tenant"}, &tok))
	rc.token = tok.Token
	var st Stats
	require.Equal(t, 200, rc.json("GET", "/api/tbsim/stats", nil, &st))
	return st
}

// waitClosed reads c until the server closes it and returns what it sent.
func waitClosed(t *testing.T, c net.Conn, within time.Duration) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(c) // EOF, or a reset: closed either way
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("the server did not close the connection within %s", within)
	}
	return b
}

// The MQTT listener keeps serving after the process ran out of file
// descriptors. A child server with a 64-descriptor limit gets 200 sockets
// that never send CONNECT: accepting them exhausts its descriptors; the
// connect timeout closes them, the listener accepts again; a real device
// then connects and publishes. The stats count the exhaustion, and the log
// has one line per burst of failed accepts, not one per failure. (Before:
// mochi's listener returned at the first EMFILE and never accepted again.)
func TestListenerSurvivesFDExhaustion(t *testing.T) {
	if os.Getenv("TBEMU_FD_CHILD") != "" {
		fdChild()
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestListenerSurvivesFDExhaustion$")
	cmd.Env = append(os.Environ(), "TBEMU_FD_CHILD=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var logs strings.Builder
	var logMu sync.Mutex
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logMu.Unlock()
		}
	}()
	defer func() { stdin.Close(); cmd.Wait() }()
	var mqttAddr, httpAddr, token string
	_, err = fmt.Fscan(bufio.NewReader(stdout), &mqttAddr, &httpAddr, &token)
	require.NoError(t, err)

	// 200 idle sockets: the kernel completes their handshakes, the child
	// accepts what its descriptors allow.
	idle := make([]net.Conn, 200)
	for i := range idle {
		idle[i], err = net.Dial("tcp", mqttAddr)
		require.NoError(t, err)
		defer idle[i].Close()
	}
	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Add(1)
		go func() { defer wg.Done(); waitClosed(t, c, 60*time.Second) }()
	}
	wg.Wait() // every one accepted, then closed by the connect timeout

	dev, code, err := dialClient(t, tcpDial(mqttAddr), "24:0A:C4:00:00:04", token, "")
	require.NoError(t, err, "CONNACK %d: the listener did not survive", code)
	dev.pub(t, tbapi.TopicTelemetry, `{"t":1}`)

	st := getStats(t, httpAddr).Listeners["mqtt"]
	t.Logf("mqtt listener: %+v", st)
	require.Positive(t, st.FDExhausted, "the exhaustion is counted")
	require.GreaterOrEqual(t, st.ConnectTimeouts, int64(200))
	require.False(t, st.Failing)

	stdin.Close()
	cmd.Wait()
	<-logDone
	logMu.Lock()
	defer logMu.Unlock()
	failing := strings.Count(logs.String(), `"msg":"accept failing; retrying with backoff until it works again"`)
	again := strings.Count(logs.String(), `"msg":"accepting again"`)
	require.Positive(t, failing, "the exhaustion is in the log:\n%s", logs.String())
	require.Equal(t, failing, again, "each burst logged once when it starts and once when it ends")
	require.Less(t, int64(failing), st.AcceptErrors, "not a line per failed accept")
	require.Contains(t, logs.String(), "too many open files")
	require.Contains(t, logs.String(), `"hint":"out of file descriptors`)
}

// fdChild serves with 64 file descriptors until its stdin closes.
func fdChild() {
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := New(Options{MQTTAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", MaxConnections: -1,
		ConnectTimeout: 300 * time.Millisecond, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	d, err := s.CreateDevice(DeviceSpec{Name: "24:0A:C4:00:00:04"})
	if err != nil {
		os.Exit(5)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	fmt.Println(s.MQTTAddr(), s.HTTPAddr(), d.Credentials.Token)
	io.Copy(io.Discard, os.Stdin)
	cancel()
	<-done
}

// rawConnect is an MQTT CONNECT of the given protocol level and flags,
// with client id "c" and, if user is set, a user name.
func rawConnect(level, flags byte, user string) []byte {
	name := "MQTT"
	if level == 3 {
		name = "MQIsdp"
	}
	v := []byte{0, byte(len(name))}
	v = append(v, name...)
	v = append(v, level, flags, 0, 60)
	if level == 5 {
		v = append(v, 0) // no properties
	}
	v = append(v, 0, 1, 'c')
	if user != "" {
		v = append(v, 0, byte(len(user)))
		v = append(v, user...)
	}
	return append([]byte{0x10, byte(len(v))}, v...)
}

// Beyond MaxConnections a client gets CONNACK 3 "server unavailable"
// (MQTT 5: 0x89 "server busy") and the connection closes; below it again,
// clients connect. (Before: no limit.)
func TestConnectionLimit(t *testing.T) {
	s := startServer(t, Options{MaxConnections: 3, HTTPAddr: "127.0.0.1:0"})
	var toks []string
	for i := range 4 {
		d, err := s.CreateDevice(DeviceSpec{Name: fmt.Sprintf("lim-%d", i)})
		require.NoError(t, err)
		toks = append(toks, d.Credentials.Token)
	}
	var clients []*client
	for i := range 3 {
		clients = append(clients, connectTCP(t, s, "c", toks[i], ""))
	}
	_, code, err := dialClient(t, tcpDial(s.MQTTAddr()), "c", toks[3], "")
	require.Error(t, err)
	require.Equal(t, byte(3), code, "CONNACK 3 beyond the limit")

	c, err := net.Dial("tcp", s.MQTTAddr())
	require.NoError(t, err)
	c.Write(rawConnect(5, 0x82, toks[3]))
	require.Equal(t, []byte{0x20, 0x03, 0x00, 0x89, 0x00}, waitClosed(t, c, 5*time.Second), "MQTT 5: server busy")

	clients[0].c.Disconnect(0)
	require.Eventually(t, func() bool { return s.Stats().Listeners["mqtt"].Open < 3 }, 5*time.Second, 5*time.Millisecond)
	connectTCP(t, s, "c", toks[3], "") // room again
	st := getStats(t, s.HTTPAddr()).Listeners["mqtt"]
	require.Equal(t, int64(2), st.RefusedOverLimit)
	require.Equal(t, 3, st.MaxConnections)
}

// A connection that has not sent a whole CONNECT ConnectTimeout after it
// was accepted is closed, whether it sends nothing or a byte at a time; a
// connected client with keepalive 0 is not. (Before: idle sockets were
// kept forever.)
func TestConnectTimeout(t *testing.T) {
	s := startServer(t, Options{ConnectTimeout: 300 * time.Millisecond})
	d, err := s.CreateDevice(DeviceSpec{Name: "ka0"})
	require.NoError(t, err)

	silent, err := net.Dial("tcp", s.MQTTAddr())
	require.NoError(t, err)
	defer silent.Close()
	slow, err := net.Dial("tcp", s.MQTTAddr())
	require.NoError(t, err)
	defer slow.Close()
	start := time.Now()
	go func() { // the CONNECT a byte every 50 ms: 1.5 s for all of it
		for _, b := range rawConnect(4, 0x82, d.Credentials.Token) {
			if _, err := slow.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	require.Empty(t, waitClosed(t, silent, 5*time.Second))
	require.Empty(t, waitClosed(t, slow, 5*time.Second), "no CONNACK for a CONNECT that came too slowly")
	require.Less(t, time.Since(start), time.Second, "closed at the timeout, not when the CONNECT ended")

	opts := paho.NewClientOptions().AddBroker("tcp://" + s.MQTTAddr()).SetClientID("ka0").SetUsername(d.Credentials.Token).
		SetKeepAlive(0).SetAutoReconnect(false).SetProtocolVersion(4)
	cl := paho.NewClient(opts)
	tok := cl.Connect()
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())
	defer cl.Disconnect(0)
	// A whole connect timeout later, the session is still served: the
	// deadline went with the CONNECT.
	deadline := time.Now().Add(3 * s.opts.ConnectTimeout)
	for time.Now().Before(deadline) {
		p := cl.Publish(tbapi.TopicTelemetry, 1, false, `{"a":1}`)
		require.True(t, p.WaitTimeout(5*time.Second))
		require.NoError(t, p.Error())
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, int64(2), s.Stats().Listeners["mqtt"].ConnectTimeouts)
}

// Protocol violations close the connection. A CONNECT that breaks the
// protocol gets no CONNACK, as in ThingsBoard, whose Netty MqttDecoder
// fails the message and whose MqttTransportHandler then closes the channel;
// violations after the CONNECT close it too. (Before: a reserved flag or an
// unknown protocol level got CONNACK 0x82, a code MQTT 3.1.1 does not have.)
func TestProtocolViolationsClose(t *testing.T) {
	s := startServer(t, Options{})
	d, err := s.CreateDevice(DeviceSpec{Name: "pv"})
	require.NoError(t, err)
	tok := d.Credentials.Token
	good := rawConnect(4, 0x82, tok)
	connack := []byte{0x20, 0x02, 0x00, 0x00}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	badName := rawConnect(4, 0x82, tok)
	copy(badName[4:8], "MQTX")
	cases := []struct {
		name  string
		bytes []byte
		want  []byte // what the server sends before closing
	}{
		{"reserved flag 3.1.1", rawConnect(4, 0x83, tok), nil},
		{"reserved flag 5", rawConnect(5, 0x83, tok), nil},
		{"CONNECT header flags", cat([]byte{0x11}, good[1:]), nil},
		{"protocol level 6", rawConnect(6, 0x82, tok), nil},
		{"protocol name", badName, nil},
		{"PINGREQ first", []byte{0xC0, 0x00}, nil},
		{"remaining length of 5 bytes", []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x7f}, nil},
		{"CONNECT too large", []byte{0x10, 0xff, 0xff, 0x7f}, nil},
		{"PUBLISH QoS 3", cat(good, []byte{0x36, 5, 0, 1, 'x', 0, 1}), connack},
		{"SUBSCRIBE flags", cat(good, []byte{0x80, 6, 0, 1, 0, 1, '#', 1}), connack},
		{"second CONNECT", cat(good, good), connack},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.MQTTAddr())
			require.NoError(t, err)
			defer c.Close()
			c.Write(tc.bytes)
			got := waitClosed(t, c, 5*time.Second)
			if tc.want == nil {
				require.Empty(t, got, "no CONNACK")
			} else {
				require.Equal(t, tc.want, got[:min(len(got), len(tc.want))])
			}
		})
	}
	require.Equal(t, int64(8), s.Stats().Listeners["mqtt"].ProtocolErrors)
	connectTCP(t, s, "pv", tok, "") // the server serves on
}

// Sessions of different credentials never evict each other, whatever their
// client ids: devices use their MAC, which is public, as client id. Every
// combination below keeps both devices connected and served.
func TestClientIDsNeverEvict(t *testing.T) {
	s := startServer(t, Options{})
	mac := "24:0A:C4:00:00:04"
	a, err := s.CreateDevice(DeviceSpec{Name: mac})
	require.NoError(t, err)
	b, err := s.CreateDevice(DeviceSpec{Name: "24:0A:C4:00:00:05"})
	require.NoError(t, err)
	ca := connectTCP(t, s, mac, a.Credentials.Token, "")
	ca.sub(t, tbapi.TopicAttributes)

	// Another device, a wrong token, provisioning and a persistent session,
	// all with A's client id.
	cb := connectTCP(t, s, mac, b.Credentials.Token, "")
	cb.sub(t, tbapi.TopicAttributes)
	_, code, err := dialClient(t, tcpDial(s.MQTTAddr()), mac, "not-a-token", "")
	require.Error(t, err)
	require.Equal(t, byte(5), code)
	p := connectTCP(t, s, mac, "provision", "")
	p.pub(t, tbapi.TopicProvisionRequest, provisionReq("24:0A:C4:00:00:06"))
	p.expect(t, tbapi.TopicProvisionResponse)
	// (Another device: a second session of B with this client id would end
	// cb's, as ThingsBoard ends the older session of one device and client id.)
	c3, err := s.CreateDevice(DeviceSpec{Name: "24:0A:C4:00:00:07"})
	require.NoError(t, err)
	opts := paho.NewClientOptions().AddBroker("tcp://" + s.MQTTAddr()).SetClientID(mac).SetUsername(c3.Credentials.Token).
		SetCleanSession(false).SetAutoReconnect(false).SetProtocolVersion(4)
	persistent := paho.NewClient(opts)
	tk := persistent.Connect()
	require.True(t, tk.WaitTimeout(5*time.Second))
	require.NoError(t, tk.Error())
	defer persistent.Disconnect(0)

	for _, c := range []*client{ca, cb} {
		c.pub(t, tbapi.TopicTelemetry, `{"alive":true}`)
	}
	require.NoError(t, s.SetSharedAttributes(a.ID, []tbapi.Member{{Key: "for", Value: tbapi.Value{Kind: tbapi.String, Str: "a"}}}))
	require.NoError(t, s.SetSharedAttributes(b.ID, []tbapi.Member{{Key: "for", Value: tbapi.Value{Kind: tbapi.String, Str: "b"}}}))
	require.JSONEq(t, `{"for":"a"}`, string(ca.expect(t, tbapi.TopicAttributes)))
	require.JSONEq(t, `{"for":"b"}`, string(cb.expect(t, tbapi.TopicAttributes)))
	require.True(t, s.Connected(a.ID))
	require.True(t, s.Connected(b.ID))
	select {
	case err := <-ca.lost:
		t.Fatalf("A was disconnected: %v", err)
	case err := <-cb.lost:
		t.Fatalf("B was disconnected: %v", err)
	default:
	}
}

// MQTT over TLS goes through the same guard: a device connects and
// publishes; the connection limit counts TCP and TLS together (beyond it a
// TLS client is closed: a CONNACK would need a handshake first).
func TestMQTTSListener(t *testing.T) {
	cert, pool := selfSigned(t)
	s := startServer(t, Options{TLSAddr: "127.0.0.1:0", TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, MaxConnections: 2})
	d, err := s.CreateDevice(DeviceSpec{Name: "tls-dev"})
	require.NoError(t, err)
	tlsDial := func() (net.Conn, error) {
		return tls.Dial("tcp", s.TLSAddr(), &tls.Config{RootCAs: pool})
	}
	c, _, err := dialClient(t, tlsDial, "tls-dev", d.Credentials.Token, "")
	require.NoError(t, err)
	c.pub(t, tbapi.TopicTelemetry, `{"over":"tls"}`)
	connectTCP(t, s, "tcp-dev", d.Credentials.Token, "") // the second of two
	_, _, err = dialClient(t, tlsDial, "tls-dev", d.Credentials.Token, "")
	require.Error(t, err, "beyond the limit")
	st := s.Stats().Listeners
	require.Equal(t, int64(1), st["mqtts"].RefusedOverLimit)
	require.Equal(t, int64(2), st["mqtt"].Open, "one counter for both listeners")
}

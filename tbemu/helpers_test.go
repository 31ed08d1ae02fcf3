package tbemu

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
)

// startServer runs an emulator on loopback for a test.
func startServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.MQTTAddr == "" {
		opts.MQTTAddr = "127.0.0.1:0"
	}
	if opts.OTAPackInterval == 0 {
		opts.OTAPackInterval = 10 * time.Millisecond
	}
	s, err := New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return s.MQTTAddr() != "" && !strings.HasSuffix(s.MQTTAddr(), ":0") }, 5*time.Second, 10*time.Millisecond)
	return s
}

type msg struct {
	topic   string
	payload []byte
}

// client is a plain paho MQTT 3.1.1 client, as a device or an SDK would be.
type client struct {
	c    paho.Client
	msgs chan msg
	lost chan error
}

func dialClient(t testing.TB, dial func() (net.Conn, error), id, user, pass string) (*client, byte, error) {
	t.Helper()
	cl := &client{msgs: make(chan msg, 4096), lost: make(chan error, 1)}
	opts := paho.NewClientOptions().AddBroker("tcp://emulator:1883").
		SetClientID(id).SetUsername(user).SetPassword(pass).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(true).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second).
		SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) { return dial() }).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { cl.msgs <- msg{m.Topic(), m.Payload()} }).
		SetConnectionLostHandler(func(_ paho.Client, err error) { cl.lost <- err })
	cl.c = paho.NewClient(opts)
	tok := cl.c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, tok.(*paho.ConnectToken).ReturnCode(), err
	}
	t.Cleanup(func() { cl.c.Disconnect(0) })
	return cl, 0, nil
}

func tcpDial(addr string) func() (net.Conn, error) {
	return func() (net.Conn, error) { return net.Dial("tcp", addr) }
}

func connectTCP(t testing.TB, s *Server, id, user, pass string) *client {
	t.Helper()
	c, code, err := dialClient(t, tcpDial(s.MQTTAddr()), id, user, pass)
	require.NoError(t, err, "CONNACK %d", code)
	return c
}

func (c *client) pub(t testing.TB, topic, payload string) {
	t.Helper()
	tok := c.c.Publish(topic, 1, false, payload)
	require.True(t, tok.WaitTimeout(5*time.Second), "no PUBACK for %s", topic)
	require.NoError(t, tok.Error())
}

func (c *client) sub(t testing.TB, filter string) byte {
	t.Helper()
	tok := c.c.Subscribe(filter, 1, nil)
	require.True(t, tok.WaitTimeout(5*time.Second))
	return tok.(*paho.SubscribeToken).Result()[filter]
}

// expect waits for the next message on topic (others are skipped).
func (c *client) expect(t testing.TB, topic string) []byte {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-c.msgs:
			if m.topic == topic {
				return m.payload
			}
		case <-deadline:
			t.Fatalf("no message on %s", topic)
			return nil
		}
	}
}

// next returns the next message, whatever its topic.
func (c *client) next(t testing.TB) msg {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
		return msg{}
	}
}

// closed waits for the server to drop the connection.
func (c *client) closed(t testing.TB) {
	t.Helper()
	select {
	case <-c.lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not close the connection")
	}
}

// discardConn is a core connection that drops what it is sent.
type discardConn struct{}

func (discardConn) Deliver(string, []byte, byte) {}
func (discardConn) Close(string)                 {}

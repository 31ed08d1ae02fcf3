package direct_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
	"github.com/tbsim/tbsim/tbemu/direct"
	"github.com/tbsim/tbsim/tbemu/emutest"
)

// What a simulator that may not import tbemu declares on its side: the same
// methods, spelled with plain types and the same interface literals (as
// aliases or inline; a defined interface type would be a different type).
type (
	simConn = interface {
		Deliver(topic string, payload []byte, qos byte)
		Close(reason string)
	}
	simSession = interface{ ID() uint64 }
	simServer  interface {
		Connect(conn simConn, clientID, username, password string) (simSession, byte)
		Publish(s simSession, topic string, payload []byte, qos byte) bool
		Subscribe(s simSession, filter string, qos byte) byte
		Unsubscribe(s simSession, filter string)
		Ping(s simSession)
		Disconnect(s simSession)
	}
	simClock interface {
		Now() time.Time
		At(t time.Time, f func()) (stop func() bool)
	}
	simRand interface{ Uint64() uint64 }
)

// The adapter satisfies the simulator's interfaces without either side
// naming the other's types; the simulator's clock and source satisfy the core's.
var (
	_ simServer  = (*direct.Server)(nil)
	_ core.Clock = simClock(nil)
	_ core.Rand  = simRand(nil)
)

type recorder struct {
	topics []string
	closed []string
}

func (r *recorder) Deliver(topic string, payload []byte, qos byte) {
	r.topics = append(r.topics, topic)
}
func (r *recorder) Close(reason string) { r.closed = append(r.closed, reason) }

// The example of the package documentation: provision, connect, publish
// telemetry, download a chunk.
func TestProvisionConnectTelemetryChunk(t *testing.T) {
	clock := emutest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	c, err := core.New(core.Options{Clock: clock, Rand: rand.NewPCG(1, 1)})
	require.NoError(t, err)
	defer c.Close()
	var srv simServer = direct.New(c)

	rec := &recorder{}
	var answer []byte
	conn := &funcConn{deliver: func(topic string, p []byte, qos byte) { answer = p }, close: rec.Close}
	s, code := srv.Connect(conn, "provision", "provision", "")
	require.Equal(t, direct.ConnAccepted, code)
	req := tbapi.ProvisionRequest{DeviceName: "24:0A:C4:00:00:04", Key: "tbsim-provision-key", Secret: "tbsim-provision-secret"}
	require.True(t, srv.Publish(s, tbapi.TopicProvisionRequest, req.Encode(), 1))
	resp, err := tbapi.DecodeProvisionResponse(answer)
	require.NoError(t, err)
	require.Equal(t, tbapi.ProvisionSuccess, resp.Status)
	srv.Disconnect(s)

	d, _ := c.DeviceByName("24:0A:C4:00:00:04")
	pkg, err := c.AddFirmware(core.PackageSpec{Title: "CORE_ESP32", Version: "1.1.0"}, []byte("\xE9image"), tbapi.SHA256)
	require.NoError(t, err)
	require.NoError(t, c.AssignDeviceFirmware(d.ID, pkg.ID))

	var chunk []byte
	dev := &funcConn{deliver: func(topic string, p []byte, qos byte) {
		if topic == tbapi.FwResponseTopic(1, 0) {
			chunk = p
		}
	}, close: rec.Close}
	s, code = srv.Connect(dev, "24:0A:C4:00:00:04", resp.Token, "")
	require.Equal(t, direct.ConnAccepted, code)
	require.Equal(t, byte(1), srv.Subscribe(s, tbapi.TopicAttributes, 1))
	require.True(t, srv.Publish(s, tbapi.TopicTelemetry, []byte(`{"temperature":21.5}`), 1))
	require.False(t, srv.Publish(s, tbapi.TopicTelemetry, []byte(`{"temperature":21.5}`), 0), "QoS 0: no PUBACK")
	require.True(t, srv.Publish(s, tbapi.FwRequestTopic(1, 0), []byte("4096"), 1))
	require.Equal(t, "\xE9image", string(chunk))
	require.Equal(t, "21.5", c.Latest(d.ID)["temperature"].Value.Str)
	srv.Disconnect(s)
	require.False(t, srv.Publish(s, tbapi.TopicTelemetry, []byte(`{}`), 1), "after Disconnect")
	require.Empty(t, rec.closed, "a client-side disconnect does not call Close")

	s, code = srv.Connect(rec, "x", "bad", "")
	require.Nil(t, s)
	require.Equal(t, direct.ConnRefusedNotAuthorized, code)
}

type funcConn struct {
	deliver func(string, []byte, byte)
	close   func(string)
}

func (f *funcConn) Deliver(topic string, p []byte, qos byte) { f.deliver(topic, p, qos) }
func (f *funcConn) Close(reason string)                      { f.close(reason) }

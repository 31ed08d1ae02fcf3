package mochihook_test

import (
	"io"
	"log/slog"
	"net"
	"net/url"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
	"github.com/tbsim/tbsim/tbemu/mochihook"
)

// The hook in a broker of the test's own making, as another program would
// use it: configured through AddHook, clients over net.Pipe.
func TestHookInABareBroker(t *testing.T) {
	c, err := core.New(core.Options{})
	require.NoError(t, err)
	defer c.Close()
	srv := mqtt.New(&mqtt.Options{Capabilities: mochihook.Capabilities(), InlineClient: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.ErrorIs(t, srv.AddHook(new(mochihook.Hook), nil), mqtt.ErrInvalidConfigType, "the core is required")
	require.NoError(t, srv.AddHook(new(mochihook.Hook), &mochihook.Options{Core: c}))
	require.NoError(t, srv.Serve())
	defer srv.Close()

	dial := func(id, user string) (paho.Client, chan paho.Message, error) {
		msgs := make(chan paho.Message, 16)
		opts := paho.NewClientOptions().AddBroker("tcp://broker:1883").SetClientID(id).SetUsername(user).
			SetProtocolVersion(4).SetAutoReconnect(false).SetOrderMatters(true).
			SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) {
				client, server := net.Pipe()
				go srv.EstablishConnection("pipe", server)
				return client, nil
			}).
			SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { msgs <- m })
		cl := paho.NewClient(opts)
		tok := cl.Connect()
		require.True(t, tok.WaitTimeout(5*time.Second))
		return cl, msgs, tok.Error()
	}
	next := func(msgs chan paho.Message) paho.Message {
		select {
		case m := <-msgs:
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no message")
			return nil
		}
	}

	p, msgs, err := dial("provision", "provision")
	require.NoError(t, err)
	req := tbapi.ProvisionRequest{DeviceName: "dev-1", Key: "tbsim-provision-key", Secret: "tbsim-provision-secret"}
	require.True(t, p.Publish(tbapi.TopicProvisionRequest, 1, false, req.Encode()).WaitTimeout(5*time.Second))
	m := next(msgs)
	require.Equal(t, tbapi.TopicProvisionResponse, m.Topic(), "answered without a subscription")
	resp, err := tbapi.DecodeProvisionResponse(m.Payload())
	require.NoError(t, err)
	p.Disconnect(0)

	d, msgs, err := dial("dev-1", resp.Token)
	require.NoError(t, err)
	defer d.Disconnect(0)
	require.True(t, d.Publish(tbapi.TopicTelemetry, 1, false, `{"temperature":21.5}`).WaitTimeout(5*time.Second))
	dev, _ := c.DeviceByName("dev-1")
	require.Equal(t, "21.5", c.Latest(dev.ID)["temperature"].Value.Str)
	tok := d.Subscribe("#", 1, nil)
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.Equal(t, byte(0x80), tok.(*paho.SubscribeToken).Result()["#"], "only ThingsBoard's filters")
	require.True(t, d.Subscribe(tbapi.TopicAttributes, 1, nil).WaitTimeout(5*time.Second))
	require.NoError(t, c.SetSharedAttributes(dev.ID, []tbapi.Member{{Key: "k", Value: tbapi.Value{Kind: tbapi.String, Str: "v"}}}))
	m = next(msgs)
	require.Equal(t, tbapi.TopicAttributes, m.Topic())
	require.Equal(t, `{"k":"v"}`, string(m.Payload()))

	_, _, err = dial("x", "BADTOKEN")
	require.ErrorContains(t, err, "not Authorized")
}

package core_test

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

// The core tests play the simulator: one goroutine, a manual clock, a
// seeded source, and connections that record what the core sends them.

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	key    = "tbsim-provision-key"
	secret = "tbsim-provision-secret"
)

type rig struct {
	t     *testing.T
	clock *emutest.Clock
	core  *core.Core
	srv   *direct.Server
}

func newRig(t *testing.T, opts core.Options) *rig {
	t.Helper()
	clock := emutest.NewClock(t0)
	opts.Clock = clock
	if opts.Rand == nil {
		opts.Rand = rand.NewPCG(1, 2)
	}
	c, err := core.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &rig{t: t, clock: clock, core: c, srv: direct.New(c)}
}

type msg struct {
	topic   string
	payload string
	qos     byte
	at      time.Time
}

// client is the simulator's end of one connection.
type client struct {
	r        *rig
	sess     direct.Session
	msgs     []msg
	closed   string
	closedAt time.Time
}

func (c *client) Deliver(topic string, payload []byte, qos byte) {
	if c.closed != "" {
		c.r.t.Errorf("delivered %s after close (%s)", topic, c.closed)
	}
	c.msgs = append(c.msgs, msg{topic, string(payload), qos, c.r.clock.Now()})
}

func (c *client) Close(reason string) {
	if c.closed != "" {
		c.r.t.Errorf("closed twice: %s, then %s", c.closed, reason)
	}
	c.closed, c.closedAt = reason, c.r.clock.Now()
}

func (r *rig) dial(clientID, user, pass string) (*client, byte) {
	c := &client{r: r}
	s, code := r.srv.Connect(c, clientID, user, pass)
	c.sess = s
	return c, code
}

func (r *rig) connect(clientID, user, pass string) *client {
	r.t.Helper()
	c, code := r.dial(clientID, user, pass)
	require.Equal(r.t, core.ConnAccepted, code, "CONNACK")
	return c
}

// device creates a device and connects it.
func (r *rig) device(name string, spec core.DeviceSpec) (core.Device, *client) {
	r.t.Helper()
	spec.Name = name
	d, err := r.core.CreateDevice(spec)
	require.NoError(r.t, err)
	return d, r.connect(name, d.Credentials.Token, "")
}

// pub publishes at QoS 1 and returns whether a PUBACK is owed.
func (c *client) pub(topic, payload string) bool {
	return c.r.srv.Publish(c.sess, topic, []byte(payload), 1)
}

func (c *client) sub(filter string, qos byte) byte { return c.r.srv.Subscribe(c.sess, filter, qos) }

// take removes and returns the first message on topic.
func (c *client) take(topic string) msg {
	c.r.t.Helper()
	for i, m := range c.msgs {
		if m.topic == topic {
			c.msgs = append(c.msgs[:i], c.msgs[i+1:]...)
			return m
		}
	}
	c.r.t.Fatalf("no message on %s; have %v", topic, c.msgs)
	return msg{}
}

func (c *client) none() {
	c.r.t.Helper()
	require.Empty(c.r.t, c.msgs)
}

func str(v string) tbapi.Value { return tbapi.Value{Kind: tbapi.String, Str: v} }

func provisionReq(name string) string {
	return string(tbapi.ProvisionRequest{DeviceName: name, Key: key, Secret: secret}.Encode())
}

func rand64(seed uint64) core.Rand { return rand.NewPCG(seed, seed) }

package tbemu

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// conn is one MQTT connection as the device API sees it.
type conn struct {
	cl        *mqtt.Client
	deviceID  string // "" for a provisioning session
	provision bool
	connected time.Time
	active    atomic.Int64 // unix ns of the last packet from the device

	mu   sync.Mutex
	subs map[string]byte // filter -> granted QoS
	// fwReq caches, per chunk request id, the package and chunk size (as
	// ThingsBoard caches the package id per request id for the session).
	fwReq map[string]fwRequest
	// rate limiting: a token bucket of messages
	tokens   float64
	lastFill time.Time
}

type fwRequest struct {
	pkgID string
	size  int
}

func newConn(cl *mqtt.Client, deviceID string, provision bool) *conn {
	c := &conn{cl: cl, deviceID: deviceID, provision: provision, connected: time.Now(),
		subs: map[string]byte{}, fwReq: map[string]fwRequest{}}
	c.active.Store(c.connected.UnixNano())
	return c
}

// subscribedQoS returns the QoS of the first subscription matching topic.
func (c *conn) subscribedQoS(topic string) (byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for f, q := range c.subs {
		if topicMatch(f, topic) {
			return q, true
		}
	}
	return 0, false
}

// write sends a PUBLISH to this connection only, at the QoS of the first
// matching subscription or 1 without one (ThingsBoard's rule). QoS 1 packets
// get an id and an inflight entry so the device's PUBACK is matched.
func (c *conn) write(topic string, payload []byte) error {
	qos, ok := c.subscribedQoS(topic)
	if !ok {
		qos = 1
	}
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
		TopicName:   topic,
		Payload:     payload,
		Created:     time.Now().Unix(),
	}
	if qos > 0 {
		id, err := c.cl.NextPacketID()
		if err != nil {
			return err
		}
		pk.PacketID = uint16(id)
		c.cl.State.Inflight.Set(pk)
	}
	return c.cl.WritePacket(pk)
}

// allow takes one message from the connection's token bucket.
func (c *conn) allow(rate float64, now time.Time) bool {
	if rate <= 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastFill.IsZero() {
		c.tokens, c.lastFill = rate, now
	}
	c.tokens = min(rate, c.tokens+now.Sub(c.lastFill).Seconds()*rate)
	c.lastFill = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// topicMatch reports whether an MQTT filter matches a topic name.
func topicMatch(filter, topic string) bool {
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		if f == "#" {
			return true
		}
		if i >= len(ts) || (f != "+" && f != ts[i]) {
			return false
		}
	}
	return len(fs) == len(ts)
}

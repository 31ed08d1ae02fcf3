package core

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// TransportLimits are a device's transport rate limits, each a list of
// "capacity:seconds" windows joined by commas ("20:1,600:60"; "" for none),
// as ThingsBoard's tenant profile sets them for every device of the tenant
// (DefaultTenantProfileConfiguration transportDeviceMsgRateLimit,
// transportDeviceTelemetryMsgRateLimit,
// transportDeviceTelemetryDataPointsRateLimit). tbemu has one tenant and no
// tenant profiles, so each device profile carries them.
//
// They are kept as ThingsBoard's DefaultTransportRateLimitService keeps them:
// one set of buckets per device (shared by its sessions), every window a
// bucket that starts full and refills capacity tokens per period smoothly
// (bucket4j's greedy refill, TbRateLimits); a message takes a token from
// every window or is refused. A publish with data points (telemetry, and
// client attributes, which ThingsBoard counts the same way) takes one
// TelemetryMessages token and one TelemetryDataPoints token per point; any
// other counted publish (an attribute request, a client-side RPC, an RPC
// response, the first chunk request of a request id) and the CONNECT take a
// Messages token. A refused publish closes the session (MQTT 5: DISCONNECT
// 0x83); a refused CONNECT gets CONNACK 3 (MQTT 5: 0x9F, then DISCONNECT
// 0x96).
type TransportLimits struct {
	Messages            string `json:",omitempty"`
	TelemetryMessages   string `json:",omitempty"`
	TelemetryDataPoints string `json:",omitempty"`
}

// Validate checks each limit as ThingsBoard does (RateLimitUtil.isValid and
// RateLimitEntry.parse): positive integers, one capacity per duration.
func (l TransportLimits) Validate() error {
	var errs []error
	for _, f := range []struct{ name, cfg string }{
		{"messages", l.Messages}, {"telemetryMessages", l.TelemetryMessages}, {"telemetryDataPoints", l.TelemetryDataPoints},
	} {
		if _, err := parseLimit(f.cfg); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s rate limit %q: %v", ErrInvalid, f.name, f.cfg, err))
		}
	}
	return errors.Join(errs...)
}

// Limits returns the limits in force for the profile's devices:
// p.TransportLimits, with RateLimit (when set) standing for "r:1" in
// Messages and TelemetryMessages where those are empty.
func (p Profile) Limits() TransportLimits {
	l := p.TransportLimits
	if p.RateLimit > 0 {
		r := perSecond(p.RateLimit)
		if l.Messages == "" {
			l.Messages = r
		}
		if l.TelemetryMessages == "" {
			l.TelemetryMessages = r
		}
	}
	return l
}

// perSecond writes r messages per second as a ThingsBoard limit: whole
// capacities over the shortest whole number of seconds ("2.5" is "5:2").
// It runs for every message of a device with a RateLimit, so the few rates
// in use are kept.
func perSecond(r float64) string {
	if s, ok := perSecondMemo.Load(r); ok {
		return s.(string)
	}
	s := formatPerSecond(r)
	perSecondMemo.Store(r, s)
	return s
}

var perSecondMemo sync.Map // float64 -> string

func formatPerSecond(r float64) string {
	for d := 1.0; d <= 1000; d++ {
		if n := r * d; math.Abs(n-math.Round(n)) < 1e-9 && math.Round(n) >= 1 {
			return strconv.FormatFloat(math.Round(n), 'f', -1, 64) + ":" + strconv.FormatFloat(d, 'f', -1, 64)
		}
	}
	return strconv.FormatFloat(max(1, math.Round(r*1000)), 'f', -1, 64) + ":1000"
}

// window is one "capacity:seconds" entry.
type window struct {
	capacity float64
	period   time.Duration
}

func parseLimit(cfg string) ([]window, error) {
	if cfg == "" {
		return nil, nil
	}
	var out []window
	seen := map[int64]bool{}
	for _, e := range strings.Split(cfg, ",") {
		c, d, ok := strings.Cut(e, ":")
		capacity, err1 := strconv.ParseInt(c, 10, 64)
		secs, err2 := strconv.ParseInt(d, 10, 64)
		if !ok || err1 != nil || err2 != nil || capacity <= 0 || secs <= 0 || secs > math.MaxInt64/int64(time.Second) {
			return nil, fmt.Errorf("want capacity:seconds, positive integers, got %q", e)
		}
		if seen[secs] {
			return nil, fmt.Errorf("two capacities for %d s", secs)
		}
		seen[secs] = true
		out = append(out, window{float64(capacity), time.Duration(secs) * time.Second})
	}
	return out, nil
}

// bucket is one limit: a token count per window.
type bucket struct {
	cfg     string
	windows []window
	tokens  []float64
	last    time.Time
}

// newBucket returns nil for no limit (or one that does not parse: profiles
// are validated when saved).
func newBucket(cfg string) *bucket {
	ws, err := parseLimit(cfg)
	if err != nil || len(ws) == 0 {
		return nil
	}
	b := &bucket{cfg: cfg, windows: ws, tokens: make([]float64, len(ws))}
	for i, w := range ws {
		b.tokens[i] = w.capacity
	}
	return b
}

// take takes n tokens from every window, or none. A nil bucket allows all.
func (b *bucket) take(n float64, now time.Time) bool {
	if b == nil || n <= 0 {
		return true
	}
	if !b.last.IsZero() && now.After(b.last) {
		dt := now.Sub(b.last).Seconds()
		for i, w := range b.windows {
			b.tokens[i] = min(w.capacity, b.tokens[i]+dt*w.capacity/w.period.Seconds())
		}
	}
	if now.After(b.last) {
		b.last = now
	}
	for _, t := range b.tokens {
		if t < n-1e-9 { // float dust from the refill must not refuse a whole token
			return false
		}
	}
	for i := range b.tokens {
		b.tokens[i] -= n
	}
	return true
}

// deviceLimits are one device's buckets.
type deviceLimits struct {
	mu                          sync.Mutex
	messages, telemetry, points *bucket
}

// renew replaces the buckets whose configuration changed, keeping the
// others' tokens (DefaultTransportRateLimitService.merge).
func (d *deviceLimits) renew(l TransportLimits) {
	re := func(b **bucket, cfg string) {
		if cur := *b; (cur == nil && cfg != "") || (cur != nil && cur.cfg != cfg) {
			*b = newBucket(cfg)
		}
	}
	re(&d.messages, l.Messages)
	re(&d.telemetry, l.TelemetryMessages)
	re(&d.points, l.TelemetryDataPoints)
}

// errRateLimited closes a session that went over a limit.
var errRateLimited = errors.New(ReasonRateLimit)

// allow counts one message of the device: a regular one (points 0) or one
// with data points (checkEntityRateLimit). It reads the profile's limits on
// every call, so a changed profile applies to the next message.
func (c *Core) allow(deviceID string, points int) bool {
	l := c.limitsOf(deviceID)
	if l == (TransportLimits{}) {
		return true // the common case: no lock, no per-device state
	}
	v, ok := c.limiters.Load(deviceID)
	if !ok {
		v, _ = c.limiters.LoadOrStore(deviceID, &deviceLimits{})
	}
	d := v.(*deviceLimits)
	now := c.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.renew(l)
	if points > 0 {
		// Both windows in turn, as ThingsBoard's && does: a refused data
		// point count keeps the telemetry message's token taken.
		return d.telemetry.take(1, now) && d.points.take(float64(points), now)
	}
	return d.messages.take(1, now)
}

// limitsOf returns the limits in force for a device's profile.
func (c *Core) limitsOf(deviceID string) TransportLimits {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	if d := c.store.devices[deviceID]; d != nil {
		if p := c.store.profiles[d.ProfileID]; p != nil {
			return p.Limits()
		}
	}
	return TransportLimits{}
}

// rateLimited records a refused message; the session closes with the error.
func (c *Core) rateLimited(deviceID string) error {
	c.stats.rateLimited.Add(1)
	c.touchCause(deviceID, "rate limit")
	return errRateLimited
}

// dataPoints counts what ThingsBoard counts: the non-null values.
func dataPoints(members []tbapi.Member) int {
	n := 0
	for _, m := range members {
		if m.Value.Kind != tbapi.Null {
			n++
		}
	}
	return n
}

// sessionLimits is the getSessionLimits answer
// (MqttTransportHandler.onGetSessionLimitsRpc, SessionLimits serialized by
// Jackson: fields in declaration order, a limit not set as null).
func (c *Core) sessionLimits(deviceID string) []byte {
	l := c.limitsOf(deviceID)
	opt := func(o *tbapi.Obj, k, v string) *tbapi.Obj {
		if v == "" {
			return o.Raw(k, []byte("null"))
		}
		return o.Str(k, v)
	}
	rl := tbapi.NewObj(nil)
	opt(rl, "messages", l.Messages)
	opt(rl, "telemetryMessages", l.TelemetryMessages)
	opt(rl, "telemetryDataPoints", l.TelemetryDataPoints)
	return tbapi.NewObj(nil).Int("maxPayloadSize", MaxPacketSize).Int("maxInflightMessages", maxInflightMessages).
		Raw("rateLimits", rl.Bytes()).Bytes()
}

// maxInflightMessages is ThingsBoard's MQTT_MSG_QUEUE_SIZE_PER_DEVICE_LIMIT
// default, which getSessionLimits reports.
const maxInflightMessages = 100

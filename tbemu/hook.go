package tbemu

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// hook is the one mochi hook that turns the broker into ThingsBoard's MQTT
// transport (MqttTransportHandler).
type hook struct {
	mqtt.HookBase
	s   *Server
	seq atomic.Uint64
}

func (h *hook) ID() string { return "thingsboard" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSessionEstablished,
		mqtt.OnDisconnect, mqtt.OnPublish, mqtt.OnSubscribed, mqtt.OnUnsubscribed, mqtt.OnPacketRead,
	}, []byte{b})
}

// OnPacketRead marks activity: any packet, PINGREQ included, as ThingsBoard counts it.
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if c := h.s.connOf(cl); c != nil {
		c.active.Store(time.Now().UnixNano())
	}
	return pk, nil
}

// reapInactive closes sessions idle for longer than the inactivity timeout
// (transport.sessions.inactivity_timeout, 600 s); keepalive itself is not enforced.
func (s *Server) reapInactive(now time.Time) {
	limit := now.Add(-s.opts.InactivityTimeout).UnixNano()
	s.connsMu.Lock()
	var idle []*conn
	for _, c := range s.conns {
		if c.active.Load() < limit {
			idle = append(idle, c)
		}
	}
	s.connsMu.Unlock()
	for _, c := range idle {
		c.cl.Stop(errors.New("session inactivity timeout"))
	}
}

// OnConnect makes every session's id unique: ThingsBoard does not evict a
// session for a repeated client id (the Arduino SDK provisions as "provision"
// from every device), a standard broker would.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	cl.ID = cl.ID + "#" + strconv.FormatUint(h.seq.Add(1), 10)
	return nil
}

// OnConnectAuthenticate follows MqttTransportHandler.processConnect and
// DefaultTransportApiService.validateCredentials. A refusal makes mochi send
// CONNACK 5 under 3.1.1 (0x86 under MQTT 5), as ThingsBoard does.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, pass := string(pk.Connect.Username), string(pk.Connect.Password)
	clientID := strings.SplitN(cl.ID, "#", 2)[0]
	s := h.s
	if user == tbapi.ProvisionUser || clientID == tbapi.ProvisionUser {
		s.addConn(newConn(cl, "", true))
		return true
	}
	id, ok := s.authenticate(clientID, user, pass)
	if !ok {
		s.stats.refused.Add(1)
		return false
	}
	s.addConn(newConn(cl, id, false))
	s.stats.connects.Add(1)
	return true
}

func (s *Server) authenticate(clientID, user, pass string) (string, bool) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	basic := func(id string) bool {
		d := s.store.devices[id]
		return d != nil && d.Credentials.Password == pass
	}
	if user == "" { // MQTT_BASIC by client id only
		id, ok := s.store.byBasic[clientID+"\x00"]
		return id, ok && basic(id)
	}
	if id, ok := s.store.byBasic[clientID+"\x00"+user]; ok {
		return id, basic(id)
	}
	if id, ok := s.store.byToken[user]; ok {
		return id, true // the token is the username; password and client id are ignored
	}
	if id, ok := s.store.byBasic["\x00"+user]; ok {
		return id, basic(id)
	}
	return "", false
}

func (s *Server) addConn(c *conn) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	s.conns[c.cl] = c
	if c.deviceID != "" {
		if s.byDevice[c.deviceID] == nil {
			s.byDevice[c.deviceID] = map[*conn]bool{}
		}
		s.byDevice[c.deviceID][c] = true
	}
}

func (s *Server) connOf(cl *mqtt.Client) *conn {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	return s.conns[cl]
}

// deviceConns returns the device's live connections.
func (s *Server) deviceConns(id string) []*conn {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	out := make([]*conn, 0, len(s.byDevice[id]))
	for c := range s.byDevice[id] {
		out = append(out, c)
	}
	return out
}

func (h *hook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	if c := h.s.connOf(cl); c != nil && c.deviceID != "" {
		h.s.touch(c.deviceID, true)
	}
}

func (h *hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	s := h.s
	s.connsMu.Lock()
	c := s.conns[cl]
	delete(s.conns, cl)
	if c != nil && c.deviceID != "" {
		delete(s.byDevice[c.deviceID], c)
		if len(s.byDevice[c.deviceID]) == 0 {
			delete(s.byDevice, c.deviceID)
		}
	}
	s.connsMu.Unlock()
}

// allowedFilters are the subscriptions ThingsBoard grants; others get 0x80.
var allowedFilters = map[string]bool{
	tbapi.TopicAttributes: true, tbapi.TopicAttrResponseFilter: true,
	tbapi.TopicRPCRequestFilter: true, tbapi.TopicRPCResponseFilter: true,
	tbapi.TopicFwResponseFilter: true, tbapi.TopicFwError: true,
	"v2/sw/response/+/chunk/+": true, "v2/sw/error": true,
	"v2/a/res/+": true, "v2/r/req/+": true, "v2/r/res/+": true,
}

// OnACLCheck allows every publish (the device API decides in OnPublish) and
// only ThingsBoard's subscription filters.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write || cl.Net.Inline {
		return true
	}
	c := h.s.connOf(cl)
	if c == nil {
		return false
	}
	if c.provision {
		return topic == tbapi.TopicProvisionResponse
	}
	return allowedFilters[topic]
}

func (h *hook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	c := h.s.connOf(cl)
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] <= 1 {
			c.subs[f.Filter] = codes[i]
		}
	}
}

func (h *hook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	if c := h.s.connOf(cl); c != nil {
		c.mu.Lock()
		for _, f := range pk.Filters {
			delete(c.subs, f.Filter)
		}
		c.mu.Unlock()
	}
}

// errClose marks a publish that closes the session without an answer
// (3.1.1: an unparseable payload, a bad provision request, a rate limit).
var errClose = errors.New("close session")

// OnPublish consumes every device publish: it is acknowledged (PUBACK for
// QoS 1, also for a QoS 2 publish, which mochi has already lowered to 1, as
// ThingsBoard answers QoS 2) and processed, never routed to subscribers.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	s := h.s
	c := s.connOf(cl)
	if c == nil {
		cl.Stop(errClose)
		return pk, packets.ErrRejectPacket
	}
	var err error
	if c.provision {
		err = s.provisionPublish(c, pk.TopicName, pk.Payload)
	} else {
		err = s.devicePublish(c, pk.TopicName, pk.Payload)
	}
	if err != nil {
		s.log.Debug("closing session", "client", cl.ID, "topic", pk.TopicName, "error", err)
		cl.Stop(err)
		return pk, packets.ErrRejectPacket
	}
	return pk, packets.CodeSuccessIgnore
}

func (s *Server) devicePublish(c *conn, topic string, payload []byte) error {
	now := time.Now()
	if !c.allow(s.rateLimit(c.deviceID), now) {
		s.stats.rateLimited.Add(1)
		s.touchCause(c.deviceID, "rate limit")
		return errors.New("rate limit exceeded")
	}
	s.touch(c.deviceID, false)
	var err error
	switch {
	case topic == tbapi.TopicTelemetry:
		err = s.telemetry(c.deviceID, payload)
	case topic == tbapi.TopicAttributes:
		err = s.clientAttributes(c.deviceID, payload)
	case strings.HasPrefix(topic, tbapi.TopicAttrRequestPrefix):
		err = s.attributeRequest(c, topic, payload)
	case strings.HasPrefix(topic, tbapi.TopicRPCResponsePrefix):
		s.rpcResponse(c.deviceID, topic, payload)
	case strings.HasPrefix(topic, tbapi.TopicRPCRequestPrefix):
		err = s.clientRPC(c, topic, payload)
	case strings.HasPrefix(topic, "v2/fw/request/") || strings.HasPrefix(topic, "v2/sw/request/"):
		err = s.chunkRequest(c, topic, payload)
	default:
		// Unknown topic: PUBACK, and the session stays open.
	}
	if err != nil {
		s.stats.parseErrors.Add(1)
	}
	return err
}

func (s *Server) rateLimit(deviceID string) float64 {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	if d := s.store.devices[deviceID]; d != nil {
		if p := s.store.profiles[d.ProfileID]; p != nil {
			return p.RateLimit
		}
	}
	return 0
}

// touch records activity (and a connect).
func (s *Server) touch(id string, connect bool) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if st := s.store.state[id]; st != nil {
		st.LastActivity = nowMs()
		if connect {
			st.LastConnect = st.LastActivity
		}
		s.store.markDirty(id)
	}
}

// touchCause records why a device's session was closed by the server.
func (s *Server) touchCause(id, cause string) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if st := s.store.state[id]; st != nil {
		st.Attrs[ServerScope]["tbsimLastCloseCause"] = TsValue{Ts: nowMs(), Value: tbapi.Value{Kind: tbapi.String, Str: cause}}
	}
}

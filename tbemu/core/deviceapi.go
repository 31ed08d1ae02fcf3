package core

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// devicePublish routes a device session's publish by topic. An error closes
// the session.
func (c *Core) devicePublish(s *Session, topic string, payload []byte) error {
	_, err := c.devicePublishReason(s, topic, payload)
	return err
}

// devicePublishReason is devicePublish with the MQTT 5 reason code of its
// PUBACK: 0x90 for a topic ThingsBoard does not know.
func (c *Core) devicePublishReason(s *Session, topic string, payload []byte) (byte, error) {
	if !c.allowDevice(s.deviceID, c.rateLimit(s.deviceID), c.clock.Now()) {
		c.stats.rateLimited.Add(1)
		c.touchCause(s.deviceID, "rate limit")
		return 0, errors.New(ReasonRateLimit)
	}
	c.touch(s.deviceID, false)
	var err error
	var reason byte
	switch {
	case topic == tbapi.TopicTelemetry:
		err = c.telemetry(s.deviceID, payload)
	case topic == tbapi.TopicAttributes:
		err = c.clientAttributes(s.deviceID, payload)
	case strings.HasPrefix(topic, tbapi.TopicAttrRequestPrefix):
		err = c.attributeRequest(s, topic, payload)
	case strings.HasPrefix(topic, tbapi.TopicRPCResponsePrefix):
		c.rpcResponse(s.deviceID, topic, payload)
	case strings.HasPrefix(topic, tbapi.TopicRPCRequestPrefix):
		err = c.clientRPC(s, topic, payload)
	case strings.Contains(topic, "v2/fw/request/") || strings.Contains(topic, "v2/sw/request/"):
		var ok bool
		if ok, err = c.chunkRequest(s, topic, payload); !ok && err == nil {
			reason = ReasonTopicNameInvalid
		}
	default:
		// Unknown topic: PUBACK (MQTT 5: 0x90), and the session stays open.
		reason = ReasonTopicNameInvalid
	}
	if err != nil {
		c.stats.parseErrors.Add(1)
	}
	return reason, err
}

func (c *Core) rateLimit(deviceID string) float64 {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	if d := c.store.devices[deviceID]; d != nil {
		if p := c.store.profiles[d.ProfileID]; p != nil {
			return p.RateLimit
		}
	}
	return 0
}

// touch records activity (and a connect).
func (c *Core) touch(id string, connect bool) {
	st := c.store.stateOf(id)
	if st == nil {
		return
	}
	now := c.nowMs()
	st.mu.Lock()
	st.LastActivity = now
	if connect {
		st.LastConnect = now
	}
	st.mu.Unlock()
	c.store.markDirty(id, st)
}

// touchCause records why a device's session was closed by the server.
func (c *Core) touchCause(id, cause string) {
	if st := c.store.stateOf(id); st != nil {
		v := TsValue{Ts: c.nowMs(), Value: tbapi.Value{Kind: tbapi.String, Str: cause}}
		st.mu.Lock()
		st.Attrs[ServerScope]["tbsimLastCloseCause"] = v
		st.mu.Unlock()
	}
}

// telemetry stores every accepted shape (JsonConverter.convertToTelemetry):
// numeric strings become numbers, nulls are skipped.
func (c *Core) telemetry(id string, payload []byte) error {
	entries, err := tbapi.DecodeTelemetry(payload)
	if err != nil {
		return payloadError{err}
	}
	c.stats.telemetryMsgs.Add(1)
	st := c.store.stateOf(id)
	if st == nil {
		return nil
	}
	now := c.nowMs()
	st.mu.Lock()
	st.Msgs++
	for _, e := range entries {
		ts := e.Ts
		if ts == 0 {
			ts = now
		}
		for _, m := range e.Values {
			c.store.setLatest(st, m.Key, TsValue{Ts: ts, Value: tbapi.CastNumeric(m.Value)})
			st.Points++
		}
	}
	st.mu.Unlock()
	c.store.markDirty(id, st)
	return nil
}

func (c *Core) clientAttributes(id string, payload []byte) error {
	ms, err := tbapi.DecodeClientAttributes(payload)
	if err != nil {
		return payloadError{err}
	}
	st := c.store.stateOf(id)
	if st == nil {
		return nil
	}
	now := c.nowMs()
	st.mu.Lock()
	for _, m := range ms {
		if m.Value.Kind != tbapi.Null {
			st.Attrs[ClientScope][m.Key] = TsValue{Ts: now, Value: m.Value}
		}
	}
	st.mu.Unlock()
	c.store.markDirty(id, st)
	return nil
}

// attributeRequest answers on .../attributes/response/{id} with the client
// and shared attributes asked for ({} asks for all of both).
func (c *Core) attributeRequest(s *Session, topic string, payload []byte) error {
	reqID, ok := tbapi.ParseAttrRequestTopic(topic)
	if !ok {
		// Integer.parseInt of the id throws inside the adaptor: a payload
		// error (seen: ThingsBoard 4.3 closes a 3.1.1 session over "abc").
		return payloadError{errors.New("attribute request id: not an integer: " + topic)}
	}
	req, err := tbapi.DecodeAttrRequest(payload)
	if err != nil {
		return payloadError{err}
	}
	if slices.Contains(req.ClientKeys, "") || slices.Contains(req.SharedKeys, "") {
		// An empty key name (clientKeys "") is acknowledged and never
		// answered by ThingsBoard 4.3.
		return nil
	}
	var resp tbapi.AttrResponse
	all := req.ClientKeys == nil && req.SharedKeys == nil
	if st := c.store.stateOf(s.deviceID); st != nil {
		st.mu.Lock()
		if all || req.ClientKeys != nil {
			resp.Client = pick(st.Attrs[ClientScope], req.ClientKeys, all)
		}
		if all || req.SharedKeys != nil {
			resp.Shared = pick(st.Attrs[SharedScope], req.SharedKeys, all)
		}
		st.mu.Unlock()
	}
	c.deliver(s, tbapi.AttrResponseTopic(reqID), resp.Encode())
	return nil
}

func pick(attrs map[string]TsValue, keys []string, all bool) []tbapi.Member {
	var out []tbapi.Member
	if all {
		for _, k := range sortedKeys(attrs) {
			out = append(out, tbapi.Member{Key: k, Value: attrs[k].Value})
		}
		return out
	}
	for _, k := range keys {
		if v, ok := attrs[k]; ok {
			out = append(out, tbapi.Member{Key: k, Value: v.Value})
		}
	}
	return out
}

// clientRPC answers getSessionLimits at once; other methods get
// {"error":"timeout"} after ClientRPCTimeout, as with no rule chain reply.
func (c *Core) clientRPC(s *Session, topic string, payload []byte) error {
	reqID, ok := tbapi.ParseRPCRequestTopic(topic)
	if !ok {
		return nil
	}
	req, err := tbapi.DecodeRPCRequest(payload)
	if err != nil {
		return payloadError{err}
	}
	respTopic := tbapi.RPCResponseTopic(reqID)
	if req.Method == "getSessionLimits" {
		limits := tbapi.NewObj(nil).Int("maxPayloadSize", MaxPacketSize).Int("maxInflightMessages", 100)
		// ThingsBoard lists its three device limits, null when unset.
		rl := tbapi.NewObj(nil)
		if rate := c.rateLimit(s.deviceID); rate > 0 {
			rl.Str("messages", strconv.FormatFloat(rate, 'f', -1, 64)+":1")
		} else {
			rl.Raw("messages", []byte("null"))
		}
		rl.Raw("telemetryMessages", []byte("null")).Raw("telemetryDataPoints", []byte("null"))
		c.deliver(s, respTopic, limits.Raw("rateLimits", rl.Bytes()).Bytes())
		return nil
	}
	s.after(c.opts.ClientRPCTimeout, func() { c.deliver(s, respTopic, []byte(`{"error":"timeout"}`)) })
	return nil
}

// chunkRequest serves v2/fw/request/{id}/chunk/{n} (getOtaPackageCallback).
// The topic is matched as ThingsBoard's FW_REQUEST_PATTERN.find() does: the
// pattern anywhere in it, so ".../chunk/0/extra" asks for chunk 0, and
// ".../chunk/-1" is no chunk request at all (ok false: an unknown topic).
// The size is Integer.parseInt of the payload: not a number closes the
// session; a size of 0 or less (or an empty payload) means the size given
// before for this request id, or 0, the whole file. An index past the end
// gets an empty payload; errors go to v2/fw/error and close the session.
func (c *Core) chunkRequest(s *Session, topic string, payload []byte) (ok bool, err error) {
	kind, reqID, chunkIdx, ok := findChunkRequest(topic)
	if !ok {
		return false, nil
	}
	size := 0
	if len(payload) > 0 {
		n, err := strconv.ParseInt(string(payload), 10, 32)
		if err != nil {
			return true, errChunkSize
		}
		size = int(n)
	}
	key := kind + "/" + reqID
	s.mu.Lock()
	cached, seen := s.fwReq[key]
	s.mu.Unlock()
	if size <= 0 {
		size = cached.size
	}
	if size > tbapi.MaxChunkSize {
		return true, c.fwError(s, tbapi.FwErrPayloadTooLarge)
	}
	pkgID := cached.pkgID
	if !seen && kind == "fw" {
		pkgID = c.assignedFirmware(s.deviceID)
	}
	if pkgID == "" { // nothing assigned (software assignment is not emulated)
		return true, c.fwError(s, tbapi.FwErrNotFound)
	}
	s.mu.Lock()
	if s.fwReq == nil {
		s.fwReq = map[string]fwRequest{}
	}
	s.fwReq[key] = fwRequest{pkgID: pkgID, size: size}
	s.mu.Unlock()
	data, found := c.PackageData(pkgID)
	if !found {
		return true, c.fwError(s, tbapi.FwErrFailure)
	}
	var chunk []byte
	if size == 0 {
		chunk = data
	} else if start := int64(size) * int64(chunkIdx); start < int64(len(data)) {
		chunk = data[start:min(start+int64(size), int64(len(data)))]
	}
	c.stats.chunkBytes.Add(int64(len(chunk)))
	c.deliver(s, "v2/"+kind+"/response/"+reqID+"/chunk/"+strconv.Itoa(chunkIdx), chunk)
	return true, nil
}

// findChunkRequest finds v2/(fw|sw)/request/DIGITS/chunk/DIGITS anywhere in
// topic (the first occurrence, as a regular expression's find does) and
// returns the request id as written and the chunk index.
func findChunkRequest(topic string) (kind, reqID string, chunk int, ok bool) {
	for i := 0; i+len("v2/fw/request/") <= len(topic); i++ {
		rest := topic[i:]
		switch {
		case strings.HasPrefix(rest, "v2/fw/request/"):
			kind = "fw"
		case strings.HasPrefix(rest, "v2/sw/request/"):
			kind = "sw"
		default:
			continue
		}
		rest = rest[len("v2/fw/request/"):]
		id := leadingDigits(rest)
		if id == "" || !strings.HasPrefix(rest[len(id):], "/chunk/") {
			continue
		}
		idx := leadingDigits(rest[len(id)+len("/chunk/"):])
		if idx == "" {
			continue
		}
		n, err := strconv.ParseInt(idx, 10, 32)
		if err != nil {
			continue
		}
		return kind, id, int(n), true
	}
	return "", "", 0, false
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// fwError publishes the error code, then the session closes; the request
// itself is never acknowledged.
func (c *Core) fwError(s *Session, code string) error {
	s.takeAck()
	c.deliver(s, tbapi.TopicFwError, []byte(code))
	return errors.New(reasonFwErrorPrefix + code)
}

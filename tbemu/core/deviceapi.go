package core

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// devicePublish routes a device session's publish by topic. An error closes
// the session (unless PublishCode keeps an MQTT 5 one); code is the PUBACK's
// reason code otherwise.
//
// Rate limits are counted where ThingsBoard's transport service counts them
// (see TransportLimits): after the payload parsed, per kind of message.
func (c *Core) devicePublish(s *Session, topic string, payload []byte) (code byte, err error) {
	c.touch(s.deviceID, false)
	switch {
	case topic == tbapi.TopicTelemetry:
		err = c.telemetry(s.deviceID, payload)
	case topic == tbapi.TopicAttributes:
		err = c.clientAttributes(s.deviceID, payload)
	case strings.HasPrefix(topic, tbapi.TopicAttrRequestPrefix):
		err = c.attributeRequest(s, topic, payload)
	case strings.HasPrefix(topic, tbapi.TopicRPCResponsePrefix):
		reqID, ok := tbapi.ParseRPCResponseTopic(topic)
		switch {
		case !ok: // Integer.parseInt in processToDeviceRpcResponseMsg: AdaptorException
			err = fmt.Errorf("rpc response topic %q: the id is not an integer", topic)
		case !c.allow(s.deviceID, 0):
			return 0, c.rateLimited(s.deviceID)
		default:
			c.rpcResponse(s.deviceID, reqID, payload)
		}
	case strings.HasPrefix(topic, tbapi.TopicRPCRequestPrefix):
		err = c.clientRPC(s, topic, payload)
	case strings.Contains(topic, "v2/fw/request/") || strings.Contains(topic, "v2/sw/request/"):
		var handled bool
		if handled, err = c.chunkRequest(s, topic, payload); !handled && err == nil {
			code = CodeTopicNameInvalid // no chunk request after all: an unknown topic
		}
	default:
		// Unknown topic: PUBACK (MQTT 5: 0x90), and the session stays open.
		code = CodeTopicNameInvalid
	}
	if errors.Is(err, errRateLimited) {
		return code, err
	}
	if err != nil {
		c.stats.parseErrors.Add(1)
		var pe *protocolError
		if !errors.As(err, &pe) {
			err = payloadError(err) // the decoders' errors: ThingsBoard's AdaptorException
		}
	}
	return code, err
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
	// Nearly every message is one flat object: read it without a tree and
	// store it without allocating the keys the device always sends.
	var buf [16]tbapi.FlatMember
	if flat, ok := tbapi.DecodeFlat(payload, buf[:0]); ok {
		return c.flatTelemetry(id, flat)
	}
	entries, err := tbapi.DecodeTelemetry(payload)
	if err != nil {
		return err
	}
	points := 0
	for _, e := range entries {
		points += dataPoints(e.Values)
	}
	if !c.allow(id, points) {
		return c.rateLimited(id)
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

// flatTelemetry stores one flat object of telemetry (see telemetry).
func (c *Core) flatTelemetry(id string, flat []tbapi.FlatMember) error {
	points := 0
	for _, m := range flat {
		if m.Value.Kind != tbapi.Null {
			points++
		}
	}
	if !c.allow(id, points) {
		return c.rateLimited(id)
	}
	c.stats.telemetryMsgs.Add(1)
	st := c.store.stateOf(id)
	if st == nil {
		return nil
	}
	now := c.nowMs()
	st.mu.Lock()
	st.Msgs++
	for _, m := range flat {
		if m.Value.Kind == tbapi.Null {
			continue // ThingsBoard skips nulls
		}
		c.store.setLatest(st, st.key(m.Key), TsValue{Ts: now, Value: tbapi.CastNumeric(m.Value)})
		st.Points++
	}
	st.mu.Unlock()
	c.store.markDirty(id, st)
	return nil
}

func (c *Core) clientAttributes(id string, payload []byte) error {
	ms, err := tbapi.DecodeClientAttributes(payload)
	if err != nil {
		return err
	}
	if !c.allow(id, dataPoints(ms)) { // counted as telemetry, kv by kv
		return c.rateLimited(id)
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
	if !ok { // Integer.parseInt in processGetAttributeRequestMsg: AdaptorException
		return fmt.Errorf("attribute request topic %q: the id is not an integer", topic)
	}
	req, err := tbapi.DecodeAttrRequest(payload)
	if err != nil {
		return err
	}
	if !c.allow(s.deviceID, 0) {
		return c.rateLimited(s.deviceID)
	}
	if slices.Contains(req.ClientKeys, "") || slices.Contains(req.SharedKeys, "") {
		// An empty key name (clientKeys "") is acknowledged and never
		// answered by ThingsBoard 4.3 (seen).
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
	c.reply(s, tbapi.AttrResponseTopic(reqID), resp.Encode())
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
		// processToServerRpcRequestMsg catches only JSON errors: the
		// NumberFormatException reaches exceptionCaught, as a bad chunk size.
		return &protocolError{err: fmt.Errorf("rpc request topic %q: the id is not an integer", topic), code: CodeServerShuttingDown}
	}
	req, err := tbapi.DecodeRPCRequest(payload)
	if err != nil {
		return err
	}
	respTopic := tbapi.RPCResponseTopic(reqID)
	if req.Method == "getSessionLimits" { // answered by the transport, not counted
		c.reply(s, respTopic, c.sessionLimits(s.deviceID))
		return nil
	}
	if !c.allow(s.deviceID, 0) {
		return c.rateLimited(s.deviceID)
	}
	s.after(c.opts.ClientRPCTimeout, func() { c.deliver(s, respTopic, []byte(`{"error":"timeout"}`)) })
	return nil
}

// chunkRequest serves v2/fw/request/{id}/chunk/{n} (getOtaPackageCallback):
// size 0 is the whole file, an index past the end gets an empty payload,
// errors go to v2/fw/error and close the session.
//
// The topic is matched as ThingsBoard's FW_REQUEST_PATTERN.find() does: the
// pattern anywhere in it, so ".../chunk/0/extra" asks for chunk 0 (seen on
// 4.3), and ".../chunk/-1" is no chunk request (handled false). A software
// request (v2/sw/...) finds no package: software assignment is not
// emulated, and ThingsBoard answers NOT_FOUND for a device without one.
func (c *Core) chunkRequest(s *Session, topic string, payload []byte) (handled bool, err error) {
	kind, reqID, chunkIdx, ok := findChunkRequest(topic)
	if !ok {
		return false, nil
	}
	return true, c.serveChunk(s, kind, reqID, chunkIdx, payload)
}

func (c *Core) serveChunk(s *Session, kind, reqID string, chunkIdx int, payload []byte) error {
	// Integer.parseInt of the payload, an empty one being 0: a size that is
	// not a 32-bit decimal throws NumberFormatException, which nothing in
	// the transport catches, so Netty hands it to exceptionCaught and the
	// channel closes (MQTT 5: after DISCONNECT 0x8B). A size of 0 or less
	// means the one given before for this request id, or 0 (the whole file).
	size := 0
	if len(payload) > 0 {
		n, ok := parseJavaInt(payload)
		if !ok {
			return &protocolError{err: fmt.Errorf("chunk size %q: not an integer", payload), code: CodeServerShuttingDown}
		}
		size = n
	}
	key := kind + "/" + reqID
	s.mu.Lock()
	cached, seen := s.fwReq[key]
	s.mu.Unlock()
	if size <= 0 {
		size = cached.size
	}
	if size > tbapi.MaxChunkSize { // checked before the package is looked up
		return c.fwError(s, tbapi.FwErrPayloadTooLarge)
	}
	pkgID := cached.pkgID
	if !seen {
		// Only this lookup goes through the transport service, so only the
		// first request of a request id is counted (GetOtaPackageRequestMsg).
		if !c.allow(s.deviceID, 0) {
			return c.rateLimited(s.deviceID)
		}
		if kind == "fw" {
			pkgID = c.assignedFirmware(s.deviceID)
		}
	}
	if pkgID == "" {
		return c.fwError(s, tbapi.FwErrNotFound)
	}
	s.mu.Lock()
	if s.fwReq == nil {
		s.fwReq = map[string]fwRequest{}
	}
	s.fwReq[key] = fwRequest{pkgID: pkgID, size: size}
	s.mu.Unlock()
	data, ok := c.PackageData(pkgID)
	if !ok {
		return c.fwError(s, tbapi.FwErrFailure)
	}
	var chunk []byte
	if size == 0 {
		chunk = data
	} else if start := int64(size) * int64(chunkIdx); start < int64(len(data)) {
		chunk = data[start:min(start+int64(size), int64(len(data)))]
	}
	c.stats.chunkBytes.Add(int64(len(chunk)))
	c.reply(s, "v2/"+kind+"/response/"+reqID+"/chunk/"+strconv.Itoa(chunkIdx), chunk)
	return nil
}

// findChunkRequest finds v2/(fw|sw)/request/DIGITS/chunk/DIGITS anywhere in
// topic (the first occurrence, as a regular expression's find does) and
// returns the request id as written and the chunk index.
func findChunkRequest(topic string) (kind, reqID string, chunk int, ok bool) {
	const prefixLen = len("v2/fw/request/")
	for i := 0; i+prefixLen <= len(topic); i++ {
		rest := topic[i:]
		switch {
		case strings.HasPrefix(rest, "v2/fw/request/"):
			kind = "fw"
		case strings.HasPrefix(rest, "v2/sw/request/"):
			kind = "sw"
		default:
			continue
		}
		rest = rest[prefixLen:]
		id := leadingDigits(rest)
		if id == "" || !strings.HasPrefix(rest[len(id):], "/chunk/") {
			continue
		}
		idx := leadingDigits(rest[len(id)+len("/chunk/"):])
		n, err := strconv.ParseInt(idx, 10, 32)
		if idx == "" || err != nil {
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

// fwError publishes the error code, then the session closes
// (sendOtaPackageError: MQTT 5 gets DISCONNECT 0x83).
func (c *Core) fwError(s *Session, code string) error {
	s.takeAck() // the request is never acknowledged
	c.reply(s, tbapi.TopicFwError, []byte(code))
	return &protocolError{err: errors.New("firmware request: " + code), code: CodeImplementationSpecific}
}

package tbemu

import (
	"errors"
	"strings"
	"time"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// telemetry stores every accepted shape (JsonConverter.convertToTelemetry):
// numeric strings become numbers, nulls are skipped.
func (s *Server) telemetry(id string, payload []byte) error {
	entries, err := tbapi.DecodeTelemetry(payload)
	if err != nil {
		return err
	}
	s.stats.telemetryMsgs.Add(1)
	now := nowMs()
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	st := s.store.state[id]
	if st == nil {
		return nil
	}
	st.Msgs++
	for _, e := range entries {
		ts := e.Ts
		if ts == 0 {
			ts = now
		}
		for _, m := range e.Values {
			s.store.setLatest(st, m.Key, TsValue{Ts: ts, Value: tbapi.CastNumeric(m.Value)})
			st.Points++
		}
	}
	s.store.markDirty(id)
	return nil
}

// setLatest keeps the newest value of a key and, if asked, a bounded history.
func (st *store) setLatest(ds *devState, key string, v TsValue) {
	if old, ok := ds.Latest[key]; !ok || old.Ts <= v.Ts {
		ds.Latest[key] = v
	}
	if st.history > 0 {
		h := append(ds.History[key], v)
		if len(h) > st.history {
			h = h[len(h)-st.history:]
		}
		ds.History[key] = h
	}
}

func (s *Server) clientAttributes(id string, payload []byte) error {
	ms, err := tbapi.DecodeClientAttributes(payload)
	if err != nil {
		return err
	}
	now := nowMs()
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if st := s.store.state[id]; st != nil {
		for _, m := range ms {
			if m.Value.Kind != tbapi.Null {
				st.Attrs[ClientScope][m.Key] = TsValue{Ts: now, Value: m.Value}
			}
		}
		s.store.markDirty(id)
	}
	return nil
}

// attributeRequest answers on .../attributes/response/{id} with the client
// and shared attributes asked for ({} asks for all of both).
func (s *Server) attributeRequest(c *conn, topic string, payload []byte) error {
	reqID, ok := tbapi.ParseAttrRequestTopic(topic)
	if !ok {
		return nil // not an integer id: ThingsBoard ignores the topic
	}
	req, err := tbapi.DecodeAttrRequest(payload)
	if err != nil {
		return err
	}
	var resp tbapi.AttrResponse
	all := req.ClientKeys == nil && req.SharedKeys == nil
	s.store.mu.RLock()
	if st := s.store.state[c.deviceID]; st != nil {
		if all || req.ClientKeys != nil {
			resp.Client = pick(st.Attrs[ClientScope], req.ClientKeys, all)
		}
		if all || req.SharedKeys != nil {
			resp.Shared = pick(st.Attrs[SharedScope], req.SharedKeys, all)
		}
	}
	s.store.mu.RUnlock()
	c.write(tbapi.AttrResponseTopic(reqID), resp.Encode())
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
func (s *Server) clientRPC(c *conn, topic string, payload []byte) error {
	reqID, ok := tbapi.ParseRPCRequestTopic(topic)
	if !ok {
		return nil
	}
	req, err := tbapi.DecodeRPCRequest(payload)
	if err != nil {
		return err
	}
	respTopic := tbapi.RPCResponseTopic(reqID)
	if req.Method == "getSessionLimits" {
		limits := tbapi.NewObj(nil).Int("maxPayloadSize", MaxPacketSize).Int("maxInflightMessages", 100)
		rate := s.rateLimit(c.deviceID)
		rl := tbapi.NewObj(nil)
		if rate > 0 {
			rl.Str("messages", formatRate(rate))
		}
		c.write(respTopic, limits.Raw("rateLimits", rl.Bytes()).Bytes())
		return nil
	}
	time.AfterFunc(s.opts.ClientRPCTimeout, func() { c.write(respTopic, []byte(`{"error":"timeout"}`)) })
	return nil
}

// chunkRequest serves v2/fw/request/{id}/chunk/{n} (getOtaPackageCallback):
// size 0 is the whole file, an index past the end gets an empty payload,
// errors go to v2/fw/error and close the session.
func (s *Server) chunkRequest(c *conn, topic string, payload []byte) error {
	ct, ok := tbapi.ParseChunkTopic(topic)
	if !ok || !ct.Request {
		return nil
	}
	size, present, err := tbapi.ParseChunkSize(payload)
	if err != nil {
		return err // NumberFormatException: the channel closes
	}
	key := ct.Kind + "/" + itoa(ct.RequestID)
	c.mu.Lock()
	cached, seen := c.fwReq[key]
	c.mu.Unlock()
	if !present {
		size = cached.size
	}
	pkgID := cached.pkgID
	if !seen {
		pkgID = s.assignedFirmware(c.deviceID)
	}
	if pkgID == "" {
		return s.fwError(c, tbapi.FwErrNotFound)
	}
	if size > tbapi.MaxChunkSize {
		return s.fwError(c, tbapi.FwErrPayloadTooLarge)
	}
	c.mu.Lock()
	c.fwReq[key] = fwRequest{pkgID: pkgID, size: size}
	c.mu.Unlock()
	data, ok := s.packageData(pkgID)
	if !ok {
		return s.fwError(c, tbapi.FwErrFailure)
	}
	var chunk []byte
	if size == 0 {
		chunk = data
	} else if start := int64(size) * int64(ct.Chunk); start < int64(len(data)) {
		chunk = data[start:min(start+int64(size), int64(len(data)))]
	}
	s.stats.chunkBytes.Add(int64(len(chunk)))
	ct.Request = false
	return c.write(ct.String(), chunk)
}

// fwError publishes the error code, then the session closes.
func (s *Server) fwError(c *conn, code string) error {
	c.write(tbapi.TopicFwError, []byte(code))
	return errors.New("firmware request: " + code)
}

// provisionPublish handles a provisioning session: only /provision/request
// is accepted; anything else closes it.
func (s *Server) provisionPublish(c *conn, topic string, payload []byte) error {
	if topic != tbapi.TopicProvisionRequest {
		return errors.New("provision session: unexpected topic " + topic)
	}
	req, err := tbapi.DecodeProvisionRequest(payload)
	if err != nil {
		return err // missing key or secret, unknown credentials type: closed, no answer
	}
	resp := s.provision(req)
	if resp.Status == tbapi.ProvisionSuccess {
		s.stats.provisioned.Add(1)
	} else {
		s.stats.provisionFailed.Add(1)
	}
	c.write(tbapi.TopicProvisionResponse, resp.Encode())
	cl := c.cl
	time.AfterFunc(s.opts.ProvisionCloseAfter, func() { cl.Stop(errors.New("provisioning session expired")) })
	return nil
}

// provision is DeviceProvisionServiceImpl.provisionDevice.
func (s *Server) provision(req tbapi.ProvisionRequest) tbapi.ProvisionResponse {
	failure := tbapi.ProvisionResponse{Status: tbapi.ProvisionFailure}
	notFound := tbapi.ProvisionResponse{Status: tbapi.ProvisionNotFound}
	name := req.DeviceName
	if req.DeviceName != "" && strings.TrimSpace(req.DeviceName) == "" {
		return failure
	}
	if req.Key == "" || req.Secret == "" {
		return notFound
	}
	prof, ok := s.profileByKey(req.Key)
	if !ok || prof.ProvisionType == ProvisionDisabled || prof.ProvisionSecret == "" || prof.ProvisionSecret != req.Secret {
		return notFound
	}
	switch prof.ProvisionType {
	case CheckPreProvisionedDevices:
		d, ok := s.deviceByName(name)
		if !ok || d.ProfileID != prof.ID || s.provisioned(d.ID) {
			return failure
		}
		s.setAttr(d.ID, ServerScope, "provisionState", tbapi.Value{Kind: tbapi.String, Str: "provisioned"})
		return credentialsResponse(d.Credentials)
	default: // ALLOW_CREATE_NEW_DEVICES
		if name == "" {
			name = randomAlphanumeric(20)
		}
		creds := Credentials{Type: tbapi.CredAccessToken, Token: req.Token}
		if req.CredentialsType == tbapi.CredMQTTBasic {
			creds = Credentials{Type: tbapi.CredMQTTBasic, ClientID: req.Basic.ClientID, UserName: req.Basic.UserName, Password: req.Basic.Password}
		}
		d, err := s.CreateDevice(DeviceSpec{Name: name, ProfileID: prof.ID, Credentials: creds})
		if err != nil {
			return failure // existing name, duplicate credentials
		}
		s.setAttr(d.ID, ServerScope, "provisionState", tbapi.Value{Kind: tbapi.String, Str: "provisioned"})
		return credentialsResponse(d.Credentials)
	}
}

func credentialsResponse(c Credentials) tbapi.ProvisionResponse {
	r := tbapi.ProvisionResponse{Status: tbapi.ProvisionSuccess, CredentialsType: c.Type, Token: c.Token}
	if c.Type == tbapi.CredMQTTBasic {
		r.Basic = tbapi.BasicCredentials{ClientID: c.ClientID, UserName: c.UserName, Password: c.Password}
	}
	return r
}

func (s *Server) provisioned(id string) bool {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	st := s.store.state[id]
	if st == nil {
		return false
	}
	_, ok := st.Attrs[ServerScope]["provisionState"]
	return ok
}

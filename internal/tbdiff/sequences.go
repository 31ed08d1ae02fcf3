package tbdiff

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Sequences are the device-side exchanges compared, in a fixed order.
var Sequences = []Sequence{
	{Name: "provision-success", Slow: true, Run: provisionSuccess},
	{Name: "provision-outcomes", Run: provisionOutcomes},
	{Name: "provision-session-errors", Run: provisionSessionErrors},
	{Name: "provision-credentials", Run: provisionCredentials},
	{Name: "connect-auth-v311", Run: func(s *Seq) { connectAuth(s, false) }},
	{Name: "connect-auth-v5", Run: func(s *Seq) { connectAuth(s, true) }},
	{Name: "telemetry-v311", Run: func(s *Seq) { telemetry(s, false) }},
	{Name: "telemetry-v5", Run: func(s *Seq) { telemetry(s, true) }},
	{Name: "oversized-packet", Run: oversized},
	{Name: "attribute-requests", Run: attributeRequests},
	{Name: "attribute-request-errors", Run: attributeRequestErrors},
	{Name: "attribute-pushes", Run: attributePushes},
	{Name: "rpc-server-side", Run: rpcServerSide},
	{Name: "rpc-client-side", Run: rpcClientSide},
	{Name: "rpc-client-side-timeout", Slow: true, Run: rpcClientTimeout},
	{Name: "subscriptions-v311", Run: func(s *Seq) { subscriptions(s, false) }},
	{Name: "subscriptions-v5", Run: func(s *Seq) { subscriptions(s, true) }},
	{Name: "session-lifecycle", Run: sessionLifecycle},
	{Name: "ota-not-assigned", Run: otaNotAssigned},
	{Name: "ota-device-assignment", Run: otaDevice},
	{Name: "ota-chunk-errors", Run: otaChunkErrors},
	{Name: "ota-queue-pacing", Slow: true, Run: otaPacing},
	{Name: "rate-limit", Run: rateLimit},
	{Name: "idle-timeout", Run: idleTimeout},
}

func provisionReq(name, key, secret string, extra string) []byte {
	s := fmt.Sprintf(`{"deviceName":%q,"provisionDeviceKey":%q,"provisionDeviceSecret":%q%s}`, name, key, secret, extra)
	return []byte(s)
}

func provConnect(s *Seq, v5 bool) *Client {
	s.Tr.Alias("prov-"+s.T.run, "<prov-client>")
	return s.Connect(ConnectOpts{V5: v5, ClientID: "prov-" + s.T.run, Username: Str("provision"), Clean: true})
}

// provisionSuccess: the Arduino SDK's sequence, then the session's close 60 s later.
func provisionSuccess(s *Seq) {
	name := s.DevName("dev")
	s.Provisioned(name)
	c := provConnect(s, false)
	s.Sub(c, 1, "/provision/response")
	s.Await(c, 1, 5*time.Second)
	s.Pub(c, "/provision/request", provisionReq(name, s.T.Key, s.T.Secret, ""), 1)
	got := s.Await(c, 2, 10*time.Second)
	mark := c.Since()
	if len(got) > 0 {
		mark = got[len(got)-1].At // the answer: the close is counted from it
	}
	s.AwaitClose(c, mark, s.T.Params.ProvisionCloseAfter, s.T.Params.ProvisionCloseAfter*3/2, "of the provisioning close")
}

// provisionOutcomes: FAILURE for a known or blank name, NOT_FOUND for a
// wrong secret or key; the answer arrives without a subscription at QoS 1.
func provisionOutcomes(s *Seq) {
	name := s.DevName("dev")
	s.Provisioned(name)
	for _, step := range []struct {
		what    string
		payload []byte
		qos     byte
	}{
		{"new name, QoS 0 publish, no subscription", provisionReq(name, s.T.Key, s.T.Secret, ""), 0},
		{"the same name again", provisionReq(name, s.T.Key, s.T.Secret, ""), 1},
		{"wrong secret", provisionReq(name+"-x", s.T.Key, "wrong-secret", ""), 1},
		{"wrong key", provisionReq(name+"-y", "wrong-key", s.T.Secret, ""), 1},
		{"blank name", provisionReq("   ", s.T.Key, s.T.Secret, ""), 1},
		{"empty secret", provisionReq(name+"-z", s.T.Key, "", ""), 1},
	} {
		s.Tr.Note("step: %s", step.what)
		c := provConnect(s, false)
		s.Pub(c, "/provision/request", step.payload, step.qos)
		s.Await(c, 1+int(step.qos), 10*time.Second)
		c.Close()
	}
	for _, n := range []string{name + "-x", name + "-y", name + "-z"} {
		s.Provisioned(n)
	}
}

// provisionSessionErrors: what a provisioning session refuses.
func provisionSessionErrors(s *Seq) {
	name := s.DevName("dev")
	s.Provisioned(name)
	s.Tr.Note("step: subscribe to another filter")
	c := provConnect(s, false)
	s.Sub(c, 1, "v1/devices/me/attributes")
	s.Await(c, 1, 5*time.Second)
	s.Tr.Note("step: publish to another topic")
	s.Pub(c, "v1/devices/me/telemetry", []byte(`{"a":1}`), 1)
	s.Await(c, 2, 5*time.Second)
	c.Close()
	s.Tr.Note("step: request without provisionDeviceSecret")
	c = provConnect(s, false)
	s.Pub(c, "/provision/request", []byte(fmt.Sprintf(`{"deviceName":%q,"provisionDeviceKey":%q}`, name, s.T.Key)), 1)
	s.Await(c, 2, 5*time.Second)
	c.Close()
	s.Tr.Note("step: not JSON")
	c = provConnect(s, false)
	s.Pub(c, "/provision/request", []byte(`{"deviceName":`), 1)
	s.Await(c, 2, 5*time.Second)
	c.Close()
	s.Tr.Note("step: MQTT 5, another topic")
	c = provConnect(s, true)
	s.Pub(c, "v1/devices/me/telemetry", []byte(`{"a":1}`), 1)
	s.Await(c, 2, 5*time.Second)
	c.Close()
}

// provisionCredentials: device-chosen access token and MQTT_BASIC, then a
// connect with each.
func provisionCredentials(s *Seq) {
	name := s.DevName("tok")
	s.Provisioned(name)
	token := randomString(20)
	s.Tr.Alias(token, "<chosen-token>")
	c := provConnect(s, false)
	s.Pub(c, "/provision/request", provisionReq(name, s.T.Key, s.T.Secret, fmt.Sprintf(`,"credentialsType":"ACCESS_TOKEN","token":%q`, token)), 1)
	s.Await(c, 2, 10*time.Second)
	c.Close()
	d := s.Token(token, false)
	s.Tr.Note("step: connected with the chosen token")
	d.Disconnect()

	name2 := s.DevName("basic")
	s.Provisioned(name2)
	cid, user, pass := "cid-"+s.T.run, "user-"+s.T.run, "pw-"+s.T.run
	s.Tr.Alias(cid, "<cid>")
	s.Tr.Alias(user, "<user>")
	s.Tr.Alias(pass, "<pass>")
	c = provConnect(s, false)
	s.Pub(c, "/provision/request", provisionReq(name2, s.T.Key, s.T.Secret,
		fmt.Sprintf(`,"credentialsType":"MQTT_BASIC","clientId":%q,"username":%q,"password":%q`, cid, user, pass)), 1)
	s.Await(c, 2, 10*time.Second)
	c.Close()
	s.Tr.Note("step: MQTT_BASIC connect")
	d = s.Connect(ConnectOpts{ClientID: cid, Username: Str(user), Password: Str(pass), Clean: true})
	if d != nil {
		d.Disconnect()
	}
	s.Tr.Note("step: MQTT_BASIC wrong password")
	s.Connect(ConnectOpts{ClientID: cid, Username: Str(user), Password: Str("nope"), Clean: true})
}

// connectAuth: CONNACK codes for good and bad credentials.
func connectAuth(s *Seq, v5 bool) {
	_, token := s.Device("dev")
	bad := randomString(20)
	s.Tr.Alias(bad, "<bad-token>")
	s.Tr.Note("step: bad token, no password")
	s.Connect(ConnectOpts{V5: v5, ClientID: "c1", Username: Str(bad), Clean: true})
	s.Tr.Note("step: bad token with password and client id")
	s.Connect(ConnectOpts{V5: v5, ClientID: "c1", Username: Str(bad), Password: Str("pw"), Clean: true})
	s.Tr.Note("step: client id only")
	s.Connect(ConnectOpts{V5: v5, ClientID: "lonely-client", Clean: true})
	s.Tr.Note("step: nothing at all")
	s.Connect(ConnectOpts{V5: v5, ClientID: "", Clean: true})
	s.Tr.Note("step: good token, clean session")
	c := s.Connect(ConnectOpts{V5: v5, ClientID: "c2", Username: Str(token), Clean: true})
	if c != nil {
		c.Disconnect()
	}
	s.Tr.Note("step: good token, persistent session asked")
	c = s.Connect(ConnectOpts{V5: v5, ClientID: "c3", Username: Str(token), Clean: false})
	if c != nil {
		c.Ping()
		s.Tr.Sent("PINGREQ")
		s.Await(c, 1, 5*time.Second)
		c.Disconnect()
	}
	s.Tr.Note("step: good token with an ignored password")
	c = s.Connect(ConnectOpts{V5: v5, ClientID: "c4", Username: Str(token), Password: Str("ignored"), Clean: true})
	if c != nil {
		c.Disconnect()
	}
}

// telemetry: every accepted shape, QoS 0 and 2, an unknown topic, then what
// closes the session.
func telemetry(s *Seq, v5 bool) {
	id, token := s.Device("dev")
	c := s.Token(token, v5)
	for _, p := range []string{
		`{"a":1,"b":2.5,"c":"text","d":true}`,
		`{"ts":1700000000000,"values":{"e":"4.5","f":"17"}}`,
		`[{"g":3},{"ts":1700000000001,"values":{"h":"x"}}]`,
		`{"ts":1700000000002}`,
		`{"n":{"x":1,"y":[1,2]},"arr":[1,"a"],"z":null,"big":123456789012345678901234567890,"neg":-7,"exp":1e3}`,
	} {
		s.Pub(c, "v1/devices/me/telemetry", []byte(p), 1)
		s.Await(c, 1, 5*time.Second)
	}
	s.Pub(c, "v1/devices/me/telemetry", []byte(`{"q0":1}`), 0)
	s.Await(c, 0, 0)
	s.Pub(c, "v1/devices/me/telemetry", []byte(`{"q2":1}`), 2)
	s.Await(c, 1, 5*time.Second)
	s.Pub(c, "v1/devices/me/unknown", []byte(`{"u":1}`), 1)
	s.Await(c, 1, 5*time.Second)
	s.Pub(c, "v1/devices/me/attributes", []byte(`{"ca":"1"}`), 1)
	s.Await(c, 1, 5*time.Second)
	s.latest(id, "a", "b", "c", "d", "e", "f", "g", "h", "ts", "n", "arr", "z", "big", "neg", "exp", "q0", "q2", "u", "ca")
	s.Tr.Note("step: attributes as an array")
	s.Pub(c, "v1/devices/me/attributes", []byte(`[{"ca":1}]`), 1)
	s.Await(c, 1, 5*time.Second)
	s.Tr.Note("step: telemetry that is not JSON")
	s.Pub(c, "v1/devices/me/telemetry", []byte(`{"a":`), 1)
	s.Await(c, 1, 5*time.Second)
	s.Tr.Note("step: still open?")
	c.Ping()
	s.Tr.Sent("PINGREQ")
	s.Await(c, 1, 5*time.Second)
}

// oversized: a packet over 64 KiB.
func oversized(s *Seq) {
	_, token := s.Device("dev")
	c := s.Token(token, false)
	big := `{"blob":"` + strings.Repeat("x", 70000) + `"}`
	s.Pub(c, "v1/devices/me/telemetry", []byte(big), 1)
	s.Await(c, 1, 10*time.Second)
	s.Tr.Note("step: just under the limit")
	c = s.Token(token, false)
	ok := `{"blob":"` + strings.Repeat("y", 65000) + `"}`
	s.Pub(c, "v1/devices/me/telemetry", []byte(ok), 1)
	s.Await(c, 1, 10*time.Second)
}

// attributeRequests: clientKeys/sharedKeys in their accepted forms.
func attributeRequests(s *Seq) {
	id, token := s.Device("dev")
	s.NoteErr("REST shared attributes", s.T.REST.SetSharedAttributes(s.Ctx, id, map[string]any{"sa": "x", "sb": 2, "sc": true, "sd": 1.5}))
	c := s.Token(token, false)
	s.Pub(c, "v1/devices/me/attributes", []byte(`{"ca":1,"cb":"two","cc":{"n":1}}`), 1)
	s.Await(c, 1, 5*time.Second)
	for i, p := range []string{
		`{"clientKeys":"ca","sharedKeys":"sa,sb"}`,
		`{"sharedKeys":"sa,sb,"}`,
		`{"sharedKeys":"sa, sb"}`,
		`{"sharedKeys":"sd"}`,
		`{}`,
		`{"clientKeys":"missing"}`,
		`{"clientKeys":""}`,
		`{"sharedKeys":["sa"]}`,
		`{"clientKeys":"cc","sharedKeys":"sc"}`,
	} {
		s.Pub(c, fmt.Sprintf("v1/devices/me/attributes/request/%d", i+1), []byte(p), 1)
		if p == `{}` {
			s.AwaitCanonical(c, 2, 5*time.Second)
			continue
		}
		s.Await(c, 2, 5*time.Second)
	}
	s.Tr.Note("step: QoS 0 request, then subscribed at QoS 0")
	s.Pub(c, "v1/devices/me/attributes/request/20", []byte(`{"sharedKeys":"sa"}`), 0)
	s.Await(c, 1, 5*time.Second)
	s.Sub(c, 0, "v1/devices/me/attributes/response/+")
	s.Await(c, 1, 5*time.Second)
	s.Pub(c, "v1/devices/me/attributes/request/21", []byte(`{"sharedKeys":"sa"}`), 1)
	s.Await(c, 2, 5*time.Second)
	s.Tr.Note("step: a two-element array of keys")
	s.Pub(c, "v1/devices/me/attributes/request/22", []byte(`{"sharedKeys":["sa","sb"]}`), 1)
	s.Await(c, 2, 5*time.Second)
}

// attributeRequestErrors: request ids and bodies ThingsBoard does not accept.
func attributeRequestErrors(s *Seq) {
	_, token := s.Device("dev")
	c := s.Token(token, false)
	s.Tr.Note("step: non-numeric request id")
	s.Pub(c, "v1/devices/me/attributes/request/abc", []byte(`{"sharedKeys":"sa"}`), 1)
	s.Await(c, 1, 5*time.Second)
	s.Tr.Note("step: empty payload")
	c = s.Token(token, false)
	s.Pub(c, "v1/devices/me/attributes/request/5", nil, 1)
	s.Await(c, 1, 5*time.Second)
	s.Tr.Note("step: MQTT 5, empty payload")
	c = s.Token(token, true)
	s.Pub(c, "v1/devices/me/attributes/request/6", nil, 1)
	s.Await(c, 1, 5*time.Second)
}

// attributePushes: shared-attribute updates and deletions at the
// subscription's QoS; nothing after UNSUBSCRIBE.
func attributePushes(s *Seq) {
	id, token := s.Device("dev")
	c := s.Token(token, false)
	s.Sub(c, 0, "v1/devices/me/attributes")
	s.Await(c, 1, 5*time.Second)
	s.NoteErr("REST shared attributes p1,p2", s.T.REST.SetSharedAttributes(s.Ctx, id, map[string]any{"p1": "a", "p2": 3}))
	s.Await(c, 1, 5*time.Second)
	s.Sub(c, 1, "v1/devices/me/attributes")
	s.Await(c, 1, 5*time.Second)
	s.NoteErr("REST shared attribute p1 changed", s.T.REST.SetSharedAttributes(s.Ctx, id, map[string]any{"p1": "b"}))
	s.Await(c, 1, 5*time.Second)
	s.NoteErr("REST shared attribute p2 unchanged", s.T.REST.SetSharedAttributes(s.Ctx, id, map[string]any{"p2": 3}))
	s.Await(c, 1, 5*time.Second)
	s.NoteErr("REST delete shared p1", s.T.REST.DeleteSharedAttributes(s.Ctx, id, "p1"))
	s.Await(c, 1, 5*time.Second)
	s.NoteErr("REST delete shared p2 and a missing key", s.T.REST.DeleteSharedAttributes(s.Ctx, id, "p2", "nope"))
	s.Await(c, 1, 5*time.Second)
	s.Tr.Sent("UNSUBSCRIBE v1/devices/me/attributes")
	c.Unsubscribe("v1/devices/me/attributes")
	s.Await(c, 1, 5*time.Second)
	s.NoteErr("REST shared attribute p3", s.T.REST.SetSharedAttributes(s.Ctx, id, map[string]any{"p3": 1}))
	s.Await(c, 0, 0)
}

// rpcServerSide: two-way and one-way RPC to a subscribed device.
func rpcServerSide(s *Seq) {
	id, token := s.Device("dev")
	c := s.Token(token, false)
	s.Tr.Note("step: two-way RPC before a subscription")
	res, err := s.T.REST.RPC(s.Ctx, id, true, "early", map[string]any{}, 2000)
	s.Tr.Note("REST two-way answer: %s %v", res, err)
	s.Await(c, 0, 0)
	s.Sub(c, 1, "v1/devices/me/rpc/request/+")
	s.Await(c, 1, 5*time.Second)
	var wg sync.WaitGroup
	var answer []byte
	var rerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		answer, rerr = s.T.REST.RPC(s.Ctx, id, true, "setGpio", map[string]any{"pin": 4, "value": 1}, 10000)
	}()
	s.Tr.Sent("REST two-way RPC setGpio")
	got := s.Await(c, 1, 10*time.Second)
	for _, p := range got {
		if p.Type == pPublish && strings.HasPrefix(p.Topic, "v1/devices/me/rpc/request/") {
			reqID := strings.TrimPrefix(p.Topic, "v1/devices/me/rpc/request/")
			s.Pub(c, "v1/devices/me/rpc/response/"+reqID, []byte(`{"ok":true}`), 1)
			s.Await(c, 1, 5*time.Second)
		}
	}
	wg.Wait()
	s.Tr.Note("REST two-way answer: %s %v", answer, rerr)
	res, err = s.T.REST.RPC(s.Ctx, id, false, "blink", []int{1, 2}, 5000)
	s.Tr.Note("REST one-way answer: %q %v", res, err)
	s.Await(c, 1, 5*time.Second)
	s.Tr.Note("step: a reply to an RPC that does not exist")
	s.Pub(c, "v1/devices/me/rpc/response/999", []byte(`{"late":1}`), 1)
	s.Await(c, 1, 5*time.Second)
}

// rpcClientSide: getSessionLimits and a request without a method.
func rpcClientSide(s *Seq) {
	_, token := s.Device("dev")
	c := s.Token(token, false)
	s.Pub(c, "v1/devices/me/rpc/request/1", []byte(`{"method":"getSessionLimits","params":{}}`), 1)
	s.Await(c, 2, 5*time.Second)
	s.Tr.Note("step: no method")
	s.Pub(c, "v1/devices/me/rpc/request/2", []byte(`{"params":{}}`), 1)
	s.Await(c, 1, 5*time.Second)
}

// rpcClientTimeout: a method no rule chain answers.
func rpcClientTimeout(s *Seq) {
	_, token := s.Device("dev")
	c := s.Token(token, false)
	s.Pub(c, "v1/devices/me/rpc/request/7", []byte(`{"method":"echo","params":{"a":1}}`), 1)
	mark := c.Since()
	got := s.Await(c, 1, 5*time.Second)
	_ = got
	p, ok := c.Next(s.T.Params.ClientRPCTimeout * 3 / 2)
	if !ok {
		s.Tr.Note("no answer within 1.5x of the client-side RPC timeout")
		return
	}
	s.Tr.Got(p)
	s.Tr.Note("answered at %s of the client-side RPC timeout", ratio(p.At-mark, s.T.Params.ClientRPCTimeout))
}

// subscriptions: SUBACK codes for every filter a device might try.
func subscriptions(s *Seq, v5 bool) {
	_, token := s.Device("dev")
	c := s.Token(token, v5)
	for _, f := range []string{
		"v1/devices/me/attributes", "v1/devices/me/attributes/response/+", "v1/devices/me/rpc/request/+",
		"v1/devices/me/rpc/response/+", "v2/fw/response/+/chunk/+", "v2/fw/error", "v2/sw/response/+/chunk/+", "v2/sw/error",
		"v2/fw/response/+", "v2/fw/response/#", "#", "v1/devices/me/#", "v1/devices/me/telemetry",
		"v1/devices/me/attributes/response/#", "/provision/response", "v2/a", "v2/a/res/+", "v2/r/req/+", "v2/r/res/+",
		"v1/gateway/attributes", "v1/gateway/rpc",
	} {
		s.Sub(c, 1, f)
		s.Await(c, 1, 5*time.Second)
	}
	s.Tr.Note("step: several filters in one SUBSCRIBE, QoS 2 asked")
	s.Sub(c, 2, "v1/devices/me/attributes", "bogus/topic", "v1/devices/me/rpc/request/+")
	s.Await(c, 1, 5*time.Second)
	s.Tr.Note("step: unsubscribe a granted, a refused and an unknown filter")
	for _, f := range []string{"v1/devices/me/attributes", "bogus/topic", "never/subscribed"} {
		s.Tr.Sent("UNSUBSCRIBE %s", f)
		c.Unsubscribe(f)
		s.Await(c, 1, 5*time.Second)
	}
}

// sessionLifecycle: two sessions of one device, then its deletion.
func sessionLifecycle(s *Seq) {
	id, token := s.Device("dev")
	a := s.Connect(ConnectOpts{ClientID: "same-id", Username: Str(token), Clean: true})
	b := s.Connect(ConnectOpts{ClientID: "same-id", Username: Str(token), Clean: true})
	s.Tr.Note("step: both sessions of one client id alive?")
	for _, c := range []*Client{a, b} {
		if c != nil {
			c.Ping()
			s.Tr.Sent("PINGREQ")
			s.Await(c, 1, 5*time.Second)
		}
	}
	v5 := s.Token(token, true)
	s.NoteErr("REST delete device", s.T.REST.DeleteDevice(s.Ctx, id))
	for _, c := range []*Client{a, b, v5} {
		s.Await(c, 1, 10*time.Second)
	}
	s.Tr.Note("step: two devices, one client id")
	_, t1 := s.Device("one")
	_, t2 := s.Device("two")
	s.Tr.Alias("shared-id-"+s.T.run, "<shared-id>")
	x := s.Connect(ConnectOpts{ClientID: "shared-id-" + s.T.run, Username: Str(t1), Clean: true})
	y := s.Connect(ConnectOpts{ClientID: "shared-id-" + s.T.run, Username: Str(t2), Clean: true})
	for _, c := range []*Client{x, y} {
		if c != nil {
			c.Ping()
			s.Tr.Sent("PINGREQ")
			s.Await(c, 1, 5*time.Second)
		}
	}
	s.Tr.Note("step: MQTT 5, the same client id again for device one")
	z := s.Connect(ConnectOpts{V5: true, ClientID: "shared-id-" + s.T.run, Username: Str(t1), Clean: true})
	s.Connect(ConnectOpts{V5: true, ClientID: "shared-id-" + s.T.run, Username: Str(t1), Clean: true})
	s.Await(z, 1, 5*time.Second)
	s.Await(x, 1, 5*time.Second)
}

// otaNotAssigned: a chunk request with no firmware assigned.
func otaNotAssigned(s *Seq) {
	_, token := s.Device("dev")
	c := s.Token(token, false)
	s.Pub(c, "v2/fw/request/1/chunk/0", []byte("4096"), 1)
	s.Await(c, 2, 5*time.Second)
	s.Tr.Note("step: MQTT 5")
	c = s.Token(token, true)
	s.Pub(c, "v2/fw/request/1/chunk/0", []byte("4096"), 1)
	s.Await(c, 2, 5*time.Second)
}

// firmware is a deterministic 10000-byte package.
func firmware() []byte {
	b := make([]byte, 10000)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// otaDevice: a device-level assignment reaches the device as one push,
// then chunks of every size, the fw_state sequence, the unassignment.
func otaDevice(s *Seq) {
	start := time.Now().Add(-time.Second).UnixMilli()
	id, token := s.Device("dev")
	c := s.Token(token, false)
	s.Sub(c, 1, "v1/devices/me/attributes")
	s.Await(c, 1, 5*time.Second)
	version := "1.0-" + s.T.run
	s.Tr.Alias(version, "<version>")
	pkgID := s.pkg(s.T.ProfileID, "DIFF_FW", version, firmware())
	s.assignDevice(id, pkgID)
	s.AwaitUnordered(c, 2, s.T.Params.OTAPackInterval+10*time.Second)
	s.Pub(c, "v1/devices/me/telemetry", []byte(`{"fw_state":"DOWNLOADING"}`), 1)
	s.Await(c, 1, 5*time.Second)
	chunk := func(req, idx int, payload string) {
		s.Pub(c, fmt.Sprintf("v2/fw/request/%d/chunk/%d", req, idx), []byte(payload), 1)
		s.Await(c, 2, 5*time.Second)
	}
	for i := 0; i <= 3; i++ {
		chunk(1, i, "4096")
	}
	chunk(1, 1, "") // an empty payload reuses the request's size
	chunk(2, 0, "0")
	chunk(2, 1, "0")
	chunk(3, 9999, "1")
	chunk(3, 10000, "1")
	chunk(4, 0, "10000")
	chunk(4, 1, "10000")
	chunk(5, 0, "")
	chunk(6, 0, "65536")
	for _, st := range []string{"DOWNLOADED", "VERIFIED", "UPDATING"} {
		s.Pub(c, "v1/devices/me/telemetry", []byte(`{"fw_state":"`+st+`"}`), 1)
		s.Await(c, 1, 5*time.Second)
	}
	s.Pub(c, "v1/devices/me/telemetry", []byte(`{"current_fw_title":"DIFF_FW","current_fw_version":"`+version+`","fw_state":"UPDATED"}`), 1)
	s.Await(c, 1, 5*time.Second)
	s.fwStates(id, start)
	s.latest(id, "target_fw_title", "target_fw_version", "current_fw_version")
	s.Tr.Note("step: unassign")
	s.assignDevice(id, "")
	s.Await(c, 1, 10*time.Second)
	s.latest(id, "fw_state", "target_fw_version")
}

// otaChunkErrors: chunk requests that end the session.
func otaChunkErrors(s *Seq) {
	id, token := s.Device("dev")
	version := "2.0-" + s.T.run
	s.Tr.Alias(version, "<version>")
	pkgID := s.pkg(s.T.ProfileID, "DIFF_FW", version, firmware())
	s.assignDevice(id, pkgID)
	for _, step := range []struct{ topic, payload string }{
		{"v2/fw/request/1/chunk/0", "65537"},
		{"v2/fw/request/1/chunk/0", "abc"},
		{"v2/fw/request/1/chunk/0", "-5"},
		{"v2/fw/request/1/chunk/0", " 4096"},
		{"v2/fw/request/1/chunk/-1", "4096"},
		{"v2/fw/request/x/chunk/0", "4096"},
		{"v2/fw/request/1/chunk/y", "4096"},
		{"v2/fw/request/1/chunk/0/extra", "4096"},
		{"v2/sw/request/1/chunk/0", "4096"},
	} {
		c := s.Token(token, false)
		s.Pub(c, step.topic, []byte(step.payload), 1)
		s.Await(c, 2, 5*time.Second)
		c.Close()
	}
	s.Tr.Note("step: MQTT 5, too large")
	c := s.Token(token, true)
	s.Pub(c, "v2/fw/request/1/chunk/0", []byte("65537"), 1)
	s.Await(c, 2, 5*time.Second)
	s.Tr.Note("step: MQTT 5, not a number")
	c = s.Token(token, true)
	s.Pub(c, "v2/fw/request/1/chunk/0", []byte("abc"), 1)
	s.Await(c, 2, 5*time.Second)
}

// otaPacing: a profile assignment to one more device than a pack holds:
// a pack at once, the rest one interval later.
func otaPacing(s *Seq) {
	n := s.T.Params.OTAPackSize + 1
	prof, err := s.T.REST.ProvisioningProfile(s.Ctx, DiffProfile+"-pacing-"+s.T.run, DiffKey+"-pacing-"+s.T.run, DiffSecret)
	if err != nil {
		s.Tr.Note("REST pacing profile: %v", err)
		return
	}
	defer func() {
		prof, _ := s.T.REST.Profile(s.Ctx, prof.ID())
		if prof != nil {
			prof["firmwareId"] = nil
			s.T.REST.SaveProfile(s.Ctx, prof)
		}
	}()
	clients := make([]*Client, n)
	for i := range clients {
		_, token := s.DeviceIn(fmt.Sprintf("dev%d", i), prof.ID())
		c, err := Dial(s.T.MQTT, ConnectOpts{ClientID: "p" + token[:6], Username: Str(token), Clean: true})
		if err != nil {
			s.Tr.Note("dial: %v", err)
			return
		}
		s.clients = append(s.clients, c)
		clients[i] = c
		if p, ok := c.Next(10 * time.Second); !ok || p.Type != pConnack || p.Codes[1] != 0 {
			s.Tr.Note("device %d not connected: %v", i, p)
			return
		}
		c.Subscribe(1, "v1/devices/me/attributes")
		c.Next(5 * time.Second)
	}
	s.Tr.Note("%d devices connected and subscribed", n)
	version := "3.0-" + s.T.run
	s.Tr.Alias(version, "<version>")
	pkgID := s.pkg(prof.ID(), "DIFF_FW", version, firmware())
	p, err := s.T.REST.Profile(s.Ctx, prof.ID())
	if err != nil {
		s.Tr.Note("REST get profile: %v", err)
		return
	}
	p["firmwareId"] = map[string]any{"entityType": "OTA_PACKAGE", "id": pkgID}
	start := time.Now()
	_, err = s.T.REST.SaveProfile(s.Ctx, p)
	s.NoteErr("REST assign firmware to the profile", err)
	var mu sync.Mutex
	var arrivals []time.Duration
	never := 0
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func(c *Client) {
			defer wg.Done()
			deadline := time.Now().Add(s.T.Params.OTAPackInterval*2 + 10*time.Second)
			for {
				p, ok := c.Next(time.Until(deadline))
				if !ok {
					mu.Lock()
					never++
					mu.Unlock()
					return
				}
				if p.Type == pPublish && strings.Contains(string(p.Payload), `"fw_version"`) {
					mu.Lock()
					arrivals = append(arrivals, time.Since(start))
					mu.Unlock()
					return
				}
			}
		}(c)
	}
	wg.Wait()
	slices.Sort(arrivals)
	// The first, the middle and the last push as shares of the interval:
	// a queue that spreads its pack over the interval gives 0.0x, 0.5x and
	// 1.0x here; one that releases a pack at once gives 0.0x, 0.0x, 1.0x.
	for _, k := range []int{0, n / 2, n - 1} {
		if k < len(arrivals) {
			s.Tr.Note("push %d of %d at %s of the pack interval", k+1, n, ratio(arrivals[k], s.T.Params.OTAPackInterval))
		}
	}
	if never > 0 {
		s.Tr.Note("%d devices got no push", never)
	}
}

// rateLimit: attribute requests up to the device's message rate limit,
// paced so each is answered, then a burst past it, then a connect right
// after (ThingsBoard's transportDeviceMsgRateLimit counts attribute
// requests, RPC, chunk requests and session opens; telemetry and client
// attributes count against its separate telemetry limits, left unset here).
func rateLimit(s *Seq) {
	if s.T.Params.RateLimit <= 0 {
		s.Tr.Note("skipped: no rate limit configured")
		return
	}
	_, token := s.Device("dev")
	// Let the bucket the connect below drew on fill up again.
	c := s.Token(token, false)
	s.Await(c, 0, time.Second)
	n := s.T.Params.RateLimit - 1
	s.Tr.Sent("%d attribute requests, each after the answer to the last", n)
	acks, answers := 0, 0
	for i := 0; i < n; i++ {
		c.Publish(fmt.Sprintf("v1/devices/me/attributes/request/%d", i+1), []byte(`{"sharedKeys":"x"}`), 1)
		for k := 0; k < 2; k++ {
			if p, ok := c.Next(5 * time.Second); ok {
				switch p.Type {
				case pPuback:
					acks++
				case pPublish:
					answers++
				default:
					s.Tr.Got(p)
				}
			}
		}
	}
	s.Tr.Note("%d PUBACKs and %d answers", acks, answers)
	s.Tr.Sent("5 attribute requests at once")
	for i := 0; i < 5; i++ {
		c.Publish(fmt.Sprintf("v1/devices/me/attributes/request/%d", 100+i), []byte(`{"sharedKeys":"x"}`), 1)
	}
	for {
		p, ok := c.Next(5 * time.Second)
		if !ok {
			s.Tr.Note("still open")
			break
		}
		if p.Type == pClosed {
			s.Tr.Got(p)
			break
		}
	}
	// Whether this connect finds a token depends on how long the server took
	// to close: the bucket refills one token every 1/RateLimit s (greedy). On
	// ThingsBoard 4.3.1.3 both happened (paced requests: refused; requests as
	// fast as answered: accepted), so the line says which outcomes are
	// ThingsBoard's, not which one came.
	s.Tr.Note("step: MQTT 5 connect right after")
	c5 := s.dial(s.tokenOpts(token, true))
	if c5 == nil {
		return
	}
	var got []string
	for {
		p, ok := c5.Next(2 * time.Second)
		if !ok || p.Type == pClosed {
			break
		}
		got = append(got, p.String())
		if p.Type == pConnack && len(p.Codes) > 1 && p.Codes[1] == 0 {
			break
		}
	}
	switch out := strings.Join(got, ", "); out {
	case "CONNACK sp=0 code=0x00", "CONNACK sp=0 code=0x9f, DISCONNECT reason=0x96":
		s.Tr.Note("accepted, or refused with CONNACK 0x9f and DISCONNECT 0x96")
	default:
		s.Tr.Note("got %s", out)
	}
}

// idleTimeout: a session that sends nothing is closed after the inactivity timeout.
func idleTimeout(s *Seq) {
	if s.T.Params.Inactivity <= 0 {
		s.Tr.Note("skipped: no inactivity timeout configured")
		return
	}
	_, token := s.Device("dev")
	c := s.Token(token, false)
	s.AwaitClose(c, 0, s.T.Params.Inactivity, s.T.Params.Inactivity*2+10*time.Second, "of the inactivity timeout")
	s.Tr.Note("step: a PINGREQ at half the timeout keeps the session")
	c = s.Token(token, false)
	deadline := time.Now().Add(s.T.Params.Inactivity / 2)
	if p, ok := c.Next(time.Until(deadline)); ok {
		s.Tr.Got(p)
	}
	c.Ping()
	mark := c.Since()
	s.Tr.Sent("PINGREQ")
	s.AwaitClose(c, mark-s.T.Params.Inactivity/2, s.T.Params.Inactivity, s.T.Params.Inactivity*3+10*time.Second, "of the inactivity timeout, counted from the connect")
	s.Tr.Note("step: MQTT 5, the DISCONNECT before the idle close")
	c = s.Token(token, true)
	s.AwaitClose(c, 0, s.T.Params.Inactivity, s.T.Params.Inactivity*2+10*time.Second, "of the inactivity timeout")
}

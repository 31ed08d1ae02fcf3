package tbapi

import "testing"

func TestIDTopics(t *testing.T) {
	cases := []struct {
		topic string
		parse func(string) (int, bool)
		id    int
		ok    bool
	}{
		{"v1/devices/me/attributes/request/7", ParseAttrRequestTopic, 7, true},
		{"v1/devices/me/attributes/response/12", ParseAttrResponseTopic, 12, true},
		{"v1/devices/me/rpc/request/3", ParseRPCRequestTopic, 3, true},
		{"v1/devices/me/rpc/response/99", ParseRPCResponseTopic, 99, true},
		{"v1/devices/me/rpc/request/+", ParseRPCRequestTopic, 0, false},
		{"v1/devices/me/rpc/request/", ParseRPCRequestTopic, 0, false},
		{"v1/devices/me/rpc/request/1/2", ParseRPCRequestTopic, 0, false},
		{"v1/devices/me/attributes/request/99999999999", ParseAttrRequestTopic, 0, false},
		{"v1/devices/me/telemetry", ParseAttrRequestTopic, 0, false},
	}
	for _, c := range cases {
		id, ok := c.parse(c.topic)
		if id != c.id || ok != c.ok {
			t.Errorf("parse(%q) = %d, %v; want %d, %v", c.topic, id, ok, c.id, c.ok)
		}
	}
	if got := AttrRequestTopic(5); got != "v1/devices/me/attributes/request/5" {
		t.Errorf("AttrRequestTopic = %s", got)
	}
	if got := RPCResponseTopic(5); got != "v1/devices/me/rpc/response/5" {
		t.Errorf("RPCResponseTopic = %s", got)
	}
}

func TestChunkTopics(t *testing.T) {
	if got := FwRequestTopic(3, 17); got != "v2/fw/request/3/chunk/17" {
		t.Errorf("FwRequestTopic = %s", got)
	}
	if got := FwResponseTopic(3, 17); got != "v2/fw/response/3/chunk/17" {
		t.Errorf("FwResponseTopic = %s", got)
	}
	good := map[string]ChunkTopic{
		"v2/fw/request/3/chunk/17": {Kind: "fw", Request: true, RequestID: 3, Chunk: 17},
		"v2/sw/response/1/chunk/0": {Kind: "sw", RequestID: 1, Chunk: 0},
	}
	for topic, want := range good {
		got, ok := ParseChunkTopic(topic)
		if !ok || got != want {
			t.Errorf("ParseChunkTopic(%q) = %+v, %v; want %+v", topic, got, ok, want)
		}
		if got.String() != topic {
			t.Errorf("String() = %s; want %s", got.String(), topic)
		}
	}
	for _, bad := range []string{"v2/fw/request/3/chunk", "v2/xw/request/3/chunk/1", "v2/fw/get/3/chunk/1", "v2/fw/request/a/chunk/1", "v2/fw/request/1/chunk/-1", "v2/fw/request/1/chunks/1", "v2/fw/error"} {
		if _, ok := ParseChunkTopic(bad); ok {
			t.Errorf("ParseChunkTopic(%q) accepted", bad)
		}
	}
}

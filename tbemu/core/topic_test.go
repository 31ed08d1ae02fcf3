package core

import "testing"

func TestTopicMatch(t *testing.T) {
	for _, c := range []struct {
		filter, topic string
		want          bool
	}{
		{"v1/devices/me/attributes", "v1/devices/me/attributes", true},
		{"v1/devices/me/attributes", "v1/devices/me/attribute", false},
		{"v1/devices/me/rpc/request/+", "v1/devices/me/rpc/request/7", true},
		{"v1/devices/me/rpc/request/+", "v1/devices/me/rpc/request/7/x", false},
		{"v1/devices/me/rpc/request/+", "v1/devices/me/rpc/request", false},
		{"v2/fw/response/+/chunk/+", "v2/fw/response/3/chunk/12", true},
		{"#", "anything/at/all", true},
		{"a/#", "a", true}, // the parent level, as MQTT says
		{"a/#", "a/b/c", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"a/b", "a", false},
		{"", "", true},
	} {
		if got := topicMatch(c.filter, c.topic); got != c.want {
			t.Errorf("topicMatch(%q, %q) = %v; want %v", c.filter, c.topic, got, c.want)
		}
	}
}

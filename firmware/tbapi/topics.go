//go:build go1.23

package tbapi

import (
	"strconv"
	"strings"
)

// Topics of the device API (ThingsBoard MqttTopics.java, unchanged since 3.6).
const (
	TopicTelemetry  = "v1/devices/me/telemetry"
	TopicAttributes = "v1/devices/me/attributes" // client attributes up, shared pushes down

	TopicAttrRequestPrefix  = "v1/devices/me/attributes/request/"
	TopicAttrResponsePrefix = "v1/devices/me/attributes/response/"
	TopicAttrResponseFilter = TopicAttrResponsePrefix + "+"

	TopicRPCRequestPrefix  = "v1/devices/me/rpc/request/"
	TopicRPCRequestFilter  = TopicRPCRequestPrefix + "+"
	TopicRPCResponsePrefix = "v1/devices/me/rpc/response/"
	TopicRPCResponseFilter = TopicRPCResponsePrefix + "+"

	// Firmware chunks: requests up, responses down, errors down (always "fw",
	// even for software; thingsboard#9303).
	TopicFwResponseFilter = "v2/fw/response/+/chunk/+"
	TopicFwError          = "v2/fw/error"

	// Provisioning. Both have a leading slash; the docs' "/provision" is wrong.
	TopicProvisionRequest  = "/provision/request"
	TopicProvisionResponse = "/provision/response"

	// ProvisionUser is the username (and, for the Arduino SDK, client id) of a
	// provisioning session.
	ProvisionUser = "provision"
)

// AttrRequestTopic is where a device asks for attributes with request id id.
func AttrRequestTopic(id int) string { return TopicAttrRequestPrefix + strconv.Itoa(id) }

// AttrResponseTopic is where the answer to attribute request id arrives.
func AttrResponseTopic(id int) string { return TopicAttrResponsePrefix + strconv.Itoa(id) }

// RPCRequestTopic carries an RPC request with id (server-side or client-side).
func RPCRequestTopic(id int) string { return TopicRPCRequestPrefix + strconv.Itoa(id) }

// RPCResponseTopic carries the answer to RPC id.
func RPCResponseTopic(id int) string { return TopicRPCResponsePrefix + strconv.Itoa(id) }

// ParseAttrRequestTopic returns the request id of an attribute request topic.
func ParseAttrRequestTopic(topic string) (int, bool) {
	return parseIDTopic(topic, TopicAttrRequestPrefix)
}

// ParseAttrResponseTopic returns the request id of an attribute response topic.
func ParseAttrResponseTopic(topic string) (int, bool) {
	return parseIDTopic(topic, TopicAttrResponsePrefix)
}

// ParseRPCRequestTopic returns the id of an RPC request topic.
func ParseRPCRequestTopic(topic string) (int, bool) {
	return parseIDTopic(topic, TopicRPCRequestPrefix)
}

// ParseRPCResponseTopic returns the id of an RPC response topic.
func ParseRPCResponseTopic(topic string) (int, bool) {
	return parseIDTopic(topic, TopicRPCResponsePrefix)
}

// parseIDTopic accepts prefix followed by a decimal integer, as ThingsBoard's
// Integer.parseInt of the topic tail does (a sign is allowed, nothing else).
func parseIDTopic(topic, prefix string) (int, bool) {
	if !strings.HasPrefix(topic, prefix) {
		return 0, false
	}
	return parseInt32(topic[len(prefix):])
}

func parseInt32(s string) (int, bool) {
	n, ok := parseInt(s, 32)
	return int(n), ok
}

// ChunkTopic is a parsed v2/{fw|sw}/{request|response}/{id}/chunk/{n} topic.
type ChunkTopic struct {
	Kind      string // "fw" or "sw"
	Request   bool   // true for request (device to server), false for response
	RequestID int
	Chunk     int
}

// String formats the topic.
func (c ChunkTopic) String() string {
	dir := "/response/"
	if c.Request {
		dir = "/request/"
	}
	return "v2/" + c.Kind + dir + strconv.Itoa(c.RequestID) + "/chunk/" + strconv.Itoa(c.Chunk)
}

// FwRequestTopic is where a device asks for chunk n of the firmware with
// request id id.
func FwRequestTopic(id, n int) string {
	return ChunkTopic{Kind: "fw", Request: true, RequestID: id, Chunk: n}.String()
}

// FwResponseTopic is where chunk n of request id arrives.
func FwResponseTopic(id, n int) string {
	return ChunkTopic{Kind: "fw", RequestID: id, Chunk: n}.String()
}

// ParseChunkTopic parses a firmware or software chunk request or response topic.
func ParseChunkTopic(topic string) (ChunkTopic, bool) {
	// Split by hand: a device parses this for every chunk it receives, and
	// strings.Split's slice was most of the cost.
	var parts [6]string
	rest := topic
	for i := range len(parts) - 1 {
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return ChunkTopic{}, false
		}
		parts[i], rest = rest[:j], rest[j+1:]
	}
	parts[5] = rest
	if strings.IndexByte(rest, '/') >= 0 || parts[0] != "v2" || parts[4] != "chunk" {
		return ChunkTopic{}, false
	}
	var c ChunkTopic
	switch parts[1] {
	case "fw", "sw":
		c.Kind = parts[1]
	default:
		return ChunkTopic{}, false
	}
	switch parts[2] {
	case "request":
		c.Request = true
	case "response":
	default:
		return ChunkTopic{}, false
	}
	var ok1, ok2 bool
	c.RequestID, ok1 = parseInt32(parts[3])
	c.Chunk, ok2 = parseInt32(parts[5])
	if !ok1 || !ok2 || c.Chunk < 0 {
		return ChunkTopic{}, false
	}
	return c, true
}

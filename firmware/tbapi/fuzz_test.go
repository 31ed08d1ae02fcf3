package tbapi

import (
	"encoding/json"
	"strings"
	"testing"
)

// Every decoder must return an error, never panic, on any input; what the JSON
// reader accepts must be valid JSON and survive a round trip.

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2,{"b":null}]}`, `"\ud83d\ude00"`, `-0.5e-3`, `[[[[`, `{"a":"\u00"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Parse accepted invalid JSON %q", data)
			return
		}
		out := AppendValue(nil, v)
		v2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
			return
		}
		if out2 := AppendValue(nil, v2); string(out2) != string(out) {
			t.Fatalf("round trip unstable: %q then %q", out, out2)
			return
		}
	})
}

func FuzzDecodeProvisionRequest(f *testing.F) {
	f.Add(ProvisionRequest{DeviceName: "d", Key: "k", Secret: "s", CredentialsType: CredMQTTBasic}.Encode())
	f.Add([]byte(`{"provisionDeviceKey":"k","provisionDeviceSecret":"s","credentialsType":"X"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeProvisionRequest(data)
		if err == nil {
			if _, err := DecodeProvisionRequest(r.Encode()); err != nil {
				t.Fatalf("re-decode of %s: %v", r.Encode(), err)
				return
			}
		}
	})
}

func FuzzDecodeProvisionResponse(f *testing.F) {
	f.Add(ProvisionResponse{Status: ProvisionSuccess, CredentialsType: CredAccessToken, Token: "t"}.Encode())
	f.Add(ProvisionResponse{Status: ProvisionSuccess, CredentialsType: CredMQTTBasic, Basic: BasicCredentials{"c", "u", "p"}}.Encode())
	f.Add(ProvisionResponse{Status: ProvisionNotFound}.Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeProvisionResponse(data)
		if err == nil && r.Status == ProvisionSuccess && r.Token == "" && r.Basic == (BasicCredentials{}) {
			t.Fatalf("SUCCESS without credentials accepted: %q", data)
			return
		}
	})
}

func FuzzDecodeAttrRequest(f *testing.F) {
	f.Add([]byte(`{"sharedKeys":"a,b,","clientKeys":"c"}`))
	f.Add([]byte(`{"sharedKeys":["x"]}`))
	f.Fuzz(func(t *testing.T, data []byte) { _, _ = DecodeAttrRequest(data) })
}

func FuzzDecodeAttrResponse(f *testing.F) {
	f.Add([]byte(`{"client":{"a":1},"shared":{"fw_title":"T"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeAttrResponse(data)
		if err == nil {
			var fw FwInfo
			fw.Merge(r.Shared)
			_ = fw.Missing()
		}
	})
}

func FuzzDecodeAttrUpdate(f *testing.F) {
	f.Add([]byte(`{"deleted":["fw_title"]}`))
	f.Add([]byte(`{"fw_title":"T","fw_size":"12"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := DecodeAttrUpdate(data)
		if err == nil {
			var fw FwInfo
			fw.Merge(u.Values)
			fw.Forget(u.Deleted)
		}
	})
}

func FuzzDecodeTelemetry(f *testing.F) {
	f.Add([]byte(`[{"ts":1,"values":{"a":"1.5"}},{"b":null}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := DecodeTelemetry(data)
		if err != nil {
			return
		}
		for _, e := range entries {
			for _, m := range e.Values {
				_ = CastNumeric(m.Value)
			}
		}
	})
}

func FuzzDecodeRPCRequest(f *testing.F) {
	f.Add([]byte(`{"method":"reboot","params":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) { _, _ = DecodeRPCRequest(data) })
}

func FuzzParseTopics(f *testing.F) {
	f.Add("v2/fw/response/1/chunk/2", []byte("4096"))
	f.Add("v1/devices/me/rpc/request/7", []byte(""))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		c, ok := ParseChunkTopic(topic)
		// The same verdict as splitting with strings.Split (what it did before).
		parts := strings.Split(topic, "/")
		if want := len(parts) == 6 && parts[0] == "v2" && parts[4] == "chunk" && (parts[1] == "fw" || parts[1] == "sw") &&
			(parts[2] == "request" || parts[2] == "response"); ok && !want {
			t.Fatalf("ParseChunkTopic(%q) accepted a topic of another shape", topic)
			return
		} else if want && ok != validChunkNumbers(parts[3], parts[5]) {
			t.Fatalf("ParseChunkTopic(%q) = %v", topic, ok)
			return
		}
		if ok {
			if back, ok := ParseChunkTopic(c.String()); !ok || back != c {
				t.Fatalf("chunk topic %q round trip = %+v", topic, back)
				return
			}
		}
		ParseRPCRequestTopic(topic)
		ParseAttrResponseTopic(topic)
		_, _, _ = ParseChunkSize(payload)
	})
}

func validChunkNumbers(id, n string) bool {
	_, ok1 := parseInt32(id)
	c, ok2 := parseInt32(n)
	return ok1 && ok2 && c >= 0
}

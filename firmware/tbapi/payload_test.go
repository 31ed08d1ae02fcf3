package tbapi

import (
	"errors"
	"reflect"
	"testing"
)

func TestProvisionRequestEncode(t *testing.T) {
	cases := []struct {
		name string
		req  ProvisionRequest
		want string
	}{
		{"generated token", ProvisionRequest{DeviceName: "24:0A:C4:00:00:01", Key: "k", Secret: "s"},
			`{"deviceName":"24:0A:C4:00:00:01","provisionDeviceKey":"k","provisionDeviceSecret":"s"}`},
		{"device token", ProvisionRequest{DeviceName: "d", Key: "k", Secret: "s", CredentialsType: CredAccessToken, Token: "tok"},
			`{"deviceName":"d","provisionDeviceKey":"k","provisionDeviceSecret":"s","credentialsType":"ACCESS_TOKEN","token":"tok"}`},
		{"mqtt basic", ProvisionRequest{DeviceName: "d", Key: "k", Secret: "s", CredentialsType: CredMQTTBasic, Basic: BasicCredentials{"c", "u", "p"}},
			`{"deviceName":"d","provisionDeviceKey":"k","provisionDeviceSecret":"s","credentialsType":"MQTT_BASIC","clientId":"c","username":"u","password":"p"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.req.Encode()
			if string(got) != c.want {
				t.Fatalf("got %s; want %s", got, c.want)
				return
			}
			back, err := DecodeProvisionRequest(got)
			if err != nil {
				t.Fatal(err)
				return
			}
			if !reflect.DeepEqual(back, c.req) {
				t.Fatalf("decode = %+v; want %+v", back, c.req)
				return
			}
		})
	}
}

func TestDecodeProvisionRequestErrors(t *testing.T) {
	cases := map[string]error{
		`{"provisionDeviceSecret":"s"}`:                                                  ErrMissingField,
		`{"provisionDeviceKey":"k"}`:                                                     ErrMissingField,
		`{"provisionDeviceKey":"k","provisionDeviceSecret":null}`:                        ErrBadField,
		`{"provisionDeviceKey":"k","provisionDeviceSecret":"s","credentialsType":"PSK"}`: ErrBadField,
		`[1]`:    ErrNotObject,
		`{"a":1`: ErrSyntax,
	}
	for in, want := range cases {
		if _, err := DecodeProvisionRequest([]byte(in)); !errors.Is(err, want) {
			t.Errorf("DecodeProvisionRequest(%s) = %v; want %v", in, err, want)
		}
	}
}

func TestProvisionResponseBytes(t *testing.T) {
	cases := []struct {
		resp ProvisionResponse
		want string
	}{
		{ProvisionResponse{Status: ProvisionSuccess, CredentialsType: CredAccessToken, Token: "abc"},
			`{"credentialsValue":"abc","credentialsType":"ACCESS_TOKEN","status":"SUCCESS"}`},
		{ProvisionResponse{Status: ProvisionSuccess, CredentialsType: CredMQTTBasic, Basic: BasicCredentials{"c", "u", "p"}},
			`{"credentialsValue":{"clientId":"c","userName":"u","password":"p"},"credentialsType":"MQTT_BASIC","status":"SUCCESS"}`},
		{ProvisionResponse{Status: ProvisionFailure},
			`{"errorMsg":"Failed to provision device!","status":"FAILURE"}`},
		{ProvisionResponse{Status: ProvisionNotFound},
			`{"errorMsg":"Provision data was not found!","status":"NOT_FOUND"}`},
	}
	for _, c := range cases {
		got := c.resp.Encode()
		if string(got) != c.want {
			t.Errorf("Encode = %s; want %s", got, c.want)
		}
		back, err := DecodeProvisionResponse(got)
		if err != nil {
			t.Fatalf("decode %s: %v", got, err)
			return
		}
		if back.Status != c.resp.Status || back.Token != c.resp.Token || back.Basic != c.resp.Basic {
			t.Errorf("decode %s = %+v", got, back)
		}
		if c.resp.Status != ProvisionSuccess && back.ErrorMsg == "" {
			t.Errorf("decode %s lost errorMsg", got)
		}
	}
	for _, bad := range []string{`{"status":"SUCCESS"}`, `{"status":"SUCCESS","credentialsValue":""}`, `{"credentialsValue":"x"}`, `{"status":"SUCCESS","credentialsValue":{}}`} {
		if _, err := DecodeProvisionResponse([]byte(bad)); err == nil {
			t.Errorf("DecodeProvisionResponse(%s) accepted", bad)
		}
	}
}

func TestAttrRequest(t *testing.T) {
	got := string(AttrRequest{SharedKeys: FwSharedKeys}.Encode())
	if want := `{"sharedKeys":"fw_checksum,fw_checksum_algorithm,fw_size,fw_title,fw_version"}`; got != want {
		t.Fatalf("got %s; want %s", got, want)
		return
	}
	cases := []struct {
		in   string
		want AttrRequest
	}{
		{`{}`, AttrRequest{}},
		{`{"sharedKeys":"a,b,"}`, AttrRequest{SharedKeys: []string{"a", "b"}}}, // Arduino's trailing comma
		{`{"clientKeys":"x, y","sharedKeys":"a,a"}`, AttrRequest{ClientKeys: []string{"x", " y"}, SharedKeys: []string{"a"}}},
		{`{"sharedKeys":["a,b"]}`, AttrRequest{SharedKeys: []string{"a", "b"}}},
		{`{"sharedKeys":""}`, AttrRequest{SharedKeys: []string{""}}},
		{`{"sharedKeys":",a"}`, AttrRequest{SharedKeys: []string{"", "a"}}},
	}
	for _, c := range cases {
		r, err := DecodeAttrRequest([]byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
			return
		}
		if !reflect.DeepEqual(r, c.want) {
			t.Errorf("DecodeAttrRequest(%s) = %#v; want %#v", c.in, r, c.want)
		}
	}
	for _, bad := range []string{``, `[]`, `{"sharedKeys":["a","b"]}`, `{"sharedKeys":null}`} {
		if _, err := DecodeAttrRequest([]byte(bad)); err == nil {
			t.Errorf("DecodeAttrRequest(%s) accepted", bad)
		}
	}
}

func TestAttrResponseAndUpdate(t *testing.T) {
	shared := FwInfo{Title: "T", Version: "1.1", Size: 10, Checksum: "ab", Algorithm: "SHA256"}.Members()
	got := string(AttrResponse{Shared: shared}.Encode())
	want := `{"shared":{"fw_title":"T","fw_version":"1.1","fw_size":10,"fw_checksum_algorithm":"SHA256","fw_checksum":"ab"}}`
	if got != want {
		t.Fatalf("got %s; want %s", got, want)
		return
	}
	if got := string(AttrResponse{}.Encode()); got != `{}` {
		t.Fatalf("empty response = %s; want {}", got)
		return
	}
	r, err := DecodeAttrResponse([]byte(want))
	if err != nil || len(r.Shared) != 5 || r.Client != nil {
		t.Fatalf("decode = %+v, %v", r, err)
		return
	}
	if _, err := DecodeAttrResponse([]byte(`{"shared":1}`)); err == nil {
		t.Fatal("shared:1 accepted")
		return
	}

	del := AttrUpdate{Deleted: []string{"fw_tag", "fw_url"}}
	if got := string(del.Encode()); got != `{"deleted":["fw_tag","fw_url"]}` {
		t.Fatalf("deleted push = %s", got)
		return
	}
	u, err := DecodeAttrUpdate(del.Encode())
	if err != nil || !reflect.DeepEqual(u.Deleted, del.Deleted) || u.Values != nil {
		t.Fatalf("decode deleted = %+v, %v", u, err)
		return
	}
	u, err = DecodeAttrUpdate([]byte(`{"fw_title":"T","deleted":"no"}`))
	if err != nil || len(u.Values) != 2 || u.Deleted != nil {
		t.Fatalf("decode values = %+v, %v", u, err)
		return
	}
}

func TestFwInfoMerge(t *testing.T) {
	var f FwInfo
	v, _ := Parse([]byte(`{"fw_title":"T","fw_version":"2","fw_size":"4096","other":1}`))
	if !f.Merge(v.Members) {
		t.Fatal("Merge saw no fw key")
		return
	}
	if !f.Assigned() || f.Complete() || f.Size != 4096 {
		t.Fatalf("after partial merge: %+v", f)
		return
	}
	if got := f.Missing(); got != "fw_checksum,fw_checksum_algorithm" {
		t.Fatalf("Missing = %s", got)
		return
	}
	v, _ = Parse([]byte(`{"fw_checksum":"aa","fw_checksum_algorithm":"MD5"}`))
	f.Merge(v.Members)
	if !f.Complete() {
		t.Fatalf("not complete: %+v", f)
		return
	}
	f.Forget([]string{KeyFwTitle})
	if f.Assigned() {
		t.Fatal("still assigned after fw_title deleted")
		return
	}
	v, _ = Parse([]byte(`{"temperature":1}`))
	if f.Merge(v.Members) {
		t.Fatal("Merge reported fw keys in a non-fw push")
		return
	}
}

func TestFwReport(t *testing.T) {
	cases := []struct {
		r    FwReport
		want string
	}{
		{FwReport{State: FwDownloading}, `{"fw_state":"DOWNLOADING","fw_error":""}`},
		{FwReport{State: FwFailed, Error: "checksum mismatch"}, `{"fw_state":"FAILED","fw_error":"checksum mismatch"}`},
		{FwReport{State: FwUpdated, Title: "T", Version: "1.1"}, `{"current_fw_title":"T","current_fw_version":"1.1","fw_state":"UPDATED"}`},
		{FwReport{Title: "CORE_ESP32", Version: "1.0.0"}, `{"current_fw_title":"CORE_ESP32","current_fw_version":"1.0.0"}`},
	}
	for _, c := range cases {
		if got := string(c.r.Encode()); got != c.want {
			t.Errorf("Encode(%+v) = %s; want %s", c.r, got, c.want)
		}
	}
}

func TestTelemetry(t *testing.T) {
	cases := []struct {
		in   string
		want []TsValues
	}{
		{`{"t":1,"n":null}`, []TsValues{{Values: []Member{{Key: "t", Value: Value{Kind: Number, Str: "1"}}}}}},
		{`{"ts":1700000000000,"values":{"t":"2.5"}}`, []TsValues{{Ts: 1700000000000, Values: []Member{{Key: "t", Value: Value{Kind: String, Str: "2.5"}}}}}},
		{`{"ts":5}`, []TsValues{{Values: []Member{{Key: "ts", Value: Value{Kind: Number, Str: "5"}}}}}}, // ts alone is a key
		{`[{"a":true},{"ts":1,"values":{}}]`, []TsValues{{Values: []Member{{Key: "a", Value: Value{Kind: Bool, Bool: true}}}}, {Ts: 1}}},
	}
	for _, c := range cases {
		got, err := DecodeTelemetry([]byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
			return
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("DecodeTelemetry(%s) = %#v; want %#v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{`1`, `"x"`, `[1]`, `{"ts":"x","values":{}}`, `{"ts":1,"values":3}`} {
		if _, err := DecodeTelemetry([]byte(bad)); err == nil {
			t.Errorf("DecodeTelemetry(%s) accepted", bad)
		}
	}
	if got := (TsValues{Ts: 7, Values: []Member{{Key: "a", Value: Value{Kind: Number, Str: "1"}}}}).Encode(); string(got) != `{"ts":7,"values":{"a":1}}` {
		t.Errorf("TsValues.Encode = %s", got)
	}
	if v := CastNumeric(Value{Kind: String, Str: "1.2"}); v.Kind != Number {
		t.Errorf("CastNumeric(\"1.2\") = %v; want a number", v.Kind)
	}
	for _, s := range []string{"Inf", "0x10", "1_0", "abc", ""} {
		if v := CastNumeric(Value{Kind: String, Str: s}); v.Kind != String {
			t.Errorf("CastNumeric(%q) made a number", s)
		}
	}
}

func TestRPC(t *testing.T) {
	r, err := DecodeRPCRequest([]byte(`{"method":"getTelemetry","params":{"a":[1]}}`))
	if err != nil || r.Method != "getTelemetry" || r.Params.Kind != Object {
		t.Fatalf("decode = %+v, %v", r, err)
		return
	}
	if got := string(r.Encode()); got != `{"method":"getTelemetry","params":{"a":[1]}}` {
		t.Fatalf("encode = %s", got)
		return
	}
	if got := string(RPCRequest{Method: "m"}.Encode()); got != `{"method":"m","params":null}` {
		t.Fatalf("encode without params = %s", got)
		return
	}
	if _, err := DecodeRPCRequest([]byte(`{"params":1}`)); !errors.Is(err, ErrMissingField) {
		t.Fatalf("missing method: %v", err)
		return
	}
	if got := string(RPCError("unknown method: x")); got != `{"error":"unknown method: x"}` {
		t.Fatalf("RPCError = %s", got)
		return
	}
}

func TestParseChunkSize(t *testing.T) {
	cases := []struct {
		in      string
		size    int
		present bool
		err     bool
	}{
		{"4096", 4096, true, false}, {"0", 0, true, false}, {"", 0, false, false},
		{"abc", 0, true, true}, {"-1", 0, true, true}, {"4096 ", 0, true, true}, {"99999999999", 0, true, true},
	}
	for _, c := range cases {
		size, present, err := ParseChunkSize([]byte(c.in))
		if size != c.size || present != c.present || (err != nil) != c.err {
			t.Errorf("ParseChunkSize(%q) = %d, %v, %v", c.in, size, present, err)
		}
	}
	if got := string(ChunkSizePayload(4096)); got != "4096" {
		t.Errorf("ChunkSizePayload = %s", got)
	}
}

func TestCastNumeric(t *testing.T) {
	for in, number := range map[string]bool{
		"1.2": true, "-3": true, "0": true, "1e5": true, "-0.5E-3": true,
		"": false, "01": false, "1.": false, "Inf": false, "0x1p3": false, "1_0": false, "10.0.0.2": false,
		"24:0A:C4:00:00:01": false, "-": false, "1e": false, "1e999": false, " 1": false,
	} {
		got := CastNumeric(Value{Kind: String, Str: in})
		if (got.Kind == Number) != number || got.Str != in {
			t.Errorf("CastNumeric(%q) = %v %q; want number=%v", in, got.Kind, got.Str, number)
		}
	}
}

// DecodeFlat agrees with the general decoder on flat objects and declines
// everything else.
func TestDecodeFlat(t *testing.T) {
	for _, in := range []string{
		`{"temperature":15.52,"rssi":-61,"bssid":"24:0A:C4:00:00:01","ok":true,"n":null}`,
		` { "a" : "x" , "b" : 1e3 } `,
		`{}`,
	} {
		got, ok := DecodeFlat([]byte(in), nil)
		if !ok {
			t.Fatalf("DecodeFlat(%s) declined", in)
		}
		want, err := Parse([]byte(in))
		if err != nil || len(want.Members) != len(got) {
			t.Fatalf("%s: %d members, general %d (%v)", in, len(got), len(want.Members), err)
		}
		for i, m := range got {
			w := want.Members[i]
			if string(m.Key) != w.Key || m.Value.Kind != w.Value.Kind || m.Value.Str != w.Value.Str || m.Value.Bool != w.Value.Bool {
				t.Fatalf("%s: member %d = %s %+v; want %s %+v", in, i, m.Key, m.Value, w.Key, w.Value)
			}
		}
	}
	for _, in := range []string{`{"ts":1,"values":{"a":1}}`, `[{"a":1}]`, `{"a":[1]}`, `{"a\\u0041":1}`, `{"a":1`, `{"a":1}x`, `{"a" 1}`, `"x"`, ``} {
		if _, ok := DecodeFlat([]byte(in), nil); ok {
			t.Errorf("DecodeFlat(%q) accepted", in)
		}
	}
}

func FuzzDecodeFlat(f *testing.F) {
	f.Add([]byte(`{"temperature":15.52,"rssi":-61,"ssid":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := DecodeFlat(data, nil)
		if !ok {
			return
		}
		want, err := Parse(data)
		if err != nil || want.Kind != Object || len(want.Members) != len(got) {
			t.Fatalf("DecodeFlat accepted %q; Parse: %v", data, err)
		}
		for i, m := range got {
			if string(m.Key) != want.Members[i].Key || m.Value.Str != want.Members[i].Value.Str {
				t.Fatalf("member %d differs", i)
			}
		}
	})
}

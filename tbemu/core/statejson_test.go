package core

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

func testDevState(t testing.TB) *devState {
	ds := newDevState()
	val := func(s string) tbapi.Value {
		v, err := tbapi.Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
			return tbapi.Value{}
		}
		return v
	}
	for i, s := range []string{`1`, `-2.5e3`, `"a\"<b>&\u2028"`, `true`, `null`, `{"x":[1,{"y":"z"}],"e":{}}`, `[]`} {
		ds.Latest[fmt.Sprint("k", i, "\u00e9\"")] = TsValue{Ts: int64(1700000000000 + i), Value: val(s)}
	}
	ds.Attrs[SharedScope]["fw_title"] = TsValue{Ts: 5, Value: val(`"CORE_ESP32"`)}
	ds.Attrs[SharedScope]["fw_size"] = TsValue{Ts: 6, Value: val(`1048576`)}
	ds.Attrs[ClientScope]["currentFwVer"] = TsValue{Ts: 7, Value: val(`"1.0.0"`)}
	ds.Msgs, ds.Points, ds.LastActivity, ds.LastConnect, ds.Queued = 12, 34, 1700000000123, 1700000000001, 9
	return ds
}

// The hand-written record reads back (with the json.Unmarshal that load
// uses) to the same state as json.Marshal's, for every field, value kind
// and escape; an empty state too.
func TestStateJSONSameAsMarshal(t *testing.T) {
	for _, ds := range []*devState{testDevState(t), newDevState()} {
		want, err := json.Marshal(ds)
		if err != nil {
			t.Fatal(err)
			return
		}
		got := ds.appendJSON(nil)
		if !json.Valid(got) {
			t.Fatalf("appendJSON wrote invalid JSON: %s", got)
			return
		}
		a, b := newDevState(), newDevState()
		if err := json.Unmarshal(want, a); err != nil {
			t.Fatal(err)
			return
		}
		if err := json.Unmarshal(got, b); err != nil {
			t.Fatal(err)
			return
		}
		// Compare through json.Marshal: sorted keys, tbapi.Value's
		// literals as written.
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Fatalf("read back differently:\n json.Marshal: %s\n appendJSON:   %s", ja, jb)
			return
		}
		if !reflect.DeepEqual(a.Latest, ds.Latest) && len(ds.Latest) > 0 {
			t.Fatalf("Latest after a round trip differs from the original")
			return
		}
	}
}

// BenchmarkStateEncode is one device's record at flush time: seven latest
// values, three attributes.
//
//	go test ./tbemu/core -run '^$' -bench StateEncode
func BenchmarkStateEncode(b *testing.B) {
	ds := testDevState(b)
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = ds.appendJSON(buf[:0])
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(ds); err != nil {
				b.Fatal(err)
				return
			}
		}
	})
}

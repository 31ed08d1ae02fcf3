package tbapi

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseRoundTrip(t *testing.T) {
	cases := []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-1.5e+3`, `"a\"b\\c\n\u0001"`,
		`{"a":1,"b":[true,null,"x"],"c":{"d":-0.25}}`,
		`{"deleted":["k1","k2"]}`,
	}
	for _, in := range cases {
		v, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%s): %v", in, err)
			return
		}
		out := string(AppendValue(nil, v))
		if !json.Valid([]byte(out)) {
			t.Fatalf("AppendValue(%s) = %s: not valid JSON", in, out)
			return
		}
		// Same meaning as encoding/json sees it.
		var a, b any
		_ = json.Unmarshal([]byte(in), &a)
		_ = json.Unmarshal([]byte(out), &b)
		if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
			t.Fatalf("round trip of %s: got %s; want %s", in, jb, ja)
			return
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
		return ""
	}
	return string(b)
}

func TestParseEscapes(t *testing.T) {
	v, err := Parse([]byte(`"\u00e9\ud83d\ude00\/\t"`))
	if err != nil {
		t.Fatal(err)
		return
	}
	if want := "é😀/\t"; v.Str != want {
		t.Fatalf("got %q; want %q", v.Str, want)
		return
	}
}

func TestParseErrors(t *testing.T) {
	cases := []string{``, `{`, `{"a"}`, `{"a":}`, `[1,]`, `{"a":1,}`, `tru`, `01x`, `-`, `1.`, `1e`, `"abc`, "\"a\x01\"", `"\x"`, `"\u12"`, `{} {}`, `{a:1}`, strings.Repeat("[", 40) + strings.Repeat("]", 40)}
	for _, in := range cases {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) error = %v; want ErrSyntax", in, err)
		}
	}
}

func TestValueAccessors(t *testing.T) {
	v, err := Parse([]byte(`{"n":42,"s":"17","f":"1.5","b":true,"x":1,"x":2}`))
	if err != nil {
		t.Fatal(err)
		return
	}
	if n, ok := must(v, "n").Int64(); !ok || n != 42 {
		t.Errorf("n = %d, %v", n, ok)
	}
	if n, ok := must(v, "s").Int64(); !ok || n != 17 {
		t.Errorf("numeric string = %d, %v; want 17 (ThingsBoard casts them)", n, ok)
	}
	if f, ok := must(v, "f").Float64(); !ok || f != 1.5 {
		t.Errorf("f = %v, %v", f, ok)
	}
	if s, ok := must(v, "b").Text(); !ok || s != "true" {
		t.Errorf("b = %q", s)
	}
	if n, _ := must(v, "x").Int64(); n != 2 {
		t.Errorf("repeated key = %d; want the last one, 2", n)
	}
}

func must(v Value, k string) Value {
	m, _ := v.Get(k)
	return m
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain", "q\"b\\", "ctl\x00\x1f\n\r\t", "ünï ☃", "</script>"} {
		got := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Errorf("AppendString(%q) = %s, decodes to %q (%v)", s, got, back, err)
		}
	}
}

func TestObj(t *testing.T) {
	got := string(NewObj(nil).Str("a", "x").Int("b", -3).Float("c", 15.25, 1).Bool("d", true).Raw("e", []byte(`[1]`)).Bytes())
	if want := `{"a":"x","b":-3,"c":15.2,"d":true,"e":[1]}`; got != want {
		t.Fatalf("got %s; want %s", got, want)
		return
	}
	if got := string(NewObj(nil).Bytes()); got != "{}" {
		t.Fatalf("empty object = %s", got)
		return
	}
}

// Deep nesting is refused by depth, not by running out of stack: under
// TinyGo's default goroutine stack a recursive reader overflowed here.
func TestParseDeepRefused(t *testing.T) {
	in := strings.Repeat("[", 100000)
	_, err := Parse([]byte(in))
	if err == nil || !strings.Contains(err.Error(), "nesting too deep at offset "+strconv.Itoa(maxDepth+1)) {
		t.Fatalf("Parse(100000 x '[') = %v; want nesting too deep at offset %d", err, maxDepth+1)
		return
	}
	// The bound itself: maxDepth containers around a scalar are read.
	for _, in := range []string{strings.Repeat("[", maxDepth) + "1" + strings.Repeat("]", maxDepth), strings.Repeat(`{"k":`, maxDepth) + "1" + strings.Repeat("}", maxDepth)} {
		if _, err := Parse([]byte(in)); err != nil {
			t.Errorf("Parse(%d deep) = %v", maxDepth, err)
		}
	}
}

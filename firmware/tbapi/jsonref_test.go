//go:build go1.23 && !tinygo

package tbapi

import (
	"strings"
	"testing"
)

// The recursive reader the iterative one replaced, kept as an oracle: both
// must give the same value or the same error (message and offset). Not under
// TinyGo: the oracle's recursion overflows its default test stack, which is
// what the iterative reader is for.

func refParse(data []byte) (Value, error) {
	p := parser{data: data, src: string(data)}
	p.space()
	v, err := p.refValue(0)
	if err != nil {
		return Value{}, err
	}
	p.space()
	if p.pos != len(p.data) {
		return Value{}, p.fail("trailing data")
	}
	return v, nil
}

func (p *parser) refValue(depth int) (Value, error) {
	if depth > maxDepth {
		return Value{}, p.fail("nesting too deep")
	}
	if p.pos >= len(p.data) {
		return Value{}, p.fail("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.refObject(depth)
	case c == '[':
		return p.refArray(depth)
	}
	return p.scalar()
}

func (p *parser) refObject(depth int) (Value, error) {
	p.pos++ // {
	v := Value{Kind: Object}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return Value{}, p.fail("expected object key")
		}
		key, err := p.str()
		if err != nil {
			return Value{}, err
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return Value{}, p.fail("expected ':'")
		}
		p.pos++
		p.space()
		val, err := p.refValue(depth + 1)
		if err != nil {
			return Value{}, err
		}
		if v.Members == nil {
			v.Members = make([]Member, 0, 8) // one allocation for the usual small object
		}
		v.Members = append(v.Members, Member{Key: key, Value: val})
		p.space()
		if p.pos >= len(p.data) {
			return Value{}, p.fail("unterminated object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return Value{}, p.fail("expected ',' or '}'")
		}
	}
}

func (p *parser) refArray(depth int) (Value, error) {
	p.pos++ // [
	v := Value{Kind: Array}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		p.space()
		el, err := p.refValue(depth + 1)
		if err != nil {
			return Value{}, err
		}
		v.Elems = append(v.Elems, el)
		p.space()
		if p.pos >= len(p.data) {
			return Value{}, p.fail("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return Value{}, p.fail("expected ',' or ']'")
		}
	}
}

func sameParse(t *testing.T, data []byte) {
	t.Helper()
	v, err := Parse(data)
	rv, rerr := refParse(data)
	if (err == nil) != (rerr == nil) || err != nil && err.Error() != rerr.Error() {
		t.Fatalf("Parse(%q): error %v; recursive reader: %v", data, err, rerr)
		return
	}
	if err == nil && string(AppendValue(nil, v)) != string(AppendValue(nil, rv)) {
		t.Fatalf("Parse(%q) = %s; recursive reader: %s", data, AppendValue(nil, v), AppendValue(nil, rv))
		return
	}
}

func TestParseSameAsRecursive(t *testing.T) {
	cases := []string{``, ` `, `{`, `{"a"}`, `{"a":}`, `[1,]`, `{"a":1,}`, `{"a":1 "b":2}`, `[1 2]`, `[1}`, `{"a":1]`,
		`tru`, `01x`, `-`, `1.`, `1e`, `"abc`, `"\x"`, `{} {}`, `{a:1}`, `[`, `[ `, `{"a":[`, `{"a":{"b":`,
		`{"a":[1,{"b":[true,false,null,"x\u00e9",-1.5e3]},[]],"c":{}}`, ` [ [ ] , { } ] `}
	for depth := maxDepth - 1; depth <= maxDepth+2; depth++ {
		// depth containers around a scalar, around nothing, and objects
		cases = append(cases, strings.Repeat("[", depth)+"1"+strings.Repeat("]", depth),
			strings.Repeat("[", depth)+strings.Repeat("]", depth),
			strings.Repeat(`{"k":`, depth)+"1"+strings.Repeat("}", depth))
	}
	for _, in := range cases {
		sameParse(t, []byte(in))
	}
}

func FuzzParseSameAsRecursive(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2,{"b":null}]}`, `[[[[`, `{"a":"\u00"}`, `[1,{"x":[]},"y"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameParse(t, data) })
}

// A fw attribute response, the largest tree the device parses often.
var benchDoc = []byte(`{"shared":{"fw_title":"CORE_ESP32","fw_version":"1.1.0","fw_size":1048576,"fw_checksum_algorithm":"SHA256","fw_checksum":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},"client":{"a":[1,2,3],"b":{"c":true}}}`)

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		if _, err := Parse(benchDoc); err != nil {
			b.Fatal(err)
			return
		}
	}
}

func BenchmarkParseRecursive(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		if _, err := refParse(benchDoc); err != nil {
			b.Fatal(err)
			return
		}
	}
}

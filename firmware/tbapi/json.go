//go:build go1.23

package tbapi

import (
	"errors"
	"strconv"
)

// Kind is the type of a JSON value.
type Kind uint8

// JSON value kinds.
const (
	Null Kind = iota
	Bool
	Number
	String
	Object
	Array
)

// String returns the kind's JSON name.
func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "bool"
	case Number:
		return "number"
	case String:
		return "string"
	case Object:
		return "object"
	case Array:
		return "array"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is a parsed JSON value. Objects keep their members in document order,
// so a value re-encoded with AppendValue keeps its key order.
type Value struct {
	Kind    Kind
	Bool    bool     // Bool (beside Kind: one word for both)
	Str     string   // String: the decoded text; Number: the literal as written
	Members []Member // Object
	Elems   []Value  // Array
}

// Member is one key of an object.
type Member struct {
	Key   string
	Value Value
}

// Get returns the value of key in an object (the last one if repeated, as
// Jackson does).
func (v Value) Get(key string) (Value, bool) {
	for i := len(v.Members) - 1; i >= 0; i-- {
		if v.Members[i].Key == key {
			return v.Members[i].Value, true
		}
	}
	return Value{}, false
}

// Int64 returns a number (or a numeric string, as ThingsBoard casts them) as an
// integer. Fractions are refused.
func (v Value) Int64() (int64, bool) {
	if v.Kind != Number && v.Kind != String {
		return 0, false
	}
	return parseInt(v.Str, 64)
}

// Float64 returns a number (or a numeric string) as a float.
func (v Value) Float64() (float64, bool) {
	if v.Kind != Number && v.Kind != String {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.Str, 64)
	return f, err == nil
}

// Text returns a scalar as text: a string's contents, a number's literal, true
// or false. Objects, arrays and null give false.
func (v Value) Text() (string, bool) {
	switch v.Kind {
	case String, Number:
		return v.Str, true
	case Bool:
		if v.Bool {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// maxDepth bounds nesting so hostile input cannot exhaust a device's stack.
const maxDepth = 32

// ErrSyntax is returned (wrapped with the offset) for malformed JSON.
var ErrSyntax = errors.New("json syntax error")

// Parse parses one JSON document. Trailing white space is allowed, anything
// else after the value is an error.
func Parse(data []byte) (Value, error) {
	// One copy of the input as a string: keys, strings and number literals
	// are slices of it, not an allocation each (a telemetry message had a
	// dozen). A value kept keeps the message's bytes alive, which for the
	// small payloads of the device API costs less than the allocations.
	p := parser{data: data, src: string(data)}
	p.space()
	v, err := p.value()
	if err != nil {
		return Value{}, err
	}
	p.space()
	if p.pos != len(p.data) {
		return Value{}, p.fail("trailing data")
	}
	return v, nil
}

type parser struct {
	data []byte
	src  string // data as a string, for substrings
	pos  int
}

func (p *parser) fail(what string) error {
	return &SyntaxError{Offset: p.pos, Msg: what}
}

// SyntaxError names what is wrong and where.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "json: " + e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

// Unwrap lets errors.Is(err, ErrSyntax) match.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

func (p *parser) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// frame is a container being read: the object or array so far and, for an
// object, the key whose value comes next.
type frame struct {
	v   Value
	key string
}

// value reads one value with an explicit stack of open containers instead of
// recursion, so the goroutine stack a parse needs does not grow with nesting
// (TinyGo's default goroutine stacks are a few KB). A value's depth is the
// number of containers around it; deeper than maxDepth is refused at its
// first byte.
func (p *parser) value() (Value, error) {
	var buf [4]frame // the device API nests two or three deep
	stack := buf[:0]
	for {
		// Read the start of a value: a scalar, or an opening bracket.
		var v Value
		if len(stack) > maxDepth {
			return Value{}, p.fail("nesting too deep")
		}
		if p.pos >= len(p.data) {
			return Value{}, p.fail("unexpected end of input")
		}
		switch c := p.data[p.pos]; c {
		case '{', '[':
			kind, end := Object, byte('}')
			if c == '[' {
				kind, end = Array, ']'
			}
			p.pos++
			p.space()
			if p.pos < len(p.data) && p.data[p.pos] == end {
				p.pos++
				v = Value{Kind: kind}
				break
			}
			f := frame{v: Value{Kind: kind}}
			if kind == Object {
				var err error
				if f.key, err = p.key(); err != nil {
					return Value{}, err
				}
			}
			stack = append(stack, f)
			continue
		default:
			var err error
			if v, err = p.scalar(); err != nil {
				return Value{}, err
			}
		}
		// v is complete: add it to the open container, closing those that end here.
		for {
			if len(stack) == 0 {
				return v, nil
			}
			top := &stack[len(stack)-1]
			obj := top.v.Kind == Object
			end, what := byte(']'), "array"
			if obj {
				end, what = '}', "object"
				if top.v.Members == nil {
					top.v.Members = make([]Member, 0, 8) // one allocation for the usual small object
				}
				top.v.Members = append(top.v.Members, Member{Key: top.key, Value: v})
			} else {
				top.v.Elems = append(top.v.Elems, v)
			}
			p.space()
			if p.pos >= len(p.data) {
				return Value{}, p.fail("unterminated " + what)
			}
			if c := p.data[p.pos]; c == end {
				p.pos++
				v = top.v
				stack = stack[:len(stack)-1]
				continue
			} else if c != ',' {
				return Value{}, p.fail("expected ',' or '" + string(end) + "'")
			}
			p.pos++
			p.space()
			if obj {
				key, err := p.key()
				if err != nil {
					return Value{}, err
				}
				top.key = key
			}
			break // the next member's value
		}
	}
}

// scalar reads a string, number or literal.
func (p *parser) scalar() (Value, error) {
	switch c := p.data[p.pos]; {
	case c == '"':
		s, err := p.str()
		return Value{Kind: String, Str: s}, err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case p.literal("true"):
		return Value{Kind: Bool, Bool: true}, nil
	case p.literal("false"):
		return Value{Kind: Bool}, nil
	case p.literal("null"):
		return Value{Kind: Null}, nil
	}
	return Value{}, p.fail("unexpected character " + strconv.QuoteRune(rune(p.data[p.pos])))
}

func (p *parser) literal(word string) bool {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return false
	}
	p.pos += len(word)
	return true
}

// key reads an object key and its colon, leaving the position at the value.
func (p *parser) key() (string, error) {
	p.space()
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		return "", p.fail("expected object key")
	}
	key, err := p.str()
	if err != nil {
		return "", err
	}
	p.space()
	if p.pos >= len(p.data) || p.data[p.pos] != ':' {
		return "", p.fail("expected ':'")
	}
	p.pos++
	p.space()
	return key, nil
}

func (p *parser) number() (Value, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	if p.pos < len(p.data) && p.data[p.pos] == '0' {
		p.pos++ // JSON allows no leading zeros: "0" stands alone
	} else if !p.digits() {
		return Value{}, p.fail("malformed number")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if !p.digits() {
			return Value{}, p.fail("malformed number")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if !p.digits() {
			return Value{}, p.fail("malformed number")
		}
	}
	return Value{Kind: Number, Str: p.src[start:p.pos]}, nil
}

func (p *parser) digits() bool {
	start := p.pos
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
	}
	return p.pos > start
}

// str reads a quoted string starting at the opening quote.
func (p *parser) str() (string, error) {
	p.pos++ // "
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.src[start:p.pos]
			p.pos++
			return s, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.fail("control character in string")
		}
		p.pos++
	}
	buf := append([]byte(nil), p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", p.fail("control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(p.data) {
			break
		}
		e := p.data[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.fail("malformed \\u escape")
			}
			if r >= 0xD800 && r < 0xDC00 && p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
				save := p.pos
				p.pos += 2
				if lo, ok := p.hex4(); ok && lo >= 0xDC00 && lo < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				} else {
					p.pos = save
				}
			}
			// string(rune) turns lone surrogates into U+FFFD, as encoding/json does.
			buf = append(buf, string(rune(r))...)
		default:
			return "", p.fail("malformed escape")
		}
	}
	return "", p.fail("unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

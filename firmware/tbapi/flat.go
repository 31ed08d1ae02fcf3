//go:build go1.23

package tbapi

// FlatMember is one key of a flat object, the key still in the input's
// bytes (so a receiver that already knows the key allocates nothing).
type FlatMember struct {
	Key   []byte
	Value Value
}

// DecodeFlat reads a JSON object whose values are all scalars (the shape of
// nearly every telemetry message) into into, without building a tree: one
// allocation at most, for the values' text. ok is false for anything else,
// a syntax error included; the caller then takes the general decoder, which
// also says what is wrong.
func DecodeFlat(data []byte, into []FlatMember) (ms []FlatMember, ok bool) {
	p := parser{data: data}
	p.space()
	if p.pos >= len(data) || data[p.pos] != '{' {
		return into, false
	}
	p.pos++
	p.space()
	if p.pos < len(data) && data[p.pos] == '}' {
		p.pos++
		p.space()
		return into, p.pos == len(data)
	}
	for {
		p.space()
		if p.pos >= len(data) || data[p.pos] != '"' {
			return into, false
		}
		start := p.pos + 1
		end := start
		for end < len(data) && data[end] != '"' && data[end] != '\\' && data[end] >= 0x20 {
			end++
		}
		if end >= len(data) || data[end] != '"' {
			return into, false // an escaped key or a malformed one: the general path
		}
		key := data[start:end]
		p.pos = end + 1
		p.space()
		if p.pos >= len(data) || data[p.pos] != ':' {
			return into, false
		}
		p.pos++
		p.space()
		if p.pos >= len(data) {
			return into, false
		}
		if c := data[p.pos]; c == '{' || c == '[' {
			return into, false
		}
		if p.src == "" {
			p.src = string(data) // the one allocation: values are slices of it
		}
		v, err := p.scalar()
		if err != nil {
			return into, false
		}
		into = append(into, FlatMember{Key: key, Value: v})
		p.space()
		if p.pos >= len(data) {
			return into, false
		}
		switch data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			p.space()
			return into, p.pos == len(data)
		default:
			return into, false
		}
	}
}

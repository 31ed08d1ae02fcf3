//go:build go1.23

package tbapi

import "strconv"

// AppendString appends s as a JSON string, escaping what JSON requires. Like
// Jackson, it leaves non-ASCII text as UTF-8 and does not escape '/'.
func AppendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendValue appends v as compact JSON. Numbers are written as they were read.
func AppendValue(b []byte, v Value) []byte {
	switch v.Kind {
	case Bool:
		return strconv.AppendBool(b, v.Bool)
	case Number:
		return append(b, v.Str...)
	case String:
		return AppendString(b, v.Str)
	case Object:
		b = append(b, '{')
		for i, m := range v.Members {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, m.Key)
			b = append(b, ':')
			b = AppendValue(b, m.Value)
		}
		return append(b, '}')
	case Array:
		b = append(b, '[')
		for i, e := range v.Elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendValue(b, e)
		}
		return append(b, ']')
	}
	return append(b, "null"...)
}

// Obj builds a flat JSON object without reflection: the firmware's telemetry
// and reports are written with it. The zero value is an empty object.
type Obj struct {
	b []byte
}

// NewObj starts an object in buf's storage (buf may be nil), so a caller can
// reuse one buffer per message.
func NewObj(buf []byte) *Obj { return &Obj{b: buf[:0]} }

func (o *Obj) key(k string) {
	if len(o.b) == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.b = AppendString(o.b, k)
	o.b = append(o.b, ':')
}

// Str adds a string member.
func (o *Obj) Str(k, v string) *Obj {
	o.key(k)
	o.b = AppendString(o.b, v)
	return o
}

// Int adds an integer member.
func (o *Obj) Int(k string, v int64) *Obj {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
	return o
}

// Float adds a number member with prec digits after the point (-1: shortest).
func (o *Obj) Float(k string, v float64, prec int) *Obj {
	o.key(k)
	o.b = strconv.AppendFloat(o.b, v, 'f', prec, 64)
	return o
}

// Bool adds a boolean member.
func (o *Obj) Bool(k string, v bool) *Obj {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
	return o
}

// Value adds a member holding any JSON value.
func (o *Obj) Value(k string, v Value) *Obj {
	o.key(k)
	o.b = AppendValue(o.b, v)
	return o
}

// Raw adds a member whose value is already encoded JSON.
func (o *Obj) Raw(k string, raw []byte) *Obj {
	o.key(k)
	o.b = append(o.b, raw...)
	return o
}

// Bytes closes the object and returns its encoding.
func (o *Obj) Bytes() []byte {
	if len(o.b) == 0 {
		return append(o.b, '{', '}')
	}
	return append(o.b, '}')
}

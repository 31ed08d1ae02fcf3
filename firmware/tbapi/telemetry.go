//go:build go1.23

package tbapi

import "strconv"

// TsValues is one telemetry entry: values with a device timestamp in
// milliseconds, or Ts 0 when the server should stamp them.
type TsValues struct {
	Ts     int64
	Values []Member
}

// Encode writes {"ts":..,"values":{..}}, or the flat object when Ts is 0.
func (t TsValues) Encode() []byte {
	obj := Value{Kind: Object, Members: t.Values}
	if t.Ts == 0 {
		return AppendValue(nil, obj)
	}
	return NewObj(nil).Int("ts", t.Ts).Value("values", obj).Bytes()
}

// DecodeTelemetry reads every shape ThingsBoard accepts on the telemetry topic
// (JsonConverter.convertToTelemetry): an object {k:v}, an object
// {"ts":..,"values":{..}} (only when both keys are there; otherwise "ts" is an
// ordinary key), or an array of either. Null values are dropped, as ThingsBoard
// skips them.
func DecodeTelemetry(data []byte) ([]TsValues, error) {
	v, err := Parse(data)
	if err != nil {
		return nil, err
	}
	switch v.Kind {
	case Object:
		e, err := telemetryEntry(v)
		if err != nil {
			return nil, err
		}
		return []TsValues{e}, nil
	case Array:
		out := make([]TsValues, 0, len(v.Elems))
		for i, el := range v.Elems {
			if el.Kind != Object {
				return nil, fieldErr(ErrBadField, "["+strconv.Itoa(i)+"]", "want an object, got "+el.Kind.String())
			}
			e, err := telemetryEntry(el)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	return nil, ErrNotObject
}

func telemetryEntry(obj Value) (TsValues, error) {
	ts, hasTs := obj.Get("ts")
	vals, hasVals := obj.Get("values")
	if hasTs && hasVals {
		n, ok := ts.Int64()
		if !ok {
			return TsValues{}, fieldErr(ErrBadField, "ts", "want an integer in milliseconds")
		}
		if vals.Kind != Object {
			return TsValues{}, fieldErr(ErrBadField, "values", "want an object, got "+vals.Kind.String())
		}
		return TsValues{Ts: n, Values: dropNulls(vals.Members)}, nil
	}
	return TsValues{Values: dropNulls(obj.Members)}, nil
}

func dropNulls(ms []Member) []Member {
	i := 0
	for i < len(ms) && ms[i].Value.Kind != Null {
		i++
	}
	if i == len(ms) {
		return ms // the usual case: nothing to drop, nothing to copy
	}
	out := make([]Member, i, len(ms)-1)
	copy(out, ms[:i])
	for _, m := range ms[i+1:] {
		if m.Value.Kind != Null {
			out = append(out, m)
		}
	}
	return out
}

// CastNumeric returns v with a numeric string turned into a number, as
// ThingsBoard does by default (JSON_TYPE_CAST_ENABLED): "1.2" becomes 1.2.
// An integer that does not fit a long is kept as a string, number or not
// (JsonConverter: longValueExact fails; seen on 4.3:
// 123456789012345678901234567890 is stored as that string).
func CastNumeric(v Value) Value {
	if v.Kind == Number {
		if isIntegerLiteral(v.Str) {
			if _, ok := parseInt(v.Str, 64); !ok {
				return Value{Kind: String, Str: v.Str}
			}
		}
		return v
	}
	if v.Kind != String || !isNumberLiteral(v.Str) {
		return v // most strings: no ParseFloat, whose error allocates
	}
	if _, err := strconv.ParseFloat(v.Str, 64); err != nil {
		return v // out of range
	}
	if isIntegerLiteral(v.Str) {
		if _, ok := parseInt(v.Str, 64); !ok {
			return v // an integer beyond a long stays a string
		}
	}
	return Value{Kind: Number, Str: v.Str}
}

// isIntegerLiteral reports whether a number literal has no fraction or exponent.
func isIntegerLiteral(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return true
}

// isNumberLiteral reports whether s is exactly a JSON number: plain decimal
// (ParseFloat alone would also take "Inf", "0x1p3" and "1_0").
func isNumberLiteral(s string) bool {
	i := 0
	digits := func() bool {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i < len(s) && s[i] == '0' {
		i++ // no leading zeros
	} else if !digits() {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}

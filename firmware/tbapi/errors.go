//go:build go1.23

package tbapi

import "errors"

// Sentinel errors of the payload decoders. Decoders wrap them with the field
// at fault, so errors.Is works and the message names what is wrong.
var (
	ErrNotObject    = errors.New("payload is not a JSON object")
	ErrMissingField = errors.New("missing field")
	ErrBadField     = errors.New("bad field")
)

func fieldErr(base error, field, why string) error {
	if why == "" {
		return &FieldError{Err: base, Field: field}
	}
	return &FieldError{Err: base, Field: field, Why: why}
}

// FieldError names the field a decoder rejected.
type FieldError struct {
	Err   error
	Field string
	Why   string
}

func (e *FieldError) Error() string {
	s := e.Err.Error() + " " + e.Field
	if e.Why != "" {
		s += ": " + e.Why
	}
	return s
}

// Unwrap returns the sentinel.
func (e *FieldError) Unwrap() error { return e.Err }

// parseObject parses data and requires a JSON object.
func parseObject(data []byte) (Value, error) {
	v, err := Parse(data)
	if err != nil {
		return Value{}, err
	}
	if v.Kind != Object {
		return Value{}, ErrNotObject
	}
	return v, nil
}

// text reads an optional scalar field as text, the way Gson's getAsString does:
// strings, numbers and booleans are accepted; null, objects and arrays are not.
func text(obj Value, field string) (s string, present bool, err error) {
	v, ok := obj.Get(field)
	if !ok {
		return "", false, nil
	}
	if v.Kind == Array && len(v.Elems) == 1 { // Gson: a one-element array reads as its element
		v = v.Elems[0]
	}
	s, ok = v.Text()
	if !ok {
		return "", true, fieldErr(ErrBadField, field, "want a string, got "+v.Kind.String())
	}
	return s, true, nil
}

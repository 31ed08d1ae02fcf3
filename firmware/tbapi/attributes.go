//go:build go1.23

package tbapi

import "strings"

// AttrRequest is the body of v1/devices/me/attributes/request/{id}. A nil key
// list means the field is absent; when both are absent ThingsBoard answers
// with every client and shared attribute.
type AttrRequest struct {
	ClientKeys []string
	SharedKeys []string
}

// Encode writes each key list as one comma-separated string, the only form
// ThingsBoard reads (JsonMqttAdaptor.toStringSet).
func (r AttrRequest) Encode() []byte {
	o := NewObj(nil)
	if r.ClientKeys != nil {
		o.Str("clientKeys", strings.Join(r.ClientKeys, ","))
	}
	if r.SharedKeys != nil {
		o.Str("sharedKeys", strings.Join(r.SharedKeys, ","))
	}
	return o.Bytes()
}

// DecodeAttrRequest reads an attribute request as ThingsBoard does: each
// present field is split on ',' like Java's String.split (trailing empty
// strings dropped, nothing trimmed) and de-duplicated.
func DecodeAttrRequest(data []byte) (AttrRequest, error) {
	obj, err := parseObject(data)
	if err != nil {
		return AttrRequest{}, err
	}
	var r AttrRequest
	for _, f := range [...]struct {
		name string
		dst  *[]string
	}{{"clientKeys", &r.ClientKeys}, {"sharedKeys", &r.SharedKeys}} {
		s, present, err := text(obj, f.name)
		if err != nil {
			return AttrRequest{}, err
		}
		if present {
			*f.dst = javaSplitSet(s)
		}
	}
	return r, nil
}

// javaSplitSet mimics new HashSet<>(Arrays.asList(s.split(","))): trailing
// empty strings are removed, except that an input with no comma is kept whole.
func javaSplitSet(s string) []string {
	parts := strings.Split(s, ",")
	if len(parts) > 1 {
		for len(parts) > 0 && parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		dup := false
		for _, q := range out {
			if q == p {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out
}

// AttrResponse is the answer to an attribute request.
type AttrResponse struct {
	Client []Member
	Shared []Member
}

// Encode writes {"client":{...},"shared":{...}}, leaving out an empty section
// as ThingsBoard does (so the answer can be {}).
func (r AttrResponse) Encode() []byte {
	o := NewObj(nil)
	if len(r.Client) > 0 {
		o.Value("client", Value{Kind: Object, Members: r.Client})
	}
	if len(r.Shared) > 0 {
		o.Value("shared", Value{Kind: Object, Members: r.Shared})
	}
	return o.Bytes()
}

// DecodeAttrResponse reads an attribute response.
func DecodeAttrResponse(data []byte) (AttrResponse, error) {
	obj, err := parseObject(data)
	if err != nil {
		return AttrResponse{}, err
	}
	var r AttrResponse
	for _, f := range [...]struct {
		name string
		dst  *[]Member
	}{{"client", &r.Client}, {"shared", &r.Shared}} {
		v, ok := obj.Get(f.name)
		if !ok {
			continue
		}
		if v.Kind != Object {
			return AttrResponse{}, fieldErr(ErrBadField, f.name, "want an object, got "+v.Kind.String())
		}
		*f.dst = v.Members
	}
	return r, nil
}

// AttrUpdate is a shared-attribute push on v1/devices/me/attributes: either
// changed values or, in a message of its own, deleted keys.
type AttrUpdate struct {
	Values  []Member
	Deleted []string
}

// Encode writes the push as ThingsBoard does: the changed keys as a flat
// object, or {"deleted":[...]} when Values is empty.
func (u AttrUpdate) Encode() []byte {
	if len(u.Values) == 0 && len(u.Deleted) > 0 {
		elems := make([]Value, len(u.Deleted))
		for i, k := range u.Deleted {
			elems[i] = Value{Kind: String, Str: k}
		}
		return NewObj(nil).Value("deleted", Value{Kind: Array, Elems: elems}).Bytes()
	}
	return AppendValue(nil, Value{Kind: Object, Members: u.Values})
}

// DecodeAttrUpdate reads a shared-attribute push. An object whose only member
// is "deleted" holding an array of strings is a deletion; anything else is a
// set of values.
func DecodeAttrUpdate(data []byte) (AttrUpdate, error) {
	obj, err := parseObject(data)
	if err != nil {
		return AttrUpdate{}, err
	}
	if len(obj.Members) == 1 && obj.Members[0].Key == "deleted" && obj.Members[0].Value.Kind == Array {
		var u AttrUpdate
		for _, e := range obj.Members[0].Value.Elems {
			if e.Kind != String {
				return AttrUpdate{Values: obj.Members}, nil
			}
			u.Deleted = append(u.Deleted, e.Str)
		}
		return u, nil
	}
	return AttrUpdate{Values: obj.Members}, nil
}

// DecodeClientAttributes reads what a device publishes to
// v1/devices/me/attributes: a JSON object (arrays are rejected, as in
// JsonConverter.convertToAttributesProto).
func DecodeClientAttributes(data []byte) ([]Member, error) {
	obj, err := parseObject(data)
	if err != nil {
		return nil, err
	}
	return obj.Members, nil
}

//go:build go1.23

package tbapi

// RPCRequest is {"method":..,"params":..}, both server-side (arriving on
// v1/devices/me/rpc/request/{id}) and client-side (published by the device).
type RPCRequest struct {
	Method string
	Params Value // Null when absent
}

// Encode writes the request; params are always written, as ThingsBoard does.
func (r RPCRequest) Encode() []byte {
	return NewObj(nil).Str("method", r.Method).Value("params", r.Params).Bytes()
}

// DecodeRPCRequest reads an RPC request. The method is required.
func DecodeRPCRequest(data []byte) (RPCRequest, error) {
	obj, err := parseObject(data)
	if err != nil {
		return RPCRequest{}, err
	}
	m, ok := obj.Get("method")
	if !ok {
		return RPCRequest{}, fieldErr(ErrMissingField, "method", "")
	}
	method, ok := m.Text()
	if !ok {
		return RPCRequest{}, fieldErr(ErrBadField, "method", "want a string, got "+m.Kind.String())
	}
	p, _ := obj.Get("params")
	return RPCRequest{Method: method, Params: p}, nil
}

// RPCError is the body a device answers an RPC it cannot serve with.
func RPCError(msg string) []byte {
	return NewObj(nil).Str("error", msg).Bytes()
}

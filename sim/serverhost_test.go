package sim

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The host devices print in "[PROVISION] Connecting to:", as the seed prints
// its TB_SERVER.
func TestServerHost(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "embedded",
		"mqtt://tb.example.com:1883":  "tb.example.com",
		"mqtts://10.0.0.7:8883":       "10.0.0.7",
		"mqtt://[2001:db8::1]:1883":   "2001:db8::1",
		"tb.example.com:1883 garbage": "tb.example.com:1883 garbage",
	} {
		require.Equal(t, want, ServerHost(in), in)
	}
}

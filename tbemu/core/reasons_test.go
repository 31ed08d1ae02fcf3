package core_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
)

// The CONNACK code of a refusal follows what the CONNECT carried
// (MqttTransportHandler.onValidateDeviceResponse), mapped for MQTT 3.1.1 by
// ReturnCodeResolver.getConnectionReturnCode.
func TestRefusedConnack(t *testing.T) {
	for _, tc := range []struct {
		clientID      string
		user, pass    bool
		want5, want31 byte
	}{
		{"c", true, false, 0x86, 5},  // a bad token
		{"c", true, true, 0x86, 5},   // MQTT_BASIC with a wrong password
		{"", true, true, 0x86, 5},    // the client id is never null in Netty's CONNECT
		{"c", false, true, 0x86, 5},  // a password alone (MQTT 5 allows it)
		{"c", false, false, 0x85, 2}, // a client id alone: MQTT_BASIC by client id
		{"", false, false, 0x87, 5},
		{" \t", false, false, 0x87, 5}, // blank
	} {
		got := core.RefusedConnack(tc.clientID, tc.user, tc.pass)
		require.Equal(t, tc.want5, got, "%+v", tc)
		require.Equal(t, tc.want31, core.V311Connack(got), "%+v", tc)
	}
	require.Equal(t, core.ConnRefusedUnavailable, core.V311Connack(core.CodeServerUnavailable))
}

// The direct adapter gets the 3.1.1 code: 2 for a client id alone (an
// MQTT_BASIC device that is not there), 5 for a bad token.
func TestConnectRefusalCodes(t *testing.T) {
	r := newRig(t, core.Options{})
	_, code := r.dial("no-such-basic-client", "", "")
	require.Equal(t, core.ConnRefusedIdentifier, code)
	_, code = r.dial("c", "WRONG-TOKEN", "")
	require.Equal(t, core.ConnRefusedNotAuthorized, code)
	_, code = r.dial("", "", "")
	require.Equal(t, core.ConnRefusedNotAuthorized, code)
}

// ThingsBoard reads a chunk request's size with Integer.parseInt: a sign is
// allowed, and a size of 0 or less means the size given before for that
// request id, or 0 (the whole file) (getOtaPackageCallback). Anything
// parseInt refuses closes the session. (Before: "-1" closed the session and
// "0" sent the whole file even after a size was given.)
func TestChunkSizeAsParseInt(t *testing.T) {
	r := newRig(t, core.Options{})
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 3)
	}
	d, _ := r.device("cz", core.DeviceSpec{})
	pkg, err := r.core.AddFirmware(core.PackageSpec{Title: "T", Version: "cz"}, data, tbapi.SHA256)
	require.NoError(t, err)
	require.NoError(t, r.core.AssignDeviceFirmware(d.ID, pkg.ID))
	c := r.connect("cz", d.Credentials.Token, "")
	chunk := func(req, n int, size string, want []byte, why string) {
		t.Helper()
		require.True(t, c.pub(tbapi.FwRequestTopic(req, n), size), why)
		got := c.take(tbapi.FwResponseTopic(req, n)).payload
		require.True(t, got == string(want), "%s: got %d bytes; want %d", why, len(got), len(want))
	}
	chunk(1, 0, "-1", data, "a negative size, nothing before: the whole file")
	chunk(2, 1, "+1024", data[1024:2048], "a plus sign")
	chunk(2, 2, "0", data[2048:3072], "0 after a size: that size")
	chunk(2, 3, "-7", data[3072:4096], "negative after a size: that size")
	chunk(3, 0, "0001024", data[:1024], "leading zeros")
	for _, bad := range []string{"abc", " 1024", "1024 ", "1e3", "4.0", "2147483648", "-2147483649", "+", "-"} {
		c = r.connect("cz", d.Credentials.Token, "")
		require.False(t, c.pub(tbapi.FwRequestTopic(9, 0), bad), "%q: closed", bad)
		require.NotEmpty(t, c.closed, "%q", bad)
		c.none()
	}
}

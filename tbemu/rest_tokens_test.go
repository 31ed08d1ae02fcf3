package tbemu

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/tbemu/emutest"
)

// Token answers as ThingsBoard's JWT filter and RefreshTokenProcessingFilter
// write them: no token is errorCode 10 "Authentication failed"; an expired
// (or unknown) access or refresh token is errorCode 11 "Token has expired"
// (JwtExpiredTokenException), the code clients renew on. (Before: 10 for
// all, which tells a client its credentials are wrong.)
func TestRESTExpiredTokens(t *testing.T) {
	clock := emutest.NewClock(time.Now())
	s := startServer(t, Options{HTTPAddr: "127.0.0.1:0", Clock: clock})
	rc := &restClient{t: t, base: "http://" + s.HTTPAddr()}
	status, body := rc.call("POST", "/api/auth/login", `{"username":"tenant@thingsboard.org","password":"tenant"}`)
	require.Equal(t, 200, status)
	access, refresh := body["token"].(string), body["refreshToken"].(string)

	status, body = rc.call("GET", "/api/deviceProfiles?pageSize=10&page=0", "")
	require.Equal(t, 401, status)
	require.Equal(t, map[string]any{"status": float64(401), "message": "Authentication failed", "errorCode": float64(10)}, without(body, "timestamp"))

	rc.token = "not-a-token-of-this-server"
	status, body = rc.call("GET", "/api/deviceProfiles?pageSize=10&page=0", "")
	require.Equal(t, 401, status)
	require.Equal(t, map[string]any{"status": float64(401), "message": "Token has expired", "errorCode": float64(11)}, without(body, "timestamp"))

	rc.token = access
	clock.Advance(9000*time.Second + time.Millisecond)
	status, body = rc.call("GET", "/api/deviceProfiles?pageSize=10&page=0", "")
	require.Equal(t, 401, status)
	require.Equal(t, float64(11), body["errorCode"])

	rc.token = ""
	status, _ = rc.call("POST", "/api/auth/token", `{"refreshToken":"`+refresh+`"}`)
	require.Equal(t, 200, status, "the refresh token lives a week")
	clock.Advance(7 * 24 * time.Hour)
	status, body = rc.call("POST", "/api/auth/token", `{"refreshToken":"`+refresh+`"}`)
	require.Equal(t, 401, status)
	require.Equal(t, map[string]any{"status": float64(401), "message": "Token has expired", "errorCode": float64(11)}, without(body, "timestamp"))
}

// A key asked for that has no value comes back with a null value at the
// current time (TimeseriesLatestDao.findLatest, TelemetryController's
// TsData). (Before: it was left out.)
func TestRESTLatestMissingKeyIsNull(t *testing.T) {
	clock := emutest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s := startServer(t, Options{HTTPAddr: "127.0.0.1:0", Clock: clock})
	d, err := s.CreateDevice(DeviceSpec{Name: "nulls"})
	require.NoError(t, err)
	rc := &restClient{t: t, base: "http://" + s.HTTPAddr()}
	status, body := rc.call("POST", "/api/auth/login", `{"username":"tenant@thingsboard.org","password":"tenant"}`)
	require.Equal(t, 200, status)
	rc.token = body["token"].(string)
	var got map[string][]map[string]any
	require.Equal(t, 200, rc.do("GET", "/api/plugins/telemetry/DEVICE/"+d.ID+"/values/timeseries?keys=fw_state", nil, "", &got))
	require.Equal(t, map[string][]map[string]any{"fw_state": {{"ts": float64(clock.Now().UnixMilli()), "value": nil}}}, got)
}

func without(m map[string]any, key string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

package tbemu

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/tbemu/emutest"
)

// call makes one request and returns the status and the body as JSON.
func (c *restClient) call(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("X-Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err, "%s %s", method, path)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// Every parameter is checked: a bad one gets 400 (413 for a body too
// large) with ThingsBoard's error body {status, message, errorCode,
// timestamp}; nothing panics. (Before: pageSize=-1&page=-5 panicked in the
// handler and the connection dropped; bad ids were 404s, bodies were cut.)
func TestRESTParametersChecked(t *testing.T) {
	s := startServer(t, Options{HTTPAddr: "127.0.0.1:0"})
	rc := login(t, s)
	d, err := s.CreateDevice(DeviceSpec{Name: "p"})
	require.NoError(t, err)
	dev := "/api/plugins/telemetry/DEVICE/" + d.ID
	cases := []struct {
		method, path, body string
		status             int
		message            string // a regexp
	}{
		{"GET", "/api/tenant/devices?pageSize=-1&page=-5", "", 400, `^Incorrect page link page size '-1'\. Page size must be greater than zero\.$`},
		{"GET", "/api/tenant/devices?pageSize=10&page=-5", "", 400, `^Incorrect page link page '-5'\. Page must be positive integer\.$`},
		{"GET", "/api/tenant/devices?pageSize=x&page=0", "", 400, `^Failed to convert value of type 'java\.lang\.String' to required type 'int'; For input string: "x"$`},
		{"GET", "/api/tenant/devices?pageSize=99999999999&page=0", "", 400, `required type 'int'`},
		{"GET", "/api/tenant/devices?page=0", "", 400, `^Required request parameter 'pageSize' for method parameter type int is not present$`},
		{"GET", "/api/otaPackages?pageSize=0&page=0", "", 400, `Page size must be greater than zero`},
		{"GET", "/api/deviceProfiles?pageSize=10", "", 400, `'page'`},
		{"GET", "/api/device/nope", "", 400, `^Invalid UUID string: nope$`},
		{"GET", "/api/device/" + strings.Repeat("0", 36), "", 400, `Invalid UUID string`},
		{"DELETE", "/api/otaPackage/x", "", 400, `Invalid UUID string: x`},
		{"GET", "/api/otaPackage/info/x", "", 400, `Invalid UUID string: x`},
		{"GET", "/api/deviceProfile/x", "", 400, `Invalid UUID string: x`},
		{"GET", dev + "/values/attributes/NO_SCOPE", "", 400, `AttributeScope`},
		{"POST", dev + "/attributes/NO_SCOPE", `{"a":1}`, 400, `AttributeScope`},
		{"POST", dev + "/attributes/CLIENT_SCOPE", `{"a":1}`, 400, `CLIENT_SCOPE`},
		{"GET", dev + "/values/timeseries?useStrictDataTypes=maybe", "", 400, `'boolean'`},
		{"POST", "/api/plugins/rpc/twoway/" + d.ID, `{"method":"m","params":{},"timeout":-1}`, 400, `Invalid RPC timeout`},
		{"POST", "/api/plugins/rpc/twoway/" + d.ID, `{"method":"m","params":{},"timeout":86400000}`, 400, `Invalid RPC timeout`},
		{"POST", "/api/plugins/rpc/twoway/x", `{"method":"m"}`, 400, `Invalid UUID string: x`},
		{"POST", "/api/device", `{"name":`, 400, `^Invalid request body`},
		{"POST", "/api/device", `{"name":"n","deviceProfileId":{"entityType":"DEVICE_PROFILE","id":"bad"}}`, 400, `Invalid UUID string: bad`},
		{"POST", "/api/device", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, `^Payload size exceeds the limit of 1048576 bytes$`},
		{"POST", "/api/otaPackage", `{"title":"t","version":"v","type":"SOFTWARE"}`, 400, `only FIRMWARE`},
		{"POST", "/api/otaPackage/" + d.ID, "x", 400, `checksumAlgorithm`},
		{"POST", "/api/otaPackage/" + d.ID + "?checksumAlgorithm=SHA256", "x", 400, `multipart`},
	}
	for _, tc := range cases {
		status, body := rc.call(tc.method, tc.path, tc.body)
		require.Equal(t, tc.status, status, "%s %s: %v", tc.method, tc.path, body)
		require.Equal(t, float64(tc.status), body["status"], "%s %s", tc.method, tc.path)
		require.Regexp(t, tc.message, body["message"], "%s %s", tc.method, tc.path)
		require.Contains(t, []any{float64(31), float64(2)}, body["errorCode"])
		require.IsType(t, float64(0), body["timestamp"])
	}
	// Pages past the end, whatever the numbers, are empty.
	status, body := rc.call("GET", "/api/tenant/devices?pageSize=2147483647&page=2147483647", "")
	require.Equal(t, 200, status)
	require.Empty(t, body["data"])
	require.Equal(t, false, body["hasNext"])
}

// A refresh token only refreshes, an access token only authenticates.
// (Before: a refresh token worked as an access token.)
func TestRefreshTokenOnlyRefreshes(t *testing.T) {
	s := startServer(t, Options{HTTPAddr: "127.0.0.1:0"})
	rc := &restClient{t: t, base: "http://" + s.HTTPAddr()}
	status, body := rc.call("POST", "/api/auth/login", `{"username":"tenant@thingsboard.org","password":"tenant"}`)
	require.Equal(t, 200, status)
	access, refresh := body["token"].(string), body["refreshToken"].(string)

	rc.token = refresh
	status, body = rc.call("GET", "/api/deviceProfiles?pageSize=10&page=0", "")
	require.Equal(t, 401, status, "a refresh token is no access token")
	require.Equal(t, float64(10), body["errorCode"])
	rc.token = ""
	status, _ = rc.call("POST", "/api/auth/token", `{"refreshToken":"`+access+`"}`)
	require.Equal(t, 401, status, "an access token does not refresh")
	status, body = rc.call("POST", "/api/auth/token", `{"refreshToken":"`+refresh+`"}`)
	require.Equal(t, 200, status)
	rc.token = body["token"].(string)
	status, _ = rc.call("GET", "/api/deviceProfiles?pageSize=10&page=0", "")
	require.Equal(t, 200, status)
}

// Failed logins are limited per address: ten, then 429 for every login
// from that address, the right one included, until the window refills;
// another address is not affected. (Before: 300 wrong logins in 0.3 s were
// allowed, then the right one worked.)
func TestLoginFailuresLimited(t *testing.T) {
	clock := emutest.NewClock(time.Now())
	s := startServer(t, Options{HTTPAddr: "127.0.0.1:0", Clock: clock})
	rc := &restClient{t: t, base: "http://" + s.HTTPAddr()}
	wrong, right := `{"username":"tenant@thingsboard.org","password":"guess"}`, `{"username":"tenant@thingsboard.org","password":"tenant"}`
	codes := map[int]int{}
	for range 300 {
		status, _ := rc.call("POST", "/api/auth/login", wrong)
		codes[status]++
	}
	require.Equal(t, map[int]int{401: 10, 429: 290}, codes)
	status, body := rc.call("POST", "/api/auth/login", right)
	require.Equal(t, 429, status, "the right password is no way around the limit")
	require.Equal(t, float64(33), body["errorCode"])
	require.Regexp(t, `^Too many failed logins from this address: try again in 6 s$`, body["message"])

	// From 127.0.0.2 (loopback too): its own budget.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	resp, err := other.Post(rc.base+"/api/auth/login", "application/json", strings.NewReader(right))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	clock.Advance(6 * time.Second) // one attempt refilled
	status, _ = rc.call("POST", "/api/auth/login", right)
	require.Equal(t, 200, status)
}

// The REST listener closes a client that sends its headers too slowly, its
// body too slowly, or keeps a connection idle; it serves HTTPS when given a
// certificate. (Before: only the header timeout, of 10 s; no TLS.)
func TestRESTTimeoutsAndTLS(t *testing.T) {
	s := startServer(t, Options{HTTPAddr: "127.0.0.1:0", HTTPReadHeaderTimeout: 200 * time.Millisecond,
		HTTPReadTimeout: 400 * time.Millisecond, HTTPIdleTimeout: 300 * time.Millisecond})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", s.HTTPAddr())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	start := time.Now()
	c := dial()
	c.Write([]byte("GET /api/tbsim/stats HTTP/1.1\r\nHost: x\r\n")) // never ends its headers
	waitClosed(t, c, 5*time.Second)
	c = dial()
	c.Write([]byte("POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")) // never ends its body
	waitClosed(t, c, 5*time.Second)
	c = dial()
	c.Write([]byte("POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"))
	got := waitClosed(t, c, 5*time.Second) // answered, then idle
	require.True(t, bytes.HasPrefix(got, []byte("HTTP/1.1 401")), "%s", got)
	require.Less(t, time.Since(start), 4*time.Second)

	// HTTPS with a certificate of the test's own.
	cert, pool := selfSigned(t)
	s2 := startServer(t, Options{HTTPAddr: "127.0.0.1:0", HTTPTLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Post("https://"+s2.HTTPAddr()+"/api/auth/login", "application/json",
		strings.NewReader(`{"username":"tenant@thingsboard.org","password":"tenant"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	resp, err = http.Post("http://"+s2.HTTPAddr()+"/api/auth/login", "application/json", strings.NewReader(`{}`))
	if err == nil {
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP to an HTTPS port is refused")
	}
}

// selfSigned returns a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tbsim test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

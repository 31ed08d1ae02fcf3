package tbrest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// These tests put the client against answers shaped as ThingsBoard's own
// code writes them (thingsboard/thingsboard v4.3.1.3), not against tbemu,
// so that a misreading the client shares with the emulator fails here. Each
// body names the class that produces it. Jackson writes null fields
// (JacksonUtil.OBJECT_MAPPER and Spring's converter include them) except
// where a class says NON_NULL (JwtPair).

// JwtPair (RestAwareAuthenticationSuccessHandler): login and refresh.
const (
	jwtA     = "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ0ZW5hbnRAdGhpbmdzYm9hcmQub3JnIiwic2NvcGVzIjpbIlRFTkFOVF9BRE1JTiJdfQ.A"
	jwtB     = "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ0ZW5hbnRAdGhpbmdzYm9hcmQub3JnIiwic2NvcGVzIjpbIlRFTkFOVF9BRE1JTiJdfQ.B"
	refreshA = "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ0ZW5hbnRAdGhpbmdzYm9hcmQub3JnIiwic2NvcGVzIjpbIlJFRlJFU0hfVE9LRU4iXX0.RA"
	refreshB = "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ0ZW5hbnRAdGhpbmdzYm9hcmQub3JnIiwic2NvcGVzIjpbIlJFRlJFU0hfVE9LRU4iXX0.RB"
)

func jwtPairBody(token, refresh string) string {
	return `{"token":"` + token + `","refreshToken":"` + refresh + `"}`
}

// ThingsboardErrorResponse bodies as ThingsboardErrorResponseHandler writes
// them (status, message, errorCode, timestamp).
func errorBody(status int, message string, code int) string {
	return fmt.Sprintf(`{"status":%d,"message":%q,"errorCode":%d,"timestamp":1735689600000}`, status, message, code)
}

var (
	// handleAuthenticationException: BadCredentialsException.
	badCredentials = errorBody(401, "Invalid username or password", 10)
	// JwtExpiredTokenException: an expired access token, one whose
	// signature is not the server's, one outdated by a logout
	// (JwtTokenFactory.parseTokenClaims, JwtAuthenticationProvider).
	tokenExpired = errorBody(401, "Token has expired", 11)
	// CredentialsExpiredException from RefreshTokenAuthenticationProvider
	// for a refresh token outdated by a logout or a password change,
	// written through ThingsboardErrorResponse.of (errorCode 10).
	refreshOutdated = errorBody(401, "Token is outdated", 10)
	// AuthenticationServiceException from AbstractHeaderTokenExtractor ("the
	// header cannot be blank"), answered as the generic failure.
	authFailed = errorBody(401, "Authentication failed", 10)
	// BaseController.checkNotNull.
	notFound = errorBody(404, "Requested item wasn't found!", 32)
	// BaseOtaPackageService: ota_package_tenant_title_version_unq_key.
	packageExists = errorBody(400, "OtaPackage with such title and version already exists!", 31)
	// EntityVersionMismatchException (BaseController.handleException).
	deviceChanged = errorBody(409, "Device was already changed by someone else", 35)
	// handleAuthenticationException: UserPasswordExpiredException, written
	// as ThingsboardCredentialsExpiredResponse (errorCode 15, resetToken).
	passwordExpired = `{"status":401,"message":"User password expired!","errorCode":15,"timestamp":1735689600000,"resetToken":"Zq4Cj1bX3sPw5tI2u8mN"}`
)

const (
	tenantID  = `{"entityType":"TENANT","id":"3f2a8e60-c7b1-11ef-9f1e-4bd0a1f6d2c3"}`
	profileID = "3f3c4b20-c7b1-11ef-9f1e-4bd0a1f6d2c3"
	deviceID  = "8a0e7d40-c7b1-11ef-9f1e-4bd0a1f6d2c3"
	packageID = "c41b2f00-c7b1-11ef-9f1e-4bd0a1f6d2c3"
)

// DeviceProfileInfo (DeviceProfileController.getDefaultDeviceProfileInfo).
const defaultProfileInfo = `{"id":{"entityType":"DEVICE_PROFILE","id":"` + profileID + `"},"tenantId":` + tenantID +
	`,"name":"default","image":null,"defaultDashboardId":null,"type":"DEFAULT","transportType":"DEFAULT"}`

// DeviceProfile (DeviceProfileController.getDeviceProfileById): isDefault is
// written "default"; version is the optimistic-locking counter.
func deviceProfile(version int, firmware string) string {
	return `{"id":{"entityType":"DEVICE_PROFILE","id":"` + profileID + `"},"createdTime":1735689600000,"tenantId":` + tenantID +
		`,"name":"default","description":"Default device profile","image":null,"type":"DEFAULT","transportType":"DEFAULT",` +
		`"provisionType":"DISABLED","defaultRuleChainId":null,"defaultDashboardId":null,"defaultQueueName":null,` +
		`"profileData":{"configuration":{"type":"DEFAULT"},"transportConfiguration":{"type":"DEFAULT"},` +
		`"provisionConfiguration":{"type":"DISABLED","provisionDeviceSecret":null},"alarms":null},` +
		`"provisionDeviceKey":null,"firmwareId":` + firmware + `,"softwareId":null,"defaultEdgeRuleChainId":null,` +
		`"externalId":null,"version":` + fmt.Sprint(version) + `,"default":true}`
}

// Device (DeviceController.getDeviceById, getTenantDevice): customerId is
// the null customer when unassigned.
func device(version int, firmware string) string {
	return `{"id":{"entityType":"DEVICE","id":"` + deviceID + `"},"createdTime":1735689600000,"tenantId":` + tenantID +
		`,"customerId":{"entityType":"CUSTOMER","id":"13814000-1dd2-11b2-8080-808080808080"},"name":"24:0A:C4:00:00:04",` +
		`"type":"default","label":null,"deviceProfileId":{"entityType":"DEVICE_PROFILE","id":"` + profileID + `"},` +
		`"firmwareId":` + firmware + `,"softwareId":null,"externalId":null,"version":` + fmt.Sprint(version) +
		`,"additionalInfo":null,"deviceData":{"configuration":{"type":"DEFAULT"},"transportConfiguration":{"type":"DEFAULT"}}}`
}

// OtaPackageInfo (OtaPackageController.saveOtaPackageInfo before the upload,
// saveOtaPackageData after): name is the title (getName, READ_ONLY).
func packageInfo(withData bool) string {
	data := `"hasData":false,"fileName":null,"contentType":null,"checksumAlgorithm":null,"checksum":null,"dataSize":null`
	if withData {
		data = `"hasData":true,"fileName":"fw.bin","contentType":"application/octet-stream","checksumAlgorithm":"SHA256",` +
			`"checksum":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","dataSize":4`
	}
	return `{"id":{"entityType":"OTA_PACKAGE","id":"` + packageID + `"},"createdTime":1735689600000,"tenantId":` + tenantID +
		`,"deviceProfileId":{"entityType":"DEVICE_PROFILE","id":"` + profileID + `"},"type":"FIRMWARE","title":"CORE_ESP32",` +
		`"version":"1.1.0","tag":null,"url":null,` + data + `,"externalId":null,"name":"CORE_ESP32","additionalInfo":{}}`
}

// pageData is PageData: data, totalPages, totalElements, hasNext.
func pageData(hasNext bool, total int, items ...string) string {
	return fmt.Sprintf(`{"data":[%s],"totalPages":%d,"totalElements":%d,"hasNext":%t}`, strings.Join(items, ","), (total+1)/2, total, hasNext)
}

// fakeTB answers scripted exchanges in order, checking each request, and
// records what was asked.
type fakeTB struct {
	t     *testing.T
	mu    sync.Mutex
	steps []step
	asked []string
}

type step struct {
	method, path string // path with its query
	token        string // the bearer token the request must carry ("" none)
	check        func(t *testing.T, r *http.Request, body []byte)
	status       int
	body         string
	contentType  string // default application/json
}

func newFakeTB(t *testing.T, steps ...step) (*fakeTB, *httptest.Server) {
	f := &fakeTB{t: t, steps: steps}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		var missing []string
		for _, s := range f.steps {
			missing = append(missing, s.method+" "+s.path)
		}
		require.Empty(t, missing, "exchanges the client never made (it made %v)", f.asked)
	})
	return f, srv
}

func (f *fakeTB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.asked = append(f.asked, r.Method+" "+r.URL.RequestURI())
	if len(f.steps) == 0 {
		f.mu.Unlock()
		f.t.Errorf("unexpected %s %s", r.Method, r.URL.RequestURI())
		w.WriteHeader(http.StatusTeapot)
		return
	}
	s := f.steps[0]
	f.steps = f.steps[1:]
	f.mu.Unlock()
	if got := r.Method + " " + r.URL.RequestURI(); got != s.method+" "+s.path {
		f.t.Errorf("got %s; want %s %s", got, s.method, s.path)
	}
	want := ""
	if s.token != "" {
		want = "Bearer " + s.token
	}
	if got := r.Header.Get("X-Authorization"); got != want {
		f.t.Errorf("%s %s: X-Authorization %q; want %q", r.Method, r.URL.Path, got, want)
	}
	if s.check != nil {
		s.check(f.t, r, body)
	}
	ct := s.contentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(s.status)
	io.WriteString(w, s.body)
}

// loginStep is the login every client starts with.
func loginStep(token, refresh string) step {
	return step{method: "POST", path: "/api/auth/login", status: 200, body: jwtPairBody(token, refresh),
		check: jsonBody(`{"username":"tenant@thingsboard.org","password":"tenant"}`)}
}

// jsonBody checks a JSON request body (LoginRequest, RefreshTokenRequest,
// the entities) and its content type.
func jsonBody(want string) func(t *testing.T, r *http.Request, body []byte) {
	return func(t *testing.T, r *http.Request, body []byte) {
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		require.JSONEq(t, want, string(body))
	}
}

func login(t *testing.T, srv *httptest.Server) *Client {
	t.Helper()
	c, err := Login(context.Background(), srv.URL, "tenant@thingsboard.org", "tenant")
	require.NoError(t, err)
	return c
}

// The login body is LoginRequest; the token goes in X-Authorization with
// "Bearer " (ThingsboardSecurityConfiguration); the default profile comes
// from DeviceProfileInfo's id.
func TestRecordedLoginAndProfile(t *testing.T) {
	_, srv := newFakeTB(t,
		loginStep(jwtA, refreshA),
		step{method: "GET", path: "/api/deviceProfileInfo/default", token: jwtA, status: 200, body: defaultProfileInfo},
		step{method: "GET", path: "/api/deviceProfile/" + profileID, token: jwtA, status: 200, body: deviceProfile(1, "null")},
	)
	p, err := login(t, srv).DefaultProfile(context.Background())
	require.NoError(t, err)
	require.Equal(t, profileID, p.ID())
	require.Equal(t, "default", p["name"])
	require.Equal(t, true, p["default"])
}

// Refused logins say why, in ThingsBoard's words; a login that needs
// two-factor authentication is refused rather than taken for a session.
// (Before: a 2FA pre-verification token was taken as logged in, and a
// proxy's HTML error page read as "Bad Gateway" with nothing of its text.)
func TestRecordedLoginFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
		code   int
	}{
		{"bad credentials", 401, badCredentials, "HTTP 401: Invalid username or password", 10},
		{"locked", 401, errorBody(401, "User account is locked due to security policy", 10), "HTTP 401: User account is locked due to security policy", 10},
		{"password expired", 401, passwordExpired, "HTTP 401: User password expired!", 15},
		{"too many requests", 429, errorBody(429, "Too many requests for current tenant!", 33), "HTTP 429: Too many requests for current tenant!", 33},
		{"proxy", 502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "HTTP 502: Bad Gateway (<html><body><h1>502 Bad Gateway</h1></body></html>)", 0},
		// RestAwareAuthenticationSuccessHandler.createMfaTokenPair: no
		// refreshToken (NON_NULL), a scope.
		{"two-factor", 200, `{"token":"` + jwtA + `","scope":"PRE_VERIFICATION_TOKEN"}`, "two-factor authentication (token scope PRE_VERIFICATION_TOKEN)", 0},
		{"no token", 200, `{}`, "the answer has no token", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			contentType := ""
			if tc.status == 502 {
				contentType = "text/html"
			}
			_, srv := newFakeTB(t, step{method: "POST", path: "/api/auth/login", status: tc.status, body: tc.body, contentType: contentType})
			_, err := Login(context.Background(), srv.URL, "tenant@thingsboard.org", "tenant")
			require.ErrorContains(t, err, "login to "+srv.URL+": ")
			require.ErrorContains(t, err, tc.want)
			var he *Error
			if errors.As(err, &he) {
				require.Equal(t, tc.code, he.Code)
			}
		})
	}
}

// An access token refused as expired (401, errorCode 11) is refreshed with
// POST /api/auth/token {"refreshToken"} and the request made again with the
// new one, an upload with its whole multipart body. (Before: the 401 ended
// the command, two and a half hours into a long `ota status`.)
func TestRecordedExpiredTokenRefreshed(t *testing.T) {
	// OtaPackageController.saveOtaPackageData: @RequestPart MultipartFile
	// file, @RequestParam checksumAlgorithm.
	var uploads []string
	filePart := func(t *testing.T, r *http.Request, body []byte) {
		require.True(t, strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data; boundary="))
		r.Body = io.NopCloser(strings.NewReader(string(body))) // the fake has read it
		f, h, err := r.FormFile("file")
		require.NoError(t, err)
		data, _ := io.ReadAll(f)
		uploads = append(uploads, h.Filename+":"+string(data))
	}
	f, srv := newFakeTB(t,
		loginStep(jwtA, refreshA),
		step{method: "GET", path: "/api/tenant/devices?deviceName=24%3A0A%3AC4%3A00%3A00%3A04", token: jwtA, status: 401, body: tokenExpired},
		step{method: "POST", path: "/api/auth/token", status: 200, body: jwtPairBody(jwtB, refreshB), check: jsonBody(`{"refreshToken":"` + refreshA + `"}`)},
		step{method: "GET", path: "/api/tenant/devices?deviceName=24%3A0A%3AC4%3A00%3A00%3A04", token: jwtB, status: 200, body: device(3, "null")},
		step{method: "POST", path: "/api/otaPackage/" + packageID + "?checksumAlgorithm=SHA256", token: jwtB, status: 401, body: tokenExpired, check: filePart},
		step{method: "POST", path: "/api/auth/token", status: 200, body: jwtPairBody(jwtA, refreshA), check: jsonBody(`{"refreshToken":"` + refreshB + `"}`)},
		step{method: "POST", path: "/api/otaPackage/" + packageID + "?checksumAlgorithm=SHA256", token: jwtA, status: 200, body: packageInfo(true), check: filePart},
	)
	c := login(t, srv)
	ctx := context.Background()
	d, err := c.DeviceByName(ctx, "24:0A:C4:00:00:04")
	require.NoError(t, err)
	require.Equal(t, deviceID, d.ID())
	pkg, err := c.UploadPackage(ctx, packageID, "fw.bin", []byte("test"), "SHA256")
	require.NoError(t, err)
	require.Equal(t, []string{"fw.bin:test", "fw.bin:test"}, uploads, "the same body both times")
	require.Equal(t, true, pkg["hasData"])
	require.Equal(t, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", pkg["checksum"])
	require.Equal(t, float64(4), pkg["dataSize"])
	require.Len(t, f.asked, 7)
}

// A refresh token that is refused too (expired: 401/11; outdated by a
// logout or a password change: 401/10) means logging in again with the
// same credentials; a login that fails then is the error.
func TestRecordedRefreshRefusedLogsInAgain(t *testing.T) {
	for _, refused := range []string{tokenExpired, refreshOutdated} {
		_, srv := newFakeTB(t,
			loginStep(jwtA, refreshA),
			step{method: "GET", path: "/api/deviceProfileInfo/default", token: jwtA, status: 401, body: tokenExpired},
			step{method: "POST", path: "/api/auth/token", status: 401, body: refused},
			loginStep(jwtB, refreshB),
			step{method: "GET", path: "/api/deviceProfileInfo/default", token: jwtB, status: 200, body: defaultProfileInfo},
			step{method: "GET", path: "/api/deviceProfile/" + profileID, token: jwtB, status: 200, body: deviceProfile(1, "null")},
		)
		_, err := login(t, srv).DefaultProfile(context.Background())
		require.NoError(t, err)
	}

	_, srv := newFakeTB(t,
		loginStep(jwtA, refreshA),
		step{method: "GET", path: "/api/otaPackages?pageSize=100&page=0", token: jwtA, status: 401, body: tokenExpired},
		step{method: "POST", path: "/api/auth/token", status: 401, body: refreshOutdated},
		step{method: "POST", path: "/api/auth/login", status: 401, body: badCredentials}, // the password was changed
	)
	_, err := login(t, srv).Packages(context.Background())
	require.EqualError(t, err, "the token expired; log in again as tenant@thingsboard.org: HTTP 401: Invalid username or password")
}

// Any other 401 is an answer, not a reason to log in again: the client
// repeats nothing.
func TestRecordedOther401NotRetried(t *testing.T) {
	_, srv := newFakeTB(t,
		loginStep(jwtA, refreshA),
		step{method: "GET", path: "/api/tenant/devices?pageSize=1000&page=0", token: jwtA, status: 401, body: authFailed},
	)
	_, err := login(t, srv).Devices(context.Background())
	var he *Error
	require.ErrorAs(t, err, &he)
	require.Equal(t, Error{Status: 401, Code: 10, Message: "Authentication failed"}, *he)
	require.ErrorIs(t, err, ErrUnauthorized)
}

// A key with no value comes back as {"ts":now,"value":null}
// (TimeseriesLatestDao.findLatest, TelemetryController's TsData): absent,
// not the string "<nil>". Values are strings without useStrictDataTypes.
// (Before: "<nil>" was taken for a fw_state.)
func TestRecordedLatestWithoutValue(t *testing.T) {
	_, srv := newFakeTB(t,
		loginStep(jwtA, refreshA),
		step{method: "GET", path: "/api/plugins/telemetry/DEVICE/" + deviceID + "/values/timeseries?keys=fw_state%2Ctarget_fw_version%2Ccurrent_fw_version",
			token: jwtA, status: 200,
			body: `{"fw_state":[{"ts":1735689600123,"value":null}],"target_fw_version":[{"ts":1735689600123,"value":null}],` +
				`"current_fw_version":[{"ts":1735689000000,"value":"1.0.0"}]}`},
	)
	v, err := login(t, srv).Latest(context.Background(), deviceID, "fw_state", "target_fw_version", "current_fw_version")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"current_fw_version": "1.0.0"}, v)
}

// OTA packages: the create body is SaveOtaPackageInfoRequest's fields; a
// title and version taken already is a 400 whose message says so (the
// client's caller reuses the package on it); the list is paged PageData.
func TestRecordedPackages(t *testing.T) {
	createBody := `{"title":"CORE_ESP32","version":"1.1.0","type":"FIRMWARE","deviceProfileId":{"entityType":"DEVICE_PROFILE","id":"` + profileID + `"}}`
	_, srv := newFakeTB(t,
		loginStep(jwtA, refreshA),
		step{method: "POST", path: "/api/otaPackage", token: jwtA, status: 200, body: packageInfo(false), check: jsonBody(createBody)},
		step{method: "POST", path: "/api/otaPackage", token: jwtA, status: 400, body: packageExists, check: jsonBody(createBody)},
		step{method: "GET", path: "/api/otaPackages?pageSize=100&page=0", token: jwtA, status: 200,
			body: pageData(true, 3, packageInfo(false), strings.Replace(packageInfo(false), `"1.1.0"`, `"1.0.0"`, 1))},
		step{method: "GET", path: "/api/otaPackages?pageSize=100&page=1", token: jwtA, status: 200,
			body: pageData(false, 3, strings.Replace(packageInfo(true), `"1.1.0"`, `"1.2.0"`, 1))},
	)
	c := login(t, srv)
	ctx := context.Background()
	pkg, err := c.CreatePackage(ctx, profileID, "CORE_ESP32", "1.1.0")
	require.NoError(t, err)
	require.Equal(t, packageID, pkg.ID())
	require.Equal(t, false, pkg["hasData"])

	_, err = c.CreatePackage(ctx, profileID, "CORE_ESP32", "1.1.0")
	var he *Error
	require.ErrorAs(t, err, &he)
	require.Equal(t, Error{Status: 400, Code: 31, Message: "OtaPackage with such title and version already exists!"}, *he)

	found, err := c.PackageByTitle(ctx, "CORE_ESP32", "1.2.0")
	require.NoError(t, err)
	require.Equal(t, "SHA256", found["checksumAlgorithm"])
}

// A device that is not there is a 404 with ThingsBoard's message.
func TestRecordedDeviceNotFound(t *testing.T) {
	_, srv := newFakeTB(t,
		loginStep(jwtA, refreshA),
		step{method: "GET", path: "/api/tenant/devices?deviceName=nope", token: jwtA, status: 404, body: notFound},
	)
	_, err := login(t, srv).DeviceByName(context.Background(), "nope")
	require.ErrorIs(t, err, ErrNotFound)
	require.EqualError(t, err, "HTTP 404: Requested item wasn't found!")
}

// Assigning firmware is GET, edit, POST of the whole entity, "version"
// included; ThingsBoard refuses a stale version with 409 (errorCode 35), and
// the client reads the entity again and edits that. (Before: the 409 ended
// the push.)
func TestRecordedEditAfterVersionConflict(t *testing.T) {
	ref := `{"entityType":"OTA_PACKAGE","id":"` + packageID + `"}`
	saved := func(version int) func(t *testing.T, r *http.Request, body []byte) {
		return func(t *testing.T, r *http.Request, body []byte) {
			var d map[string]any
			require.NoError(t, json.Unmarshal(body, &d))
			require.Equal(t, float64(version), d["version"], "the version that was read")
			require.Equal(t, map[string]any{"entityType": "OTA_PACKAGE", "id": packageID}, d["firmwareId"])
			require.Equal(t, "24:0A:C4:00:00:04", d["name"], "every field read is sent back")
			require.Contains(t, d, "deviceData")
		}
	}
	_, srv := newFakeTB(t,
		loginStep(jwtA, refreshA),
		step{method: "GET", path: "/api/device/" + deviceID, token: jwtA, status: 200, body: device(3, "null")},
		step{method: "POST", path: "/api/device", token: jwtA, status: 409, body: deviceChanged, check: saved(3)},
		step{method: "GET", path: "/api/device/" + deviceID, token: jwtA, status: 200, body: device(4, "null")},
		step{method: "POST", path: "/api/device", token: jwtA, status: 200, body: device(5, ref), check: saved(4)},
		step{method: "GET", path: "/api/deviceProfile/" + profileID, token: jwtA, status: 200, body: deviceProfile(7, "null")},
		step{method: "POST", path: "/api/deviceProfile", token: jwtA, status: 200, body: deviceProfile(8, ref)},
	)
	c := login(t, srv)
	ctx := context.Background()
	set := func(o Object) { o["firmwareId"] = map[string]any{"entityType": "OTA_PACKAGE", "id": packageID} }
	d, err := c.EditDevice(ctx, deviceID, set)
	require.NoError(t, err)
	require.Equal(t, float64(5), d["version"])
	p, err := c.EditProfile(ctx, profileID, set)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"entityType": "OTA_PACKAGE", "id": packageID}, p["firmwareId"])
}

// Lists are read page by page until hasNext is false.
func TestRecordedDevicePages(t *testing.T) {
	other := strings.Replace(device(1, "null"), deviceID, "9b0e7d40-c7b1-11ef-9f1e-4bd0a1f6d2c3", 1)
	_, srv := newFakeTB(t,
		loginStep(jwtA, refreshA),
		step{method: "GET", path: "/api/tenant/devices?pageSize=1000&page=0", token: jwtA, status: 200, body: pageData(true, 2, device(1, "null"))},
		step{method: "GET", path: "/api/tenant/devices?pageSize=1000&page=1", token: jwtA, status: 200, body: pageData(false, 2, other)},
	)
	devs, err := login(t, srv).Devices(context.Background())
	require.NoError(t, err)
	require.Len(t, devs, 2)
	require.Equal(t, "9b0e7d40-c7b1-11ef-9f1e-4bd0a1f6d2c3", devs[1].ID())
}

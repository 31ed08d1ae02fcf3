// Package tbrest is a small client of ThingsBoard's REST API (the calls tbsim
// needs: login, OTA packages, devices, device profiles, latest telemetry). It
// speaks to a real ThingsBoard and to tbemu alike.
package tbrest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Client is a logged-in REST client. It keeps the credentials it logged in
// with: when ThingsBoard answers that the access token expired (401 with
// errorCode 11, after JWT_TOKEN_EXPIRATION_TIME, 2.5 h by default, or once
// the server stops accepting the token), the client refreshes it with the
// refresh token, or logs in again when that is refused too, and repeats the
// request once. A Client is safe for concurrent use.
type Client struct {
	base           string
	http           *http.Client
	user, password string

	mu             sync.Mutex
	token, refresh string
	renewMu        sync.Mutex // one renewal at a time: the others then find the new token
}

// EntityID is ThingsBoard's {"entityType","id"}.
type EntityID struct {
	EntityType string `json:"entityType"`
	ID         string `json:"id"`
}

// Login authenticates as a tenant user.
func Login(ctx context.Context, base, user, password string) (*Client, error) {
	return LoginWith(ctx, nil, base, user, password)
}

// LoginWith authenticates with an HTTP client of the caller's (its TLS
// settings for an https base, say); nil is a client with a 60 s timeout.
func LoginWith(ctx context.Context, hc *http.Client, base, user, password string) (*Client, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	c := &Client{base: strings.TrimRight(base, "/"), http: hc, user: user, password: password}
	if err := c.login(ctx); err != nil {
		return nil, fmt.Errorf("login to %s: %w", base, err)
	}
	return c, nil
}

// jwtPair is ThingsBoard's login and refresh answer (JwtPair, written with
// JsonInclude.NON_NULL): token and refreshToken; scope only when the token
// is not for the API yet (two-factor authentication pending).
type jwtPair struct {
	Token        string `json:"token"`
	RefreshToken string `json:"refreshToken"`
	Scope        string `json:"scope"`
}

// login is POST /api/auth/login (RestLoginProcessingFilter).
func (c *Client) login(ctx context.Context) error {
	body, err := json.Marshal(map[string]string{"username": c.user, "password": c.password})
	if err != nil {
		return err
	}
	var p jwtPair
	if err := c.send(ctx, "POST", "/api/auth/login", body, "application/json", "", &p); err != nil {
		return err
	}
	return c.take(p)
}

// take installs a token pair.
func (c *Client) take(p jwtPair) error {
	switch {
	case p.Scope != "":
		// RestAwareAuthenticationSuccessHandler: a user with two-factor
		// authentication gets a PRE_VERIFICATION_TOKEN (or
		// MFA_CONFIGURATION_TOKEN) that opens only the 2FA endpoints.
		return fmt.Errorf("user %s must complete two-factor authentication (token scope %s), which tbsim cannot do: use a tenant administrator without 2FA", c.user, p.Scope)
	case p.Token == "":
		return errors.New("the answer has no token")
	}
	c.mu.Lock()
	c.token, c.refresh = p.Token, p.RefreshToken
	c.mu.Unlock()
	return nil
}

// renew gets a new access token after stale was refused as expired: with
// the refresh token (POST /api/auth/token, RefreshTokenProcessingFilter),
// or by logging in again when that is refused (an expired refresh token,
// 401 errorCode 11; one outdated by a logout or a password change, 401
// errorCode 10). A token another request renewed meanwhile is used as is.
func (c *Client) renew(ctx context.Context, stale string) error {
	c.renewMu.Lock()
	defer c.renewMu.Unlock()
	c.mu.Lock()
	tok, refresh := c.token, c.refresh
	c.mu.Unlock()
	if tok != stale {
		return nil
	}
	if refresh != "" {
		body, err := json.Marshal(map[string]string{"refreshToken": refresh})
		if err != nil {
			return err
		}
		var p jwtPair
		if err := c.send(ctx, "POST", "/api/auth/token", body, "application/json", "", &p); err == nil {
			return c.take(p)
		} else if !errors.Is(err, ErrUnauthorized) {
			return fmt.Errorf("refresh the token: %w", err)
		}
	}
	if err := c.login(ctx); err != nil {
		return fmt.Errorf("the token expired; log in again as %s: %w", c.user, err)
	}
	return nil
}

// ThingsBoard's error codes (ThingsboardErrorCode) that the client acts on.
const (
	CodeAuthentication     = 10 // bad credentials, an outdated refresh token, no token
	CodeJWTTokenExpired    = 11 // the access token expired (or its signature is not the server's)
	CodeCredentialsExpired = 15 // the user's password expired
	CodeItemNotFound       = 32
	CodeVersionConflict    = 35 // the entity was saved by someone else since it was read
)

// Error is a non-2xx answer: the status and, from ThingsBoard's
// ThingsboardErrorResponse body {"status","message","errorCode","timestamp"},
// the message and the error code (0 when the body is not one, say from a
// proxy in front of the server).
type Error struct {
	Status  int
	Code    int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

// Sentinels for errors.Is on an *Error.
var (
	ErrUnauthorized = errors.New("unauthorized")     // 401
	ErrNotFound     = errors.New("not found")        // 404
	ErrConflict     = errors.New("version conflict") // 409
)

// Is matches the sentinels by status.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	}
	return false
}

// readError builds the Error of a non-2xx answer.
func readError(status int, data []byte) *Error {
	var body struct {
		Message   *string `json:"message"`
		ErrorCode int     `json:"errorCode"`
	}
	e := &Error{Status: status}
	if json.Unmarshal(data, &body) == nil && body.Message != nil {
		e.Message, e.Code = *body.Message, body.ErrorCode
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
		return e
	}
	e.Message = http.StatusText(status)
	if text := strings.TrimSpace(string(data)); text != "" {
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		e.Message += " (" + text + ")"
	}
	return e
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	return c.do(ctx, method, path, body, "application/json", out)
}

// do sends an authenticated request; an expired token is renewed and the
// request sent once more (body is a byte slice so that it can be).
func (c *Client) do(ctx context.Context, method, path string, body []byte, contentType string, out any) error {
	c.mu.Lock()
	tok := c.token
	c.mu.Unlock()
	err := c.send(ctx, method, path, body, contentType, tok, out)
	var he *Error
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || he.Code != CodeJWTTokenExpired {
		return err
	}
	if err := c.renew(ctx, tok); err != nil {
		return err
	}
	c.mu.Lock()
	tok = c.token
	c.mu.Unlock()
	return c.send(ctx, method, path, body, contentType, tok, out)
}

// send is one HTTP exchange: X-Authorization: Bearer token when there is
// one (ThingsboardSecurityConfiguration's header), a JSON answer decoded
// into out.
func (c *Client) send(ctx context.Context, method, path string, body []byte, contentType, token string, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("X-Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return readError(resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: the answer is not the JSON expected: %w", method, path, err)
		}
	}
	return nil
}

// Object is an entity as JSON, kept whole so a GET-modify-POST round trip
// loses no field this client does not know.
type Object map[string]any

// ID returns the entity id.
func (o Object) ID() string {
	if m, ok := o["id"].(map[string]any); ok {
		s, _ := m["id"].(string)
		return s
	}
	return ""
}

// DefaultProfile returns the default device profile.
func (c *Client) DefaultProfile(ctx context.Context) (Object, error) {
	var info struct{ ID EntityID }
	if err := c.call(ctx, "GET", "/api/deviceProfileInfo/default", nil, &info); err != nil {
		return nil, err
	}
	return c.Profile(ctx, info.ID.ID)
}

// Profile returns a device profile by id.
func (c *Client) Profile(ctx context.Context, id string) (Object, error) {
	var p Object
	return p, c.call(ctx, "GET", "/api/deviceProfile/"+url.PathEscape(id), nil, &p)
}

// ProfileByName finds a device profile by name.
func (c *Client) ProfileByName(ctx context.Context, name string) (Object, error) {
	for page := 0; ; page++ {
		var pg struct {
			Data    []Object
			HasNext bool
		}
		if err := c.call(ctx, "GET", fmt.Sprintf("/api/deviceProfiles?pageSize=100&page=%d", page), nil, &pg); err != nil {
			return nil, err
		}
		for _, p := range pg.Data {
			if p["name"] == name {
				return p, nil
			}
		}
		if !pg.HasNext {
			return nil, fmt.Errorf("device profile %q not found", name)
		}
	}
}

// SaveProfile posts a profile back.
func (c *Client) SaveProfile(ctx context.Context, p Object) (Object, error) {
	var out Object
	return out, c.call(ctx, "POST", "/api/deviceProfile", p, &out)
}

// DeviceByName finds a device.
func (c *Client) DeviceByName(ctx context.Context, name string) (Object, error) {
	var d Object
	return d, c.call(ctx, "GET", "/api/tenant/devices?deviceName="+url.QueryEscape(name), nil, &d)
}

// SaveDevice posts a device back.
func (c *Client) SaveDevice(ctx context.Context, d Object) (Object, error) {
	var out Object
	return out, c.call(ctx, "POST", "/api/device", d, &out)
}

// Device returns a device by id.
func (c *Client) Device(ctx context.Context, id string) (Object, error) {
	var d Object
	return d, c.call(ctx, "GET", "/api/device/"+url.PathEscape(id), nil, &d)
}

// EditDevice reads a device, applies edit and saves it. ThingsBoard refuses
// a save whose "version" is not the stored one (409, errorCode 35: someone
// saved the device since it was read); the device is then read and edited
// again, up to a few times.
func (c *Client) EditDevice(ctx context.Context, id string, edit func(Object)) (Object, error) {
	return c.edit(ctx, func() (Object, error) { return c.Device(ctx, id) }, edit, c.SaveDevice)
}

// EditProfile is EditDevice for a device profile.
func (c *Client) EditProfile(ctx context.Context, id string, edit func(Object)) (Object, error) {
	return c.edit(ctx, func() (Object, error) { return c.Profile(ctx, id) }, edit, c.SaveProfile)
}

func (c *Client) edit(ctx context.Context, get func() (Object, error), edit func(Object), save func(context.Context, Object) (Object, error)) (Object, error) {
	const attempts = 5
	for i := 1; ; i++ {
		o, err := get()
		if err != nil {
			return nil, err
		}
		edit(o)
		saved, err := save(ctx, o)
		if err == nil || !errors.Is(err, ErrConflict) || i == attempts {
			return saved, err
		}
	}
}

// Devices lists every device of the tenant.
func (c *Client) Devices(ctx context.Context) ([]Object, error) {
	var all []Object
	for page := 0; ; page++ {
		var pg struct {
			Data    []Object
			HasNext bool
		}
		if err := c.call(ctx, "GET", fmt.Sprintf("/api/tenant/devices?pageSize=1000&page=%d", page), nil, &pg); err != nil {
			return nil, err
		}
		all = append(all, pg.Data...)
		if !pg.HasNext {
			return all, nil
		}
	}
}

// Latest returns the latest values of keys of a device, as strings.
func (c *Client) Latest(ctx context.Context, deviceID string, keys ...string) (map[string]string, error) {
	var raw map[string][]struct {
		Value any `json:"value"`
	}
	if err := c.call(ctx, "GET", "/api/plugins/telemetry/DEVICE/"+deviceID+"/values/timeseries?keys="+url.QueryEscape(strings.Join(keys, ",")), nil, &raw); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range raw {
		// A key with no value comes back as [{"ts":now,"value":null}]
		// (TimeseriesLatestDao.findLatest): absent, not "<nil>".
		if len(v) > 0 && v[0].Value != nil {
			out[k] = fmt.Sprint(v[0].Value)
		}
	}
	return out, nil
}

// CreatePackage creates an OTA package for a profile.
func (c *Client) CreatePackage(ctx context.Context, profileID, title, version string) (Object, error) {
	var out Object
	err := c.call(ctx, "POST", "/api/otaPackage", map[string]any{
		"title": title, "version": version, "type": "FIRMWARE",
		"deviceProfileId": EntityID{EntityType: "DEVICE_PROFILE", ID: profileID},
	}, &out)
	return out, err
}

// Packages lists every OTA package of the tenant.
func (c *Client) Packages(ctx context.Context) ([]Object, error) {
	var all []Object
	for page := 0; ; page++ {
		var pg struct {
			Data    []Object
			HasNext bool
		}
		if err := c.call(ctx, "GET", fmt.Sprintf("/api/otaPackages?pageSize=100&page=%d", page), nil, &pg); err != nil {
			return nil, err
		}
		all = append(all, pg.Data...)
		if !pg.HasNext {
			return all, nil
		}
	}
}

// PackageByTitle finds the package of a title and version (nil if none).
func (c *Client) PackageByTitle(ctx context.Context, title, version string) (Object, error) {
	all, err := c.Packages(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range all {
		if p["title"] == title && p["version"] == version {
			return p, nil
		}
	}
	return nil, nil
}

// UploadPackage uploads the data as multipart part "file".
func (c *Client) UploadPackage(ctx context.Context, id, fileName string, data []byte, algorithm string) (Object, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	part, err := w.CreateFormFile("file", fileName)
	if err != nil {
		return nil, err
	}
	part.Write(data)
	w.Close()
	var out Object
	err = c.do(ctx, "POST", "/api/otaPackage/"+id+"?checksumAlgorithm="+url.QueryEscape(algorithm), buf.Bytes(), w.FormDataContentType(), &out)
	return out, err
}

// Package tbrest is a small client of ThingsBoard's REST API (the calls tbsim
// needs: login, OTA packages, devices, device profiles, latest telemetry). It
// speaks to a real ThingsBoard and to tbemu alike.
package tbrest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client is a logged-in REST client.
type Client struct {
	base  string
	token string
	http  *http.Client
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
	c := &Client{base: strings.TrimRight(base, "/"), http: hc}
	var out struct{ Token string }
	if err := c.call(ctx, "POST", "/api/auth/login", map[string]string{"username": user, "password": password}, &out); err != nil {
		return nil, fmt.Errorf("login to %s: %w", base, err)
	}
	c.token = out.Token
	return c, nil
}

// Error is a non-2xx answer.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	return c.do(ctx, method, path, body, "application/json", out)
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("X-Authorization", "Bearer "+c.token)
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
		var e struct{ Message string }
		json.Unmarshal(data, &e)
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		return &Error{Status: resp.StatusCode, Message: e.Message}
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
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
	return p, c.call(ctx, "GET", "/api/deviceProfile/"+id, nil, &p)
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
	if err := c.call(ctx, "GET", "/api/plugins/telemetry/DEVICE/"+deviceID+"/values/timeseries?keys="+strings.Join(keys, ","), nil, &raw); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range raw {
		if len(v) > 0 {
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
	err = c.do(ctx, "POST", "/api/otaPackage/"+id+"?checksumAlgorithm="+url.QueryEscape(algorithm), &buf, w.FormDataContentType(), &out)
	return out, err
}

package tbrest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// The calls below set a ThingsBoard (or tbsim server) up for a fleet and
// clean up after it: a provisioning profile, devices, shared attributes and
// RPC. They are ThingsBoard's own REST paths (tenant administrator).

// ProvisioningProfile returns the device profile of that name set to
// ALLOW_CREATE_NEW_DEVICES with key and secret, creating it or updating an
// existing one (its other settings are kept). ThingsBoard needs the whole
// profileData on a create, so a new profile gets the default configuration
// and transport, as its UI creates them.
func (c *Client) ProvisioningProfile(ctx context.Context, name, key, secret string) (Object, error) {
	p, err := c.ProfileByName(ctx, name)
	if err != nil && !strings.Contains(err.Error(), "not found") {
		return nil, err
	}
	if p == nil {
		p = Object{"name": name, "type": "DEFAULT", "transportType": "DEFAULT",
			"profileData": map[string]any{
				"configuration":          map[string]any{"type": "DEFAULT"},
				"transportConfiguration": map[string]any{"type": "DEFAULT"},
			}}
	}
	pd, _ := p["profileData"].(map[string]any)
	if pd == nil {
		pd = map[string]any{}
		p["profileData"] = pd
	}
	pd["provisionConfiguration"] = map[string]any{"type": "ALLOW_CREATE_NEW_DEVICES", "provisionDeviceSecret": secret}
	p["provisionType"] = "ALLOW_CREATE_NEW_DEVICES"
	p["provisionDeviceKey"] = key
	return c.SaveProfile(ctx, p)
}

// CreateDevice creates a device in a profile; token "" lets the server
// generate its access token.
func (c *Client) CreateDevice(ctx context.Context, name, profileID, token string) (Object, error) {
	path := "/api/device"
	if token != "" {
		path += "?accessToken=" + url.QueryEscape(token)
	}
	var out Object
	return out, c.call(ctx, "POST", path, map[string]any{
		"name": name, "deviceProfileId": EntityID{EntityType: "DEVICE_PROFILE", ID: profileID},
	}, &out)
}

// DeleteDevice deletes a device (ThingsBoard closes its sessions).
func (c *Client) DeleteDevice(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/api/device/"+id, nil, nil)
}

// DeviceToken returns a device's access token (its credentialsId).
func (c *Client) DeviceToken(ctx context.Context, id string) (string, error) {
	var cr struct {
		CredentialsType string
		CredentialsID   string `json:"credentialsId"`
	}
	if err := c.call(ctx, "GET", "/api/device/"+id+"/credentials", nil, &cr); err != nil {
		return "", err
	}
	return cr.CredentialsID, nil
}

// SetSharedAttributes saves shared attributes of a device (a subscribed
// device gets them pushed).
func (c *Client) SetSharedAttributes(ctx context.Context, deviceID string, values map[string]any) error {
	return c.call(ctx, "POST", "/api/plugins/telemetry/DEVICE/"+deviceID+"/attributes/SHARED_SCOPE", values, nil)
}

// DeleteSharedAttributes deletes shared attributes of a device (a
// subscribed device gets {"deleted":[...]}).
func (c *Client) DeleteSharedAttributes(ctx context.Context, deviceID string, keys ...string) error {
	return c.call(ctx, "DELETE", "/api/plugins/telemetry/DEVICE/"+deviceID+"/SHARED_SCOPE?keys="+url.QueryEscape(strings.Join(keys, ",")), nil, nil)
}

// RPC sends a server-side RPC: two-way returns the device's answer, one-way
// returns when the server has delivered it (or queued it, ThingsBoard
// answers 200 either way).
func (c *Client) RPC(ctx context.Context, deviceID string, twoWay bool, method string, params any, timeoutMs int) (json.RawMessage, error) {
	kind := "oneway"
	if twoWay {
		kind = "twoway"
	}
	body := map[string]any{"method": method, "params": params}
	if timeoutMs > 0 {
		body["timeout"] = timeoutMs
	}
	var out json.RawMessage
	err := c.call(ctx, "POST", "/api/plugins/rpc/"+kind+"/"+deviceID, body, &out)
	return out, err
}

// TsPoint is one time-series value as the REST API returns it.
type TsPoint struct {
	Ts    int64 `json:"ts"`
	Value any   `json:"value"`
}

// History returns the values of keys between startMs and endMs, newest
// first (ThingsBoard's order), at most limit per key.
func (c *Client) History(ctx context.Context, deviceID string, startMs, endMs int64, limit int, keys ...string) (map[string][]TsPoint, error) {
	out := map[string][]TsPoint{}
	return out, c.call(ctx, "GET", fmt.Sprintf("/api/plugins/telemetry/DEVICE/%s/values/timeseries?keys=%s&startTs=%d&endTs=%d&limit=%d&useStrictDataTypes=true",
		deviceID, url.QueryEscape(strings.Join(keys, ",")), startMs, endMs, limit), nil, &out)
}

// LatestTyped returns the latest values with their JSON types
// (useStrictDataTypes=true).
func (c *Client) LatestTyped(ctx context.Context, deviceID string, keys ...string) (map[string][]TsPoint, error) {
	out := map[string][]TsPoint{}
	q := "?useStrictDataTypes=true"
	if len(keys) > 0 {
		q += "&keys=" + url.QueryEscape(strings.Join(keys, ","))
	}
	return out, c.call(ctx, "GET", "/api/plugins/telemetry/DEVICE/"+deviceID+"/values/timeseries"+q, nil, &out)
}

// DeletePackage deletes an OTA package (refused while it is assigned).
func (c *Client) DeletePackage(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/api/otaPackage/"+id, nil, nil)
}

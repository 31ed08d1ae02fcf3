package tbemu

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

type entityID struct {
	EntityType string `json:"entityType"`
	ID         string `json:"id"`
}

// restClient talks to the emulator the way a ThingsBoard REST client does.
type restClient struct {
	t     *testing.T
	base  string
	token string
}

func (c *restClient) do(method, path string, body io.Reader, contentType string, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	require.NoError(c.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("X-Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		require.NoError(c.t, json.Unmarshal(data, out), "body %s", data)
	}
	return resp.StatusCode
}

func (c *restClient) json(method, path string, in, out any) int {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		require.NoError(c.t, err)
		body = bytes.NewReader(b)
	}
	return c.do(method, path, body, "application/json", out)
}

func TestRESTUploadAssignAndProgress(t *testing.T) {
	s := startServer(t, Options{HTTPAddr: "127.0.0.1:0"})
	rc := &restClient{t: t, base: "http://" + s.HTTPAddr()}
	require.Equal(t, http.StatusUnauthorized, rc.json("GET", "/api/deviceProfiles?pageSize=10&page=0", nil, nil))
	require.Equal(t, http.StatusUnauthorized, rc.json("POST", "/api/auth/login", map[string]string{"username": "x", "password": "y"}, nil))
	var login struct{ Token, RefreshToken string }
	require.Equal(t, http.StatusOK, rc.json("POST", "/api/auth/login", map[string]string{"username": "tenant@thingsboard.org", "password": "tenant"}, &login))
	rc.token = login.Token

	// A device connected and subscribed, as the firmware is.
	d, _ := s.CreateDevice(DeviceSpec{Name: "rest-dev"})
	c := connectTCP(t, s, "rest-dev", d.Credentials.Token, "")
	c.sub(t, tbapi.TopicAttributes)

	var def struct {
		ID entityID `json:"id"`
	}
	require.Equal(t, http.StatusOK, rc.json("GET", "/api/deviceProfileInfo/default", nil, &def))
	var pkg struct {
		ID entityID `json:"id"`
	}
	require.Equal(t, http.StatusOK, rc.json("POST", "/api/otaPackage", map[string]any{
		"title": "CORE_ESP32", "version": "1.1.0", "type": "FIRMWARE", "deviceProfileId": def.ID,
	}, &pkg))
	require.Equal(t, "OTA_PACKAGE", pkg.ID.EntityType)

	data := firmwareBytes(50000, 4)
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	part, _ := w.CreateFormFile("file", "firmware.bin")
	part.Write(data)
	w.Close()
	var info map[string]any
	require.Equal(t, http.StatusOK, rc.do("POST", "/api/otaPackage/"+pkg.ID.ID+"?checksumAlgorithm=sha256", &mp, w.FormDataContentType(), &info))
	require.Equal(t, tbapi.ChecksumHex(tbapi.SHA256, data), info["checksum"])
	require.Equal(t, "SHA256", info["checksumAlgorithm"])
	require.Equal(t, float64(50000), info["dataSize"])
	require.Equal(t, "firmware.bin", info["fileName"])

	var page struct {
		Data          []map[string]any `json:"data"`
		TotalElements int              `json:"totalElements"`
		HasNext       bool             `json:"hasNext"`
	}
	require.Equal(t, http.StatusOK, rc.json("GET", "/api/otaPackages?pageSize=10&page=0", nil, &page))
	require.Equal(t, 1, page.TotalElements)

	// Assign to the profile: GET, set firmwareId, POST the whole object back.
	var prof map[string]any
	require.Equal(t, http.StatusOK, rc.json("GET", "/api/deviceProfile/"+def.ID.ID, nil, &prof))
	prof["firmwareId"] = map[string]string{"entityType": "OTA_PACKAGE", "id": pkg.ID.ID}
	require.Equal(t, http.StatusOK, rc.json("POST", "/api/deviceProfile", prof, &prof))

	require.Equal(t, `{"deleted":["fw_tag","fw_url"]}`, string(c.expect(t, tbapi.TopicAttributes)))
	push, err := tbapi.DecodeAttrUpdate(c.expect(t, tbapi.TopicAttributes))
	require.NoError(t, err)
	var fw tbapi.FwInfo
	fw.Merge(push.Values)
	require.Equal(t, "1.1.0", fw.Version)
	c.pub(t, tbapi.TopicTelemetry, `{"fw_state":"UPDATED","current_fw_version":"1.1.0"}`)

	var ts map[string][]struct {
		Ts    int64  `json:"ts"`
		Value string `json:"value"`
	}
	require.Equal(t, http.StatusOK, rc.json("GET", "/api/plugins/telemetry/DEVICE/"+d.ID+"/values/timeseries?keys=fw_state,target_fw_version", nil, &ts))
	require.Equal(t, "UPDATED", ts["fw_state"][0].Value)
	require.Equal(t, "1.1.0", ts["target_fw_version"][0].Value)
	var st Stats
	require.Equal(t, http.StatusOK, rc.json("GET", "/api/tbsim/stats", nil, &st))
	require.Equal(t, map[string]int{"UPDATED": 1}, st.OTA[pkg.ID.ID])

	// Devices by name, credentials, shared attributes, RPC, delete.
	var dev map[string]any
	require.Equal(t, http.StatusOK, rc.json("GET", "/api/tenant/devices?deviceName=rest-dev", nil, &dev))
	require.Equal(t, map[string]any{"entityType": "DEVICE", "id": d.ID}, dev["id"])
	var creds map[string]any
	require.Equal(t, http.StatusOK, rc.json("GET", "/api/device/"+d.ID+"/credentials", nil, &creds))
	require.Equal(t, d.Credentials.Token, creds["credentialsId"])
	require.Equal(t, http.StatusOK, rc.json("POST", "/api/plugins/telemetry/DEVICE/"+d.ID+"/attributes/SHARED_SCOPE", map[string]any{"interval": 10}, nil))
	require.Equal(t, `{"interval":10}`, string(c.expect(t, tbapi.TopicAttributes)))
	var attrs []map[string]any
	require.Equal(t, http.StatusOK, rc.json("GET", "/api/plugins/telemetry/DEVICE/"+d.ID+"/values/attributes/SHARED_SCOPE?keys=interval", nil, &attrs))
	require.Equal(t, float64(10), attrs[0]["value"])
	require.Equal(t, http.StatusConflict, rc.json("POST", "/api/plugins/rpc/twoway/"+d.ID, map[string]any{"method": "x", "params": map[string]any{}, "timeout": 100}, nil),
		"no RPC subscription: 409, as ThingsBoard 4.3 answers (NO_ACTIVE_CONNECTION)")

	var newDev map[string]any
	require.Equal(t, http.StatusOK, rc.json("POST", "/api/device?accessToken=MYTOKEN", map[string]any{"name": "made-by-rest"}, &newDev))
	connectTCP(t, s, "x", "MYTOKEN", "")
	require.Equal(t, http.StatusBadRequest, rc.json("POST", "/api/device", map[string]any{"name": "made-by-rest"}, nil), "duplicate name")
	require.Equal(t, http.StatusBadRequest, rc.json("DELETE", "/api/otaPackage/"+pkg.ID.ID, nil, nil), "assigned package")
	require.Equal(t, http.StatusOK, rc.json("DELETE", "/api/device/"+d.ID, nil, nil))
	c.closed(t)
	require.Equal(t, http.StatusNotFound, rc.json("GET", "/api/device/"+d.ID, nil, nil))
}

package rest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
)

// The REST subset, on ThingsBoard's own paths and with its JSON shapes, so a
// client written for ThingsBoard (tbsim ota push) drives both.

const tenantID = "13814000-1dd2-11b2-8080-808080808080"

type entityID struct {
	EntityType string `json:"entityType"`
	ID         string `json:"id"`
}

func eid(kind, id string) *entityID {
	if id == "" {
		return nil
	}
	return &entityID{EntityType: kind, ID: id}
}

type deviceJSON struct {
	ID              *entityID       `json:"id,omitempty"`
	CreatedTime     int64           `json:"createdTime,omitempty"`
	TenantID        *entityID       `json:"tenantId,omitempty"`
	Name            string          `json:"name"`
	Type            string          `json:"type,omitempty"`
	Label           *string         `json:"label"`
	DeviceProfileID *entityID       `json:"deviceProfileId,omitempty"`
	FirmwareID      *entityID       `json:"firmwareId"`
	SoftwareID      *entityID       `json:"softwareId"`
	AdditionalInfo  json.RawMessage `json:"additionalInfo"`
}

func toDeviceJSON(d core.Device) deviceJSON {
	return deviceJSON{ID: eid("DEVICE", d.ID), CreatedTime: d.CreatedTime, TenantID: eid("TENANT", tenantID),
		Name: d.Name, Type: d.Type, DeviceProfileID: eid("DEVICE_PROFILE", d.ProfileID), FirmwareID: eid("OTA_PACKAGE", d.FirmwareID),
		AdditionalInfo: json.RawMessage("null")}
}

type provisionConfig struct {
	Type                  string  `json:"type"`
	ProvisionDeviceSecret *string `json:"provisionDeviceSecret"`
}

type profileJSON struct {
	ID                 *entityID `json:"id,omitempty"`
	CreatedTime        int64     `json:"createdTime,omitempty"`
	TenantID           *entityID `json:"tenantId,omitempty"`
	Name               string    `json:"name"`
	Default            bool      `json:"default"`
	Type               string    `json:"type"`
	TransportType      string    `json:"transportType"`
	ProvisionType      string    `json:"provisionType"`
	ProvisionDeviceKey *string   `json:"provisionDeviceKey"`
	FirmwareID         *entityID `json:"firmwareId"`
	SoftwareID         *entityID `json:"softwareId"`
	ProfileData        struct {
		Configuration          map[string]string `json:"configuration"`
		TransportConfiguration map[string]string `json:"transportConfiguration"`
		ProvisionConfiguration provisionConfig   `json:"provisionConfiguration"`
	} `json:"profileData"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toProfileJSON(p core.Profile) profileJSON {
	j := profileJSON{ID: eid("DEVICE_PROFILE", p.ID), CreatedTime: p.CreatedTime, TenantID: eid("TENANT", tenantID),
		Name: p.Name, Default: p.Default, Type: "DEFAULT", TransportType: "DEFAULT", ProvisionType: p.ProvisionType,
		ProvisionDeviceKey: strPtr(p.ProvisionKey), FirmwareID: eid("OTA_PACKAGE", p.FirmwareID)}
	j.ProfileData.Configuration = map[string]string{"type": "DEFAULT"}
	j.ProfileData.TransportConfiguration = map[string]string{"type": "DEFAULT"}
	j.ProfileData.ProvisionConfiguration = provisionConfig{Type: p.ProvisionType, ProvisionDeviceSecret: strPtr(p.ProvisionSecret)}
	return j
}

type packageJSON struct {
	ID                *entityID       `json:"id,omitempty"`
	CreatedTime       int64           `json:"createdTime,omitempty"`
	TenantID          *entityID       `json:"tenantId,omitempty"`
	DeviceProfileID   *entityID       `json:"deviceProfileId"`
	Type              string          `json:"type"`
	Title             string          `json:"title"`
	Version           string          `json:"version"`
	Tag               *string         `json:"tag"`
	URL               *string         `json:"url"`
	HasData           bool            `json:"hasData"`
	FileName          *string         `json:"fileName"`
	ContentType       *string         `json:"contentType"`
	ChecksumAlgorithm *string         `json:"checksumAlgorithm"`
	Checksum          *string         `json:"checksum"`
	DataSize          *int64          `json:"dataSize"`
	AdditionalInfo    json.RawMessage `json:"additionalInfo"`
}

func toPackageJSON(p core.Package) packageJSON {
	j := packageJSON{ID: eid("OTA_PACKAGE", p.ID), CreatedTime: p.CreatedTime, TenantID: eid("TENANT", tenantID),
		DeviceProfileID: eid("DEVICE_PROFILE", p.ProfileID), Type: p.Type, Title: p.Title, Version: p.Version,
		Tag: strPtr(p.Tag), HasData: p.HasData, AdditionalInfo: json.RawMessage("{}")}
	if p.HasData {
		j.FileName, j.ContentType = strPtr(p.FileName), strPtr(p.ContentType)
		j.ChecksumAlgorithm, j.Checksum, j.DataSize = strPtr(p.Algorithm), strPtr(p.Checksum), &p.Size
	}
	return j
}

type page[T any] struct {
	Data          []T  `json:"data"`
	TotalPages    int  `json:"totalPages"`
	TotalElements int  `json:"totalElements"`
	HasNext       bool `json:"hasNext"`
}

func paginate[T any](r *http.Request, all []T) page[T] {
	size, _ := strconv.Atoi(r.URL.Query().Get("pageSize"))
	if size <= 0 {
		size = 10
	}
	n, _ := strconv.Atoi(r.URL.Query().Get("page"))
	start := min(n*size, len(all))
	end := min(start+size, len(all))
	pages := (len(all) + size - 1) / size
	return page[T]{Data: append([]T{}, all[start:end]...), TotalPages: pages, TotalElements: len(all), HasNext: end < len(all)}
}

// Options configure the REST handler.
type Options struct {
	// Tenant administrator for login (defaults tenant@thingsboard.org / tenant).
	User     string
	Password string
}

// handler serves the REST subset over a core.
type handler struct {
	c      *core.Core
	opts   Options
	tokens *loginTokens
}

// NewHandler returns the REST subset over c.
func NewHandler(c *core.Core, opts Options) http.Handler {
	if opts.User == "" {
		opts.User = "tenant@thingsboard.org"
	}
	if opts.Password == "" {
		opts.Password = "tenant"
	}
	h := &handler{c: c, opts: opts, tokens: &loginTokens{c: c, m: map[string]time.Time{}}}
	return h.routes()
}

func (h *handler) now() int64 { return h.c.Now().UnixMilli() }

// routes routes the REST subset.
func (h *handler) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/auth/login", h.login)
	mux.HandleFunc("POST /api/auth/token", h.refresh)
	auth := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, h.requireAuth(f)) }
	auth("POST /api/otaPackage", h.createPackage)
	auth("POST /api/otaPackage/{id}", h.uploadPackage)
	auth("GET /api/otaPackages", h.listPackages)
	auth("GET /api/otaPackage/{id}", h.getPackage)
	// /info/{id} and /{id}/download overlap as patterns: one route, two shapes.
	auth("GET /api/otaPackage/{a}/{b}", func(w http.ResponseWriter, r *http.Request) {
		switch a, b := r.PathValue("a"), r.PathValue("b"); {
		case a == "info":
			h.writePackage(w, b)
		case b == "download":
			h.downloadPackage(w, a)
		default:
			h.writeError(w, core.ErrNotFound)
		}
	})
	auth("DELETE /api/otaPackage/{id}", h.deletePackage)
	auth("GET /api/device/{id}", h.getDevice)
	auth("POST /api/device", h.saveDevice)
	auth("DELETE /api/device/{id}", h.deleteDevice)
	auth("GET /api/device/{id}/credentials", h.getCredentials)
	auth("GET /api/tenant/devices", h.listDevices)
	auth("GET /api/deviceProfile/{id}", h.getProfile)
	auth("POST /api/deviceProfile", h.saveProfile)
	auth("GET /api/deviceProfiles", h.listProfiles)
	auth("GET /api/deviceProfileInfo/default", h.defaultProfile)
	auth("GET /api/plugins/telemetry/DEVICE/{id}/values/timeseries", h.getTimeseries)
	auth("GET /api/plugins/telemetry/DEVICE/{id}/values/attributes/{scope}", h.getAttributes)
	auth("GET /api/plugins/telemetry/DEVICE/{id}/values/attributes", h.getAttributes)
	auth("POST /api/plugins/telemetry/DEVICE/{id}/attributes/{scope}", h.postAttributes)
	auth("POST /api/plugins/telemetry/DEVICE/{id}/{scope}", h.postAttributes)
	auth("POST /api/plugins/rpc/{kind}/{id}", h.postRPC)
	auth("GET /api/tbsim/stats", h.getStats)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers like ThingsBoard's ThingsboardErrorResponse.
func (h *handler) writeError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, 2
	switch {
	case errors.Is(err, core.ErrNotFound):
		status, code = http.StatusNotFound, 32
	case errors.Is(err, core.ErrInvalid), errors.Is(err, core.ErrConflict):
		status, code = http.StatusBadRequest, 31
	case errors.Is(err, core.ErrTimeout), errors.Is(err, core.ErrOffline):
		status, code = http.StatusGatewayTimeout, 2
	}
	msg := err.Error()
	for _, e := range []error{core.ErrNotFound, core.ErrInvalid, core.ErrConflict} {
		msg = strings.TrimPrefix(msg, e.Error()+": ")
	}
	writeJSON(w, status, map[string]any{"status": status, "message": msg, "errorCode": code, "timestamp": h.now()})
}

func (h *handler) requireAuth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("X-Authorization"), "Bearer ")
		if !ok || !h.tokens.valid(tok) {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"status": 401, "message": "Authentication failed", "errorCode": 10, "timestamp": h.now()})
			return
		}
		next(w, r)
	})
}

func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		return errors.Join(core.ErrInvalid, err)
	}
	return nil
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	var req struct{ Username, Password string }
	if err := decodeBody(r, &req); err != nil || req.Username != h.opts.User || req.Password != h.opts.Password {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"status": 401, "message": "Invalid username or password", "errorCode": 10, "timestamp": h.now()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": h.tokens.issue(), "refreshToken": h.tokens.issue()})
}

func (h *handler) refresh(w http.ResponseWriter, r *http.Request) {
	var req struct{ RefreshToken string }
	if err := decodeBody(r, &req); err != nil || !h.tokens.valid(req.RefreshToken) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"status": 401, "message": "Authentication failed", "errorCode": 10, "timestamp": h.now()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": h.tokens.issue(), "refreshToken": h.tokens.issue()})
}

func (h *handler) createPackage(w http.ResponseWriter, r *http.Request) {
	var req packageJSON
	if err := decodeBody(r, &req); err != nil {
		h.writeError(w, err)
		return
	}
	spec := core.PackageSpec{Title: req.Title, Version: req.Version}
	if req.DeviceProfileID != nil {
		spec.ProfileID = req.DeviceProfileID.ID
	}
	if req.Tag != nil {
		spec.Tag = *req.Tag
	}
	p, err := h.c.CreatePackage(spec)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toPackageJSON(p))
}

func (h *handler) uploadPackage(w http.ResponseWriter, r *http.Request) {
	alg := r.URL.Query().Get("checksumAlgorithm")
	if alg == "" {
		h.writeError(w, errors.Join(core.ErrInvalid, errors.New("Required request parameter 'checksumAlgorithm' is not present")))
		return
	}
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		h.writeError(w, errors.Join(core.ErrInvalid, err))
		return
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		h.writeError(w, errors.Join(core.ErrInvalid, errors.New("Required part 'file' is not present")))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		h.writeError(w, err)
		return
	}
	p, err := h.c.UploadPackage(r.PathValue("id"), data, alg, r.URL.Query().Get("checksum"), hdr.Filename, hdr.Header.Get("Content-Type"))
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toPackageJSON(p))
}

func (h *handler) listPackages(w http.ResponseWriter, r *http.Request) {
	var out []packageJSON
	for _, p := range h.c.Packages() {
		out = append(out, toPackageJSON(p))
	}
	writeJSON(w, http.StatusOK, paginate(r, out))
}

func (h *handler) getPackage(w http.ResponseWriter, r *http.Request) {
	h.writePackage(w, r.PathValue("id"))
}

func (h *handler) writePackage(w http.ResponseWriter, id string) {
	p, ok := h.c.Package(id)
	if !ok {
		h.writeError(w, core.ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, toPackageJSON(p))
}

func (h *handler) downloadPackage(w http.ResponseWriter, id string) {
	p, ok := h.c.Package(id)
	data, ok2 := h.c.PackageData(p.ID)
	if !ok || !ok2 {
		h.writeError(w, core.ErrNotFound)
		return
	}
	w.Header().Set("Content-Type", p.ContentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+p.FileName+`"`)
	w.Write(data)
}

func (h *handler) deletePackage(w http.ResponseWriter, r *http.Request) {
	if err := h.c.DeletePackage(r.PathValue("id")); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *handler) getDevice(w http.ResponseWriter, r *http.Request) {
	d, ok := h.c.Device(r.PathValue("id"))
	if !ok {
		h.writeError(w, core.ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, toDeviceJSON(d))
}

// saveDevice creates (no id) or updates a device, as POST /api/device does.
func (h *handler) saveDevice(w http.ResponseWriter, r *http.Request) {
	var req deviceJSON
	if err := decodeBody(r, &req); err != nil {
		h.writeError(w, err)
		return
	}
	var d core.Device
	var err error
	if req.ID == nil {
		spec := core.DeviceSpec{Name: req.Name}
		if req.DeviceProfileID != nil {
			spec.ProfileID = req.DeviceProfileID.ID
		} else if req.Type != "" {
			for _, p := range h.c.Profiles() {
				if p.Name == req.Type {
					spec.ProfileID = p.ID
				}
			}
		}
		if tok := r.URL.Query().Get("accessToken"); tok != "" {
			spec.Credentials = core.Credentials{Type: tbapi.CredAccessToken, Token: tok}
		}
		d, err = h.c.CreateDevice(spec)
		if err == nil && req.FirmwareID != nil {
			err = h.c.AssignDeviceFirmware(d.ID, req.FirmwareID.ID)
			d, _ = h.c.Device(d.ID)
		}
	} else {
		cur, ok := h.c.Device(req.ID.ID)
		if !ok {
			h.writeError(w, core.ErrNotFound)
			return
		}
		cur.Name = req.Name
		cur.FirmwareID = ""
		if req.FirmwareID != nil {
			cur.FirmwareID = req.FirmwareID.ID
		}
		d, err = h.c.UpdateDevice(cur)
	}
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toDeviceJSON(d))
}

func (h *handler) deleteDevice(w http.ResponseWriter, r *http.Request) {
	if err := h.c.DeleteDevice(r.PathValue("id")); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *handler) getCredentials(w http.ResponseWriter, r *http.Request) {
	d, ok := h.c.Device(r.PathValue("id"))
	if !ok {
		h.writeError(w, core.ErrNotFound)
		return
	}
	out := map[string]any{"id": eid("DEVICE_CREDENTIALS", d.ID), "deviceId": eid("DEVICE", d.ID),
		"credentialsType": d.Credentials.Type, "credentialsId": d.Credentials.Token, "credentialsValue": nil}
	if d.Credentials.Type == tbapi.CredMQTTBasic {
		v, _ := json.Marshal(map[string]string{"clientId": d.Credentials.ClientID, "userName": d.Credentials.UserName, "password": d.Credentials.Password})
		out["credentialsId"], out["credentialsValue"] = nil, string(v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) listDevices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if name := q.Get("deviceName"); name != "" {
		d, ok := h.c.DeviceByName(name)
		if !ok {
			h.writeError(w, core.ErrNotFound)
			return
		}
		writeJSON(w, http.StatusOK, toDeviceJSON(d))
		return
	}
	var out []deviceJSON
	for _, d := range h.c.Devices() {
		if t := q.Get("type"); t != "" && d.Type != t {
			continue
		}
		if ts := q.Get("textSearch"); ts != "" && !strings.Contains(strings.ToLower(d.Name), strings.ToLower(ts)) {
			continue
		}
		out = append(out, toDeviceJSON(d))
	}
	writeJSON(w, http.StatusOK, paginate(r, out))
}

func (h *handler) getProfile(w http.ResponseWriter, r *http.Request) {
	p, ok := h.c.Profile(r.PathValue("id"))
	if !ok {
		h.writeError(w, core.ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, toProfileJSON(p))
}

func (h *handler) saveProfile(w http.ResponseWriter, r *http.Request) {
	var req profileJSON
	if err := decodeBody(r, &req); err != nil {
		h.writeError(w, err)
		return
	}
	ptype := req.ProvisionType
	if ptype == "" {
		ptype = req.ProfileData.ProvisionConfiguration.Type
	}
	var secret, key string
	if req.ProfileData.ProvisionConfiguration.ProvisionDeviceSecret != nil {
		secret = *req.ProfileData.ProvisionConfiguration.ProvisionDeviceSecret
	}
	if req.ProvisionDeviceKey != nil {
		key = *req.ProvisionDeviceKey
	}
	var p core.Profile
	var err error
	if req.ID == nil {
		p, err = h.c.CreateProfile(core.ProfileSpec{Name: req.Name, ProvisionType: ptype, ProvisionKey: key, ProvisionSecret: secret})
		if err == nil && req.FirmwareID != nil {
			err = h.c.AssignProfileFirmware(p.ID, req.FirmwareID.ID)
			p, _ = h.c.Profile(p.ID)
		}
	} else {
		cur, ok := h.c.Profile(req.ID.ID)
		if !ok {
			h.writeError(w, core.ErrNotFound)
			return
		}
		cur.Name, cur.ProvisionKey, cur.ProvisionSecret = req.Name, key, secret
		if ptype != "" {
			cur.ProvisionType = ptype
		}
		cur.FirmwareID = ""
		if req.FirmwareID != nil {
			cur.FirmwareID = req.FirmwareID.ID
		}
		p, err = h.c.UpdateProfile(cur)
	}
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toProfileJSON(p))
}

func (h *handler) listProfiles(w http.ResponseWriter, r *http.Request) {
	var out []profileJSON
	for _, p := range h.c.Profiles() {
		out = append(out, toProfileJSON(p))
	}
	writeJSON(w, http.StatusOK, paginate(r, out))
}

func (h *handler) defaultProfile(w http.ResponseWriter, r *http.Request) {
	p, _ := h.c.DefaultProfile()
	writeJSON(w, http.StatusOK, map[string]any{"id": eid("DEVICE_PROFILE", p.ID), "name": p.Name, "type": "DEFAULT", "transportType": "DEFAULT"})
}

func keysParam(r *http.Request) map[string]bool {
	k := r.URL.Query().Get("keys")
	if k == "" {
		return nil
	}
	out := map[string]bool{}
	for _, p := range strings.Split(k, ",") {
		out[p] = true
	}
	return out
}

// restValue writes a value as ThingsBoard's REST does: strings unless
// useStrictDataTypes=true.
func restValue(v tbapi.Value, strict bool) any {
	if strict {
		return json.RawMessage(tbapi.AppendValue(nil, v))
	}
	if t, ok := v.Text(); ok {
		return t
	}
	return string(tbapi.AppendValue(nil, v))
}

func (h *handler) getTimeseries(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := h.c.Device(id); !ok {
		h.writeError(w, core.ErrNotFound)
		return
	}
	keys, strict := keysParam(r), r.URL.Query().Get("useStrictDataTypes") == "true"
	out := map[string][]map[string]any{}
	for k, v := range h.c.Latest(id) {
		if keys == nil || keys[k] {
			out[k] = []map[string]any{{"ts": v.Ts, "value": restValue(v.Value, strict)}}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) getAttributes(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := h.c.Device(id); !ok {
		h.writeError(w, core.ErrNotFound)
		return
	}
	scopes := []string{core.ClientScope, core.SharedScope, core.ServerScope}
	if sc := r.PathValue("scope"); sc != "" {
		scopes = []string{sc}
	}
	keys := keysParam(r)
	out := []map[string]any{}
	for _, sc := range scopes {
		attrs := h.c.Attributes(id, sc)
		for _, k := range slices.Sorted(maps.Keys(attrs)) {
			if keys == nil || keys[k] {
				out = append(out, map[string]any{"key": k, "value": json.RawMessage(tbapi.AppendValue(nil, attrs[k].Value)), "lastUpdateTs": attrs[k].Ts})
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) postAttributes(w http.ResponseWriter, r *http.Request) {
	id, scope := r.PathValue("id"), r.PathValue("scope")
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		h.writeError(w, err)
		return
	}
	ms, err := tbapi.DecodeClientAttributes(body)
	if err != nil {
		h.writeError(w, errors.Join(core.ErrInvalid, err))
		return
	}
	switch scope {
	case core.SharedScope:
		err = h.c.SetSharedAttributes(id, ms)
	case core.ServerScope:
		err = h.c.SetServerAttributes(id, ms)
	default:
		err = errors.Join(core.ErrInvalid, errors.New("unsupported scope "+scope))
	}
	if err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *handler) postRPC(w http.ResponseWriter, r *http.Request) {
	kind, id := r.PathValue("kind"), r.PathValue("id")
	if kind != "oneway" && kind != "twoway" {
		h.writeError(w, core.ErrNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		h.writeError(w, err)
		return
	}
	req, err := tbapi.DecodeRPCRequest(body)
	if err != nil {
		h.writeError(w, errors.Join(core.ErrInvalid, err))
		return
	}
	timeout := 10 * time.Second
	if obj, err := tbapi.Parse(body); err == nil {
		if t, ok := obj.Get("timeout"); ok {
			if ms, ok := t.Int64(); ok && ms > 0 {
				timeout = time.Duration(ms) * time.Millisecond
			}
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout+time.Second)
	defer cancel()
	resp, err := h.c.SendRPC(ctx, id, req.Method, req.Params, kind == "twoway", timeout)
	if err != nil {
		if errors.Is(err, core.ErrOffline) || errors.Is(err, core.ErrTimeout) {
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		h.writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(resp)
}

func (h *handler) getStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.c.Stats())
}

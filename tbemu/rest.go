package tbemu

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tbsim/tbsim/firmware/tbapi"
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

func toDeviceJSON(d Device) deviceJSON {
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

func toProfileJSON(p Profile) profileJSON {
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

func toPackageJSON(p Package) packageJSON {
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

// restHandler routes the REST subset.
func (s *Server) restHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/auth/login", s.login)
	mux.HandleFunc("POST /api/auth/token", s.refresh)
	auth := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.requireAuth(h)) }
	auth("POST /api/otaPackage", s.createPackage)
	auth("POST /api/otaPackage/{id}", s.uploadPackage)
	auth("GET /api/otaPackages", s.listPackages)
	auth("GET /api/otaPackage/{id}", s.getPackage)
	// /info/{id} and /{id}/download overlap as patterns: one route, two shapes.
	auth("GET /api/otaPackage/{a}/{b}", func(w http.ResponseWriter, r *http.Request) {
		switch a, b := r.PathValue("a"), r.PathValue("b"); {
		case a == "info":
			s.writePackage(w, b)
		case b == "download":
			s.downloadPackage(w, a)
		default:
			writeError(w, ErrNotFound)
		}
	})
	auth("DELETE /api/otaPackage/{id}", s.deletePackage)
	auth("GET /api/device/{id}", s.getDevice)
	auth("POST /api/device", s.saveDevice)
	auth("DELETE /api/device/{id}", s.deleteDevice)
	auth("GET /api/device/{id}/credentials", s.getCredentials)
	auth("GET /api/tenant/devices", s.listDevices)
	auth("GET /api/deviceProfile/{id}", s.getProfile)
	auth("POST /api/deviceProfile", s.saveProfile)
	auth("GET /api/deviceProfiles", s.listProfiles)
	auth("GET /api/deviceProfileInfo/default", s.defaultProfile)
	auth("GET /api/plugins/telemetry/DEVICE/{id}/values/timeseries", s.getTimeseries)
	auth("GET /api/plugins/telemetry/DEVICE/{id}/values/attributes/{scope}", s.getAttributes)
	auth("GET /api/plugins/telemetry/DEVICE/{id}/values/attributes", s.getAttributes)
	auth("POST /api/plugins/telemetry/DEVICE/{id}/attributes/{scope}", s.postAttributes)
	auth("POST /api/plugins/telemetry/DEVICE/{id}/{scope}", s.postAttributes)
	auth("POST /api/plugins/rpc/{kind}/{id}", s.postRPC)
	auth("GET /api/tbsim/stats", s.getStats)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers like ThingsBoard's ThingsboardErrorResponse.
func writeError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, 2
	switch {
	case errors.Is(err, ErrNotFound):
		status, code = http.StatusNotFound, 32
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrConflict):
		status, code = http.StatusBadRequest, 31
	case errors.Is(err, ErrTimeout), errors.Is(err, ErrOffline):
		status, code = http.StatusGatewayTimeout, 2
	}
	msg := err.Error()
	for _, e := range []error{ErrNotFound, ErrInvalid, ErrConflict} {
		msg = strings.TrimPrefix(msg, e.Error()+": ")
	}
	writeJSON(w, status, map[string]any{"status": status, "message": msg, "errorCode": code, "timestamp": nowMs()})
}

func (s *Server) requireAuth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("X-Authorization"), "Bearer ")
		if !ok || !s.sessions.valid(tok) {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"status": 401, "message": "Authentication failed", "errorCode": 10, "timestamp": nowMs()})
			return
		}
		h(w, r)
	})
}

func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		return errors.Join(ErrInvalid, err)
	}
	return nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req struct{ Username, Password string }
	if err := decodeBody(r, &req); err != nil || req.Username != s.opts.TenantUser || req.Password != s.opts.TenantPassword {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"status": 401, "message": "Invalid username or password", "errorCode": 10, "timestamp": nowMs()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": s.sessions.issue(), "refreshToken": s.sessions.issue()})
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	var req struct{ RefreshToken string }
	if err := decodeBody(r, &req); err != nil || !s.sessions.valid(req.RefreshToken) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"status": 401, "message": "Authentication failed", "errorCode": 10, "timestamp": nowMs()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": s.sessions.issue(), "refreshToken": s.sessions.issue()})
}

func (s *Server) createPackage(w http.ResponseWriter, r *http.Request) {
	var req packageJSON
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	spec := PackageSpec{Title: req.Title, Version: req.Version}
	if req.DeviceProfileID != nil {
		spec.ProfileID = req.DeviceProfileID.ID
	}
	if req.Tag != nil {
		spec.Tag = *req.Tag
	}
	p, err := s.CreatePackage(spec)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toPackageJSON(p))
}

func (s *Server) uploadPackage(w http.ResponseWriter, r *http.Request) {
	alg := r.URL.Query().Get("checksumAlgorithm")
	if alg == "" {
		writeError(w, errors.Join(ErrInvalid, errors.New("Required request parameter 'checksumAlgorithm' is not present")))
		return
	}
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		writeError(w, errors.Join(ErrInvalid, err))
		return
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		writeError(w, errors.Join(ErrInvalid, errors.New("Required part 'file' is not present")))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		writeError(w, err)
		return
	}
	p, err := s.UploadPackage(r.PathValue("id"), data, alg, r.URL.Query().Get("checksum"), hdr.Filename, hdr.Header.Get("Content-Type"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toPackageJSON(p))
}

func (s *Server) listPackages(w http.ResponseWriter, r *http.Request) {
	var out []packageJSON
	for _, p := range s.Packages() {
		out = append(out, toPackageJSON(p))
	}
	writeJSON(w, http.StatusOK, paginate(r, out))
}

func (s *Server) getPackage(w http.ResponseWriter, r *http.Request) {
	s.writePackage(w, r.PathValue("id"))
}

func (s *Server) writePackage(w http.ResponseWriter, id string) {
	p, ok := s.Package(id)
	if !ok {
		writeError(w, ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, toPackageJSON(p))
}

func (s *Server) downloadPackage(w http.ResponseWriter, id string) {
	p, ok := s.Package(id)
	data, ok2 := s.packageData(p.ID)
	if !ok || !ok2 {
		writeError(w, ErrNotFound)
		return
	}
	w.Header().Set("Content-Type", p.ContentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+p.FileName+`"`)
	w.Write(data)
}

func (s *Server) deletePackage(w http.ResponseWriter, r *http.Request) {
	if err := s.DeletePackage(r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request) {
	d, ok := s.Device(r.PathValue("id"))
	if !ok {
		writeError(w, ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, toDeviceJSON(d))
}

// saveDevice creates (no id) or updates a device, as POST /api/device does.
func (s *Server) saveDevice(w http.ResponseWriter, r *http.Request) {
	var req deviceJSON
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	var d Device
	var err error
	if req.ID == nil {
		spec := DeviceSpec{Name: req.Name}
		if req.DeviceProfileID != nil {
			spec.ProfileID = req.DeviceProfileID.ID
		} else if req.Type != "" {
			for _, p := range s.Profiles() {
				if p.Name == req.Type {
					spec.ProfileID = p.ID
				}
			}
		}
		if tok := r.URL.Query().Get("accessToken"); tok != "" {
			spec.Credentials = Credentials{Type: tbapi.CredAccessToken, Token: tok}
		}
		d, err = s.CreateDevice(spec)
		if err == nil && req.FirmwareID != nil {
			err = s.AssignDeviceFirmware(d.ID, req.FirmwareID.ID)
			d, _ = s.Device(d.ID)
		}
	} else {
		cur, ok := s.Device(req.ID.ID)
		if !ok {
			writeError(w, ErrNotFound)
			return
		}
		cur.Name = req.Name
		cur.FirmwareID = ""
		if req.FirmwareID != nil {
			cur.FirmwareID = req.FirmwareID.ID
		}
		d, err = s.UpdateDevice(cur)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toDeviceJSON(d))
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request) {
	if err := s.DeleteDevice(r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) getCredentials(w http.ResponseWriter, r *http.Request) {
	d, ok := s.Device(r.PathValue("id"))
	if !ok {
		writeError(w, ErrNotFound)
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

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if name := q.Get("deviceName"); name != "" {
		d, ok := s.DeviceByName(name)
		if !ok {
			writeError(w, ErrNotFound)
			return
		}
		writeJSON(w, http.StatusOK, toDeviceJSON(d))
		return
	}
	var out []deviceJSON
	for _, d := range s.Devices() {
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

func (s *Server) getProfile(w http.ResponseWriter, r *http.Request) {
	p, ok := s.Profile(r.PathValue("id"))
	if !ok {
		writeError(w, ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, toProfileJSON(p))
}

func (s *Server) saveProfile(w http.ResponseWriter, r *http.Request) {
	var req profileJSON
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
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
	var p Profile
	var err error
	if req.ID == nil {
		p, err = s.CreateProfile(ProfileSpec{Name: req.Name, ProvisionType: ptype, ProvisionKey: key, ProvisionSecret: secret})
		if err == nil && req.FirmwareID != nil {
			err = s.AssignProfileFirmware(p.ID, req.FirmwareID.ID)
			p, _ = s.Profile(p.ID)
		}
	} else {
		cur, ok := s.Profile(req.ID.ID)
		if !ok {
			writeError(w, ErrNotFound)
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
		p, err = s.UpdateProfile(cur)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toProfileJSON(p))
}

func (s *Server) listProfiles(w http.ResponseWriter, r *http.Request) {
	var out []profileJSON
	for _, p := range s.Profiles() {
		out = append(out, toProfileJSON(p))
	}
	writeJSON(w, http.StatusOK, paginate(r, out))
}

func (s *Server) defaultProfile(w http.ResponseWriter, r *http.Request) {
	p, _ := s.DefaultProfile()
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

func (s *Server) getTimeseries(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.Device(id); !ok {
		writeError(w, ErrNotFound)
		return
	}
	keys, strict := keysParam(r), r.URL.Query().Get("useStrictDataTypes") == "true"
	out := map[string][]map[string]any{}
	for k, v := range s.Latest(id) {
		if keys == nil || keys[k] {
			out[k] = []map[string]any{{"ts": v.Ts, "value": restValue(v.Value, strict)}}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getAttributes(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.Device(id); !ok {
		writeError(w, ErrNotFound)
		return
	}
	scopes := []string{ClientScope, SharedScope, ServerScope}
	if sc := r.PathValue("scope"); sc != "" {
		scopes = []string{sc}
	}
	keys := keysParam(r)
	out := []map[string]any{}
	for _, sc := range scopes {
		attrs := s.Attributes(id, sc)
		for _, k := range sortedKeys(attrs) {
			if keys == nil || keys[k] {
				out = append(out, map[string]any{"key": k, "value": json.RawMessage(tbapi.AppendValue(nil, attrs[k].Value)), "lastUpdateTs": attrs[k].Ts})
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) postAttributes(w http.ResponseWriter, r *http.Request) {
	id, scope := r.PathValue("id"), r.PathValue("scope")
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, err)
		return
	}
	ms, err := tbapi.DecodeClientAttributes(body)
	if err != nil {
		writeError(w, errors.Join(ErrInvalid, err))
		return
	}
	switch scope {
	case SharedScope:
		err = s.SetSharedAttributes(id, ms)
	case ServerScope:
		err = s.SetServerAttributes(id, ms)
	default:
		err = errors.Join(ErrInvalid, errors.New("unsupported scope "+scope))
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) postRPC(w http.ResponseWriter, r *http.Request) {
	kind, id := r.PathValue("kind"), r.PathValue("id")
	if kind != "oneway" && kind != "twoway" {
		writeError(w, ErrNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, err)
		return
	}
	req, err := tbapi.DecodeRPCRequest(body)
	if err != nil {
		writeError(w, errors.Join(ErrInvalid, err))
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
	resp, err := s.SendRPC(ctx, id, req.Method, req.Params, kind == "twoway", timeout)
	if err != nil {
		if errors.Is(err, ErrOffline) || errors.Is(err, ErrTimeout) {
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(resp)
}

// Stats is GET /api/tbsim/stats, for the CLI's live view.
type Stats struct {
	Devices         int                       `json:"devices"`
	Connected       int                       `json:"connected"`
	Connects        int64                     `json:"connects"`
	Refused         int64                     `json:"refused"`
	Provisioned     int64                     `json:"provisioned"`
	ProvisionFailed int64                     `json:"provisionFailed"`
	TelemetryMsgs   int64                     `json:"telemetryMessages"`
	ChunkBytes      int64                     `json:"chunkBytes"`
	RateLimited     int64                     `json:"rateLimited"`
	ParseErrors     int64                     `json:"parseErrors"`
	OTA             map[string]map[string]int `json:"ota"` // package id -> fw_state -> devices
}

// Stats returns the emulator's counters.
func (s *Server) Stats() Stats {
	s.connsMu.Lock()
	connected := len(s.byDevice)
	s.connsMu.Unlock()
	return Stats{
		Devices: len(s.Devices()), Connected: connected,
		Connects: s.stats.connects.Load(), Refused: s.stats.refused.Load(),
		Provisioned: s.stats.provisioned.Load(), ProvisionFailed: s.stats.provisionFailed.Load(),
		TelemetryMsgs: s.stats.telemetryMsgs.Load(), ChunkBytes: s.stats.chunkBytes.Load(),
		RateLimited: s.stats.rateLimited.Load(), ParseErrors: s.stats.parseErrors.Load(),
		OTA: s.OTAProgress(),
	}
}

func (s *Server) getStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

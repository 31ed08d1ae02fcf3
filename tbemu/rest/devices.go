package rest

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
)

func (h *handler) getDevice(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r, "id")
	if !ok {
		return
	}
	d, ok := h.c.Device(id)
	if !ok {
		h.writeError(w, core.ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, toDeviceJSON(d))
}

// saveDevice creates (no id) or updates a device, as POST /api/device does.
func (h *handler) saveDevice(w http.ResponseWriter, r *http.Request) {
	var req deviceJSON
	if err := h.decodeBody(w, r, &req); err != nil {
		h.writeError(w, err)
		return
	}
	for _, ref := range []*entityID{req.ID, req.DeviceProfileID, req.FirmwareID} {
		if ref != nil {
			if _, ok := h.checkID(w, ref.ID); !ok {
				return
			}
		}
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
	id, ok := h.pathID(w, r, "id")
	if !ok {
		return
	}
	if err := h.c.DeleteDevice(id); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *handler) getCredentials(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r, "id")
	if !ok {
		return
	}
	d, ok := h.c.Device(id)
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
	size, pg, ok := h.pageLink(w, r)
	if !ok {
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
	writeJSON(w, http.StatusOK, paginate(out, size, pg))
}

func (h *handler) getProfile(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r, "id")
	if !ok {
		return
	}
	p, ok := h.c.Profile(id)
	if !ok {
		h.writeError(w, core.ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, toProfileJSON(p))
}

func (h *handler) saveProfile(w http.ResponseWriter, r *http.Request) {
	var req profileJSON
	if err := h.decodeBody(w, r, &req); err != nil {
		h.writeError(w, err)
		return
	}
	for _, ref := range []*entityID{req.ID, req.FirmwareID} {
		if ref != nil {
			if _, ok := h.checkID(w, ref.ID); !ok {
				return
			}
		}
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
	size, pg, ok := h.pageLink(w, r)
	if !ok {
		return
	}
	var out []profileJSON
	for _, p := range h.c.Profiles() {
		out = append(out, toProfileJSON(p))
	}
	writeJSON(w, http.StatusOK, paginate(out, size, pg))
}

func (h *handler) defaultProfile(w http.ResponseWriter, r *http.Request) {
	p, _ := h.c.DefaultProfile()
	writeJSON(w, http.StatusOK, map[string]any{"id": eid("DEVICE_PROFILE", p.ID), "name": p.Name, "type": "DEFAULT", "transportType": "DEFAULT"})
}

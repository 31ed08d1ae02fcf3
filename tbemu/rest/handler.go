package rest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tbsim/tbsim/tbemu/core"
)

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

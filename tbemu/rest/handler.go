package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/tbsim/tbsim/tbemu/core"
)

// Options configure the REST handler.
type Options struct {
	// Tenant administrator for login (defaults tenant@thingsboard.org / tenant).
	User     string
	Password string
	// MaxBodySize bounds a JSON request body (default 1 MiB); a larger one
	// gets 413. Package uploads are bounded by the core's MaxPackageSize.
	MaxBodySize int64
	// LoginFailures failed logins per LoginWindow are allowed from one
	// address (defaults 10 per minute); beyond them every login from it,
	// right or wrong, gets 429 until the window has refilled a little.
	LoginFailures int
	LoginWindow   time.Duration
	// Stats, if set, is the body of GET /api/tbsim/stats (default: the
	// core's Stats); the server adds its listeners' figures this way.
	Stats  func() any
	Logger *slog.Logger // nil: discard
}

// handler serves the REST subset over a core.
type handler struct {
	c      *core.Core
	opts   Options
	log    *slog.Logger
	tokens *loginTokens
	logins *loginLimiter
}

// NewHandler returns the REST subset over c.
func NewHandler(c *core.Core, opts Options) http.Handler {
	if opts.User == "" {
		opts.User = "tenant@thingsboard.org"
	}
	if opts.Password == "" {
		opts.Password = "tenant"
	}
	if opts.MaxBodySize <= 0 {
		opts.MaxBodySize = 1 << 20
	}
	if opts.LoginFailures <= 0 {
		opts.LoginFailures = 10
	}
	if opts.LoginWindow <= 0 {
		opts.LoginWindow = time.Minute
	}
	if opts.Stats == nil {
		opts.Stats = func() any { return c.Stats() }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &handler{c: c, opts: opts, log: opts.Logger, tokens: newLoginTokens(c),
		logins: newLoginLimiter(c, opts.LoginFailures, opts.LoginWindow)}
	return h.recover(h.routes())
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
	auth("DELETE /api/plugins/telemetry/DEVICE/{id}/{scope}", h.deleteAttributes)
	auth("POST /api/plugins/rpc/{kind}/{id}", h.postRPC)
	auth("GET /api/tbsim/stats", h.getStats)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// ThingsBoard's error codes (ThingsboardErrorCode).
const (
	codeGeneral         = 2
	codeAuthentication  = 10
	codeJWTTokenExpired = 11
	codeBadRequest      = 31
	codeItemNotFound    = 32
	codeTooManyRequests = 33
)

// errorBody is ThingsboardErrorResponse: every error answer has this shape.
type errorBody struct {
	Status    int    `json:"status"`
	Message   string `json:"message"`
	ErrorCode int    `json:"errorCode"`
	Timestamp int64  `json:"timestamp"`
}

func (h *handler) fail(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, errorBody{status, msg, code, h.now()})
}

// badRequest is a 400 with ThingsBoard's BAD_REQUEST_PARAMS code.
func (h *handler) badRequest(w http.ResponseWriter, msg string) {
	h.fail(w, http.StatusBadRequest, codeBadRequest, msg)
}

// writeError answers an error of the core or of a request body as
// ThingsBoard's ThingsboardErrorResponseHandler does.
func (h *handler) writeError(w http.ResponseWriter, err error) {
	var tooLarge *core.TooLargeError
	var bodyTooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		h.payloadTooLarge(w, tooLarge.Limit)
		return
	case errors.As(err, &bodyTooLarge):
		h.payloadTooLarge(w, bodyTooLarge.Limit)
		return
	}
	status, code := http.StatusInternalServerError, codeGeneral
	switch {
	case errors.Is(err, core.ErrNotFound):
		status, code = http.StatusNotFound, codeItemNotFound
	case errors.Is(err, core.ErrInvalid), errors.Is(err, core.ErrConflict):
		status, code = http.StatusBadRequest, codeBadRequest
	case errors.Is(err, core.ErrTimeout), errors.Is(err, core.ErrOffline):
		status, code = http.StatusGatewayTimeout, codeGeneral
	}
	msg := err.Error()
	for _, e := range []error{core.ErrNotFound, core.ErrInvalid, core.ErrConflict} {
		msg = strings.TrimPrefix(msg, e.Error()+": ")
	}
	h.fail(w, status, code, msg)
}

// payloadTooLarge is ThingsBoard's MaxPayloadSizeExceededException answer.
func (h *handler) payloadTooLarge(w http.ResponseWriter, limit int64) {
	h.fail(w, http.StatusRequestEntityTooLarge, codeBadRequest, "Payload size exceeds the limit of "+itoa(limit)+" bytes")
}

// recover turns a panic in a handler into a 500 with ThingsBoard's body
// (net/http would drop the connection) and logs it with its stack.
func (h *handler) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.log.Error("REST handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				h.fail(w, http.StatusInternalServerError, codeGeneral, "Internal server error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// requireAuth checks the X-Authorization bearer token as ThingsBoard's
// JWT filter answers: no token is "Authentication failed" (errorCode 10);
// a token that is not (or no longer) good, "Token has expired" (errorCode
// 11), as JwtTokenFactory.parseTokenClaims says for an expired JWT and for
// one whose signature is not the server's, which is what a token of an
// earlier tbemu run is. Clients renew on that code.
func (h *handler) requireAuth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("X-Authorization"), "Bearer ")
		if !ok || tok == "" {
			h.fail(w, http.StatusUnauthorized, codeAuthentication, "Authentication failed")
			return
		}
		switch h.tokens.check(tok, accessToken) {
		case tokenExpired:
			h.tokenExpired(w)
			return
		case tokenWrongKind:
			h.fail(w, http.StatusUnauthorized, codeAuthentication, "Authentication failed")
			return
		}
		next(w, r)
	})
}

// tokenExpired is the answer to a JwtExpiredTokenException.
func (h *handler) tokenExpired(w http.ResponseWriter) {
	h.fail(w, http.StatusUnauthorized, codeJWTTokenExpired, "Token has expired")
}

// decodeBody reads a JSON body of at most MaxBodySize bytes.
func (h *handler) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodySize)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return invalid("Invalid request body: %v", err)
	}
	return nil
}

// readBody reads a raw body of at most MaxBodySize bytes.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodySize))
}

// invalid is an ErrInvalid with its own text (a 400).
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{core.ErrInvalid}, args...)...)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (h *handler) getStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.opts.Stats())
}

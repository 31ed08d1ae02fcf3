package rest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
)

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

package rest

import (
	"context"
	"encoding/json"
	"errors"
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

// keysList is the keys parameter in its order, without repeats.
func keysList(r *http.Request) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range strings.Split(r.URL.Query().Get("keys"), ",") {
		if k != "" && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
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
	id, ok := h.pathID(w, r, "id")
	if !ok {
		return
	}
	strict, ok := h.boolParam(w, r, "useStrictDataTypes")
	if !ok {
		return
	}
	if _, ok := h.c.Device(id); !ok {
		h.writeError(w, core.ErrNotFound)
		return
	}
	keys := keysParam(r)
	q := r.URL.Query()
	if q.Has("startTs") && q.Has("endTs") {
		h.getHistory(w, r, id, keys, strict)
		return
	}
	out := map[string][]map[string]any{}
	latest := h.c.Latest(id)
	for k, v := range latest {
		if keys == nil || keys[k] {
			out[k] = []map[string]any{{"ts": v.Ts, "value": restValue(v.Value, strict)}}
		}
	}
	// A key asked for that has no value is there with a null value at the
	// current time (TimeseriesLatestDao.findLatest).
	for k := range keys {
		if _, ok := latest[k]; !ok {
			out[k] = []map[string]any{{"ts": h.now(), "value": nil}}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// getHistory answers the values/timeseries call with startTs and endTs
// (TelemetryController.getTimeseries, no aggregation): per key the values in
// [startTs, endTs], newest first unless orderBy=ASC, at most limit (100).
// The emulator keeps Options.TelemetryHistory values per key; with none
// kept, the latest value stands for the history when it is in range.
func (h *handler) getHistory(w http.ResponseWriter, r *http.Request, id string, keys map[string]bool, strict bool) {
	start, ok1 := h.int64Param(w, r, "startTs")
	if !ok1 {
		return
	}
	end, ok2 := h.int64Param(w, r, "endTs")
	if !ok2 {
		return
	}
	limit := int64(100)
	if r.URL.Query().Has("limit") {
		var ok bool
		if limit, ok = h.int64Param(w, r, "limit"); !ok {
			return
		}
	}
	asc := strings.EqualFold(r.URL.Query().Get("orderBy"), "ASC")
	out := map[string][]map[string]any{}
	for k, latest := range h.c.Latest(id) {
		if keys != nil && !keys[k] {
			continue
		}
		hist := h.c.History(id, k)
		if len(hist) == 0 {
			hist = []core.TsValue{latest}
		}
		var pts []map[string]any
		for _, v := range hist {
			if v.Ts >= start && v.Ts < end {
				pts = append(pts, map[string]any{"ts": v.Ts, "value": restValue(v.Value, strict)})
			}
		}
		// History is in arrival order; ThingsBoard orders by ts. Values of
		// one millisecond (QUEUED and INITIATED can share one here) keep
		// their arrival order as if a later one were a moment newer.
		if !asc {
			slices.Reverse(pts)
		}
		slices.SortStableFunc(pts, func(a, b map[string]any) int {
			d := a["ts"].(int64) - b["ts"].(int64)
			if !asc {
				d = -d
			}
			return int(max(-1, min(1, d)))
		})
		if int64(len(pts)) > limit {
			pts = pts[:limit]
		}
		if len(pts) > 0 {
			out[k] = pts
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteAttributes is TelemetryController.deleteEntityAttributes: keys are
// required; keys that do not exist are ignored; a subscribed device gets
// {"deleted":[...]} for shared ones.
func (h *handler) deleteAttributes(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r, "id")
	if !ok {
		return
	}
	scope := r.PathValue("scope")
	if !h.checkScope(w, scope) {
		return
	}
	keys := keysList(r)
	if len(keys) == 0 {
		h.badRequest(w, "Empty keys: []")
		return
	}
	if err := h.c.DeleteAttributes(id, scope, keys); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *handler) getAttributes(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r, "id")
	if !ok {
		return
	}
	scopes := []string{core.ClientScope, core.SharedScope, core.ServerScope}
	if sc := r.PathValue("scope"); sc != "" {
		if !h.checkScope(w, sc) {
			return
		}
		scopes = []string{sc}
	}
	if _, ok := h.c.Device(id); !ok {
		h.writeError(w, core.ErrNotFound)
		return
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
	id, ok := h.pathID(w, r, "id")
	if !ok {
		return
	}
	scope := r.PathValue("scope")
	if !h.checkScope(w, scope) {
		return
	}
	if scope == core.ClientScope {
		h.badRequest(w, "Invalid scope: CLIENT_SCOPE attributes are the device's to write")
		return
	}
	body, err := h.readBody(w, r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	ms, err := tbapi.DecodeClientAttributes(body)
	if err != nil {
		h.writeError(w, invalid("Invalid request body: %v", err))
		return
	}
	if scope == core.SharedScope {
		err = h.c.SetSharedAttributes(id, ms)
	} else {
		err = h.c.SetServerAttributes(id, ms)
	}
	if err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *handler) postRPC(w http.ResponseWriter, r *http.Request) {
	kind := r.PathValue("kind")
	if kind != "oneway" && kind != "twoway" {
		h.writeError(w, core.ErrNotFound)
		return
	}
	id, ok := h.pathID(w, r, "id")
	if !ok {
		return
	}
	body, err := h.readBody(w, r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	req, err := tbapi.DecodeRPCRequest(body)
	if err != nil {
		h.writeError(w, invalid("Invalid request body: %v", err))
		return
	}
	timeout := 10 * time.Second // ThingsBoard's server_side_rpc.default_timeout
	if obj, err := tbapi.Parse(body); err == nil {
		if t, ok := obj.Get("timeout"); ok {
			ms, ok := t.Int64()
			if !ok || ms < 1 || ms > maxRPCTimeout.Milliseconds() {
				h.badRequest(w, "Invalid RPC timeout: want 1 to "+itoa(maxRPCTimeout.Milliseconds())+" ms")
				return
			}
			timeout = time.Duration(ms) * time.Millisecond
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout+time.Second)
	defer cancel()
	resp, err := h.c.SendRPC(ctx, id, req.Method, req.Params, kind == "twoway", timeout)
	if err != nil {
		// No session subscribed to RPC is RpcError.NO_ACTIVE_CONNECTION, 409
		// with no body on ThingsBoard 4.3; no answer in time is 504.
		if errors.Is(err, core.ErrOffline) {
			w.WriteHeader(http.StatusConflict)
			return
		}
		if errors.Is(err, core.ErrTimeout) {
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		h.writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(resp)
}

// maxRPCTimeout bounds how long a REST call may wait for a device: the
// server's write timeout must outlast it.
const maxRPCTimeout = 5 * time.Minute

package rest

import (
	"net/http"
	"strconv"

	"github.com/tbsim/tbsim/tbemu/core"
)

// Parameter checks. Every path and query parameter is checked before use;
// a bad one gets 400 with ThingsBoard's error body and, where ThingsBoard
// has one, its message (Validator.validatePageLink, UUID.fromString,
// Spring's conversion of typed parameters).

// isUUID reports whether s is a UUID in its canonical text form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// pathID returns the path value name if it is a UUID, else answers 400.
func (h *handler) pathID(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	return h.checkID(w, r.PathValue(name))
}

func (h *handler) checkID(w http.ResponseWriter, id string) (string, bool) {
	if !isUUID(id) {
		h.badRequest(w, "Invalid UUID string: "+id)
		return "", false
	}
	return id, true
}

// intParam reads a required int query parameter.
func (h *handler) intParam(w http.ResponseWriter, r *http.Request, name string) (int, bool) {
	raw, present := r.URL.Query()[name]
	if !present {
		h.badRequest(w, "Required request parameter '"+name+"' for method parameter type int is not present")
		return 0, false
	}
	n, err := strconv.ParseInt(raw[0], 10, 32)
	if err != nil {
		h.badRequest(w, "Failed to convert value of type 'java.lang.String' to required type 'int'; For input string: \""+raw[0]+"\"")
		return 0, false
	}
	return int(n), true
}

// boolParam reads an optional boolean query parameter.
func (h *handler) boolParam(w http.ResponseWriter, r *http.Request, name string) (bool, bool) {
	raw := r.URL.Query().Get(name)
	switch raw {
	case "", "false":
		return false, true
	case "true":
		return true, true
	}
	h.badRequest(w, "Failed to convert value of type 'java.lang.String' to required type 'boolean'; Invalid boolean value ["+raw+"]")
	return false, false
}

// pageLink reads pageSize and page, as ThingsBoard's list endpoints require
// them: pageSize at least 1, page at least 0.
func (h *handler) pageLink(w http.ResponseWriter, r *http.Request) (size, page int, ok bool) {
	if size, ok = h.intParam(w, r, "pageSize"); !ok {
		return
	}
	if page, ok = h.intParam(w, r, "page"); !ok {
		return
	}
	switch {
	case size < 1:
		h.badRequest(w, "Incorrect page link page size '"+strconv.Itoa(size)+"'. Page size must be greater than zero.")
		return 0, 0, false
	case page < 0:
		h.badRequest(w, "Incorrect page link page '"+strconv.Itoa(page)+"'. Page must be positive integer.")
		return 0, 0, false
	}
	return size, page, true
}

// scopes are the attribute scopes ThingsBoard's AttributeScope knows.
var scopes = map[string]bool{core.ClientScope: true, core.SharedScope: true, core.ServerScope: true}

func (h *handler) checkScope(w http.ResponseWriter, scope string) bool {
	if !scopes[scope] {
		h.badRequest(w, "Failed to convert value of type 'java.lang.String' to required type 'AttributeScope'; No enum constant "+
			"org.thingsboard.server.common.data.AttributeScope."+scope)
		return false
	}
	return true
}

// int64Param reads a required long query parameter (startTs, endTs, limit).
func (h *handler) int64Param(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	raw, present := r.URL.Query()[name]
	if !present {
		h.badRequest(w, "Required request parameter '"+name+"' for method parameter type Long is not present")
		return 0, false
	}
	n, err := strconv.ParseInt(raw[0], 10, 64)
	if err != nil {
		h.badRequest(w, "Failed to convert value of type 'java.lang.String' to required type 'java.lang.Long'; For input string: \""+raw[0]+"\"")
		return 0, false
	}
	return n, true
}

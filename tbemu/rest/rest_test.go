package rest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/tbemu/core"
	"github.com/tbsim/tbsim/tbemu/emutest"
	"github.com/tbsim/tbsim/tbemu/rest"
)

// Login tokens live 9000 s on the core's clock.
func TestLoginTokenLifetime(t *testing.T) {
	clock := emutest.NewClock(time.Now())
	c, err := core.New(core.Options{Clock: clock})
	require.NoError(t, err)
	defer c.Close()
	ts := httptest.NewServer(rest.NewHandler(c, rest.Options{User: "u", Password: "p"}))
	defer ts.Close()

	resp, err := http.Post(ts.URL+"/api/auth/login", "application/json", strings.NewReader(`{"username":"u","password":"p"}`))
	require.NoError(t, err)
	var body strings.Builder
	_, err = io.Copy(&body, resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	tok := between(body.String(), `"token":"`, `"`)
	require.Len(t, tok, 40)
	get := func() int {
		req, _ := http.NewRequest("GET", ts.URL+"/api/deviceProfiles?pageSize=10&page=0", nil)
		req.Header.Set("X-Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	clock.Advance(9000 * time.Second)
	require.Equal(t, http.StatusOK, get())
	clock.Advance(time.Nanosecond)
	require.Equal(t, http.StatusUnauthorized, get())
}

func between(s, from, to string) string {
	_, after, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(after, to)
	return v
}

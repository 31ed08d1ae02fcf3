package rest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/tbemu/core"
	"github.com/tbsim/tbsim/tbemu/emutest"
	"github.com/tbsim/tbsim/tbemu/rest"
)

type pushes struct{ got []string }

func (p *pushes) Deliver(topic string, payload []byte, qos byte) {
	p.got = append(p.got, string(payload))
}
func (p *pushes) Close(string) {}

// restRig is a core with a device, served by the REST handler, and a
// logged-in token.
type restRig struct {
	t     *testing.T
	c     *core.Core
	clock *emutest.Clock
	url   string
	tok   string
	dev   core.Device
}

func newRESTRig(t *testing.T, opts core.Options) *restRig {
	clock := emutest.NewClock(time.UnixMilli(1_700_000_000_000))
	opts.Clock = clock
	c, err := core.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	ts := httptest.NewServer(rest.NewHandler(c, rest.Options{User: "u", Password: "p"}))
	t.Cleanup(ts.Close)
	r := &restRig{t: t, c: c, clock: clock, url: ts.URL}
	_, body := r.call("POST", "/api/auth/login", `{"username":"u","password":"p"}`)
	r.tok = between(body, `"token":"`, `"`)
	r.dev, err = c.CreateDevice(core.DeviceSpec{Name: "d1", Credentials: core.Credentials{Type: tbapi.CredAccessToken, Token: "tok1"}})
	require.NoError(t, err)
	return r
}

func (r *restRig) call(method, path, body string) (int, string) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.url+path, strings.NewReader(body))
	require.NoError(r.t, err)
	req.Header.Set("Content-Type", "application/json")
	if r.tok != "" {
		req.Header.Set("X-Authorization", "Bearer "+r.tok)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// DELETE .../DEVICE/{id}/SHARED_SCOPE?keys= removes the keys that exist,
// pushes {"deleted":[...]} with all of them to a subscribed device, and
// refuses an empty key list, as ThingsBoard's TelemetryController does.
func TestDeleteSharedAttributes(t *testing.T) {
	r := newRESTRig(t, core.Options{})
	p := &pushes{}
	s, code := r.c.Connect(p, "c", "tok1", "")
	require.Equal(t, core.ConnAccepted, code)
	r.c.Subscribe(s, tbapi.TopicAttributes, 1)
	st, _ := r.call("POST", "/api/plugins/telemetry/DEVICE/"+r.dev.ID+"/attributes/SHARED_SCOPE", `{"p1":"a","p2":3}`)
	require.Equal(t, http.StatusOK, st)

	st, _ = r.call("DELETE", "/api/plugins/telemetry/DEVICE/"+r.dev.ID+"/SHARED_SCOPE?keys=p1,nope", "")
	require.Equal(t, http.StatusOK, st)
	// Every key asked for, in order, existing or not (as ThingsBoard 4.3).
	require.Equal(t, []string{`{"p1":"a","p2":3}`, `{"deleted":["p1","nope"]}`}, p.got)
	require.NotContains(t, r.c.Attributes(r.dev.ID, core.SharedScope), "p1")
	require.Contains(t, r.c.Attributes(r.dev.ID, core.SharedScope), "p2")

	st, body := r.call("DELETE", "/api/plugins/telemetry/DEVICE/"+r.dev.ID+"/SHARED_SCOPE", "")
	require.Equal(t, http.StatusBadRequest, st, body)
	st, _ = r.call("DELETE", "/api/plugins/telemetry/DEVICE/"+r.dev.ID+"/NO_SCOPE?keys=p2", "")
	require.Equal(t, http.StatusBadRequest, st)
}

// values/timeseries with startTs and endTs is the history call: values in
// [startTs, endTs), newest first, at most limit; without a kept history the
// latest value stands for it.
func TestTimeseriesHistory(t *testing.T) {
	for _, kept := range []int{10, 0} {
		r := newRESTRig(t, core.Options{TelemetryHistory: kept})
		s, _ := r.c.Connect(&pushes{}, "c", "tok1", "")
		t0 := r.clock.Now().UnixMilli()
		for _, st := range []string{"DOWNLOADING", "DOWNLOADED", "UPDATED"} {
			r.c.Publish(s, tbapi.TopicTelemetry, []byte(`{"fw_state":"`+st+`"}`), 1)
			r.clock.Advance(time.Second)
		}
		q := func(start, end int64, extra string) string {
			st, body := r.call("GET", "/api/plugins/telemetry/DEVICE/"+r.dev.ID+"/values/timeseries?keys=fw_state&startTs="+
				strconv.FormatInt(start, 10)+"&endTs="+strconv.FormatInt(end, 10)+extra, "")
			require.Equal(t, http.StatusOK, st, body)
			return strings.TrimSpace(body)
		}
		ts := func(i int64) string { return strconv.FormatInt(t0+i*1000, 10) }
		if kept > 0 {
			require.Equal(t, `{"fw_state":[{"ts":`+ts(2)+`,"value":"UPDATED"},{"ts":`+ts(1)+`,"value":"DOWNLOADED"},{"ts":`+ts(0)+`,"value":"DOWNLOADING"}]}`, q(t0, t0+10000, ""))
			require.Equal(t, `{"fw_state":[{"ts":`+ts(0)+`,"value":"DOWNLOADING"},{"ts":`+ts(1)+`,"value":"DOWNLOADED"}]}`, q(t0, t0+10000, "&orderBy=ASC&limit=2"))
			require.Equal(t, `{"fw_state":[{"ts":`+ts(0)+`,"value":"DOWNLOADING"}]}`, q(t0, t0+1000, ""))
		} else {
			require.Equal(t, `{"fw_state":[{"ts":`+ts(2)+`,"value":"UPDATED"}]}`, q(t0, t0+10000, ""))
		}
		require.Equal(t, `{}`, q(t0+10000, t0+20000, ""))
		st, _ := r.call("GET", "/api/plugins/telemetry/DEVICE/"+r.dev.ID+"/values/timeseries?keys=fw_state&startTs=x&endTs=1", "")
		require.Equal(t, http.StatusBadRequest, st)
	}
}

package scenario

import (
	"strings"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/sim"
	"github.com/tbsim/tbsim/tbemu"
)

var trendNames = map[string]bool{"provision": true, "connect": true, "publish": true, "chunk": true, "ota": true}
var trendFields = map[string]bool{"avg": true, "p50": true, "p90": true, "p95": true, "p99": true, "max": true, "count": true}
var plainMetrics = map[string]bool{
	"ota.success": true, "ota.updated": true, "ota.failed": true, "reprovisioned": true, "provisioned": true,
	"online": true, "boots": true, "bricked": true, "devices": true, "telemetry.lost": true, "telemetry.acked": true,
	"connects.failed": true, "disconnects": true, "server.rate_limited": true, "errors": true,
}

func knownMetric(m string) bool {
	if plainMetrics[m] || strings.HasPrefix(m, "version.") {
		return true
	}
	a, b, ok := strings.Cut(m, ".")
	return ok && trendNames[a] && trendFields[b]
}

// percentOf are count metrics that may be compared as a share of the fleet.
func isCount(m string) bool {
	return m != "ota.success" && !strings.Contains(m, ".p") && !strings.HasSuffix(m, ".avg") && !strings.HasSuffix(m, ".max")
}

// buildView gathers what conditions and expectations read.
func buildView(f *sim.Fleet, emu *tbemu.Server, target string) *view {
	v := &view{metrics: map[string]float64{}, target: target}
	for _, b := range f.Boards() {
		v.boards = append(v.boards, b.Status())
	}
	s := f.Snapshot()
	for name, t := range s.Trends {
		v.metrics[name+".avg"] = t.Avg.Seconds()
		v.metrics[name+".p50"] = t.P50.Seconds()
		v.metrics[name+".p90"] = t.P90.Seconds()
		v.metrics[name+".p95"] = t.P95.Seconds()
		v.metrics[name+".p99"] = t.P99.Seconds()
		v.metrics[name+".max"] = t.Max.Seconds()
		v.metrics[name+".count"] = float64(t.Count)
	}
	n := float64(len(v.boards))
	v.metrics["devices"] = n
	v.metrics["online"] = float64(s.Online)
	v.metrics["boots"] = float64(s.Boots)
	v.metrics["bricked"] = float64(s.Bricked)
	v.metrics["reprovisioned"] = float64(s.Reprovisions)
	v.metrics["provisioned"] = float64(s.Outcomes.Get("provisioned"))
	v.metrics["telemetry.acked"] = float64(s.Outcomes.Get("telemetry acked"))
	v.metrics["disconnects"] = float64(s.Disconnects.Total())
	var errs, failedConnects int64
	for _, e := range s.Errors {
		errs += e.Count
	}
	for _, c := range s.Outcomes {
		if strings.HasPrefix(c.Name, "connect ") && c.Name != "connect ok" {
			failedConnects += c.Count
		}
	}
	v.metrics["errors"] = float64(errs)
	v.metrics["connects.failed"] = float64(failedConnects)
	v.metrics["ota.updated"] = float64(v.count(func(b device.BoardStatus) bool { return b.OTAState == tbapi.FwUpdated }))
	v.metrics["ota.failed"] = float64(v.count(func(b device.BoardStatus) bool { return b.OTAState == tbapi.FwFailed }))
	if target != "" && n > 0 {
		v.metrics["ota.success"] = 100 * float64(v.count(func(b device.BoardStatus) bool { return b.Version == target })) / n
	}
	for ver, c := range s.Versions {
		v.metrics["version."+ver] = float64(c)
	}
	if emu != nil {
		st := emu.Stats()
		v.metrics["telemetry.lost"] = max(0, v.metrics["telemetry.acked"]-float64(st.TelemetryMsgs))
		v.metrics["server.rate_limited"] = float64(st.RateLimited)
	}
	return v
}

// value returns a metric for an expectation (a count compared with a
// percentage becomes a share of the fleet).
func (v *view) value(e expectation) float64 {
	x := v.metrics[e.metric] // absent version.X: 0 devices
	if e.unit == "%" && isCount(e.metric) && len(v.boards) > 0 {
		return 100 * x / float64(len(v.boards))
	}
	return x
}

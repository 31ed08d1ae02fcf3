package scenario

import (
	"github.com/tbsim/tbsim/internal/verdict"
)

// buildView gathers what conditions and expectations read: the devices'
// statuses and the metric language's values (package verdict, shared with
// tbsim run --threshold).
func buildView(w world, target string) *view {
	v := &view{boards: w.statuses()}
	x := verdict.Extra{Target: target}
	// The devices' side first: the server stores a message before it
	// acknowledges it, so its count read afterwards is never behind, and a
	// message in flight between the two reads is not reported lost.
	snap := w.snapshot()
	if tel, rl, ok := w.serverStats(); ok {
		x.ServerTelemetry, x.ServerRateLimited = &tel, &rl
	}
	v.metrics = verdict.FromSnapshot(snap, x)
	return v
}

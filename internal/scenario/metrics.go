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
	if tel, rl, ok := w.serverStats(); ok {
		x.ServerTelemetry, x.ServerRateLimited = &tel, &rl
	}
	v.metrics = verdict.FromSnapshot(w.snapshot(), x)
	return v
}

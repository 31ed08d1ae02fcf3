package scenario

import (
	"github.com/tbsim/tbsim/internal/verdict"
	"github.com/tbsim/tbsim/sim"
	"github.com/tbsim/tbsim/tbemu"
)

// buildView gathers what conditions and expectations read: the boards'
// statuses and the metric language's values (package verdict, shared with
// tbsim run --threshold). received is telemetry stored by earlier instances
// of a restarted server.
func buildView(f *sim.Fleet, emu *tbemu.Server, target string, received int64) *view {
	v := &view{}
	for _, b := range f.Boards() {
		v.boards = append(v.boards, b.Status())
	}
	x := verdict.Extra{Target: target}
	if emu != nil {
		st := emu.Stats()
		tel, rl := received+st.TelemetryMsgs, st.RateLimited
		x.ServerTelemetry, x.ServerRateLimited = &tel, &rl
	}
	v.metrics = verdict.FromSnapshot(f.Snapshot(), x)
	return v
}

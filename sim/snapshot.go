package sim

import (
	"sort"
	"time"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/firmware"
)

// Snapshot is the fleet at one instant: what the live view, the summary,
// the thresholds and the scenario expectations read.
type Snapshot struct {
	Elapsed      time.Duration
	Devices      int // in this process's fleet (or shard)
	Started      int // powered on so far (the ramp)
	ByState      map[string]int
	Provisioned  int
	Online       int
	EverOnline   bool // some device was online at some point of the run
	Versions     map[string]int
	OTAStates    map[string]int
	Reprovisions int
	Boots        int
	Bricked      int
	Stranded     int
	Trends       map[string]TrendStats
	// Histograms are the latency trends' buckets, by the same names as
	// Trends (whose figures are computed from them), plus the generator's
	// own: "generator.lag" and "admission.wait".
	Histograms  map[string]Histogram
	Outcomes    Counts
	Disconnects Counts
	// Errors are the failure events by cause, plus the stranded devices;
	// ErrorTotal sums them.
	Errors     []ErrorCause
	ErrorTotal int64
	// Offline groups the started devices that are not online, by state and cause.
	Offline   []OfflineGroup
	OTABytes  int64
	OTAWindow time.Duration // first to last chunk, fleet-wide
	Generator GeneratorStats
}

// TrendNames are the fleet's latency trends, as Snapshot.Trends names them.
var TrendNames = []string{"provision", "connect", "publish", "publish_steady", "chunk", "ota"}

// Snapshot reads every board's status (lock-free) and the metrics.
func (f *Fleet) Snapshot() Snapshot {
	f.mu.Lock()
	live := append([]bool(nil), f.live...)
	var elapsed time.Duration
	if !f.started.IsZero() {
		elapsed = time.Since(f.started)
	}
	f.mu.Unlock()
	return buildSnapshot(len(f.boards), func(i int) (device.BoardStatus, bool) {
		if !live[i] {
			return device.BoardStatus{}, false
		}
		return f.boards[i].Status(), true
	}, f.metrics, f.health, f.gate, elapsed)
}

// buildSnapshot summarises n devices whose statuses status returns (false:
// not started yet).
func buildSnapshot(n int, status func(i int) (device.BoardStatus, bool), m *Metrics, h *Health, gate *Admission, elapsed time.Duration) Snapshot {
	s := Snapshot{Devices: n, Elapsed: elapsed, ByState: map[string]int{}, Versions: map[string]int{}, OTAStates: map[string]int{}}
	groups := map[[2]string]*OfflineGroup{}
	var strandedEx string
	for i := range n {
		st, ok := status(i)
		if !ok {
			continue
		}
		s.Started++
		s.ByState[st.State.String()]++
		if st.Provisioned {
			s.Provisioned++
		}
		if st.State == firmware.StateOnline {
			s.Online++
		} else {
			cause := deviceCause(st)
			k := [2]string{st.State.String(), cause}
			g := groups[k]
			if g == nil {
				g = &OfflineGroup{State: k[0], Cause: cause, Text: offlineText(cause)}
				groups[k] = g
			}
			g.Count++
			if len(g.Examples) < 3 {
				g.Examples = append(g.Examples, st.Name)
			}
			if cause == CauseStranded {
				s.Stranded++
				if strandedEx == "" {
					strandedEx = st.Name
				}
			}
		}
		if st.Version != "" {
			s.Versions[st.Version]++
		}
		if st.OTAState != "" {
			s.OTAStates[string(st.OTAState)]++
		}
		s.Reprovisions += st.Reprovisions
		s.Boots += st.BootCount
		if st.Bricked {
			s.Bricked++
		}
	}
	for _, g := range groups {
		s.Offline = append(s.Offline, *g)
	}
	sort.Slice(s.Offline, func(i, j int) bool {
		a, b := s.Offline[i], s.Offline[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.State+a.Cause < b.State+b.Cause
	})
	s.EverOnline = m.everOnline.Load()
	s.Histograms = map[string]Histogram{
		"provision": m.Provision.Histogram(), "connect": m.Connect.Histogram(), "publish": m.PublishAck.Histogram(),
		"publish_steady": m.PublishSteady.Histogram(), "chunk": m.ChunkRTT.Histogram(), "ota": m.OTA.Histogram(),
		"generator.lag": h.Lag.Histogram(),
	}
	s.Trends = map[string]TrendStats{}
	for _, name := range TrendNames {
		s.Trends[name] = s.Histograms[name].Stats()
	}
	s.Outcomes, s.Disconnects = m.Outcomes.Snapshot(), m.Disconnects.Snapshot()
	s.Errors = m.Failures()
	if s.Stranded > 0 {
		s.Errors = append(s.Errors, ErrorCause{Cause: CauseStranded, Text: CauseText(CauseStranded), Count: int64(s.Stranded), Example: strandedEx})
		sortCauses(s.Errors)
	}
	for _, e := range s.Errors {
		s.ErrorTotal += e.Count
	}
	s.OTABytes = m.otaBytes.Load()
	s.OTAWindow = m.OTAWindow()
	s.Generator = h.Stats()
	s.Generator.Lag = s.Histograms["generator.lag"].Stats()
	if gate != nil {
		s.Histograms["admission.wait"] = gate.Wait.Histogram()
		s.Generator.Admission = gate.Stats()
		s.Generator.Admission.Wait = s.Histograms["admission.wait"].Stats()
	}
	return s
}

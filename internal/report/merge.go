package report

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/tbsim/tbsim/sim"
)

// Merge combines the summaries of a sharded run into the fleet's: counts
// summed, devices (disjoint by construction of --shard) added up, every
// latency histogram merged bucket by bucket, so the fleet's p95 is the p95
// of all observations, never a combination of the shards' p95s. files
// names the inputs in the result and in errors.
//
// The shards must be of one fleet (seed, shard count, fleet size) and each
// shard may appear once; unless partial is set, every shard must be there.
// The result's verdict is left to the caller, which re-evaluates the
// thresholds on it.
func Merge(files []string, ss []Summary, partial bool) (Summary, error) {
	if len(ss) == 0 {
		return Summary{}, errors.New("nothing to merge")
	}
	if err := checkShards(files, ss, partial); err != nil {
		return Summary{}, err
	}
	first := ss[0]
	m := Summary{Seed: first.Seed, Server: first.Server, Version: first.Version, FleetDevices: first.FleetDevices,
		Shard: sim.Shard{Index: 0, Count: 1}, Snap: sim.Snapshot{ByState: map[string]int{}, Versions: map[string]int{},
			OTAStates: map[string]int{}, Histograms: map[string]sim.Histogram{}, Trends: map[string]sim.TrendStats{}}}
	var outcomes, disconnects sim.Counter
	var runtimeErrs []string
	for k, s := range ss {
		addSnapshot(&m.Snap, s.Snap)
		for _, c := range s.Snap.Outcomes {
			outcomes.Add(c.Name, c.Count)
		}
		for _, c := range s.Snap.Disconnects {
			disconnects.Add(c.Name, c.Count)
		}
		m.Duration = max(m.Duration, s.Duration)
		m.OTA = addPackages(m.OTA, s.OTA)
		if m.OTATarget == "" {
			m.OTATarget = s.OTATarget
		}
		if s.Server != m.Server {
			m.Server = "several servers"
		}
		if s.RuntimeError != "" {
			runtimeErrs = append(runtimeErrs, fmt.Sprintf("shard %d/%d: %s", s.Shard.Index, s.Shard.Count, s.RuntimeError))
		}
		m.Shards = append(m.Shards, ShardResult{File: files[k], Shard: fmt.Sprintf("%d/%d", s.Shard.Index, s.Shard.Count),
			Devices: s.Snap.Devices, ExitCode: s.ExitCode, Reason: s.Reason})
	}
	m.ServerCounts = addServerCounts(ss)
	m.Snap.Elapsed = m.Duration
	m.Snap.Outcomes, m.Snap.Disconnects = outcomes.Snapshot(), disconnects.Snapshot()
	for _, name := range sim.TrendNames {
		m.Snap.Trends[name] = m.Snap.Histograms[name].Stats()
	}
	m.Snap.Errors = mergeCauses(ss)
	for _, e := range m.Snap.Errors {
		m.Snap.ErrorTotal += e.Count
	}
	m.Snap.Offline = mergeOffline(ss)
	m.Snap.Generator = mergeGenerator(ss, m.Snap.Histograms)
	m.RuntimeError = strings.Join(runtimeErrs, "; ")
	return m, nil
}

// checkShards refuses inputs that are not one fleet's disjoint shards.
func checkShards(files []string, ss []Summary, partial bool) error {
	first := ss[0]
	seen := map[int]string{}
	var errs []error
	for k, s := range ss {
		switch {
		case s.Seed != first.Seed:
			errs = append(errs, fmt.Errorf("%s: seed %d, %s has %d: shards of one fleet share the seed", files[k], s.Seed, files[0], first.Seed))
		case s.Shard.Count != first.Shard.Count || s.FleetDevices != first.FleetDevices:
			errs = append(errs, fmt.Errorf("%s: shard %d/%d of %d devices, %s is of %d shards of %d devices: not the same fleet",
				files[k], s.Shard.Index, s.Shard.Count, s.FleetDevices, files[0], first.Shard.Count, first.FleetDevices))
		case seen[s.Shard.Index] != "":
			errs = append(errs, fmt.Errorf("%s: shard %d/%d again (also %s): its devices would count twice",
				files[k], s.Shard.Index, s.Shard.Count, seen[s.Shard.Index]))
		default:
			seen[s.Shard.Index] = files[k]
		}
	}
	if len(errs) > 0 || partial {
		return errors.Join(errs...)
	}
	var missing []string
	for i := range first.Shard.Count {
		if seen[i] == "" {
			missing = append(missing, fmt.Sprintf("%d/%d", i, first.Shard.Count))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("shards %s missing: the fleet's result needs all %d (--partial merges what is there)",
			strings.Join(missing, ", "), first.Shard.Count)
	}
	return nil
}

// addSnapshot adds a shard's device counts and histograms to m.
func addSnapshot(m *sim.Snapshot, s sim.Snapshot) {
	m.Devices += s.Devices
	m.Started += s.Started
	m.Provisioned += s.Provisioned
	m.Online += s.Online
	m.EverOnline = m.EverOnline || s.EverOnline
	m.Reprovisions += s.Reprovisions
	m.Boots += s.Boots
	m.Bricked += s.Bricked
	m.Stranded += s.Stranded
	m.OTABytes += s.OTABytes
	// The shards ran side by side: the fleet's download window is at least
	// the longest shard's (their start times are not recorded).
	m.OTAWindow = max(m.OTAWindow, s.OTAWindow)
	addCounts(m.ByState, s.ByState)
	addCounts(m.Versions, s.Versions)
	addCounts(m.OTAStates, s.OTAStates)
	for name, h := range s.Histograms {
		mh := m.Histograms[name]
		mh.Merge(h)
		m.Histograms[name] = mh
	}
}

func addCounts(dst, src map[string]int) {
	for k, v := range src {
		dst[k] += v
	}
}

func addPackages(dst, src map[string]map[string]int) map[string]map[string]int {
	for pkg, states := range src {
		if dst == nil {
			dst = map[string]map[string]int{}
		}
		if dst[pkg] == nil {
			dst[pkg] = map[string]int{}
		}
		addCounts(dst[pkg], states)
	}
	return dst
}

// addServerCounts sums the embedded servers' counts, known only when every
// shard had one.
func addServerCounts(ss []Summary) *ServerCounts {
	var sum ServerCounts
	for _, s := range ss {
		if s.ServerCounts == nil {
			return nil
		}
		sum.Telemetry += s.ServerCounts.Telemetry
		sum.RateLimited += s.ServerCounts.RateLimited
	}
	return &sum
}

// mergeCauses sums the failures by cause and detail, keeping the first
// example, largest first.
func mergeCauses(ss []Summary) []sim.ErrorCause {
	idx := map[[2]string]int{}
	var out []sim.ErrorCause
	for _, s := range ss {
		for _, e := range s.Snap.Errors {
			k := [2]string{e.Cause, e.Detail}
			i, ok := idx[k]
			if !ok {
				idx[k] = len(out)
				out = append(out, e)
				continue
			}
			out[i].Count += e.Count
			if out[i].Example == "" {
				out[i].Example = e.Example
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Cause+out[i].Detail < out[j].Cause+out[j].Detail
	})
	return out
}

// mergeOffline sums the not-online groups by state and cause, with up to
// three examples each.
func mergeOffline(ss []Summary) []sim.OfflineGroup {
	idx := map[[2]string]int{}
	var out []sim.OfflineGroup
	for _, s := range ss {
		for _, g := range s.Snap.Offline {
			k := [2]string{g.State, g.Cause}
			i, ok := idx[k]
			if !ok {
				idx[k] = len(out)
				g.Examples = append([]string(nil), g.Examples...)
				out = append(out, g)
				continue
			}
			out[i].Count += g.Count
			for _, ex := range g.Examples {
				if len(out[i].Examples) < 3 {
					out[i].Examples = append(out[i].Examples, ex)
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.State+a.Cause < b.State+b.Cause
	})
	return out
}

// mergeGenerator adds up the shards' generators: cores and CPU summed
// (each pod has its own), lag and admission waits merged exactly, and the
// fleet generator-bound when any shard was: its latencies are in the
// fleet's histograms.
func mergeGenerator(ss []Summary, hists map[string]sim.Histogram) sim.GeneratorStats {
	g := sim.GeneratorStats{Lag: hists["generator.lag"].Stats()}
	g.Admission.Adaptive = true
	g.Admission.Wait = hists["admission.wait"].Stats()
	var bound []string
	for _, s := range ss {
		sg := s.Snap.Generator
		g.Cores += sg.Cores
		g.CPUAvg += sg.CPUAvg
		g.CPUPeak += sg.CPUPeak // an upper bound: the shards' peaks need not coincide
		g.BusySeconds = max(g.BusySeconds, sg.BusySeconds)
		g.Admission.Adaptive = g.Admission.Adaptive && sg.Admission.Adaptive
		g.Admission.Limit += sg.Admission.Limit
		g.Admission.Peak += sg.Admission.Peak
		g.Admission.Cuts += sg.Admission.Cuts
		if sg.Bound {
			bound = append(bound, fmt.Sprintf("shard %d/%d: %s", s.Shard.Index, s.Shard.Count, sg.Why))
		}
	}
	g.Bound = len(bound) > 0
	if g.Bound {
		g.Why = fmt.Sprintf("%d of %d shards generator-bound: %s", len(bound), len(ss), strings.Join(bound, "; "))
	} else {
		g.Why = fmt.Sprintf("%d shards used %.1f of %d cores; deadlines fired up to %s late (p99 %s): not generator-bound",
			len(ss), g.CPUAvg, g.Cores, d(g.Lag.Max), d(g.Lag.P99))
	}
	return g
}

package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tbsim/tbsim/sim"
)

// ErrNotMergeable is returned for a summary that cannot be read back
// exactly: another schema, or latencies without their histograms.
var ErrNotMergeable = errors.New("not a mergeable summary")

// ReadJSON reads a summary written by WriteJSON back into a Summary whose
// snapshot carries the same metrics (latency figures are recomputed from
// the histograms, so they equal the ones written).
func ReadJSON(r io.Reader) (Summary, error) {
	var j jsonSummary
	dec := json.NewDecoder(r)
	if err := dec.Decode(&j); err != nil {
		return Summary{}, fmt.Errorf("decode summary: %w", err)
	}
	if j.Schema != Schema {
		return Summary{}, fmt.Errorf("%w: schema %q, want %q (written by a tbsim older than the histograms; run it again with this one)",
			ErrNotMergeable, j.Schema, Schema)
	}
	hists, err := readHistograms(j)
	if err != nil {
		return Summary{}, err
	}
	d := j.Devices
	sn := sim.Snapshot{
		Elapsed: fromMs(j.DurationMs), Devices: d.Total, Started: d.Started, ByState: d.ByState,
		Provisioned: d.Provisioned, Online: d.Online, EverOnline: d.EverOnline, Versions: d.Versions, OTAStates: d.FwStates,
		Reprovisions: int(d.Reprovisioned), Boots: d.Boots, Bricked: d.Bricked, Stranded: d.Stranded,
		Histograms: hists, Trends: map[string]sim.TrendStats{},
		Errors: j.Errors.Causes, ErrorTotal: j.Errors.Total, Offline: j.NotOnline,
		OTABytes: j.OTA.Bytes, OTAWindow: fromMs(j.OTA.WindowMs),
	}
	for _, name := range sim.TrendNames {
		sn.Trends[name] = hists[name].Stats()
	}
	sn.Outcomes = readOutcomes(j)
	for _, c := range j.Disconnect {
		sn.Disconnects = append(sn.Disconnects, sim.NamedCount{Name: c.Cause, Count: c.Count})
	}
	g := j.Generator
	sn.Generator = sim.GeneratorStats{Cores: g.Cores, CPUAvg: g.CPUAvg, CPUPeak: g.CPUPeak, BusySeconds: g.BusySeconds,
		Lag: hists["generator.lag"].Stats(), Bound: g.Bound, Why: g.Why,
		Admission: sim.AdmissionStats{Adaptive: g.Admission.Adaptive, Limit: g.Admission.Limit, Peak: g.Admission.Peak,
			Cuts: g.Admission.Cuts, Wait: hists["admission.wait"].Stats()}}
	s := Summary{
		Seed: j.Seed, Server: j.Server, Snap: sn, Duration: sn.Elapsed, OTA: j.OTA.Packages,
		Thresholds: j.Thresholds, ExitCode: j.Verdict.ExitCode, Reason: j.Verdict.Reason, RuntimeError: j.Verdict.RuntimeError,
		Version: j.Version, Shard: sim.Shard{Index: j.Shard.Index, Count: j.Shard.Count}, FleetDevices: j.Shard.FleetDevices,
		OTATarget: j.OTA.Target, ServerCounts: j.ServerCounts, Shards: j.MergedFrom,
	}
	return s, nil
}

func fromMs(v float64) time.Duration {
	return time.Duration(v * float64(time.Millisecond)).Round(time.Microsecond)
}

// readHistograms checks and converts every latency's histogram: a v2 file
// without one was edited, and merging it would not be exact.
func readHistograms(j jsonSummary) (map[string]sim.Histogram, error) {
	trends := map[string]jsonTrend{"generator.lag": j.Generator.LagMs, "admission.wait": j.Generator.Admission.WaitMs}
	for _, name := range sim.TrendNames {
		trends[name] = j.LatencyMs[name]
	}
	out := map[string]sim.Histogram{}
	var errs []error
	for name, t := range trends {
		if t.Histogram == nil {
			if t.Count == 0 {
				out[name] = sim.Histogram{}
				continue
			}
			errs = append(errs, fmt.Errorf("%w: latency %s has %d observations but no histogram", ErrNotMergeable, name, t.Count))
			continue
		}
		h := sim.Histogram{SumUs: t.Histogram.SumUs, MaxUs: t.Histogram.MaxUs}
		for _, b := range t.Histogram.Buckets {
			h.Buckets = append(h.Buckets, sim.Bucket{LowUs: b[0], Count: b[1]})
			h.Count += b[1]
		}
		if err := h.Check(); err != nil {
			errs = append(errs, fmt.Errorf("%w: latency %s: %v", ErrNotMergeable, name, err))
		} else if h.Count != t.Count {
			errs = append(errs, fmt.Errorf("%w: latency %s: count %d, histogram holds %d", ErrNotMergeable, name, t.Count, h.Count))
		}
		out[name] = h
	}
	return out, errors.Join(errs...)
}

// readOutcomes rebuilds the outcome counts from their fields.
func readOutcomes(j jsonSummary) sim.Counts {
	var c sim.Counter
	for name, n := range map[string]int64{
		"publish acked": j.Counts.PublishesAcked, "telemetry acked": j.Counts.TelemetryAcked,
		"connect ok": j.Counts.ConnectsOK, "connect failed": j.Counts.ConnectsFailed,
		"provisioned": j.Devices.ProvisionedThisRun, "reprovisioned": j.Devices.Reprovisioned,
		"ota updated": j.OTA.Updated, "ota failed": j.OTA.Failed,
	} {
		c.Add(name, n)
	}
	for name, n := range j.Counts.Other {
		c.Add(strings.TrimSpace(name), n)
	}
	return c.Snapshot()
}

package report

import (
	"encoding/json"
	"io"
	"time"

	"github.com/tbsim/tbsim/internal/verdict"
	"github.com/tbsim/tbsim/sim"
)

// Schema names the JSON summary's layout; it changes when a field changes
// meaning or when a reader needs fields an older file lacks. v2 added the
// latency histograms (exact, so shards merge), the shard, the outcome counts
// not in v1, the rollout target and the embedded server's counts: all that
// `tbsim report merge` needs to rebuild a run's metrics.
const Schema = "tbsim.summary/v2"

// JSON layout (documented in the README): snake_case keys, durations in
// milliseconds with _ms in the key, causes as arrays of objects.
type jsonSummary struct {
	Schema       string               `json:"schema"`
	Version      string               `json:"tbsim_version"`
	Seed         uint64               `json:"seed"`
	Server       string               `json:"server"`
	Shard        jsonShard            `json:"shard"`
	DurationMs   float64              `json:"duration_ms"`
	Devices      jsonDevices          `json:"devices"`
	LatencyMs    map[string]jsonTrend `json:"latency_ms"`
	Counts       jsonCounts           `json:"counts"`
	RatesPerS    Rates                `json:"rates_per_s"`
	OTA          jsonOTA              `json:"ota"`
	Disconnect   []jsonCount          `json:"disconnects"`
	Errors       jsonErrors           `json:"errors"`
	NotOnline    []sim.OfflineGroup   `json:"not_online"`
	Generator    jsonGenerator        `json:"generator"`
	ServerCounts *ServerCounts        `json:"server_counts,omitempty"`
	Thresholds   []verdict.Result     `json:"thresholds"`
	Verdict      jsonVerdict          `json:"verdict"`
	MergedFrom   []ShardResult        `json:"merged_from,omitempty"`
}

type jsonShard struct {
	Index        int `json:"index"`
	Count        int `json:"count"`
	FleetDevices int `json:"fleet_devices"`
}

type jsonDevices struct {
	Total              int            `json:"total"`
	Started            int            `json:"started"`
	Provisioned        int            `json:"provisioned"`
	ProvisionedThisRun int64          `json:"provisioned_this_run"`
	Online             int            `json:"online"`
	EverOnline         bool           `json:"ever_online"`
	Reprovisioned      int64          `json:"reprovisioned"`
	Boots              int            `json:"boots"`
	Bricked            int            `json:"bricked"`
	Stranded           int            `json:"stranded"`
	ByState            map[string]int `json:"by_state"`
	Versions           map[string]int `json:"versions"`
	FwStates           map[string]int `json:"fw_states"`
}

type jsonTrend struct {
	Count     uint64         `json:"count"`
	Avg       float64        `json:"avg"`
	P50       float64        `json:"p50"`
	P90       float64        `json:"p90"`
	P95       float64        `json:"p95"`
	P99       float64        `json:"p99"`
	Max       float64        `json:"max"`
	Histogram *jsonHistogram `json:"histogram,omitempty"`
}

// jsonHistogram is a sim.Histogram: exact integer microseconds, and the
// non-empty buckets as [lowest value in µs, count] pairs.
type jsonHistogram struct {
	SumUs   uint64      `json:"sum_us"`
	MaxUs   uint64      `json:"max_us"`
	Buckets [][2]uint64 `json:"buckets"`
}

func msTrend(t sim.TrendStats) jsonTrend {
	return jsonTrend{Count: t.Count, Avg: ms(t.Avg), P50: ms(t.P50), P90: ms(t.P90), P95: ms(t.P95), P99: ms(t.P99), Max: ms(t.Max)}
}

// histTrend writes a latency with its histogram when the snapshot has one
// (and then its figures from the histogram, so the file agrees with itself).
func histTrend(s sim.Snapshot, name string, t sim.TrendStats) jsonTrend {
	h, ok := s.Histograms[name]
	if !ok {
		return msTrend(t)
	}
	j := msTrend(h.Stats())
	j.Histogram = &jsonHistogram{SumUs: h.SumUs, MaxUs: h.MaxUs, Buckets: [][2]uint64{}}
	for _, b := range h.Buckets {
		j.Histogram.Buckets = append(j.Histogram.Buckets, [2]uint64{b.LowUs, b.Count})
	}
	return j
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type jsonCounts struct {
	PublishesAcked int64 `json:"publishes_acked"`
	TelemetryAcked int64 `json:"telemetry_acked"`
	Chunks         int64 `json:"chunks"`
	ConnectsOK     int64 `json:"connects_ok"`
	ConnectsFailed int64 `json:"connects_failed"`
	// Other are the outcomes that have no field of their own.
	Other map[string]int64 `json:"other,omitempty"`
}

// outcomeFields are the outcomes stored in a field of their own.
var outcomeFields = map[string]bool{
	"publish acked": true, "telemetry acked": true, "connect ok": true, "connect failed": true,
	"provisioned": true, "reprovisioned": true, "ota updated": true, "ota failed": true,
}

type jsonOTA struct {
	Target   string                    `json:"target,omitempty"`
	Bytes    int64                     `json:"bytes"`
	WindowMs float64                   `json:"window_ms"`
	MBPerS   float64                   `json:"mb_per_s"`
	Updated  int64                     `json:"updated"`
	Failed   int64                     `json:"failed"`
	Packages map[string]map[string]int `json:"packages,omitempty"`
}

type jsonCount struct {
	Cause string `json:"cause"`
	Count int64  `json:"count"`
}

type jsonErrors struct {
	Total  int64            `json:"total"`
	Causes []sim.ErrorCause `json:"causes"`
}

type jsonGenerator struct {
	Cores       int           `json:"cores"`
	CPUAvg      float64       `json:"cpu_avg"`
	CPUPeak     float64       `json:"cpu_peak"`
	BusySeconds int           `json:"busy_seconds"`
	LagMs       jsonTrend     `json:"lag_ms"`
	Bound       bool          `json:"bound"`
	Why         string        `json:"why"`
	Admission   jsonAdmission `json:"admission"`
}

type jsonAdmission struct {
	Adaptive bool      `json:"adaptive"`
	Limit    int       `json:"limit"`
	Peak     int64     `json:"peak_in_flight"`
	Cuts     int64     `json:"limit_cuts"`
	WaitMs   jsonTrend `json:"wait_ms"`
}

type jsonVerdict struct {
	Passed       bool   `json:"passed"`
	ExitCode     int    `json:"exit_code"`
	Reason       string `json:"reason"`
	RuntimeError string `json:"runtime_error,omitempty"`
}

func (s Summary) json() jsonSummary {
	sn := s.Snap
	gen := sn.Generator
	j := jsonSummary{
		Schema: Schema, Version: s.Version, Seed: s.Seed, Server: s.Server, DurationMs: ms(s.Duration),
		Shard: jsonShard{Index: s.Shard.Index, Count: s.Shard.Count, FleetDevices: s.FleetDevices},
		Devices: jsonDevices{
			Total: sn.Devices, Started: sn.Started, Provisioned: sn.Provisioned,
			ProvisionedThisRun: sn.Outcomes.Get("provisioned"), Online: sn.Online, EverOnline: sn.EverOnline,
			Reprovisioned: sn.Outcomes.Get("reprovisioned"), Boots: sn.Boots, Bricked: sn.Bricked, Stranded: sn.Stranded,
			ByState: nonNil(sn.ByState), Versions: nonNil(sn.Versions), FwStates: nonNil(sn.OTAStates),
		},
		LatencyMs: map[string]jsonTrend{},
		Counts: jsonCounts{
			PublishesAcked: sn.Outcomes.Get("publish acked"), TelemetryAcked: sn.Outcomes.Get("telemetry acked"),
			Chunks: int64(sn.Trends["chunk"].Count), ConnectsOK: sn.Outcomes.Get("connect ok"), ConnectsFailed: sn.Outcomes.Get("connect failed"),
		},
		RatesPerS: s.Rates(),
		OTA: jsonOTA{Target: s.OTATarget, Bytes: sn.OTABytes, WindowMs: ms(sn.OTAWindow), MBPerS: s.OTARateMBps(),
			Updated: sn.Outcomes.Get("ota updated"), Failed: sn.Outcomes.Get("ota failed"), Packages: s.OTA},
		Disconnect: []jsonCount{},
		Errors:     jsonErrors{Total: sn.ErrorTotal, Causes: sn.Errors},
		NotOnline:  sn.Offline,
		Generator: jsonGenerator{Cores: gen.Cores, CPUAvg: gen.CPUAvg, CPUPeak: gen.CPUPeak,
			BusySeconds: gen.BusySeconds, LagMs: histTrend(sn, "generator.lag", gen.Lag), Bound: gen.Bound, Why: gen.Why,
			Admission: jsonAdmission{Adaptive: gen.Admission.Adaptive, Limit: gen.Admission.Limit,
				Peak: gen.Admission.Peak, Cuts: gen.Admission.Cuts, WaitMs: histTrend(sn, "admission.wait", gen.Admission.Wait)}},
		ServerCounts: s.ServerCounts,
		Thresholds:   s.Thresholds,
		Verdict:      jsonVerdict{Passed: s.ExitCode == 0, ExitCode: s.ExitCode, Reason: s.Reason, RuntimeError: s.RuntimeError},
		MergedFrom:   s.Shards,
	}
	for k, t := range sn.Trends {
		j.LatencyMs[k] = histTrend(sn, k, t)
	}
	for _, o := range sn.Outcomes {
		if !outcomeFields[o.Name] {
			if j.Counts.Other == nil {
				j.Counts.Other = map[string]int64{}
			}
			j.Counts.Other[o.Name] = o.Count
		}
	}
	for _, d := range sn.Disconnects {
		j.Disconnect = append(j.Disconnect, jsonCount{d.Name, d.Count})
	}
	if j.Errors.Causes == nil {
		j.Errors.Causes = []sim.ErrorCause{}
	}
	if j.NotOnline == nil {
		j.NotOnline = []sim.OfflineGroup{}
	}
	if j.Thresholds == nil {
		j.Thresholds = []verdict.Result{}
	}
	return j
}

func nonNil(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// WriteJSON writes the summary as indented JSON.
func WriteJSON(w io.Writer, s Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s.json())
}

package report

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/sim"
)

// deviceLatencies are what each device of a fleet observed: one
// provisioning, a few dozen publishes, an OTA for some. Devices of the
// second half are slower (another zone, a busier pod), so the shards'
// distributions differ and combining their quantiles would be wrong.
func deviceLatencies(seed uint64, devices int) [][]struct {
	trend string
	d     time.Duration
} {
	rng := rand.New(rand.NewPCG(seed, 0))
	out := make([][]struct {
		trend string
		d     time.Duration
	}, devices)
	logNormal := func(median time.Duration, sigma float64) time.Duration {
		return time.Duration(float64(median) * math.Exp(sigma*rng.NormFloat64()))
	}
	for i := range devices {
		slow := 1.0
		if i >= devices/2 {
			slow = 6
		}
		add := func(trend string, d time.Duration) {
			out[i] = append(out[i], struct {
				trend string
				d     time.Duration
			}{trend, d})
		}
		add("provision", logNormal(time.Duration(slow*float64(20*time.Millisecond)), 0.8))
		add("connect", logNormal(time.Duration(slow*float64(3*time.Millisecond)), 0.5))
		for range 30 {
			add("publish", logNormal(time.Duration(slow*float64(400*time.Microsecond)), 1.2))
		}
		if i%3 == 0 {
			add("ota", logNormal(time.Duration(slow*float64(40*time.Second)), 0.3))
		}
		add("generator.lag", logNormal(time.Millisecond, 1))
	}
	return out
}

// record runs the devices [lo, hi) through fresh trends, as a fleet (or a
// shard of it) would, and returns the summary it would write.
func record(obs [][]struct {
	trend string
	d     time.Duration
}, lo, hi int, shard sim.Shard) Summary {
	trends := map[string]*sim.Trend{}
	for _, name := range append(append([]string(nil), sim.TrendNames...), "generator.lag", "admission.wait") {
		trends[name] = &sim.Trend{}
	}
	for i := lo; i < hi; i++ {
		for _, o := range obs[i] {
			trends[o.trend].Observe(o.d)
		}
	}
	sn := sim.Snapshot{Elapsed: time.Minute, Devices: hi - lo, Started: hi - lo, Online: hi - lo, Provisioned: hi - lo, EverOnline: true,
		ByState: map[string]int{"online": hi - lo}, Versions: map[string]int{"1.0.0": hi - lo}, OTAStates: map[string]int{},
		Histograms: map[string]sim.Histogram{}, Trends: map[string]sim.TrendStats{},
		Outcomes: sim.Counts{{Name: "provisioned", Count: int64(hi - lo)}, {Name: "publish acked", Count: int64(30 * (hi - lo))}}}
	for name, tr := range trends {
		sn.Histograms[name] = tr.Histogram()
	}
	for _, name := range sim.TrendNames {
		sn.Trends[name] = trends[name].Stats()
	}
	s := NewSummary(7, "mqtt://tb:1883", sn)
	s.Shard, s.FleetDevices = shard, len(obs)
	return s
}

func roundTrip(t *testing.T, s Summary) Summary {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, s))
	back, err := ReadJSON(&b)
	require.NoError(t, err)
	return back
}

// Two shards' summaries, written and read back as files, merge into the
// summary of one run over the same devices: the same buckets, so the same
// p95 (and every other figure), while the mean of the shards' p95s is far
// off.
func TestMergeEqualsSingleRun(t *testing.T) {
	const devices = 2000
	// A fixed seed: the guard below needs shards that differ enough, which
	// a time-based seed missed now and then (9.8% for 1796192935838467167).
	const seed = 1
	obs := deviceLatencies(seed, devices)
	single := roundTrip(t, record(obs, 0, devices, sim.Shard{Index: 0, Count: 1}))

	var shards []Summary
	var files []string
	for i := range 2 {
		sh := sim.Shard{Index: i, Count: 2}
		lo, hi := sh.Range(devices)
		shards = append(shards, roundTrip(t, record(obs, lo, hi, sh)))
		files = append(files, "shard-"+string(rune('0'+i))+".json")
	}
	merged, err := Merge(files, shards, false)
	require.NoError(t, err)
	merged = roundTrip(t, merged)

	for _, name := range []string{"provision", "connect", "publish", "ota"} {
		require.Equal(t, single.Snap.Histograms[name], merged.Snap.Histograms[name], name)
		require.Equal(t, single.Snap.Trends[name], merged.Snap.Trends[name], name)
	}
	p95 := single.Snap.Trends["publish"].P95
	require.Equal(t, p95, merged.Snap.Trends["publish"].P95)
	avg := (shards[0].Snap.Trends["publish"].P95 + shards[1].Snap.Trends["publish"].P95) / 2
	require.Greater(t, math.Abs(float64(avg-p95))/float64(p95), 0.1,
		"the mean of the shards' p95s (%s) is not the fleet's p95 (%s): the test would not tell them apart otherwise", avg, p95)

	require.Equal(t, devices, merged.Snap.Devices)
	require.Equal(t, int64(30*devices), merged.Snap.Outcomes.Get("publish acked"))
	require.Equal(t, single.Snap.Generator.Lag, merged.Snap.Generator.Lag)
	require.Len(t, merged.Shards, 2)
	require.Equal(t, sim.Shard{Index: 0, Count: 1}, merged.Shard, "a merged summary is the whole fleet")
}

// Inputs that are not one fleet's disjoint shards are refused, each with
// the reason.
func TestMergeRefuses(t *testing.T) {
	obs := deviceLatencies(1, 10)
	s0 := record(obs, 0, 5, sim.Shard{Index: 0, Count: 2})
	s1 := record(obs, 5, 10, sim.Shard{Index: 1, Count: 2})
	other := s1
	other.Seed = 8
	three := s1
	three.Shard.Count = 3

	for name, c := range map[string]struct {
		in   []Summary
		want string
	}{
		"twice":      {[]Summary{s0, s0}, "shard 0/2 again"},
		"missing":    {[]Summary{s0}, "shards 1/2 missing"},
		"seed":       {[]Summary{s0, other}, "shards of one fleet share the seed"},
		"shardcount": {[]Summary{s0, three}, "not the same fleet"},
	} {
		_, err := Merge([]string{"a.json", "b.json"}[:len(c.in)], c.in, false)
		require.ErrorContains(t, err, c.want, name)
	}
	_, err := Merge([]string{"a.json"}, []Summary{s0}, true)
	require.NoError(t, err, "--partial merges what is there")
}

// A summary without histograms (v1, or edited) cannot be merged exactly
// and is refused rather than approximated.
func TestReadRefusesInexact(t *testing.T) {
	s := record(deviceLatencies(1, 10), 0, 10, sim.Shard{Index: 0, Count: 1})
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, s))
	v1 := bytes.Replace(b.Bytes(), []byte(Schema), []byte("tbsim.summary/v1"), 1)
	_, err := ReadJSON(bytes.NewReader(v1))
	require.ErrorIs(t, err, ErrNotMergeable)

	var doc map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &doc))
	buckets := doc["latency_ms"].(map[string]any)["publish"].(map[string]any)["histogram"].(map[string]any)["buckets"].([]any)
	buckets[0].([]any)[1] = buckets[0].([]any)[1].(float64) + 1
	edited, err := json.Marshal(doc)
	require.NoError(t, err)
	_, err = ReadJSON(bytes.NewReader(edited))
	require.ErrorContains(t, err, "count 300, histogram holds 301")
}

// What WriteJSON writes, ReadJSON reads back: writing it again gives the
// same bytes.
func TestJSONRoundTrip(t *testing.T) {
	s := NewSummary(42, "embedded server", fixture())
	s.OTA = map[string]map[string]int{"CORE_ESP32 1.1.0": {"UPDATED": 497, "FAILED": 3}}
	s.OTATarget, s.ServerCounts = "1.1.0", &ServerCounts{Telemetry: 4990, RateLimited: 2}
	s.Snap.Outcomes = append(s.Snap.Outcomes, sim.NamedCount{Name: "publish ack lost", Count: 4})
	s.ExitCode, s.Reason, s.RuntimeError = 1, "runtime error: boom", "boom"
	var a, b bytes.Buffer
	require.NoError(t, WriteJSON(&a, s))
	back, err := ReadJSON(bytes.NewReader(a.Bytes()))
	require.NoError(t, err)
	require.NoError(t, WriteJSON(&b, back))
	require.Equal(t, a.String(), b.String())
}

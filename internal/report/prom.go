package report

import (
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/internal/version"
	"github.com/tbsim/tbsim/sim"
)

// The exporter reads the fleet once per scrape and turns the snapshot into
// const metrics: the devices keep recording into sim's own lock-free
// atomics, and Prometheus costs nothing between scrapes (measured against
// the library's own histograms in bench/metricslib).

// LatencyBuckets are the classic histogram buckets, in seconds, for the
// ranges tbsim sees: sub-millisecond PUBACKs on a LAN, provisioning and
// connects in milliseconds to seconds, OTA updates of minutes. A bucket's
// count is exact to within one of sim.Trend's sub-buckets (under 1%): an
// observation in a sub-bucket that straddles a bound counts above it.
var LatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60, 120, 300, 600,
}

// NativeSchema is the native histograms' resolution: 2^3 buckets per
// power of two (each about 9% wide), what a client_golang histogram with
// NativeHistogramBucketFactor 1.1 uses. Scrapers that ask for protobuf get
// them next to the classic buckets; the text format carries the classic
// ones only.
const NativeSchema = 3

var latencies = []struct{ key, name, help string }{
	{"provision", "tbsim_provision_seconds", "Provisioning: request sent to credentials saved."},
	{"connect", "tbsim_connect_seconds", "MQTT CONNECT to CONNACK 0."},
	{"publish", "tbsim_publish_seconds", "PUBLISH to PUBACK."},
	{"publish_steady", "tbsim_publish_steady_seconds", "PUBLISH to PUBACK from the first instant every device was online: the steady state, without the ramp."},
	{"chunk", "tbsim_chunk_seconds", "OTA chunk request to chunk received."},
	{"ota", "tbsim_ota_seconds", "OTA end to end: update seen to UPDATED after the reboot."},
	{"generator.lag", "tbsim_generator_lag_seconds", "How late firmware deadlines fired: tbsim's own event-loop lag."},
	{"admission.wait", "tbsim_admission_wait_seconds", "Time devices waited at the handshake admission gate (only those that waited)."},
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descDevices     = desc("tbsim_devices", "Devices in this process's fleet (or shard).")
	descStarted     = desc("tbsim_devices_started", "Devices powered on so far (the ramp).")
	descProvisioned = desc("tbsim_devices_provisioned", "Devices holding credentials.")
	descOnline      = desc("tbsim_devices_online", "Devices connected to ThingsBoard.")
	descStranded    = desc("tbsim_devices_stranded", "Devices refused provisioning for their own name with no token: never online by themselves.")
	descBricked     = desc("tbsim_devices_bricked", "Devices with no bootable image.")
	descByState     = desc("tbsim_devices_by_state", "Devices per firmware connection state.", "state")
	descByVersion   = desc("tbsim_devices_by_version", "Devices per running firmware version.", "version")
	descOTA         = desc("tbsim_ota_devices", "Devices per last reported fw_state.", "fw_state")
	descOTABytes    = desc("tbsim_ota_bytes_total", "OTA chunk bytes written to flash.")
	descEvents      = desc("tbsim_events_total", "Events by outcome.", "outcome")
	descDisconnects = desc("tbsim_disconnects_total", "Established connections lost, by cause.", "cause")
	descFailures    = desc("tbsim_failures_total", "Failures devices saw, by cause of the taxonomy (stranded: devices); ota_failed by fw_error class in detail.", "cause", "detail")
	descCPU         = desc("tbsim_generator_cpu_cores", "Cores tbsim used in the last second.")
	descCPUAvg      = desc("tbsim_generator_cpu_cores_avg", "Cores tbsim used on average over the run.")
	descCores       = desc("tbsim_generator_cores", "Cores tbsim may use (GOMAXPROCS).")
	descBound       = desc("tbsim_generator_bound", "1 when the run is limited by tbsim itself, not the server.")
	descLimit       = desc("tbsim_handshakes_limit", "Admission limit on connection handshakes in flight (0: none).")
	descInFlight    = desc("tbsim_handshakes_in_flight", "Connection handshakes in flight.")
	descQueued      = desc("tbsim_handshakes_queued", "Devices waiting at the admission gate.")
	descCuts        = desc("tbsim_handshakes_limit_cuts_total", "Times congestion shrank the admission limit.")
	descBuild       = desc("tbsim_build_info", "Always 1: the tbsim build, as tbsim version prints it.", "version", "revision", "goversion")
	latencyDescs    = func() map[string]*prometheus.Desc {
		m := map[string]*prometheus.Desc{}
		for _, l := range latencies {
			m[l.key] = desc(l.name, l.help)
		}
		return m
	}()
)

// fwStates are the fw_state values a device reports; each has a series
// from the start, so a dashboard's legend and rate() need no first event.
var fwStates = []tbapi.FwState{tbapi.FwDownloading, tbapi.FwDownloaded, tbapi.FwVerified, tbapi.FwUpdating, tbapi.FwUpdated, tbapi.FwFailed}

// Collector is a prometheus.Collector over a fleet's snapshots.
type Collector struct {
	snapshot func() sim.Snapshot
	build    version.Info
}

// NewCollector exports what snapshot returns; it is called once per scrape.
func NewCollector(snapshot func() sim.Snapshot) *Collector {
	return &Collector{snapshot: snapshot, build: version.Get()}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDevices, descStarted, descProvisioned, descOnline, descStranded, descBricked,
		descByState, descByVersion, descOTA, descOTABytes, descEvents, descDisconnects, descFailures, descCPU, descCPUAvg,
		descCores, descBound, descLimit, descInFlight, descQueued, descCuts, descBuild} {
		ch <- d
	}
	for _, l := range latencies {
		ch <- latencyDescs[l.key]
	}
}

// Collect takes one snapshot and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descDevices, float64(s.Devices))
	gauge(descStarted, float64(s.Started))
	gauge(descProvisioned, float64(s.Provisioned))
	gauge(descOnline, float64(s.Online))
	gauge(descStranded, float64(s.Stranded))
	gauge(descBricked, float64(s.Bricked))
	for st := firmware.StateOff; st <= firmware.StateBackoff; st++ {
		gauge(descByState, float64(s.ByState[st.String()]), st.String())
	}
	for _, v := range sortedKeys(s.Versions) {
		gauge(descByVersion, float64(s.Versions[v]), v)
	}
	for _, f := range fwStates {
		gauge(descOTA, float64(s.OTAStates[string(f)]), string(f))
	}
	counter(descOTABytes, float64(s.OTABytes))
	for _, o := range s.Outcomes {
		counter(descEvents, float64(o.Count), o.Name)
	}
	for _, name := range sortedKeys(outcomeFields) { // from the start, so rate() needs no first event
		if s.Outcomes.Get(name) == 0 {
			counter(descEvents, 0, name)
		}
	}
	for _, o := range s.Disconnects {
		counter(descDisconnects, float64(o.Count), o.Name)
	}
	c.failures(s, counter)
	g := s.Generator
	gauge(descCPU, g.CPUNow)
	gauge(descCPUAvg, g.CPUAvg)
	gauge(descCores, float64(g.Cores))
	gauge(descBound, b2f(g.Bound))
	gauge(descLimit, float64(g.Admission.Limit))
	gauge(descInFlight, float64(g.Admission.InFlight))
	gauge(descQueued, float64(g.Admission.Queued))
	counter(descCuts, float64(g.Admission.Cuts))
	gauge(descBuild, 1, c.build.Version, c.build.Revision, c.build.GoVersion)
	for _, l := range latencies {
		if h, ok := s.Histograms[l.key]; ok {
			ch <- histogramMetric(latencyDescs[l.key], h)
		}
	}
}

// failures sends every cause of the taxonomy, at 0 when none was seen.
func (c *Collector) failures(s sim.Snapshot, counter func(*prometheus.Desc, float64, ...string)) {
	seen := map[string]bool{}
	for _, e := range s.Errors {
		counter(descFailures, float64(e.Count), e.Cause, e.Detail)
		seen[e.Cause] = true
	}
	for _, id := range sim.CauseIDs() {
		if !seen[id] {
			counter(descFailures, 0, id, "")
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// histogramMetric turns a trend's buckets into a histogram with both the
// classic buckets above and native buckets of NativeSchema.
func histogramMetric(d *prometheus.Desc, h sim.Histogram) prometheus.Metric {
	native := map[int]int64{}
	var zero uint64
	// Buckets come in ascending order, so native indexes do too: a run of
	// sub-buckets that share one is added up before it goes in the map.
	run, runIdx := int64(0), 0
	for _, b := range h.Buckets {
		if b.LowUs == 0 {
			zero += b.Count
			continue
		}
		// A sub-bucket goes to the native bucket of its middle value: our
		// sub-buckets are under 1% wide, native ones about 9%.
		idx := nativeIndex(float64(b.LowUs+b.HighUs()-1) / 2 / 1e6)
		if idx != runIdx && run > 0 {
			native[runIdx] += run
			run = 0
		}
		runIdx = idx
		run += int64(b.Count)
	}
	if run > 0 {
		native[runIdx] += run
	}
	m := prometheus.MustNewConstNativeHistogram(d, h.Count, float64(h.SumUs)/1e6, native, nil, zero, NativeSchema,
		prometheus.DefNativeHistogramZeroThreshold, time.Time{})
	classic := make([]*dto.Bucket, len(LatencyBuckets))
	var cum uint64
	k := 0
	for i, le := range LatencyBuckets {
		leUs := uint64(math.Round(le * 1e6))
		// A bucket counts at le when all its values are at most le.
		for k < len(h.Buckets) && h.Buckets[k].HighUs()-1 <= leUs {
			cum += h.Buckets[k].Count
			k++
		}
		classic[i] = &dto.Bucket{CumulativeCount: new(cum), UpperBound: new(le)}
	}
	return withClassic{m, classic}
}

// nativeBounds are the upper bounds of the native buckets within one power
// of two, as fractions in (0.5, 1]: 2^((j-7)/8) for j = 0..7.
var nativeBounds = func() []float64 {
	b := make([]float64, 1<<NativeSchema)
	for j := range b {
		b[j] = math.Exp2(float64(j+1)/(1<<NativeSchema) - 1)
	}
	return b
}()

// nativeIndex is the native bucket of v > 0 for NativeSchema: bucket i
// holds (2^((i-1)/8), 2^(i/8)], i = ceil(8 log2 v). Like client_golang it
// takes the binary exponent and searches the bounds: no logarithm, exact
// at the bounds.
func nativeIndex(v float64) int {
	frac, exp := math.Frexp(v) // v = frac * 2^exp, frac in [0.5, 1)
	if frac == 0.5 {           // a power of two is the top of the bucket below
		return (exp - 1) << NativeSchema
	}
	return exp<<NativeSchema + sort.SearchFloat64s(nativeBounds, frac) - (1<<NativeSchema - 1)
}

// withClassic adds classic buckets to a const native histogram: the
// library's const constructors make one or the other, a live histogram
// configured with both exposes both, and so does this.
type withClassic struct {
	prometheus.Metric
	buckets []*dto.Bucket
}

func (w withClassic) Write(out *dto.Metric) error {
	if err := w.Metric.Write(out); err != nil {
		return err
	}
	out.Histogram.Bucket = w.buckets
	return nil
}

// NewRegistry holds the fleet's collector with Go's runtime and process
// collectors and go_build_info, the metrics every Go exporter has.
func NewRegistry(snapshot func() sim.Snapshot) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(snapshot), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewBuildInfoCollector())
	return reg
}

// MetricsHandler serves reg: the text format (with its version and
// charset) or, when the scraper asks, protobuf with native histograms.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

package sim

import (
	"math"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Trend records durations without a lock: values (in microseconds) land in
// log-linear buckets of atomic counters (128 sub-buckets per power of two, so
// under 1% error); percentiles are computed by the HdrHistogram library from
// a snapshot of the buckets.
type Trend struct {
	buckets [trendMajors * trendSub]atomic.Uint64
	count   atomic.Uint64
	sumUs   atomic.Uint64
	maxUs   atomic.Uint64
}

const (
	trendSubBits = 7
	trendSub     = 1 << trendSubBits
	trendMajors  = 64 - trendSubBits
)

func bucketOf(v uint64) int {
	if v < trendSub {
		return int(v)
	}
	major := bits.Len64(v) - trendSubBits // >= 1
	sub := v >> (major - 1) & (trendSub - 1)
	return major*trendSub + int(sub)
}

// bucketLow is the smallest value of a bucket.
func bucketLow(i int) uint64 {
	major, sub := i/trendSub, uint64(i%trendSub)
	if major == 0 {
		return sub
	}
	return (trendSub | sub) << (major - 1)
}

// Observe records one duration.
func (t *Trend) Observe(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	t.buckets[bucketOf(us)].Add(1)
	t.count.Add(1)
	t.sumUs.Add(us)
	for {
		m := t.maxUs.Load()
		if us <= m || t.maxUs.CompareAndSwap(m, us) {
			break
		}
	}
}

// TrendStats are a trend's summary, in the spirit of k6's.
type TrendStats struct {
	Count uint64        `json:"count"`
	Avg   time.Duration `json:"avg"`
	P50   time.Duration `json:"p50"`
	P90   time.Duration `json:"p90"`
	P95   time.Duration `json:"p95"`
	P99   time.Duration `json:"p99"`
	Max   time.Duration `json:"max"`
}

// Stats summarises the trend. Quantiles are read off the buckets directly
// (the value reported is the middle of the bucket holding the rank, never
// above the maximum seen): no allocation, so a wait condition or a live view
// may ask often.
func (t *Trend) Stats() TrendStats {
	i := 0
	return trendStats(t.count.Load(), t.sumUs.Load(), t.maxUs.Load(), func() (uint64, uint64, bool) {
		for ; i < len(t.buckets); i++ {
			if c := t.buckets[i].Load(); c != 0 {
				i++
				return bucketLow(i - 1), c, true
			}
		}
		return 0, 0, false
	})
}

func ceil(x float64) float64 { return math.Ceil(x) }

// Counter is a set of named counts (by outcome or cause). Known names are
// lock-free after their first use.
type Counter struct {
	m sync.Map // string -> *atomic.Int64
}

// Add adds n to name.
func (c *Counter) Add(name string, n int64) {
	v, ok := c.m.Load(name)
	if !ok {
		v, _ = c.m.LoadOrStore(name, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(n)
}

// Get returns a count.
func (c *Counter) Get(name string) int64 {
	if v, ok := c.m.Load(name); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// Counts is a sorted snapshot, largest first.
type Counts []NamedCount

// NamedCount is one entry of Counts.
type NamedCount struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// Snapshot returns every count, largest first.
func (c *Counter) Snapshot() Counts {
	var out Counts
	c.m.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Load(); n != 0 {
			out = append(out, NamedCount{k.(string), n})
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Total sums the counts.
func (c Counts) Total() int64 {
	var n int64
	for _, e := range c {
		n += e.Count
	}
	return n
}

// Get returns the count of a name (0 if absent).
func (c Counts) Get(name string) int64 {
	for _, e := range c {
		if e.Name == name {
			return e.Count
		}
	}
	return 0
}

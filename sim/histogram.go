package sim

import (
	"fmt"
	"time"
)

// Histogram is a plain copy of a Trend: its non-empty buckets, count, sum
// and maximum. It is what a report keeps of a latency so that shards'
// results merge exactly (adding buckets loses nothing; averaging quantiles
// would be wrong) and what an exporter turns into Prometheus buckets.
type Histogram struct {
	Buckets []Bucket // non-empty buckets, by ascending value
	Count   uint64
	SumUs   uint64
	MaxUs   uint64
}

// Bucket is one bucket of a Histogram: the integer microsecond values
// [LowUs, HighUs()) fell in it Count times.
type Bucket struct {
	LowUs uint64
	Count uint64
}

// HighUs is the first value above the bucket.
func (b Bucket) HighUs() uint64 { return bucketLow(bucketOf(b.LowUs) + 1) }

// BucketAt returns the bucket whose lowest value is lowUs; ok is false when
// no bucket starts there (a report written with another bucket layout).
func BucketAt(lowUs, count uint64) (b Bucket, ok bool) {
	return Bucket{LowUs: lowUs, Count: count}, bucketLow(bucketOf(lowUs)) == lowUs
}

// Histogram copies the trend's buckets. Its Count is what the buckets
// hold, so a copy taken while observations land is consistent (its sum and
// maximum may include an observation or two more).
func (t *Trend) Histogram() Histogram {
	if t.count.Load() == 0 {
		return Histogram{}
	}
	// Counted first, so the copy is one allocation (a scrape or a snapshot
	// takes one per trend).
	n := 0
	for i := range t.buckets {
		if t.buckets[i].Load() != 0 {
			n++
		}
	}
	h := Histogram{Buckets: make([]Bucket, 0, n)}
	for i := range t.buckets {
		if c := t.buckets[i].Load(); c != 0 {
			h.Buckets = append(h.Buckets, Bucket{LowUs: bucketLow(i), Count: c})
			h.Count += c
		}
	}
	h.SumUs, h.MaxUs = t.sumUs.Load(), t.maxUs.Load()
	return h
}

// Merge adds o's observations to h, bucket by bucket: the result is the
// histogram one trend would have recorded had it seen both.
func (h *Histogram) Merge(o Histogram) {
	merged := make([]Bucket, 0, max(len(h.Buckets), len(o.Buckets)))
	i, j := 0, 0
	for i < len(h.Buckets) || j < len(o.Buckets) {
		switch {
		case j == len(o.Buckets) || i < len(h.Buckets) && h.Buckets[i].LowUs < o.Buckets[j].LowUs:
			merged = append(merged, h.Buckets[i])
			i++
		case i == len(h.Buckets) || o.Buckets[j].LowUs < h.Buckets[i].LowUs:
			merged = append(merged, o.Buckets[j])
			j++
		default:
			merged = append(merged, Bucket{LowUs: h.Buckets[i].LowUs, Count: h.Buckets[i].Count + o.Buckets[j].Count})
			i, j = i+1, j+1
		}
	}
	h.Buckets = merged
	h.Count += o.Count
	h.SumUs += o.SumUs
	h.MaxUs = max(h.MaxUs, o.MaxUs)
}

// Check reports a histogram whose buckets do not add up to its count or
// are not in the trend's layout: a hand-edited or foreign report.
func (h Histogram) Check() error {
	var n uint64
	for k, b := range h.Buckets {
		if _, ok := BucketAt(b.LowUs, b.Count); !ok {
			return fmt.Errorf("bucket %d starts at %d µs, which is not a bucket boundary", k, b.LowUs)
		}
		if k > 0 && b.LowUs <= h.Buckets[k-1].LowUs {
			return fmt.Errorf("bucket %d (%d µs) is out of order", k, b.LowUs)
		}
		n += b.Count
	}
	if n != h.Count {
		return fmt.Errorf("buckets hold %d observations, count says %d", n, h.Count)
	}
	if h.Count > 0 && h.MaxUs < h.Buckets[len(h.Buckets)-1].LowUs {
		return fmt.Errorf("max %d µs is below the last bucket (%d µs)", h.MaxUs, h.Buckets[len(h.Buckets)-1].LowUs)
	}
	return nil
}

// Stats summarises the histogram exactly as Trend.Stats summarises the
// trend it was copied from.
func (h Histogram) Stats() TrendStats {
	k := 0
	return trendStats(h.Count, h.SumUs, h.MaxUs, func() (uint64, uint64, bool) {
		if k == len(h.Buckets) {
			return 0, 0, false
		}
		b := h.Buckets[k]
		k++
		return b.LowUs, b.Count, true
	})
}

// trendStats computes a trend's summary from its totals and its non-empty
// buckets in ascending order (next returns a bucket's lowest value and
// count, or false at the end). Quantiles are the middle of the bucket
// holding the rank, never above the maximum seen.
func trendStats(n, sumUs, maxUs uint64, next func() (low, count uint64, ok bool)) TrendStats {
	if n == 0 {
		return TrendStats{}
	}
	qs := [4]float64{0.50, 0.90, 0.95, 0.99}
	var ranks [4]uint64
	for i, q := range qs {
		ranks[i] = max(uint64(ceil(q*float64(n))), 1)
	}
	var vals [4]uint64
	var cum uint64
	done := 0
	for done < len(ranks) {
		lo, c, ok := next()
		if !ok {
			break
		}
		cum += c
		for done < len(ranks) && cum >= ranks[done] {
			hi := bucketLow(bucketOf(lo) + 1)
			vals[done] = min(max(lo+(hi-lo)/2, 1), maxUs)
			done++
		}
	}
	for ; done < len(ranks); done++ { // counts raced ahead of the buckets
		vals[done] = maxUs
	}
	us := func(v uint64) time.Duration { return time.Duration(v) * time.Microsecond }
	return TrendStats{
		Count: n, Avg: us(sumUs / n),
		P50: us(vals[0]), P90: us(vals[1]), P95: us(vals[2]), P99: us(vals[3]),
		Max: us(maxUs),
	}
}

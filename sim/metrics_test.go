package sim

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTrendPercentiles(t *testing.T) {
	var tr Trend
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= 10000; i++ {
				tr.Observe(time.Duration(i) * time.Microsecond * 100) // 0.1 ms .. 1 s, uniform
			}
		}()
	}
	wg.Wait()
	st := tr.Stats()
	require.Equal(t, uint64(40000), st.Count)
	near := func(got, want time.Duration) {
		t.Helper()
		require.InEpsilon(t, float64(want), float64(got), 0.02, "got %v want %v", got, want)
	}
	near(st.P50, 500*time.Millisecond)
	near(st.P90, 900*time.Millisecond)
	near(st.P99, 990*time.Millisecond)
	near(st.Avg, 500*time.Millisecond)
	require.Equal(t, time.Second, st.Max)
	require.LessOrEqual(t, st.P99, st.Max)
	require.Equal(t, TrendStats{}, (&Trend{}).Stats())
}

func TestBuckets(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345} {
		i := bucketOf(v)
		require.LessOrEqual(t, bucketLow(i), v, "v=%d", v)
		require.Greater(t, bucketLow(i+1), v, "v=%d", v)
	}
}

func TestCounter(t *testing.T) {
	var c Counter
	c.Add("network", 2)
	c.Add("auth refused", 5)
	c.Add("network", 1)
	require.Equal(t, Counts{{"auth refused", 5}, {"network", 3}}, c.Snapshot())
	require.Equal(t, int64(8), c.Snapshot().Total())
}

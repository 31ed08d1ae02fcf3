package device

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRadio(t *testing.T) {
	t.Parallel()
	cfg := WiFiConfig{ConnectMin: time.Second, ConnectMax: 5 * time.Second, FailRate: 0.2, Seed: 3}
	ips := map[string]bool{}
	fails := 0
	now := time.Now()
	for i := uint32(0); i < 2000; i++ {
		r := NewRadio(cfg, NewIdentity(3, i), rand.New(rand.NewPCG(3, uint64(i))))
		info := r.Info()
		require.Equal(t, "tbsim", info.SSID)
		require.GreaterOrEqual(t, info.Channel, 1)
		require.LessOrEqual(t, info.Channel, 11)
		require.Regexp(t, `^10\.\d+\.\d+\.\d+$`, info.LocalIP)
		require.False(t, ips[info.LocalIP], "IP %s reused", info.LocalIP)
		ips[info.LocalIP] = true
		_, err := ParseMAC(info.BSSID)
		require.NoError(t, err)
		for k := 0; k < 200; k++ {
			rssi := r.Info().RSSI
			require.GreaterOrEqual(t, rssi, -90)
			require.LessOrEqual(t, rssi, -30)
			temp := r.Temperature()
			require.GreaterOrEqual(t, temp, 10.0)
			require.LessOrEqual(t, temp, 20.0)
		}
		d, fail := r.Attempt(now)
		require.GreaterOrEqual(t, d, time.Second)
		require.Less(t, d, 5*time.Second)
		if fail != "" {
			fails++
		}
	}
	require.InDelta(t, 400, fails, 80, "about 20%% of attempts fail")

	r := NewRadio(WiFiConfig{}, NewIdentity(1, 1), rand.New(rand.NewPCG(1, 1)))
	r.DropUntil(now.Add(time.Minute))
	_, fail := r.Attempt(now)
	require.Equal(t, "NO_AP_FOUND", fail, "no AP while the link is dropped")
	_, fail = r.Attempt(now.Add(2 * time.Minute))
	require.Empty(t, fail)
}

// RSSI moves slowly: one reading to the next differs by a few dB at most.
func TestRadioRSSIWalk(t *testing.T) {
	r := NewRadio(WiFiConfig{}, NewIdentity(1, 1), rand.New(rand.NewPCG(1, 2)))
	prev := r.Info().RSSI
	for i := 0; i < 1000; i++ {
		cur := r.Info().RSSI
		require.LessOrEqual(t, abs(cur-prev), 6)
		prev = cur
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

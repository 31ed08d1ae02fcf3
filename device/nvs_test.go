package device

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/firmware"
)

func nvsStores(t *testing.T) map[string]func() firmware.NVS {
	bolt, err := OpenBoltNVS(filepath.Join(t.TempDir(), "nvs.db"))
	require.NoError(t, err)
	t.Cleanup(func() { bolt.Close() })
	return map[string]func() firmware.NVS{
		"mem":  func() firmware.NVS { return NewMemNVS() },
		"bolt": func() firmware.NVS { return bolt.Device("24:0A:C4:00:00:04") },
	}
}

func TestNVSLimits(t *testing.T) {
	for name, mk := range nvsStores(t) {
		t.Run(name, func(t *testing.T) {
			n := mk()
			_, err := n.GetString("tb", "token")
			require.ErrorIs(t, err, firmware.ErrNotFound)
			require.ErrorContains(t, err, "ESP_ERR_NVS_NOT_FOUND")
			require.NoError(t, n.SetString("tb", "k234567890abcde", "v"))
			require.ErrorIs(t, n.SetString("tb", "k234567890abcdef", "v"), ErrNVSKeyTooLong)
			require.ErrorIs(t, n.SetString("n234567890abcdef", "k", "v"), ErrNVSKeyTooLong)
			require.NoError(t, n.SetString("tb", "big", strings.Repeat("x", 3999)))
			require.ErrorIs(t, n.SetString("tb", "big", strings.Repeat("x", 4000)), ErrNVSValueTooLong)
			v, err := n.GetString("tb", "big")
			require.NoError(t, err)
			require.Len(t, v, 3999, "a refused write must leave the old value")
			require.NoError(t, n.SetString("tb", "token", "abc"))
			v, err = n.GetString("tb", "token")
			require.NoError(t, err)
			require.Equal(t, "abc", v)
			require.NoError(t, n.Erase("tb", "token"))
			require.NoError(t, n.Erase("tb", "token"), "erasing a missing key")
			_, err = n.GetString("tb", "token")
			require.True(t, errors.Is(err, firmware.ErrNotFound))
		})
	}
}

func TestBoltNVSDevicesAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nvs.db")
	s, err := OpenBoltNVS(path)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := NewIdentity(1, uint32(i))
			require.NoError(t, s.Device(id.Name()).SetString("tb", "token", id.Name()))
		}(i)
	}
	wg.Wait()
	devs, err := s.Devices()
	require.NoError(t, err)
	require.Len(t, devs, 50)
	require.NoError(t, s.EraseDevice(devs[0]))
	require.NoError(t, s.Close())

	s, err = OpenBoltNVS(path)
	require.NoError(t, err)
	defer s.Close()
	devs, err = s.Devices()
	require.NoError(t, err)
	require.Len(t, devs, 49)
	v, err := s.Device(devs[3]).GetString("tb", "token")
	require.NoError(t, err)
	require.Equal(t, devs[3], v, "each device keeps its own token")
}

// BenchmarkBoltNVSBurst is 500 devices saving their token at once, as after a
// provisioning storm. DB.Batch merges them into few transactions (fsyncs).
func BenchmarkBoltNVSBurst(b *testing.B) {
	s, err := OpenBoltNVS(filepath.Join(b.TempDir(), "nvs.db"))
	require.NoError(b, err)
	defer s.Close()
	devs := make([]firmware.NVS, 500)
	for i := range devs {
		devs[i] = s.Device(NewIdentity(1, uint32(i)).Name())
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		var wg sync.WaitGroup
		for _, d := range devs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := d.SetString("tb", "token", "A1b2C3d4E5f6G7h8I9j0"); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(devs)), "µs/write")
}

// BenchmarkBoltNVSSerial is the same 500 writes one after another: one fsync each.
func BenchmarkBoltNVSSerial(b *testing.B) {
	s, err := OpenBoltNVS(filepath.Join(b.TempDir(), "nvs.db"))
	require.NoError(b, err)
	defer s.Close()
	for it := 0; it < b.N; it++ {
		for i := 0; i < 500; i++ {
			if err := s.Device(NewIdentity(1, uint32(i)).Name()).SetString("tb", "token", "A1b2C3d4E5f6G7h8I9j0"); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*500), "µs/write")
}

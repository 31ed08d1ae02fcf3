//go:build tinygo

package esp32

import (
	"github.com/tbsim/tbsim/espidf/nvs"
	"github.com/tbsim/tbsim/firmware"
)

// NVS is firmware.NVS over ESP-IDF's NVS format in the nvs partition.
type NVS struct{ s *nvs.Store }

var _ firmware.NVS = (*NVS)(nil)

// OpenNVS opens the partition. Like Arduino's initArduino, a partition that
// ESP-IDF would refuse (no free page, newer format) is erased and opened
// again; Erased says so.
func OpenNVS(p Partition) (n *NVS, erased bool, err error) {
	f := NewFlash(p)
	s, err := nvs.Open(f, int(p.Size))
	if err != nil {
		if err := f.EraseBlocks(0, int64(p.Size/sectorSize)); err != nil {
			return nil, false, err
		}
		// The flash now reads 0xFF, but the window still shows boot-time bytes.
		s, err = nvs.Open(erasedFlash{f}, int(p.Size))
		if err != nil {
			return nil, true, err
		}
		return &NVS{s}, true, nil
	}
	return &NVS{s}, false, nil
}

// erasedFlash reads as erased flash (0xFF) and writes through.
type erasedFlash struct{ *Flash }

func (e erasedFlash) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		p[i] = 0xFF
	}
	return len(p), nil
}

// GetString returns firmware.ErrNotFound for a missing key.
func (n *NVS) GetString(namespace, key string) (string, error) {
	v, err := n.s.GetString(namespace, key)
	if nvs.IsNotFound(err) {
		return "", firmware.ErrNotFound
	}
	return v, err
}

// SetString stores a string.
func (n *NVS) SetString(namespace, key, value string) error {
	return n.s.SetString(namespace, key, value)
}

// Erase removes a key.
func (n *NVS) Erase(namespace, key string) error { return n.s.Erase(namespace, key) }

//go:build go1.23

package nvs

// Flash is the partition the NVS lives in, addressed from 0: the methods of
// TinyGo's machine.BlockDevice that NVS needs, with 4096-byte erase blocks.
// Writes only clear bits (NOR flash); an erased block reads as 0xFF.
type Flash interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// EraseBlocks erases n 4096-byte blocks starting at block start.
	EraseBlocks(start, n int64) error
}

// MemFlash is NOR flash in memory: WriteAt ANDs the bytes in, as the chip
// does, so a bug that writes over data without erasing shows.
type MemFlash []byte

var _ Flash = MemFlash(nil)

// NewMemFlash returns size bytes of erased flash.
func NewMemFlash(size int) MemFlash {
	m := make(MemFlash, size)
	for i := range m {
		m[i] = 0xFF
	}
	return m
}

// ReadAt copies from the flash.
func (m MemFlash) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, ErrOutOfRange
	}
	return copy(p, m[off:]), nil
}

// WriteAt clears the bits that are 0 in p.
func (m MemFlash) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, ErrOutOfRange
	}
	for i, b := range p {
		m[off+int64(i)] &= b
	}
	return len(p), nil
}

// EraseBlocks sets whole blocks to 0xFF.
func (m MemFlash) EraseBlocks(start, n int64) error {
	if start < 0 || n < 0 || (start+n)*PageSize > int64(len(m)) {
		return ErrOutOfRange
	}
	for i := start * PageSize; i < (start+n)*PageSize; i++ {
		m[i] = 0xFF
	}
	return nil
}

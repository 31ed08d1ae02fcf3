//go:build tinygo

package esp32

import (
	"errors"
	"unsafe"
)

// The ROM's SPI flash functions (esp_rom_spiflash.h; addresses in TinyGo's
// esp32c3.ld). They return 0 on success.
//
//export esp_rom_spiflash_unlock
func romUnlock() int32

//export esp_rom_spiflash_erase_sector
func romEraseSector(sector uint32) int32

//export esp_rom_spiflash_write
func romWrite(dest uint32, src *uint32, n int32) int32

const (
	sectorSize = 4096
	flashMap   = 0x3C000000 // data bus window onto the flash (MMU set up by the ROM loader)
)

// Flash errors.
var (
	ErrFlashAlign = errors.New("flash: writes must be 4-byte aligned and a multiple of 4 bytes")
	ErrFlashRange = errors.New("flash: outside the partition")
	ErrFlashROM   = errors.New("flash: the ROM's spiflash call failed")
)

// Flash is one partition of the chip's SPI flash as a block device with the
// shape of TinyGo's machine.BlockDevice (ReadAt, WriteAt, EraseBlocks, sizes).
// It is not safe for concurrent use.
type Flash struct {
	p        Partition
	unlocked bool
	buf      []uint32 // word-aligned RAM copy of what is written: the ROM reads its source word by word
}

// NewFlash returns the block device of a partition.
func NewFlash(p Partition) *Flash { return &Flash{p: p} }

// Size is the partition's size in bytes.
func (f *Flash) Size() int64 { return int64(f.p.Size) }

// WriteBlockSize is the write granularity.
func (f *Flash) WriteBlockSize() int64 { return 4 }

// EraseBlockSize is the erase granularity, one sector.
func (f *Flash) EraseBlockSize() int64 { return sectorSize }

func (f *Flash) inRange(off int64, n int) bool {
	return off >= 0 && off+int64(n) <= int64(f.p.Size)
}

// ReadAt reads through the memory-mapped window: the flash as it was at
// boot (see the package's caveats).
func (f *Flash) ReadAt(p []byte, off int64) (int, error) {
	if !f.inRange(off, len(p)) {
		return 0, ErrFlashRange
	}
	base := uintptr(flashMap + f.p.Offset + uint32(off))
	for i := range p {
		p[i] = *(*byte)(unsafe.Pointer(base + uintptr(i)))
	}
	return len(p), nil
}

// WriteAt programs bytes that must be erased first (bits only clear).
func (f *Flash) WriteAt(p []byte, off int64) (int, error) {
	if !f.inRange(off, len(p)) {
		return 0, ErrFlashRange
	}
	if off%4 != 0 || len(p)%4 != 0 {
		return 0, ErrFlashAlign
	}
	if err := f.unlock(); err != nil {
		return 0, err
	}
	if cap(f.buf) < len(p)/4 {
		f.buf = make([]uint32, len(p)/4)
	}
	w := f.buf[:len(p)/4]
	for i := range w {
		w[i] = uint32(p[4*i]) | uint32(p[4*i+1])<<8 | uint32(p[4*i+2])<<16 | uint32(p[4*i+3])<<24
	}
	if len(w) > 0 && romWrite(f.p.Offset+uint32(off), &w[0], int32(len(p))) != 0 {
		return 0, ErrFlashROM
	}
	return len(p), nil
}

// EraseBlocks erases n sectors from sector start of the partition.
func (f *Flash) EraseBlocks(start, n int64) error {
	if start < 0 || n < 0 || (start+n)*sectorSize > int64(f.p.Size) {
		return ErrFlashRange
	}
	if err := f.unlock(); err != nil {
		return err
	}
	for i := int64(0); i < n; i++ {
		if romEraseSector(f.p.Offset/sectorSize+uint32(start+i)) != 0 {
			return ErrFlashROM
		}
	}
	return nil
}

func (f *Flash) unlock() error {
	if f.unlocked {
		return nil
	}
	if romUnlock() != 0 {
		return ErrFlashROM
	}
	f.unlocked = true
	return nil
}

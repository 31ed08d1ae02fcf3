//go:build go1.23

package appimage

import "strconv"

// span is a half-open address range [lo, hi); the zero span is "none".
type span struct{ lo, hi uint32 }

func (s span) has(a uint64) bool { return s.hi != 0 && a >= uint64(s.lo) && a < uint64(s.hi) }

// overlaps is bootloader_util_regions_overlap: end1 > start2 && end2 > start1.
func (s span) overlaps(lo, hi uint64) bool {
	return s.hi != 0 && uint64(s.hi) > lo && hi > uint64(s.lo)
}

// memMap is what ESP-IDF's second-stage bootloader knows of a chip when it
// loads an app: the flash-mapped windows (should_map), the internal RAM a
// segment may be copied to, and the bootloader's own memory a segment must
// not overwrite (verify_load_addresses). Values from ESP-IDF 102122904ad
// (master, 2026): components/soc/<chip>/include/soc/soc.h and soc_caps.h,
// components/bootloader/subproject/main/ld/<chip>/bootloader.memory.ld.in.
type memMap struct {
	drom, irom span // SOC_DROM_LOW/HIGH, SOC_IROM_LOW/HIGH
	dram, iram span // SOC_DRAM_LOW/HIGH, SOC_IRAM_LOW/HIGH
	// The same SRAM seen from the data and instruction buses
	// (SOC_DIRAM_*); inverted on the ESP32 (SOC_DIRAM_INVERTED: word order
	// reversed).
	diramD, diramI span
	inverted       bool
	// RTC memory (SOC_RTC_IRAM/DRAM for fast memory, SOC_RTC_DATA for slow),
	// zero where soc_caps.h says the chip has none.
	rtcI, rtcD, rtcSlow span
	// The bootloader's own: dram_seg (its .data/.bss/.rodata, whose used
	// part is _dram_start.._dram_end: the whole segment is taken here),
	// iram_loader_seg (the code that loads the app), and its stack, which
	// verify_load_addresses keeps STACK_LOAD_HEADROOM below
	// SOC_ROM_STACK_START clear (the stack pointer at that moment sits a
	// little below SOC_ROM_STACK_START; the top is taken here).
	blData, blLoader span
	romStack         uint32
	// cache is internal RAM outside IRAM that only RegionName names: the
	// ESP32's PRO and APP CPU caches (SOC_CACHE_PRO_LOW..SOC_CACHE_APP_HIGH),
	// where its bootloader's loader code runs.
	cache span
}

// stackHeadroom is STACK_LOAD_HEADROOM (esp_image_format.c).
const stackHeadroom = 32768

// mmuPage is SPI_FLASH_MMU_PAGE_SIZE on these chips (none of them has
// SOC_MMU_PAGE_SIZE_CONFIGURABLE): flash-mapped segments must sit at the
// same offset in a page in the file as in the address space.
const mmuPage = 0x10000

func memMapOf(chip uint16) (m memMap, ok bool) {
	switch chip {
	case ChipESP32:
		return memMap{
			drom: span{0x3F400000, 0x3F800000}, irom: span{0x400D0000, 0x40400000},
			dram: span{0x3FFAE000, 0x40000000}, iram: span{0x40080000, 0x400AA000},
			diramD: span{0x3FFE0000, 0x40000000}, diramI: span{0x400A0000, 0x400C0000}, inverted: true,
			rtcI: span{0x400C0000, 0x400C2000}, rtcD: span{0x3FF80000, 0x3FF82000}, rtcSlow: span{0x50000000, 0x50002000},
			blData: span{0x3FFF0000, 0x3FFF6000}, blLoader: span{0x40078000, 0x40080000}, romStack: 0x3FFE3F20,
			cache: span{0x40070000, 0x40080000},
		}, true
	case ChipESP32S2:
		return memMap{
			drom: span{0x3F000000, 0x3FF80000}, irom: span{0x40080000, 0x40800000},
			dram: span{0x3FFB0000, 0x40000000}, iram: span{0x40020000, 0x40070000},
			diramD: span{0x3FFB0000, 0x40000000}, diramI: span{0x40020000, 0x40070000},
			rtcI: span{0x40070000, 0x40072000}, rtcD: span{0x3FF9E000, 0x3FFA0000}, rtcSlow: span{0x50000000, 0x50002000},
			blData: span{0x3FFE5000, 0x3FFEAB00}, blLoader: span{0x4004E000, 0x40055000}, romStack: 0x3FFFE70C,
		}, true
	case ChipESP32S3:
		return memMap{
			drom: span{0x3C000000, 0x3E000000}, irom: span{0x42000000, 0x44000000},
			dram: span{0x3FC88000, 0x3FD00000}, iram: span{0x40370000, 0x403E0000},
			diramD: span{0x3FC88000, 0x3FCF0000}, diramI: span{0x40378000, 0x403E0000},
			rtcI: span{0x600FE000, 0x60100000}, rtcD: span{0x600FE000, 0x60100000}, rtcSlow: span{0x50000000, 0x50002000},
			blData: span{0x3FCE2700, 0x3FCE7700}, blLoader: span{0x403CB700, 0x403D2700}, romStack: 0x3FCEB710,
		}, true
	case ChipESP32C3:
		return memMap{
			drom: span{0x3C000000, 0x3C800000}, irom: span{0x42000000, 0x42800000},
			dram: span{0x3FC80000, 0x3FCE0000}, iram: span{0x4037C000, 0x403E0000},
			diramD: span{0x3FC80000, 0x3FCE0000}, diramI: span{0x40380000, 0x403E0000},
			rtcI: span{0x50000000, 0x50002000}, rtcD: span{0x50000000, 0x50002000}, // RTC fast only
			blData: span{0x3FCD5710, 0x3FCDA710}, blLoader: span{0x403CE710, 0x403D5710}, romStack: 0x3FCDE710,
		}, true
	}
	return memMap{}, false
}

// FlashMapped reports whether a segment loading at addr is mapped from
// flash through the MMU rather than copied to RAM (should_map: an IROM or
// DROM address). It is false for chips without a memory map here.
func FlashMapped(chip uint16, addr uint32) bool {
	m, ok := memMapOf(chip)
	return ok && (m.drom.has(uint64(addr)) || m.irom.has(uint64(addr)))
}

// HasMemoryMap reports whether CheckLoad knows the chip's memory.
func HasMemoryMap(chip uint16) bool {
	_, ok := memMapOf(chip)
	return ok
}

// LoadError is a segment the bootloader refuses to load, with
// verify_load_addresses' reason.
type LoadError struct {
	Segment    int
	Start, End uint64
	Reason     string
}

// Error reads as the bootloader's log line: "segment 3 0x40370000-0x40470000
// invalid: bad load address range".
func (e *LoadError) Error() string {
	return "segment " + strconv.Itoa(e.Segment) + " " + hex32(e.Start) + "-" + hex32(e.End) + " invalid: " + e.Reason
}

// Unwrap makes errors.Is(err, ErrLoadAddress) hold on the PC.
func (e *LoadError) Unwrap() error { return ErrLoadAddress }

func hex32(v uint64) string {
	const digits = "0123456789abcdef"
	var b [10]byte
	b[0], b[1] = '0', 'x'
	for i := 9; i >= 2; i-- {
		b[i] = digits[v&0xF]
		v >>= 4
	}
	return string(b[:])
}

// CheckLoad is the bootloader's check of one segment before it copies it to
// RAM (esp_image_format.c process_segment under BOOTLOADER_BUILD): a
// segment that is neither flash-mapped nor below 0x10000000 (padding,
// never loaded) must lie wholly in DRAM, IRAM or RTC memory and must not
// overlap the bootloader's stack, data or loader code, D/IRAM aliases
// included. It returns nil or a *LoadError. Chips without a memory map here
// pass.
func CheckLoad(chip uint16, segment int, addr, length uint32) error {
	m, ok := memMapOf(chip)
	if !ok || length == 0 || m.drom.has(uint64(addr)) || m.irom.has(uint64(addr)) || addr < 0x10000000 {
		return nil
	}
	end := uint64(addr) + uint64(length)
	if reason := m.verify(uint64(addr), end, false); reason != "" {
		return &LoadError{Segment: segment, Start: uint64(addr), End: end, Reason: reason}
	}
	return nil
}

// verify is verify_load_addresses: the reason a region is refused, or "".
func (m *memMap) verify(lo, hi uint64, noRecurse bool) string {
	if hi == lo {
		return ""
	}
	last := hi - 1
	switch {
	case m.dram.has(lo) && m.dram.has(last):
		if m.romStack != 0 && (span{m.romStack - stackHeadroom, m.romStack}).overlaps(lo, hi) {
			return "overlaps bootloader stack"
		}
		if m.blData.overlaps(lo, hi) {
			return "overlaps bootloader data"
		}
		if !noRecurse && m.diramD.overlaps(lo, hi) {
			a, b := m.alias(lo, hi, m.diramD, m.diramI)
			return m.verify(a, b, true)
		}
		return ""
	case m.iram.has(lo) && m.iram.has(last):
		if m.blLoader.overlaps(lo, hi) {
			return "overlaps loader IRAM"
		}
		if !noRecurse && m.diramI.overlaps(lo, hi) {
			a, b := m.alias(lo, hi, m.diramI, m.diramD)
			return m.verify(a, b, true)
		}
		return ""
	case m.rtcI.has(lo) && m.rtcI.has(last), m.rtcD.has(lo) && m.rtcD.has(last), m.rtcSlow.has(lo) && m.rtcSlow.has(last):
		return "" // RTC memory: valid, and never the bootloader's
	}
	return "bad load address range"
}

// alias converts the part of [lo, hi) that falls in D/IRAM from one bus's
// addresses to the other's (esp_ptr_diram_dram_to_iram and back), clipping
// at the shared window's ends, and orders the result.
func (m *memMap) alias(lo, hi uint64, from, to span) (uint64, uint64) {
	conv := func(p uint64) uint64 {
		if m.inverted {
			return uint64(to.lo) + (uint64(from.hi) - p) - 4
		}
		return uint64(to.lo) + (p - uint64(from.lo))
	}
	a, b := conv(uint64(from.lo)), conv(uint64(from.hi))
	if from.has(lo) {
		a = conv(lo)
	}
	if from.has(hi - 1) {
		b = conv(hi)
	}
	if b < a {
		a, b = b, a
	}
	return a, b
}

// RegionName names the memory a segment loading at addr goes to, as the
// bootloader sorts it: "DROM" or "IROM" (mapped from flash), "DRAM",
// "IRAM", "RTC fast", "RTC slow", "padding" (below 0x10000000: never
// loaded), "cache" (the ESP32's cache RAM, which its ROM loads bootloaders
// into but the bootloader refuses for apps), or "" (none of these).
func RegionName(chip uint16, addr uint32) string {
	m, ok := memMapOf(chip)
	a := uint64(addr)
	switch {
	case !ok:
		return ""
	case m.drom.has(a):
		return "DROM"
	case m.irom.has(a):
		return "IROM"
	case addr < 0x10000000:
		return "padding"
	case m.dram.has(a):
		return "DRAM"
	case m.iram.has(a):
		return "IRAM"
	case m.rtcI.has(a), m.rtcD.has(a):
		return "RTC fast"
	case m.rtcSlow.has(a):
		return "RTC slow"
	case m.cache.has(a):
		return "cache"
	}
	return ""
}

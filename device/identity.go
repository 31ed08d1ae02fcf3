package device

import (
	"fmt"
	"strings"
)

// espressifOUIs are the OUIs the spec confirms as "Espressif Inc." in the
// IEEE registry (Debian ieee-data 20220827).
var espressifOUIs = [...][3]byte{
	{0x24, 0x0A, 0xC4}, {0x24, 0x62, 0xAB}, {0x24, 0x6F, 0x28}, {0x30, 0xAE, 0xA4}, {0x3C, 0x71, 0xBF},
	{0x7C, 0xDF, 0xA1}, {0x84, 0xCC, 0xA8}, {0x84, 0xF7, 0x03}, {0xA4, 0xCF, 0x12}, {0xAC, 0x67, 0xB2},
	{0xC4, 0x4F, 0x33}, {0xCC, 0x50, 0xE3}, {0xDC, 0x54, 0x75}, {0xEC, 0x62, 0x60}, {0xF4, 0x12, 0xFA},
	{0x34, 0x85, 0x18}, {0x48, 0x27, 0xE2}, {0x64, 0xE8, 0x33}, {0x68, 0xB6, 0xB3}, {0x70, 0x04, 0x1D},
}

// MAC is a 48-bit hardware address.
type MAC [6]byte

// String formats as Arduino's macAddress() does: uppercase with colons.
func (m MAC) String() string {
	return fmt.Sprintf("%02X:%02X:%02X:%02X:%02X:%02X", m[0], m[1], m[2], m[3], m[4], m[5])
}

// ParseMAC reads "AA:BB:CC:DD:EE:FF" (any case, ':' or '-').
func ParseMAC(s string) (MAC, error) {
	var m MAC
	s = strings.ReplaceAll(s, "-", ":")
	if _, err := fmt.Sscanf(s, "%02x:%02x:%02x:%02x:%02x:%02x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]); err != nil || len(s) != 17 {
		return MAC{}, fmt.Errorf("bad MAC %q: want AA:BB:CC:DD:EE:FF", s)
	}
	return m, nil
}

// Identity is one device's factory identity.
type Identity struct {
	Index uint32
	Base  MAC // eFuse base MAC
}

// indexBits: an ESP32-S3 reserves 4 universal MACs per chip (STA = base,
// SoftAP +1, BT +2, Ethernet +3), so bases step by 4 and a device's SoftAP
// address never equals another's station address.
const indexBits = 22

// NewIdentity derives the identity of device index in the fleet with seed.
// Within one seed the mapping is a bijection (a keyed permutation of the
// 22-bit index, then the next OUI every 4,194,304 devices), so no two devices
// of a fleet share a MAC; the same (seed, index) always gives the same MAC.
func NewIdentity(seed uint64, index uint32) Identity {
	const mask = 1<<indexBits - 1
	x := uint64(index) & mask
	k := seed*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	for round := 0; round < 4; round++ {
		x = (x*(k|1) + (k >> 17)) & mask // odd multiplier and add: bijective mod 2^22
		x ^= x >> 11
		k = k*6364136223846793005 + 1442695040888963407
	}
	oui := espressifOUIs[(seed+uint64(index>>indexBits))%uint64(len(espressifOUIs))]
	low := uint32(x) << 2
	return Identity{Index: index, Base: MAC{oui[0], oui[1], oui[2], byte(low >> 16), byte(low >> 8), byte(low)}}
}

// STA is the Wi-Fi station MAC (= base) and the device's ThingsBoard name.
func (id Identity) STA() MAC { return id.Base }

// SoftAP is the base with the last octet plus one, wrapping without carry.
func (id Identity) SoftAP() MAC {
	m := id.Base
	m[5]++
	return m
}

// Name is the device name: the station MAC, uppercase with colons.
func (id Identity) Name() string { return id.Base.String() }

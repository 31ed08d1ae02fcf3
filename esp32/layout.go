//go:build tinygo

package esp32

// Partition is a region of the flash.
type Partition struct {
	Offset uint32
	Size   uint32
}

// Layout is where this program keeps its data on a 2 MB (or larger) flash,
// behind the program that the ROM boots at 0. The sizes are Arduino's
// (default.csv): a 20 KB nvs, two otadata sectors, and an app slot for OTA.
var Layout = struct {
	App, NVS, OTAData, App1 Partition
}{
	App:     Partition{0x000000, 0x0F0000},
	NVS:     Partition{0x0F0000, 0x5000},
	OTAData: Partition{0x0F5000, 0x2000},
	App1:    Partition{0x100000, 0x0F0000},
}

package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/device/espimage"
)

// inspect describes what it found before it refuses a file: a bootloader,
// an ESP8266 image, an application the bootloader would not load.
func TestInspectImage(t *testing.T) {
	desc := make([]byte, espimage.AppDescSize)
	good, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32S3, Title: "CORE_ESP32", Version: "1.1.0", Size: 4096})
	require.NoError(t, err)
	copy(desc, good[espimage.AppDescOffset:])
	cases := []struct {
		name  string
		data  []byte
		err   error
		lines []string
	}{
		{"bootloader", espimage.Assemble(espimage.ESP32C3, 0x403C0000, []espimage.RawSegment{
			{LoadAddr: 0x3FCD6100, Data: make([]byte, 20)}, {LoadAddr: 0x403C0000, Data: make([]byte, 64)},
		}), espimage.ErrBootloader, []string{
			"boot.bin: ESP32-C3 bootloader image, not an application",
			"segment 0 DRAM     load 0x3FCD6100 file 0x000020 len 20",
			"segment 1 IRAM     load 0x403C0000",
		}},
		{"ESP8266", append([]byte{0xE9, 1, 2, 0x40, 0, 0, 0x10, 0x40, 0, 0, 0x10, 0x40, 64, 0, 0, 0}, make([]byte, 80)...),
			espimage.ErrESP8266, []string{
				"boot.bin: ESP8266 image, 96 bytes",
				"segment 0 load 0x40100000 file 0x000010 len 64",
			}},
		{"1 MiB of IRAM", espimage.Assemble(espimage.ESP32S3, 0x40370000, []espimage.RawSegment{
			{LoadAddr: 0x3C000020, Data: desc}, {LoadAddr: 0x40370000, Data: make([]byte, 1<<20)},
		}), espimage.ErrLoadAddress, []string{
			"boot.bin: valid ESP32-S3 application image",
			"segment 1 IRAM     load 0x40370000 file 0x000128 len 1048576",
			"boot      refused by the bootloader: segment 1 0x40370000-0x40470000 invalid: bad load address range",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := inspectImage(&out, "boot.bin", c.data, espimage.AnyChip)
			require.True(t, errors.Is(err, c.err), "err = %v; want %v", err, c.err)
			for _, l := range c.lines {
				require.Contains(t, out.String(), l)
			}
		})
	}
}

package chiptest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbsim/tbsim/device/espimage"
)

// TestIDFBootloader boots images in the emulated ESP32-C3 behind a real
// ESP-IDF second-stage bootloader (esptool's test/images/bootloader_esp32c3.bin,
// with its partitions_singleapp.bin: a factory app at 0x10000), so the
// bootloader's own checks judge tbsim's images: an image from
// espimage.Build is loaded, segment by segment as tbsim reads it; an image
// with the old layout (1 MiB of IRAM) is refused with the line
// espimage.CheckLoad predicts. It needs TBSIM_ESPTOOL_IMAGES (esptool's
// images are not redistributed here).
func TestIDFBootloader(t *testing.T) {
	e := setup(t)
	if e == nil {
		return
	}
	dir := os.Getenv("TBSIM_ESPTOOL_IMAGES")
	if dir == "" {
		t.Skip("TBSIM_ESPTOOL_IMAGES not set: esptool's bootloader_esp32c3.bin and partitions_singleapp.bin are needed")
		return
	}
	bootloader, err1 := os.ReadFile(filepath.Join(dir, "bootloader_esp32c3.bin"))
	table, err2 := os.ReadFile(filepath.Join(dir, "partitions_singleapp.bin"))
	if err1 != nil || err2 != nil {
		t.Skipf("esptool images missing: %v %v", err1, err2)
		return
	}
	flash := func(app []byte) string {
		img := bytes.Repeat([]byte{0xFF}, flashSize)
		copy(img, bootloader)
		copy(img[0x8000:], table)
		copy(img[0x10000:], app)
		path := filepath.Join(e.dir, "idf-flash.bin")
		if err := os.WriteFile(path, img, 0o644); err != nil {
			t.Fatal(err)
			return ""
		}
		return path
	}

	good, err := espimage.Build(espimage.BuildOptions{Chip: espimage.ESP32C3, Title: "CORE_ESP32", Version: "1.1.0", Size: 300000})
	if err != nil {
		t.Fatal(err)
		return
	}
	p, err := espimage.Parse(good, espimage.ESP32C3)
	if err != nil {
		t.Fatal(err)
		return
	}
	var want []string
	for i, s := range p.Segments {
		// esp_image_format.c process_segment's log line, as this bootloader prints it.
		want = append(want, fmt.Sprintf("esp_image: segment %d: paddr=0x%08x vaddr=0x%08x size=0x%05x", i, 0x10000+s.Offset, s.LoadAddr, s.Len))
	}
	want = append(want, "boot: Loaded app from partition at offset 0x10000", fmt.Sprintf("boot: start: 0x%08x", p.Entry))
	e.boot(t, flash(good), want...)

	desc := good[espimage.AppDescOffset : espimage.AppDescOffset+espimage.AppDescSize]
	old := espimage.Assemble(espimage.ESP32C3, 0x40380000, []espimage.RawSegment{
		{LoadAddr: 0x3C000020, Data: desc}, {LoadAddr: 0x40380000, Data: make([]byte, 1<<20)},
	})
	p, err = espimage.Parse(old, espimage.ESP32C3)
	if err != nil {
		t.Fatal(err)
		return
	}
	refused := p.CheckLoad()
	if refused == nil {
		t.Fatal("CheckLoad accepts 1 MiB of IRAM")
		return
	}
	log := e.boot(t, flash(old), "esp_image: Segment 1", "boot: No bootable app partitions")
	for _, l := range log {
		if i := strings.Index(l, "esp_image: Segment 1"); i >= 0 {
			got := strings.TrimSuffix(strings.TrimSuffix(l[i+len("esp_image: "):], "\x1b[0m"), "\r")
			t.Logf("bootloader: %s", got)
			if !strings.EqualFold(got, refused.Error()) {
				t.Errorf("the bootloader says %q; CheckLoad says %q", got, refused)
			}
		}
	}
}

package device

import (
	"encoding/hex"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/espidf/otadata"
)

func TestEntryCRCVectors(t *testing.T) {
	require.Equal(t, uint32(0x4743989A), EntryCRC(1))
	require.Equal(t, uint32(0x55F63774), EntryCRC(2))
	require.Equal(t, uint32(0xED4A5011), EntryCRC(3))
	b := NewEntry(1, OTAUndefined).Bytes()
	require.Equal(t, []byte{1, 0, 0, 0}, b[:4])
	require.Equal(t, []byte{0x9A, 0x98, 0x43, 0x47}, b[28:], "CRC little-endian at +28")
}

func TestActiveEntry(t *testing.T) {
	bad := NewEntry(5, OTAValid)
	bad.CRC ^= 1
	cases := []struct {
		name string
		d    [2]OTAEntry
		want int
	}{
		{"both erased", [2]OTAEntry{ErasedEntry, ErasedEntry}, -1},
		{"boot_app0", BootApp0(), 0},
		{"higher seq wins", [2]OTAEntry{NewEntry(3, OTAValid), NewEntry(2, OTAValid)}, 0},
		{"higher seq wins 1", [2]OTAEntry{NewEntry(3, OTAValid), NewEntry(4, OTANew)}, 1},
		{"aborted ignored", [2]OTAEntry{NewEntry(3, OTAValid), NewEntry(4, OTAAborted)}, 0},
		{"invalid ignored", [2]OTAEntry{NewEntry(3, OTAInvalid), NewEntry(2, OTAUndefined)}, 1},
		{"bad crc ignored", [2]OTAEntry{bad, NewEntry(2, OTAPendingVerify)}, 1},
		{"none valid", [2]OTAEntry{NewEntry(1, OTAAborted), NewEntry(2, OTAInvalid)}, -1},
	}
	for _, c := range cases {
		require.Equal(t, c.want, otadata.Active(c.d), c.name)
	}
	require.Equal(t, 0, otadata.Slot(1, 2))
	require.Equal(t, 1, otadata.Slot(2, 2))
	require.Equal(t, 0, otadata.Slot(3, 2))
}

func buildImage(t testing.TB, chip espimage.Chip, version string, size int) []byte {
	img, err := espimage.Build(espimage.BuildOptions{Chip: chip, Title: "CORE_ESP32", Version: version, Size: size})
	require.NoError(t, err)
	return img
}

func newTestFlash(t testing.TB, store *ImageStore) *Flash {
	f := NewFlash(store, espimage.ESP32S3, store.Add(buildImage(t, espimage.ESP32S3, "1.0.0", 4096)), "CORE_ESP32", "1.0.0")
	slot, err := f.Boot()
	require.NoError(t, err)
	require.Equal(t, 0, slot)
	return f
}

// writeUpdate runs Begin/Write/End in 4096-byte chunks.
func writeUpdate(f *Flash, img []byte) error {
	if err := f.Begin(len(img)); err != nil {
		return err
	}
	for off := 0; off < len(img); off += 4096 {
		if err := f.Write(img[off:min(off+4096, len(img))]); err != nil {
			return err
		}
	}
	return f.End()
}

func TestOTAUpdateAndRollback(t *testing.T) {
	f := newTestFlash(t, NewImageStore())
	require.Equal(t, "1.0.0", f.RunningImage().Version)
	require.NoError(t, writeUpdate(f, buildImage(t, espimage.ESP32S3, "x", 20000)))
	require.NoError(t, f.SetBoot("CORE_ESP32", "1.1.0"))
	require.Equal(t, NewEntry(2, OTANew), f.Otadata[1], "seq 2 (slot 1) written to the inactive sector in state NEW")

	slot, err := f.Boot()
	require.NoError(t, err)
	require.Equal(t, 1, slot)
	require.Equal(t, OTAPendingVerify, f.Otadata[1].State)
	img := f.RunningImage()
	require.Equal(t, "1.1.0", img.Version)
	require.True(t, img.PendingVerify)
	require.ErrorIs(t, f.Begin(1000), ErrRollbackPending, "no update while unconfirmed")

	// Reset before confirming: ABORTED, the old image runs.
	slot, err = f.Boot()
	require.NoError(t, err)
	require.Equal(t, 0, slot)
	require.Equal(t, OTAAborted, f.Otadata[1].State)
	require.Equal(t, "1.0.0", f.RunningImage().Version)

	// Again, confirmed this time: it sticks.
	require.NoError(t, writeUpdate(f, buildImage(t, espimage.ESP32S3, "y", 20000)))
	require.NoError(t, f.SetBoot("CORE_ESP32", "1.2.0"))
	_, err = f.Boot()
	require.NoError(t, err)
	require.NoError(t, f.MarkValid())
	for i := 0; i < 3; i++ {
		slot, err = f.Boot()
		require.NoError(t, err)
		require.Equal(t, 1, slot)
		require.Equal(t, "1.2.0", f.RunningImage().Version)
		require.False(t, f.RunningImage().PendingVerify)
	}
	// The next update goes to slot 0 with the next matching sequence number.
	require.NoError(t, writeUpdate(f, buildImage(t, espimage.ESP32S3, "z", 5000)))
	require.NoError(t, f.SetBoot("CORE_ESP32", "1.3.0"))
	act := otadata.Active(f.Otadata)
	require.Equal(t, 0, otadata.Slot(f.Otadata[act].Seq, 2))
}

func TestOTAPortErrors(t *testing.T) {
	f := newTestFlash(t, NewImageStore())
	require.ErrorIs(t, f.Begin(SlotSize+1), ErrUpdateSize)
	require.ErrorIs(t, f.Write([]byte{0xE9}), ErrUpdateNotBegun)
	require.NoError(t, f.Begin(100))
	require.ErrorIs(t, f.Begin(100), ErrUpdateRunning)
	require.ErrorIs(t, f.Write([]byte("not an image")), ErrUpdateMagic)
	require.NoError(t, f.Begin(10))
	require.ErrorIs(t, f.Write(append([]byte{0xE9}, make([]byte, 10)...)), ErrUpdateSpace)

	img := buildImage(t, espimage.ESP32S3, "a", 8192)
	require.NoError(t, f.Begin(len(img)))
	require.NoError(t, f.Write(img[:4096]))
	require.ErrorIs(t, f.End(), ErrUpdateAbort, "bytes missing")

	for name, bad := range map[string][]byte{
		"wrong chip": buildImage(t, espimage.ESP32C3, "a", 8192),
		"bad sha":    func() []byte { b := append([]byte(nil), img...); b[len(b)-1] ^= 1; return b }(),
	} {
		err := writeUpdate(f, bad)
		require.ErrorIs(t, err, ErrUpdateActivate, name)
		require.ErrorIs(t, err, ErrValidateFailed, name)
		require.ErrorIs(t, f.SetBoot("T", "V"), ErrUpdateNotBegun, name)
	}
	err := writeUpdate(f, buildImage(t, espimage.ESP32C3, "a", 8192))
	require.ErrorContains(t, err, "wrong chip: want ESP32-S3 (9), got ESP32-C3 (5)")
	slot, err := f.Boot()
	require.NoError(t, err)
	require.Equal(t, 0, slot, "failed updates never switch the slot")
}

// Power loss at every step of an update: the device always boots a valid
// image, and the new one only once it was selected.
func TestPowerLossDuringOTA(t *testing.T) {
	img := buildImage(t, espimage.ESP32S3, "new", 30000)
	steps := []struct {
		name      string
		run       func(f *Flash)
		wantVer   string
		afterBoot func(t *testing.T, f *Flash)
	}{
		{"mid-download", func(f *Flash) {
			require.NoError(t, f.Begin(len(img)))
			require.NoError(t, f.Write(img[:8192]))
		}, "1.0.0", nil},
		{"after end", func(f *Flash) { require.NoError(t, writeUpdate(f, img)) }, "1.0.0", nil},
		{"during otadata write", func(f *Flash) {
			require.NoError(t, writeUpdate(f, img))
			f.CutNextOtadataWrite = true
			require.NoError(t, f.SetBoot("CORE_ESP32", "2.0.0"))
		}, "1.0.0", nil},
		{"after set boot", func(f *Flash) {
			require.NoError(t, writeUpdate(f, img))
			require.NoError(t, f.SetBoot("CORE_ESP32", "2.0.0"))
		}, "2.0.0", func(t *testing.T, f *Flash) { require.True(t, f.RunningImage().PendingVerify) }},
		{"first boot before confirm", func(f *Flash) {
			require.NoError(t, writeUpdate(f, img))
			require.NoError(t, f.SetBoot("CORE_ESP32", "2.0.0"))
			_, err := f.Boot()
			require.NoError(t, err)
		}, "1.0.0", nil},
		{"first boot after confirm", func(f *Flash) {
			require.NoError(t, writeUpdate(f, img))
			require.NoError(t, f.SetBoot("CORE_ESP32", "2.0.0"))
			_, err := f.Boot()
			require.NoError(t, err)
			require.NoError(t, f.MarkValid())
		}, "2.0.0", nil},
		{"during confirm", func(f *Flash) {
			require.NoError(t, writeUpdate(f, img))
			require.NoError(t, f.SetBoot("CORE_ESP32", "2.0.0"))
			_, err := f.Boot()
			require.NoError(t, err)
			f.CutNextOtadataWrite = true
			require.NoError(t, f.MarkValid())
		}, "1.0.0", nil}, // the erased active sector leaves the older entry: a rollback
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			nvs := NewMemNVS()
			require.NoError(t, nvs.SetString("tb", "token", "TOKEN"))
			f := newTestFlash(t, NewImageStore())
			s.run(f)
			_, err := f.Boot() // power back on
			require.NoError(t, err)
			require.Equal(t, s.wantVer, f.RunningImage().Version)
			require.False(t, f.Updating())
			if s.afterBoot != nil {
				s.afterBoot(t, f)
			}
			_, err = espimage.Parse(f.Slots[f.Running()].Blob.Bytes(), espimage.ESP32S3)
			require.NoError(t, err, "the running slot holds a valid image")
			tok, err := nvs.GetString("tb", "token")
			require.NoError(t, err)
			require.Equal(t, "TOKEN", tok)
		})
	}
}

func TestBootFallsBackToValidSlot(t *testing.T) {
	f := newTestFlash(t, NewImageStore())
	f.Otadata = [2]OTAEntry{ErasedEntry, NewEntry(2, OTAValid)} // selects slot 1, which is empty
	slot, err := f.Boot()
	require.NoError(t, err)
	require.Equal(t, 0, slot)
	f.Slots[0].Blob = nil
	_, err = f.Boot()
	require.ErrorIs(t, err, ErrNoBootableApp)
}

// 1,000 devices updating to the same 1 MiB image hold one copy of it.
func TestImageStoreDedup(t *testing.T) {
	store := NewImageStore()
	img := buildImage(t, espimage.ESP32S3, "big", 1<<20)
	flashes := make([]*Flash, 1000)
	for i := range flashes {
		flashes[i] = newTestFlash(t, store)
		require.NoError(t, writeUpdate(flashes[i], img))
		require.NoError(t, flashes[i].SetBoot("CORE_ESP32", "big"))
	}
	require.Equal(t, 2, store.Len(), "factory + the update")
	require.Less(t, store.Bytes(), 1<<20+8192)
	// After the first device finished, the others kept no private copy while writing.
	w := store.NewWriter(0)
	w.Write(img[:4096])
	require.Nil(t, w.own)
	require.NotNil(t, w.cand)
	w.Write([]byte{0xE9}) // diverges: now private
	require.Len(t, w.own, 4097)
}

// Devices downloading one image at the same time share one buffer: 200
// interleaved 1 MiB downloads allocate about 1 MiB, not 200; a writer whose
// bytes differ gets a private copy and still ends with its own content.
func TestImageStoreConcurrentDownloads(t *testing.T) {
	store := NewImageStore()
	img := buildImage(t, espimage.ESP32S3, "big", 1<<20)
	other := append([]byte(nil), img...)
	other[len(other)/2] ^= 0xFF
	const n = 200
	writers := make([]*BlobWriter, n)
	for i := range writers {
		writers[i] = store.NewWriter(len(img))
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for off := 0; off < len(img); off += 4096 { // in lockstep: nobody finished first
		for i, w := range writers {
			src := img
			if i == n-1 {
				src = other
			}
			w.Write(src[off:min(off+4096, len(src))])
		}
	}
	runtime.ReadMemStats(&m1)
	if got := m1.TotalAlloc - m0.TotalAlloc; got > 4<<20 {
		t.Fatalf("%d interleaved downloads allocated %d MiB; want about 2 (one shared, one diverged)", n, got>>20)
	}
	blobs := make([]*Blob, n)
	for i, w := range writers {
		blobs[i] = w.Commit()
	}
	for i := range n - 1 {
		require.Same(t, blobs[0], blobs[i], "one blob for the same content")
	}
	require.Equal(t, img, blobs[0].Bytes())
	require.Equal(t, other, blobs[n-1].Bytes())
	require.Empty(t, store.inflight, "finished downloads are forgotten")
}

func BenchmarkOTAWrite1MiB(b *testing.B) {
	store := NewImageStore()
	img := buildImage(b, espimage.ESP32S3, "big", 1<<20)
	b.SetBytes(int64(len(img)))
	for i := 0; i < b.N; i++ {
		f := newTestFlash(b, store)
		if err := writeUpdate(f, img); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFlashStateRoundTrip(t *testing.T) {
	store := NewImageStore()
	f := newTestFlash(t, store)
	img := buildImage(t, espimage.ESP32S3, "n", 9000)
	require.NoError(t, writeUpdate(f, img))
	require.NoError(t, f.SetBoot("CORE_ESP32", "1.1.0"))
	_, err := f.Boot()
	require.NoError(t, err)
	require.NoError(t, f.MarkValid())
	st := f.State()
	blobs := map[string][]byte{}
	for _, s := range f.Slots {
		sum := s.Blob.Sum()
		blobs[hexSum(sum)] = s.Blob.Bytes()
	}
	g, err := RestoreFlash(NewImageStore(), espimage.ESP32S3, st, func(sha string) ([]byte, bool) { b, ok := blobs[sha]; return b, ok })
	require.NoError(t, err)
	slot, err := g.Boot()
	require.NoError(t, err)
	require.Equal(t, 1, slot)
	require.Equal(t, "1.1.0", g.RunningImage().Version)
	_, err = RestoreFlash(NewImageStore(), espimage.ESP32S3, st, func(string) ([]byte, bool) { return nil, false })
	require.ErrorIs(t, err, ErrImageMissing)
}

func hexSum(b [32]byte) string { return hex.EncodeToString(b[:]) }

// An ESP-IDF bootloader (no app descriptor, RAM only) is refused at the end
// of an update as an application must carry its descriptor; so is an
// ESP8266 image, before any segment is read.
func TestOTARefusesBootloaderAndESP8266(t *testing.T) {
	f := newTestFlash(t, NewImageStore())
	bootloader := espimage.Assemble(espimage.ESP32S3, 0x403C8700, []espimage.RawSegment{
		{LoadAddr: 0x3FCD0000, Data: make([]byte, 512)}, {LoadAddr: 0x403C8700, Data: make([]byte, 1024)},
	})
	err := writeUpdate(f, bootloader)
	require.ErrorIs(t, err, ErrUpdateActivate)
	require.ErrorIs(t, err, espimage.ErrBootloader)
	require.ErrorContains(t, err, "bootloader image, not an application")

	esp8266 := append([]byte{0xE9, 1, 2, 0x40, 0, 0, 0x10, 0x40, 0, 0, 0x10, 0x40, 64, 0, 0, 0}, make([]byte, 96)...)
	require.ErrorIs(t, writeUpdate(f, esp8266), espimage.ErrESP8266)
	slot, err := f.Boot()
	require.NoError(t, err)
	require.Equal(t, 0, slot)
}

// An image that verifies but that the bootloader cannot load (issue 14: one
// 1 MiB IRAM segment, as the old firmware build wrote) is written and
// selected like any update, as esp_ota_end and esp_ota_set_boot_partition
// do; at the reset the bootloader refuses it and boots the old slot.
func TestOTAImageTheBootloaderRefuses(t *testing.T) {
	f := newTestFlash(t, NewImageStore())
	desc := buildImage(t, espimage.ESP32S3, "1.1.0", 4096)[espimage.AppDescOffset : espimage.AppDescOffset+espimage.AppDescSize]
	img := espimage.Assemble(espimage.ESP32S3, 0x40370000, []espimage.RawSegment{
		{LoadAddr: 0x3C000020, Data: desc}, {LoadAddr: 0x40370000, Data: make([]byte, 1<<20)},
	})
	require.NoError(t, writeUpdate(f, img))
	require.NoError(t, f.SetBoot("CORE_ESP32", "1.1.0"))
	require.Equal(t, 1, f.SelectedSlot())
	slot, err := f.Boot()
	require.NoError(t, err)
	require.Equal(t, 0, slot, "the bootloader fell back to the image that loads")
	require.Equal(t, "1.0.0", f.RunningImage().Version)

	// The same bytes laid out as ESP-IDF does (espimage.Build) boot.
	require.NoError(t, writeUpdate(f, buildImage(t, espimage.ESP32S3, "1.1.0", 1<<20)))
	require.NoError(t, f.SetBoot("CORE_ESP32", "1.1.0"))
	slot, err = f.Boot()
	require.NoError(t, err)
	require.Equal(t, 1, slot)
}

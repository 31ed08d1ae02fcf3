package otadata

import "testing"

// Vectors from ../shared/spec/esp32.md §2.2 (computed as ESP-IDF does).
func TestCRC(t *testing.T) {
	for seq, want := range map[uint32]uint32{1: 0x4743989A, 2: 0x55F63774, 3: 0xED4A5011} {
		if got := CRC(seq); got != want {
			t.Errorf("CRC(%d) = %#x; want %#x", seq, got, want)
		}
	}
}

func TestSelect(t *testing.T) {
	erased := Decode([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
		0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	// Arduino's boot_app0.bin: sector 0 selects app0, sector 1 is invalid.
	bootApp0 := [2]Entry{New(1, StateUndefined), {Seq: 0, CRC: 0xFFFFFFFF}}
	cases := []struct {
		d          [2]Entry
		slot       int
		wantSector int
		wantSeq    uint32
	}{
		{[2]Entry{erased, erased}, 1, 0, 2},
		{bootApp0, 1, 1, 2},
		{[2]Entry{New(1, StateValid), New(2, StateValid)}, 0, 0, 3},
		{[2]Entry{New(1, StateValid), New(2, StateAborted)}, 1, 1, 2},
	}
	for i, c := range cases {
		sector, e := Select(c.d, c.slot, 2)
		if sector != c.wantSector || e.Seq != c.wantSeq || e.State != StateNew || !e.Valid() || Slot(e.Seq, 2) != c.slot {
			t.Errorf("case %d: sector %d entry %+v; want sector %d seq %d", i, sector, e, c.wantSector, c.wantSeq)
		}
		b := e.Bytes()
		if Decode(b[:]) != e {
			t.Errorf("case %d: round trip", i)
		}
	}
}

package device

import (
	"encoding/hex"
	"errors"

	"github.com/tbsim/tbsim/device/espimage"
)

// FlashState is what a Flash holds that survives a power cut, in a form a
// fleet can store: otadata and, per slot, the content hash (the bytes live
// once in the ImageStore) with the title and version the slot was written for.
type FlashState struct {
	Otadata [2]OTAEntry
	Slots   [2]SlotState
}

// SlotState describes one slot.
type SlotState struct {
	SHA256  string `json:",omitempty"` // hex; "" = erased
	Title   string `json:",omitempty"`
	Version string `json:",omitempty"`
}

// State snapshots the flash (an open update is RAM, not flash: left out).
func (f *Flash) State() FlashState {
	st := FlashState{Otadata: f.Otadata}
	for i, s := range f.Slots {
		if s.Blob != nil {
			sum := s.Blob.Sum()
			st.Slots[i] = SlotState{SHA256: hex.EncodeToString(sum[:]), Title: s.Title, Version: s.Version}
		}
	}
	return st
}

// ErrImageMissing is returned by RestoreFlash when a slot's content is not
// in the store.
var ErrImageMissing = errors.New("slot image missing from the image store")

// RestoreFlash rebuilds a Flash from a snapshot; lookup returns the bytes of
// a content hash (for example from a fleet's state file).
func RestoreFlash(store *ImageStore, chip espimage.Chip, st FlashState, lookup func(sha string) ([]byte, bool)) (*Flash, error) {
	f := &Flash{Chip: chip, Otadata: st.Otadata, store: store, running: -1}
	for i, s := range st.Slots {
		if s.SHA256 == "" {
			continue
		}
		data, ok := lookup(s.SHA256)
		if !ok {
			return nil, ErrImageMissing
		}
		blob := store.Add(data)
		img, err := blob.Image(chip)
		if err == nil {
			f.Slots[i].Desc = img.Desc
		}
		f.Slots[i].Blob, f.Slots[i].Title, f.Slots[i].Version = blob, s.Title, s.Version
	}
	return f, nil
}

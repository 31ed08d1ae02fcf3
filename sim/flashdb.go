package sim

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/device/espimage"
)

// FlashRecord summarises one device's stored flash for listings.
type FlashRecord struct {
	Running string // title and version of the slot otadata selects
	Boots   int
}

// ReadFlashState opens a state directory's flash.db read-only and returns
// each device's record.
func ReadFlashState(path string) (recs map[string]FlashRecord, err error) {
	defer func() {
		if r := recover(); r != nil {
			recs, err = nil, damaged(path, fmt.Errorf("%v", r))
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	out := map[string]FlashRecord{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFlash)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var rec flashRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			out[string(k)] = FlashRecord{Running: rec.running(), Boots: rec.Boots}
			return nil
		})
	})
	return out, err
}

// running names the image the bootloader would pick (without verifying it).
func (r flashRecord) running() string {
	f, err := device.RestoreFlash(device.NewImageStore(), espimage.ESP32S3, device.FlashState{Otadata: r.Flash.Otadata}, nil)
	if err != nil {
		return ""
	}
	slot := f.SelectedSlot()
	s := r.Flash.Slots[slot]
	return s.Title + " " + s.Version
}

// flashDB keeps the fleet's flash: otadata and slot references per device,
// and slot images once per SHA-256.
type flashDB struct{ db *bolt.DB }

var (
	bucketFlash  = []byte("flash")
	bucketImages = []byte("images")
)

func openFlashDB(path string) (fdb *flashDB, err error) {
	defer func() {
		if r := recover(); r != nil { // bbolt panics on some damaged files
			fdb, err = nil, damaged(path, fmt.Errorf("%v", r))
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open flash state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketFlash, bucketImages} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &flashDB{db}, nil
}

func (d *flashDB) close() error { return d.db.Close() }

// flashRecord is what flash.db keeps per device.
type flashRecord struct {
	Flash device.FlashState
	Boots int // power-ons and resets over every run
}

func (d *flashDB) load(name string, store *device.ImageStore) (*device.Flash, int, bool, error) {
	var rec flashRecord
	var found bool
	images := map[string][]byte{}
	err := d.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketFlash).Get([]byte(name))
		if v == nil {
			return nil
		}
		found = true
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		for _, s := range rec.Flash.Slots {
			if s.SHA256 != "" {
				if img := tx.Bucket(bucketImages).Get([]byte(s.SHA256)); img != nil {
					images[s.SHA256] = append([]byte(nil), img...)
				}
			}
		}
		return nil
	})
	if err != nil || !found {
		return nil, 0, false, err
	}
	f, err := device.RestoreFlash(store, espimage.ESP32S3, rec.Flash, func(sha string) ([]byte, bool) {
		b, ok := images[sha]
		return b, ok
	})
	if err != nil {
		return nil, 0, false, err
	}
	return f, rec.Boots, true, nil
}

// saveOne writes one board's flash from the board's own goroutine (an
// Observer transition after a reset), so a kill -9 later does not lose an
// update that already rebooted. DB.Batch merges concurrent boards.
func (d *flashDB) saveOne(b *device.Board, boots int) error {
	fl := b.Flash()
	st := fl.State()
	v, err := json.Marshal(flashRecord{Flash: st, Boots: boots})
	if err != nil {
		return err
	}
	images := map[string][]byte{}
	for i, s := range st.Slots {
		if s.SHA256 != "" {
			images[s.SHA256] = fl.Slots[i].Blob.Bytes()
		}
	}
	return d.db.Batch(func(tx *bolt.Tx) error {
		ib := tx.Bucket(bucketImages)
		for sha, data := range images {
			if ib.Get([]byte(sha)) == nil {
				if err := ib.Put([]byte(sha), data); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketFlash).Put([]byte(b.Identity().Name()), v)
	})
}

// saveAll writes every board's flash in one transaction; boards must be
// stopped. prevBoots are the boot counts of earlier runs.
func (d *flashDB) saveAll(boards []*device.Board, prevBoots []int) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		fb, ib := tx.Bucket(bucketFlash), tx.Bucket(bucketImages)
		for i, b := range boards {
			fl := b.Flash()
			st := fl.State()
			for i, s := range st.Slots {
				if s.SHA256 != "" && ib.Get([]byte(s.SHA256)) == nil {
					if err := ib.Put([]byte(s.SHA256), fl.Slots[i].Blob.Bytes()); err != nil {
						return err
					}
				}
			}
			v, err := json.Marshal(flashRecord{Flash: st, Boots: prevBoots[i] + b.Status().BootCount})
			if err != nil {
				return err
			}
			if err := fb.Put([]byte(b.Identity().Name()), v); err != nil {
				return err
			}
		}
		return nil
	})
}

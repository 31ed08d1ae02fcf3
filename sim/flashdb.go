package sim

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"tbsim/device"
	"tbsim/device/espimage"
)

// flashDB keeps the fleet's flash: otadata and slot references per device,
// and slot images once per SHA-256.
type flashDB struct{ db *bolt.DB }

var (
	bucketFlash  = []byte("flash")
	bucketImages = []byte("images")
)

func openFlashDB(path string) (*flashDB, error) {
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

func (d *flashDB) load(name string, store *device.ImageStore) (*device.Flash, bool, error) {
	var st device.FlashState
	var found bool
	images := map[string][]byte{}
	err := d.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketFlash).Get([]byte(name))
		if v == nil {
			return nil
		}
		found = true
		if err := json.Unmarshal(v, &st); err != nil {
			return err
		}
		for _, s := range st.Slots {
			if s.SHA256 != "" {
				if img := tx.Bucket(bucketImages).Get([]byte(s.SHA256)); img != nil {
					images[s.SHA256] = append([]byte(nil), img...)
				}
			}
		}
		return nil
	})
	if err != nil || !found {
		return nil, false, err
	}
	f, err := device.RestoreFlash(store, espimage.ESP32S3, st, func(sha string) ([]byte, bool) {
		b, ok := images[sha]
		return b, ok
	})
	if err != nil {
		return nil, false, err
	}
	return f, true, nil
}

// saveAll writes every board's flash in one transaction; boards must be stopped.
func (d *flashDB) saveAll(boards []*device.Board) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		fb, ib := tx.Bucket(bucketFlash), tx.Bucket(bucketImages)
		for _, b := range boards {
			fl := b.Flash()
			st := fl.State()
			for i, s := range st.Slots {
				if s.SHA256 != "" && ib.Get([]byte(s.SHA256)) == nil {
					if err := ib.Put([]byte(s.SHA256), fl.Slots[i].Blob.Bytes()); err != nil {
						return err
					}
				}
			}
			v, err := json.Marshal(st)
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

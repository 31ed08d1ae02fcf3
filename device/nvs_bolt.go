package device

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tbsim/tbsim/firmware"
)

// BoltNVS keeps the NVS partitions of a whole fleet in one bbolt file: a
// top-level bucket per device (named by its MAC), a nested bucket per
// namespace. Every write is one bbolt transaction, so it is atomic and
// survives a crash or kill -9; concurrent writers are merged by DB.Batch
// into shared transactions, so 500 devices saving tokens in the same second
// do not pay 500 fsyncs.
type BoltNVS struct {
	db *bolt.DB
}

// OpenBoltNVS opens (or creates) the file.
func OpenBoltNVS(path string) (*BoltNVS, error) { return openBoltNVS(path, false, 0) }

// OpenBoltNVSMax is OpenBoltNVS with the file's size capped at maxBytes
// (0: no cap): a write that needs a bigger file fails as it would on a
// full disk, and nothing already written is touched.
func OpenBoltNVSMax(path string, maxBytes int) (*BoltNVS, error) {
	return openBoltNVS(path, false, maxBytes)
}

// OpenBoltNVSReadOnly opens an existing file for reading only (listings,
// a read-only copy).
func OpenBoltNVSReadOnly(path string) (*BoltNVS, error) { return openBoltNVS(path, true, 0) }

func openBoltNVS(path string, ro bool, maxBytes int) (n *BoltNVS, err error) {
	defer func() {
		// bbolt panics on some damaged files (a truncated meta page): an
		// error that names the file is what the user needs.
		if r := recover(); r != nil {
			n, err = nil, fmt.Errorf("open nvs %s: damaged file: %v", path, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, ReadOnly: ro, MaxSize: maxBytes})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open nvs %s: locked by another process (a running tbsim?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open nvs %s: %w", path, err)
	}
	return &BoltNVS{db: db}, nil
}

// Close closes the file.
func (s *BoltNVS) Close() error { return s.db.Close() }

// DB returns the underlying database (for fleet tooling that lists devices).
func (s *BoltNVS) DB() *bolt.DB { return s.db }

// Device returns the NVS partition of one device.
func (s *BoltNVS) Device(name string) firmware.NVS { return &boltDeviceNVS{s: s, dev: []byte(name)} }

// Devices lists the devices that have an NVS partition.
func (s *BoltNVS) Devices() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			out = append(out, string(name))
			return nil
		})
	})
	return out, err
}

// EraseDevice erases a device's whole partition (nvs_flash_erase).
func (s *BoltNVS) EraseDevice(name string) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		err := tx.DeleteBucket([]byte(name))
		if errors.Is(err, bolt.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

type boltDeviceNVS struct {
	s   *BoltNVS
	dev []byte
}

var _ firmware.NVS = (*boltDeviceNVS)(nil)

func (n *boltDeviceNVS) GetString(namespace, key string) (string, error) {
	if err := checkNVS(namespace, key, nil); err != nil {
		return "", err
	}
	var v []byte
	err := n.s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(n.dev)
		if b != nil {
			b = b.Bucket([]byte(namespace))
		}
		if b != nil {
			v = b.Get([]byte(key))
		}
		if v == nil {
			return ErrNVSNotFound
		}
		v = append([]byte(nil), v...) // valid only inside the transaction
		return nil
	})
	return string(v), err
}

func (n *boltDeviceNVS) SetString(namespace, key, value string) error {
	if err := checkNVS(namespace, key, &value); err != nil {
		return err
	}
	return n.s.db.Batch(func(tx *bolt.Tx) error {
		dev, err := tx.CreateBucketIfNotExists(n.dev)
		if err != nil {
			return err
		}
		ns, err := dev.CreateBucketIfNotExists([]byte(namespace))
		if err != nil {
			return err
		}
		return ns.Put([]byte(key), []byte(value))
	})
}

func (n *boltDeviceNVS) Erase(namespace, key string) error {
	if err := checkNVS(namespace, key, nil); err != nil {
		return err
	}
	return n.s.db.Batch(func(tx *bolt.Tx) error {
		dev := tx.Bucket(n.dev)
		if dev == nil {
			return nil
		}
		ns := dev.Bucket([]byte(namespace))
		if ns == nil {
			return nil
		}
		return ns.Delete([]byte(key))
	})
}

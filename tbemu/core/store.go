package core

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// store holds the emulator's entities and per-device state in memory, and
// mirrors them to a bbolt file when one is given. Entities are written
// through at once; telemetry and client attributes, which change on every
// message, are flushed in batches: the first change after a flush asks for
// one (onDirty), which the core schedules on its clock.
type store struct {
	// mu guards the maps; each devState has its own lock for its contents.
	// Order: mu before a devState's mu.
	mu       sync.RWMutex
	profiles map[string]*Profile
	devices  map[string]*Device
	byName   map[string]string // device name -> id
	byToken  map[string]string // access token -> id
	byBasic  map[string]string // clientId "\x00" userName -> id
	packages map[string]*Package
	blobs    map[string][]byte // data SHA-256 (hex) -> bytes, stored once
	state    map[string]*devState
	history  int // values kept per telemetry key

	db      *bolt.DB
	onDirty func()

	dirtyMu sync.Mutex
	dirty   map[string]bool
	pending bool // a flush is scheduled

	// flushMu keeps flushes in order, so an older state never overwrites a
	// newer one in the file.
	flushMu sync.Mutex
}

// devState is what changes as a device talks.
type devState struct {
	mu           sync.Mutex
	dirty        atomic.Bool                   // in store.dirty, not yet written
	Attrs        map[string]map[string]TsValue // scope -> key -> value
	Latest       map[string]TsValue
	History      map[string][]TsValue `json:"-"`
	Msgs         int64
	Points       int64
	LastActivity int64
	LastConnect  int64
}

func newDevState() *devState {
	return &devState{
		Attrs:   map[string]map[string]TsValue{ClientScope: {}, SharedScope: {}, ServerScope: {}},
		Latest:  map[string]TsValue{},
		History: map[string][]TsValue{},
	}
}

var (
	bucketProfiles = []byte("profiles")
	bucketDevices  = []byte("devices")
	bucketPackages = []byte("packages")
	bucketBlobs    = []byte("blobs")
	bucketState    = []byte("state")
)

func newStore(path string, history int, onDirty func()) (*store, error) {
	s := &store{
		profiles: map[string]*Profile{}, devices: map[string]*Device{}, byName: map[string]string{},
		byToken: map[string]string{}, byBasic: map[string]string{}, packages: map[string]*Package{},
		blobs: map[string][]byte{}, state: map[string]*devState{}, dirty: map[string]bool{},
		history: history, onDirty: onDirty,
	}
	if path == "" {
		return s, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	s.db = db
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("load state %s: %w", path, err)
	}
	return s, nil
}

func (s *store) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketProfiles, bucketDevices, bucketPackages, bucketBlobs, bucketState} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		err := tx.Bucket(bucketProfiles).ForEach(func(k, v []byte) error {
			p := new(Profile)
			s.profiles[string(k)] = p
			return json.Unmarshal(v, p)
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d := new(Device)
			if err := json.Unmarshal(v, d); err != nil {
				return err
			}
			s.indexDevice(d)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketPackages).ForEach(func(k, v []byte) error {
			p := new(Package)
			s.packages[string(k)] = p
			return json.Unmarshal(v, p)
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
			s.blobs[string(k)] = append([]byte(nil), v...)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketState).ForEach(func(k, v []byte) error {
			st := newDevState()
			if err := json.Unmarshal(v, st); err != nil {
				return err
			}
			if st.Attrs[ClientScope] == nil {
				st.Attrs = newDevState().Attrs
			}
			s.state[string(k)] = st
			return nil
		})
	})
}

func (s *store) close() error {
	if s.db == nil {
		return nil
	}
	s.flushDirty()
	return s.db.Close()
}

// indexDevice adds d to the maps; the caller holds mu (or is loading).
func (s *store) indexDevice(d *Device) {
	s.devices[d.ID] = d
	s.byName[d.Name] = d.ID
	switch d.Credentials.Type {
	case tbapi.CredAccessToken:
		s.byToken[d.Credentials.Token] = d.ID
	case tbapi.CredMQTTBasic:
		s.byBasic[d.Credentials.ClientID+"\x00"+d.Credentials.UserName] = d.ID
	}
	if s.state[d.ID] == nil {
		s.state[d.ID] = newDevState()
	}
}

func (s *store) unindexDevice(d *Device) {
	delete(s.devices, d.ID)
	delete(s.byName, d.Name)
	delete(s.byToken, d.Credentials.Token)
	delete(s.byBasic, d.Credentials.ClientID+"\x00"+d.Credentials.UserName)
}

// stateOf returns a device's state, nil for an unknown device.
func (s *store) stateOf(id string) *devState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state[id]
}

// put writes an entity at once (a bbolt transaction: atomic, durable).
func (s *store) put(bucket []byte, id string, v any) error {
	if s.db == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(id), data) })
}

func (s *store) del(bucket []byte, id string) error {
	if s.db == nil {
		return nil
	}
	return s.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(id)) })
}

// putBlob stores package data once per content hash.
func (s *store) putBlob(data []byte) (string, error) {
	sum := sha256.Sum256(data)
	key := hex.EncodeToString(sum[:])
	s.mu.Lock()
	_, ok := s.blobs[key]
	if !ok {
		s.blobs[key] = data
	}
	s.mu.Unlock()
	if ok || s.db == nil {
		return key, nil
	}
	return key, s.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucketBlobs).Put([]byte(key), data) })
}

// markDirty queues a device's state for the next batched flush. st is nil
// for a deleted device. Only the first change after a flush takes dirtyMu.
func (s *store) markDirty(id string, st *devState) {
	if s.db == nil {
		return
	}
	if st != nil && !st.dirty.CompareAndSwap(false, true) {
		return
	}
	s.dirtyMu.Lock()
	s.dirty[id] = true
	ask := !s.pending
	s.pending = true
	s.dirtyMu.Unlock()
	if ask {
		s.onDirty()
	}
}

// flushScheduled is the scheduled flush.
func (s *store) flushScheduled() error {
	s.dirtyMu.Lock()
	s.pending = false
	s.dirtyMu.Unlock()
	return s.flushDirty()
}

// flushDirty writes every changed device state in one transaction.
func (s *store) flushDirty() error {
	if s.db == nil {
		return nil
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.dirtyMu.Lock()
	ids := s.dirty
	s.dirty = map[string]bool{}
	s.dirtyMu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	out := make(map[string][]byte, len(ids))
	s.mu.RLock()
	for id := range ids {
		st, ok := s.state[id]
		if !ok || s.devices[id] == nil {
			out[id] = nil
			continue
		}
		st.dirty.Store(false) // a change from here on is flushed again
		st.mu.Lock()
		data, err := json.Marshal(st)
		st.mu.Unlock()
		if err == nil {
			out[id] = data
		}
	}
	s.mu.RUnlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketState)
		for id, data := range out {
			var err error
			if data == nil {
				err = b.Delete([]byte(id))
			} else {
				err = b.Put([]byte(id), data)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// setLatest keeps the newest value of a key and, if asked, a bounded
// history; the caller holds ds.mu.
func (s *store) setLatest(ds *devState, key string, v TsValue) {
	if old, ok := ds.Latest[key]; !ok || old.Ts <= v.Ts {
		ds.Latest[key] = v
	}
	if s.history > 0 {
		h := append(ds.History[key], v)
		if len(h) > s.history {
			h = h[len(h)-s.history:]
		}
		ds.History[key] = h
	}
}

// MarshalJSON lets TsValue persist its JSON value.
func (v TsValue) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Ts int64           `json:"ts"`
		V  json.RawMessage `json:"v"`
	}{v.Ts, tbapi.AppendValue(nil, v.Value)})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (v *TsValue) UnmarshalJSON(b []byte) error {
	var raw struct {
		Ts int64           `json:"ts"`
		V  json.RawMessage `json:"v"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	val, err := tbapi.Parse(raw.V)
	if err != nil {
		return err
	}
	v.Ts, v.Value = raw.Ts, val
	return nil
}

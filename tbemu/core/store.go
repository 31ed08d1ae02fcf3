package core

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

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
	file    *stateFile
	onDirty func()

	dirtyMu sync.Mutex
	dirty   map[string]bool
	pending bool // a flush is scheduled

	// flushMu keeps flushes in order, so an older state never overwrites a
	// newer one in the file.
	flushMu sync.Mutex
	// pkgMu serialises the changes of packages, each a check, a change in
	// memory and a write of the package with its data: two of them
	// interleaved could drop bytes from the file that the other one uses.
	pkgMu sync.Mutex
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
	// Queued is the device's place in the OTA queue (0: not queued),
	// persisted with the rest so that a restart releases the queue again in
	// the same order.
	Queued uint64 `json:",omitempty"`

	// keys interns the telemetry keys this device sends, so storing a
	// message does not allocate its keys again (guarded by mu).
	keys map[string]string
}

// key returns the interned string of a telemetry key; the caller holds mu.
func (ds *devState) key(b []byte) string {
	if k, ok := ds.keys[string(b)]; ok { // no allocation: a lookup
		return k
	}
	if ds.keys == nil {
		ds.keys = map[string]string{}
	}
	k := string(b)
	if len(ds.keys) < 256 { // a device sending ever-new keys does not grow it
		ds.keys[k] = k
	}
	return k
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

func newStore(path string, history int, onDirty func(), log *slog.Logger) (*store, error) {
	s := &store{
		profiles: map[string]*Profile{}, devices: map[string]*Device{}, byName: map[string]string{},
		byToken: map[string]string{}, byBasic: map[string]string{}, packages: map[string]*Package{},
		blobs: map[string][]byte{}, state: map[string]*devState{}, dirty: map[string]bool{},
		history: history, onDirty: onDirty,
	}
	if path == "" {
		return s, nil
	}
	f, err := openStateFile(path, log)
	if err != nil {
		return nil, err
	}
	s.db, s.file = f.db, f
	if err := s.load(path, log); err != nil {
		f.close()
		return nil, err
	}
	return s, nil
}

// load reads the file into memory. Blobs that no package uses (left by an
// older version, which never deleted them) are dropped from the file. A
// record that does not decode, or a panic in bbolt, is ErrStateDamaged.
func (s *store) load(path string, log *slog.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, fmt.Errorf("%v", r))
		}
	}()
	var dead [][]byte
	err = s.db.Update(func(tx *bolt.Tx) error {
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
		used := map[string]bool{}
		for _, p := range s.packages {
			if p.HasData {
				used[p.DataSHA256] = true
			}
		}
		err = tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
			if !used[string(k)] {
				dead = append(dead, append([]byte(nil), k...))
				return nil
			}
			// bbolt checks pages, not values: the key is the bytes' hash.
			if blobKey(v) != string(k) {
				return fmt.Errorf("package data %.12s does not match its SHA-256", k)
			}
			s.blobs[string(k)] = append([]byte(nil), v...)
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := tx.Bucket(bucketBlobs).Delete(k); err != nil {
				return err
			}
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
	if err != nil {
		return damaged(path, err)
	}
	if len(dead) > 0 {
		log.Info("state file: dropped package data no package uses", "path", path, "blobs", len(dead))
	}
	return nil
}

func (s *store) close() error {
	if s.db == nil {
		return nil
	}
	s.flushDirty()
	return s.file.close()
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

// blobKey is the key of package data: its SHA-256 in hex.
func blobKey(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Package data is stored once per content and counted by reference: the
// packages whose DataSHA256 names it. setPackage writes a package (nil:
// deletes it) and, in the same transaction, its new data if that is not
// stored yet and the data of its old bytes if no package uses them any more,
// so the memory and the file never keep bytes no package uses, and a kill -9
// never leaves a package without its bytes. check, if given, runs under mu
// first and can refuse the change. The caller holds pkgMu.
func (s *store) setPackage(id string, p *Package, data []byte, check func() error) error {
	s.mu.Lock()
	if check != nil {
		if err := check(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	old := s.packages[id]
	var oldKey, newKey string
	if old != nil && old.HasData {
		oldKey = old.DataSHA256
	}
	if p != nil && p.HasData {
		newKey = p.DataSHA256
	}
	if p == nil {
		delete(s.packages, id)
	} else {
		cp := *p
		s.packages[id] = &cp
	}
	_, have := s.blobs[newKey]
	addBlob := newKey != "" && !have
	if addBlob {
		s.blobs[newKey] = data
	}
	dropBlob := oldKey != "" && oldKey != newKey && !s.blobUsed(oldKey)
	if dropBlob {
		delete(s.blobs, oldKey)
	}
	s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	var rec []byte
	if p != nil {
		var err error
		if rec, err = json.Marshal(p); err != nil {
			return err
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if addBlob {
			if err := tx.Bucket(bucketBlobs).Put([]byte(newKey), data); err != nil {
				return err
			}
		}
		if dropBlob {
			if err := tx.Bucket(bucketBlobs).Delete([]byte(oldKey)); err != nil {
				return err
			}
		}
		if rec == nil {
			return tx.Bucket(bucketPackages).Delete([]byte(id))
		}
		return tx.Bucket(bucketPackages).Put([]byte(id), rec)
	})
}

// blobUsed reports whether a package uses the data; the caller holds mu.
func (s *store) blobUsed(key string) bool {
	for _, p := range s.packages {
		if p.HasData && p.DataSHA256 == key {
			return true
		}
	}
	return false
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
	// One buffer for all records: bbolt keeps each value until the commit,
	// and a record is a slice of the buffer at the time it was written (an
	// append that moves the buffer leaves the earlier slices where they were).
	var buf []byte
	s.mu.RLock()
	for id := range ids {
		st, ok := s.state[id]
		if !ok || s.devices[id] == nil {
			out[id] = nil
			continue
		}
		st.dirty.Store(false) // a change from here on is flushed again
		st.mu.Lock()
		start := len(buf)
		buf = st.appendJSON(buf)
		st.mu.Unlock()
		out[id] = buf[start:len(buf):len(buf)]
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

// appendJSON writes the state as json.Marshal would, without reflection
// (the flush of the latest values was most of the server's encoding/json
// time); load reads it back with json.Unmarshal. Keys come in map order, not
// sorted; empty maps are written as {}. The caller holds ds.mu.
func (ds *devState) appendJSON(b []byte) []byte {
	b = append(b, `{"Attrs":{`...)
	first := true
	for scope, kv := range ds.Attrs {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = tbapi.AppendString(b, scope)
		b = append(b, ':')
		b = appendTsMap(b, kv)
	}
	b = append(b, `},"Latest":`...)
	b = appendTsMap(b, ds.Latest)
	b = append(b, `,"Msgs":`...)
	b = strconv.AppendInt(b, ds.Msgs, 10)
	b = append(b, `,"Points":`...)
	b = strconv.AppendInt(b, ds.Points, 10)
	b = append(b, `,"LastActivity":`...)
	b = strconv.AppendInt(b, ds.LastActivity, 10)
	b = append(b, `,"LastConnect":`...)
	b = strconv.AppendInt(b, ds.LastConnect, 10)
	if ds.Queued != 0 {
		b = append(b, `,"Queued":`...)
		b = strconv.AppendUint(b, ds.Queued, 10)
	}
	return append(b, '}')
}

func appendTsMap(b []byte, m map[string]TsValue) []byte {
	b = append(b, '{')
	first := true
	for k, v := range m {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = tbapi.AppendString(b, k)
		b = append(b, ':')
		b = v.appendJSON(b)
	}
	return append(b, '}')
}

func (v TsValue) appendJSON(b []byte) []byte {
	b = append(b, `{"ts":`...)
	b = strconv.AppendInt(b, v.Ts, 10)
	b = append(b, `,"v":`...)
	b = tbapi.AppendValue(b, v.Value)
	return append(b, '}')
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

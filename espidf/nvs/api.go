//go:build go1.23

package nvs

func checkName(name string) error {
	if name == "" || len(name) > maxKeyLen {
		return ErrKeyTooLong
	}
	return nil
}

// find returns the live value item of a key.
func (s *Store) find(namespace, key string) (loc, item, error) {
	if err := checkName(namespace); err != nil {
		return loc{}, item{}, err
	}
	if err := checkName(key); err != nil {
		return loc{}, item{}, err
	}
	ns, ok := s.ns[namespace]
	if !ok {
		return loc{}, item{}, ErrNotFound
	}
	l, ok := s.index[id(ns, chunkAny, key)]
	if !ok {
		return loc{}, item{}, ErrNotFound
	}
	return l, s.item(l.sector, l.entry), nil
}

// data returns the bytes of a string or single-chunk item, checking their CRC.
func (s *Store) data(l loc, it item) ([]byte, error) {
	off := s.base(l.sector) + entryData + (l.entry+1)*EntrySize
	d := s.mem[off : off+it.dataSize()]
	if crc(d) != it.dataCRC() {
		return nil, ErrCorruptValue
	}
	return append([]byte(nil), d...), nil
}

// GetString returns a string value (nvs_get_str). A value whose data does not
// match its CRC reads as missing, as ESP-IDF's does.
func (s *Store) GetString(namespace, key string) (string, error) {
	l, it, err := s.find(namespace, key)
	if err != nil {
		return "", err
	}
	if it.typ() != String {
		return "", ErrTypeMismatch
	}
	d, err := s.data(l, it)
	if err != nil {
		return "", ErrNotFound
	}
	if n := len(d); n > 0 && d[n-1] == 0 {
		d = d[:n-1]
	}
	return string(d), nil
}

// SetString stores a string (nvs_set_str): written with its NUL, the new item
// first, then the old one erased. Writing the value already stored writes
// nothing.
func (s *Store) SetString(namespace, key, value string) error {
	if err := checkName(namespace); err != nil {
		return err
	}
	if err := checkName(key); err != nil {
		return err
	}
	if len(value) > MaxStringLen {
		return ErrValueTooLong
	}
	ns, err := s.namespace(namespace)
	if err != nil {
		return err
	}
	data := append([]byte(value), 0)
	if l, it, err := s.find(namespace, key); err == nil && it.typ() == String {
		if old, err := s.data(l, it); err == nil && string(old) == string(data) {
			return nil
		}
	}
	return s.replace(ns, key, encode(ns, String, key, data))
}

// replace writes an item and then erases the copy it replaces (looked up
// after the write, since making room may have moved it).
func (s *Store) replace(ns uint8, key string, entries []byte) error {
	l, err := s.put(entries)
	if err != nil {
		return err
	}
	k := id(ns, chunkAny, key)
	old, had := s.index[k]
	s.index[k] = l
	if had && old != l {
		return s.eraseItem(old)
	}
	return nil
}

// namespace returns a namespace's index, creating it with the lowest free
// index (nvs_open in read-write mode).
func (s *Store) namespace(name string) (uint8, error) {
	if ns, ok := s.ns[name]; ok {
		return ns, nil
	}
	inUse := map[uint8]bool{}
	for _, ns := range s.ns {
		inUse[ns] = true
	}
	for ns := uint8(1); ns <= maxNamespace; ns++ {
		if inUse[ns] {
			continue
		}
		if err := s.replace(0, name, encode(0, U8, name, []byte{ns})); err != nil {
			return 0, err
		}
		s.ns[name] = ns
		return ns, nil
	}
	return 0, ErrTooManyNames
}

// Erase removes a key (nvs_erase_key). Erasing a missing key is not an error,
// as firmware.NVS asks.
func (s *Store) Erase(namespace, key string) error {
	l, it, err := s.find(namespace, key)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if it.typ() == BlobIndex {
		for c := 0; c < it.chunkCount(); c++ {
			k := id(it.ns(), it.chunkStart()+uint8(c), key)
			if dl, ok := s.index[k]; ok {
				if err := s.eraseItem(dl); err != nil {
					return err
				}
				delete(s.index, k)
			}
		}
	}
	delete(s.index, id(it.ns(), chunkAny, key))
	return s.eraseItem(l)
}

// Entry is one stored value.
type Entry struct {
	Namespace string
	Key       string
	Type      Type
	// Data is the value as stored: little-endian for integers, the bytes of
	// a string without its NUL, a blob's bytes joined from its chunks.
	Data []byte
}

// Entries returns every readable value, sorted by namespace and key. Values
// whose data fails its CRC, and blobs missing a chunk, are left out.
func (s *Store) Entries() []Entry {
	names := map[uint8]string{}
	for n, ns := range s.ns {
		names[ns] = n
	}
	var out []Entry
	for k, l := range s.index {
		it := s.item(l.sector, l.entry)
		name, ok := names[it.ns()]
		if k[0] == 0 || !ok || it.chunk() != chunkAny {
			continue // namespaces themselves, orphans, blob chunks
		}
		if d, ok := s.value(l, it); ok {
			out = append(out, Entry{Namespace: name, Key: it.key(), Type: it.typ(), Data: d})
		}
	}
	insertionSort(len(out), func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Key < out[j].Key
	}, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (s *Store) value(l loc, it item) ([]byte, bool) {
	switch t := it.typ(); {
	case t.primitive():
		return append([]byte(nil), it[24:24+int(t&0x0F)]...), true
	case t == String || t == Blob:
		d, err := s.data(l, it)
		if err != nil {
			return nil, false
		}
		if t == String && len(d) > 0 && d[len(d)-1] == 0 {
			d = d[:len(d)-1]
		}
		return d, true
	case t == BlobIndex:
		var d []byte
		for c := 0; c < it.chunkCount(); c++ {
			cl, ok := s.index[id(it.ns(), it.chunkStart()+uint8(c), it.key())]
			if !ok {
				return nil, false
			}
			part, err := s.data(cl, s.item(cl.sector, cl.entry))
			if err != nil {
				return nil, false
			}
			d = append(d, part...)
		}
		return d, uint32(len(d)) == it.blobSize()
	}
	return nil, false
}

// Namespaces returns the namespaces and their indexes.
func (s *Store) Namespaces() map[string]uint8 {
	out := make(map[string]uint8, len(s.ns))
	for n, ns := range s.ns {
		out[n] = ns
	}
	return out
}

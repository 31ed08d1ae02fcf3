//go:build go1.23

package nvs

// Store is an open NVS partition (nvs_flash_init plus nvs_open/nvs_get_str/
// nvs_set_str/nvs_erase_key on it).
type Store struct {
	f       Flash
	mem     []byte // the partition as it is on flash
	used    []int  // sectors in use, by sequence number; the last one is written to
	free    []int  // uninitialised or corrupt sectors
	nextSeq uint32
	index   map[string]loc // live items by id()
	ns      map[string]uint8
}

// loc is where an item header sits.
type loc struct{ sector, entry int }

// id identifies an item as ESP-IDF's hash list does: namespace index, chunk
// index and key, not the type (a new type replaces the old value).
func id(ns, chunk uint8, key string) string { return string([]byte{ns, chunk}) + key }

// Open reads the partition and repairs what a power cut left half done, as
// nvs_flash_init does. size is the partition size, a multiple of 4096.
func Open(f Flash, size int) (*Store, error) {
	if size%PageSize != 0 || size < 2*PageSize {
		return nil, ErrInvalidSize
	}
	s := &Store{f: f, mem: make([]byte, size)}
	if _, err := f.ReadAt(s.mem, 0); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) base(sector int) int         { return sector * PageSize }
func (s *Store) pageState(sector int) uint32 { return le32(s.mem[s.base(sector):]) }
func (s *Store) pageSeq(sector int) uint32   { return le32(s.mem[s.base(sector)+4:]) }

func (s *Store) entryState(sector, i int) int {
	return int(s.mem[s.base(sector)+entryTable+i/4]>>(uint(i%4)*2)) & 3
}

func (s *Store) item(sector, i int) item {
	var it item
	copy(it[:], s.mem[s.base(sector)+entryData+i*EntrySize:])
	return it
}

// load classifies the sectors, completes an interrupted page move, erases
// half-written and duplicate items, and indexes the rest.
func (s *Store) load() error {
	for sector := 0; sector < len(s.mem)/PageSize; sector++ {
		used, err := s.classify(sector)
		if err != nil {
			return err
		}
		if used {
			s.used = append(s.used, sector)
		} else {
			s.free = append(s.free, sector)
		}
	}
	insertionSort(len(s.used), func(i, j int) bool {
		a, b := s.used[i], s.used[j]
		return s.pageSeq(a) < s.pageSeq(b)
	}, func(i, j int) { s.used[i], s.used[j] = s.used[j], s.used[i] })
	if n := len(s.used); n > 0 {
		s.nextSeq = s.pageSeq(s.used[n-1]) + 1
	}
	if err := s.finishFreeing(); err != nil {
		return err
	}
	if len(s.used) == 0 {
		if err := s.activate(); err != nil {
			return err
		}
	}
	if err := s.repairTail(); err != nil {
		return err
	}
	if err := s.reindex(true); err != nil {
		return err
	}
	if len(s.free) == 0 {
		return ErrNoFreePages // no room to ever move a page: nvs_flash_init refuses too
	}
	return nil
}

// classify reports whether a sector holds a page in use. Uninitialised and
// corrupt sectors are free (a corrupt one is erased before reuse).
func (s *Store) classify(sector int) (bool, error) {
	b := s.mem[s.base(sector) : s.base(sector)+PageSize]
	state := le32(b)
	if state == pageUninitialized {
		return false, nil
	}
	if le32(b[28:]) != crc(b[4:28]) {
		return false, nil
	}
	if b[8] < version2 {
		return false, ErrNewVersion
	}
	switch state {
	case pageActive, pageFull, pageFreeing:
		return true, nil
	}
	return false, nil
}

// activate takes a free sector as the new current page, erasing it if it
// was corrupt (PageManager::activatePage). It is initialised (header
// written) by its first write, as Page::writeItem does.
func (s *Store) activate() error {
	if len(s.free) == 0 {
		return ErrNoFreePages
	}
	sector := s.free[0]
	s.free = s.free[1:]
	s.used = append(s.used, sector)
	for _, b := range s.mem[s.base(sector) : s.base(sector)+PageSize] {
		if b != 0xFF {
			return s.erase(sector)
		}
	}
	return nil
}

func (s *Store) current() int { return s.used[len(s.used)-1] }

// finishFreeing redoes a page move cut by a power loss: the partial copy on
// the newest page is erased, a fresh page takes every live item of the
// FREEING page, which is then erased (PageManager::load).
func (s *Store) finishFreeing() error {
	for k, sector := range s.used {
		if s.pageState(sector) != pageFreeing {
			continue
		}
		if last := s.current(); last != sector && s.pageState(last) == pageActive {
			if err := s.erase(last); err != nil {
				return err
			}
			s.used = s.used[:len(s.used)-1]
			s.free = append(s.free, last)
		}
		if err := s.activate(); err != nil {
			return err
		}
		if err := s.copyItems(sector, s.current()); err != nil {
			return err
		}
		if err := s.erase(sector); err != nil {
			return err
		}
		s.used = append(s.used[:k:k], s.used[k+1:]...)
		s.free = append(s.free, sector)
		return nil
	}
	return nil
}

// repairTail erases entries of the current page whose header was written but
// not marked (the power failed in between): Page::mLoadEntryTable.
func (s *Store) repairTail() error {
	sector := s.current()
	if s.pageState(sector) != pageActive {
		return nil
	}
	for i := s.nextFree(sector); i < EntryCount; i++ {
		off := s.base(sector) + entryData + i*EntrySize
		if le32(s.mem[off:]) == 0xFFFFFFFF {
			break
		}
		if err := s.setEntryState(sector, i, i+1, entryErased); err != nil {
			return err
		}
	}
	return nil
}

// nextFree is the first entry after the last one not empty.
func (s *Store) nextFree(sector int) int {
	n := EntryCount
	for n > 0 && s.entryState(sector, n-1) == entryEmpty {
		n--
	}
	return n
}

// reindex scans the pages in order, erasing (when repair) items that are
// inconsistent or incomplete and older copies of a key, and rebuilds the index.
func (s *Store) reindex(repair bool) error {
	s.index = map[string]loc{}
	for _, sector := range s.used {
		if s.pageState(sector) == pageUninitialized {
			continue
		}
		for i := 0; i < EntryCount; {
			next, err := s.indexEntry(sector, i, repair)
			if err != nil {
				return err
			}
			i = next
		}
	}
	s.ns = map[string]uint8{}
	for k, l := range s.index {
		it := s.item(l.sector, l.entry)
		if k[0] == 0 && it.typ() == U8 {
			s.ns[it.key()] = it[24]
		}
	}
	return nil
}

// indexEntry looks at entry i and returns the index of the next header.
func (s *Store) indexEntry(sector, i int, repair bool) (int, error) {
	if s.entryState(sector, i) != entryWritten {
		return i + 1, nil
	}
	it := s.item(sector, i)
	if !it.consistent(i) {
		if repair {
			return i + 1, s.setEntryState(sector, i, i+1, entryErased)
		}
		return i + 1, nil
	}
	span := it.span()
	for j := i + 1; j < i+span; j++ {
		if s.entryState(sector, j) != entryWritten {
			if repair {
				return i + span, s.setEntryState(sector, i, i+span, entryErased)
			}
			return i + span, nil
		}
	}
	k := id(it.ns(), it.chunk(), it.key())
	if old, ok := s.index[k]; ok && repair {
		if err := s.eraseItem(old); err != nil {
			return 0, err
		}
	}
	s.index[k] = loc{sector, i}
	return i + span, nil
}

// insertionSort sorts n elements. Not sort.Slice: it links TinyGo's reflect
// (reflectlite.Swapper); the lists here have a few dozen elements.
func insertionSort(n int, less func(i, j int) bool, swap func(i, j int)) {
	for i := 1; i < n; i++ {
		for j := i; j > 0 && less(j, j-1); j-- {
			swap(j, j-1)
		}
	}
}

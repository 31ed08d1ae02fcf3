//go:build go1.23

package nvs

// write puts p at off on the flash and in the RAM copy (bits only clear).
func (s *Store) write(off int, p []byte) error {
	if _, err := s.f.WriteAt(p, int64(off)); err != nil {
		return err
	}
	for i, b := range p {
		s.mem[off+i] &= b
	}
	return nil
}

func (s *Store) erase(sector int) error {
	if err := s.f.EraseBlocks(int64(sector), 1); err != nil {
		return err
	}
	b := s.mem[s.base(sector) : s.base(sector)+PageSize]
	for i := range b {
		b[i] = 0xFF
	}
	return nil
}

// setEntryState sets entries [from, to) of a page, writing each 32-bit word
// of the bitmap it touches, as Page::alterEntryRangeState does.
func (s *Store) setEntryState(sector, from, to, state int) error {
	table := s.base(sector) + entryTable
	for w := from / 16; w <= (to-1)/16; w++ {
		var word [4]byte
		copy(word[:], s.mem[table+w*4:])
		for i := max(from, w*16); i < min(to, w*16+16); i++ {
			b, shift := (i%16)/4, uint(i%4)*2
			word[b] = word[b]&^(3<<shift) | byte(state)<<shift
		}
		if err := s.write(table+w*4, word[:]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) setPageState(sector int, state uint32) error {
	var b [4]byte
	put32(b[:], state)
	return s.write(s.base(sector), b[:])
}

// initPage writes the header of a fresh page: ACTIVE, its sequence number,
// version 2, reserved bytes 0xFF, and the CRC of bytes 4..27.
func (s *Store) initPage(sector int) error {
	var h [32]byte
	for i := range h {
		h[i] = 0xFF
	}
	put32(h[0:], pageActive)
	put32(h[4:], s.nextSeq)
	h[8] = version2
	put32(h[28:], crc(h[4:28]))
	s.nextSeq++
	return s.write(s.base(sector), h[:])
}

// eraseItem marks an item and its data entries erased.
func (s *Store) eraseItem(l loc) error {
	it := s.item(l.sector, l.entry)
	span := 1
	if it.storedCRC() == it.headerCRC() && it.span() >= 1 && l.entry+it.span() <= EntryCount {
		span = it.span()
	}
	return s.setEntryState(l.sector, l.entry, l.entry+span, entryErased)
}

// appendEntries writes raw 32-byte entries at the end of a page and marks
// them written, the header first (Page::writeEntry, writeEntryData).
func (s *Store) appendEntries(sector int, entries []byte) (int, error) {
	if s.pageState(sector) == pageUninitialized {
		if err := s.initPage(sector); err != nil {
			return 0, err
		}
	}
	at := s.nextFree(sector)
	n := len(entries) / EntrySize
	for {
		if at+n > EntryCount {
			return 0, errPageFull
		}
		dirty := s.dirtyEntry(sector, at, at+n)
		if dirty < 0 {
			break
		}
		// Never write over bytes that are not erased (a torn write the
		// header check missed): give those entries up, as ESP-IDF does
		// for a half-written header.
		if err := s.setEntryState(sector, at, dirty+1, entryErased); err != nil {
			return 0, err
		}
		at = dirty + 1
	}
	off := s.base(sector) + entryData + at*EntrySize
	if err := s.write(off, entries[:EntrySize]); err != nil {
		return 0, err
	}
	if err := s.setEntryState(sector, at, at+1, entryWritten); err != nil {
		return 0, err
	}
	if n > 1 {
		if err := s.write(off+EntrySize, entries[EntrySize:]); err != nil {
			return 0, err
		}
		if err := s.setEntryState(sector, at+1, at+n, entryWritten); err != nil {
			return 0, err
		}
	}
	return at, nil
}

// dirtyEntry returns the last entry in [from, to) holding a byte that is not
// erased, or -1.
func (s *Store) dirtyEntry(sector, from, to int) int {
	for i := to - 1; i >= from; i-- {
		off := s.base(sector) + entryData + i*EntrySize
		for _, b := range s.mem[off : off+EntrySize] {
			if b != 0xFF {
				return i
			}
		}
	}
	return -1
}

var errPageFull = &Error{"ESP_ERR_NVS_PAGE_FULL"}

// copyItems copies every written item of src to dst (Page::copyItems).
func (s *Store) copyItems(src, dst int) error {
	for i := 0; i < EntryCount; {
		if s.entryState(src, i) != entryWritten {
			i++
			continue
		}
		it := s.item(src, i)
		span := it.span()
		if span < 1 || i+span > EntryCount {
			span = 1
		}
		off := s.base(src) + entryData + i*EntrySize
		if _, err := s.appendEntries(dst, s.mem[off:off+span*EntrySize]); err != nil {
			return err
		}
		i += span
	}
	return nil
}

// requestNewPage makes a fresh current page, moving the page with the most
// unused entries out of the way when only one free page is left
// (PageManager::requestNewPage).
func (s *Store) requestNewPage() error {
	if len(s.free) == 0 {
		return ErrNotEnoughSpace
	}
	if len(s.free) >= 2 {
		return s.activate()
	}
	victim, most := -1, 0
	for k, sector := range s.used {
		unused := EntryCount
		for i := 0; i < EntryCount; i++ {
			if s.entryState(sector, i) == entryWritten {
				unused--
			}
		}
		if unused > most {
			victim, most = k, unused
		}
	}
	if victim < 0 {
		return ErrNotEnoughSpace
	}
	sector := s.used[victim]
	if err := s.activate(); err != nil {
		return err
	}
	if err := s.setPageState(sector, pageFreeing); err != nil {
		return err
	}
	if err := s.copyItems(sector, s.current()); err != nil {
		return err
	}
	if err := s.erase(sector); err != nil {
		return err
	}
	s.used = append(s.used[:victim:victim], s.used[victim+1:]...)
	s.free = append(s.free, sector)
	return s.reindex(false)
}

// put writes an item (header plus data entries) on the current page, moving
// to a new page when it does not fit (Storage::writeItem).
func (s *Store) put(entries []byte) (loc, error) {
	sector := s.current()
	if s.pageState(sector) != pageFull {
		at, err := s.appendEntries(sector, entries)
		if err == nil {
			return loc{sector, at}, nil
		}
		if !isErr(err, errPageFull) {
			return loc{}, err
		}
		if err := s.setPageState(sector, pageFull); err != nil {
			return loc{}, err
		}
	}
	if err := s.requestNewPage(); err != nil {
		return loc{}, err
	}
	at, err := s.appendEntries(s.current(), entries)
	if isErr(err, errPageFull) {
		return loc{}, ErrNotEnoughSpace
	}
	return loc{s.current(), at}, err
}

// encode builds the entries of an item: a header, then data (strings and
// blobs) in 32-byte entries padded with 0xFF.
func encode(ns uint8, t Type, key string, data []byte) []byte {
	if !t.variable() {
		it := newItem(ns, t, 1, chunkAny, key)
		copy(it[24:], data)
		it.seal()
		return it[:]
	}
	n := (len(data) + EntrySize - 1) / EntrySize
	it := newItem(ns, t, n+1, chunkAny, key)
	put16(it[24:], uint16(len(data)))
	put16(it[26:], 0xFFFF)
	put32(it[28:], crc(data))
	it.seal()
	out := make([]byte, (n+1)*EntrySize)
	copy(out, it[:])
	for i := EntrySize + copy(out[EntrySize:], data); i < len(out); i++ {
		out[i] = 0xFF
	}
	return out
}

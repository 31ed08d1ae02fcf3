//go:build go1.23

package nvs

import "hash/crc32"

// Layout of a page (nvs_page.hpp).
const (
	PageSize     = 4096
	EntrySize    = 32
	EntryCount   = 126
	entryTable   = 32 // offset of the entry state bitmap
	entryData    = 64 // offset of entry 0
	maxKeyLen    = 15
	maxNamespace = 254
	// MaxStringLen is the longest string value, without its NUL: a string
	// fills at most one page, 4000 bytes with the NUL (CHUNK_MAX_SIZE).
	MaxStringLen = EntrySize*(EntryCount-1) - 1
	chunkAny     = 0xFF
	version2     = 0xFE // NVS_VERSION: multi-page blobs
	version1     = 0xFF // legacy single-chunk blobs
)

// Page states (Page::PageState): each step clears one more bit.
const (
	pageUninitialized uint32 = 0xFFFFFFFF
	pageActive        uint32 = 0xFFFFFFFE
	pageFull          uint32 = 0xFFFFFFFC
	pageFreeing       uint32 = 0xFFFFFFF8
	pageCorrupt       uint32 = 0xFFFFFFF0
)

// Entry states in the bitmap (Page::EntryState).
const (
	entryEmpty   = 3
	entryWritten = 2
	entryErased  = 0
)

// Type is an item's data type (ItemType, nvs.h nvs_type_t).
type Type uint8

// Item types. Signed types have 0x10 set; the low nibble is the size.
const (
	U8        Type = 0x01
	I8        Type = 0x11
	U16       Type = 0x02
	I16       Type = 0x12
	U32       Type = 0x04
	I32       Type = 0x14
	U64       Type = 0x08
	I64       Type = 0x18
	String    Type = 0x21
	Blob      Type = 0x41 // version 1 blob: one chunk, like a string
	BlobData  Type = 0x42 // version 2 blob chunk
	BlobIndex Type = 0x48 // version 2 blob: size and chunks
)

var typeNames = map[Type]string{
	U8: "u8", I8: "i8", U16: "u16", I16: "i16", U32: "u32", I32: "i32", U64: "u64", I64: "i64",
	String: "string", Blob: "blob", BlobData: "blob_data", BlobIndex: "blob_index",
}

// String returns the type's name as nvs_partition_gen.py's CSV spells it.
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "type(0x" + hex2(byte(t)) + ")"
}

func (t Type) primitive() bool {
	switch t {
	case U8, I8, U16, I16, U32, I32, U64, I64:
		return true
	}
	return false
}

// variable reports whether items of type t carry data entries after the header.
func (t Type) variable() bool { return t == String || t == Blob || t == BlobData }

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&0xF]})
}

// crc is esp_rom_crc32_le(0xFFFFFFFF, p): zlib's crc32(p, 0xFFFFFFFF).
func crc(p []byte) uint32 { return crc32.Update(0xFFFFFFFF, crc32.IEEETable, p) }

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func put16(b []byte, v uint16) { b[0], b[1] = byte(v), byte(v>>8) }
func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// item is one 32-byte item header (class Item in nvs_types.hpp).
type item [EntrySize]byte

func (it *item) ns() uint8         { return it[0] }
func (it *item) typ() Type         { return Type(it[1]) }
func (it *item) span() int         { return int(it[2]) }
func (it *item) chunk() uint8      { return it[3] }
func (it *item) storedCRC() uint32 { return le32(it[4:]) }

// key returns the key up to its NUL (at most 15 bytes are compared, like
// strncmp(..., MAX_KEY_LENGTH)).
func (it *item) key() string {
	k := it[8 : 8+maxKeyLen]
	for i, c := range k {
		if c == 0 {
			return string(k[:i])
		}
	}
	return string(k)
}

// dataSize and dataCRC are the varLength fields of strings and blob chunks.
func (it *item) dataSize() int     { return int(le16(it[24:])) }
func (it *item) dataCRC() uint32   { return le32(it[28:]) }
func (it *item) blobSize() uint32  { return le32(it[24:]) }
func (it *item) chunkCount() int   { return int(it[28]) }
func (it *item) chunkStart() uint8 { return it[29] }

// headerCRC is Item::calculateCrc32: bytes 0..3 and 8..31.
func (it *item) headerCRC() uint32 {
	c := crc32.Update(0xFFFFFFFF, crc32.IEEETable, it[0:4])
	return crc32.Update(c, crc32.IEEETable, it[8:32])
}

// newItem returns a header with ESP-IDF's fill: key NUL-padded, data 0xFF.
func newItem(ns uint8, t Type, span int, chunk uint8, key string) item {
	var it item
	it[0], it[1], it[2], it[3] = ns, byte(t), byte(span), chunk
	for i := 24; i < 32; i++ {
		it[i] = 0xFF
	}
	copy(it[8:8+maxKeyLen], key)
	return it
}

func (it *item) seal() { put32(it[4:], it.headerCRC()) }

// consistent is Item::checkHeaderConsistency for an item at entry index i:
// the CRC matches and span and sizes fit the type and the page.
func (it *item) consistent(i int) bool {
	if it.storedCRC() != it.headerCRC() {
		return false
	}
	switch t := it.typ(); {
	case t.primitive():
		return it.span() == 1
	case t == BlobIndex:
		return it.span() == 1 && it.chunk() == chunkAny
	case t.variable():
		if t == BlobData && it.chunk() == chunkAny {
			return false
		}
		size := it.dataSize()
		if size > (EntryCount-i-1)*EntrySize || it.span() > EntryCount-i {
			return false
		}
		return it.span() == (size+EntrySize-1)/EntrySize+1
	}
	return false
}

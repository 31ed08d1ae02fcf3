package device

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"sync"
)

// ImageStore keeps slot contents once per SHA-256, shared by every device:
// 1,000 devices holding the same 1 MiB image hold one copy.
type ImageStore struct {
	mu    sync.Mutex
	blobs map[[32]byte]*Blob
}

// NewImageStore returns an empty store.
func NewImageStore() *ImageStore { return &ImageStore{blobs: map[[32]byte]*Blob{}} }

// Blob is immutable image content with a reference count.
type Blob struct {
	store *ImageStore
	sum   [32]byte
	data  []byte
	refs  int
}

// Bytes returns the content; callers must not modify it.
func (b *Blob) Bytes() []byte { return b.data }

// Sum returns the content's SHA-256.
func (b *Blob) Sum() [32]byte { return b.sum }

// Add stores data (or finds it) and returns a reference.
func (s *ImageStore) Add(data []byte) *Blob {
	return s.intern(sha256.Sum256(data), data)
}

func (s *ImageStore) intern(sum [32]byte, data []byte) *Blob {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.blobs[sum]; ok {
		b.refs++
		return b
	}
	b := &Blob{store: s, sum: sum, data: data, refs: 1}
	s.blobs[sum] = b
	return b
}

// Release drops a reference; the last one frees the content.
func (b *Blob) Release() {
	s := b.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.refs--; b.refs <= 0 {
		delete(s.blobs, b.sum)
	}
}

// Len returns how many distinct blobs are stored.
func (s *ImageStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.blobs)
}

// Bytes returns the total size of the distinct blobs.
func (s *ImageStore) Bytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.blobs {
		n += len(b.data)
	}
	return n
}

// BlobWriter streams an image in, hashing as it goes. While the bytes match
// a blob the store already holds it keeps no copy of its own, so devices
// taking an update someone already finished cost no image memory.
type BlobWriter struct {
	s    *ImageStore
	h    hash.Hash
	n    int
	cand *Blob  // a stored blob whose prefix equals what was written
	own  []byte // private copy once no candidate matches
}

// NewWriter starts a streaming write.
func (s *ImageStore) NewWriter() *BlobWriter { return &BlobWriter{s: s, h: sha256.New()} }

// Len returns the bytes written so far.
func (w *BlobWriter) Len() int { return w.n }

// Write appends p.
func (w *BlobWriter) Write(p []byte) {
	w.h.Write(p)
	if w.n == 0 && w.own == nil {
		w.cand = w.s.findPrefix(p)
	}
	if w.cand != nil {
		if d := w.cand.data; w.n+len(p) <= len(d) && bytes.Equal(d[w.n:w.n+len(p)], p) {
			w.n += len(p)
			return
		}
		w.own = append([]byte(nil), w.cand.data[:w.n]...)
		w.cand = nil
	}
	w.own = append(w.own, p...)
	w.n += len(p)
}

func (s *ImageStore) findPrefix(p []byte) *Blob {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.blobs {
		if len(b.data) >= len(p) && bytes.Equal(b.data[:len(p)], p) {
			return b
		}
	}
	return nil
}

// Commit stores the content and returns a reference to it.
func (w *BlobWriter) Commit() *Blob {
	var sum [32]byte
	copy(sum[:], w.h.Sum(nil))
	data := w.own
	if w.cand != nil {
		data = w.cand.data[:w.n]
	}
	w.own, w.cand = nil, nil
	return w.s.intern(sum, data)
}

// Discard drops what was written.
func (w *BlobWriter) Discard() { w.own, w.cand = nil, nil }

package device

import (
	"bytes"
	"crypto/sha256"
	"strconv"
	"sync"

	"github.com/tbsim/tbsim/device/espimage"
)

// ImageStore keeps slot contents once per SHA-256, shared by every device:
// 1,000 devices holding the same 1 MiB image hold one copy.
type ImageStore struct {
	mu       sync.Mutex
	blobs    map[[32]byte]*Blob
	inflight map[string]*shared // downloads in progress, by size and first bytes
}

// NewImageStore returns an empty store.
func NewImageStore() *ImageStore { return &ImageStore{blobs: map[[32]byte]*Blob{}} }

// Blob is immutable image content with a reference count.
type Blob struct {
	store *ImageStore
	sum   [32]byte
	data  []byte
	refs  int

	// Validation depends on the bytes and the chip only, so it is done once
	// per content, not once per device (1,000 devices verifying one update
	// would hash the same MiB 1,000 times over).
	vmu      sync.Mutex
	verified map[espimage.Chip]verdict
}

type verdict struct {
	img *espimage.Image
	err error
}

// Image validates the content as an application image for chip
// (esp_image_verify), remembering the answer.
func (b *Blob) Image(chip espimage.Chip) (*espimage.Image, error) {
	b.vmu.Lock()
	defer b.vmu.Unlock()
	if v, ok := b.verified[chip]; ok {
		return v.img, v.err
	}
	img, err := espimage.Parse(b.data, chip)
	if b.verified == nil {
		b.verified = map[espimage.Chip]verdict{}
	}
	b.verified[chip] = verdict{img, err}
	return img, err
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

// BlobWriter streams an image in. While the bytes match a blob the store
// already holds it keeps no copy of its own, so devices taking an update
// someone already finished cost no image memory. Devices downloading the
// same image at the same time share one growing buffer (see shared): the
// first to reach an offset appends, the others compare; only a writer whose
// bytes differ takes a private copy. A private copy is compared with the
// stored blobs before it is hashed, so equal content ends up as one blob.
type BlobWriter struct {
	s    *ImageStore
	size int // the announced size
	n    int
	cand *Blob   // a stored blob whose prefix equals what was written
	sh   *shared // or a download in progress whose bytes equal ours so far
	own  []byte  // private copy once neither matches
}

// shared is the content of downloads in progress of one image (same size,
// same first bytes). Its buffer has the whole size as capacity and only
// grows: a slice of it stays valid, so a finished writer's blob can be a
// slice of it while others still append behind.
type shared struct {
	key     string
	mu      sync.Mutex
	data    []byte
	writers int
}

// writeAt offers p at off: it matches what is there, or extends it.
func (g *shared) writeAt(off int, p []byte) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	end := off + len(p)
	if off > len(g.data) || end > cap(g.data) {
		return false
	}
	have := min(end, len(g.data))
	if !bytes.Equal(g.data[off:have], p[:have-off]) {
		return false
	}
	g.data = append(g.data, p[have-off:]...)
	return true
}

func (g *shared) prefix(n int) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.data[:n:n]
}

// NewWriter starts a streaming write of about size bytes.
func (s *ImageStore) NewWriter(size int) *BlobWriter { return &BlobWriter{s: s, size: size} }

// Len returns the bytes written so far.
func (w *BlobWriter) Len() int { return w.n }

// Write appends p.
func (w *BlobWriter) Write(p []byte) {
	if w.n == 0 && w.own == nil && w.cand == nil && w.sh == nil {
		if w.cand = w.s.findPrefix(p); w.cand == nil && w.size > 0 {
			w.sh = w.s.join(w.size, p)
		}
	}
	if w.cand != nil {
		if d := w.cand.data; w.n+len(p) <= len(d) && bytes.Equal(d[w.n:w.n+len(p)], p) {
			w.n += len(p)
			return
		}
		w.own = append(make([]byte, 0, max(w.size, w.n+len(p))), w.cand.data[:w.n]...)
		w.cand = nil
	}
	if w.sh != nil {
		if w.sh.writeAt(w.n, p) {
			w.n += len(p)
			return
		}
		w.own = append(make([]byte, 0, max(w.size, w.n+len(p))), w.sh.prefix(w.n)...)
		w.s.leave(w.sh)
		w.sh = nil
	}
	if w.own == nil {
		w.own = make([]byte, 0, max(w.size, len(p)))
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

// join returns the shared download of the image of this size that begins
// with first (what a writer offers at offset 0), making one if needed.
func (s *ImageStore) join(size int, first []byte) *shared {
	key := strconv.Itoa(size) + "\x00" + string(first[:min(len(first), 64)])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight == nil {
		s.inflight = map[string]*shared{}
	}
	g := s.inflight[key]
	if g == nil {
		g = &shared{key: key, data: make([]byte, 0, size)}
		s.inflight[key] = g
	}
	g.writers++
	return g
}

// leave drops a writer from a shared download; the last one forgets it (a
// blob may still hold a slice of its bytes).
func (s *ImageStore) leave(g *shared) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.writers--; g.writers <= 0 && s.inflight[g.key] == g {
		delete(s.inflight, g.key)
	}
}

// Commit stores the content and returns a reference to it.
func (w *BlobWriter) Commit() *Blob {
	cand, sh, own := w.cand, w.sh, w.own
	w.own, w.cand, w.sh = nil, nil, nil
	if cand != nil && w.n == len(cand.data) {
		return w.s.ref(cand)
	}
	data := own
	switch {
	case cand != nil:
		data = cand.data[:w.n]
	case sh != nil:
		data = sh.prefix(w.n)
		defer w.s.leave(sh)
	}
	if b := w.s.findEqual(data); b != nil {
		return b // comparing is several times cheaper than hashing
	}
	return w.s.intern(sha256.Sum256(data), data)
}

// ref takes one more reference to a stored blob.
func (s *ImageStore) ref(b *Blob) *Blob {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.blobs[b.sum]; ok {
		cur.refs++
		return cur
	}
	b.refs = 1 // released meanwhile: store it again
	s.blobs[b.sum] = b
	return b
}

// findEqual returns a new reference to a stored blob with exactly data.
func (s *ImageStore) findEqual(data []byte) *Blob {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.blobs {
		if len(b.data) == len(data) && bytes.Equal(b.data, data) {
			b.refs++
			return b
		}
	}
	return nil
}

// Discard drops what was written.
func (w *BlobWriter) Discard() {
	if w.sh != nil {
		w.s.leave(w.sh)
	}
	w.own, w.cand, w.sh = nil, nil, nil
}

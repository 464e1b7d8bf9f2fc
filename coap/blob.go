package coap

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Blobs. A firmware image is served to the device that is to install it,
// block by block (RFC 7959 Block2), from a path the server publishes for
// that device alone. The path goes into the device's Package URI (/5/0/1).
//
// Requests for published paths never reach the Handler, go-coap's
// block-wise layer or go-coap's duplicate-detection cache: they are
// answered from go-coap's request monitor, which runs on the session's
// receive goroutine before any of those (see blobserve.go and
// docs/transport.md, "Serving firmware blobs"). Nothing is kept per
// transfer: every block is read from the Blob when it is asked for, so any
// block can be fetched at any time, in any order, with any block size,
// over any session of the owner.

// BlobPathSegment is the first Uri-Path segment of every published blob.
// Requests for a published path are answered by the blob server and never
// reach the Handler; requests for other paths under it (never published,
// withdrawn, expired) go to the Handler, which should answer 4.04.
const BlobPathSegment = "fw"

// Blob is an immutable byte string the server serves block by block.
// ReadAt is called for each block served, concurrently for different
// sessions, and must not be slow: it runs on the requesting session's
// receive goroutine.
type Blob interface {
	io.ReaderAt
	// Size is the length of the content in bytes.
	Size() int64
	// ETag identifies the content: 1 to 8 bytes (RFC 7252 §5.10.6),
	// derived from its digest, so that a device that resumes a download
	// can tell the content has not changed.
	ETag() []byte
}

// NewBlob returns a Blob reading size bytes from r, with the first 8 bytes
// of digest (the content's digest, e.g. its SHA-256) as ETag. It does not
// copy the content: r is read for every block served.
func NewBlob(r io.ReaderAt, size int64, digest []byte) Blob {
	return readerBlob{r: r, size: size, etag: append([]byte(nil), digest[:min(len(digest), maxETag)]...)}
}

// BytesBlob returns a Blob serving b (not copied; b must not change), with
// the first 8 bytes of its SHA-256 as ETag.
func BytesBlob(b []byte) Blob {
	d := sha256.Sum256(b)
	return NewBlob(bytesReaderAt(b), int64(len(b)), d[:])
}

// maxETag is the longest ETag RFC 7252 allows (§5.10.6).
const maxETag = 8

type readerBlob struct {
	r    io.ReaderAt
	size int64
	etag []byte
}

func (b readerBlob) ReadAt(p []byte, off int64) (int, error) { return b.r.ReadAt(p, off) }
func (b readerBlob) Size() int64                             { return b.size }
func (b readerBlob) ETag() []byte                            { return b.etag }

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// PublishOptions are the optional parameters of Publish.
type PublishOptions struct {
	// MaxBlock caps the block size for this device (16-1024, a power of
	// two); 0 means the server's MaxBlockSize. A device's own smaller
	// block size (its SZX) is always honoured.
	MaxBlock int
	// Expires, if set, is when the path is withdrawn (as by Unpublish).
	Expires time.Time
	// Path, if set, publishes at a path an earlier Publish returned
	// instead of a new one: after a restart of the server, a device in the
	// middle of a download resumes with the URI it was given. A
	// publication at that path is replaced.
	Path string
	// OnBlock is called once for each block served with 2.05, just
	// before it is sent (so a device never holds a block whose report is
	// still to come), on the requesting session's receive goroutine: it
	// must not block. A retransmitted request (same Message ID and token)
	// is answered again but not reported twice.
	OnBlock func(BlockServed)
}

// BlockServed reports one block of a blob sent to its owner.
type BlockServed struct {
	Path    string
	Session *Session
	// Num and Size are the Block2 option of the response: the block
	// number in units of Size bytes, the block size used.
	Num  uint32
	Size int
	// Offset and Len locate the payload in the blob.
	Offset int64
	Len    int
	// Last is set when this block ends the blob (M=0 in Block2).
	Last bool
}

// Errors of Publish.
var (
	ErrBlobEmpty    = errors.New("coap publish: empty blob")
	ErrBlobETag     = errors.New("coap publish: blob ETag must be 1-8 bytes")
	ErrBlobTooLarge = errors.New("coap publish: blob larger than 2^20 blocks of its block size")
	ErrBlobOwner    = errors.New("coap publish: owner identity has no name")
	ErrBlobMaxBlock = errors.New("coap publish: MaxBlock is not a power of two in 16-1024")
	ErrBlobPath     = errors.New("coap publish: not a path Publish returns")
)

// blobIDBytes is the entropy of a published path (128 bits).
const blobIDBytes = 16

// Publish makes blob available to the sessions whose identity is owner
// and returns its path, "/fw/" and 22 random characters (128 bits): the
// path of the Package URI. Any other peer asking for the path gets 4.04
// Not Found, as for a path never published (which the Handler answers),
// so that paths cannot be probed.
// A plain-CoAP owner (Identity{Mode: NoSec}) is any plain-CoAP peer: its
// only protection is that the path cannot be guessed.
func (s *Server) Publish(owner Identity, blob Blob, opts PublishOptions) (string, error) {
	if blob == nil || blob.Size() <= 0 {
		return "", ErrBlobEmpty
	}
	etag := blob.ETag()
	if len(etag) == 0 || len(etag) > maxETag {
		return "", ErrBlobETag
	}
	if owner.Mode != NoSec && owner.Name == "" {
		return "", ErrBlobOwner
	}
	maxBlock := s.cfg.MaxBlockSize
	if opts.MaxBlock != 0 {
		if blockSZX(opts.MaxBlock) < 0 {
			return "", fmt.Errorf("%w: %d", ErrBlobMaxBlock, opts.MaxBlock)
		}
		maxBlock = min(maxBlock, opts.MaxBlock)
	}
	// Every block must have a number that fits the option's 20 bits.
	if blob.Size() > int64(maxBlock)<<20 {
		return "", fmt.Errorf("%w (%d bytes at %d-byte blocks)", ErrBlobTooLarge, blob.Size(), maxBlock)
	}
	id, err := newBlobID(opts.Path)
	if err != nil {
		return "", err
	}
	p := &publication{
		path:     "/" + BlobPathSegment + "/" + id,
		owner:    owner,
		blob:     blob,
		size:     blob.Size(),
		etag:     append([]byte(nil), etag...),
		maxBlock: maxBlock,
		expires:  opts.Expires,
		onBlock:  opts.OnBlock,
	}
	s.blobs.add(id, p)
	return p.path, nil
}

// newBlobID returns the random part of a new path, or that of path when
// it is one Publish returned.
func newBlobID(path string) (string, error) {
	if path != "" {
		id, ok := blobID(path)
		if raw, err := base64.RawURLEncoding.Strict().DecodeString(id); !ok || err != nil || len(raw) != blobIDBytes {
			return "", fmt.Errorf("%w: %q", ErrBlobPath, path)
		}
		return id, nil
	}
	var raw [blobIDBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("coap publish: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw[:]), nil
}

// Unpublish withdraws a path published by Publish and reports whether it
// was published. When it returns, the blob is no longer read: its owner
// may close it. Later requests for the path go to the Handler.
func (s *Server) Unpublish(path string) bool {
	id, ok := blobID(path)
	if !ok {
		return false
	}
	p := s.blobs.remove(id)
	if p == nil {
		return false
	}
	p.withdraw()
	return true
}

// Published reports how many blobs are published (expired ones included
// until they are next noticed).
func (s *Server) Published() int {
	s.blobs.mu.RLock()
	defer s.blobs.mu.RUnlock()
	return len(s.blobs.byID)
}

func blobID(path string) (string, bool) {
	const prefix = "/" + BlobPathSegment + "/"
	if len(path) <= len(prefix) || path[:len(prefix)] != prefix {
		return "", false
	}
	return path[len(prefix):], true
}

// publication is a published blob.
type publication struct {
	path     string
	owner    Identity
	blob     Blob
	size     int64
	etag     []byte
	maxBlock int
	expires  time.Time
	onBlock  func(BlockServed)

	// mu is held for reading while the blob is read, so that withdraw
	// returns only once no read is under way.
	mu   sync.RWMutex
	gone bool
}

func (p *publication) withdraw() {
	p.mu.Lock()
	p.gone = true
	p.mu.Unlock()
}

func (p *publication) expired(now time.Time) bool {
	return !p.expires.IsZero() && !now.Before(p.expires)
}

// readAt reads a block, unless the blob has been withdrawn.
func (p *publication) readAt(b []byte, off int64) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.gone {
		return errWithdrawn
	}
	n, err := p.blob.ReadAt(b, off)
	if n == len(b) {
		return nil // io.ReaderAt may report EOF with the last byte
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return err
}

var errWithdrawn = errors.New("blob withdrawn")

// blobTable holds the published blobs, keyed by the random part of the path.
type blobTable struct {
	mu        sync.RWMutex
	byID      map[string]*publication
	lastSweep time.Time

	// conns holds, for each go-coap connection that fetched a blob, the
	// requests it recently sent (duplicate detection; see blobserve.go).
	conns sync.Map // *udpClient.Conn -> *recentRequests
}

// sweepEvery bounds how often Publish scans the table for expired blobs.
const sweepEvery = time.Minute

func (t *blobTable) init() { t.byID = make(map[string]*publication) }

// add publishes p under id and withdraws the publication it replaces and
// any that expired.
func (t *blobTable) add(id string, p *publication) {
	now := time.Now()
	t.mu.Lock()
	var gone []*publication
	if old := t.byID[id]; old != nil {
		gone = append(gone, old)
	}
	t.byID[id] = p
	if now.Sub(t.lastSweep) >= sweepEvery {
		t.lastSweep = now
		for k, q := range t.byID {
			if q.expired(now) {
				delete(t.byID, k)
				gone = append(gone, q)
			}
		}
	}
	t.mu.Unlock()
	for _, q := range gone {
		q.withdraw() // waits for a read under way, so not under t.mu
	}
}

func (t *blobTable) remove(id string) *publication {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.byID[id]
	delete(t.byID, id)
	return p
}

// lookup returns the live publication with this id, nil if there is none.
// id is the raw Uri-Path segment; the conversion in the index does not
// allocate.
func (t *blobTable) lookup(id []byte, now time.Time) *publication {
	t.mu.RLock()
	p := t.byID[string(id)]
	t.mu.RUnlock()
	if p == nil || !p.expired(now) {
		return p
	}
	t.mu.Lock()
	if t.byID[string(id)] == p {
		delete(t.byID, string(id))
	}
	t.mu.Unlock()
	p.withdraw()
	return nil
}

package delta

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"
)

// This file writes and applies Pelion's "PELION/BSDIFF001" patches
// (arm-patch-stream, manifest payload-format 5), the format the seed's
// devices apply, as the project's delta reference describes it:
//
//	header, 40 bytes:
//	  16  magic "PELION/BSDIFF001"
//	   8  new image size
//	   8  maximum uncompressed frame size
//	   8  maximum compressed frame size
//	  (each size: little-endian magnitude, sign in bit 7 of the last byte)
//	records, until the new image is complete:
//	  uvarint X (diff length), uvarint Y (extra length), signed varint Z (seek)
//	  X diff bytes as frames, added mod 256 to the next X old bytes
//	  Y extra bytes as frames, copied as they are
//	frame: uvarint compressed length, then a raw LZ4 block of at most one
//	  frame (maximum uncompressed frame size) of data
//
// Varints are 7 bits a byte, least significant group first, bit 7 set on
// every byte but the last. A signed varint is the uvarint of
// (|z| << 1) | sign: sign-magnitude, not zigzag.
//
// The seek. The reference says only "signed varint seek Z in the old
// image"; X, Y, Z is bsdiff's control triple (x, y, z) with varints, so Z
// is read as bsdiff reads z: it moves the old position AFTER the record's
// X diff bytes have been consumed (the extra bytes do not move it). The
// first record's diff starts at old offset 0; each later record's diff
// starts where the previous record's seek left the old position. This is
// op.Seek of match.go. A new image that starts from a match elsewhere in
// the old image therefore begins with a record X = 0, Y = 0, Z = start.
//
// Frame sizes. The writer keeps every compressed frame within the
// uncompressed frame size too (as Pelion's tool does with LZ4's
// destSize mode): a frame that LZ4 cannot bring under that bound carries
// fewer input bytes, so a device needs two frame-sized buffers. The
// header's maximum compressed frame size is the largest compressed frame
// actually written (0 when none is). A frame may therefore hold fewer
// bytes than the frame size; the applier accepts any frame that decodes to
// 1..min(frame size, bytes left in the run) bytes and checks every frame's
// compressed length against the header's maximum.

const (
	// PelionHeaderSize is the size of a Pelion patch header.
	PelionHeaderSize = 40
	// PelionFrameSize is the default maximum uncompressed frame size.
	PelionFrameSize = 512
	// PelionMinFrameSize is the smallest frame size CreatePelion writes: a
	// frame of that size always has room for a literal LZ4 block of data.
	PelionMinFrameSize = 64
	// PelionMaxFrame is the largest uncompressed frame size CreatePelion
	// writes and, by default, a PelionApplier accepts.
	PelionMaxFrame = 64 << 10

	pelionMaxVarint = 10 // a uint64 in 7-bit groups
	pelionOldChunk  = 64 // bytes of the old image read at a time
)

var pelionMagic = [16]byte{'P', 'E', 'L', 'I', 'O', 'N', '/', 'B', 'S', 'D', 'I', 'F', 'F', '0', '0', '1'}

// PelionHeader is the part of a Pelion patch header after the magic.
type PelionHeader struct {
	NewSize       int64 // bytes of the new image
	FrameSize     int64 // maximum uncompressed bytes in a frame
	MaxCompressed int64 // maximum compressed bytes in a frame
}

// Marshal encodes h into PelionHeaderSize bytes.
func (h PelionHeader) Marshal() []byte {
	b := make([]byte, PelionHeaderSize)
	copy(b, pelionMagic[:])
	putSignMagnitude(b[16:], h.NewSize)
	putSignMagnitude(b[24:], h.FrameSize)
	putSignMagnitude(b[32:], h.MaxCompressed)
	return b
}

// ParsePelionHeader decodes the first PelionHeaderSize bytes of b. It
// checks the magic and that no size is negative; what sizes an applier
// accepts is the applier's to decide.
func ParsePelionHeader(b []byte) (PelionHeader, error) {
	if len(b) < PelionHeaderSize {
		return PelionHeader{}, fmt.Errorf("%w: pelion header needs %d bytes, got %d", ErrHeader, PelionHeaderSize, len(b))
	}
	if !bytes.Equal(b[:16], pelionMagic[:]) {
		return PelionHeader{}, fmt.Errorf("%w: no PELION/BSDIFF001 magic", ErrNotPatch)
	}
	var h PelionHeader
	for i, f := range []*int64{&h.NewSize, &h.FrameSize, &h.MaxCompressed} {
		v, neg := signMagnitude(b[16+8*i:])
		if neg {
			return PelionHeader{}, fmt.Errorf("%w: pelion header size %d is negative", ErrHeader, i)
		}
		*f = v
	}
	return h, nil
}

// putSignMagnitude writes v as 8 bytes: |v| little-endian, the sign in bit
// 7 of the last byte. v must not be math.MinInt64.
func putSignMagnitude(b []byte, v int64) {
	m := uint64(v)
	if v < 0 {
		m = uint64(-v) | 1<<63
	}
	binary.LittleEndian.PutUint64(b, m)
}

// signMagnitude reads 8 sign-magnitude bytes; a set sign bit (even on a
// zero magnitude) reports neg.
func signMagnitude(b []byte) (v int64, neg bool) {
	m := binary.LittleEndian.Uint64(b)
	v = int64(m &^ (1 << 63))
	if m>>63 != 0 {
		return -v, true
	}
	return v, false
}

// appendSignedVarint appends z as the uvarint of (|z| << 1) | sign.
// |z| must be below 1<<63.
func appendSignedVarint(b []byte, z int64) []byte {
	if z < 0 {
		return binary.AppendUvarint(b, uint64(-z)<<1|1)
	}
	return binary.AppendUvarint(b, uint64(z)<<1)
}

// signedFromVarint undoes appendSignedVarint's mapping.
func signedFromVarint(v uint64) int64 {
	m := int64(v >> 1)
	if v&1 != 0 {
		return -m
	}
	return m
}

// CreatePelion makes a PELION/BSDIFF001 patch that turns old into new,
// with frames of at most frameSize uncompressed bytes (0: PelionFrameSize;
// otherwise PelionMinFrameSize..PelionMaxFrame). The matches are match.go's,
// the same as Create's: only the container differs.
func CreatePelion(old, new []byte, frameSize int) ([]byte, error) {
	if frameSize == 0 {
		frameSize = PelionFrameSize
	}
	if frameSize < PelionMinFrameSize || frameSize > PelionMaxFrame {
		return nil, fmt.Errorf("create pelion delta: frame size %d outside %d..%d", frameSize, PelionMinFrameSize, PelionMaxFrame)
	}
	ops := matchOps(old, new, suffixArray(old))
	w := &pelionWriter{
		frameSize: frameSize,
		body:      make([]byte, PelionHeaderSize, PelionHeaderSize+len(new)/4),
		buf:       make([]byte, lz4.CompressBlockBound(frameSize)),
	}
	opBytes(old, new, ops, func(o op, diff, extra []byte) {
		w.body = binary.AppendUvarint(w.body, uint64(o.Diff))
		w.body = binary.AppendUvarint(w.body, uint64(o.Extra))
		w.body = appendSignedVarint(w.body, o.Seek)
		w.frames(diff)
		w.frames(extra)
	})
	h := PelionHeader{NewSize: int64(len(new)), FrameSize: int64(frameSize), MaxCompressed: int64(w.maxCompressed)}
	copy(w.body, h.Marshal())
	return w.body, nil
}

// pelionWriter appends frames to body.
type pelionWriter struct {
	frameSize     int
	body          []byte
	c             lz4.Compressor
	buf           []byte // CompressBlockBound(frameSize) bytes
	maxCompressed int
}

// frames appends data as frames of at most frameSize bytes whose LZ4
// blocks are at most frameSize bytes too.
func (w *pelionWriter) frames(data []byte) {
	for len(data) > 0 {
		n := w.frame(data[:min(len(data), w.frameSize)])
		data = data[n:]
	}
}

// frame appends one frame holding a prefix of src (len(src) <= frameSize)
// and returns the prefix's length. It takes all of src when its LZ4 block,
// or its literal block, fits frameSize; otherwise the longest prefix it
// finds whose block fits, and at least the longest literal block that fits.
func (w *pelionWriter) frame(src []byte) int {
	if k := w.compress(src); k <= w.frameSize {
		w.emitCompressed(k)
		return len(src)
	}
	lo := maxLiteralFit(w.frameSize) // fits as literals; < len(src) here
	best := 0
	for l, h := lo+1, len(src)-1; l <= h; {
		m := l + (h-l)/2
		if w.compress(src[:m]) <= w.frameSize {
			best, l = m, m+1
		} else {
			h = m - 1
		}
	}
	if best == 0 {
		w.emitLiteral(src[:lo])
		return lo
	}
	w.emitCompressed(w.compress(src[:best])) // buf holds the last try: redo
	return best
}

// compress puts the smaller of src's LZ4 block and its literal block in
// buf and returns its length.
func (w *pelionWriter) compress(src []byte) int {
	lit := literalBlockSize(len(src))
	k, err := w.c.CompressBlock(src, w.buf)
	if err != nil || k == 0 || k >= lit {
		// CompressBlock gives 0 for data it cannot shrink: a block of
		// literals is still a valid raw LZ4 block.
		return len(appendLiteralBlock(w.buf[:0], src))
	}
	return k
}

func (w *pelionWriter) emitCompressed(k int) {
	w.body = binary.AppendUvarint(w.body, uint64(k))
	w.body = append(w.body, w.buf[:k]...)
	w.maxCompressed = max(w.maxCompressed, k)
}

func (w *pelionWriter) emitLiteral(src []byte) {
	k := literalBlockSize(len(src))
	w.body = binary.AppendUvarint(w.body, uint64(k))
	w.body = appendLiteralBlock(w.body, src)
	w.maxCompressed = max(w.maxCompressed, k)
}

// appendLiteralBlock appends src as a raw LZ4 block of one sequence with
// only literals (the last sequence of a block has no match): a token whose
// high nibble is the literal length (15: more length bytes follow, each
// added, until one below 255), then the literals.
func appendLiteralBlock(dst, src []byte) []byte {
	n := len(src)
	if n < 15 {
		dst = append(dst, byte(n)<<4)
	} else {
		dst = append(dst, 0xF0)
		r := n - 15
		for ; r >= 255; r -= 255 {
			dst = append(dst, 255)
		}
		dst = append(dst, byte(r))
	}
	return append(dst, src...)
}

// literalBlockSize is len(appendLiteralBlock(nil, make([]byte, n))).
func literalBlockSize(n int) int {
	if n < 15 {
		return 1 + n
	}
	return 1 + (n-15)/255 + 1 + n
}

// maxLiteralFit is the largest n whose literal block fits in budget bytes.
func maxLiteralFit(budget int) int {
	n := budget - 1
	for n > 0 && literalBlockSize(n) > budget {
		n--
	}
	return max(n, 0)
}

type pelionPhase uint8

const (
	pelionHeader    pelionPhase = iota // collecting the header
	pelionDiffLen                      // reading X
	pelionExtraLen                     // reading Y
	pelionSeek                         // reading Z
	pelionFrameLen                     // reading a frame's compressed length
	pelionFrameData                    // collecting a frame's LZ4 block
	pelionDone                         // the new image is complete
)

// PelionApplier rebuilds a new image from an old one and a PELION/BSDIFF001
// patch fed in chunks of any size. It reads the old image with ReadAt,
// writes the new image strictly in order, and holds two frame buffers
// sized from the header (at most maxFrame and LZ4's bound of it) plus a
// few hundred bytes of state: nothing it allocates grows with the sizes a
// patch declares beyond those two buffers.
//
// Every declared size is checked before it is used: a record that would
// read outside the old image or write past the declared new size, a frame
// longer than the declared maximum or decoding to a wrong length, a varint
// over 64 bits, bytes after the image is complete. The first error sticks.
type PelionApplier struct {
	old      io.ReaderAt
	oldSize  int64
	out      io.Writer
	maxFrame int64

	hdrBuf [PelionHeaderSize]byte
	nHdr   int
	hdr    PelionHeader
	phase  pelionPhase
	err    error

	v      uint64 // varint being read
	vBytes int    // its bytes so far

	diffLeft  int64 // diff bytes of the current record still to come
	extraLeft int64 // extra bytes of the current record still to come
	oldPos    int64 // old offset the next diff byte adds to
	seekTo    int64 // old offset after the current record (its diff + Z)
	written   int64 // new bytes written

	frameLen int // compressed length of the current frame
	frameGot int // of which received
	cbuf     []byte
	ubuf     []byte
	oldBuf   [pelionOldChunk]byte
}

// NewPelionApplier applies a Pelion patch to the old image of oldSize
// bytes, writing the new image to out. It refuses patches whose frames
// exceed maxFrame uncompressed bytes (0: PelionMaxFrame).
func NewPelionApplier(old io.ReaderAt, oldSize int64, out io.Writer, maxFrame int) *PelionApplier {
	if maxFrame <= 0 {
		maxFrame = PelionMaxFrame
	}
	return &PelionApplier{old: old, oldSize: oldSize, out: out, maxFrame: int64(maxFrame)}
}

// Header returns the patch header once it has been received and accepted.
func (a *PelionApplier) Header() (PelionHeader, bool) {
	return a.hdr, a.phase > pelionHeader
}

// Written is how many bytes of the new image have been written to out.
func (a *PelionApplier) Written() int64 { return a.written }

// Write feeds the next patch bytes. It returns how many it consumed and the
// first error met, which every later call returns too.
func (a *PelionApplier) Write(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	n := len(p)
	for len(p) > 0 && a.err == nil {
		k, err := a.step(p)
		p = p[k:]
		a.err = err
	}
	return n - len(p), a.err
}

// Close reports whether the patch was complete: the whole new image has
// been written.
func (a *PelionApplier) Close() error {
	switch {
	case a.err != nil:
		return a.err
	case a.phase == pelionHeader:
		return fmt.Errorf("%w: pelion header has %d of %d bytes", ErrIncomplete, a.nHdr, PelionHeaderSize)
	case a.phase != pelionDone:
		return fmt.Errorf("%w: %d of %d new bytes written", ErrIncomplete, a.written, a.hdr.NewSize)
	}
	return nil
}

// step consumes a prefix of p (at least one byte) for the current phase.
func (a *PelionApplier) step(p []byte) (int, error) {
	switch a.phase {
	case pelionHeader:
		k := copy(a.hdrBuf[a.nHdr:], p)
		a.nHdr += k
		if a.nHdr == PelionHeaderSize {
			return k, a.start()
		}
		return k, nil
	case pelionDiffLen, pelionExtraLen, pelionSeek, pelionFrameLen:
		v, done, err := a.varint(p[0])
		if err != nil || !done {
			return 1, err
		}
		return 1, a.field(v)
	case pelionFrameData:
		k := copy(a.cbuf[a.frameGot:a.frameLen], p)
		a.frameGot += k
		if a.frameGot == a.frameLen {
			return k, a.applyFrame()
		}
		return k, nil
	default:
		return 0, fmt.Errorf("%w: pelion patch continues after the %d-byte new image", ErrTrailingData, a.hdr.NewSize)
	}
}

// start checks the header and allocates the two frame buffers.
func (a *PelionApplier) start() error {
	h, err := ParsePelionHeader(a.hdrBuf[:])
	if err != nil {
		return err
	}
	switch {
	case a.oldSize < 0:
		return fmt.Errorf("pelion: old image size %d is negative", a.oldSize)
	case h.FrameSize == 0:
		return fmt.Errorf("%w: pelion frame size 0", ErrHeader)
	case h.FrameSize > a.maxFrame:
		return fmt.Errorf("%w: pelion frames of %d bytes, this applier takes at most %d", ErrRAM, h.FrameSize, a.maxFrame)
	case h.MaxCompressed > int64(lz4.CompressBlockBound(int(h.FrameSize))):
		return fmt.Errorf("%w: pelion compressed frames of %d bytes exceed LZ4's bound %d for %d-byte frames",
			ErrHeader, h.MaxCompressed, lz4.CompressBlockBound(int(h.FrameSize)), h.FrameSize)
	}
	a.hdr = h
	a.cbuf = make([]byte, h.MaxCompressed)
	a.ubuf = make([]byte, h.FrameSize)
	a.phase = pelionDiffLen
	if h.NewSize == 0 {
		a.phase = pelionDone
	}
	return nil
}

// varint adds b to the varint being read.
func (a *PelionApplier) varint(b byte) (v uint64, done bool, err error) {
	if a.vBytes == pelionMaxVarint-1 && b > 1 {
		return 0, false, fmt.Errorf("%w: pelion varint over 64 bits at new offset %d", ErrCorrupt, a.written)
	}
	a.v |= uint64(b&0x7f) << (7 * a.vBytes)
	a.vBytes++
	if b&0x80 != 0 {
		return 0, false, nil
	}
	v, a.v, a.vBytes = a.v, 0, 0
	return v, true, nil
}

// field takes a complete varint for the current phase.
func (a *PelionApplier) field(v uint64) error {
	left := uint64(a.hdr.NewSize - a.written)
	switch a.phase {
	case pelionDiffLen:
		switch {
		case v > left:
			return fmt.Errorf("%w: diff of %d bytes at new offset %d runs past the %d-byte new image", ErrCorrupt, v, a.written, a.hdr.NewSize)
		case v > uint64(a.oldSize-a.oldPos):
			return fmt.Errorf("%w: diff of %d bytes at old offset %d runs past the %d-byte old image", ErrCorrupt, v, a.oldPos, a.oldSize)
		}
		a.diffLeft = int64(v)
		a.phase = pelionExtraLen
	case pelionExtraLen:
		if v > left-uint64(a.diffLeft) {
			return fmt.Errorf("%w: diff %d + extra %d bytes at new offset %d run past the %d-byte new image", ErrCorrupt, a.diffLeft, v, a.written, a.hdr.NewSize)
		}
		a.extraLeft = int64(v)
		a.phase = pelionSeek
	case pelionSeek:
		// Z applies after the diff (see the top of this file); the
		// target must lie within [0, oldSize]. end <= oldSize and |z| <
		// 2^63, so neither comparison overflows.
		z, end := signedFromVarint(v), a.oldPos+a.diffLeft
		if z < -end || z > a.oldSize-end {
			return fmt.Errorf("%w: seek %d from old offset %d leaves the %d-byte old image", ErrCorrupt, z, end, a.oldSize)
		}
		a.seekTo = end + z
		a.nextFrame()
	case pelionFrameLen:
		switch {
		case v == 0:
			return fmt.Errorf("%w: empty pelion frame at new offset %d", ErrCorrupt, a.written)
		case v > uint64(len(a.cbuf)):
			return fmt.Errorf("%w: pelion frame of %d bytes, header declares at most %d", ErrCorrupt, v, len(a.cbuf))
		}
		a.frameLen, a.frameGot = int(v), 0
		a.phase = pelionFrameData
	}
	return nil
}

// nextFrame moves to the record's next frame, or past the record.
func (a *PelionApplier) nextFrame() {
	switch {
	case a.diffLeft > 0 || a.extraLeft > 0:
		a.phase = pelionFrameLen
	case a.written == a.hdr.NewSize:
		a.oldPos = a.seekTo
		a.phase = pelionDone
	default:
		a.oldPos = a.seekTo
		a.phase = pelionDiffLen
	}
}

// applyFrame decodes the frame in cbuf, adds the old bytes to a diff
// frame, and writes it.
func (a *PelionApplier) applyFrame() error {
	left := a.extraLeft
	if a.diffLeft > 0 {
		left = a.diffLeft
	}
	want := int(min(left, int64(len(a.ubuf))))
	n, err := lz4.UncompressBlock(a.cbuf[:a.frameLen], a.ubuf[:want])
	switch {
	case err != nil:
		return fmt.Errorf("%w: pelion frame at new offset %d: %d-byte LZ4 block does not decode into %d bytes: %v", ErrCorrupt, a.written, a.frameLen, want, err)
	case n <= 0 || n > want:
		return fmt.Errorf("%w: pelion frame at new offset %d decodes to %d bytes, want 1..%d", ErrCorrupt, a.written, n, want)
	}
	data := a.ubuf[:n]
	if a.diffLeft > 0 {
		if err := a.addOld(data); err != nil {
			return err
		}
		a.diffLeft -= int64(n)
	} else {
		a.extraLeft -= int64(n)
	}
	k, err := a.out.Write(data)
	if err == nil && k < n {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write new image at %d: %w", a.written, err)
	}
	a.written += int64(n)
	a.nextFrame()
	return nil
}

// addOld adds the old bytes from oldPos to data, mod 256, and moves oldPos
// past them. The record's checks keep them inside the old image.
func (a *PelionApplier) addOld(data []byte) error {
	for len(data) > 0 {
		buf := a.oldBuf[:min(len(data), len(a.oldBuf))]
		k, err := a.old.ReadAt(buf, a.oldPos)
		if k < len(buf) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read old image at %d: %w", a.oldPos, err)
		}
		for i, b := range buf {
			data[i] += b
		}
		data = data[len(buf):]
		a.oldPos += int64(len(buf))
	}
	return nil
}

// ApplyPelion applies a whole PELION/BSDIFF001 patch to old.
func ApplyPelion(old, patch []byte) ([]byte, error) {
	var out bytes.Buffer
	a := NewPelionApplier(bytes.NewReader(old), int64(len(old)), &out, 0)
	if _, err := a.Write(patch); err != nil {
		return nil, err
	}
	if err := a.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// PelionRAM is the working RAM a Pelion applier needs for a patch: its two
// frame buffers, as the header declares them, and about 200 bytes of state
// (the reference's figure for Pelion's client).
func PelionRAM(patch []byte) uint32 {
	h, err := ParsePelionHeader(patch)
	if err != nil {
		return 0
	}
	return uint32(h.FrameSize + h.MaxCompressed + 200)
}

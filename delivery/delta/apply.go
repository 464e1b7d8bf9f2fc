package delta

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
)

type phase uint8

const (
	phaseHeader phase = iota // collecting the header
	phaseInit                // waiting for the coder's first four bytes
	phaseOp                  // next: an operation
	phaseBytes               // next: a byte of the current operation
	phaseDone                // the new image is complete
)

// Applier rebuilds a new image from an old one and a patch fed in chunks
// of any size. It reads the old image with seeks, writes the new one
// strictly in order, never reads it back, and holds at most RAMBound bytes
// of working state. Between two Writes its state can be saved with
// MarshalBinary and restored with Resume.
type Applier struct {
	old     io.ReaderAt
	oldSize int64
	out     io.Writer
	maxRAM  uint32

	hdrBuf   []byte
	hdr      Header
	phase    phase
	received uint32 // body bytes received
	rc       rcDecoder
	m        *models
	ctx      context
	cur      op // what remains of the operation being applied
	// A long zero run: zeros still to write, then (nonzero) whether the
	// next diff byte is known to be non-zero.
	zerosLeft uint32
	nonzero   bool
	oldPos    int64 // next old byte a diff adds to
	carry     []byte
	hash      hash.Hash

	oldBuf    []byte
	oldBufPos int64
	outBuf    []byte

	// Thumb transform: transformed bytes held until their instruction is
	// complete, and how many new-image bytes have been released.
	pend     []byte
	released uint64

	err error // the first error; every later call returns it
}

// NewApplier applies a patch to the old image of oldSize bytes, writing the
// new image to out. It refuses patches that declare more than maxRAM bytes
// of working RAM (0: RAMBound).
func NewApplier(old io.ReaderAt, oldSize int64, out io.Writer, maxRAM uint32) *Applier {
	if maxRAM == 0 {
		maxRAM = RAMBound
	}
	return &Applier{
		old: old, oldSize: oldSize, out: out, maxRAM: maxRAM,
		hdrBuf: make([]byte, 0, HeaderSize),
		carry:  make([]byte, 0, maxUnitInput),
		oldBuf: make([]byte, 0, oldBufRAM),
		outBuf: make([]byte, 0, outBufRAM),
		pend:   make([]byte, 0, 4),
		hash:   sha256.New(),
	}
}

// Header returns the patch header once it has been received.
func (a *Applier) Header() (Header, bool) { return a.hdr, a.phase > phaseHeader }

// Written is how many bytes of the new image have been written to out.
func (a *Applier) Written() uint64 { return a.released }

func (a *Applier) thumb() bool { return a.hdr.Flags&FlagThumb != 0 }

// Received is how many patch bytes the applier has taken, header included:
// after Resume, feed the patch from this offset.
func (a *Applier) Received() int64 { return int64(len(a.hdrBuf)) + int64(a.received) }

// Write feeds the next patch bytes. After an error the applier is
// unusable: every later call returns the same error.
func (a *Applier) Write(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	n, err := a.write(p)
	a.err = err
	return n, err
}

func (a *Applier) write(p []byte) (int, error) {
	n := len(p)
	if a.phase == phaseHeader {
		k := min(HeaderSize-len(a.hdrBuf), len(p))
		a.hdrBuf = append(a.hdrBuf, p[:k]...)
		p = p[k:]
		if len(a.hdrBuf) < HeaderSize {
			return n, nil
		}
		if err := a.start(); err != nil {
			return n, err
		}
	}
	if len(p) == 0 && a.phase != phaseInit {
		return n, nil
	}
	if uint64(a.received)+uint64(len(p)) > uint64(a.hdr.BodySize) {
		return n, fmt.Errorf("%w: more than the %d declared", ErrTrailingData, a.hdr.BodySize)
	}
	a.received += uint32(len(p))
	err := a.decode(p)
	if ferr := a.flush(); err == nil {
		err = ferr
	}
	return n, err
}

// start checks the header and the old image before anything is written.
func (a *Applier) start() error {
	h, err := ParseHeader(a.hdrBuf)
	if err != nil {
		return err
	}
	switch {
	case h.RAMBound > a.maxRAM || h.RAMBound < RAMBound:
		return fmt.Errorf("%w: patch declares %d bytes, this applier needs %d and may use %d", ErrRAM, h.RAMBound, RAMBound, a.maxRAM)
	case int64(h.OldSize) != a.oldSize:
		return fmt.Errorf("%w: old image is %d bytes, patch expects %d", ErrOldImage, a.oldSize, h.OldSize)
	}
	if err := a.checkOld(h.OldHash); err != nil {
		return err
	}
	a.hdr, a.m = h, newModels()
	a.phase = phaseInit
	if h.NewSize == 0 {
		a.phase = phaseDone
	}
	return nil
}

// checkOld hashes the old image through the read cache.
func (a *Applier) checkOld(want [32]byte) error {
	h := sha256.New()
	buf := a.oldBuf[:cap(a.oldBuf)]
	for off := int64(0); off < a.oldSize; {
		k, err := a.old.ReadAt(buf[:min(int64(len(buf)), a.oldSize-off)], off)
		if k == 0 && err != nil {
			return fmt.Errorf("read old image at %d: %w", off, err)
		}
		h.Write(buf[:k])
		off += int64(k)
	}
	if [32]byte(h.Sum(nil)) != want {
		return fmt.Errorf("%w: SHA-256 differs", ErrOldImage)
	}
	return nil
}

// final reports whether every body byte has arrived.
func (a *Applier) final() bool { return a.received == a.hdr.BodySize }

// decode runs units while enough input is there for one, then carries the
// rest (less than one unit) to the next Write.
func (a *Applier) decode(p []byte) error {
	a.rc.in, a.rc.in2 = a.carry, p
	for a.phase != phaseDone {
		need := maxByteInput
		switch a.phase {
		case phaseInit:
			need = 4
		case phaseOp:
			need = maxOpInput
		}
		if a.rc.avail() < need && !a.final() {
			break
		}
		if err := a.unit(); err != nil {
			return err
		}
		// Past the body only in the unit that completes the image.
		if a.rc.over > 0 && (!a.final() || a.phase != phaseDone) || a.rc.over > maxOverread {
			return fmt.Errorf("%w: stream ends inside a symbol", ErrCorrupt)
		}
	}
	// Less than one unit is left (or, when done, the coder's flush bytes).
	var rest [maxUnitInput]byte
	k := copy(rest[:], a.rc.in)
	k += copy(rest[k:], a.rc.in2)
	if a.phase == phaseDone {
		k = 0
	}
	a.carry = append(a.carry[:0], rest[:k]...)
	a.rc.in, a.rc.in2 = nil, nil
	return nil
}

// unit decodes and applies one step.
func (a *Applier) unit() error {
	switch a.phase {
	case phaseInit:
		a.rc.rng = 0xFFFFFFFF
		for i := 0; i < 4; i++ {
			a.rc.code = a.rc.code<<8 | uint32(a.rc.next())
		}
		a.phase = phaseOp
	case phaseOp:
		return a.nextOp()
	case phaseBytes:
		return a.nextByte()
	}
	return nil
}

func (a *Applier) nextOp() error {
	o, ok := a.rc.op(a.m)
	if !ok {
		return fmt.Errorf("%w: bad operation at new offset %d", ErrCorrupt, a.ctx.pos)
	}
	pos := a.oldPos + o.Seek
	switch {
	case o.Diff+o.Extra == 0:
		return fmt.Errorf("%w: empty operation at new offset %d", ErrCorrupt, a.ctx.pos)
	case pos < 0 || pos+int64(o.Diff) > a.oldSize:
		return fmt.Errorf("%w: old range %d+%d outside the %d-byte image", ErrCorrupt, pos, o.Diff, a.oldSize)
	case a.ctx.pos+uint64(o.Diff)+uint64(o.Extra) > uint64(a.hdr.NewSize):
		return fmt.Errorf("%w: operation runs past the %d-byte new image", ErrCorrupt, a.hdr.NewSize)
	}
	a.oldPos, a.cur = pos, o
	a.phase = phaseBytes
	return nil
}

func (a *Applier) nextByte() error {
	if a.cur.Diff > 0 {
		old, err := a.oldByteT(a.oldPos)
		if err != nil {
			return err
		}
		d, err := a.nextDiff()
		if err != nil {
			return err
		}
		b := old + d
		a.ctx.diffDone(d, b)
		a.emit(b)
		a.oldPos++
		a.cur.Diff--
	} else {
		b := a.rc.extraByte(a.m, &a.ctx)
		a.ctx.extraDone(b)
		a.emit(b)
		a.cur.Extra--
	}
	if a.cur.Diff == 0 && a.cur.Extra == 0 {
		a.phase = phaseOp
		if a.ctx.pos == uint64(a.hdr.NewSize) {
			a.phase = phaseDone
			a.releasePending()
		}
	}
	// emit may release up to four bytes at once (Thumb): flush early
	// enough that the buffer never grows.
	if len(a.outBuf) > cap(a.outBuf)-4 {
		return a.flush()
	}
	return nil
}

// nextDiff decodes the next diff byte of the current operation (docs §2.3).
func (a *Applier) nextDiff() (byte, error) {
	if a.zerosLeft == 0 && !a.nonzero && a.ctx.zeroRun == maxZeroRun {
		k, ok := a.rc.uint(&a.m.zeroRun)
		if !ok || k > uint64(a.cur.Diff) {
			return 0, fmt.Errorf("%w: zero run past its operation at new offset %d", ErrCorrupt, a.ctx.pos)
		}
		a.zerosLeft, a.nonzero = uint32(k), k < uint64(a.cur.Diff)
	}
	switch {
	case a.zerosLeft > 0:
		a.zerosLeft--
		return 0, nil
	case a.nonzero:
		a.nonzero = false
		v := a.rc.tree(&a.m.diff[a.ctx.pos&3])
		if v == 255 {
			return 0, fmt.Errorf("%w: diff byte out of range at new offset %d", ErrCorrupt, a.ctx.pos)
		}
		return v + 1, nil
	}
	d, ok := a.rc.diffByte(a.m, &a.ctx)
	if !ok {
		return 0, fmt.Errorf("%w: diff byte out of range at new offset %d", ErrCorrupt, a.ctx.pos)
	}
	return d, nil
}

// oldByte reads the old image through a small cache: diffs walk it forward.
func (a *Applier) oldByte(pos int64) (byte, error) {
	if pos < a.oldBufPos || pos >= a.oldBufPos+int64(len(a.oldBuf)) {
		buf := a.oldBuf[:min(int64(cap(a.oldBuf)), a.oldSize-pos)]
		k, err := a.old.ReadAt(buf, pos)
		if k < len(buf) {
			return 0, fmt.Errorf("read old image at %d: %w", pos, err)
		}
		a.oldBuf, a.oldBufPos = buf, pos
	}
	return a.oldBuf[pos-a.oldBufPos], nil
}

// emit passes a decoded byte on, undoing the Thumb transform when the
// patch uses it: bytes wait in pend until the halfword-aligned 4-byte
// window they start is known to be a branch or not.
func (a *Applier) emit(b byte) {
	if !a.thumb() {
		a.release(b)
		return
	}
	a.pend = append(a.pend, b)
	if len(a.pend) < 4 {
		return
	}
	start := int64(a.released)
	if thumbCandidate(a.pend) {
		thumbDecode(a.pend, start)
		for _, c := range a.pend {
			a.release(c)
		}
		a.pend = a.pend[:0]
		return
	}
	a.release(a.pend[0])
	a.release(a.pend[1])
	a.pend = append(a.pend[:0], a.pend[2:]...)
}

// releasePending writes the last bytes held back: fewer than four cannot
// start a branch.
func (a *Applier) releasePending() {
	for _, c := range a.pend {
		a.release(c)
	}
	a.pend = a.pend[:0]
}

func (a *Applier) release(b byte) {
	a.outBuf = append(a.outBuf, b)
	a.released++
}

// oldByteT reads an old byte as the generator saw it: through the Thumb
// transform when the patch uses it. A byte belongs to at most one branch
// candidate, starting at its halfword or the one before.
func (a *Applier) oldByteT(pos int64) (byte, error) {
	if !a.thumb() {
		return a.oldByte(pos)
	}
	for _, c := range [2]int64{pos &^ 1, pos&^1 - 2} {
		if c < 0 || c+4 > a.oldSize {
			continue
		}
		var w [4]byte
		for i := range w {
			v, err := a.oldByte(c + int64(i))
			if err != nil {
				return 0, err
			}
			w[i] = v
		}
		if thumbCandidate(w[:]) {
			thumbEncode(w[:], c)
			return w[pos-c], nil
		}
	}
	return a.oldByte(pos)
}

func (a *Applier) flush() error {
	if len(a.outBuf) == 0 {
		return nil
	}
	a.hash.Write(a.outBuf)
	_, err := a.out.Write(a.outBuf)
	a.outBuf = a.outBuf[:0]
	if err != nil {
		return fmt.Errorf("write new image: %w", err)
	}
	return nil
}

// Close checks that the patch was complete and the new image is the one
// the patch promised.
func (a *Applier) Close() error {
	if a.err != nil {
		return a.err
	}
	if err := a.flush(); err != nil {
		return err
	}
	if a.phase != phaseDone || !a.final() {
		return fmt.Errorf("%w: %d of %d bytes written", ErrIncomplete, a.ctx.pos, a.hdr.NewSize)
	}
	if [32]byte(a.hash.Sum(nil)) != a.hdr.NewHash {
		return fmt.Errorf("%w: SHA-256 differs", ErrNewImage)
	}
	return nil
}

// Apply is the one-call form: it applies patch to old and returns the new image.
func Apply(old, patch []byte) ([]byte, error) {
	var out bytes.Buffer
	a := NewApplier(bytes.NewReader(old), int64(len(old)), &out, 0)
	if _, err := a.Write(patch); err != nil {
		return nil, err
	}
	if err := a.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

package manifest

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// Verifier checks a package as it streams in, for devices. It buffers the
// envelope header (at most maxEnvelope bytes), verifies it as soon as it is
// complete, and from then on passes payload bytes through while hashing
// them.
//
// A device should check the manifest (class, sequence above the installed
// one, precursor digest and size for a delta) when Manifest first reports
// true, before it writes the payload bytes returned by that same Write.
//
// A Verifier is not safe for concurrent use.
type Verifier struct {
	pub *ecdsa.PublicKey
	max int

	hdr       []byte // envelope header: partial, or complete once verified
	verified  bool
	finished  bool
	m         Manifest
	remaining uint64 // payload bytes still expected
	hash      hash.Hash
	off       int64
	err       error
}

// NewVerifier returns a Verifier that checks the signature with pub and
// buffers at most maxEnvelope bytes of envelope header (e.g. 2048), and
// never more than MaxEnvelope, which every valid package fits;
// maxEnvelope <= 0 means MaxEnvelope.
func NewVerifier(pub *ecdsa.PublicKey, maxEnvelope int) *Verifier {
	if maxEnvelope <= 0 {
		maxEnvelope = MaxEnvelope
	}
	return &Verifier{pub: pub, max: maxEnvelope}
}

func (v *Verifier) fail(err error) error {
	v.err = fmt.Errorf("verify package at byte %d: %w", v.off, err)
	return v.err
}

// Write consumes the next package bytes and returns the part of b that is
// verified-manifest payload (a sub-slice of b, no copy); nothing is
// returned as payload before the envelope's signature has been verified.
// Errors are sticky; a Write that fails returns no payload.
func (v *Verifier) Write(b []byte) (payload []byte, err error) {
	if v.err != nil {
		return nil, v.err
	}
	if len(b) == 0 {
		return nil, nil
	}
	if !v.verified {
		// No valid header is longer than MaxEnvelope, whatever v.max allows.
		before := len(v.hdr)
		k := min(len(b), min(v.max, MaxEnvelope)-before)
		v.hdr = append(v.hdr, b[:k]...)
		l, complete, err := scanHeader(v.hdr, v.max)
		if err != nil {
			return nil, v.fail(err)
		}
		if !complete {
			if len(v.hdr) >= min(v.max, MaxEnvelope) {
				return nil, v.fail(fmt.Errorf("%w: envelope header longer than %d bytes", ErrTooLarge, v.max))
			}
			v.off += int64(k)
			return nil, nil
		}
		v.hdr = v.hdr[:l.headerLen:l.headerLen]
		if err := v.accept(l); err != nil {
			return nil, v.fail(err)
		}
		used := l.headerLen - before
		v.off += int64(used)
		b = b[used:]
		if len(b) == 0 {
			return nil, nil
		}
	}
	if uint64(len(b)) > v.remaining {
		return nil, v.fail(malformed("%d bytes after the payload", uint64(len(b))-v.remaining))
	}
	v.hash.Write(b)
	v.remaining -= uint64(len(b))
	v.off += int64(len(b))
	return b, nil
}

// accept verifies the complete header in v.hdr and starts the payload.
func (v *Verifier) accept(l layout) error {
	m, err := verifyHeader(v.hdr, l, v.pub, true)
	if err != nil {
		return err
	}
	v.m, v.verified, v.remaining, v.hash = m, true, m.PayloadSize, sha256.New()
	return nil
}

// Manifest returns the verified manifest; false until the envelope has been
// verified.
func (v *Verifier) Manifest() (Manifest, bool) {
	if !v.verified {
		return Manifest{}, false
	}
	return v.m, true
}

// Offset returns the number of package bytes consumed so far: where a
// download resumes.
func (v *Verifier) Offset() int64 { return v.off }

// Finish is called after the last byte: it checks that the payload is
// complete and that its digest is the manifest's (ErrDigest). Calling it
// again returns the same result.
func (v *Verifier) Finish() error {
	if v.err != nil {
		return v.err
	}
	if v.finished {
		return nil
	}
	if !v.verified {
		return v.fail(fmt.Errorf("%w: envelope cut short: %w", ErrMalformed, io.ErrUnexpectedEOF))
	}
	if err := checkPayload(&v.m, v.m.PayloadSize-v.remaining, Digest(v.hash.Sum(nil))); err != nil {
		return v.fail(err)
	}
	v.finished = true
	return nil
}

// Saved state: little-endian, what a device keeps in flash to resume.
//
//	0   4  magic "FMVS"
//	4   1  version 1
//	5   1  phase: 0 envelope header, 1 payload, 2 finished
//	6   2  n: bytes of envelope header buffered
//	8   n  the envelope header (complete in phases 1 and 2)
//	phase 1 only:
//	    8  payload bytes still expected
//	    1  h: length of the SHA-256 state
//	    h  SHA-256 state (Go's crypto/sha256 MarshalBinary)
//	    4  CRC-32 (IEEE) of all bytes before it
//
// The envelope is verified again, signature included, on restore, so a
// damaged or forged state cannot release unverified payload.
var stateMagic = [4]byte{'F', 'M', 'V', 'S'}

const stateVersion = 1

const (
	phaseHeader = iota
	phasePayload
	phaseFinished
)

// MarshalBinary saves the verifier's state between two Writes. A failed
// verifier cannot be saved.
func (v *Verifier) MarshalBinary() ([]byte, error) {
	if v.err != nil {
		return nil, v.err
	}
	phase := phaseHeader
	switch {
	case v.finished:
		phase = phaseFinished
	case v.verified:
		phase = phasePayload
	}
	b := make([]byte, 0, 8+len(v.hdr)+8+1+128+4)
	b = append(b, stateMagic[:]...)
	b = append(b, stateVersion, byte(phase))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v.hdr)))
	b = append(b, v.hdr...)
	if phase == phasePayload {
		hs, err := v.hash.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("save verifier: hash state: %w", err)
		}
		b = binary.LittleEndian.AppendUint64(b, v.remaining)
		b = append(b, byte(len(hs)))
		b = append(b, hs...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b)), nil
}

// UnmarshalBinary restores a state saved by MarshalBinary into a Verifier
// made by NewVerifier (the public key and maxEnvelope are not part of the
// state); the download continues at Offset. A state it cannot use leaves
// the verifier failed with an error wrapping ErrMalformed (ErrTooLarge for
// a header beyond maxEnvelope, ErrSignature when the saved envelope does
// not verify with this key).
func (v *Verifier) UnmarshalBinary(data []byte) error {
	*v = Verifier{pub: v.pub, max: v.max}
	if err := v.restore(data); err != nil {
		*v = Verifier{pub: v.pub, max: v.max}
		v.err = fmt.Errorf("restore verifier: %w", err)
		return v.err
	}
	return nil
}

func (v *Verifier) restore(data []byte) error {
	if len(data) < 12 || [4]byte(data[:4]) != stateMagic {
		return malformed("not a saved verifier state")
	}
	body := data[:len(data)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return malformed("saved state CRC mismatch")
	}
	if body[4] != stateVersion {
		return malformed("saved state version %d", body[4])
	}
	phase := int(body[5])
	n := int(binary.LittleEndian.Uint16(body[6:8]))
	rest := body[8:]
	if n > len(rest) {
		return malformed("saved state cut short")
	}
	if n > v.max {
		return fmt.Errorf("%w: saved envelope header of %d bytes, more than %d", ErrTooLarge, n, v.max)
	}
	v.hdr, rest = append([]byte(nil), rest[:n]...), rest[n:]
	l, complete, err := scanHeader(v.hdr, v.max)
	if err != nil {
		return err
	}
	switch phase {
	case phaseHeader:
		if complete || len(rest) != 0 {
			return malformed("saved header phase with a complete envelope")
		}
		v.off = int64(n)
		return nil
	case phasePayload, phaseFinished:
	default:
		return malformed("saved state phase %d", phase)
	}
	if !complete || l.headerLen != n {
		return malformed("saved envelope header incomplete")
	}
	if err := v.accept(l); err != nil {
		return err
	}
	if phase == phaseFinished {
		if len(rest) != 0 {
			return malformed("saved state has %d extra bytes", len(rest))
		}
		v.remaining, v.finished = 0, true
		v.off = int64(n) + int64(v.m.PayloadSize)
		return nil
	}
	if len(rest) < 9 || len(rest) != 9+int(rest[8]) {
		return malformed("saved payload state has the wrong length")
	}
	v.remaining = binary.LittleEndian.Uint64(rest)
	if v.remaining > v.m.PayloadSize {
		return malformed("saved state expects %d payload bytes of %d", v.remaining, v.m.PayloadSize)
	}
	if err := v.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(rest[9:]); err != nil {
		return malformed("saved hash state: %v", err)
	}
	v.off = int64(n) + int64(v.m.PayloadSize-v.remaining)
	return nil
}

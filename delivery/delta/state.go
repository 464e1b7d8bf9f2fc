package delta

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Saved applier state: what a device writes to flash to resume after a
// power loss. Little-endian; docs/delta-format.md lists the fields.
var stateMagic = [4]byte{'F', 'D', 'A', 'S'}

// ErrState is returned by Resume for a state it cannot use.
var ErrState = errors.New("bad saved applier state")

// MarshalBinary saves the applier's state between two Writes. The new
// image must keep the Written bytes already written; the patch resumes at
// offset Received.
func (a *Applier) MarshalBinary() ([]byte, error) {
	if err := a.flush(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(stateMagic[:])
	b.WriteByte(Version)
	b.WriteByte(byte(a.phase))
	b.WriteByte(byte(len(a.hdrBuf)))
	b.Write(a.hdrBuf)
	put := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	put(a.received)
	put(a.rc.rng)
	put(a.rc.code)
	put(uint8(a.ctx.zeroRun))
	put(a.ctx.prev)
	put(a.ctx.pos)
	put(a.oldPos)
	put(int64(a.cur.Diff))
	put(int64(a.cur.Extra))
	put(a.zerosLeft)
	put(a.nonzero)
	b.WriteByte(byte(len(a.carry)))
	b.Write(a.carry)
	put(a.released)
	b.WriteByte(byte(len(a.pend)))
	b.Write(a.pend)
	if a.m != nil {
		a.m.each(func(p *prob) { put(uint16(*p)) })
	}
	hs, err := a.hash.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("save hash state: %w", err)
	}
	b.WriteByte(byte(len(hs)))
	b.Write(hs)
	return b.Bytes(), nil
}

// Resume restores an applier saved by MarshalBinary. out must continue
// after the Written bytes of the new image.
func Resume(state []byte, old io.ReaderAt, oldSize int64, out io.Writer, maxRAM uint32) (*Applier, error) {
	a := NewApplier(old, oldSize, out, maxRAM)
	r := bytes.NewReader(state)
	if err := a.restore(r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrState, r.Len())
	}
	return a, nil
}

func (a *Applier) restore(r *bytes.Reader) error {
	var head [7]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return err
	}
	if [4]byte(head[:4]) != stateMagic || head[4] != Version || head[5] > byte(phaseDone) || head[6] > HeaderSize {
		return errors.New("not an applier state of this version")
	}
	a.phase = phase(head[5])
	a.hdrBuf = a.hdrBuf[:head[6]]
	if _, err := io.ReadFull(r, a.hdrBuf); err != nil {
		return err
	}
	if a.phase > phaseHeader {
		h, err := ParseHeader(a.hdrBuf)
		if err != nil {
			return err
		}
		if h.RAMBound > a.maxRAM || int64(h.OldSize) != a.oldSize {
			return errors.New("state is for another old image or a larger RAM bound")
		}
		a.hdr, a.m = h, newModels()
	}
	var zeroRun uint8
	var diff, extra int64
	get := func(v any) error { return binary.Read(r, binary.LittleEndian, v) }
	for _, v := range []any{&a.received, &a.rc.rng, &a.rc.code, &zeroRun, &a.ctx.prev, &a.ctx.pos, &a.oldPos, &diff, &extra, &a.zerosLeft, &a.nonzero} {
		if err := get(v); err != nil {
			return err
		}
	}
	if err := a.restoreRest(r, zeroRun, diff, extra); err != nil {
		return err
	}
	return a.restoreModels(r)
}

func (a *Applier) restoreRest(r *bytes.Reader, zeroRun uint8, diff, extra int64) error {
	if zeroRun > maxZeroRun || diff < 0 || extra < 0 || a.received > a.hdr.BodySize ||
		int64(a.zerosLeft) > diff || a.nonzero && int64(a.zerosLeft) >= diff ||
		a.ctx.pos+uint64(diff)+uint64(extra) > uint64(a.hdr.NewSize) ||
		a.oldPos < 0 || a.oldPos+diff > a.oldSize {
		return errors.New("state out of range")
	}
	a.ctx.zeroRun, a.cur = int(zeroRun), op{Diff: int(diff), Extra: int(extra)}
	n, err := r.ReadByte()
	if err != nil || int(n) > maxUnitInput {
		return errors.New("bad carried input")
	}
	a.carry = a.carry[:n]
	if _, err := io.ReadFull(r, a.carry); err != nil {
		return err
	}
	if err := binary.Read(r, binary.LittleEndian, &a.released); err != nil {
		return err
	}
	if n, err = r.ReadByte(); err != nil || n > 3 || a.released+uint64(n) != a.ctx.pos {
		return errors.New("bad held-back bytes")
	}
	a.pend = a.pend[:n]
	_, err = io.ReadFull(r, a.pend)
	return err
}

func (a *Applier) restoreModels(r *bytes.Reader) error {
	if a.m != nil {
		var err error
		a.m.each(func(p *prob) {
			var v uint16
			if err == nil {
				err = binary.Read(r, binary.LittleEndian, &v)
			}
			if v == 0 || v >= probOne {
				v = probInit // never reached by adaptation; refuse to divide by a dead model
				if err == nil {
					err = errors.New("probability out of range")
				}
			}
			*p = prob(v)
		})
		if err != nil {
			return err
		}
	}
	n, err := r.ReadByte()
	if err != nil {
		return err
	}
	hs := make([]byte, n)
	if _, err := io.ReadFull(r, hs); err != nil {
		return err
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(hs); err != nil {
		return err
	}
	a.hash = h
	return nil
}

package delta

import (
	"crypto/sha256"
	"fmt"
	"math"
)

// Options select generator features.
type Options struct {
	// Thumb applies the ARM Thumb-2 branch transform (thumb.go) to both
	// images before diffing: smaller patches for Cortex-M code that moved.
	Thumb bool
}

// Create makes a patch that turns old into new.
func Create(old, new []byte) ([]byte, error) { return CreateWith(old, new, Options{}) }

// CreateWith makes a patch with the given options.
func CreateWith(old, new []byte, opts Options) ([]byte, error) {
	if int64(len(old)) > math.MaxUint32 || int64(len(new)) > math.MaxUint32 {
		return nil, fmt.Errorf("create delta: images over 4 GiB")
	}
	o, n := old, new
	var flags uint8
	if opts.Thumb {
		o, n, flags = thumbForward(old), thumbForward(new), FlagThumb
	}
	ops := matchOps(o, n, suffixArray(o))
	body := encodeOps(o, n, ops)
	h := Header{
		Flags:    flags,
		OldSize:  uint32(len(old)),
		NewSize:  uint32(len(new)),
		BodySize: uint32(len(body)),
		RAMBound: RAMBound,
		OldHash:  sha256.Sum256(old),
		NewHash:  sha256.Sum256(new),
	}
	return append(h.Marshal(), body...), nil
}

// encodeOps codes the operations and their bytes as one stream.
//
// The stream's operations seek first (bsdiff's seek after): the first one
// can then start anywhere in the old image, and an operation that would
// produce no bytes folds into the next one's seek, so every coded
// operation makes progress and the applier can refuse any that does not.
func encodeOps(old, new []byte, ops []op) []byte {
	if len(new) == 0 {
		return nil
	}
	e := newEncoder()
	m := newModels()
	var c context
	var seek int64
	opBytes(old, new, ops, func(o op, diff, extra []byte) {
		if o.Diff+o.Extra == 0 {
			seek += o.Seek
			return
		}
		e.op(m, op{Seek: seek, Diff: o.Diff, Extra: o.Extra})
		seek = o.Seek
		e.diffRun(m, &c, diff, new[c.pos:])
		for _, b := range extra {
			e.extraByte(m, &c, b)
		}
	})
	return e.finish()
}

// diffRun codes the diff bytes of one operation; newBytes starts at the
// first new byte they make.
func (e *rcEncoder) diffRun(m *models, c *context, diff, newBytes []byte) {
	for i := 0; i < len(diff); {
		if c.zeroRun < maxZeroRun {
			e.diffByte(m, c, diff[i], newBytes[i])
			i++
			continue
		}
		k := 0
		for i+k < len(diff) && diff[i+k] == 0 {
			k++
		}
		e.uint(&m.zeroRun, uint64(k))
		for j := 0; j < k; j++ {
			c.diffDone(0, newBytes[i+j])
		}
		if i += k; i < len(diff) {
			e.tree(&m.diff[c.pos&3], diff[i]-1)
			c.diffDone(diff[i], newBytes[i])
			i++
		}
	}
}

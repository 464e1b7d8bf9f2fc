package delta

import "math/bits"

// models are the adaptive probabilities of the patch stream. Their size is
// most of the applier's RAM: 3,345 probabilities, 6,690 bytes.
//
// Contexts, chosen by measurement on Cortex-M images:
//   - a diff byte is first coded as zero or not, in the context of how many
//     zero diff bytes preceded it (capped at 15): unchanged code comes in
//     long runs, relocated addresses in short bursts. Once 15 zeros have
//     gone by, the rest of the run is coded as one integer: a bit per byte,
//     however likely, costs at least 0.022 bits (the probabilities are
//     11-bit), 5.7 KB over a 2 MB image that barely changed;
//   - a non-zero diff byte is coded bit by bit in one of four trees chosen
//     by its position modulo 4, since address constants and Thumb-2
//     instructions change at fixed offsets within a word;
//   - a literal (extra) byte is coded in one of eight trees chosen by its
//     position modulo 2 and the top two bits of the byte before it.
type models struct {
	zero     [16]prob
	zeroRun  intModel // length of a zero run that reached 15 bytes
	diff     [4][256]prob
	extra    [8][256]prob
	diffLen  intModel
	extraLen intModel
	seekLen  intModel
	seekSign prob
}

// intModel codes an unsigned integer as its bit length (a 6-bit tree) and
// then its bits below the leading one at probability 1/2.
type intModel [64]prob

// maxIntBits bounds the integers in a patch: sizes and seeks fit in 33 bits.
const maxIntBits = 40

func newModels() *models {
	m := &models{}
	m.each(func(p *prob) { *p = probInit })
	return m
}

// each visits every probability in a fixed order (also the order in which
// saved applier state stores them).
func (m *models) each(f func(*prob)) {
	for i := range m.zero {
		f(&m.zero[i])
	}
	for i := range m.zeroRun {
		f(&m.zeroRun[i])
	}
	for i := range m.diff {
		for j := range m.diff[i] {
			f(&m.diff[i][j])
		}
	}
	for i := range m.extra {
		for j := range m.extra[i] {
			f(&m.extra[i][j])
		}
	}
	for _, im := range []*intModel{&m.diffLen, &m.extraLen, &m.seekLen} {
		for i := range im {
			f(&im[i])
		}
	}
	f(&m.seekSign)
}

// maxZeroRun is where zero runs switch from a bit per byte to one integer.
const maxZeroRun = 15

// context is what both sides know when they code the next byte.
type context struct {
	zeroRun int  // zero diff bytes just coded, capped at 15
	prev    byte // the last byte of the new image
	pos     uint64
}

func (c *context) diffDone(d, newByte byte) {
	if d == 0 {
		if c.zeroRun < maxZeroRun {
			c.zeroRun++
		}
	} else {
		c.zeroRun = 0
	}
	c.prev = newByte
	c.pos++
}

func (c *context) extraDone(b byte) {
	c.prev = b
	c.pos++
}

func (c *context) extraTree(m *models) *[256]prob {
	return &m.extra[int(c.pos&1)<<2|int(c.prev>>6)]
}

// Encoding.

func (e *rcEncoder) tree(p *[256]prob, v byte) {
	m := uint32(1)
	for i := 7; i >= 0; i-- {
		b := uint32(v>>uint(i)) & 1
		e.bit(&p[m], b)
		m = m<<1 | b
	}
}

func (e *rcEncoder) uint(im *intModel, v uint64) {
	n := bits.Len64(v)
	m := uint32(1)
	for i := 5; i >= 0; i-- {
		b := uint32(n>>uint(i)) & 1
		e.bit(&im[m], b)
		m = m<<1 | b
	}
	if n > 1 {
		e.direct(v, n-1)
	}
}

func (e *rcEncoder) diffByte(m *models, c *context, d, newByte byte) {
	if d == 0 {
		e.bit(&m.zero[c.zeroRun], 0)
	} else {
		e.bit(&m.zero[c.zeroRun], 1)
		e.tree(&m.diff[c.pos&3], d-1)
	}
	c.diffDone(d, newByte)
}

func (e *rcEncoder) extraByte(m *models, c *context, b byte) {
	e.tree(c.extraTree(m), b)
	c.extraDone(b)
}

// op codes one operation: seek, then diff and extra lengths.
func (e *rcEncoder) op(m *models, o op) {
	s := o.Seek
	if s < 0 {
		e.bit(&m.seekSign, 1)
		s = -s
	} else {
		e.bit(&m.seekSign, 0)
	}
	e.uint(&m.seekLen, uint64(s))
	e.uint(&m.diffLen, uint64(o.Diff))
	e.uint(&m.extraLen, uint64(o.Extra))
}

// Decoding mirrors encoding.

func (d *rcDecoder) tree(p *[256]prob) byte {
	m := uint32(1)
	for i := 0; i < 8; i++ {
		m = m<<1 | d.bit(&p[m])
	}
	return byte(m)
}

func (d *rcDecoder) uint(im *intModel) (uint64, bool) {
	m := uint32(1)
	for i := 0; i < 6; i++ {
		m = m<<1 | d.bit(&im[m])
	}
	n := int(m & 63)
	if n > maxIntBits {
		return 0, false
	}
	if n <= 1 {
		return uint64(n), true
	}
	return 1<<uint(n-1) | d.direct(n-1), true
}

// diffByte decodes a diff byte; false for the tree value 255, which would
// stand for 256.
func (d *rcDecoder) diffByte(m *models, c *context) (byte, bool) {
	if d.bit(&m.zero[c.zeroRun]) == 0 {
		return 0, true
	}
	v := d.tree(&m.diff[c.pos&3])
	return v + 1, v != 255
}

func (d *rcDecoder) extraByte(m *models, c *context) byte {
	return d.tree(c.extraTree(m))
}

func (d *rcDecoder) op(m *models) (op, bool) {
	neg := d.bit(&m.seekSign) == 1
	seek, ok3 := d.uint(&m.seekLen)
	diff, ok1 := d.uint(&m.diffLen)
	extra, ok2 := d.uint(&m.extraLen)
	if !ok1 || !ok2 || !ok3 || diff > 1<<32 || extra > 1<<32 || seek > 1<<32 {
		return op{}, false
	}
	s := int64(seek)
	if neg {
		s = -s
	}
	return op{Diff: int(diff), Extra: int(extra), Seek: s}, true
}

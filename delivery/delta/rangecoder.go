package delta

// The range coder is LZMA's binary adaptive coder: 32-bit range, 11-bit
// probabilities adapted by a shift of 5. It is small (a few dozen lines in
// C), exact in integer arithmetic, and codes a near-certain bit (a zero in
// a run of unchanged bytes) in a small fraction of a bit, which is where a
// firmware patch's size is won.
const (
	probBits  = 11
	probOne   = 1 << probBits
	probInit  = probOne / 2
	moveBits  = 5
	topValue  = 1 << 24
	flushSize = 4 // bytes the encoder flushes after the last symbol
)

// prob is the probability, in 1/2048ths, that the next bit is 0.
type prob uint16

type rcEncoder struct {
	low       uint64
	rng       uint32
	cache     byte
	cacheSize int64
	started   bool
	out       []byte
}

func newEncoder() *rcEncoder { return &rcEncoder{rng: 0xFFFFFFFF, cacheSize: 1} }

func (e *rcEncoder) bit(p *prob, b uint32) {
	bound := (e.rng >> probBits) * uint32(*p)
	if b == 0 {
		e.rng = bound
		*p += (probOne - *p) >> moveBits
	} else {
		e.low += uint64(bound)
		e.rng -= bound
		*p -= *p >> moveBits
	}
	for e.rng < topValue {
		e.rng <<= 8
		e.shiftLow()
	}
}

// direct codes the low n bits of v, most significant first, at probability 1/2.
func (e *rcEncoder) direct(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		e.rng >>= 1
		if (v>>uint(i))&1 != 0 {
			e.low += uint64(e.rng)
		}
		for e.rng < topValue {
			e.rng <<= 8
			e.shiftLow()
		}
	}
}

// shiftLow moves the top byte of low out, resolving carries (LZMA's
// cache/cacheSize scheme). The first byte LZMA emits is always zero; it
// is not written.
func (e *rcEncoder) shiftLow() {
	if uint32(e.low) < 0xFF000000 || e.low>>32 != 0 {
		carry := byte(e.low >> 32)
		temp := e.cache
		for {
			if e.started {
				e.out = append(e.out, temp+carry)
			}
			e.started = true
			temp = 0xFF
			e.cacheSize--
			if e.cacheSize == 0 {
				break
			}
		}
		e.cache = byte(e.low >> 24)
	}
	e.cacheSize++
	e.low = (e.low & 0x00FFFFFF) << 8
}

func (e *rcEncoder) finish() []byte {
	for i := 0; i < flushSize+1; i++ {
		e.shiftLow()
	}
	return e.out
}

// rcDecoder decodes from an input window the applier refills. Its whole
// state is rng and code (and the caller's models).
type rcDecoder struct {
	rng  uint32
	code uint32
	// in and in2 are the unread input: bytes carried over from the last
	// chunk, then the current chunk.
	in, in2 []byte
	// over counts reads past the end of the input. Past the end of the
	// stream a few are normal (the last normalisation reads beyond the
	// encoder's flush); anywhere else the unit must not be decoded yet.
	over int
}

func (d *rcDecoder) avail() int { return len(d.in) + len(d.in2) }

func (d *rcDecoder) next() byte {
	if len(d.in) > 0 {
		b := d.in[0]
		d.in = d.in[1:]
		return b
	}
	if len(d.in2) > 0 {
		b := d.in2[0]
		d.in2 = d.in2[1:]
		return b
	}
	d.over++
	return 0
}

// Most input one unit can consume: a bit reads at most two bytes, a direct
// bit one. A byte is 9 bits, or a zero-run integer and 8 bits; an operation
// is a sign and three integers of a 6-bit length and up to 39 direct bits.
const (
	maxIntInput  = 6*2 + 39
	maxByteInput = maxIntInput + 8*2
	maxOpInput   = 2 + 3*(6*2+39)
	maxUnitInput = 160
	maxOverread  = 4
)

func (d *rcDecoder) bit(p *prob) uint32 {
	bound := (d.rng >> probBits) * uint32(*p)
	var b uint32
	if d.code < bound {
		d.rng = bound
		*p += (probOne - *p) >> moveBits
	} else {
		d.code -= bound
		d.rng -= bound
		*p -= *p >> moveBits
		b = 1
	}
	for d.rng < topValue {
		d.rng <<= 8
		d.code = d.code<<8 | uint32(d.next())
	}
	return b
}

func (d *rcDecoder) direct(n int) uint64 {
	var v uint64
	for i := 0; i < n; i++ {
		d.rng >>= 1
		var b uint64
		if d.code >= d.rng {
			d.code -= d.rng
			b = 1
		}
		v = v<<1 | b
		for d.rng < topValue {
			d.rng <<= 8
			d.code = d.code<<8 | uint32(d.next())
		}
	}
	return v
}

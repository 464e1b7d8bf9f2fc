package delta

// The ARM Thumb-2 branch transform. A BL or B.W instruction holds its target
// relative to its own address, so when code moves every call into or out of
// the moved code changes, scattering differences through the image. Before
// diffing, the generator rewrites each such instruction's offset as an
// absolute target (as xz's ARM-Thumb BCJ filter does); moved code then
// diffs as identical bytes. The applier reads the old image through the
// same transform and undoes it on the bytes it writes.
//
// A candidate is a halfword-aligned 4-byte window whose first halfword is
// 11110xxx xxxxxxxx (BL/B.W first half) and whose second is 11x11xxx
// xxxxxxxx with J1 = J2 = 1 (BL: 11111, B.W: 10111), i.e. a branch within
// ±4 MB. Two candidates can never overlap (the second halfword of one
// cannot be the first of another), and the transform changes only offset
// bits, so candidates are found the same way in transformed and original
// bytes, from the four bytes alone: any old byte can be transformed on
// its own, which an applier reading flash with seeks needs.

func thumbCandidate(b []byte) bool {
	return b[1]&0xF8 == 0xF0 && (b[3]&0xF8 == 0xF8 || b[3]&0xF8 == 0xB8)
}

// thumbField reads the 22-bit halfword offset (S:imm10:imm11 with J1 = J2 = 1).
func thumbField(b []byte) uint32 {
	return uint32(b[1]&7)<<19 | uint32(b[0])<<11 | uint32(b[3]&7)<<8 | uint32(b[2])
}

func thumbSetField(b []byte, v uint32) {
	b[1] = b[1]&0xF8 | byte(v>>19)&7
	b[0] = byte(v >> 11)
	b[3] = b[3]&0xF8 | byte(v>>8)&7
	b[2] = byte(v)
}

// thumbEncode makes the branch at image offset pos absolute; thumbDecode
// makes it relative again. The target is relative to pos + 4 (the PC).
func thumbEncode(b []byte, pos int64) {
	thumbSetField(b, (thumbField(b)+uint32((pos+4)>>1))&(1<<22-1))
}

func thumbDecode(b []byte, pos int64) {
	thumbSetField(b, (thumbField(b)-uint32((pos+4)>>1))&(1<<22-1))
}

// thumbForward returns a transformed copy of img.
func thumbForward(img []byte) []byte { return thumbAll(img, thumbEncode) }

// thumbInverse undoes thumbForward on a whole image (the applier undoes it
// byte by byte as it writes; tests use this).
func thumbInverse(img []byte) []byte { return thumbAll(img, thumbDecode) }

// thumbAll applies f to every candidate of a copy of img.
func thumbAll(img []byte, f func(b []byte, pos int64)) []byte {
	out := append([]byte(nil), img...)
	for i := 0; i+4 <= len(out); i += 2 {
		if thumbCandidate(out[i : i+4]) {
			f(out[i:i+4], int64(i))
		}
	}
	return out
}

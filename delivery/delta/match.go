package delta

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
)

// This file is the matching half of bsdiff 4.x (Colin Percival, bsdiff.c):
// the same search, main loop and extensions, with the same variable names,
// but it returns the control triples as ops instead of writing them to
// bzip2 streams. Where it differs from bsdiff.c it says so.

// op is one step of a patch: add the next Diff bytes of the old image
// (starting at the current old position) to the delta bytes, then copy
// Extra new bytes, then move the old position by Seek.
type op struct {
	Diff  int   // bytes of new image = old[oldPos+i] + delta[i]
	Extra int   // bytes of new image taken literally
	Seek  int64 // added to oldPos after the Diff bytes (oldPos += Diff happens first)
}

// matchOps returns the ops that turn old into new; sa is suffixArray(old).
//
// Every Diff run starts at an old position within [0, len(old)] and ends
// within old, the ops cover new exactly, and the last op's Seek is 0 (bsdiff
// writes a meaningless one). An op that would only seek is folded into the
// one before it.
func matchOps(old, new []byte, sa []int32) []op {
	if len(sa) != len(old) {
		panic("delta: suffix array does not match the old image")
	}
	m := &matcher{old: old, new: new, sa: sa}
	var ops []op
	// bsdiff.c: while(scan<newsize) { ... }
	for m.scan < len(new) {
		oldscore := m.findMatch()
		// A new control triple once the match found is not simply the
		// continuation of the previous one, and at the end of new.
		if m.len != oldscore || m.scan == len(new) {
			ops = appendOp(ops, m.emit())
		}
	}
	if len(ops) > 0 {
		ops[len(ops)-1].Seek = 0
	}
	return ops
}

// appendOp adds o to ops, folding an op that only seeks into its
// predecessor: the applier then never sees an empty step.
func appendOp(ops []op, o op) []op {
	if o.Diff == 0 && o.Extra == 0 && len(ops) > 0 {
		ops[len(ops)-1].Seek += o.Seek
		return ops
	}
	return append(ops, o)
}

// matcher is bsdiff.c's main-loop state. new[scan:scan+len] is the current
// exact match, found at old[pos:]. The previous match ended up at
// new[lastscan:], old[lastpos:], and lastoffset is its old-new distance.
type matcher struct {
	old, new []byte
	sa       []int32

	scan, len, pos                int
	lastscan, lastpos, lastoffset int
}

// findMatch is the inner for loop of bsdiff.c's main loop. From the end of
// the current match it tries each position of new until the longest exact
// match there beats what the previous match's alignment (lastoffset) gives
// over the same bytes: oldscore counts those agreeing bytes. It returns
// oldscore; the match is left in scan, len and pos.
//
// It stops when the match is exactly the old alignment again (len ==
// oldscore: nothing new, keep going from its end) or when it gains more
// than 8 bytes over it (len > oldscore+8: worth a new control triple).
func (m *matcher) findMatch() (oldscore int) {
	m.scan += m.len
	scsc := m.scan
	for ; m.scan < len(m.new); m.scan++ {
		m.pos, m.len = longestMatch(m.sa, m.old, m.new[m.scan:])
		for ; scsc < m.scan+m.len; scsc++ {
			if m.agreesWithLast(scsc) {
				oldscore++
			}
		}
		if (m.len == oldscore && m.len != 0) || m.len > oldscore+8 {
			break
		}
		// scan moves on: its byte leaves the window oldscore counts.
		if m.agreesWithLast(m.scan) {
			oldscore--
		}
	}
	return oldscore
}

// agreesWithLast reports whether new[i] equals the old byte at the previous
// match's alignment.
func (m *matcher) agreesWithLast(i int) bool {
	j := i + m.lastoffset
	return j >= 0 && j < len(m.old) && m.old[j] == m.new[i]
}

// emit is the body of bsdiff.c's "if((len!=oldscore) || (scan==newsize))":
// it extends the previous match forwards and the new one backwards as
// approximate matches, splits any overlap between them, and turns the gap
// between them into extra bytes.
func (m *matcher) emit() op {
	lenf := m.extendForward()
	lenb := 0
	if m.scan < len(m.new) {
		lenb = m.extendBackward()
	}
	lenf, lenb = m.resolveOverlap(lenf, lenb)
	o := op{
		Diff:  lenf,
		Extra: (m.scan - lenb) - (m.lastscan + lenf),
		Seek:  int64((m.pos - lenb) - (m.lastpos + lenf)),
	}
	m.lastscan = m.scan - lenb
	m.lastpos = m.pos - lenb
	m.lastoffset = m.pos - m.scan
	return o
}

// extendForward is bsdiff.c's lenf loop: the previous match continues from
// lastscan/lastpos for the length i that maximises 2*agreeing - i, so the
// extension always has more than half of its bytes agreeing. It stops at
// the current match and at the end of old.
func (m *matcher) extendForward() (lenf int) {
	s, sf := 0, 0
	for i := 0; m.lastscan+i < m.scan && m.lastpos+i < len(m.old); {
		if m.old[m.lastpos+i] == m.new[m.lastscan+i] {
			s++
		}
		i++
		if s*2-i > sf*2-lenf {
			sf, lenf = s, i
		}
	}
	return lenf
}

// extendBackward is bsdiff.c's lenb loop: the same rule, growing the current
// match backwards from scan/pos, at most back to lastscan and to old[0].
func (m *matcher) extendBackward() (lenb int) {
	s, sb := 0, 0
	for i := 1; m.scan >= m.lastscan+i && m.pos >= i; i++ {
		if m.old[m.pos-i] == m.new[m.scan-i] {
			s++
		}
		if s*2-i > sb*2-lenb {
			sb, lenb = s, i
		}
	}
	return lenb
}

// resolveOverlap is bsdiff.c's "if(lastscan+lenf>scan-lenb)" block: where
// the two extensions cover the same new bytes, it gives the first lens of
// them to the forward extension and the rest to the backward one, choosing
// lens to maximise the bytes that agree with the side they go to.
func (m *matcher) resolveOverlap(lenf, lenb int) (int, int) {
	overlap := (m.lastscan + lenf) - (m.scan - lenb)
	if overlap <= 0 {
		return lenf, lenb
	}
	s, ss, lens := 0, 0, 0
	for i := 0; i < overlap; i++ {
		if m.new[m.lastscan+lenf-overlap+i] == m.old[m.lastpos+lenf-overlap+i] {
			s++
		}
		if m.new[m.scan-lenb+i] == m.old[m.pos-lenb+i] {
			s--
		}
		if s > ss {
			ss, lens = s, i+1
		}
	}
	return lenf + lens - overlap, lenb - lens
}

// longestMatch is bsdiff.c's search(): a binary search of the suffix array
// for where new would sort, then the longer of the matches with the two
// suffixes left around it. It returns the match's old position and length.
//
// bsdiff.c compares only the first min(oldsize-pos, newsize) bytes and
// treats a suffix that is a proper prefix of new as not smaller; here the
// comparison is exact, so that case cannot steer the search away from a
// longer match. sa has no empty suffix (bsdiff's I[0] = oldsize), so an
// empty old has no match.
func longestMatch(sa []int32, old, new []byte) (pos, n int) {
	if len(sa) == 0 {
		return 0, 0
	}
	st, en := 0, len(sa)-1
	for en-st >= 2 {
		x := st + (en-st)/2
		if bytes.Compare(old[sa[x]:], new) < 0 {
			st = x
		} else {
			en = x
		}
	}
	x := matchLen(old[sa[st]:], new)
	y := matchLen(old[sa[en]:], new)
	if x > y {
		return int(sa[st]), x
	}
	return int(sa[en]), y
}

// matchLen is bsdiff.c's matchlen(): the length of the common prefix of a
// and b, compared eight bytes at a time because matches run to kilobytes.
func matchLen(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for ; i < n && a[i] == b[i]; i++ {
	}
	return i
}

// opBytes walks ops over old and new and calls emit for each op with its
// diff bytes (new - old, mod 256) and its extra bytes. diff is one buffer
// reused across calls and extra aliases new: emit must not keep or modify
// either. ops must be matchOps's for these images.
func opBytes(old, new []byte, ops []op, emit func(o op, diff, extra []byte)) {
	var buf []byte
	oldPos, newPos := 0, 0
	for _, o := range ops {
		buf = slices.Grow(buf[:0], o.Diff)[:o.Diff]
		src, dst := old[oldPos:oldPos+o.Diff], new[newPos:newPos+o.Diff]
		for i := range buf {
			buf[i] = dst[i] - src[i]
		}
		oldPos += o.Diff
		newPos += o.Diff
		emit(o, buf, new[newPos:newPos+o.Extra])
		newPos += o.Extra
		oldPos += int(o.Seek)
	}
}

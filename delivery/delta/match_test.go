package delta

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// opStreams collects opBytes's output into bsdiff's diff and extra streams.
func opStreams(old, new []byte, ops []op) (diff, extra []byte) {
	opBytes(old, new, ops, func(_ op, d, e []byte) {
		diff = append(diff, d...)
		extra = append(extra, e...)
	})
	return diff, extra
}

// refApply is a reference applier: it rebuilds the new image from old, ops
// and the two streams, and fails tb on any op the device would reject.
func refApply(tb testing.TB, old []byte, ops []op, diff, extra []byte) []byte {
	tb.Helper()
	var out []byte
	oldPos := 0
	for k, o := range ops {
		if o.Diff < 0 || o.Extra < 0 {
			tb.Fatalf("op %d %+v: negative length", k, o)
		}
		if oldPos < 0 || oldPos > len(old) || o.Diff > len(old)-oldPos {
			tb.Fatalf("op %d %+v: diff run [%d,%d) outside old (%d bytes)", k, o, oldPos, oldPos+o.Diff, len(old))
		}
		if o.Diff > len(diff) || o.Extra > len(extra) {
			tb.Fatalf("op %d %+v: streams too short", k, o)
		}
		for i, d := range diff[:o.Diff] {
			out = append(out, old[oldPos+i]+d)
		}
		out = append(out, extra[:o.Extra]...)
		diff, extra = diff[o.Diff:], extra[o.Extra:]
		oldPos += o.Diff + int(o.Seek)
	}
	if len(diff) != 0 || len(extra) != 0 {
		tb.Fatalf("%d diff and %d extra bytes left over", len(diff), len(extra))
	}
	return out
}

// opStats summarises a patch: how many literal bytes and non-zero diff
// bytes it carries.
type opStats struct {
	ops, extra, nonZeroDiff int
}

// checkMatch runs matchOps on a pair, checks that the ops rebuild new and
// keep the invariants, and returns their statistics.
func checkMatch(tb testing.TB, old, new []byte) opStats {
	tb.Helper()
	ops := matchOps(old, new, suffixArray(old))
	for k, o := range ops {
		if o.Diff == 0 && o.Extra == 0 && k > 0 {
			tb.Fatalf("op %d %+v only seeks", k, o)
		}
	}
	if len(ops) > 0 && ops[len(ops)-1].Seek != 0 {
		tb.Fatalf("last op %+v seeks", ops[len(ops)-1])
	}
	diff, extra := opStreams(old, new, ops)
	if got := refApply(tb, old, ops, diff, extra); !bytes.Equal(got, new) {
		tb.Fatalf("rebuilt %d bytes, differ from the %d-byte new image", len(got), len(new))
	}
	st := opStats{ops: len(ops), extra: len(extra)}
	for _, d := range diff {
		if d != 0 {
			st.nonZeroDiff++
		}
	}
	return st
}

func TestMatchEdgeCases(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	img := matchRandom(r, 5000)
	low := bytes.Repeat([]byte{0x11, 0x22, 0x33}, 1000) // shares no byte with high
	high := matchRandom(r, 4000)
	for i := range high {
		high[i] |= 0x80
	}
	tests := []struct {
		name     string
		old, new []byte
		want     []op // nil: only check reconstruction
	}{
		{"both empty", nil, nil, []op{}},
		{"empty new", img, nil, []op{}},
		{"empty old", nil, img, []op{{Extra: len(img)}}},
		{"identical", img, img, []op{{Diff: len(img)}}},
		{"one byte identical", []byte{7}, []byte{7}, []op{{Diff: 1}}},
		{"one byte different", []byte{7}, []byte{9}, nil},
		{"disjoint bytes", low, high, []op{{Extra: len(high)}}},
		{"old prefix of new", img[:2000], img, nil},
		{"new prefix of old", img, img[:2000], nil},
		{"new suffix of old", img, img[3000:], nil},
		{"zeros grow", make([]byte, 3000), make([]byte, 5000), nil},
		{"zeros shrink", make([]byte, 5000), make([]byte, 3000), nil},
		{"swap halves", img, append(slices.Clone(img[2500:]), img[:2500]...), nil},
		{"reversed", img, matchReversed(img), nil},
		{"doubled", img, append(slices.Clone(img), img...), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkMatch(t, tt.old, tt.new)
			if tt.want != nil {
				got := matchOps(tt.old, tt.new, suffixArray(tt.old))
				if len(got) != len(tt.want) || (len(got) > 0 && !slices.Equal(got, tt.want)) {
					t.Fatalf("ops %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestMatchRandomPairs(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, alphabet := range []int{1, 2, 4, 256} {
		t.Run(fmt.Sprintf("alphabet%d", alphabet), func(t *testing.T) {
			for range 300 {
				old := saRandomBytes(r, r.IntN(600), alphabet)
				new := saRandomBytes(r, r.IntN(600), alphabet)
				if r.IntN(2) == 0 && len(old) > 0 {
					new = matchMutate(r, old, 1+r.IntN(5))
				}
				checkMatch(t, old, new)
			}
		})
	}
}

func TestMatchMutations(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	img := matchRandom(r, 64<<10)
	tests := []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"byte edits", func(b []byte) []byte { return matchEdit(r, b, 200) }},
		{"insertions", func(b []byte) []byte { return matchRepeat(b, 20, func(b []byte) []byte { return matchInsert(r, b) }) }},
		{"deletions", func(b []byte) []byte { return matchRepeat(b, 20, func(b []byte) []byte { return matchDelete(r, b) }) }},
		{"block moves", func(b []byte) []byte { return matchRepeat(b, 10, func(b []byte) []byte { return matchMove(r, b) }) }},
		{"mixed", func(b []byte) []byte { return matchMutate(r, b, 40) }},
		{"shifted pointers", func(b []byte) []byte { return matchShiftPointers(r, b) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 5 {
				st := checkMatch(t, img, tt.mutate(slices.Clone(img)))
				t.Logf("%d ops, %d extra bytes, %d non-zero diff bytes", st.ops, st.extra, st.nonZeroDiff)
			}
		})
	}
}

func TestMatchRepetitive(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	code := matchRandom(r, 20000)
	padded := append(slices.Clone(code), bytes.Repeat([]byte{0xFF}, 200000)...)
	tests := []struct {
		name     string
		old, new []byte
	}{
		{"zeros", make([]byte, 100000), make([]byte, 120000)},
		{"period 4", saPeriodic("\x00\x20\x00\x40", 100000), saPeriodic("\x00\x20\x00\x40", 90001)},
		{"fibonacci", saFibonacci(50000), saFibonacci(60000)},
		{"padding", padded, matchEdit(r, append(matchInsert(r, code), padded[20000:190000]...), 30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := checkMatch(t, tt.old, tt.new)
			t.Logf("%d ops, %d extra bytes, %d non-zero diff bytes", st.ops, st.extra, st.nonZeroDiff)
		})
	}
}

// TestMatchSmallEdit checks that bsdiff's matching pays off: a few edits to
// a large image cost about their own size.
func TestMatchSmallEdit(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	old := matchRandom(r, 256<<10)
	new := matchEdit(r, slices.Clone(old), 20)
	at := r.IntN(len(new))
	new = slices.Insert(new, at, matchRandom(r, 100)...)
	st := checkMatch(t, old, new)
	t.Logf("%d ops, %d extra bytes, %d non-zero diff bytes", st.ops, st.extra, st.nonZeroDiff)
	if st.extra >= 300 || st.nonZeroDiff >= 100 || st.ops > 10 {
		t.Errorf("%d ops, %d extra bytes, %d non-zero diff bytes: want at most 10, under 300, under 100",
			st.ops, st.extra, st.nonZeroDiff)
	}
}

func TestMatchLen(t *testing.T) {
	a := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	for i := 0; i <= len(a); i++ {
		b := slices.Clone(a)
		if i < len(b) {
			b[i] ^= 1
		}
		if got := matchLen(a, b); got != i {
			t.Errorf("difference at %d: matchLen = %d", i, got)
		}
		if got := matchLen(a[:i], a); got != i {
			t.Errorf("prefix of %d: matchLen = %d", i, got)
		}
	}
}

// TestMatchLongestMatch checks the binary search against a scan of every
// old position.
func TestMatchLongestMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for range 500 {
		old := saRandomBytes(r, r.IntN(300), 1+r.IntN(4))
		new := saRandomBytes(r, r.IntN(40), 1+r.IntN(4))
		if len(old) > 0 && r.IntN(2) == 0 {
			i := r.IntN(len(old))
			new = append(slices.Clone(old[i:min(len(old), i+r.IntN(40))]), new...)
		}
		best := 0
		for p := range old {
			best = max(best, matchLen(old[p:], new))
		}
		pos, n := longestMatch(suffixArray(old), old, new)
		if n != best || matchLen(old[min(pos, len(old)):], new) != n {
			t.Fatalf("old %x new %x: got %d at %d, want %d", old, new, n, pos, best)
		}
	}
}

// BenchmarkMatch measures matching alone on a 1 MB firmware-like pair; the
// suffix array is built once outside the loop.
func BenchmarkMatch(b *testing.B) {
	r := rand.New(rand.NewPCG(33, 34))
	old := matchRandom(r, 1<<20)
	new := matchRepeat(old, 10, func(b []byte) []byte { return matchInsert(r, b) })
	new = matchRepeat(new, 10, func(b []byte) []byte { return matchDelete(r, b) })
	new = matchEdit(r, new, 500)
	sa := suffixArray(old)
	b.SetBytes(int64(len(new)))
	for b.Loop() {
		matchOps(old, new, sa)
	}
}

// Image helpers. They return new slices or edit in place as said; the
// random source is passed in so that every test is reproducible.

func matchRandom(r *rand.Rand, n int) []byte { return saRandomBytes(r, n, 256) }

func matchReversed(b []byte) []byte {
	out := slices.Clone(b)
	slices.Reverse(out)
	return out
}

// matchEdit changes count random bytes of b in place.
func matchEdit(r *rand.Rand, b []byte, count int) []byte {
	for range count {
		if len(b) > 0 {
			b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
		}
	}
	return b
}

func matchInsert(r *rand.Rand, b []byte) []byte {
	return slices.Insert(b, r.IntN(len(b)+1), matchRandom(r, 1+r.IntN(200))...)
}

func matchDelete(r *rand.Rand, b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	i := r.IntN(len(b))
	return slices.Delete(b, i, min(len(b), i+1+r.IntN(200)))
}

// matchMove cuts a block of up to 4 KB and puts it back elsewhere.
func matchMove(r *rand.Rand, b []byte) []byte {
	if len(b) < 2 {
		return b
	}
	i := r.IntN(len(b))
	block := slices.Clone(b[i:min(len(b), i+1+r.IntN(4096))])
	b = slices.Delete(b, i, i+len(block))
	return slices.Insert(b, r.IntN(len(b)+1), block...)
}

func matchRepeat(b []byte, count int, f func([]byte) []byte) []byte {
	for range count {
		b = f(b)
	}
	return b
}

// matchMutate applies count random mutations of every kind to a copy of b.
func matchMutate(r *rand.Rand, b []byte, count int) []byte {
	b = slices.Clone(b)
	for range count {
		switch r.IntN(4) {
		case 0:
			b = matchEdit(r, b, 1)
		case 1:
			b = matchInsert(r, b)
		case 2:
			b = matchDelete(r, b)
		case 3:
			b = matchMove(r, b)
		}
	}
	return b
}

// matchShiftPointers mimics code that moved: a span is inserted and every
// 32-bit word after it that looks like an address into the image (here:
// each 16th word) is shifted by the insertion's length, the scattered
// differences bsdiff's approximate matches are for.
func matchShiftPointers(r *rand.Rand, b []byte) []byte {
	at := r.IntN(len(b)/2) &^ 3
	ins := 4 * (1 + r.IntN(64))
	b = slices.Insert(b, at, matchRandom(r, ins)...)
	for i := at + ins; i+4 <= len(b); i += 64 {
		v := uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
		v += uint32(ins)
		b[i], b[i+1], b[i+2], b[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	return b
}

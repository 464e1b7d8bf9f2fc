package delta

import (
	"bytes"
	"fmt"
	"index/suffixarray"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// naiveSuffixArray sorts the suffixes by comparing them whole.
func naiveSuffixArray(data []byte) []int32 {
	sa := make([]int32, len(data))
	for i := range sa {
		sa[i] = int32(i)
	}
	sort.Slice(sa, func(i, j int) bool { return bytes.Compare(data[sa[i]:], data[sa[j]:]) < 0 })
	return sa
}

// checkSuffixArray verifies sa in linear time: it must be a permutation, and
// each adjacent pair must be ordered by its first byte, or on a tie by the
// ranks of the suffixes one byte on (the empty suffix ranking lowest).
func checkSuffixArray(tb testing.TB, data []byte, sa []int32) {
	tb.Helper()
	n := len(data)
	if len(sa) != n {
		tb.Fatalf("len(sa) = %d, want %d", len(sa), n)
	}
	rank := make([]int32, n+1)
	for i := range rank {
		rank[i] = -1
	}
	for i, p := range sa {
		if p < 0 || int(p) >= n || rank[p] >= 0 {
			tb.Fatalf("sa[%d] = %d: not a permutation", i, p)
		}
		rank[p] = int32(i)
	}
	for i := 0; i+1 < n; i++ {
		a, b := sa[i], sa[i+1]
		if data[a] > data[b] || (data[a] == data[b] && rank[a+1] >= rank[b+1]) {
			tb.Fatalf("suffixes %d and %d (sa[%d], sa[%d]) out of order", a, b, i, i+1)
		}
	}
}

func saRandomBytes(r *rand.Rand, n, alphabet int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(alphabet))
	}
	return b
}

func saFibonacci(n int) []byte {
	a, b := []byte("a"), []byte("ab")
	for len(b) < n {
		a, b = b, append(slices.Clip(b), a...)
	}
	return b[:n]
}

func saPeriodic(pattern string, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = pattern[i%len(pattern)]
	}
	return b
}

func TestSuffixArrayRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, alphabet := range []int{1, 2, 4, 256} {
		t.Run(fmt.Sprintf("alphabet%d", alphabet), func(t *testing.T) {
			lengths := []int{0, 1, 2, 3, 4, 5, 7, 8, 16, 31, 64, 100, 255, 1000, 2000}
			for range 40 {
				lengths = append(lengths, r.IntN(2001))
			}
			for _, n := range lengths {
				data := saRandomBytes(r, n, alphabet)
				if got, want := suffixArray(data), naiveSuffixArray(data); !slices.Equal(got, want) {
					t.Fatalf("n=%d %x: got %v, want %v", n, data, got, want)
				}
			}
		})
	}
}

func TestSuffixArrayExhaustiveSmall(t *testing.T) {
	// Every string over {0,1,2} up to length 8: covers every type pattern
	// and LMS layout small enough to reason about.
	for n := 0; n <= 8; n++ {
		total := 1
		for range n {
			total *= 3
		}
		data := make([]byte, n)
		for v := range total {
			x := v
			for i := range data {
				data[i] = byte(x % 3)
				x /= 3
			}
			if got, want := suffixArray(data), naiveSuffixArray(data); !slices.Equal(got, want) {
				t.Fatalf("%v: got %v, want %v", data, got, want)
			}
		}
	}
}

func TestSuffixArrayRepetitive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	block := saRandomBytes(r, 37, 256)
	tests := []struct {
		name string
		data []byte
	}{
		{"zeros", make([]byte, 2000)},
		{"ab", saPeriodic("ab", 2000)},
		{"ba", saPeriodic("ba", 1999)},
		{"aab", saPeriodic("aab", 2000)},
		{"abcabd", saPeriodic("abcabd", 2000)},
		{"descending", saPeriodic("zyxwvutsrqponmlkjihgfedcba", 2000)},
		{"ascending", saPeriodic("abcdefghijklmnopqrstuvwxyz", 2000)},
		{"fibonacci", saFibonacci(2000)},
		{"fibonacci-odd", saFibonacci(1597)},
		{"random-block", bytes.Repeat(block, 54)},
		{"zeros-then-random", append(make([]byte, 1000), saRandomBytes(r, 1000, 256)...)},
		{"random-then-zeros", append(saRandomBytes(r, 1000, 256), make([]byte, 1000)...)},
		{"runs", bytes.Repeat([]byte("aaaaabbbbbaaaaaaaaab"), 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := suffixArray(tt.data)
			if want := naiveSuffixArray(tt.data); !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			checkSuffixArray(t, tt.data, got)
		})
	}
}

// saMixedImage is random code-like bytes interleaved with runs, repeats and
// saPeriodic stretches, the shapes firmware images have.
func saMixedImage(r *rand.Rand, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		switch r.IntN(5) {
		case 0:
			out = append(out, saRandomBytes(r, 1+r.IntN(4096), 256)...)
		case 1:
			out = append(out, bytes.Repeat([]byte{0xFF}, 1+r.IntN(8192))...)
		case 2:
			if len(out) > 0 {
				start := r.IntN(len(out))
				out = append(out, out[start:start+r.IntN(min(4096, len(out)-start))]...)
			}
		case 3:
			out = append(out, saPeriodic(string(saRandomBytes(r, 1+r.IntN(8), 256)), 1+r.IntN(4096))...)
		case 4:
			out = append(out, saFibonacci(1+r.IntN(3000))...)
		}
	}
	return out[:n]
}

func TestSuffixArrayLarge(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	data := saMixedImage(r, 1<<20)
	sa := suffixArray(data)
	checkSuffixArray(t, data, sa)

	// Cross-check with the standard library's index over the same data: for
	// sampled ranks, the suffixes starting with a bounded prefix form one run
	// of sa holding exactly the positions Lookup reports, and the bounded
	// prefixes of neighbours are in order.
	idx := suffixarray.New(data)
	const prefix = 12
	for range 300 {
		i := r.IntN(len(sa))
		p := data[sa[i]:min(len(data), int(sa[i])+prefix)]
		head := func(r int) []byte { return data[sa[r]:min(len(data), int(sa[r])+len(p))] }
		lo := sort.Search(len(sa), func(r int) bool { return bytes.Compare(head(r), p) >= 0 })
		hi := sort.Search(len(sa), func(r int) bool { return bytes.Compare(head(r), p) > 0 })
		want := idx.Lookup(p, -1)
		if lo > i || i >= hi || len(want) != hi-lo {
			t.Fatalf("prefix %x at rank %d: run [%d,%d), Lookup found %d", p, i, lo, hi, len(want))
		}
		if len(want) <= 1000 {
			got := make([]int, 0, hi-lo)
			for _, q := range sa[lo:hi] {
				got = append(got, int(q))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("prefix %x: positions differ from Lookup", p)
			}
		}
		if i+1 < len(sa) {
			a := data[sa[i]:min(len(data), int(sa[i])+64)]
			b := data[sa[i+1]:min(len(data), int(sa[i+1])+64)]
			if bytes.Compare(a, b) > 0 {
				t.Fatalf("ranks %d, %d: bounded prefixes out of order", i, i+1)
			}
		}
	}
}

func TestSuffixArray16MB(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MB build in -short mode")
	}
	r := rand.New(rand.NewPCG(7, 8))
	data := saMixedImage(r, 16<<20)
	checkSuffixArray(t, data, suffixArray(data))
}

// TestSAISReducedAlphabet drives the int32 level directly with alphabets
// larger than a byte, as the recursion does.
func TestSAISReducedAlphabet(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, k := range []int{1, 3, 300, 5000} {
		for _, n := range []int{0, 1, 2, 10, 500, 3000} {
			text := make([]int32, n)
			for i := range text {
				text[i] = int32(r.IntN(k))
			}
			sa := make([]int32, n)
			sais(text, k, sa, nil)
			want := make([]int32, n)
			for i := range want {
				want[i] = int32(i)
			}
			sort.Slice(want, func(i, j int) bool { return slices.Compare(text[want[i]:], text[want[j]:]) < 0 })
			if !slices.Equal(sa, want) {
				t.Fatalf("k=%d n=%d: got %v, want %v", k, n, sa, want)
			}
		}
	}
}

func BenchmarkSuffixArray(b *testing.B) {
	for _, size := range []int{1 << 20, 2 << 20} {
		data := saMixedImage(rand.New(rand.NewPCG(11, 12)), size)
		b.Run(fmt.Sprintf("%dMB", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				suffixArray(data)
			}
		})
	}
}

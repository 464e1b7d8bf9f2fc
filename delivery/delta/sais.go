package delta

import "math"

// This file builds suffix arrays with SA-IS (Nong, Zhang and Chan, "Two
// Efficient Algorithms for Linear Time Suffix Array Construction", 2009).
// bsdiff used qsufsort, O(n log n); SA-IS is linear, and the standard
// library's index/suffixarray, which also uses SA-IS, does not export its
// array.
//
// Terms, as in the paper. Suffix i is S-type if it is smaller than suffix
// i+1 and L-type if larger. An LMS position is an S-type position whose left
// neighbour is L-type; the LMS substring starting there runs up to and
// including the next LMS position. The string ends in a virtual sentinel,
// smaller than every symbol: it is never stored, so the last position is
// always L-type and the sentinel is the last LMS position.
//
// The algorithm: (1) sort the LMS substrings by induced sorting; (2) name
// them by rank, giving a reduced string of at most n/2 symbols; (3) sort its
// suffixes, recursively unless all names differ; (4) put the LMS suffixes in
// that order at their bucket ends and induce the whole array from them.
//
// Memory: the suffix array itself holds the reduced string, its suffix array
// and the buckets of deeper levels (the layout of Yuta Mori's sais-lite);
// each level adds a bitset of its types and, only when the array has no room
// left, a bucket table.

// symbol is the alphabet of one level: bytes for the image, int32 names for
// the reduced strings.
type symbol interface{ ~byte | ~int32 }

// suffixArray returns the suffix array of data: sa[i] is the start of the
// i-th smallest suffix. The empty suffix is not included.
func suffixArray(data []byte) []int32 {
	if int64(len(data)) > math.MaxInt32 {
		panic("delta: suffix array input over 2 GiB")
	}
	sa := make([]int32, len(data))
	sais(data, 256, sa, make([]int32, 2*256))
	return sa
}

// sais fills sa, of len(text) entries, with the suffix array of text, whose
// symbols are all below k. tmp is spare room for the bucket tables.
func sais[T symbol](text []T, k int, sa, tmp []int32) {
	n := len(text)
	if n == 0 {
		return
	}
	b := newBuckets(text, k, tmp)
	t := classify(text)

	sortLMSSubstrings(text, t, sa, b) // step 1
	n1 := compactLMS(t, sa)
	names := nameLMS(text, t, sa, n1) // step 2

	// Step 3: the reduced string sits at the end of sa, its suffix array is
	// built at the front, and the gap between them is the next level's tmp.
	s1, sa1 := sa[n-n1:], sa[:n1]
	if names < n1 {
		sais(s1, names, sa1, sa[n1:n-n1])
	} else {
		for i, c := range s1 {
			sa1[c] = int32(i)
		}
	}

	placeLMS(text, t, sa, n1, b) // step 4
	induceL(text, sa, b)
	induceS(text, t, sa, b)
}

// typeBits records which positions are S-type, one bit each.
type typeBits []uint64

// classify computes the types right to left: equal neighbours share a type.
func classify[T symbol](text []T) typeBits {
	n := len(text)
	t := make(typeBits, (n+63)/64)
	s := false // the last position is L-type: it is larger than the sentinel
	for i := n - 2; i >= 0; i-- {
		s = text[i] < text[i+1] || (text[i] == text[i+1] && s)
		if s {
			t[i>>6] |= 1 << (i & 63)
		}
	}
	return t
}

func (t typeBits) isS(i int) bool { return t[i>>6]>>(i&63)&1 != 0 }

func (t typeBits) isLMS(i int) bool { return i > 0 && t.isS(i) && !t.isS(i-1) }

// buckets holds, for each symbol, the next free slot of its bucket in the
// suffix array. count caches the symbol counts; it is nil when there was no
// room for it, and then the counts are recomputed from the text.
type buckets[T symbol] struct {
	text  []T
	count []int32
	next  []int32
}

// newBuckets takes its tables from tmp when they fit: at deeper levels tmp is
// the unused middle of the parent's suffix array.
func newBuckets[T symbol](text []T, k int, tmp []int32) *buckets[T] {
	b := &buckets[T]{text: text}
	switch {
	case len(tmp) >= 2*k:
		b.next, b.count = tmp[:k], tmp[k:2*k]
		b.countSymbols(b.count)
	case len(tmp) >= k:
		b.next = tmp[:k]
	default:
		b.next = make([]int32, k)
	}
	return b
}

func (b *buckets[T]) countSymbols(count []int32) {
	clear(count)
	for _, c := range b.text {
		count[c]++
	}
}

// counts leaves the symbol counts in next unless they are cached.
func (b *buckets[T]) counts() []int32 {
	if b.count != nil {
		return b.count
	}
	b.countSymbols(b.next)
	return b.next
}

// starts points every bucket at its first slot (for inducing L-type
// suffixes, which fill buckets from the front).
func (b *buckets[T]) starts() {
	count := b.counts()
	sum := int32(0)
	for c, m := range count {
		b.next[c] = sum
		sum += m
	}
}

// ends points every bucket one past its last slot (for S-type suffixes,
// which fill buckets from the back).
func (b *buckets[T]) ends() {
	count := b.counts()
	sum := int32(0)
	for c, m := range count {
		sum += m
		b.next[c] = sum
	}
}

// sortLMSSubstrings is step 1: LMS positions in any order at their bucket
// ends, then one induced sort orders all suffixes by their prefixes up to
// the next LMS position, and so the LMS substrings among themselves.
func sortLMSSubstrings[T symbol](text []T, t typeBits, sa []int32, b *buckets[T]) {
	for i := range sa {
		sa[i] = -1
	}
	b.ends()
	for i := len(text) - 2; i > 0; i-- {
		if t.isLMS(i) {
			c := text[i]
			b.next[c]--
			sa[b.next[c]] = int32(i)
		}
	}
	induceL(text, sa, b)
	induceS(text, t, sa, b)
}

// induceL fills in the L-type suffixes in order, scanning left to right: an
// L-type suffix p-1 is larger than suffix p, so it is placed once the scan
// meets p and before the scan reaches it.
//
// The scan only meets LMS and L-type suffixes p, and for both, p-1 is L-type
// exactly when text[p-1] >= text[p]: that test replaces a lookup in the type
// bitset, which would be a cache miss.
func induceL[T symbol](text []T, sa []int32, b *buckets[T]) {
	b.starts()
	n := len(text)
	// The sentinel is the smallest suffix; the suffix before it comes first.
	next := b.next
	c := text[n-1]
	sa[next[c]] = int32(n - 1)
	next[c]++
	for i := 0; i < n; i++ {
		j := int(sa[i]) - 1
		if j >= 0 && text[j] >= text[j+1] {
			c := text[j]
			sa[next[c]] = int32(j)
			next[c]++
		}
	}
}

// induceS fills in the S-type suffixes in order, scanning right to left. It
// overwrites the LMS entries its caller placed: they are S-type and are
// placed again, in their final order. Only equal neighbours need the type
// bitset.
func induceS[T symbol](text []T, t typeBits, sa []int32, b *buckets[T]) {
	b.ends()
	next := b.next
	for i := len(text) - 1; i >= 0; i-- {
		j := int(sa[i]) - 1
		if j >= 0 && (text[j] < text[j+1] || (text[j] == text[j+1] && t.isS(j))) {
			c := text[j]
			next[c]--
			sa[next[c]] = int32(j)
		}
	}
}

// compactLMS moves the sorted LMS positions to the front of sa and returns
// how many there are. There are at most n/2: no two are adjacent and
// position 0 is never one.
func compactLMS(t typeBits, sa []int32) int {
	n1 := 0
	for _, p := range sa {
		if t.isLMS(int(p)) {
			sa[n1] = p
			n1++
		}
	}
	return n1
}

// nameLMS is step 2: it gives each LMS substring its rank among the distinct
// ones and writes these names, in text order, to the last n1 entries of sa:
// that is the reduced string. It returns the number of distinct names.
func nameLMS[T symbol](text []T, t typeBits, sa []int32, n1 int) int {
	n := len(text)
	for i := n1; i < n; i++ {
		sa[i] = -1
	}
	// LMS positions are at least two apart, so p/2 gives each its own slot
	// in sa[n1:], in text order.
	name, prev := -1, -1
	for i := 0; i < n1; i++ {
		p := int(sa[i])
		if prev < 0 || !equalLMS(text, t, prev, p) {
			name++
		}
		sa[n1+p/2] = int32(name)
		prev = p
	}
	j := n
	for i := n - 1; i >= n1; i-- {
		if sa[i] >= 0 {
			j--
			sa[j] = sa[i]
		}
	}
	return name + 1
}

// equalLMS reports whether the LMS substrings at p and q are equal: same
// symbols and types up to and including the next LMS position. One that
// reaches the sentinel equals no other, for the sentinel is unique.
func equalLMS[T symbol](text []T, t typeBits, p, q int) bool {
	n := len(text)
	for d := 0; ; d++ {
		if p+d == n || q+d == n {
			return false
		}
		if text[p+d] != text[q+d] || t.isS(p+d) != t.isS(q+d) {
			return false
		}
		if d > 0 && (t.isLMS(p+d) || t.isLMS(q+d)) {
			return t.isLMS(p+d) && t.isLMS(q+d)
		}
	}
}

// placeLMS starts step 4: it turns the reduced suffix array at the front of
// sa into LMS positions and puts them, in that order, at the ends of their
// buckets, with every other entry empty.
func placeLMS[T symbol](text []T, t typeBits, sa []int32, n1 int, b *buckets[T]) {
	n := len(text)
	// The reduced string is no longer needed: its room maps reduced
	// positions to text positions.
	pos := sa[n-n1:]
	j := 0
	for i := 1; i < n; i++ {
		if t.isLMS(i) {
			pos[j] = int32(i)
			j++
		}
	}
	for i := 0; i < n1; i++ {
		sa[i] = pos[sa[i]]
	}
	for i := n1; i < n; i++ {
		sa[i] = -1
	}
	// Largest first, so each lands at or after its own index and the
	// entries still to be moved are not overwritten.
	b.ends()
	for i := n1 - 1; i >= 0; i-- {
		p := sa[i]
		sa[i] = -1
		c := text[p]
		b.next[c]--
		sa[b.next[c]] = p
	}
}

package delta

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// pair is an old and a new image.
type pair struct {
	name     string
	old, new []byte
}

// syntheticPairs are the edge cases and random edits of the corpus.
func syntheticPairs(t testing.TB) []pair {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	base := random(64 << 10)
	return []pair{
		{"empty to empty", nil, nil},
		{"empty old", nil, random(5000)},
		{"empty new", random(5000), nil},
		{"identical", base, base},
		{"entirely new", base, random(64 << 10)},
		{"scattered edits", base, mutate(rng, base, 40)},
		{"insertions and deletions", base, splice(rng, base, 20)},
		{"one byte", []byte{1}, []byte{2}},
	}
}

// mutate changes n random bytes.
func mutate(rng *rand.Rand, b []byte, n int) []byte {
	out := bytes.Clone(b)
	for i := 0; i < n; i++ {
		out[rng.IntN(len(out))] += byte(1 + rng.IntN(255))
	}
	return out
}

// splice inserts and deletes n random spans.
func splice(rng *rand.Rand, b []byte, n int) []byte {
	out := bytes.Clone(b)
	for i := 0; i < n; i++ {
		at := rng.IntN(len(out))
		if rng.IntN(2) == 0 {
			ins := make([]byte, 1+rng.IntN(200))
			for j := range ins {
				ins[j] = byte(rng.Uint32())
			}
			out = append(out[:at], append(ins, out[at:]...)...)
		} else {
			end := min(len(out), at+1+rng.IntN(200))
			out = append(out[:at], out[end:]...)
		}
	}
	return out
}

// firmwarePairs are the corpus images built from testdata/firmware.
func firmwarePairs(t testing.TB) []pair {
	t.Helper()
	var imgs [][]byte
	for v := 1; v <= 4; v++ {
		b, err := os.ReadFile(filepath.Join("testdata", "firmware", fmt.Sprintf("v%d.bin", v)))
		if err != nil {
			t.Skipf("firmware corpus not built: %v", err)
		}
		imgs = append(imgs, b)
	}
	return []pair{
		{"v1-v2 one printf", imgs[0], imgs[1]},
		{"v2-v3 new function", imgs[1], imgs[2]},
		{"v3-v4 refactor", imgs[2], imgs[3]},
		{"v1-v4", imgs[0], imgs[3]},
	}
}

func create(t testing.TB, p pair) []byte {
	t.Helper()
	patch, err := Create(p.old, p.new)
	if err != nil {
		t.Fatal(err)
	}
	return patch
}

func TestRoundTrip(t *testing.T) {
	for _, p := range syntheticPairs(t) {
		t.Run(p.name, func(t *testing.T) {
			patch := create(t, p)
			got, err := Apply(p.old, patch)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, p.new) {
				t.Fatalf("rebuilt %d bytes differ from the %d-byte new image", len(got), len(p.new))
			}
		})
	}
}

// applyChunked feeds the patch in chunks of size n.
func applyChunked(old, patch []byte, n int) ([]byte, error) {
	var out bytes.Buffer
	a := NewApplier(bytes.NewReader(old), int64(len(old)), &out, 0)
	for off := 0; off < len(patch); off += n {
		if _, err := a.Write(patch[off:min(off+n, len(patch))]); err != nil {
			return nil, err
		}
	}
	if err := a.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// checkChunks applies patch to p.old in chunks of every given size and
// checks the result is p.new.
func checkChunks(t *testing.T, p pair, patch []byte, sizes []int, apply func(old, patch []byte, n int) ([]byte, error)) {
	t.Helper()
	for _, n := range sizes {
		got, err := apply(p.old, patch, n)
		if err != nil {
			t.Fatalf("chunk %d: %v", n, err)
		}
		if !bytes.Equal(got, p.new) {
			t.Fatalf("chunk %d: wrong image", n)
		}
	}
}

func TestEveryChunkSize(t *testing.T) {
	pairs := append(syntheticPairs(t)[4:7], firmwarePairs(t)...)
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			patch := create(t, p)
			sizes := make([]int, 1024)
			for i := range sizes {
				sizes[i] = i + 1
			}
			checkChunks(t, p, patch, sizes, applyChunked)
		})
	}
}

// TestResume interrupts the apply at random points, saves the state,
// throws the applier away and resumes from the state, as a device does
// across a power loss.
func TestResume(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pairs := append(syntheticPairs(t)[4:7], firmwarePairs(t)...)
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			patch := create(t, p)
			thumb, err := CreateWith(p.old, p.new, Options{Thumb: true})
			if err != nil {
				t.Fatal(err)
			}
			for trial := 0; trial < 20; trial++ {
				if trial%2 == 1 {
					patch = thumb
				}
				var out bytes.Buffer
				a := NewApplier(bytes.NewReader(p.old), int64(len(p.old)), &out, 0)
				for a.Received() < int64(len(patch)) {
					off := a.Received()
					n := 1 + rng.IntN(700)
					if _, err := a.Write(patch[off:min(off+int64(n), int64(len(patch)))]); err != nil {
						t.Fatal(err)
					}
					if rng.IntN(3) == 0 {
						state, err := a.MarshalBinary()
						if err != nil {
							t.Fatal(err)
						}
						if a, err = Resume(state, bytes.NewReader(p.old), int64(len(p.old)), &out, 0); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := a.Close(); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), p.new) {
					t.Fatalf("trial %d: wrong image after resuming", trial)
				}
			}
		})
	}
}

func TestWrongOldImageDetectedBeforeWriting(t *testing.T) {
	p := syntheticPairs(t)[5]
	patch := create(t, p)
	wrong := bytes.Clone(p.old)
	wrong[len(wrong)/2] ^= 1
	var out bytes.Buffer
	a := NewApplier(bytes.NewReader(wrong), int64(len(wrong)), &out, 0)
	_, err := a.Write(patch)
	if !errors.Is(err, ErrOldImage) {
		t.Fatalf("got %v, want ErrOldImage", err)
	}
	if out.Len() != 0 {
		t.Fatalf("%d bytes written before the old image was refused", out.Len())
	}
}

func TestRefusals(t *testing.T) {
	p := syntheticPairs(t)[5]
	patch := create(t, p)
	for _, tc := range []struct {
		name  string
		patch func() []byte
		want  error
	}{
		{"truncated", func() []byte { return patch[:len(patch)-3] }, ErrIncomplete},
		{"trailing data", func() []byte { return append(bytes.Clone(patch), 0) }, ErrTrailingData},
		{"not a patch", func() []byte { b := bytes.Clone(patch); b[0] = 'X'; return b }, ErrNotPatch},
		{"header bit flip", func() []byte { b := bytes.Clone(patch); b[30] ^= 1; return b }, ErrHeader},
		{"ram bound too large", func() []byte { return withHeader(patch, func(h *Header) { h.RAMBound = 1 << 20 }) }, ErrRAM},
		{"body corrupted", func() []byte { b := bytes.Clone(patch); b[HeaderSize+len(b[HeaderSize:])/2] ^= 0x55; return b }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Apply(p.old, tc.patch())
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// withHeader rewrites a patch's header (with a valid checksum).
func withHeader(patch []byte, f func(*Header)) []byte {
	h, err := ParseHeader(patch)
	if err != nil {
		panic(err)
	}
	f(&h)
	return append(h.Marshal(), patch[HeaderSize:]...)
}

func TestRAMBoundIsDeclared(t *testing.T) {
	if RAMBound > 8<<10 {
		t.Fatalf("applier RAM bound %d exceeds the 8 KB default profile", RAMBound)
	}
	h, err := ParseHeader(create(t, syntheticPairs(t)[5]))
	if err != nil || h.RAMBound != RAMBound {
		t.Fatalf("header RAM bound %d (%v), want %d", h.RAMBound, err, RAMBound)
	}
}

// TestApplierAllocatesOnlyAtStart checks that feeding a patch byte by byte
// allocates nothing per chunk: the applier's memory is what NewApplier
// made, whatever the patch says.
func TestApplierAllocatesOnlyAtStart(t *testing.T) {
	p := syntheticPairs(t)[6]
	for _, thumb := range []bool{false, true} {
		patch, err := CreateWith(p.old, p.new, Options{Thumb: thumb})
		if err != nil {
			t.Fatal(err)
		}
		checkAllocs(t, p, patch)
	}
}

func checkAllocs(t *testing.T, p pair, patch []byte) {
	old := bytes.NewReader(p.old)
	allocs := testing.AllocsPerRun(3, func() {
		a := NewApplier(old, int64(len(p.old)), io.Discard, 0)
		for i := range patch {
			if _, err := a.Write(patch[i : i+1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 30 {
		t.Fatalf("%v allocations to apply a %d-byte patch in 1-byte chunks", allocs, len(patch))
	}
}

func TestTwoMegabyteImage(t *testing.T) {
	p := largePair()
	old, new := p.old, p.new
	for _, thumb := range []bool{false, true} {
		patch, err := CreateWith(old, new, Options{Thumb: thumb})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 1024} {
			got, err := applyChunked(old, patch, n)
			if err != nil || !bytes.Equal(got, new) {
				t.Fatalf("thumb %v, chunk %d: %v", thumb, n, err)
			}
		}
	}
}

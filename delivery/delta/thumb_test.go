package delta

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestThumbBranchVector(t *testing.T) {
	// BL at image offset 0x100 to 0x200: offset 0x200 - 0x104 = 0xFC,
	// halfword offset 0x7E: F000 F87E, stored little-endian.
	b := []byte{0x00, 0xF0, 0x7E, 0xF8}
	if !thumbCandidate(b) {
		t.Fatal("BL not recognised")
	}
	thumbEncode(b, 0x100)
	if got := thumbField(b); got != 0x200>>1 {
		t.Fatalf("absolute target field %#x, want %#x", got, 0x200>>1)
	}
	thumbDecode(b, 0x100)
	if !bytes.Equal(b, []byte{0x00, 0xF0, 0x7E, 0xF8}) {
		t.Fatalf("decode gave % x", b)
	}
	// B.W (T4) has 10 in the second halfword's top bits.
	if !thumbCandidate([]byte{0x00, 0xF0, 0x00, 0xB8}) {
		t.Fatal("B.W not recognised")
	}
	if thumbCandidate([]byte{0x00, 0xF0, 0x00, 0xD0}) {
		t.Fatal("a BLX or conditional branch form taken for BL")
	}
}

func TestThumbTransformIsABijection(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	imgs := [][]byte{make([]byte, 0), {0xF0}, {0, 0xF0, 0, 0xF8}}
	for i := 0; i < 50; i++ {
		b := make([]byte, rng.IntN(4096))
		for j := range b {
			// Bias towards branch-looking bytes.
			b[j] = []byte{0xF0, 0xF8, 0xB8, byte(rng.Uint32())}[rng.IntN(4)]
		}
		imgs = append(imgs, b)
	}
	for _, p := range firmwarePairs(t) {
		imgs = append(imgs, p.new)
	}
	for i, img := range imgs {
		if back := thumbInverse(thumbForward(img)); !bytes.Equal(back, img) {
			t.Fatalf("image %d: inverse(forward(x)) != x", i)
		}
	}
}

func TestThumbPatches(t *testing.T) {
	pairs := append(syntheticPairs(t), firmwarePairs(t)...)
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			patch, err := CreateWith(p.old, p.new, Options{Thumb: true})
			if err != nil {
				t.Fatal(err)
			}
			checkChunks(t, p, patch, []int{1, 2, 3, 5, 64, 1024, len(patch) + 1}, applyChunked)
		})
	}
}

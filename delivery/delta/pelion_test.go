package delta

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// applyPelionChunked feeds the patch in chunks of size n.
func applyPelionChunked(old, patch []byte, n int) ([]byte, error) {
	var out bytes.Buffer
	a := NewPelionApplier(bytes.NewReader(old), int64(len(old)), &out, 0)
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

func createPelion(t testing.TB, p pair, frameSize int) []byte {
	t.Helper()
	patch, err := CreatePelion(p.old, p.new, frameSize)
	if err != nil {
		t.Fatal(err)
	}
	return patch
}

func TestPelionRoundTrip(t *testing.T) {
	for _, set := range []struct {
		name  string
		pairs func(testing.TB) []pair
	}{{"synthetic", syntheticPairs}, {"firmware", firmwarePairs}} {
		t.Run(set.name, func(t *testing.T) {
			for _, p := range set.pairs(t) {
				t.Run(p.name, func(t *testing.T) {
					patch := createPelion(t, p, 0)
					got, err := ApplyPelion(p.old, patch)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, p.new) {
						t.Fatalf("rebuilt %d bytes differ from the %d-byte new image", len(got), len(p.new))
					}
					checkChunks(t, p, patch, []int{1, 3, 64, 512, 1024}, applyPelionChunked)
				})
			}
		})
	}
}

// TestPelionFrameSizes checks other frame sizes and that no compressed
// frame exceeds the frame size: a device needs two frame-sized buffers.
func TestPelionFrameSizes(t *testing.T) {
	pairs := syntheticPairs(t)[4:7]
	for _, fs := range []int{PelionMinFrameSize, 100, 512, 4096, PelionMaxFrame} {
		for _, p := range pairs {
			patch := createPelion(t, p, fs)
			h, err := ParsePelionHeader(patch)
			if err != nil {
				t.Fatal(err)
			}
			if h.FrameSize != int64(fs) || h.MaxCompressed > h.FrameSize || h.MaxCompressed == 0 {
				t.Fatalf("frame %d, %s: header %+v", fs, p.name, h)
			}
			if got := maxFrameInPatch(t, patch); got != h.MaxCompressed {
				t.Fatalf("frame %d, %s: largest frame %d, header says %d", fs, p.name, got, h.MaxCompressed)
			}
			got, err := applyPelionChunked(p.old, patch, 777)
			if err != nil || !bytes.Equal(got, p.new) {
				t.Fatalf("frame %d, %s: %v", fs, p.name, err)
			}
		}
	}
	for _, fs := range []int{-1, 1, PelionMinFrameSize - 1, PelionMaxFrame + 1} {
		if _, err := CreatePelion(nil, []byte{1}, fs); err == nil {
			t.Errorf("frame size %d accepted", fs)
		}
	}
}

// maxFrameInPatch walks a well-formed patch and returns its largest
// compressed frame.
func maxFrameInPatch(t *testing.T, patch []byte) int64 {
	t.Helper()
	h, _ := ParsePelionHeader(patch)
	b := patch[PelionHeaderSize:]
	uv := func() uint64 {
		v, n := pelionUvarintOK(t, b)
		b = b[n:]
		return v
	}
	var largest int64
	frames := func(left int64) {
		for left > 0 {
			k := uv()
			dst := make([]byte, min(left, h.FrameSize))
			n, err := lz4.UncompressBlock(b[:k], dst)
			if err != nil || n == 0 {
				t.Fatalf("frame: %d, %v", n, err)
			}
			b = b[k:]
			left -= int64(n)
			largest = max(largest, int64(k))
		}
	}
	for len(b) > 0 {
		x, y := uv(), uv()
		uv()
		frames(int64(x))
		frames(int64(y))
	}
	return largest
}

func pelionUvarintOK(t *testing.T, b []byte) (uint64, int) {
	v, n := pelionUvarint(b)
	if n <= 0 {
		t.Fatalf("bad varint % x", b[:min(len(b), 10)])
	}
	return v, n
}

// pelionUvarint is the reference description's decoding, written out: 7 bits a
// byte, least significant group first, bit 7 = more bytes follow.
func pelionUvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

func TestPelionHeaderEncoding(t *testing.T) {
	magic := []byte("PELION/BSDIFF001")
	h := PelionHeader{NewSize: 0x1234, FrameSize: 512, MaxCompressed: 300}
	want := append(bytes.Clone(magic),
		0x34, 0x12, 0, 0, 0, 0, 0, 0,
		0x00, 0x02, 0, 0, 0, 0, 0, 0,
		0x2c, 0x01, 0, 0, 0, 0, 0, 0)
	if got := h.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("header\n got % x\nwant % x", got, want)
	}
	if got, err := ParsePelionHeader(want); err != nil || got != h {
		t.Fatalf("parse: %+v, %v", got, err)
	}

	for _, tc := range []struct {
		v    int64
		want [8]byte
	}{
		{0, [8]byte{}},
		{1, [8]byte{1}},
		{-1, [8]byte{1, 0, 0, 0, 0, 0, 0, 0x80}},
		{-5, [8]byte{5, 0, 0, 0, 0, 0, 0, 0x80}},
		{0x0102030405060708, [8]byte{8, 7, 6, 5, 4, 3, 2, 1}},
		{-0x0102030405060708, [8]byte{8, 7, 6, 5, 4, 3, 2, 0x81}},
		{math.MaxInt64, [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{-math.MaxInt64, [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	} {
		var b [8]byte
		putSignMagnitude(b[:], tc.v)
		if b != tc.want {
			t.Errorf("putSignMagnitude(%d) = % x, want % x", tc.v, b, tc.want)
		}
		v, neg := signMagnitude(tc.want[:])
		if v != tc.v || neg != (tc.v < 0) {
			t.Errorf("signMagnitude(% x) = %d, %v", tc.want, v, neg)
		}
	}
	// Negative zero: the sign bit alone still marks the size negative.
	if _, neg := signMagnitude([]byte{0, 0, 0, 0, 0, 0, 0, 0x80}); !neg {
		t.Error("negative zero not reported negative")
	}

	for i, name := range []string{"new size", "frame size", "compressed frame size"} {
		b := bytes.Clone(want)
		b[16+8*i+7] |= 0x80
		if _, err := ParsePelionHeader(b); !errors.Is(err, ErrHeader) {
			t.Errorf("negative %s: %v", name, err)
		}
	}
	b := bytes.Clone(want)
	b[15] = '2'
	if _, err := ParsePelionHeader(b); !errors.Is(err, ErrNotPatch) {
		t.Errorf("bad magic: %v", err)
	}
	if _, err := ParsePelionHeader(want[:39]); !errors.Is(err, ErrHeader) {
		t.Errorf("short header: %v", err)
	}
}

func TestPelionSignedVarint(t *testing.T) {
	for _, tc := range []struct {
		z    int64
		want []byte
	}{
		{0, []byte{0x00}},
		{1, []byte{0x02}},
		{-1, []byte{0x03}},
		{-3, []byte{0x07}},
		{63, []byte{0x7e}},
		{-63, []byte{0x7f}},
		{64, []byte{0x80, 0x01}},
		{-64, []byte{0x81, 0x01}},
		{300, []byte{0xd8, 0x04}},  // 600 = 0b100_1011000
		{-300, []byte{0xd9, 0x04}}, // 601
		{8192, []byte{0x80, 0x80, 0x01}},
		{math.MaxInt64, []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{-math.MaxInt64, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	} {
		if got := appendSignedVarint(nil, tc.z); !bytes.Equal(got, tc.want) {
			t.Errorf("appendSignedVarint(%d) = % x, want % x", tc.z, got, tc.want)
		}
		v, n := pelionUvarint(tc.want)
		if n != len(tc.want) || signedFromVarint(v) != tc.z {
			t.Errorf("decode % x = %d (%d bytes), want %d", tc.want, signedFromVarint(v), n, tc.z)
		}
	}
	// The applier's own varint reader, byte by byte.
	var a PelionApplier
	for _, b := range [][]byte{{0x00}, {0xd9, 0x04}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		want, _ := pelionUvarint(b)
		for i, c := range b {
			v, done, err := a.varint(c)
			if err != nil || done != (i == len(b)-1) || (done && v != want) {
				t.Fatalf("% x byte %d: %d %v %v", b, i, v, done, err)
			}
		}
	}
	// 2^64 does not fit.
	for i, c := range []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02} {
		_, _, err := a.varint(c)
		if (err != nil) != (i == 9) {
			t.Fatalf("varint of 2^65, byte %d: %v", i, err)
		}
	}
}

func TestPelionLiteralBlock(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte // the block without the literals
	}{
		{0, []byte{0x00}},
		{3, []byte{0x30}},
		{14, []byte{0xe0}},
		{15, []byte{0xf0, 0x00}},
		{269, []byte{0xf0, 0xfe}},
		{270, []byte{0xf0, 0xff, 0x00}},
		{525, []byte{0xf0, 0xff, 0xff, 0x00}},
	} {
		src := bytes.Repeat([]byte{'x'}, tc.n)
		got := appendLiteralBlock(nil, src)
		if !bytes.Equal(got, append(bytes.Clone(tc.want), src...)) {
			t.Errorf("literal block of %d: % x...", tc.n, got[:min(len(got), 4)])
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 1; n <= 1100; n++ {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		blk := appendLiteralBlock(nil, src)
		if len(blk) != literalBlockSize(n) || len(blk) > lz4.CompressBlockBound(n) {
			t.Fatalf("literal block of %d is %d bytes", n, len(blk))
		}
		dst := make([]byte, n)
		if k, err := lz4.UncompressBlock(blk, dst); err != nil || k != n || !bytes.Equal(dst, src) {
			t.Fatalf("literal block of %d decodes to %d bytes: %v", n, k, err)
		}
	}
	for _, budget := range []int{PelionMinFrameSize, 100, 512, 4096, PelionMaxFrame} {
		n := maxLiteralFit(budget)
		if literalBlockSize(n) > budget || literalBlockSize(n+1) <= budget {
			t.Errorf("maxLiteralFit(%d) = %d", budget, n)
		}
	}
	if maxLiteralFit(512) != 509 {
		t.Errorf("maxLiteralFit(512) = %d, want 509", maxLiteralFit(512))
	}
}

// Hand-written patches, byte by byte from the reference description, over
// the old image "abcdefgh".
var (
	pelionHandOld = []byte("abcdefgh")
	// new "abdXYab": record 1 takes 3 old bytes with diff 0,0,1, adds
	// "XY", then seeks -3 from old offset 3 back to 0; record 2 takes 2.
	pelionHandPatch = pelionCat(
		[]byte("PELION/BSDIFF001"),
		[]byte{7, 0, 0, 0, 0, 0, 0, 0}, // new size 7
		[]byte{0, 2, 0, 0, 0, 0, 0, 0}, // frame 512
		[]byte{4, 0, 0, 0, 0, 0, 0, 0}, // compressed frames <= 4
		[]byte{3, 2, 7},                // X=3 Y=2 Z=-3
		[]byte{4, 0x30, 0, 0, 1},       // diff frame: 3 literals
		[]byte{3, 0x20, 'X', 'Y'},      // extra frame: 2 literals
		[]byte{2, 0, 0},                // X=2 Y=0 Z=0
		[]byte{3, 0x20, 0, 0},          // diff frame
	)
	pelionHandNew = []byte("abdXYab")
	// new "fgi": a record X=0 Y=0 Z=5 only seeks, the next takes old[5:8]
	// with diff 0,0,1.
	pelionHandSeekPatch = pelionCat(
		PelionHeader{NewSize: 3, FrameSize: 512, MaxCompressed: 4}.Marshal(),
		[]byte{0, 0, 10}, []byte{3, 0, 0}, []byte{4, 0x30, 0, 0, 1})
)

func pelionCat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestPelionHandPatches(t *testing.T) {
	hdr := func(newSize, frame, comp int64) []byte {
		return PelionHeader{NewSize: newSize, FrameSize: frame, MaxCompressed: comp}.Marshal()
	}
	for _, tc := range []struct {
		name  string
		patch []byte
		want  string
	}{
		{"negative seek", pelionHandPatch, string(pelionHandNew)},
		// Starting elsewhere in old: an empty record that only seeks.
		{"leading seek", pelionHandSeekPatch, "fgi"},
		// Frames may hold less than the frame size: 1 + 2 + 1 bytes.
		{"short frames", pelionCat(hdr(4, 2, 3), []byte{4, 0, 0},
			[]byte{2, 0x10, 0}, []byte{3, 0x20, 0, 0}, []byte{2, 0x10, 0}), "abcd"},
		// A frame with an LZ4 match: token 0x20 (2 literals, match length
		// 4+0) "xy", offset 2 (little-endian), then a last sequence of one
		// literal: "xy" + "xyxy" + "z".
		{"lz4 match", pelionCat(hdr(7, 512, 7), []byte{0, 7, 0},
			[]byte{7, 0x20, 'x', 'y', 0x02, 0x00, 0x10, 'z'}), "xyxyxyz"},
		{"empty new", hdr(0, 512, 0), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{1, 2, len(tc.patch)} {
				got, err := applyPelionChunked(pelionHandOld, tc.patch, n)
				if err != nil {
					t.Fatalf("chunk %d: %v", n, err)
				}
				if string(got) != tc.want {
					t.Fatalf("chunk %d: got %q, want %q", n, got, tc.want)
				}
			}
		})
	}
}

func TestPelionHostile(t *testing.T) {
	hdr := func(newSize, frame, comp int64) []byte {
		return PelionHeader{NewSize: newSize, FrameSize: frame, MaxCompressed: comp}.Marshal()
	}
	h7 := hdr(7, 512, 4)
	for _, tc := range []struct {
		name  string
		patch []byte
		want  error
	}{
		{"bad magic", pelionCat([]byte("PELION/BSDIFF002"), pelionHandPatch[16:]), ErrNotPatch},
		{"negative new size", pelionCat(pelionHandPatch[:23], []byte{0x80}, pelionHandPatch[24:]), ErrHeader},
		{"frame size 0", hdr(7, 0, 0), ErrHeader},
		{"frame size 64 KiB + 1", hdr(7, PelionMaxFrame+1, 4), ErrRAM},
		{"frame size 2^62", hdr(7, 1<<62, 4), ErrRAM},
		{"compressed frame size above LZ4 bound", hdr(7, 512, int64(lz4.CompressBlockBound(512)+1)), ErrHeader},
		{"compressed frame size 2^62", hdr(7, 512, 1<<62), ErrHeader},
		{"seek before old", pelionCat(h7, []byte{3, 2, 9}), ErrCorrupt}, // 3 - 4 = -1
		{"seek past old", pelionCat(h7, []byte{3, 2, 12}), ErrCorrupt},  // 3 + 6 = 9 > 8
		{"seek -2^63+1", pelionCat(h7, []byte{0, 7}, appendSignedVarint(nil, -math.MaxInt64)), ErrCorrupt},
		{"seek 2^63-1", pelionCat(h7, []byte{0, 7}, appendSignedVarint(nil, math.MaxInt64)), ErrCorrupt},
		{"diff past old", pelionCat(hdr(9, 512, 4), []byte{9}), ErrCorrupt},
		{"diff past old after seek", pelionCat(h7, []byte{0, 0, 12, 3}), ErrCorrupt},
		{"diff past new", pelionCat(h7, []byte{8}), ErrCorrupt},
		{"extra past new", pelionCat(h7, []byte{3, 5}), ErrCorrupt},
		{"huge extra", pelionCat(h7, []byte{0}, pelionUvarintBytes(math.MaxUint64)), ErrCorrupt},
		{"varint over 64 bits", pelionCat(h7, bytes.Repeat([]byte{0xff}, 11)), ErrCorrupt},
		{"frame longer than declared", pelionCat(h7, []byte{3, 2, 7, 5}), ErrCorrupt},
		{"empty frame", pelionCat(h7, []byte{3, 2, 7, 0}), ErrCorrupt},
		{"frame decodes past its run", pelionCat(hdr(7, 512, 5), []byte{2, 5, 0}, []byte{4, 0x30, 0, 0, 1}), ErrCorrupt},
		{"frame decodes past frame size", pelionCat(hdr(7, 2, 4), []byte{3, 4, 0}, []byte{4, 0x30, 0, 0, 1}), ErrCorrupt},
		{"frame not LZ4", pelionCat(h7, []byte{3, 2, 7}, []byte{4, 0xf0, 0xff, 0xff, 0xff}), ErrCorrupt},
		{"match offset 0", pelionCat(hdr(7, 512, 7), []byte{0, 7, 0}, []byte{7, 0x20, 'x', 'y', 0x00, 0x00, 0x10, 'z'}), ErrCorrupt},
		{"match before block", pelionCat(hdr(7, 512, 7), []byte{0, 7, 0}, []byte{7, 0x20, 'x', 'y', 0x09, 0x00, 0x10, 'z'}), ErrCorrupt},
		{"trailing byte", pelionCat(pelionHandPatch, []byte{0}), ErrTrailingData},
		{"truncated header", pelionHandPatch[:39], ErrIncomplete},
		{"truncated", pelionHandPatch[:len(pelionHandPatch)-1], ErrIncomplete},
		{"truncated after a record", pelionHandPatch[:len(pelionHandPatch)-4], ErrIncomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{1, 5, len(tc.patch)} {
				_, err := applyPelionChunked(pelionHandOld, tc.patch, n)
				if !errors.Is(err, tc.want) {
					t.Fatalf("chunk %d: got %v, want %v", n, err, tc.want)
				}
			}
		})
	}
}

func pelionUvarintBytes(v uint64) []byte {
	var b []byte
	for ; v >= 0x80; v >>= 7 {
		b = append(b, byte(v)|0x80)
	}
	return append(b, byte(v))
}

// TestPelionEveryPrefix cuts a real patch at every length: each cut is
// reported as incomplete, never accepted.
func TestPelionEveryPrefix(t *testing.T) {
	p := syntheticPairs(t)[5]
	patch := createPelion(t, p, 0)
	for n := 0; n < len(patch); n++ {
		var out bytes.Buffer
		a := NewPelionApplier(bytes.NewReader(p.old), int64(len(p.old)), &out, 0)
		if _, err := a.Write(patch[:n]); err != nil {
			t.Fatalf("prefix %d: %v", n, err)
		}
		if err := a.Close(); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("prefix %d: Close = %v", n, err)
		}
		if !bytes.Equal(out.Bytes(), p.new[:out.Len()]) {
			t.Fatalf("prefix %d: wrong bytes written", n)
		}
	}
}

// TestPelionBitFlips flips every bit of small patches: no panic, no read
// outside the old image, no write past the declared size; an accepted
// patch wrote exactly the declared size.
func TestPelionBitFlips(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	old := make([]byte, 3000)
	for i := range old {
		old[i] = byte(rng.IntN(16))
	}
	patches := [][]byte{pelionHandPatch, createPelion(t, pair{old: old, new: mutate(rng, splice(rng, old, 4), 10)}, 64)}
	olds := [][]byte{pelionHandOld, old}
	for i, patch := range patches {
		for bit := 0; bit < 8*len(patch); bit++ {
			b := bytes.Clone(patch)
			b[bit/8] ^= 1 << (bit % 8)
			pelionCheck(t, olds[i], b, 1+bit%97)
		}
	}
}

// pelionCheck applies patch in chunks of n and fails on any read outside
// old, any write past the header's new size, or an accepted patch that
// wrote less.
func pelionCheck(t *testing.T, old, patch []byte, n int) {
	limit := 0
	if h, err := ParsePelionHeader(patch); err == nil {
		limit = int(h.NewSize)
	}
	out := &boundedOut{t: t, limit: limit}
	a := NewPelionApplier(strictOld{t, old}, int64(len(old)), out, 0)
	for off := 0; off < len(patch); off += n {
		if _, err := a.Write(patch[off:min(off+n, len(patch))]); err != nil {
			if a.Close() == nil {
				t.Fatal("Close accepts after a failed Write")
			}
			return
		}
	}
	if a.Close() == nil && out.n != limit {
		t.Fatalf("accepted after writing %d of %d bytes", out.n, limit)
	}
}

type pelionFailingOld struct{}

func (pelionFailingOld) ReadAt(p []byte, off int64) (int, error) {
	return 0, errors.New("flash read error")
}

type pelionShortOut struct{}

func (pelionShortOut) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestPelionIOErrors(t *testing.T) {
	a := NewPelionApplier(pelionFailingOld{}, int64(len(pelionHandOld)), io.Discard, 0)
	if _, err := a.Write(pelionHandPatch); err == nil || !strings.Contains(err.Error(), "flash read error") {
		t.Fatalf("old read error: %v", err)
	}
	if _, err := a.Write([]byte{0}); err == nil {
		t.Fatal("Write after an error accepted")
	}
	a = NewPelionApplier(bytes.NewReader(pelionHandOld), int64(len(pelionHandOld)), pelionShortOut{}, 0)
	if _, err := a.Write(pelionHandPatch); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: %v", err)
	}
	// An old image shorter than its declared size: the patch reads old[5:8].
	a = NewPelionApplier(bytes.NewReader(pelionHandOld[:6]), int64(len(pelionHandOld)), io.Discard, 0)
	if _, err := a.Write(pelionHandSeekPatch); !errors.Is(err, io.EOF) {
		t.Fatal("short old image accepted")
	}
	a = NewPelionApplier(bytes.NewReader(pelionHandOld), -1, io.Discard, 0)
	if _, err := a.Write(pelionHandPatch); err == nil {
		t.Fatal("negative old size accepted")
	}
	// A smaller frame limit refuses the default frames.
	a = NewPelionApplier(bytes.NewReader(pelionHandOld), int64(len(pelionHandOld)), io.Discard, 256)
	if _, err := a.Write(pelionHandPatch); !errors.Is(err, ErrRAM) {
		t.Fatalf("frame limit 256: %v", err)
	}
}

// TestPelionApplierMemory checks that applying allocates the two frame
// buffers and a constant, whatever the images' and the declared sizes.
func TestPelionApplierMemory(t *testing.T) {
	allocated := func(old, patch []byte) uint64 {
		r := bytes.NewReader(old)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		a := NewPelionApplier(r, int64(len(old)), io.Discard, 0)
		for off := 0; off < len(patch); off += 64 {
			if _, err := a.Write(patch[off:min(off+64, len(patch))]); err != nil {
				break
			}
		}
		_ = a.Close()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	pairs := firmwarePairs(t)
	p := pairs[len(pairs)-1]
	patch := createPelion(t, p, 0)
	h, _ := ParsePelionHeader(patch)
	buffers := uint64(h.FrameSize + h.MaxCompressed)
	if got := allocated(p.old, patch); got > buffers+1024 {
		t.Errorf("%s: applier allocated %d bytes, frame buffers are %d", p.name, got, buffers)
	} else {
		t.Logf("%s: applier allocated %d bytes (frame buffers %d)", p.name, got, buffers)
	}
	// A declared new image of 2^62 bytes and the largest frames.
	huge := pelionCat(PelionHeader{NewSize: 1 << 62, FrameSize: PelionMaxFrame, MaxCompressed: int64(lz4.CompressBlockBound(PelionMaxFrame))}.Marshal(),
		[]byte{0}, pelionUvarintBytes(1<<61), []byte{0}, pelionUvarintBytes(1<<40))
	// (Go rounds large allocations up to whole pages.)
	if got := allocated(nil, huge); got > 2*PelionMaxFrame+16<<10 {
		t.Errorf("huge declared sizes: applier allocated %d bytes", got)
	}
}

// TestPelionSizes reports the Pelion patch sizes of the firmware pairs
// next to the native format's (go test -run PelionSizes -v).
func TestPelionSizes(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n| pair | new | native | pelion 512 | pelion %% of new | pelion / native |\n|---|---|---|---|---|---|\n")
	for _, p := range firmwarePairs(t) {
		pel := createPelion(t, p, 0)
		nat := create(t, p)
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %.1f %% | %.2fx |\n", p.name, len(p.new), len(nat), len(pel),
			100*float64(len(pel))/float64(len(p.new)), float64(len(pel))/float64(len(nat)))
		if len(pel) <= len(nat) {
			t.Errorf("%s: pelion %d bytes, native %d: independent frames should cost more", p.name, len(pel), len(nat))
		}
	}
	t.Log(b.String())
}

// FuzzPelionApply feeds hostile patches in hostile chunk sizes: no panic,
// no read outside the old image, no write past the declared new size, and
// an accepted patch wrote exactly the declared size.
func FuzzPelionApply(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 10))
	old := append(bytes.Clone(pelionHandOld), bytes.Repeat([]byte("firmware-v1 \x00\x10\x20\x08"), 150)...)
	for i := 8; i < len(old); i += 37 {
		old[i] += byte(rng.IntN(4))
	}
	f.Add(pelionHandPatch, uint16(0))
	for i, fs := range []int{64, 512} {
		newer := mutate(rng, splice(rng, old, 3), 6)
		f.Add(createPelion(f, pair{old: old, new: newer}, fs), uint16(7*i))
	}
	f.Add(createPelion(f, pair{old: old, new: old[100:900]}, 64), uint16(63))
	f.Add(createPelion(f, pair{old: old}, 64), uint16(1))
	f.Fuzz(func(t *testing.T, patch []byte, chunk uint16) {
		pelionCheck(t, old, patch, int(chunk)%1024+1)
	})
}

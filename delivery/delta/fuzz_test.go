package delta

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

func FuzzParseHeader(f *testing.F) {
	f.Add(make([]byte, HeaderSize))
	h := Header{OldSize: 10, NewSize: 20, BodySize: 30, RAMBound: RAMBound}
	f.Add(h.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err == nil && !bytes.Equal(h.Marshal(), b[:HeaderSize]) {
			t.Fatal("accepted header does not re-encode to itself")
		}
	})
}

// strictOld fails the test on any read outside the old image.
type strictOld struct {
	t   *testing.T
	img []byte
}

func (s strictOld) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(s.img)) {
		s.t.Fatalf("read of %d bytes at %d outside the %d-byte old image", len(p), off, len(s.img))
	}
	return copy(p, s.img[off:]), nil
}

// boundedOut fails the test on any write beyond the declared new size.
type boundedOut struct {
	t     *testing.T
	limit int
	n     int
}

func (b *boundedOut) Write(p []byte) (int, error) {
	b.n += len(p)
	if b.n > b.limit {
		b.t.Fatalf("wrote %d bytes, header declares %d", b.n, b.limit)
	}
	return len(p), nil
}

// FuzzApply feeds hostile patch bodies, behind a valid header, to the
// applier in hostile chunk sizes: no panic, no read outside the old image,
// no write past the declared new size.
func FuzzApply(f *testing.F) {
	old := bytes.Repeat([]byte("firmware-v1 "), 300)
	newer := append(bytes.Clone(old[:1000]), []byte("patched code here")...)
	newer = append(newer, old[1100:]...)
	patch, err := Create(old, newer)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(patch[HeaderSize:], uint32(len(newer)), uint16(7))
	f.Add([]byte{0, 0, 0, 0, 0xff, 0xff, 0xff}, uint32(100), uint16(1))
	f.Add(bytes.Repeat([]byte{0xff}, 300), uint32(1<<20), uint16(64))
	oldHash := sha256.Sum256(old)
	f.Fuzz(func(t *testing.T, body []byte, newSize uint32, chunk uint16) {
		newSize %= 1 << 20
		h := Header{OldSize: uint32(len(old)), NewSize: newSize, BodySize: uint32(len(body)), RAMBound: RAMBound, OldHash: oldHash}
		p := append(h.Marshal(), body...)
		out := &boundedOut{t: t, limit: int(newSize)}
		a := NewApplier(strictOld{t, old}, int64(len(old)), out, 0)
		n := int(chunk)%1024 + 1
		for off := 0; off < len(p); off += n {
			if _, err := a.Write(p[off:min(off+n, len(p))]); err != nil {
				return
			}
		}
		_ = a.Close()
	})
}

// FuzzResume feeds hostile saved states to Resume: no panic.
func FuzzResume(f *testing.F) {
	old := bytes.Repeat([]byte{1, 2, 3, 4}, 100)
	patch, _ := Create(old, append(bytes.Clone(old), 9, 9, 9))
	var out bytes.Buffer
	a := NewApplier(bytes.NewReader(old), int64(len(old)), &out, 0)
	_, _ = a.Write(patch[:HeaderSize+3])
	state, _ := a.MarshalBinary()
	f.Add(state)
	f.Fuzz(func(t *testing.T, state []byte) {
		a, err := Resume(state, strictOld{t, old}, int64(len(old)), &boundedOut{t: t, limit: 1 << 20}, 0)
		if err != nil {
			return
		}
		_, _ = a.Write(patch[min(int(a.Received()), len(patch)):])
		_ = a.Close()
	})
}

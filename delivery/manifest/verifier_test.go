package manifest

import (
	"bytes"
	"errors"
	"testing"
)

// TestResume saves the verifier at many points of a download, restores the
// state into a fresh verifier and finishes there: same payload, same
// manifest, same result.
func TestResume(t *testing.T) {
	pub := testPub(t)
	tp := buildPackage(t, "delta", sampleManifest(FormatDelta), payloadOf(FormatDelta, 3000))
	hl := headerLen(t, tp.pkg)
	cuts := []int{0, 1, 100, hl - 1, hl, hl + 1, hl + 1024, len(tp.pkg) - 1, len(tp.pkg)}
	for _, cut := range cuts {
		v := NewVerifier(pub, 2048)
		var first []byte
		for off := 0; off < cut; off += 64 {
			p, err := v.Write(tp.pkg[off:min(cut, off+64)])
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			first = append(first, p...)
		}
		state, err := v.MarshalBinary()
		if err != nil {
			t.Fatalf("cut %d: MarshalBinary: %v", cut, err)
		}
		t.Logf("cut %d: state %d bytes", cut, len(state))
		w := NewVerifier(pub, 2048)
		if err := w.UnmarshalBinary(state); err != nil {
			t.Fatalf("cut %d: UnmarshalBinary: %v", cut, err)
		}
		if w.Offset() != int64(cut) {
			t.Fatalf("cut %d: restored Offset %d", cut, w.Offset())
		}
		m1, ok1 := v.Manifest()
		m2, ok2 := w.Manifest()
		if m1 != m2 || ok1 != ok2 {
			t.Fatalf("cut %d: restored manifest %v %v, was %v %v", cut, m2, ok2, m1, ok1)
		}
		rest, err := feed(t, w, tp.pkg[cut:], repeatChunks(len(tp.pkg)-cut, 100))
		if err != nil {
			t.Fatalf("cut %d: after resume: %v", cut, err)
		}
		if got := append(first, rest...); !bytes.Equal(got, tp.payload) {
			t.Fatalf("cut %d: payload differs", cut)
		}
		// The original goes on as if nothing happened.
		if _, err := feed(t, v, tp.pkg[cut:], nil); err != nil {
			t.Fatalf("cut %d: original: %v", cut, err)
		}
	}
}

func TestResumeFinished(t *testing.T) {
	pub := testPub(t)
	tp := testPackages(t)[0]
	v := NewVerifier(pub, 0)
	if _, err := feed(t, v, tp.pkg, nil); err != nil {
		t.Fatal(err)
	}
	state, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	w := NewVerifier(pub, 0)
	if err := w.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(); err != nil || w.Offset() != int64(len(tp.pkg)) {
		t.Fatalf("Finish %v, Offset %d", err, w.Offset())
	}
	if _, err := w.Write([]byte{1}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Write after the end: %v", err)
	}
}

func TestResumeBadState(t *testing.T) {
	pub := testPub(t)
	tp := buildPackage(t, "full", sampleManifest(FormatFull), payloadOf(FormatFull, 500))
	hl := headerLen(t, tp.pkg)
	v := NewVerifier(pub, 0)
	if _, err := v.Write(tp.pkg[:hl+100]); err != nil {
		t.Fatal(err)
	}
	state, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("every byte flipped", func(t *testing.T) {
		for i := range state {
			bad := bytes.Clone(state)
			bad[i] ^= 0x08
			w := NewVerifier(pub, 0)
			if err := w.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
				t.Fatalf("byte %d: %v", i, err)
			}
			if _, err2 := w.Write(tp.pkg[hl+100:]); err2 == nil {
				t.Fatalf("byte %d: Write after a failed restore succeeded", i)
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for n := range state {
			if err := NewVerifier(pub, 0).UnmarshalBinary(state[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%d bytes: %v", n, err)
			}
		}
	})
	t.Run("other key", func(t *testing.T) {
		if err := NewVerifier(&other.PublicKey, 0).UnmarshalBinary(state); !errors.Is(err, ErrSignature) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("small buffer", func(t *testing.T) {
		if err := NewVerifier(pub, 100).UnmarshalBinary(state); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("failed verifier", func(t *testing.T) {
		w := NewVerifier(&other.PublicKey, 0)
		if _, err := w.Write(tp.pkg); err == nil {
			t.Fatal("wrong key accepted")
		}
		if _, err := w.MarshalBinary(); !errors.Is(err, ErrSignature) {
			t.Fatalf("MarshalBinary of a failed verifier: %v", err)
		}
	})
}

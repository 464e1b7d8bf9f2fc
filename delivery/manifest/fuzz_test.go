package manifest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSeeds are valid packages and pieces of them.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, name := range []string{"vector-full.pkg", "vector-delta.pkg"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b, b[:len(b)-1], append(bytes.Clone(b), 0))
	}
	for _, tp := range testPackages(f)[:4] {
		seeds = append(seeds, tp.pkg[:min(len(tp.pkg), 600)])
	}
	return append(seeds, nil, envPrefix[:])
}

// agree checks what Parse says about pkg against a verifier's result.
func agree(t *testing.T, pkg []byte, vm Manifest, vpayload []byte, verr error) {
	t.Helper()
	m, payload, err := Parse(pkg, testPub(t))
	switch {
	case (err == nil) != (verr == nil):
		t.Fatalf("Parse: %v; Verifier: %v", err, verr)
	case err != nil:
		for _, s := range []error{ErrMalformed, ErrSignature, ErrDigest, ErrTooLarge} {
			if errors.Is(err, s) != errors.Is(verr, s) {
				t.Fatalf("Parse: %v; Verifier: %v", err, verr)
			}
		}
		return
	}
	if m != vm || !bytes.Equal(payload, vpayload) {
		t.Fatalf("Parse and Verifier disagree: %+v / %+v", m, vm)
	}
	// A verified package is what Build makes of its manifest and payload,
	// up to the signature (ECDSA signatures are not unique).
	again, err := Build(m, payload, mustTestKey(t))
	if err != nil {
		t.Fatalf("Build of a verified manifest: %v", err)
	}
	sig := len(envPrefix) + authLen - sigLen
	if len(again) != len(pkg) || !bytes.Equal(again[:sig], pkg[:sig]) || !bytes.Equal(again[sig+sigLen:], pkg[sig+sigLen:]) {
		t.Fatal("a verified package differs from Build's encoding")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	pub := testPub(f)
	f.Fuzz(func(t *testing.T, pkg []byte) {
		m, payload, err := Parse(pkg, pub)
		if err != nil {
			if !isAny(err, ErrMalformed, ErrSignature, ErrDigest, ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
		} else if len(payload) == 0 || &payload[len(payload)-1] != &pkg[len(pkg)-1] || uint64(len(payload)) != m.PayloadSize {
			t.Fatal("payload is not the package's tail")
		}
		// Without a key Parse accepts at least what it accepts with one.
		m2, _, err2 := Parse(pkg, nil)
		if err == nil && (err2 != nil || m2 != m) {
			t.Fatalf("Parse without key: %v", err2)
		}
		v := NewVerifier(pub, MaxEnvelope)
		vp, verr := feed(t, v, pkg, nil)
		vm, _ := v.Manifest()
		agree(t, pkg, vm, vp, verr)
	})
}

// FuzzVerifier feeds a package in chunks whose lengths come from split,
// saving and restoring the verifier at the chunk chosen by split's first
// byte, and checks the result against Parse.
func FuzzVerifier(f *testing.F) {
	for i, s := range fuzzSeeds(f) {
		f.Add(s, []byte{byte(i), 1, 7, 64, 200, 3})
	}
	pub := testPub(f)
	f.Fuzz(func(t *testing.T, pkg, split []byte) {
		save := -1
		if len(split) > 0 {
			save, split = int(split[0]), split[1:]
		}
		chunks := make([]int, 0, len(split))
		for _, c := range split {
			chunks = append(chunks, 1+int(c)*4)
		}
		for _, max := range []int{MaxEnvelope, 256} {
			v := NewVerifier(pub, max)
			var payload []byte
			var err error
			rest := pkg
			for i := 0; len(rest) > 0 && err == nil; i++ {
				n := len(rest)
				if i < len(chunks) {
					n = min(n, chunks[i])
				}
				if i == save {
					state, serr := v.MarshalBinary()
					if serr != nil {
						t.Fatalf("MarshalBinary: %v", serr)
					}
					w := NewVerifier(pub, max)
					if uerr := w.UnmarshalBinary(state); uerr != nil {
						t.Fatalf("UnmarshalBinary of a fresh state: %v", uerr)
					}
					if w.Offset() != v.Offset() {
						t.Fatalf("restored Offset %d, was %d", w.Offset(), v.Offset())
					}
					v = w
				}
				var p []byte
				p, err = v.Write(rest[:n])
				if len(v.hdr) > max {
					t.Fatalf("buffered %d header bytes, max %d", len(v.hdr), max)
				}
				if _, ok := v.Manifest(); len(p) > 0 && !ok {
					t.Fatal("payload before the manifest was verified")
				}
				if err != nil && p != nil {
					t.Fatal("payload with an error")
				}
				payload = append(payload, p...)
				rest = rest[n:]
			}
			if err == nil {
				err = v.Finish()
			}
			if err != nil && !isAny(err, ErrMalformed, ErrSignature, ErrDigest, ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			if max < MaxEnvelope && errors.Is(err, ErrTooLarge) {
				continue // Parse can buffer what this verifier could not
			}
			m, _ := v.Manifest()
			if err != nil {
				payload = nil
			}
			agree(t, pkg, m, payload, err)
		}
	})
}

// FuzzManifest reaches the manifest decoder directly, which the other
// targets can only reach through a valid signature: no panic, and what it
// accepts encodes back to the same bytes.
func FuzzManifest(f *testing.F) {
	for _, tp := range testPackages(f) {
		l, _, err := scanHeader(tp.pkg[:min(len(tp.pkg), MaxEnvelope)], MaxEnvelope)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tp.pkg[l.manifestStart:l.manifestEnd])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeManifest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error wraps no ErrMalformed: %v", err)
			}
			return
		}
		again, err := encodeManifest(&m)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted manifest does not encode back: %v", err)
		}
		if err := m.validate(); err != nil {
			t.Fatalf("accepted an invalid manifest: %v", err)
		}
	})
}

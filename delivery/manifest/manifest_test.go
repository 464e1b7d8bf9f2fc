package manifest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestFormatText(t *testing.T) {
	for _, f := range []Format{FormatFull, FormatDelta, FormatPelion} {
		got, err := ParseFormat(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f.String(), got, err)
		}
		txt, err := f.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Format
		if err := back.UnmarshalText(txt); err != nil || back != f {
			t.Errorf("UnmarshalText(%q) = %v, %v", txt, back, err)
		}
	}
	if s := Format(9).String(); s != "Format(9)" {
		t.Errorf("Format(9).String() = %q", s)
	}
	if _, err := ParseFormat("bsdiff"); err == nil {
		t.Error("ParseFormat(bsdiff) did not fail")
	}
	if _, err := Format(0).MarshalText(); err == nil {
		t.Error("Format(0).MarshalText did not fail")
	}
	if FormatFull.IsDelta() || !FormatDelta.IsDelta() || !FormatPelion.IsDelta() {
		t.Error("IsDelta")
	}
}

func TestDigestText(t *testing.T) {
	d := Digest(sha256.Sum256([]byte("abc")))
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if d.String() != want {
		t.Fatalf("String = %s", d)
	}
	var back Digest
	if err := back.UnmarshalText([]byte(want)); err != nil || back != d {
		t.Fatalf("UnmarshalText = %v, %v", back, err)
	}
	for _, bad := range []string{"", want[:62], want + "00", strings.Replace(want, "b", "g", 1)} {
		if err := back.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) did not fail", bad)
		}
	}
}

func TestBuildParse(t *testing.T) {
	pub := testPub(t)
	for _, tp := range testPackages(t) {
		t.Run(tp.name, func(t *testing.T) {
			for _, key := range []*ecdsa.PublicKey{pub, nil} {
				m, payload, err := Parse(tp.pkg, key)
				if err != nil {
					t.Fatalf("Parse(key %v): %v", key != nil, err)
				}
				if m != tp.m {
					t.Errorf("manifest\n got %+v\nwant %+v", m, tp.m)
				}
				if !bytes.Equal(payload, tp.payload) {
					t.Error("payload differs")
				}
				if cap(payload) != len(payload) || &payload[0] != &tp.pkg[len(tp.pkg)-len(payload)] {
					t.Error("payload is not the package's tail with a capped capacity")
				}
			}
			if err := cbor.Wellformed(tp.pkg); err != nil {
				t.Errorf("package is not one well-formed CBOR item: %v", err)
			}
			again, err := Build(tp.m, tp.payload, mustTestKey(t))
			if err != nil || !bytes.Equal(again, tp.pkg) {
				t.Errorf("Build is not deterministic (err %v)", err)
			}
		})
	}
}

// TestStructure decodes a package with a generic CBOR decoder and checks
// the SUIT shape: tag 107, keys 2 and 3 as byte strings, "#0" last.
func TestStructure(t *testing.T) {
	tp := buildPackage(t, "delta", sampleManifest(FormatDelta), payloadOf(FormatDelta, 100))
	var env cbor.Tag
	if err := cbor.Unmarshal(tp.pkg, &env); err != nil {
		t.Fatal(err)
	}
	if env.Number != 107 {
		t.Fatalf("tag %d", env.Number)
	}
	fields, ok := env.Content.(map[any]any)
	if !ok || len(fields) != 3 {
		t.Fatalf("envelope content %T", env.Content)
	}
	if p, _ := fields["#0"].([]byte); !bytes.Equal(p, tp.payload) {
		t.Error(`"#0" is not the payload`)
	}
	mb, _ := fields[uint64(3)].([]byte)
	var sm map[int]any
	if err := cbor.Unmarshal(mb, &sm); err != nil {
		t.Fatal(err)
	}
	if sm[1] != uint64(1) || sm[2] != uint64(42) {
		t.Errorf("manifest version/sequence %v %v", sm[1], sm[2])
	}
	var auth [][]byte
	if err := cbor.Unmarshal(fields[uint64(2)].([]byte), &auth); err != nil || len(auth) != 2 {
		t.Fatalf("auth wrapper: %v", err)
	}
	if want := encodeDigest(sha256.Sum256(mb)); !bytes.Equal(auth[0], want) {
		t.Error("auth digest is not the SUIT_Digest of the manifest")
	}
	diag, err := cbor.Diagnose(mb)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("manifest: %s", diag)
}

func TestBuildRejects(t *testing.T) {
	key := mustTestKey(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	full := func(f func(*Manifest)) Manifest { m := sampleManifest(FormatFull); f(&m); return m }
	delta := func(f func(*Manifest)) Manifest { m := sampleManifest(FormatDelta); f(&m); return m }
	tests := []struct {
		name    string
		m       Manifest
		payload []byte
		key     *ecdsa.PrivateKey
		want    error
	}{
		{"unknown format", full(func(m *Manifest) { m.Format = 4 }), []byte("x"), key, ErrMalformed},
		{"zero format", full(func(m *Manifest) { m.Format = 0 }), []byte("x"), key, ErrMalformed},
		{"empty class", full(func(m *Manifest) { m.Class = "" }), []byte("x"), key, ErrMalformed},
		{"long class", full(func(m *Manifest) { m.Class = strings.Repeat("c", MaxClassLen+1) }), []byte("x"), key, ErrMalformed},
		{"class not utf-8", full(func(m *Manifest) { m.Class = "\xff" }), []byte("x"), key, ErrMalformed},
		{"empty version", full(func(m *Manifest) { m.Version = "" }), []byte("x"), key, ErrMalformed},
		{"long version", full(func(m *Manifest) { m.Version = strings.Repeat("1", MaxVersionLen+1) }), []byte("x"), key, ErrMalformed},
		{"version not utf-8", full(func(m *Manifest) { m.Version = "2.\xc0" }), []byte("x"), key, ErrMalformed},
		{"empty payload", full(func(*Manifest) {}), nil, key, ErrMalformed},
		{"full image digest differs", full(func(m *Manifest) { m.ImageDigest[0] = 1; m.ImageSize = 1 }), []byte("x"), key, ErrMalformed},
		{"full image size differs", full(func(m *Manifest) { m.ImageDigest = sha256.Sum256([]byte("x")); m.ImageSize = 2 }), []byte("x"), key, ErrMalformed},
		{"full with precursor", full(func(m *Manifest) { m.PrecursorSize = 5 }), []byte("x"), key, ErrMalformed},
		{"delta without precursor", delta(func(m *Manifest) { m.PrecursorSize = 0 }), payloadOf(FormatDelta, 100), key, ErrMalformed},
		{"delta without image size", delta(func(m *Manifest) { m.ImageSize = 0 }), payloadOf(FormatDelta, 100), key, ErrMalformed},
		{"delta image too large", delta(func(m *Manifest) { m.ImageSize = MaxSize + 1 }), payloadOf(FormatDelta, 100), key, ErrMalformed},
		{"delta without magic", delta(func(*Manifest) {}), payloadOf(FormatFull, 100), key, ErrMalformed},
		{"pelion without magic", delta(func(m *Manifest) { m.Format = FormatPelion }), payloadOf(FormatDelta, 100), key, ErrMalformed},
		{"no key", full(func(*Manifest) {}), []byte("x"), nil, nil},
		{"P-384 key", full(func(*Manifest) {}), []byte("x"), p384, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkg, err := Build(tt.m, tt.payload, tt.key)
			if err == nil {
				t.Fatalf("Build succeeded: %d bytes", len(pkg))
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Build: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFullImageFields(t *testing.T) {
	payload := []byte("image")
	m := sampleManifest(FormatFull)
	m.ImageDigest, m.ImageSize = sha256.Sum256(payload), uint64(len(payload))
	pkg, err := Build(m, payload, mustTestKey(t))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := Parse(pkg, testPub(t))
	if err != nil {
		t.Fatal(err)
	}
	if got.PayloadDigest != got.ImageDigest || got.PayloadSize != 5 || got.PrecursorSize != 0 {
		t.Errorf("manifest %+v", got)
	}
}

func TestVerifierChunks(t *testing.T) {
	pub := testPub(t)
	rng := mrand.New(mrand.NewPCG(1, 2))
	for _, tp := range testPackages(t) {
		splits := map[string][]int{}
		for _, size := range []int{1, 7, 64, 512, 1024} {
			splits["chunk-"+strconv.Itoa(size)] = repeatChunks(len(tp.pkg), size)
		}
		for i := range 8 {
			var c []int
			for n := 0; n < len(tp.pkg); {
				k := 1 + rng.IntN(1+rng.IntN(600))
				c = append(c, k)
				n += k
			}
			splits["random-"+strconv.Itoa(i)] = c
		}
		splits["whole"] = nil
		for name, chunks := range splits {
			t.Run(tp.name+"/"+name, func(t *testing.T) {
				v := NewVerifier(pub, 2048)
				payload, err := feed(t, v, tp.pkg, chunks)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(payload, tp.payload) {
					t.Fatal("payload differs")
				}
				if m, ok := v.Manifest(); !ok || m != tp.m {
					t.Fatalf("Manifest = %+v, %v", m, ok)
				}
				if v.Offset() != int64(len(tp.pkg)) {
					t.Fatalf("Offset %d, want %d", v.Offset(), len(tp.pkg))
				}
				if err := v.Finish(); err != nil {
					t.Fatalf("second Finish: %v", err)
				}
				if _, err := v.Write([]byte{0}); !errors.Is(err, ErrMalformed) {
					t.Fatalf("Write after Finish: %v", err)
				}
			})
		}
	}
}

func TestVerifierOffsetDuringHeader(t *testing.T) {
	tp := buildPackage(t, "full", sampleManifest(FormatFull), payloadOf(FormatFull, 10))
	v := NewVerifier(testPub(t), 0)
	hl := headerLen(t, tp.pkg)
	for i := range hl - 1 {
		if p, err := v.Write(tp.pkg[i : i+1]); err != nil || p != nil {
			t.Fatalf("byte %d: %v, %d payload bytes", i, err, len(p))
		}
		if v.Offset() != int64(i+1) {
			t.Fatalf("Offset %d after %d bytes", v.Offset(), i+1)
		}
		if _, ok := v.Manifest(); ok {
			t.Fatal("manifest verified before the header was complete")
		}
	}
	if p, err := v.Write(tp.pkg[hl-1 : hl+3]); err != nil || len(p) != 3 {
		t.Fatalf("last header byte: %v, %d payload bytes", err, len(p))
	}
	if v.Offset() != int64(hl+3) {
		t.Fatalf("Offset %d", v.Offset())
	}
}

// TestTamperEnvelope flips bits in every envelope header byte: the result is
// always refused as malformed or unauthentic, and never releases payload.
func TestTamperEnvelope(t *testing.T) {
	pub := testPub(t)
	for _, tp := range testPackages(t)[1:3] {
		hl := headerLen(t, tp.pkg)
		for i := range hl {
			for _, mask := range []byte{0x01, 0x02, 0x10, 0x80, 0xFF} {
				bad := bytes.Clone(tp.pkg)
				bad[i] ^= mask
				if _, _, err := Parse(bad, pub); !isAny(err, ErrSignature, ErrMalformed) {
					t.Fatalf("%s: byte %d ^ %02x: Parse: %v", tp.name, i, mask, err)
				}
				for _, chunks := range [][]int{nil, repeatChunks(len(bad), 7)} {
					v := NewVerifier(pub, 2048)
					payload, err := feed(t, v, bad, chunks)
					if !isAny(err, ErrSignature, ErrMalformed) {
						t.Fatalf("%s: byte %d ^ %02x: Verifier: %v", tp.name, i, mask, err)
					}
					if len(payload) != 0 {
						t.Fatalf("%s: byte %d ^ %02x: %d payload bytes released", tp.name, i, mask, len(payload))
					}
				}
			}
		}
	}
}

func TestTamperPayload(t *testing.T) {
	pub := testPub(t)
	tp := buildPackage(t, "delta", sampleManifest(FormatDelta), payloadOf(FormatDelta, 1500))
	hl := headerLen(t, tp.pkg)
	for i := hl; i < len(tp.pkg); i += 37 {
		bad := bytes.Clone(tp.pkg)
		bad[i] ^= 0x40
		if _, _, err := Parse(bad, pub); !errors.Is(err, ErrDigest) {
			t.Fatalf("byte %d: Parse: %v", i, err)
		}
		v := NewVerifier(pub, 2048)
		payload, err := feed(t, v, bad, repeatChunks(len(bad), 512))
		if !errors.Is(err, ErrDigest) {
			t.Fatalf("byte %d: Verifier: %v", i, err)
		}
		if len(payload) != len(tp.payload) {
			t.Fatalf("byte %d: %d payload bytes passed before Finish", i, len(payload))
		}
		if err2 := v.Finish(); err2 != err {
			t.Fatalf("Finish is not sticky: %v then %v", err, err2)
		}
	}
}

func TestWrongKey(t *testing.T) {
	other, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range testPackages(t) {
		if _, _, err := Parse(tp.pkg, &other.PublicKey); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: Parse: %v", tp.name, err)
		}
		v := NewVerifier(&other.PublicKey, 2048)
		payload, err := feed(t, v, tp.pkg, repeatChunks(len(tp.pkg), 64))
		if !errors.Is(err, ErrSignature) || len(payload) != 0 {
			t.Errorf("%s: Verifier: %v, %d payload bytes", tp.name, err, len(payload))
		}
		if _, ok := v.Manifest(); ok {
			t.Errorf("%s: Manifest reported with a wrong key", tp.name)
		}
	}
	// Keys that cannot verify anything fail without panicking.
	tp := testPackages(t)[0]
	for _, pub := range []*ecdsa.PublicKey{nil, {}, {Curve: elliptic.P256()}, {Curve: elliptic.P384()}} {
		v := NewVerifier(pub, 0)
		if _, err := feed(t, v, tp.pkg, nil); !errors.Is(err, ErrSignature) {
			t.Errorf("key %+v: %v", pub, err)
		}
	}
}

func TestParseNilKey(t *testing.T) {
	other, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tp := testPackages(t)[2]
	pkg, err := Build(tp.m, tp.payload, other)
	if err != nil {
		t.Fatal(err)
	}
	m, payload, err := Parse(pkg, nil)
	if err != nil || m != tp.m || !bytes.Equal(payload, tp.payload) {
		t.Fatalf("Parse(nil) of a package by another key: %v", err)
	}
	// Without a key the manifest must still be the one the digest covers.
	bad := bytes.Clone(pkg)
	bad[headerLen(t, pkg)-20] ^= 1 // inside the manifest
	if _, _, err := Parse(bad, nil); !errors.Is(err, ErrSignature) {
		t.Fatalf("Parse(nil) of a changed manifest: %v", err)
	}
}

func TestTruncated(t *testing.T) {
	pub := testPub(t)
	tp := buildPackage(t, "full", sampleManifest(FormatFull), payloadOf(FormatFull, 300))
	hl := headerLen(t, tp.pkg)
	for n := range len(tp.pkg) {
		want := ErrDigest
		if n < hl {
			want = ErrMalformed
		}
		_, _, err := Parse(tp.pkg[:n], pub)
		if !errors.Is(err, want) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Parse of %d bytes: %v, want %v and unexpected EOF", n, err, want)
		}
		v := NewVerifier(pub, 2048)
		_, err = feed(t, v, tp.pkg[:n], repeatChunks(n, 100))
		if !errors.Is(err, want) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Verifier of %d bytes: %v, want %v and unexpected EOF", n, err, want)
		}
	}
}

func TestTrailing(t *testing.T) {
	pub := testPub(t)
	tp := testPackages(t)[1]
	bad := append(bytes.Clone(tp.pkg), 0)
	if _, _, err := Parse(bad, pub); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Parse: %v", err)
	}
	for _, chunks := range [][]int{nil, {len(tp.pkg)}, repeatChunks(len(bad), 64), repeatChunks(len(bad), 1)} {
		v := NewVerifier(pub, 2048)
		if _, err := feed(t, v, bad, chunks); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Verifier: %v", err)
		}
	}
}

func TestOversizeEnvelope(t *testing.T) {
	pub := testPub(t)
	tp := buildPackage(t, "delta", sampleManifest(FormatDelta), payloadOf(FormatDelta, 100))
	hl := headerLen(t, tp.pkg)
	for _, max := range []int{1, 100, hl - 1} {
		v := NewVerifier(pub, max)
		payload, err := feed(t, v, tp.pkg, repeatChunks(len(tp.pkg), 7))
		if !errors.Is(err, ErrTooLarge) || len(payload) != 0 {
			t.Fatalf("max %d: %v, %d payload bytes", max, err, len(payload))
		}
	}
	if _, err := feed(t, NewVerifier(pub, hl), tp.pkg, nil); err != nil {
		t.Fatalf("max = header length %d: %v", hl, err)
	}
	// A manifest declared longer than any package has is malformed, whatever
	// the buffer, and is refused before it is buffered.
	bad := bytes.Clone(tp.pkg[:manifestKeyAt+1])
	bad = append(bad, 0x59, 0x10, 0x00) // bstr(4096)
	bad = append(bad, make([]byte, 5000)...)
	if _, _, err := Parse(bad, pub); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Parse: %v", err)
	}
	v := NewVerifier(pub, 1<<20)
	if _, err := v.Write(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Verifier: %v", err)
	}
	if len(v.hdr) > MaxEnvelope {
		t.Fatalf("buffered %d header bytes", len(v.hdr))
	}
	if v.Offset() != 0 {
		t.Fatalf("Offset %d after a refused envelope", v.Offset())
	}
}

func TestEnvelopeSizes(t *testing.T) {
	sizes := map[string]int{}
	for _, tp := range testPackages(t) {
		sizes[tp.name] = headerLen(t, tp.pkg)
		t.Logf("%s: envelope header %d bytes, package %d", tp.name, sizes[tp.name], len(tp.pkg))
	}
	// The worst case is exactly MaxEnvelope.
	m := sampleManifest(FormatPelion)
	m.Sequence = math.MaxUint64
	m.Class = strings.Repeat("c", MaxClassLen)
	m.Version = strings.Repeat("v", MaxVersionLen)
	m.ImageSize, m.PrecursorSize = MaxSize, MaxSize
	worst := buildPackage(t, "worst", m, payloadOf(FormatPelion, 1<<16))
	if hl := headerLen(t, worst.pkg); hl != MaxEnvelope {
		t.Errorf("worst-case envelope header %d bytes, MaxEnvelope %d", hl, MaxEnvelope)
	}
}

package manifest

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The test key in testdata signs the test vectors. It is public: never use
// it for anything but tests.
var testKey = sync.OnceValues(func() (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(filepath.Join("testdata", "testkey.pem"))
	if err != nil {
		return nil, err
	}
	return ParsePrivateKeyPEM(b)
})

func mustTestKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := testKey()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func testPub(tb testing.TB) *ecdsa.PublicKey {
	tb.Helper()
	return &mustTestKey(tb).PublicKey
}

// payloadOf returns n deterministic payload bytes for format f (a delta
// payload starts with its format's magic).
func payloadOf(f Format, n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	switch f {
	case FormatDelta:
		copy(b, payloadMagicDelta)
	case FormatPelion:
		copy(b, payloadMagicPelion)
	}
	return b
}

// sampleManifest returns a manifest for format f; Build fills the payload
// fields.
func sampleManifest(f Format) Manifest {
	m := Manifest{Sequence: 42, Version: "2.4.1", Class: "acme-tracker-nb1", Format: f}
	if f.IsDelta() {
		m.ImageDigest = sha256.Sum256([]byte("new image"))
		m.ImageSize = 196608
		m.PrecursorDigest = sha256.Sum256([]byte("old image"))
		m.PrecursorSize = 195000
	}
	return m
}

type testPackage struct {
	name    string
	m       Manifest // as Build completes it
	payload []byte
	pkg     []byte
}

func buildPackage(tb testing.TB, name string, m Manifest, payload []byte) testPackage {
	tb.Helper()
	pkg, err := Build(m, payload, mustTestKey(tb))
	if err != nil {
		tb.Fatalf("%s: Build: %v", name, err)
	}
	m.PayloadDigest, m.PayloadSize = sha256.Sum256(payload), uint64(len(payload))
	if m.Format == FormatFull && m.ImageSize == 0 {
		m.ImageDigest, m.ImageSize = m.PayloadDigest, m.PayloadSize
	}
	return testPackage{name: name, m: m, payload: payload, pkg: pkg}
}

// testPackages covers each format, small and multi-block payloads, and
// numbers that need every head width.
func testPackages(tb testing.TB) []testPackage {
	tb.Helper()
	big := sampleManifest(FormatDelta)
	big.Sequence = 1<<64 - 1
	big.Class = "c"
	big.Version = "v"
	big.ImageSize, big.PrecursorSize = MaxSize, 1
	return []testPackage{
		buildPackage(tb, "full-1", sampleManifest(FormatFull), payloadOf(FormatFull, 1)),
		buildPackage(tb, "full-3000", sampleManifest(FormatFull), payloadOf(FormatFull, 3000)),
		buildPackage(tb, "delta-777", sampleManifest(FormatDelta), payloadOf(FormatDelta, 777)),
		buildPackage(tb, "pelion-2048", sampleManifest(FormatPelion), payloadOf(FormatPelion, 2048)),
		buildPackage(tb, "delta-extremes", big, payloadOf(FormatDelta, 70000)),
	}
}

// headerLen returns the envelope header length of a valid package.
func headerLen(tb testing.TB, pkg []byte) int {
	tb.Helper()
	l, ok, err := scanHeader(pkg[:min(len(pkg), MaxEnvelope)], MaxEnvelope)
	if err != nil || !ok {
		tb.Fatalf("scanHeader: %v, complete %v", err, ok)
	}
	return l.headerLen
}

// feed writes pkg to v in the given chunk lengths (the rest in one chunk),
// checking that no payload comes before the manifest is verified and that
// the header buffer stays bounded. It returns the payload and the first
// error.
func feed(tb testing.TB, v *Verifier, pkg []byte, chunks []int) ([]byte, error) {
	tb.Helper()
	var out []byte
	for len(pkg) > 0 {
		n := len(pkg)
		if len(chunks) > 0 {
			n = min(chunks[0], n)
			chunks = chunks[1:]
		}
		_, before := v.Manifest()
		p, err := v.Write(pkg[:n])
		if len(v.hdr) > v.max {
			tb.Fatalf("header buffer %d bytes, max %d", len(v.hdr), v.max)
		}
		if err != nil {
			if p != nil {
				tb.Fatalf("Write returned %d payload bytes with error %v", len(p), err)
			}
			return out, err
		}
		if len(p) > 0 {
			if _, ok := v.Manifest(); !ok {
				tb.Fatalf("Write returned %d payload bytes before the manifest was verified", len(p))
			}
			if &p[len(p)-1] != &pkg[n-1] {
				tb.Fatal("payload is not a sub-slice ending the written chunk")
			}
			if before && len(p) != n {
				tb.Fatalf("Write returned %d of %d bytes as payload after the header", len(p), n)
			}
		}
		out = append(out, p...)
		pkg = pkg[n:]
	}
	return out, v.Finish()
}

func repeatChunks(n, size int) []int {
	c := make([]int, n/size+1)
	for i := range c {
		c[i] = size
	}
	return c
}

func isAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

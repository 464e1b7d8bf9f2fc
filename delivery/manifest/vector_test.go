package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fotahub/fota/delivery/delta"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata")

// The test vectors, for vendors to check their parsers against: packages
// signed with testdata/testkey.pem (public key testkey.pub.pem). The delta
// vector's payload is an FDELTA patch from the full vector's image to the
// delta vector's image; both images are in testdata too.
var (
	vectorFullImage  = []byte("FotaHub test image, version 1.0.1\n")
	vectorDeltaImage = []byte("FotaHub test image, version 1.0.2 (patched)\n")
	vectorFull       = Manifest{Sequence: 7, Version: "1.0.1", Class: "fotahub-demo", Format: FormatFull}
	vectorDelta      = Manifest{
		Sequence: 8, Version: "1.0.2", Class: "fotahub-demo", Format: FormatDelta,
		ImageDigest: sha256.Sum256(vectorDeltaImage), ImageSize: uint64(len(vectorDeltaImage)),
		PrecursorDigest: sha256.Sum256(vectorFullImage), PrecursorSize: uint64(len(vectorFullImage)),
	}
)

// hexLines formats b as lower-case hex, 32 bytes a line, as in the docs.
func hexLines(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		n := min(32, len(b))
		sb.WriteString(hex.EncodeToString(b[:n]))
		sb.WriteByte('\n')
		b = b[n:]
	}
	return sb.String()
}

func TestVectors(t *testing.T) {
	key := mustTestKey(t)
	dir := "testdata"
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%v (run go test -run TestVectors -update to make the vectors)", err)
		}
		return b
	}
	var deltaPayload []byte
	if *update {
		p, err := delta.Create(vectorFullImage, vectorDeltaImage)
		if err != nil {
			t.Fatal(err)
		}
		deltaPayload = p
		write("vector-precursor.bin", vectorFullImage)
		write("vector-image.bin", vectorDeltaImage)
	} else {
		// The patch is taken from the stored vector, so that a change in the
		// delta generator does not change the vector.
		stored := read("vector-delta.pkg")
		_, p, err := Parse(stored, nil)
		if err != nil {
			t.Fatal(err)
		}
		deltaPayload = p
		if !bytes.Equal(read("vector-precursor.bin"), vectorFullImage) || !bytes.Equal(read("vector-image.bin"), vectorDeltaImage) {
			t.Fatal("vector images in testdata differ")
		}
	}
	if img, err := delta.Apply(vectorFullImage, deltaPayload); err != nil || !bytes.Equal(img, vectorDeltaImage) {
		t.Fatalf("the delta vector's patch does not make the image: %v", err)
	}

	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "package-format.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		name    string
		m       Manifest
		payload []byte
	}{
		{"vector-full", vectorFull, vectorFullImage},
		{"vector-delta", vectorDelta, deltaPayload},
	} {
		pkg, err := Build(v.m, v.payload, key)
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			write(v.name+".pkg", pkg)
			write(v.name+".hex", []byte(hexLines(pkg)))
		}
		if !bytes.Equal(read(v.name+".pkg"), pkg) {
			t.Errorf("%s.pkg differs from Build's output", v.name)
		}
		if string(read(v.name+".hex")) != hexLines(pkg) {
			t.Errorf("%s.hex differs from the package", v.name)
		}
		m, payload, err := Parse(pkg, testPub(t))
		if err != nil || !bytes.Equal(payload, v.payload) {
			t.Fatalf("%s: Parse: %v", v.name, err)
		}
		if _, err := feed(t, NewVerifier(testPub(t), 0), pkg, repeatChunks(len(pkg), 16)); err != nil {
			t.Fatalf("%s: Verifier: %v", v.name, err)
		}
		t.Logf("%s: %d bytes, envelope header %d: %v", v.name, len(pkg), headerLen(t, pkg), m)
		if !bytes.Contains(docs, []byte(hexLines(pkg))) {
			t.Errorf("docs/package-format.md does not hold the hex of %s:\n%s", v.name, hexLines(pkg))
		}
	}
}

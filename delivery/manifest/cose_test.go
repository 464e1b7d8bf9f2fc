package manifest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/veraison/go-cose"
)

// authOf returns the authentication wrapper of a package.
func authOf(pkg []byte) []byte { return pkg[len(envPrefix):manifestKeyAt] }

// TestCOSEInterop checks the hand-built COSE_Sign1 against an independent
// implementation (go-cose): it verifies our signatures, and we verify its.
func TestCOSEInterop(t *testing.T) {
	key := mustTestKey(t)
	tp := testPackages(t)[2]
	auth := authOf(tp.pkg)
	sd := auth[3 : 3+suitDigestLen]
	coseBytes := auth[3+suitDigestLen+2:] // after the bstr(74) head

	t.Run("go-cose verifies ours", func(t *testing.T) {
		var msg cose.Sign1Message
		if err := msg.UnmarshalCBOR(coseBytes); err != nil {
			t.Fatal(err)
		}
		if msg.Payload != nil {
			t.Fatal("payload is not detached")
		}
		if alg, err := msg.Headers.Protected.Algorithm(); err != nil || alg != cose.AlgorithmES256 {
			t.Fatalf("alg %v, %v", alg, err)
		}
		if len(msg.Headers.Unprotected) != 0 {
			t.Fatalf("unprotected header %v", msg.Headers.Unprotected)
		}
		msg.Payload = sd // the detached payload: the SUIT_Digest
		ver, err := cose.NewVerifier(cose.AlgorithmES256, &key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := msg.Verify(nil, ver); err != nil {
			t.Fatalf("go-cose: %v", err)
		}
		msg.Payload = append(bytes.Clone(sd[:35]), sd[35]^1)
		if err := msg.Verify(nil, ver); err == nil {
			t.Fatal("go-cose verified a changed digest")
		}
	})

	t.Run("we verify go-cose's", func(t *testing.T) {
		signer, err := cose.NewSigner(cose.AlgorithmES256, key)
		if err != nil {
			t.Fatal(err)
		}
		msg := cose.NewSign1Message()
		msg.Headers.Protected.SetAlgorithm(cose.AlgorithmES256)
		msg.Payload = bytes.Clone(sd)
		if err := msg.Sign(rand.Reader, nil, signer); err != nil {
			t.Fatal(err)
		}
		msg.Payload = nil
		theirs, err := msg.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(theirs[:len(theirs)-sigLen], coseBytes[:len(coseBytes)-sigLen]) {
			t.Fatalf("go-cose encodes the COSE_Sign1 differently:\n % X\n % X", theirs, coseBytes)
		}
		pkg := bytes.Clone(tp.pkg)
		copy(authOf(pkg)[authLen-sigLen:], theirs[len(theirs)-sigLen:])
		m, _, err := Parse(pkg, &key.PublicKey)
		if err != nil || m != tp.m {
			t.Fatalf("Parse with go-cose's signature: %v", err)
		}
		other, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := Parse(pkg, &other.PublicKey); !errors.Is(err, ErrSignature) {
			t.Fatalf("wrong key: %v", err)
		}
	})
}

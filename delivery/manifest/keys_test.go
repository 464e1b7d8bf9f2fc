package manifest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func TestKeyPEM(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := MarshalPrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivateKeyPEM(priv)
	if err != nil || !back.Equal(key) {
		t.Fatalf("private key round trip: %v", err)
	}
	pub, err := MarshalPublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubBack, err := ParsePublicKeyPEM(pub)
	if err != nil || !pubBack.Equal(&key.PublicKey) {
		t.Fatalf("public key round trip: %v", err)
	}
	// A package signed with the key verifies with the parsed public key.
	tp := testPackages(t)[0]
	pkg, err := Build(tp.m, tp.payload, back)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Parse(pkg, pubBack); err != nil {
		t.Fatal(err)
	}
}

func TestKeyPEMFiles(t *testing.T) {
	// testdata/testkey.pem was written by openssl genpkey (PKCS #8), and
	// testkey.pub.pem by openssl pkey -pubout.
	priv, err := os.ReadFile(filepath.Join("testdata", "testkey.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParsePrivateKeyPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(filepath.Join("testdata", "testkey.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKeyPEM(pubPEM)
	if err != nil || !pub.Equal(&key.PublicKey) {
		t.Fatalf("testkey.pub.pem: %v", err)
	}
	again, err := MarshalPublicKeyPEM(pub)
	if err != nil || string(again) != string(pubPEM) {
		t.Fatalf("MarshalPublicKeyPEM differs from openssl's: %v\n%s", err, again)
	}
	// SEC 1 with an EC PARAMETERS block first, as openssl ecparam -genkey writes.
	sec1, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	both := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...)
	if k, err := ParsePrivateKeyPEM(both); err != nil || !k.Equal(key) {
		t.Fatalf("SEC 1 key: %v", err)
	}
}

func TestKeyPEMRejects(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der := func(k any) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pubDER := func(k any) []byte {
		b, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	block := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	for name, in := range map[string][]byte{
		"empty":       nil,
		"not PEM":     []byte("hello"),
		"P-384":       block("PRIVATE KEY", der(p384)),
		"Ed25519":     block("PRIVATE KEY", der(edKey)),
		"garbage DER": block("PRIVATE KEY", []byte{1, 2, 3}),
		"public only": block("PUBLIC KEY", pubDER(&p384.PublicKey)),
	} {
		if _, err := ParsePrivateKeyPEM(in); err == nil {
			t.Errorf("ParsePrivateKeyPEM(%s) succeeded", name)
		}
	}
	for name, in := range map[string][]byte{
		"empty":       nil,
		"P-384":       block("PUBLIC KEY", pubDER(&p384.PublicKey)),
		"Ed25519":     block("PUBLIC KEY", pubDER(edKey.Public())),
		"garbage DER": block("PUBLIC KEY", []byte{1, 2, 3}),
		"private":     block("PRIVATE KEY", der(p384)),
	} {
		if _, err := ParsePublicKeyPEM(in); err == nil {
			t.Errorf("ParsePublicKeyPEM(%s) succeeded", name)
		}
	}
	if _, err := MarshalPublicKeyPEM(&p384.PublicKey); err == nil {
		t.Error("MarshalPublicKeyPEM(P-384) succeeded")
	}
	if _, err := MarshalPrivateKeyPEM(p384); err == nil {
		t.Error("MarshalPrivateKeyPEM(P-384) succeeded")
	}
	if _, err := MarshalPrivateKeyPEM(nil); err == nil {
		t.Error("MarshalPrivateKeyPEM(nil) succeeded")
	}
}

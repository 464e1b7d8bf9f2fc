package firmware

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/fotahub/fota/delivery/manifest"
)

// KeyFile is the default name of the signing key file in fotad's data
// directory.
const KeyFile = "signing-key.pem"

// maxKeyFile bounds what LoadKey reads: a PEM key is a few hundred bytes.
const maxKeyFile = 64 << 10

// KeyFingerprint identifies a public key: "sha256:" and the hex SHA-256 of
// its PKIX DER encoding, which
//
//	openssl pkey -pubin -in key.pub.pem -outform DER | sha256sum
//
// prints too. It is empty for a key that is not on P-256.
func KeyFingerprint(pub *ecdsa.PublicKey) string {
	if pub == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// LoadKey reads a P-256 private key from a PEM file (PKCS #8 or SEC 1). The
// file must be a regular file that neither group nor others can access: a
// key file with looser permissions is refused, not fixed, since the key
// may have leaked. Errors name the file, never its content.
func LoadKey(path string) (*ecdsa.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("load signing key: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("load signing key: %s has mode %04o, open to group or others; "+
			"if the key may have leaked make a new one (fotactl key gen), else chmod 600 it", path, perm)
	}
	if fi.Size() > maxKeyFile {
		return nil, fmt.Errorf("load signing key: %s is %d bytes, too large for a key", path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	key, err := manifest.ParsePrivateKeyPEM(b)
	clear(b)
	if err != nil {
		// manifest's parse errors describe the structure, not the bytes.
		return nil, fmt.Errorf("load signing key %s: %w", path, err)
	}
	return key, nil
}

// LoadOrCreateKey loads the key at path or, when the file does not exist,
// makes a new key and writes it there (directory 0700, file 0600), and
// reports created. Creation is atomic: a key that appears meanwhile wins.
func LoadOrCreateKey(path string) (key *ecdsa.PrivateKey, created bool, err error) {
	key, err = LoadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if key, err = manifest.GenerateKey(); err != nil {
		return nil, false, fmt.Errorf("create signing key: %w", err)
	}
	if err := WriteKey(path, key, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			key, err = LoadKey(path)
			return key, false, err
		}
		return nil, false, err
	}
	return key, true, nil
}

// WriteKey writes key as a PKCS #8 PEM file with mode 0600, creating the
// directory (0700) if needed. It fails with an error wrapping fs.ErrExist
// when the file exists, unless overwrite. The file is written under a
// temporary name, synced and then linked or renamed into place, so a crash
// never leaves a partial key.
func WriteKey(path string, key *ecdsa.PrivateKey, overwrite bool) error {
	pemBytes, err := manifest.MarshalPrivateKeyPEM(key)
	if err != nil {
		return fmt.Errorf("write signing key: %w", err)
	}
	defer clear(pemBytes)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write signing key: %w", err)
	}
	if !overwrite {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("write signing key: %s: %w", path, fs.ErrExist)
		}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(pemBytes)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write signing key: %w", err)
	}
	if overwrite {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path) // fails if the file appeared meanwhile
	}
	if err != nil {
		return fmt.Errorf("write signing key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

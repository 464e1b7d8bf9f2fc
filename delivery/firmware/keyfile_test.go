package firmware_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, firmware.KeyFile)
	key, created, err := firmware.LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateKey: created %t, %v", created, err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	again, created, err := firmware.LoadOrCreateKey(path)
	if err != nil || created || !again.Equal(key) {
		t.Fatalf("second LoadOrCreateKey: created %t, same key %t, %v", created, again != nil && again.Equal(key), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("data directory holds %d entries, want only the key", len(entries))
	}
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), firmware.KeyFile)
	const n = 8
	fps := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key, _, err := firmware.LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			fps[i] = firmware.KeyFingerprint(&key.PublicKey)
		})
	}
	wg.Wait()
	for i := range fps {
		if fps[i] != fps[0] {
			t.Fatalf("callers got different keys: %v", fps)
		}
	}
}

func TestLoadKeyRefuses(t *testing.T) {
	dir := t.TempDir()
	key := newKey(t)
	pemBytes, err := manifest.MarshalPrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, tc := range map[string]struct {
		path string
		want string
	}{
		"readable by others": {write("open.pem", pemBytes, 0o644), "mode 0644"},
		"not a key":          {write("junk.pem", []byte("hello"), 0o600), "no PRIVATE KEY"},
		"a directory":        {dir, "not a regular file"},
		"missing":            {filepath.Join(dir, "none.pem"), "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := firmware.LoadKey(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadKey = %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----") || strings.Contains(err.Error(), string(pemBytes[40:80])) {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
	// A missing file is fs.ErrNotExist, which LoadOrCreateKey relies on.
	if _, err := firmware.LoadKey(filepath.Join(dir, "none.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadKey(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestWriteKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "k.pem")
	first, second := newKey(t), newKey(t)
	if err := firmware.WriteKey(path, first, false); err != nil {
		t.Fatal(err)
	}
	if err := firmware.WriteKey(path, second, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("WriteKey over a key = %v, want fs.ErrExist", err)
	}
	if got, err := firmware.LoadKey(path); err != nil || !got.Equal(first) {
		t.Fatalf("the refused write changed the key (%v)", err)
	}
	if err := firmware.WriteKey(path, second, true); err != nil {
		t.Fatal(err)
	}
	got, err := firmware.LoadKey(path)
	if err != nil || !got.Equal(second) {
		t.Fatalf("overwrite did not replace the key (%v)", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("overwritten key has mode %v", fi.Mode().Perm())
	}
}

func TestKeyFingerprint(t *testing.T) {
	key := newKey(t)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	if got, want := firmware.KeyFingerprint(&key.PublicKey), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("KeyFingerprint = %s, want %s", got, want)
	}
	if firmware.KeyFingerprint(nil) != "" {
		t.Error("KeyFingerprint(nil) is not empty")
	}
}

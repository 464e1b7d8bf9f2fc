package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/delivery/delta"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
)

const corpus = "../../delivery/delta/testdata/firmware/"

func readCorpus(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(corpus + name + ".bin")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// raw calls the admin API with a raw body and returns the status and body.
func (s *testServer) raw(method, path string, body []byte, accept string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.apiURL()+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.d.token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestFirmwareSurvivesRestart: the signing key made at first start, the
// images and the packages made from them are all there after a restart,
// and packages verify with the key the API gives out.
func TestFirmwareSurvivesRestart(t *testing.T) {
	s := startServer(t, nil)
	keyPath := filepath.Join(s.cfg.DataDir, firmware.KeyFile)
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatalf("no signing key made at first start: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("signing key has mode %v, want 0600", fi.Mode().Perm())
	}

	v1, v2 := readCorpus(t, "v1"), readCorpus(t, "v2")
	for _, up := range []struct {
		data    []byte
		version string
	}{{v1, "1.0.0"}, {v2, "1.0.1"}} {
		if code, body := s.raw("POST", "/api/v1/images?version="+up.version+"&class=sensor-a", up.data, ""); code != http.StatusCreated {
			t.Fatalf("upload %s: HTTP %d %s", up.version, code, body)
		}
	}
	sum := sha256.Sum256(v1)
	d1 := hex.EncodeToString(sum[:])
	var first api.PackageView
	if code := s.api("POST", "/api/v1/packages", api.PackageRequest{Image: "1.0.1", Installed: d1}, &first); code != http.StatusOK || first.Format != "delta" {
		t.Fatalf("make package: HTTP %d, %+v", code, first)
	}
	_, pemBefore := s.raw("GET", "/api/v1/signing-key", nil, "")

	s.restart()

	_, pemAfter := s.raw("GET", "/api/v1/signing-key", nil, "")
	if !bytes.Equal(pemBefore, pemAfter) {
		t.Fatal("the signing key changed across a restart")
	}
	pub, err := manifest.ParsePublicKeyPEM(pemAfter)
	if err != nil {
		t.Fatal(err)
	}
	var list api.ImageList
	if code := s.api("GET", "/api/v1/images", nil, &list); code != http.StatusOK || len(list.Images) != 2 || list.Images[1].Sequence != 2 {
		t.Fatalf("images after restart: HTTP %d, %+v", code, list)
	}
	if code, body := s.raw("GET", "/api/v1/images/1.0.1?download=1", nil, ""); code != http.StatusOK || !bytes.Equal(body, v2) {
		t.Fatalf("image bytes after restart: HTTP %d, %d bytes", code, len(body))
	}
	var again api.PackageView
	if code := s.api("POST", "/api/v1/packages", api.PackageRequest{Image: "1.0.1", Installed: d1}, &again); code != http.StatusOK || again.ID != first.ID {
		t.Fatalf("package after restart: HTTP %d, %s, want %s", code, again.ID, first.ID)
	}
	if !again.Created.Equal(first.Created) {
		t.Errorf("the package was made again (created %v, first %v)", again.Created, first.Created)
	}
	code, pkg := s.raw("GET", "/api/v1/packages/"+first.ID+"?download=1", nil, "")
	if code != http.StatusOK {
		t.Fatalf("download package: HTTP %d", code)
	}
	m, payload, err := manifest.Parse(pkg, pub)
	if err != nil {
		t.Fatalf("package does not verify with the served key: %v", err)
	}
	if img, err := delta.Apply(v1, payload); err != nil || !bytes.Equal(img, v2) || m.Sequence != 2 {
		t.Fatalf("delta after restart: sequence %d, %v", m.Sequence, err)
	}
}

// lockedBuffer is a log sink that may be read while fotad writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestSigningKeyStartup: fotad logs the key's path and fingerprint, never
// the key; a configured key must exist and be private.
func TestSigningKeyStartup(t *testing.T) {
	logs := &lockedBuffer{}
	cfg := defaultFileConfig()
	cfg.DataDir = t.TempDir()
	cfg.API.Listen = "127.0.0.1:0"
	cfg.CoAP.CoAPSListen, cfg.CoAP.CoAPListen = "127.0.0.1:0", ""
	d, err := start(cfg, zerolog.New(logs), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A Shutdown before the CoAP server's Serve has begun races with it
	// (coap.Server's WaitGroup); wait for Serve's first log line.
	waitFor(t, "coap listening", func() bool { return strings.Contains(logs.String(), "coap listening") })
	if err := d.shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(cfg.DataDir, firmware.KeyFile)
	key, err := firmware.LoadKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	var line struct{ Path, Fingerprint, Message string }
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "signing key") {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	if line.Path != keyPath || line.Fingerprint != firmware.KeyFingerprint(&key.PublicKey) || !strings.Contains(line.Message, "created") {
		t.Errorf("start-up log line %+v", line)
	}
	scalar, _ := key.Bytes()
	for _, form := range []string{"PRIVATE KEY", hex.EncodeToString(scalar)} {
		if strings.Contains(logs.String(), form) {
			t.Fatal("the private key is in the log")
		}
	}

	t.Run("configured key missing", func(t *testing.T) {
		c := cfg
		c.DataDir = t.TempDir()
		c.Delivery.SigningKey = filepath.Join(t.TempDir(), "mounted", "key.pem")
		if d, err := start(c, zerolog.Nop(), nil); err == nil {
			_ = d.shutdown(t.Context())
			t.Fatal("started without the configured key")
		} else if !strings.Contains(err.Error(), c.Delivery.SigningKey) {
			t.Errorf("error %q does not name the key file", err)
		}
		if _, err := os.Stat(c.Delivery.SigningKey); err == nil {
			t.Error("a key was made at the configured path")
		}
	})
	t.Run("configured key readable by others", func(t *testing.T) {
		c := cfg
		c.DataDir = t.TempDir()
		c.Delivery.SigningKey = filepath.Join(t.TempDir(), "key.pem")
		b, _ := os.ReadFile(keyPath)
		if err := os.WriteFile(c.Delivery.SigningKey, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(c.Delivery.SigningKey, 0o644); err != nil {
			t.Fatal(err)
		}
		if d, err := start(c, zerolog.Nop(), nil); err == nil {
			_ = d.shutdown(t.Context())
			t.Fatal("started with a key others can read")
		}
	})
}

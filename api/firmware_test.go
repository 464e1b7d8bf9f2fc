package api

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/delta"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/store/storetest"
)

const corpus = "../delivery/delta/testdata/firmware/"

func readCorpus(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(corpus + name + ".bin")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type firmwareFixture struct {
	*fixture
	key *ecdsa.PrivateKey
	svc *firmware.Service
}

// newFirmwareFixture is a fixture whose server has images and packages,
// from a firmware.Service on an in-memory store.
func newFirmwareFixture(t testing.TB) *firmwareFixture {
	t.Helper()
	key, err := manifest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := firmware.New(firmware.Config{Store: storetest.NewFirmwareStore(), Key: key,
		Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, devices: newMemDevices(), regs: memRegs{}, logs: &syncBuffer{}}
	srv, err := New(Config{
		Devices:       f.devices,
		Registrations: f.regs,
		Transport:     statsFunc(func() coap.Stats { return f.stats }),
		Images:        svc,
		Packages:      svc,
		Classes:       svc,
		Token:         testToken,
		Logger:        zerolog.New(f.logs).Level(zerolog.DebugLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.now = func() time.Time { return testNow }
	f.srv, f.handler = srv, srv.Handler()
	return &firmwareFixture{fixture: f, key: key, svc: svc}
}

// raw sends a request with a raw body and extra headers; contentLength -1
// sends the body without a length, as a chunked upload does.
func (f *fixture) raw(method, path string, body []byte, contentLength int64, header map[string]string) response {
	f.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.ContentLength = contentLength
	req.Header.Set("Authorization", "Bearer "+testToken)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

func (f *fixture) upload(data []byte, version, class string) response {
	f.t.Helper()
	return f.raw("POST", "/api/v1/images?version="+version+"&class="+class, data, int64(len(data)), nil)
}

func TestFirmwareDisabled(t *testing.T) {
	f := newFixture(t)
	digest := strings.Repeat("ab", 32)
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/api/v1/images?version=1&class=c", "image", "firmware images not enabled"},
		{"GET", "/api/v1/images", "", "firmware images not enabled"},
		{"GET", "/api/v1/images/" + digest, "", "firmware images not enabled"},
		{"DELETE", "/api/v1/images/" + digest, "", "firmware images not enabled"},
		{"GET", "/api/v1/signing-key", "", "firmware packages not enabled"},
		{"POST", "/api/v1/packages", `{"image":"1"}`, "firmware packages not enabled"},
		{"GET", "/api/v1/packages/" + digest, "", "firmware packages not enabled"},
	} {
		r := f.do(c.method, c.path, c.body)
		f.mustStatus(r, http.StatusServiceUnavailable)
		if msg := r.errorMessage(t); msg != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, msg, c.want)
		}
		f.mustStatus(f.doAuth(c.method, c.path, c.body, ""), http.StatusUnauthorized)
	}
}

func TestImageRoutes(t *testing.T) {
	f := newFirmwareFixture(t)
	v1, v2 := readCorpus(t, "v1"), readCorpus(t, "v2")
	d1 := sha256.Sum256(v1)

	r := f.upload(v1, "1.0.0", "sensor-a")
	f.mustStatus(r, http.StatusCreated)
	img := decode[ImageView](t, r.body)
	want := ImageView{Digest: manifest.Digest(d1).String(), Size: int64(len(v1)), Version: "1.0.0", Class: "sensor-a", Format: "native", Sequence: 1, Added: testNow}
	if img != want {
		t.Errorf("created %+v\nwant %+v", img, want)
	}
	raw := decode[map[string]any](t, r.body)
	for _, k := range []string{"digest", "size", "version", "class", "format", "added"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("image JSON lacks %q: %s", k, r.body)
		}
	}

	r = f.upload(v1, "1.0.0", "sensor-a")
	f.mustStatus(r, http.StatusOK)
	if decode[ImageView](t, r.body) != want {
		t.Errorf("adding again: %s", r.body)
	}
	f.mustStatus(f.upload(v1, "1.0.1", "sensor-a"), http.StatusConflict)
	f.mustStatus(f.upload(v2, "1.0.0", "sensor-a"), http.StatusConflict)
	f.mustStatus(f.upload(v2, "1.0.1", "sensor-a"), http.StatusCreated)

	for name, r := range map[string]response{
		"no version":       f.raw("POST", "/api/v1/images?class=c", v1, int64(len(v1)), nil),
		"no class":         f.raw("POST", "/api/v1/images?version=1", v1, int64(len(v1)), nil),
		"empty image":      f.upload(nil, "2", "c"),
		"digest version":   f.upload([]byte("x"), strings.Repeat("0", 64), "c"),
		"control in class": f.upload([]byte("x"), "2", "c%0A"),
	} {
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400 (%s)", name, r.status, r.body)
		}
	}
	big := make([]byte, MaxImageBytes+1)
	for name, n := range map[string]int64{"declared length": int64(len(big)), "chunked": -1} {
		r := f.raw("POST", "/api/v1/images?version=big&class=c", big, n, nil)
		if r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: status %d for an image over the limit, want 413", name, r.status)
		}
	}

	r = f.do("GET", "/api/v1/images", "")
	f.mustStatus(r, http.StatusOK)
	list := decode[ImageList](t, r.body)
	if len(list.Images) != 2 || list.Images[0].Version != "1.0.0" || list.Images[1].Sequence != 2 {
		t.Errorf("list: %s", r.body)
	}

	for _, path := range []string{"/api/v1/images/" + want.Digest, "/api/v1/images/1.0.0", "/api/v1/images/1.0.0?class=sensor-a"} {
		r = f.do("GET", path, "")
		f.mustStatus(r, http.StatusOK)
		if decode[ImageView](t, r.body) != want {
			t.Errorf("GET %s: %s", path, r.body)
		}
	}
	f.mustStatus(f.do("GET", "/api/v1/images/9.9.9", ""), http.StatusNotFound)
	f.mustStatus(f.do("GET", "/api/v1/images/1.0.0?class=gateway", ""), http.StatusNotFound)

	r = f.do("GET", "/api/v1/images/1.0.0?download=1", "")
	f.mustStatus(r, http.StatusOK)
	if !bytes.Equal(r.body, v1) || r.header.Get("Content-Type") != "application/octet-stream" ||
		r.header.Get("ETag") != `"`+want.Digest+`"` || !strings.Contains(r.header.Get("Content-Disposition"), "sensor-a-1.0.0.bin") {
		t.Errorf("download: %d bytes, headers %v", len(r.body), r.header)
	}
	r = f.raw("GET", "/api/v1/images/1.0.0?download=1", nil, 0, map[string]string{"Range": "bytes=0-15"})
	f.mustStatus(r, http.StatusPartialContent)
	if !bytes.Equal(r.body, v1[:16]) {
		t.Errorf("range download: %x", r.body)
	}

	f.mustStatus(f.do("DELETE", "/api/v1/images/1.0.0", ""), http.StatusBadRequest) // a digest only
	f.mustStatus(f.do("DELETE", "/api/v1/images/"+want.Digest, ""), http.StatusNoContent)
	r = f.do("DELETE", "/api/v1/images/"+want.Digest, "")
	f.mustStatus(r, http.StatusNotFound)
	if msg := r.errorMessage(t); !strings.Contains(msg, "not found") {
		t.Errorf("delete of a removed image: %q", msg)
	}
	f.mustStatus(f.do("GET", "/api/v1/images/"+want.Digest, ""), http.StatusNotFound)
}

func TestPackageRoutes(t *testing.T) {
	f := newFirmwareFixture(t)
	v1, v3 := readCorpus(t, "v1"), readCorpus(t, "v3")
	f.mustStatus(f.upload(v1, "1.0.0", "sensor-a"), http.StatusCreated)
	f.mustStatus(f.upload(v3, "1.1.0", "sensor-a"), http.StatusCreated)
	f.mustStatus(f.upload([]byte("gateway"), "1.0.0", "gateway"), http.StatusCreated)
	d1 := manifest.Digest(sha256.Sum256(v1)).String()

	// The signing key, as devices get it.
	r := f.do("GET", "/api/v1/signing-key", "")
	f.mustStatus(r, http.StatusOK)
	pub, err := manifest.ParsePublicKeyPEM(r.body)
	if err != nil || !pub.Equal(&f.key.PublicKey) || r.header.Get("Content-Type") != "application/x-pem-file" {
		t.Fatalf("signing key: %v, %s", err, r.body)
	}
	r = f.raw("GET", "/api/v1/signing-key", nil, 0, map[string]string{"Accept": "application/json"})
	f.mustStatus(r, http.StatusOK)
	kv := decode[SigningKeyView](t, r.body)
	if kv.Algorithm != "ES256" || kv.Fingerprint != firmware.KeyFingerprint(&f.key.PublicKey) || !strings.Contains(kv.PublicKeyPEM, "PUBLIC KEY") {
		t.Errorf("signing key JSON: %s", r.body)
	}

	r = f.do("POST", "/api/v1/packages", `{"image":"1.1.0","installed":"`+d1+`","class":"sensor-a"}`)
	f.mustStatus(r, http.StatusOK)
	p := decode[PackageView](t, r.body)
	if p.Format != "delta" || p.PrecursorDigest != d1 || p.Sequence != 2 || p.Size >= p.FullSize || p.DeltaSize != p.Size || p.Reason != "" {
		t.Fatalf("delta package: %s", r.body)
	}
	r = f.do("GET", "/api/v1/packages/"+p.ID, "")
	f.mustStatus(r, http.StatusOK)
	if got := decode[PackageView](t, r.body); got.ID != p.ID || got.Format != "delta" || got.FullSize != 0 || got.Reason != "" {
		t.Errorf("GET package: %s", r.body)
	}
	r = f.do("GET", "/api/v1/packages/"+p.ID+"?download=1", "")
	f.mustStatus(r, http.StatusOK)
	m, payload, err := manifest.Parse(r.body, pub)
	if err != nil || m.Format != manifest.FormatDelta || manifest.Digest(sha256.Sum256(r.body)).String() != p.ID {
		t.Fatalf("downloaded package: %v", err)
	}
	if img, err := delta.Apply(v1, payload); err != nil || !bytes.Equal(img, v3) {
		t.Fatalf("downloaded delta does not rebuild v3: %v", err)
	}

	r = f.do("POST", "/api/v1/packages", `{"image":"1.1.0","installed":"`+d1+`","full":true}`)
	f.mustStatus(r, http.StatusOK)
	if full := decode[PackageView](t, r.body); full.Format != "full" || full.Reason != firmware.ReasonFullRequested ||
		full.Size != full.FullSize || full.PrecursorDigest != "" || full.PayloadSize != uint64(len(v3)) {
		t.Errorf("full package: %s", r.body)
	}
	if _, ok := decode[map[string]any](t, r.body)["precursor_digest"]; ok {
		t.Errorf("a full package has a precursor: %s", r.body)
	}

	for _, c := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"image":"1.0.0"}`, http.StatusBadRequest, "give the class"},
		{`{"image":"1.0.0","installed":"` + d1 + `","class":"sensor-a"}`, http.StatusConflict, "already"},
		{`{"image":"1.0.0","class":"gateway","installed":"` + d1 + `"}`, http.StatusConflict, "class"},
		{`{"image":"7.7.7"}`, http.StatusNotFound, "not found"},
		{`{"image":"1.1.0","installed":"v1"}`, http.StatusBadRequest, "installed"},
		{`{"installed":"` + d1 + `"}`, http.StatusBadRequest, "image"},
		{`{"image":"1.1.0","bogus":1}`, http.StatusBadRequest, "unknown field"},
		{`[]`, http.StatusBadRequest, "JSON object"},
	} {
		r := f.do("POST", "/api/v1/packages", c.body)
		if r.status != c.status || !strings.Contains(r.errorMessage(t), c.want) {
			t.Errorf("POST %s: %d %s, want %d with %q", c.body, r.status, r.body, c.status, c.want)
		}
	}
	f.mustStatus(f.do("GET", "/api/v1/packages/"+strings.Repeat("0", 64), ""), http.StatusNotFound)
	f.mustStatus(f.do("GET", "/api/v1/packages/nope", ""), http.StatusBadRequest)
}

// TestSigningKeyNeverInOutput looks for the private key in every answer
// and log line of a session that uses it.
func TestSigningKeyNeverInOutput(t *testing.T) {
	f := newFirmwareFixture(t)
	v1, v2 := readCorpus(t, "v1"), readCorpus(t, "v2")
	var out bytes.Buffer
	keep := func(r response) { out.Write(r.body); out.WriteString(r.header.Get("ETag")) }
	keep(f.upload(v1, "1", "c"))
	keep(f.upload(v2, "2", "c"))
	keep(f.do("GET", "/api/v1/signing-key", ""))
	keep(f.raw("GET", "/api/v1/signing-key", nil, 0, map[string]string{"Accept": "application/json"}))
	r := f.do("POST", "/api/v1/packages", `{"image":"2","installed":"`+manifest.Digest(sha256.Sum256(v1)).String()+`"}`)
	keep(r)
	keep(f.do("GET", "/api/v1/packages/"+decode[PackageView](t, r.body).ID+"?download=1", ""))
	keep(f.do("GET", "/api/v1/images", ""))
	out.WriteString(f.logs.String())

	scalar, err := f.key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := manifest.MarshalPrivateKeyPEM(f.key)
	if err != nil {
		t.Fatal(err)
	}
	pemBody := strings.Join(strings.Split(strings.TrimSpace(string(privPEM)), "\n")[1:3], "")
	for _, form := range []string{"PRIVATE KEY", pemBody[:40], base64.StdEncoding.EncodeToString(scalar), hex.EncodeToString(scalar), string(scalar)} {
		if bytes.Contains(out.Bytes(), []byte(form)) {
			t.Fatalf("the private key appears in the API's output (as %q)", form[:min(len(form), 12)])
		}
	}
}

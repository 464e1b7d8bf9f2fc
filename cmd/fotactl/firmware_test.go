package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/store/storetest"
)

// newFirmwareEnv starts an API server whose images and packages come from
// a firmware.Service on an in-memory store.
func newFirmwareEnv(t *testing.T) (*env, *firmware.Service) {
	t.Helper()
	key, err := manifest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := firmware.New(firmware.Config{Store: storetest.NewFirmwareStore(), Key: key,
		Now: func() time.Time { return testNow.Add(-time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, devices: &memDevices{devices: map[string]lwm2m.Device{}}, regs: memRegs{}}
	srv, err := api.New(api.Config{Devices: e.devices, Registrations: e.regs, Transport: noStats{},
		Images: svc, Packages: svc, Classes: svc, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e.url = ts.URL
	return e, svc
}

func digestOf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestImageCommands(t *testing.T) {
	e, _ := newFirmwareEnv(t)
	v1, v2 := corpus+"v1.bin", corpus+"v2.bin"
	d1 := digestOf(t, v1)

	r := e.run("image", "add", v1, "--version", "1.0.0", "--class", "sensor-a").ok(t)
	want := "image 1.0.0 (class sensor-a, native) added: 19292 bytes, sequence 1, sha256 " + d1
	if strings.TrimSpace(r.stdout) != want {
		t.Errorf("add printed %q\nwant %q", r.stdout, want)
	}
	r = e.run("image", "add", "--version", "1.0.0", "--class", "sensor-a", v1).ok(t)
	if !strings.Contains(r.stdout, "already stored") {
		t.Errorf("adding again printed %q", r.stdout)
	}
	r = e.run("image", "add", v2, "--version", "1.0.1", "--class", "sensor-a", "--json").ok(t)
	var img api.ImageView
	if err := json.Unmarshal([]byte(r.stdout), &img); err != nil || img.Sequence != 2 || img.Version != "1.0.1" {
		t.Fatalf("add --json: %v\n%s", err, r.stdout)
	}
	r = e.run("image", "add", v2, "--version", "1.0.2", "--class", "sensor-a")
	if r.code != exitFailure || !strings.Contains(r.stderr, "HTTP 409") {
		t.Errorf("same bytes, other version: exit %d, stderr %q", r.code, r.stderr)
	}

	r = e.run("image", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "CLASS") || !strings.Contains(lines[0], "FORMAT") ||
		!strings.Contains(lines[1], "1.0.0") || !strings.Contains(lines[1], "native") ||
		!strings.Contains(lines[1], d1) || !strings.Contains(lines[1], "1m ago") || !strings.Contains(lines[2], "1.0.1") {
		t.Errorf("list:\n%s", r.stdout)
	}
	r = e.run("image", "list", "--json").ok(t)
	var list api.ImageList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Images) != 2 {
		t.Fatalf("list --json: %v\n%s", err, r.stdout)
	}

	for _, ref := range []string{"1.0.0", d1} {
		r = e.run("image", "show", ref).ok(t)
		for _, s := range []string{"Version:", "1.0.0", "Class:", "sensor-a", "Format:", "native (delivered in fotad's signed packages)",
			"Sequence:", "1", "19292 bytes", d1} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("show %s lacks %q:\n%s", ref, s, r.stdout)
			}
		}
	}
	r = e.run("image", "show", "1.0.0", "--class", "gateway")
	if r.code != exitFailure || !strings.Contains(r.stderr, "HTTP 404") {
		t.Errorf("show in another class: exit %d, stderr %q", r.code, r.stderr)
	}

	e.run("image", "rm", d1).ok(t)
	r = e.run("image", "rm", d1)
	if r.code != exitFailure || !strings.Contains(r.stderr, "not found") {
		t.Errorf("rm twice: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("image", "add", filepath.Join(t.TempDir(), "missing.bin"), "--version", "1", "--class", "c")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestPackageMake(t *testing.T) {
	e, svc := newFirmwareEnv(t)
	v1, v3 := corpus+"v1.bin", corpus+"v3.bin"
	d1 := digestOf(t, v1)
	e.run("image", "add", v1, "--version", "1.0.0", "--class", "sensor-a").ok(t)
	e.run("image", "add", v3, "--version", "1.1.0", "--class", "sensor-a").ok(t)

	r := e.run("package", "make", "--image", "1.1.0", "--installed", d1).ok(t)
	for _, s := range []string{"Format:", "delta from " + d1, "% of the", "full package: saves", "Sequence:", "2", "1.1.0 (class sensor-a)",
		"Signed by:", firmware.KeyFingerprint(svc.PublicKey())} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("package make lacks %q:\n%s", s, r.stdout)
		}
	}
	r = e.run("package", "make", "--image", "1.1.0", "--installed", d1, "--json").ok(t)
	var p api.PackageView
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p.Format != "delta" || p.Size >= p.FullSize {
		t.Fatalf("package make --json: %v\n%s", err, r.stdout)
	}
	r = e.run("package", "show", p.ID).ok(t)
	if !strings.Contains(r.stdout, p.ID) || !strings.Contains(r.stdout, "delta from") || strings.Contains(r.stdout, "saves") {
		t.Errorf("package show:\n%s", r.stdout)
	}

	r = e.run("package", "make", "--image", "1.1.0", "--installed", d1, "--full").ok(t)
	if !strings.Contains(r.stdout, "full ("+firmware.ReasonFullRequested+")") || strings.Contains(r.stdout, "saves") {
		t.Errorf("package make --full:\n%s", r.stdout)
	}
	r = e.run("package", "make", "--image", "1.1.0").ok(t)
	if !strings.Contains(r.stdout, "full ("+firmware.ReasonNoInstalled+")") {
		t.Errorf("package make without --installed:\n%s", r.stdout)
	}
	r = e.run("package", "make", "--image", "1.0.0", "--installed", digestOf(t, v3))
	if r.code != exitFailure || !strings.Contains(r.stderr, "HTTP 409") {
		t.Errorf("older image: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestKeyCommands(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data", firmware.KeyFile)
	r := runCLI(t, nil, "--data", filepath.Join(dir, "data"), "key", "gen").ok(t)
	pub, err := manifest.ParsePublicKeyPEM([]byte(r.stdout))
	if err != nil {
		t.Fatalf("key gen printed no public key: %v\n%s", err, r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, "PRIVATE") {
		t.Fatalf("key gen printed the private key:\n%s%s", r.stdout, r.stderr)
	}
	key, err := firmware.LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(pub) || !strings.Contains(r.stderr, firmware.KeyFingerprint(pub)) || !strings.Contains(r.stderr, path) {
		t.Errorf("key gen: printed key differs from the file, or stderr %q lacks path and fingerprint", r.stderr)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode().Perm())
	}

	r = runCLI(t, nil, "--data", filepath.Join(dir, "data"), "key", "gen")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--force") {
		t.Errorf("key gen over a key: exit %d, stderr %q", r.code, r.stderr)
	}
	if again, _ := firmware.LoadKey(path); !again.Equal(key) {
		t.Error("the refused key gen replaced the key")
	}
	out := filepath.Join(dir, "other.pem")
	runCLI(t, nil, "key", "gen", "--out", out).ok(t)
	runCLI(t, nil, "key", "gen", "--out", out, "--force").ok(t)
	if _, err := firmware.LoadKey(out); err != nil {
		t.Error(err)
	}

	e, svc := newFirmwareEnv(t)
	r = e.run("key", "show").ok(t)
	if got, err := manifest.ParsePublicKeyPEM([]byte(r.stdout)); err != nil || !got.Equal(svc.PublicKey()) {
		t.Errorf("key show: %v\n%s", err, r.stdout)
	}
	r = e.run("key", "show", "--json").ok(t)
	if !strings.Contains(r.stdout, firmware.KeyFingerprint(svc.PublicKey())) {
		t.Errorf("key show --json:\n%s", r.stdout)
	}
}

func TestFirmwareUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"image"}, "missing verb"},
		{[]string{"image", "burn"}, "try add, list, show or rm"},
		{[]string{"image", "add", "f.bin"}, "--version and --class are required"},
		{[]string{"image", "add", "--version", "1", "--class", "c"}, "missing FILE"},
		{[]string{"image", "add", "f.bin", "--version", "1", "--class", "c", "--format", "mcuboot"}, `--format "mcuboot": want native or raw`},
		{[]string{"image", "rm"}, "missing DIGEST"},
		{[]string{"package", "make"}, "--image is required"},
		{[]string{"package", "show"}, "missing ID"},
		{[]string{"package", "sign"}, "try make or show"},
		{[]string{"key"}, "missing verb"},
		{[]string{"key", "gen", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, map[string]string{tokenEnv: testToken}, tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d with %q", r.code, r.stderr, exitUsage, tt.want)
			}
		})
	}
}

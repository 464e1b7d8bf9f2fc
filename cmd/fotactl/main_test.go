package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
)

const testToken = "fotactl-test-token-0123456789abcdef"

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// memDevices is a map-backed lwm2m.DeviceStore.
type memDevices struct {
	mu      sync.Mutex
	devices map[string]lwm2m.Device
}

func (m *memDevices) PutDevice(_ context.Context, d lwm2m.Device) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.devices {
		if d.PSKIdentity != "" && o.PSKIdentity == d.PSKIdentity && o.Endpoint != d.Endpoint {
			return lwm2m.ErrExists
		}
	}
	m.devices[d.Endpoint] = d
	return nil
}

func (m *memDevices) Device(_ context.Context, ep string) (lwm2m.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[ep]
	if !ok {
		return d, lwm2m.ErrNotFound
	}
	return d, nil
}

func (m *memDevices) DeviceByPSKIdentity(_ context.Context, id string) (lwm2m.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.devices {
		if d.PSKIdentity == id {
			return d, nil
		}
	}
	return lwm2m.Device{}, lwm2m.ErrNotFound
}

func (m *memDevices) DeleteDevice(_ context.Context, ep string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.devices[ep]; !ok {
		return lwm2m.ErrNotFound
	}
	delete(m.devices, ep)
	return nil
}

func (m *memDevices) Devices(context.Context) ([]lwm2m.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []lwm2m.Device
	for _, d := range m.devices {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out, nil
}

type memRegs map[string]lwm2m.Registration

func (m memRegs) Registrations() []lwm2m.Registration {
	var out []lwm2m.Registration
	for _, r := range m {
		out = append(out, r)
	}
	return out
}
func (m memRegs) Lookup(ep string) (lwm2m.Registration, bool) { r, ok := m[ep]; return r, ok }
func (m memRegs) Count() int                                  { return len(m) }

type noStats struct{}

func (noStats) Stats() coap.Stats { return coap.Stats{} }

type env struct {
	t       *testing.T
	url     string
	devices *memDevices
	regs    memRegs
}

// newEnv starts an API server with fakes behind httptest.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, devices: &memDevices{devices: map[string]lwm2m.Device{}}, regs: memRegs{}}
	srv, err := api.New(api.Config{Devices: e.devices, Registrations: e.regs, Transport: noStats{}, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e.url = ts.URL
	return e
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs fotactl with args against the env's server and token, from an
// empty environment.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return runCLI(e.t, nil, append([]string{"--server", e.url, "--token", testToken}, args...)...)
}

func runCLI(t *testing.T, environ map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	c := newCLI(&out, &errOut, strings.NewReader(""), func(k string) string { return environ[k] })
	c.now = func() time.Time { return testNow }
	code := c.run(args)
	return result{code, out.String(), errOut.String()}
}

func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

func TestDeviceCommands(t *testing.T) {
	e := newEnv(t)
	e.regs["ep1"] = lwm2m.Registration{
		ID: "r1", Endpoint: "ep1", Version: "1.1", Binding: "U", Lifetime: 300 * time.Second,
		Objects:      []lwm2m.Link{{Path: "/3/0"}, {Path: "/5", Attrs: []lwm2m.LinkAttr{{Key: "ver", Value: "1.1"}}}},
		Identity:     lwm2m.Identity{Kind: lwm2m.IdentityPSK, Name: "id1"},
		Address:      "192.0.2.7:5684",
		RegisteredAt: testNow.Add(-time.Hour), LastSeen: testNow.Add(-42 * time.Second),
	}

	r := e.run("device", "add", "ep1", "--psk-identity", "id1", "--psk-key", "0011223344556677", "--tag", "site=lab", "--tag", "hw=b2").ok(t)
	if !strings.Contains(r.stdout, "device ep1 provisioned (PSK identity id1)") {
		t.Errorf("add output %q", r.stdout)
	}
	e.run("device", "add", "--tag", "site=field", "ep2").ok(t) // flags before the positional

	r = e.run("device", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("list output:\n%s", r.stdout)
	}
	wantCells := [][]string{
		{"ENDPOINT", "PSK IDENTITY", "REGISTERED", "VERSION", "BINDING", "ADDRESS", "LAST SEEN", "TAGS"},
		{"ep1", "id1", "yes", "1.1", "U", "192.0.2.7:5684", "42s ago", "hw=b2,site=lab"},
		{"ep2", "-", "no", "-", "-", "-", "-", "site=field"},
	}
	for i, cells := range wantCells {
		for _, cell := range cells {
			if !strings.Contains(lines[i], cell) {
				t.Errorf("list line %d %q lacks %q", i, lines[i], cell)
			}
		}
	}
	// Columns are aligned: every row's ADDRESS column starts at the same offset.
	if col := strings.Index(lines[0], "ADDRESS"); strings.Index(lines[1], "192.0.2.7") != col {
		t.Errorf("table not aligned:\n%s", r.stdout)
	}

	r = e.run("device", "list", "--json").ok(t)
	var list api.DeviceList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Devices) != 2 {
		t.Fatalf("list --json: %v\n%s", err, r.stdout)
	}

	r = e.run("device", "show", "ep1").ok(t)
	for _, want := range []string{"Endpoint:", "ep1", "PSK identity:", "id1", "PSK key:", "set", "Registered:", "yes",
		"LwM2M version:", "1.1", "Lifetime:", "300s", "Last seen:", "2025-03-01T11:59:18Z (42s ago)",
		"Objects:", "</3/0> </5>;ver=1.1", "Address:", "192.0.2.7:5684"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = e.run("device", "show", "ep1", "--json").ok(t) // flag after the positional
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("show --json: %v\n%s", err, r.stdout)
	}
	for _, k := range []string{"registered", "lwm2m_version", "binding", "lifetime", "objects", "last_seen", "address"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("show --json lacks %q:\n%s", k, r.stdout)
		}
	}
	if raw["lifetime"] != float64(300) || raw["has_psk_key"] != true {
		t.Errorf("show --json values: %s", r.stdout)
	}

	for _, out := range []string{e.run("device", "show", "ep1").stdout, e.run("device", "list", "--json").stdout,
		e.run("device", "show", "ep1", "--json").stdout} {
		if strings.Contains(out, "0011223344556677") {
			t.Fatalf("output contains the PSK key:\n%s", out)
		}
	}

	r = e.run("device", "add", "ep3", "--psk-identity", "id1", "--psk-key", "aabb")
	if r.code != exitFailure || !strings.Contains(r.stderr, "already used by another device") || !strings.Contains(r.stderr, "HTTP 409") {
		t.Errorf("duplicate identity: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("device", "add", "ep1")
	if r.code != exitFailure || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("duplicate endpoint: exit %d, stderr %q", r.code, r.stderr)
	}
	e.run("device", "add", "ep1", "--replace", "--psk-identity", "id9", "--psk-key", "0102").ok(t)
	if d, _ := e.devices.Device(t.Context(), "ep1"); d.PSKIdentity != "id9" {
		t.Errorf("--replace did not replace: %+v", d)
	}
	r = e.run("device", "add", "ep4", "--psk-identity", "id4", "--psk-key", "xyz")
	if r.code != exitFailure || !strings.Contains(r.stderr, "hex") {
		t.Errorf("bad key: exit %d, stderr %q", r.code, r.stderr)
	}

	r = e.run("device", "rm", "ep2").ok(t)
	if strings.TrimSpace(r.stdout) != "device ep2 removed" {
		t.Errorf("rm output %q", r.stdout)
	}
	r = e.run("device", "rm", "ep2")
	if r.code != exitFailure || !strings.Contains(r.stderr, `device "ep2" not found`) || !strings.Contains(r.stderr, "HTTP 404") {
		t.Errorf("rm missing: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("device", "show", "nope")
	if r.code != exitFailure || !strings.Contains(r.stderr, "not found") {
		t.Errorf("show missing: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestDeviceAddKeyFromStdin(t *testing.T) {
	e := newEnv(t)
	var out, errOut bytes.Buffer
	c := newCLI(&out, &errOut, strings.NewReader("a1b2c3d4\n"), func(string) string { return "" })
	code := c.run([]string{"--server", e.url, "--token", testToken, "device", "add", "ep1", "--psk-identity", "id1", "--psk-key-file", "-"})
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if d, _ := e.devices.Device(t.Context(), "ep1"); string(d.PSKKey) != "\xa1\xb2\xc3\xd4" {
		t.Fatalf("stored key %x", d.PSKKey)
	}
}

func TestRegistrationsCommand(t *testing.T) {
	e := newEnv(t)
	e.regs["lab9"] = lwm2m.Registration{ID: "r9", Endpoint: "lab9", Version: "1.0", Binding: "U",
		Lifetime: 90 * time.Second, Address: "192.0.2.9:5683", LastSeen: testNow.Add(-3 * time.Minute)}
	e.regs["ep1"] = lwm2m.Registration{ID: "r1", Endpoint: "ep1", Version: "1.2", Binding: "UQ", Queue: true,
		Lifetime: time.Hour, Identity: lwm2m.Identity{Kind: lwm2m.IdentityPSK, Name: "id1"}, LastSeen: testNow}
	e.run("device", "add", "ep1", "--psk-identity", "id1", "--psk-key", "01").ok(t)

	for _, args := range [][]string{{"registrations"}, {"reg", "list"}, {"registrations", "list"}} {
		r := e.run(args...).ok(t)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ENDPOINT") ||
			!strings.HasPrefix(lines[1], "ep1") || !strings.Contains(lines[1], "psk:id1") || !strings.Contains(lines[1], "1h0m0s") ||
			!strings.HasPrefix(lines[2], "lab9") || !strings.Contains(lines[2], "nosec") || !strings.Contains(lines[2], "3m ago") {
			t.Fatalf("%v output:\n%s", args, r.stdout)
		}
		if !strings.Contains(lines[1], "yes") || !strings.Contains(lines[2], " no ") {
			t.Errorf("%v: provisioned column wrong:\n%s", args, r.stdout)
		}
	}
	r := e.run("registrations", "--json").ok(t)
	var list api.RegistrationList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Registrations) != 2 {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}

	r = e.run("device", "show", "lab9").ok(t)
	if !strings.Contains(r.stdout, "Provisioned:") || !strings.Contains(r.stdout, "192.0.2.9:5683") {
		t.Errorf("show of an unprovisioned registration:\n%s", r.stdout)
	}
}

func TestTokenPrecedence(t *testing.T) {
	write := func(t *testing.T, token string) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, api.TokenFile), []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := []struct {
		name    string
		flag    string
		env     string
		file    string // "" for no file
		want    string
		wantErr string
	}{
		{name: "flag wins", flag: "from-flag", env: "from-env", file: "from-file", want: "from-flag"},
		{name: "env before file", env: "from-env", file: "from-file", want: "from-env"},
		{name: "file last", file: "from-file", want: "from-file"},
		{name: "none", wantErr: "no API token"},
		{name: "empty file", file: " ", wantErr: "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" {
				dir = write(t, tt.file)
			}
			c := newCLI(&bytes.Buffer{}, &bytes.Buffer{}, nil, func(k string) string {
				if k == tokenEnv {
					return tt.env
				}
				return ""
			})
			c.global.token, c.global.data = tt.flag, dir
			got, err := c.resolveToken()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("token %q, err %v; want %q", got, err, tt.want)
			}
		})
	}

	t.Run("end to end", func(t *testing.T) {
		e := newEnv(t)
		dir := write(t, testToken)
		runCLI(t, nil, "--server", e.url, "--data", dir, "device", "list").ok(t)
		runCLI(t, map[string]string{tokenEnv: testToken}, "device", "list", "--server", e.url, "--data", t.TempDir()).ok(t)
		r := runCLI(t, map[string]string{tokenEnv: "wrong-token-wrong-token"}, "--server", e.url, "--data", dir, "device", "list")
		if r.code != exitFailure || !strings.Contains(r.stderr, "invalid bearer token") || !strings.Contains(r.stderr, "HTTP 401") {
			t.Errorf("wrong env token: exit %d, stderr %q", r.code, r.stderr)
		}
		r = runCLI(t, nil, "--server", e.url, "--data", t.TempDir(), "device", "list")
		if r.code != exitFailure || !strings.Contains(r.stderr, "--token") || !strings.Contains(r.stderr, tokenEnv) {
			t.Errorf("no token: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "Usage:"},
		{[]string{"frobnicate"}, "unknown command \"frobnicate\"; run 'fotactl help'"},
		{[]string{"device"}, "missing verb"},
		{[]string{"device", "explode"}, "try add, list, show or rm"},
		{[]string{"device", "show"}, "missing ENDPOINT"},
		{[]string{"device", "show", "a", "b"}, `unexpected argument "b"`},
		{[]string{"device", "rm"}, "usage: fotactl device rm ENDPOINT"},
		{[]string{"device", "list", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"device", "add", "ep", "--psk-identity", "x"}, "needs both"},
		{[]string{"device", "add", "ep", "--tag", "novalue"}, "want KEY=VALUE"},
		{[]string{"--server", "ftp://x", "device", "list"}, "is not an http:// or https:// URL"},
		{[]string{"--nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, map[string]string{tokenEnv: testToken}, tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d", r.code, exitUsage)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.want)
			}
			if len(tt.args) > 1 && !strings.Contains(r.stderr, "-h' for help") {
				t.Errorf("stderr %q does not say what to try", r.stderr)
			}
		})
	}

	t.Run("help", func(t *testing.T) {
		r := runCLI(t, nil, "device", "add", "-h").ok(t)
		if !strings.Contains(r.stdout, "--psk-key HEX") || !strings.Contains(r.stdout, "--psk-identity ID") || strings.Contains(r.stdout, "  --server") {
			t.Errorf("help output:\n%s", r.stdout)
		}
		r = runCLI(t, nil, "--help").ok(t)
		if !strings.Contains(r.stdout, "device add ENDPOINT") {
			t.Errorf("main help:\n%s", r.stdout)
		}
	})
}

func TestNetworkFailures(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		ts := httptest.NewServer(http.NotFoundHandler())
		url := ts.URL
		ts.Close()
		r := runCLI(t, nil, "--server", url, "--token", testToken, "device", "list")
		if r.code != exitFailure || !strings.Contains(r.stderr, "is fotad running") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(ts.Close)
		t.Cleanup(func() { close(release) })
		start := time.Now()
		r := runCLI(t, nil, "--server", ts.URL, "--token", testToken, "--timeout", "200ms", "device", "list")
		if r.code != exitFailure || !strings.Contains(r.stderr, "Timeout") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("non-JSON error", func(t *testing.T) {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}))
		t.Cleanup(ts.Close)
		r := runCLI(t, nil, "--server", ts.URL, "--token", testToken, "device", "list")
		if r.code != exitFailure || !strings.Contains(r.stderr, "502 Bad Gateway") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestEscapedEndpoint(t *testing.T) {
	e := newEnv(t)
	if r := e.run("device", "add", "urn:dev/1 x"); r.code != exitFailure || !strings.Contains(r.stderr, "white space") {
		t.Errorf("endpoint with a space: exit %d, stderr %q", r.code, r.stderr)
	}
	e.run("device", "add", "urn:imei:35/01").ok(t)
	r := e.run("device", "show", "urn:imei:35/01", "--json").ok(t)
	if !strings.Contains(r.stdout, `"endpoint": "urn:imei:35/01"`) {
		t.Errorf("show:\n%s", r.stdout)
	}
	e.run("device", "rm", "urn:imei:35/01").ok(t)
}

func TestVersion(t *testing.T) {
	r := runCLI(t, nil, "version").ok(t)
	if !strings.HasPrefix(r.stdout, "fotactl ") || !strings.Contains(r.stdout, "go1") {
		t.Errorf("version %q", r.stdout)
	}
}

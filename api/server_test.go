package api

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
)

const testToken = "0123456789abcdef0123456789abcdef"

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type fixture struct {
	t       testing.TB
	devices *memDevices
	regs    memRegs
	stats   coap.Stats
	logs    *syncBuffer
	srv     *Server
	handler http.Handler
}

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, devices: newMemDevices(), regs: memRegs{}, logs: &syncBuffer{}}
	srv, err := New(Config{
		Devices:       f.devices,
		Registrations: f.regs,
		Transport:     statsFunc(func() coap.Stats { return f.stats }),
		Token:         testToken,
		Logger:        zerolog.New(f.logs).Level(zerolog.DebugLevel),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.now = func() time.Time { return testNow }
	f.srv, f.handler = srv, srv.Handler()
	return f
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errorMessage(t testing.TB) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Fatalf("body %q is not a JSON error: %v", r.body, err)
	}
	return e.Error
}

// do sends a request with the test token.
func (f *fixture) do(method, path, body string) response {
	return f.doAuth(method, path, body, "Bearer "+testToken)
}

func (f *fixture) doAuth(method, path, body, auth string) response {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

func (f *fixture) mustStatus(r response, want int) {
	f.t.Helper()
	if r.status != want {
		f.t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestNewValidates(t *testing.T) {
	good := Config{
		Devices:       newMemDevices(),
		Registrations: memRegs{},
		Transport:     statsFunc(func() coap.Stats { return coap.Stats{} }),
		Token:         testToken,
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"no devices", func(c *Config) { c.Devices = nil }, "Devices"},
		{"no registrations", func(c *Config) { c.Registrations = nil }, "Registrations"},
		{"no transport", func(c *Config) { c.Transport = nil }, "Transport"},
		{"empty token", func(c *Config) { c.Token = "" }, "Token"},
		{"short token", func(c *Config) { c.Token = "abc" }, "Token"},
		{"padded token", func(c *Config) { c.Token = testToken + "\n" }, "Token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.modify(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error naming %s", err, tt.want)
			}
		})
	}
	if _, err := New(good); err != nil {
		t.Fatalf("New(good): %v", err)
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t)
	paths := []string{"/api/v1/devices", "/api/v1/devices/ep1", "/api/v1/registrations", "/metrics", "/nope"}
	auths := []struct{ name, header string }{
		{"none", ""},
		{"wrong token", "Bearer " + strings.Repeat("x", len(testToken))},
		{"token prefix", "Bearer " + testToken[:20]},
		{"token with suffix", "Bearer " + testToken + "0"},
		{"basic scheme", "Basic " + testToken},
		{"bare token", testToken},
		{"empty bearer", "Bearer "},
	}
	for _, p := range paths {
		for _, a := range auths {
			t.Run(p+"/"+a.name, func(t *testing.T) {
				r := f.doAuth("GET", p, "", a.header)
				f.mustStatus(r, http.StatusUnauthorized)
				if r.header.Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate challenge")
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				r.errorMessage(t)
			})
		}
	}
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		f.mustStatus(f.doAuth("GET", "/api/v1/devices", "", "bearer "+testToken), http.StatusOK)
	})
	t.Run("healthz needs no token", func(t *testing.T) {
		r := f.doAuth("GET", "/healthz", "", "")
		f.mustStatus(r, http.StatusOK)
		if got := decode[map[string]string](t, r.body); got["status"] != "ok" {
			t.Errorf("healthz body %s", r.body)
		}
	})
	if strings.Contains(f.logs.String(), testToken) {
		t.Error("the token reached the log")
	}
}

func TestDeviceLifecycle(t *testing.T) {
	f := newFixture(t)

	r := f.do("POST", "/api/v1/devices", `{"endpoint":"ep1","psk_identity":"id1","psk_key":"00112233445566778899aabbccddeeff","tags":{"site":"lab"},"link_mtu":680}`)
	f.mustStatus(r, http.StatusCreated)
	v := decode[DeviceView](t, r.body)
	if v.Endpoint != "ep1" || v.PSKIdentity != "id1" || !v.HasPSKKey || !v.Provisioned || v.Tags["site"] != "lab" || v.LinkMTU != 680 ||
		v.CreatedAt == nil || !v.CreatedAt.Equal(testNow) || v.Registered {
		t.Fatalf("created view %+v", v)
	}
	stored, _ := f.devices.Device(t.Context(), "ep1")
	if hex.EncodeToString(stored.PSKKey) != "00112233445566778899aabbccddeeff" || stored.LinkMTU != 680 {
		t.Fatalf("stored key %x", stored.PSKKey)
	}

	f.mustStatus(f.do("POST", "/api/v1/devices", `{"endpoint":"ep0"}`), http.StatusCreated)

	r = f.do("GET", "/api/v1/devices", "")
	f.mustStatus(r, http.StatusOK)
	list := decode[DeviceList](t, r.body)
	if len(list.Devices) != 2 || list.Devices[0].Endpoint != "ep0" || list.Devices[1].Endpoint != "ep1" {
		t.Fatalf("list %s", r.body)
	}
	if list.Devices[0].HasPSKKey || list.Devices[0].PSKIdentity != "" {
		t.Errorf("ep0 has credentials: %+v", list.Devices[0])
	}

	r = f.do("GET", "/api/v1/devices/ep1", "")
	f.mustStatus(r, http.StatusOK)
	if got := decode[DeviceView](t, r.body); got.PSKIdentity != "id1" || !got.HasPSKKey {
		t.Fatalf("show %s", r.body)
	}

	f.mustStatus(f.do("DELETE", "/api/v1/devices/ep1", ""), http.StatusNoContent)
	r = f.do("DELETE", "/api/v1/devices/ep1", "")
	f.mustStatus(r, http.StatusNotFound)
	r.errorMessage(t)
	r = f.do("GET", "/api/v1/devices/ep1", "")
	f.mustStatus(r, http.StatusNotFound)
	if msg := r.errorMessage(t); !strings.Contains(msg, "ep1") {
		t.Errorf("404 message %q does not name the endpoint", msg)
	}
}

func TestCreateConflicts(t *testing.T) {
	f := newFixture(t)
	f.mustStatus(f.do("POST", "/api/v1/devices", `{"endpoint":"ep1","psk_identity":"id1","psk_key":"0102"}`), http.StatusCreated)

	t.Run("same endpoint", func(t *testing.T) {
		r := f.do("POST", "/api/v1/devices", `{"endpoint":"ep1","psk_identity":"id9","psk_key":"0909"}`)
		f.mustStatus(r, http.StatusConflict)
		if msg := r.errorMessage(t); !strings.Contains(msg, "PUT") {
			t.Errorf("message %q does not point to PUT", msg)
		}
		if d, _ := f.devices.Device(t.Context(), "ep1"); d.PSKIdentity != "id1" {
			t.Errorf("create replaced the device: %+v", d)
		}
	})
	t.Run("same psk identity", func(t *testing.T) {
		r := f.do("POST", "/api/v1/devices", `{"endpoint":"ep2","psk_identity":"id1","psk_key":"0303"}`)
		f.mustStatus(r, http.StatusConflict)
		if msg := r.errorMessage(t); !strings.Contains(msg, "psk_identity") {
			t.Errorf("message %q", msg)
		}
		if _, err := f.devices.Device(t.Context(), "ep2"); !errors.Is(err, lwm2m.ErrNotFound) {
			t.Errorf("ep2 stored: %v", err)
		}
	})
	t.Run("same psk identity on replace", func(t *testing.T) {
		f.mustStatus(f.do("PUT", "/api/v1/devices/ep3", `{"psk_identity":"id3","psk_key":"0303"}`), http.StatusCreated)
		r := f.do("PUT", "/api/v1/devices/ep3", `{"psk_identity":"id1","psk_key":"0303"}`)
		f.mustStatus(r, http.StatusConflict)
	})
}

func TestReplace(t *testing.T) {
	f := newFixture(t)
	r := f.do("PUT", "/api/v1/devices/ep1", `{"psk_identity":"id1","psk_key":"0102","tags":{"a":"1"}}`)
	f.mustStatus(r, http.StatusCreated)
	created := decode[DeviceView](t, r.body).CreatedAt

	f.srv.now = func() time.Time { return testNow.Add(time.Hour) }
	r = f.do("PUT", "/api/v1/devices/ep1", `{"endpoint":"ep1","psk_identity":"id2","psk_key":"0304"}`)
	f.mustStatus(r, http.StatusOK)
	v := decode[DeviceView](t, r.body)
	if v.PSKIdentity != "id2" || len(v.Tags) != 0 || v.CreatedAt == nil || !v.CreatedAt.Equal(*created) {
		t.Fatalf("replaced view %s (created %v)", r.body, created)
	}

	r = f.do("PUT", "/api/v1/devices/ep1", `{"endpoint":"ep2"}`)
	f.mustStatus(r, http.StatusBadRequest)
	if msg := r.errorMessage(t); !strings.Contains(msg, "does not match") {
		t.Errorf("message %q", msg)
	}
}

func TestCreateBadRequests(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       string // in the error message
	}{
		{"empty body", ``, 400, "empty request body"},
		{"malformed", `{"endpoint":`, 400, "malformed JSON"},
		{"not an object", `[1,2]`, 400, "must be a JSON object"},
		{"wrong type", `{"endpoint":5}`, 400, `"endpoint" must be a JSON string`},
		{"tags not an object", `{"endpoint":"e","tags":"x"}`, 400, `"tags" must be a JSON object`},
		{"unknown field", `{"endpoint":"e","psk-key":"00"}`, 400, `unknown field "psk-key"`},
		{"trailing data", `{"endpoint":"e"} {}`, 400, "unexpected data"},
		{"no endpoint", `{"psk_identity":"i","psk_key":"00"}`, 400, "endpoint is required"},
		{"endpoint with space", `{"endpoint":"e 1"}`, 400, "white space"},
		{"endpoint too long", `{"endpoint":"` + strings.Repeat("e", 256) + `"}`, 400, "at most 255"},
		{"key not hex", `{"endpoint":"e","psk_identity":"i","psk_key":"zz"}`, 400, "hex"},
		{"key odd length", `{"endpoint":"e","psk_identity":"i","psk_key":"012"}`, 400, "hex"},
		{"key too long", `{"endpoint":"e","psk_identity":"i","psk_key":"` + strings.Repeat("ab", 65) + `"}`, 400, "at most 64"},
		{"identity without key", `{"endpoint":"e","psk_identity":"i"}`, 400, "without psk_key"},
		{"identity with empty key", `{"endpoint":"e","psk_identity":"i","psk_key":""}`, 400, "without psk_key"},
		{"link mtu too small", `{"endpoint":"e","link_mtu":100}`, 400, "link_mtu 100 is outside"},
		{"link mtu too large", `{"endpoint":"e","link_mtu":70000}`, 400, "link_mtu 70000 is outside"},
		{"key without identity", `{"endpoint":"e","psk_key":"0011"}`, 400, "without psk_identity"},
		{"identity too long", `{"endpoint":"e","psk_identity":"` + strings.Repeat("i", 129) + `","psk_key":"00"}`, 400, "at most 128"},
		{"identity padded", `{"endpoint":"e","psk_identity":" i","psk_key":"00"}`, 400, "white space"},
		{"empty tag name", `{"endpoint":"e","tags":{"":"x"}}`, 400, "tag names"},
		{"body too large", `{"endpoint":"` + strings.Repeat("e", maxBodyBytes) + `"}`, 413, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			r := f.do("POST", "/api/v1/devices", tt.body)
			f.mustStatus(r, tt.status)
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q, want it to contain %q", msg, tt.want)
			}
			if n := len(f.devices.devices); n != 0 {
				t.Errorf("%d devices stored", n)
			}
		})
	}
}

func TestPSKKeyNeverInOutput(t *testing.T) {
	const keyHex = "8f3a5c7e9b1d2f4a6c8e0b2d4f6a8c0e"
	key, _ := hex.DecodeString(keyHex)
	f := newFixture(t)
	f.regs["ep1"] = lwm2m.Registration{ID: "r1", Endpoint: "ep1", Identity: lwm2m.Identity{Kind: lwm2m.IdentityPSK, Name: "id1"}}

	var bodies [][]byte
	add := func(r response) { bodies = append(bodies, r.body) }
	add(f.do("POST", "/api/v1/devices", `{"endpoint":"ep1","psk_identity":"id1","psk_key":"`+keyHex+`"}`))
	add(f.do("POST", "/api/v1/devices", `{"endpoint":"ep1","psk_identity":"id1","psk_key":"`+keyHex+`"}`))
	add(f.do("POST", "/api/v1/devices", `{"endpoint":"ep2","psk_identity":"id1","psk_key":"`+keyHex+`"}`))
	add(f.do("POST", "/api/v1/devices", `{"endpoint":"ep3","psk_key":"`+keyHex+`"}`))
	add(f.do("POST", "/api/v1/devices", `{"endpoint":"ep3","psk_identity":"id3","psk_key":"`+keyHex+`0"}`))
	add(f.do("POST", "/api/v1/devices", `{"endpoint":"ep3","psk_identity":"id3","psk_key":"`+keyHex+`", "x":1}`))
	add(f.do("PUT", "/api/v1/devices/ep1", `{"psk_identity":"id1","psk_key":"`+keyHex+`"}`))
	add(f.do("GET", "/api/v1/devices", ""))
	add(f.do("GET", "/api/v1/devices/ep1", ""))
	add(f.do("GET", "/api/v1/registrations", ""))
	add(f.do("GET", "/metrics", ""))

	if d, _ := f.devices.Device(t.Context(), "ep1"); !bytes.Equal(d.PSKKey, key) {
		t.Fatalf("key not stored: %x", d.PSKKey)
	}
	needles := [][]byte{[]byte(keyHex), []byte(strings.ToUpper(keyHex)), key, []byte(keyHex[:16])}
	check := func(what string, b []byte) {
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s contains the PSK key: %s", what, b)
			}
		}
	}
	for _, b := range bodies {
		check("response", b)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, `"path":"/api/v1/devices"`) {
		t.Fatalf("debug request log missing: %s", logs)
	}
	check("log", []byte(logs))
}

func TestRegistrationState(t *testing.T) {
	f := newFixture(t)
	reg := lwm2m.Registration{
		ID: "r1", Endpoint: "ep1", Version: "1.1", Binding: "UQ", Queue: true,
		Lifetime: 300 * time.Second, RootPath: "/",
		Objects: []lwm2m.Link{
			{Path: "/", Attrs: []lwm2m.LinkAttr{{Key: "rt", Value: "oma.lwm2m"}, {Key: "ct", Value: "11543"}}},
			{Path: "/3/0"},
			{Path: "/5", Attrs: []lwm2m.LinkAttr{{Key: "ver", Value: "1.1"}}},
		},
		Identity:     lwm2m.Identity{Kind: lwm2m.IdentityPSK, Name: "id1"},
		Address:      "192.0.2.7:5684",
		RegisteredAt: testNow.Add(-time.Hour),
		LastSeen:     testNow.Add(-time.Minute),
	}
	f.regs["ep1"] = reg
	f.regs["lab9"] = lwm2m.Registration{ID: "r2", Endpoint: "lab9", Version: "1.0", Binding: "U",
		Lifetime: time.Minute, Address: "192.0.2.9:5683", LastSeen: testNow}
	f.mustStatus(f.do("POST", "/api/v1/devices", `{"endpoint":"ep1","psk_identity":"id1","psk_key":"0102"}`), http.StatusCreated)
	f.mustStatus(f.do("POST", "/api/v1/devices", `{"endpoint":"ep2"}`), http.StatusCreated)

	t.Run("show merges registration", func(t *testing.T) {
		r := f.do("GET", "/api/v1/devices/ep1", "")
		f.mustStatus(r, http.StatusOK)
		v := decode[DeviceView](t, r.body)
		want := []string{`</>;rt="oma.lwm2m";ct=11543`, "</3/0>", "</5>;ver=1.1"}
		if !v.Registered || !v.Provisioned || v.RegistrationID != "r1" || v.LwM2MVersion != "1.1" ||
			v.Binding != "UQ" || !v.QueueMode || v.Lifetime != 300 || v.Address != "192.0.2.7:5684" ||
			v.Identity != "psk:id1" || strings.Join(v.Objects, " ") != strings.Join(want, " ") ||
			!v.LastSeen.Equal(reg.LastSeen) || !v.RegisteredAt.Equal(reg.RegisteredAt) ||
			!v.ExpiresAt.Equal(reg.Expires()) {
			t.Fatalf("view %s", r.body)
		}
		if !bytes.Contains(r.body, []byte(`"</3/0>"`)) {
			t.Errorf("objects are HTML-escaped: %s", r.body)
		}
		// Field names are the API contract.
		raw := decode[map[string]any](t, r.body)
		for _, k := range []string{"endpoint", "psk_identity", "has_psk_key", "tags", "created_at", "registered",
			"lwm2m_version", "binding", "queue_mode", "lifetime", "objects", "last_seen", "registered_at",
			"address", "registration_id"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("field %q missing", k)
			}
		}
	})
	t.Run("unregistered device", func(t *testing.T) {
		r := f.do("GET", "/api/v1/devices/ep2", "")
		f.mustStatus(r, http.StatusOK)
		raw := decode[map[string]any](t, r.body)
		if raw["registered"] != false || raw["provisioned"] != true {
			t.Fatalf("view %s", r.body)
		}
		for _, k := range []string{"lwm2m_version", "objects", "last_seen", "address"} {
			if _, ok := raw[k]; ok {
				t.Errorf("unregistered device has %q", k)
			}
		}
	})
	t.Run("registration without device record", func(t *testing.T) {
		r := f.do("GET", "/api/v1/devices/lab9", "")
		f.mustStatus(r, http.StatusOK)
		v := decode[DeviceView](t, r.body)
		if v.Provisioned || !v.Registered || v.Identity != "nosec" || v.CreatedAt != nil || v.Lifetime != 60 {
			t.Fatalf("view %s", r.body)
		}
		// A registered endpoint has every registration field, zero or not.
		for _, want := range []string{`"queue_mode": false`, `"objects": []`, `"registered_at": null`} {
			if !bytes.Contains(r.body, []byte(want)) {
				t.Errorf("view lacks %s: %s", want, r.body)
			}
		}
	})
	t.Run("device list merges registration", func(t *testing.T) {
		r := f.do("GET", "/api/v1/devices", "")
		list := decode[DeviceList](t, r.body)
		if len(list.Devices) != 2 || !list.Devices[0].Registered || list.Devices[1].Registered {
			t.Fatalf("list %s", r.body)
		}
	})
	t.Run("registrations list", func(t *testing.T) {
		r := f.do("GET", "/api/v1/registrations", "")
		f.mustStatus(r, http.StatusOK)
		list := decode[RegistrationList](t, r.body)
		if len(list.Registrations) != 2 {
			t.Fatalf("list %s", r.body)
		}
		a, b := list.Registrations[0], list.Registrations[1]
		if a.Endpoint != "ep1" || !a.Provisioned || a.PSKIdentity != "id1" || b.Endpoint != "lab9" || b.Provisioned {
			t.Fatalf("list %s", r.body)
		}
	})
	t.Run("empty lists are arrays", func(t *testing.T) {
		g := newFixture(t)
		if r := g.do("GET", "/api/v1/devices", ""); !bytes.Contains(r.body, []byte(`"devices": []`)) {
			t.Errorf("devices %s", r.body)
		}
		if r := g.do("GET", "/api/v1/registrations", ""); !bytes.Contains(r.body, []byte(`"registrations": []`)) {
			t.Errorf("registrations %s", r.body)
		}
	})
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	f.regs["a"] = lwm2m.Registration{Endpoint: "a"}
	f.regs["b"] = lwm2m.Registration{Endpoint: "b"}
	f.regs["c"] = lwm2m.Registration{Endpoint: "c"}
	f.stats = coap.Stats{
		Handshakes:  map[string]uint64{coap.HandshakeOK: 42, coap.HandshakeUnknownIdentity: 7},
		MessagesIn:  1234,
		MessagesOut: 987,
		Sessions:    5,
	}
	r := f.do("GET", "/metrics", "")
	f.mustStatus(r, http.StatusOK)
	body := string(r.body)
	for _, line := range []string{
		"fota_registrations 3",
		`fota_dtls_handshakes_total{outcome="ok"} 42`,
		`fota_dtls_handshakes_total{outcome="unknown_identity"} 7`,
		`fota_dtls_handshakes_total{outcome="timeout"} 0`,
		`fota_coap_messages_total{direction="in"} 1234`,
		`fota_coap_messages_total{direction="out"} 987`,
		"fota_coap_sessions 5",
		"# TYPE fota_dtls_handshakes_total counter",
		"# TYPE fota_registrations gauge",
		"go_goroutines ",
	} {
		if !strings.Contains(body, line) {
			t.Errorf("metrics lack %q", line)
		}
	}

	// Values are read at scrape time.
	f.stats.Sessions = 6
	delete(f.regs, "c")
	body = string(f.do("GET", "/metrics", "").body)
	if !strings.Contains(body, "fota_coap_sessions 6") || !strings.Contains(body, "fota_registrations 2") {
		t.Errorf("second scrape is stale:\n%s", body)
	}
}

func TestRoutingErrorsAreJSON(t *testing.T) {
	f := newFixture(t)
	r := f.do("GET", "/api/v1/nothing", "")
	f.mustStatus(r, http.StatusNotFound)
	r.errorMessage(t)

	r = f.do("PATCH", "/api/v1/devices/ep1", "{}")
	f.mustStatus(r, http.StatusMethodNotAllowed)
	if msg := r.errorMessage(t); !strings.Contains(msg, "PUT") {
		t.Errorf("405 message %q does not list the allowed methods", msg)
	}
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "DELETE") {
		t.Errorf("Allow %q", allow)
	}
}

func TestStoreFailure(t *testing.T) {
	f := newFixture(t)
	f.devices.err = errors.New("disk on fire at /var/lib/fota/fota.db")
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/devices", ""},
		{"GET", "/api/v1/devices/ep1", ""},
		{"GET", "/api/v1/registrations", ""},
		{"POST", "/api/v1/devices", `{"endpoint":"ep1"}`},
		{"DELETE", "/api/v1/devices/ep1", ""},
	} {
		r := f.do(c.method, c.path, c.body)
		f.mustStatus(r, http.StatusInternalServerError)
		if msg := r.errorMessage(t); msg != "internal error" {
			t.Errorf("%s %s: message %q leaks internals", c.method, c.path, msg)
		}
	}
	if !strings.Contains(f.logs.String(), "disk on fire") {
		t.Error("store error not logged")
	}
}

func TestFormatLink(t *testing.T) {
	tests := []struct {
		link lwm2m.Link
		want string
	}{
		{lwm2m.Link{Path: "/3/0"}, "</3/0>"},
		{lwm2m.Link{Path: "/", Attrs: []lwm2m.LinkAttr{{Key: "rt", Value: "oma.lwm2m"}}}, `</>;rt="oma.lwm2m"`},
		{lwm2m.Link{Path: "/5", Attrs: []lwm2m.LinkAttr{{Key: "ver", Value: "1.1"}}}, "</5>;ver=1.1"},
		{lwm2m.Link{Path: "/1", Attrs: []lwm2m.LinkAttr{{Key: "obs"}}}, "</1>;obs"},
		{lwm2m.Link{Path: "/", Attrs: []lwm2m.LinkAttr{{Key: "ct", Value: "0 40"}}}, `</>;ct="0 40"`},
		{lwm2m.Link{Path: "/9", Attrs: []lwm2m.LinkAttr{{Key: "title", Value: `a"b\c`}}}, `</9>;title="a\"b\\c"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := formatLink(tt.link); got != tt.want {
				t.Errorf("formatLink = %s, want %s", got, tt.want)
			}
		})
	}
}

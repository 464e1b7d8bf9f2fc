package lwm2m

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
)

var (
	pskKey     = []byte("s3cret-psk-key-do-not-log")
	pskDevice  = Device{Endpoint: "psk-dev", PSKIdentity: "psk-id", PSKKey: pskKey}
	pskDevice2 = Device{Endpoint: "other-dev", PSKIdentity: "other-id", PSKKey: []byte("other-key")}
	openDevice = Device{Endpoint: "open-dev"} // provisioned without credentials

	nosec    = coap.Identity{Mode: coap.NoSec}
	pskID    = coap.Identity{Mode: coap.PSK, Name: "psk-id"}
	otherPSK = coap.Identity{Mode: coap.PSK, Name: "other-id"}
	unknPSK  = coap.Identity{Mode: coap.PSK, Name: "nobody"}
	certID   = coap.Identity{Mode: coap.X509, Name: "cert-dev"}
	certID2  = coap.Identity{Mode: coap.X509, Name: "psk-id"}

	t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
)

const (
	addr1 = "192.0.2.1:5683"
	addr2 = "198.51.100.7:40000"
)

// harness is a registry over in-memory stores, a fake clock and a log buffer.
type harness struct {
	r       *Registry
	store   *memRegs
	devices *memDevices
	clock   *fakeClock
	logs    *syncBuffer
}

func newHarness(t testing.TB, open bool) *harness {
	t.Helper()
	h := &harness{
		store:   newMemRegs(),
		devices: newMemDevices(pskDevice, pskDevice2, openDevice),
		clock:   &fakeClock{t: t0},
		logs:    &syncBuffer{},
	}
	h.r = NewRegistry(RegistryConfig{
		Devices:          h.devices,
		Store:            h.store,
		OpenRegistration: open,
		Logger:           zerolog.New(h.logs),
		Now:              h.clock.Now,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("registry log:\n%s", h.logs)
		}
	})
	return h
}

// call sends one request from id at remote and returns the response.
func (h *harness) call(id coap.Identity, remote string, method coap.Code, path, query, payload string) coap.Response {
	req := rdRequest(method, path, query, payload)
	req.Identity = id
	req.RemoteAddr = net.UDPAddrFromAddrPort(netip.MustParseAddrPort(remote))
	return h.r.ServeCoAP(context.Background(), req)
}

// register registers and returns the registration id, failing the test
// unless the answer is 2.01 with a proper Location-Path.
func (h *harness) register(t testing.TB, id coap.Identity, query string) string {
	t.Helper()
	resp := h.call(id, addr1, coap.POST, "/rd", query, objectList)
	if resp.Code != coap.Created {
		t.Fatalf("register %q as %v: %s, want 2.01", query, id, resp.Code)
	}
	if len(resp.LocationPath) != 2 || resp.LocationPath[0] != "rd" || len(resp.LocationPath[1]) != idLength {
		t.Fatalf("register %q: Location-Path %q", query, resp.LocationPath)
	}
	return resp.LocationPath[1]
}

// state is what a test compares before and after a refused request.
type state struct {
	regs   []Registration
	stored map[string]Registration
}

func (h *harness) state() state { return state{regs: h.r.Registrations(), stored: h.store.snapshot()} }

// checkConsistent verifies the registry's internal invariants and that
// memory and store hold the same registrations.
func (h *harness) checkConsistent(t testing.TB) {
	t.Helper()
	r := h.r
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.byID) != len(r.byEndpoint) || len(r.byID) != len(r.expiry) {
		t.Fatalf("%d ids, %d endpoints, %d heap entries", len(r.byID), len(r.byEndpoint), len(r.expiry))
	}
	if len(r.reserved) != 0 {
		t.Fatalf("ids still reserved: %v", r.reserved)
	}
	for i, e := range r.expiry {
		if e.index != i {
			t.Fatalf("heap entry %d has index %d", i, e.index)
		}
		if i > 0 && r.expiry[(i-1)/2].reg.Expires().After(e.reg.Expires()) {
			t.Fatalf("heap order broken at %d", i)
		}
		if r.byID[e.reg.ID] != e || r.byEndpoint[e.reg.Endpoint] != e {
			t.Fatalf("entry %s/%s not indexed", e.reg.ID, e.reg.Endpoint)
		}
	}
	stored := h.store.snapshot()
	if len(stored) != len(r.byID) {
		t.Fatalf("store holds %d registrations, memory %d", len(stored), len(r.byID))
	}
	for id, e := range r.byID {
		if !reflect.DeepEqual(stored[id], e.reg) {
			t.Fatalf("stored %+v\nmemory %+v", stored[id], e.reg)
		}
	}
}

func TestRegisterUpdateDeregister(t *testing.T) {
	for _, version := range []string{"1.0", "1.1", "1.2"} {
		t.Run(version, func(t *testing.T) {
			h := newHarness(t, true)
			binding := map[string]string{"1.0": "UQ", "1.1": "U", "1.2": "UM"}[version]
			id := h.register(t, nosec, "ep=dev1&lt=300&lwm2m="+version+"&b="+binding)

			reg, ok := h.r.Lookup("dev1")
			want := Registration{
				ID: id, Endpoint: "dev1", Version: version, Lifetime: 300 * time.Second, Binding: binding,
				Queue: version == "1.0", RootPath: "/", Objects: mustLinks(t, objectList),
				Identity: Identity{Kind: IdentityNone}, Address: addr1, RegisteredAt: t0, LastSeen: t0,
			}
			if !ok || !reflect.DeepEqual(reg, want) {
				t.Fatalf("Lookup(dev1) = %+v, %v\nwant %+v", reg, ok, want)
			}
			h.checkConsistent(t)

			// An Update from a new address with a new lifetime and object list.
			now := h.clock.Advance(time.Minute)
			resp := h.call(nosec, addr2, coap.POST, "/rd/"+id, "lt=600", "</3/0>,</5/0>")
			if resp.Code != coap.Changed {
				t.Fatalf("update: %s, want 2.04", resp.Code)
			}
			reg, _ = h.r.Lookup("dev1")
			want.Lifetime, want.LastSeen, want.Address = 600*time.Second, now, addr2
			want.Objects = []Link{{Path: "/3/0"}, {Path: "/5/0"}}
			if !reflect.DeepEqual(reg, want) {
				t.Fatalf("after update %+v\nwant %+v", reg, want)
			}
			h.checkConsistent(t)

			if resp := h.call(nosec, addr2, coap.DELETE, "/rd/"+id, "", ""); resp.Code != coap.Deleted {
				t.Fatalf("deregister: %s, want 2.02", resp.Code)
			}
			if _, ok := h.r.Lookup("dev1"); ok || h.r.Count() != 0 {
				t.Fatalf("registration survived de-register")
			}
			h.checkConsistent(t)
			if resp := h.call(nosec, addr2, coap.POST, "/rd/"+id, "", ""); resp.Code != coap.NotFound {
				t.Fatalf("update after de-register: %s, want 4.04", resp.Code)
			}
		})
	}
}

func mustLinks(t testing.TB, s string) []Link {
	t.Helper()
	links, err := ParseLinks([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return links
}

func TestRegisterRefused(t *testing.T) {
	tests := []struct {
		name  string
		open  bool
		id    coap.Identity
		query string
		want  coap.Code
	}{
		{"no endpoint 1.0", true, nosec, "lt=60", coap.BadRequest},
		{"no endpoint 1.0 over psk", true, pskID, "lt=60", coap.BadRequest},
		{"no endpoint 1.1 nosec", true, nosec, "lwm2m=1.1", coap.BadRequest},
		{"lifetime abc", true, nosec, "ep=a&lt=abc", coap.BadRequest},
		{"lifetime zero", true, nosec, "ep=a&lt=0", coap.BadRequest},
		{"lifetime negative", true, nosec, "ep=a&lt=-5", coap.BadRequest},
		{"version 1.3", true, nosec, "ep=a&lwm2m=1.3", coap.PreconditionFailed},
		{"bad binding", true, nosec, "ep=a&b=XU", coap.BadRequest},
		{"psk identity unknown", true, unknPSK, "ep=psk-dev", coap.Forbidden},
		{"psk identity of another endpoint", true, pskID, "ep=other-dev", coap.Forbidden},
		{"psk identity of another endpoint 1.1", true, otherPSK, "ep=psk-dev&lwm2m=1.1", coap.Forbidden},
		{"certificate of another endpoint", true, certID, "ep=psk-dev&lwm2m=1.1", coap.Forbidden},
		{"nosec for endpoint with credentials", true, nosec, "ep=psk-dev", coap.Forbidden},
		{"nosec when registration is closed", false, nosec, "ep=stranger", coap.Forbidden},
		{"nosec provisioned device when closed", false, nosec, "ep=open-dev", coap.Forbidden},
		{"unknown security mode", true, coap.Identity{Mode: 9, Name: "x"}, "ep=a", coap.Forbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.open)
			if resp := h.call(tc.id, addr1, coap.POST, "/rd", tc.query, objectList); resp.Code != tc.want {
				t.Fatalf("register %q as %v: %s, want %s", tc.query, tc.id, resp.Code, tc.want)
			}
			if h.r.Count() != 0 || len(h.store.snapshot()) != 0 {
				t.Fatalf("refused register left state behind")
			}
			h.checkConsistent(t)
			if !strings.Contains(h.logs.String(), `"level":"warn"`) {
				t.Errorf("refusal not logged as a warning:\n%s", h.logs)
			}
		})
	}
}

func TestRegisterMalformedRequests(t *testing.T) {
	for _, tc := range badRegisterCases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, true)
			req := rdRequest(coap.POST, "/rd", tc.query, tc.payload)
			req.ContentFormat = tc.cf
			if resp := h.r.ServeCoAP(context.Background(), req); resp.Code != tc.want {
				t.Fatalf("register %q: %s, want %s", tc.query, resp.Code, tc.want)
			}
			if h.r.Count() != 0 || len(h.store.snapshot()) != 0 {
				t.Fatalf("refused register left state behind")
			}
		})
	}
}

func TestRegisterIdentities(t *testing.T) {
	tests := []struct {
		name     string
		open     bool
		id       coap.Identity
		query    string
		endpoint string
		identity Identity
	}{
		{"psk with endpoint", false, pskID, "ep=psk-dev", "psk-dev", Identity{IdentityPSK, "psk-id"}},
		{"psk without endpoint 1.1", false, pskID, "lwm2m=1.1", "psk-dev", Identity{IdentityPSK, "psk-id"}},
		{"psk without endpoint 1.2", false, pskID, "lwm2m=1.2", "psk-dev", Identity{IdentityPSK, "psk-id"}},
		{"certificate with endpoint", false, certID, "ep=cert-dev", "cert-dev", Identity{IdentityX509, "cert-dev"}},
		{"certificate without endpoint 1.1", false, certID, "lwm2m=1.1", "cert-dev", Identity{IdentityX509, "cert-dev"}},
		{"nosec open unknown endpoint", true, nosec, "ep=stranger", "stranger", Identity{Kind: IdentityNone}},
		{"nosec open provisioned without credentials", true, nosec, "ep=open-dev", "open-dev", Identity{Kind: IdentityNone}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.open)
			id := h.register(t, tc.id, tc.query)
			reg, ok := h.r.Lookup(tc.endpoint)
			if !ok || reg.ID != id || reg.Identity != tc.identity {
				t.Fatalf("Lookup(%s) = %+v, %v; want id %s identity %v", tc.endpoint, reg, ok, id, tc.identity)
			}
			h.checkConsistent(t)
		})
	}
}

func TestReRegisterReplaces(t *testing.T) {
	h := newHarness(t, false)
	first := h.register(t, pskID, "ep=psk-dev&lt=60")
	h.clock.Advance(time.Second)
	second := h.register(t, pskID, "ep=psk-dev&lt=120&lwm2m=1.1")
	if first == second {
		t.Fatalf("re-registration kept id %s", first)
	}
	reg, _ := h.r.Lookup("psk-dev")
	if reg.ID != second || reg.Version != "1.1" || reg.RegisteredAt != t0.Add(time.Second) {
		t.Fatalf("Lookup after re-register = %+v", reg)
	}
	if h.r.Count() != 1 {
		t.Fatalf("Count = %d, want 1", h.r.Count())
	}
	h.checkConsistent(t)
	if resp := h.call(pskID, addr1, coap.POST, "/rd/"+first, "", ""); resp.Code != coap.NotFound {
		t.Fatalf("update of replaced id: %s, want 4.04", resp.Code)
	}
}

func TestNoSecCannotReplaceSecureRegistration(t *testing.T) {
	h := newHarness(t, true)
	id := h.register(t, certID, "ep=cert-dev")
	before := h.state()
	if resp := h.call(nosec, addr2, coap.POST, "/rd", "ep=cert-dev", objectList); resp.Code != coap.Forbidden {
		t.Fatalf("nosec register over x509 registration: %s, want 4.03", resp.Code)
	}
	if after := h.state(); !reflect.DeepEqual(before, after) {
		t.Fatalf("state changed:\n%+v\n%+v", before, after)
	}
	if reg, _ := h.r.Lookup("cert-dev"); reg.ID != id {
		t.Fatalf("registration replaced")
	}
}

func TestUpdateAndDeregisterOwnership(t *testing.T) {
	tests := []struct {
		name   string
		owner  coap.Identity
		query  string
		caller coap.Identity
		want   coap.Code
	}{
		{"psk from other psk", pskID, "ep=psk-dev", otherPSK, coap.Forbidden},
		{"psk from nosec", pskID, "ep=psk-dev", nosec, coap.Forbidden},
		{"psk from certificate with same name", pskID, "ep=psk-dev", certID2, coap.Forbidden},
		{"psk from same psk", pskID, "ep=psk-dev", pskID, coap.Changed},
		{"certificate from other certificate", certID, "ep=cert-dev", certID2, coap.Forbidden},
		{"certificate from nosec", certID, "ep=cert-dev", nosec, coap.Forbidden},
		{"certificate from same certificate", certID, "ep=cert-dev", certID, coap.Changed},
		{"nosec from psk", nosec, "ep=stranger", pskID, coap.Forbidden},
		{"nosec from other nosec peer", nosec, "ep=stranger", nosec, coap.Changed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, true)
			id := h.register(t, tc.owner, tc.query)
			before := h.state()
			h.clock.Advance(time.Second)

			resp := h.call(tc.caller, addr2, coap.POST, "/rd/"+id, "lt=999&b=U", "")
			if resp.Code != tc.want {
				t.Fatalf("update from %v: %s, want %s", tc.caller, resp.Code, tc.want)
			}
			if tc.want != coap.Changed {
				if after := h.state(); !reflect.DeepEqual(before, after) {
					t.Fatalf("refused update changed state:\n%+v\n%+v", before, after)
				}
				if resp := h.call(tc.caller, addr2, coap.DELETE, "/rd/"+id, "", ""); resp.Code != coap.Forbidden {
					t.Fatalf("de-register from %v: %s, want 4.03", tc.caller, resp.Code)
				}
				if after := h.state(); !reflect.DeepEqual(before, after) {
					t.Fatalf("refused de-register changed state")
				}
				return
			}
			reg := h.r.Registrations()[0]
			if reg.Address != addr2 || reg.Lifetime != 999*time.Second || !reg.LastSeen.Equal(t0.Add(time.Second)) {
				t.Fatalf("after update %+v", reg)
			}
			h.checkConsistent(t)
		})
	}
}

func TestStoreFailure(t *testing.T) {
	boom := errors.New("disk full")
	tests := []struct {
		name      string
		setup     func(t *testing.T, h *harness) string // returns the registration id, if any
		putErr    error
		deleteErr error
		do        func(h *harness, id string) coap.Response
	}{
		{
			name:   "register",
			setup:  func(*testing.T, *harness) string { return "" },
			putErr: boom,
			do: func(h *harness, _ string) coap.Response {
				return h.call(pskID, addr1, coap.POST, "/rd", "ep=psk-dev", objectList)
			},
		},
		{
			name:   "re-register",
			setup:  func(t *testing.T, h *harness) string { return h.register(t, pskID, "ep=psk-dev") },
			putErr: boom,
			do: func(h *harness, _ string) coap.Response {
				return h.call(pskID, addr2, coap.POST, "/rd", "ep=psk-dev&lt=5", objectList)
			},
		},
		{
			name:   "update",
			setup:  func(t *testing.T, h *harness) string { return h.register(t, pskID, "ep=psk-dev") },
			putErr: boom,
			do: func(h *harness, id string) coap.Response {
				return h.call(pskID, addr2, coap.POST, "/rd/"+id, "lt=5", "</3/0>")
			},
		},
		{
			name:      "deregister",
			setup:     func(t *testing.T, h *harness) string { return h.register(t, pskID, "ep=psk-dev") },
			deleteErr: boom,
			do: func(h *harness, id string) coap.Response {
				return h.call(pskID, addr1, coap.DELETE, "/rd/"+id, "", "")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, false)
			id := tc.setup(t, h)
			before := h.state()
			h.clock.Advance(time.Second)
			h.store.fail(tc.putErr, tc.deleteErr)
			if resp := tc.do(h, id); resp.Code != coap.InternalServerError {
				t.Fatalf("%s with failing store: %s, want 5.00", tc.name, resp.Code)
			}
			if after := h.state(); !reflect.DeepEqual(before, after) {
				t.Fatalf("failed %s changed state:\n%+v\n%+v", tc.name, before, after)
			}
			h.store.fail(nil, nil)
			h.checkConsistent(t)
			if !strings.Contains(h.logs.String(), "disk full") {
				t.Errorf("store error not logged")
			}
		})
	}
}

func TestReRegisterWhenOldDeleteFails(t *testing.T) {
	h := newHarness(t, false)
	first := h.register(t, pskID, "ep=psk-dev")
	h.store.fail(nil, errors.New("delete failed"))
	h.clock.Advance(time.Second)
	second := h.register(t, pskID, "ep=psk-dev")
	h.store.fail(nil, nil)

	// The new registration answers; the stale record waits for Load.
	if reg, _ := h.r.Lookup("psk-dev"); reg.ID != second || h.r.Count() != 1 {
		t.Fatalf("Lookup = %+v, Count %d", reg, h.r.Count())
	}
	if _, ok := h.store.snapshot()[first]; !ok {
		t.Fatalf("expected the stale record %s to remain in the store", first)
	}
	fresh := NewRegistry(RegistryConfig{Store: h.store, Devices: h.devices, Now: h.clock.Now, Logger: zerolog.Nop()})
	if err := fresh.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if reg, _ := fresh.Lookup("psk-dev"); reg.ID != second || fresh.Count() != 1 {
		t.Fatalf("after Load: %+v, Count %d", reg, fresh.Count())
	}
	if _, ok := h.store.snapshot()[first]; ok {
		t.Fatalf("Load kept the stale record %s", first)
	}
}

func TestDeviceStoreFailure(t *testing.T) {
	for _, id := range []coap.Identity{pskID, nosec} {
		t.Run(id.Mode.String(), func(t *testing.T) {
			h := newHarness(t, true)
			h.devices.err = errors.New("device db down")
			if resp := h.call(id, addr1, coap.POST, "/rd", "ep=psk-dev", objectList); resp.Code != coap.InternalServerError {
				t.Fatalf("register with failing device store: %s, want 5.00", resp.Code)
			}
			if h.r.Count() != 0 {
				t.Fatalf("registration made")
			}
		})
	}
}

func TestRouting(t *testing.T) {
	tests := []struct {
		name   string
		method coap.Code
		path   string
		want   coap.Code
	}{
		{"get rd", coap.GET, "/rd", coap.MethodNotAllowed},
		{"delete rd", coap.DELETE, "/rd", coap.MethodNotAllowed},
		{"put registration", coap.PUT, "/rd/abc", coap.MethodNotAllowed},
		{"get registration", coap.GET, "/rd/abc", coap.MethodNotAllowed},
		{"other path", coap.POST, "/bs", coap.NotFound},
		{"root", coap.POST, "/", coap.NotFound},
		{"empty id", coap.POST, "/rd/", coap.NotFound},
		{"below registration", coap.POST, "/rd/abc/def", coap.NotFound},
		{"update unknown id", coap.POST, "/rd/abcdefgh", coap.NotFound},
		{"deregister unknown id", coap.DELETE, "/rd/abcdefgh", coap.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, true)
			if resp := h.call(nosec, addr1, tc.method, tc.path, "ep=x", objectList); resp.Code != tc.want {
				t.Fatalf("%s %s: %s, want %s", tc.method, tc.path, resp.Code, tc.want)
			}
		})
	}
}

func TestExpire(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, true)
	short := h.register(t, nosec, "ep=short&lt=60")
	h.register(t, nosec, "ep=long&lt=3600")
	renewed := h.register(t, nosec, "ep=renewed&lt=60")

	if n := h.r.expire(ctx, t0.Add(59*time.Second)); n != 0 {
		t.Fatalf("expire before any lifetime passed removed %d", n)
	}
	h.clock.Advance(30 * time.Second)
	if resp := h.call(nosec, addr1, coap.POST, "/rd/"+renewed, "", ""); resp.Code != coap.Changed {
		t.Fatalf("update: %s", resp.Code)
	}
	if n := h.r.expire(ctx, t0.Add(60*time.Second)); n != 1 {
		t.Fatalf("expire at 60s removed %d, want 1 (short)", n)
	}
	if _, ok := h.r.Lookup("short"); ok {
		t.Fatalf("short (%s) survived its lifetime", short)
	}
	h.checkConsistent(t)
	if n := h.r.expire(ctx, t0.Add(89*time.Second)); n != 0 {
		t.Fatalf("renewed registration expired before its new deadline")
	}
	if n := h.r.expire(ctx, t0.Add(90*time.Second)); n != 1 {
		t.Fatalf("expire at 90s removed %d, want 1 (renewed)", n)
	}
	if next, ok := h.r.nextExpiry(); !ok || !next.Equal(t0.Add(time.Hour)) {
		t.Fatalf("next expiry %v, %v; want %v", next, ok, t0.Add(time.Hour))
	}
	if n := h.r.expire(ctx, t0.Add(24*time.Hour)); n != 1 || h.r.Count() != 0 {
		t.Fatalf("expire at 24h removed %d, %d left", n, h.r.Count())
	}
	h.checkConsistent(t)
	if got := strings.Count(h.logs.String(), "registration expired"); got != 3 {
		t.Errorf("%d expiry log lines, want 3", got)
	}
}

func TestExpireManyOutOfOrder(t *testing.T) {
	h := newHarness(t, true)
	lifetimes := []int{50, 10, 40, 20, 30, 10, 60, 5}
	for i, lt := range lifetimes {
		h.register(t, nosec, fmt.Sprintf("ep=dev%d&lt=%d", i, lt))
	}
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{{4 * time.Second, 8}, {10 * time.Second, 5}, {35 * time.Second, 3}, {60 * time.Second, 0}} {
		h.r.expire(context.Background(), t0.Add(tc.at))
		if h.r.Count() != tc.want {
			t.Fatalf("at %v: %d live, want %d", tc.at, h.r.Count(), tc.want)
		}
		h.checkConsistent(t)
	}
}

func TestExpireStoreFailureStillRemoves(t *testing.T) {
	h := newHarness(t, true)
	h.register(t, nosec, "ep=a&lt=10")
	h.store.fail(nil, errors.New("delete failed"))
	if n := h.r.expire(context.Background(), t0.Add(10*time.Second)); n != 1 || h.r.Count() != 0 {
		t.Fatalf("expire removed %d, %d left", n, h.r.Count())
	}
}

// TestRunExpires runs the real expiry loop: Run starts with nothing to
// wait for, must be woken by the Register, and must remove the
// registration once its one-second lifetime has passed.
func TestRunExpires(t *testing.T) {
	h := newHarness(t, true)
	h.r.now = time.Now
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.r.Run(ctx) }()

	h.register(t, nosec, "ep=brief&lt=1")
	h.register(t, nosec, "ep=lasting&lt=3600")
	waitFor(t, 5*time.Second, func() bool { return h.r.Count() == 1 })
	if _, ok := h.r.Lookup("lasting"); !ok {
		t.Fatalf("wrong registration expired")
	}
	h.checkConsistent(t)

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Run did not return after cancel")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("condition not met within %v", within)
		case <-tick.C:
		}
	}
}

func TestLoad(t *testing.T) {
	base := Registration{Version: "1.1", Binding: "U", RootPath: "/", Objects: []Link{{Path: "/3/0"}},
		Identity: Identity{Kind: IdentityNone}, RegisteredAt: t0.Add(-time.Hour)}
	reg := func(id, ep string, lastSeen time.Duration, lifetime time.Duration) Registration {
		r := base
		r.ID, r.Endpoint, r.LastSeen, r.Lifetime = id, ep, t0.Add(lastSeen), lifetime
		return r
	}
	live := reg("live0001", "alive", -time.Minute, time.Hour)
	expired := reg("dead0001", "dead", -2*time.Hour, time.Hour)
	expiresNow := reg("dead0002", "edge", -time.Hour, time.Hour)
	older := reg("dupe0001", "dupe", -30*time.Minute, time.Hour)
	newer := reg("dupe0002", "dupe", -10*time.Minute, time.Hour)
	invalid := reg("bad00001", "", -time.Minute, time.Hour)

	store := newMemRegs(live, expired, expiresNow, older, newer, invalid)
	clock := &fakeClock{t: t0}
	r := NewRegistry(RegistryConfig{Store: store, Now: clock.Now, Logger: zerolog.Nop()})
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := r.Registrations()
	if want := []Registration{live, newer}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Registrations after Load\n got %+v\nwant %+v", got, want)
	}
	stored := store.snapshot()
	if len(stored) != 2 || stored[live.ID].ID == "" || stored[newer.ID].ID == "" {
		t.Fatalf("store after Load holds %v", stored)
	}
	if s := r.Session("alive"); s != nil {
		t.Fatalf("restored registration has a session")
	}
	// Restored registrations expire like any other.
	if n := r.expire(context.Background(), live.Expires()); n != 2 || r.Count() != 0 {
		t.Fatalf("expire after Load removed %d, %d left", n, r.Count())
	}
}

func TestLoadError(t *testing.T) {
	store := newMemRegs()
	store.listErr = errors.New("corrupt")
	r := NewRegistry(RegistryConfig{Store: store, Logger: zerolog.Nop()})
	if err := r.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Load = %v, want the store's error", err)
	}
}

func TestRegistrationsSortedAndCopied(t *testing.T) {
	h := newHarness(t, true)
	for _, ep := range []string{"c", "a", "b"} {
		h.register(t, nosec, "ep="+ep)
	}
	regs := h.r.Registrations()
	var eps []string
	for _, r := range regs {
		eps = append(eps, r.Endpoint)
	}
	if strings.Join(eps, ",") != "a,b,c" {
		t.Fatalf("Registrations order %v", eps)
	}
	regs[0].Objects[0].Path = "/mutated"
	if reg, _ := h.r.Lookup("a"); reg.Objects[0].Path == "/mutated" {
		t.Fatalf("Registrations returned shared object lists")
	}
	if h.r.Session("a") != nil || h.r.Session("nobody") != nil {
		t.Fatalf("Session without a coap session is not nil")
	}
}

func TestNoPSKKeyInLogs(t *testing.T) {
	h := newHarness(t, false)
	id := h.register(t, pskID, "ep=psk-dev")
	h.call(pskID, addr1, coap.POST, "/rd/"+id, "lt=10", "")
	h.call(pskID, addr1, coap.POST, "/rd", "ep=other-dev", objectList) // refused
	h.call(unknPSK, addr1, coap.POST, "/rd", "ep=psk-dev", objectList) // refused
	h.call(pskID, addr1, coap.DELETE, "/rd/"+id, "", "")
	logs := h.logs.String()
	for _, secret := range []string{string(pskKey), hex.EncodeToString(pskKey), fmt.Sprint(pskKey)} {
		if strings.Contains(logs, secret) {
			t.Fatalf("PSK key in logs:\n%s", logs)
		}
	}
	for _, want := range []string{`"component":"lwm2m"`, `"endpoint":"psk-dev"`, `"message":"registered"`,
		`"message":"updated"`, `"message":"deregistered"`, `"remote":"192.0.2.1:5683"`, `"lifetime":86400`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestRandomID(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := randomID()
		if len(id) != idLength || strings.Trim(id, idAlphabet) != "" {
			t.Fatalf("bad id %q", id)
		}
		if seen[id] {
			t.Fatalf("id %q drawn twice", id)
		}
		seen[id] = true
	}
}

// TestConcurrentRequests races Register, Update, De-register and expiry
// on a few endpoints; run it with -race. Whatever the interleaving, the
// registry and the store must agree at the end.
func TestConcurrentRequests(t *testing.T) {
	h := newHarness(t, true)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ep := fmt.Sprintf("ep=dev%d", g%3)
			for i := range 50 {
				resp := h.call(nosec, addr1, coap.POST, "/rd", ep+"&lt=30", objectList)
				if resp.Code != coap.Created {
					t.Errorf("register: %s", resp.Code)
					return
				}
				id := resp.LocationPath[1]
				switch i % 3 {
				case 0:
					h.call(nosec, addr2, coap.POST, "/rd/"+id, "lt=60", "")
				case 1:
					h.call(nosec, addr2, coap.DELETE, "/rd/"+id, "", "")
				default:
					h.r.expire(context.Background(), t0.Add(time.Duration(i)*time.Second))
				}
			}
		}()
	}
	wg.Wait()
	h.checkConsistent(t)
}

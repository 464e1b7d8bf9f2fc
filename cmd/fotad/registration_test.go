package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/coap/coaptest"
)

const objects = `</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</5/0>`

func TestRegistrationLifecycle(t *testing.T) {
	s := startServer(t, func(c *fileConfig) { c.OpenRegistration = true })
	for _, transport := range []string{"coaps", "coap"} {
		for _, version := range []string{"1.0", "1.1", "1.2"} {
			t.Run(transport+"/"+version, func(t *testing.T) {
				ep := "urn:dev:" + transport + "-" + version
				var d *device
				if transport == "coaps" {
					s.provision(ep, "id-"+ep, "key-"+ep)
					var err error
					if d, err = dialPSK(t, s.coapsAddr(), "id-"+ep, "key-"+ep, nil); err != nil {
						t.Fatal(err)
					}
				} else {
					d = dialPlain(t, s.coapAddr())
				}
				binding := map[string]string{"1.0": "UQ", "1.1": "U&Q", "1.2": "U"}[version]
				mustCode(t, "register", d.register("ep="+ep+"&lt=300&lwm2m="+version+"&b="+binding, objects), coap.Created)
				if len(d.location) != 2 || d.location[0] != "rd" {
					t.Fatalf("Location-Path %v, want rd/{id}", d.location)
				}
				reg, ok := s.d.registry.Lookup(ep)
				if !ok || reg.Version != version || reg.Lifetime != 300*time.Second || len(reg.Objects) != 4 {
					t.Fatalf("registry holds %+v", reg)
				}
				if want := version != "1.2"; reg.Queue != want {
					t.Fatalf("queue mode %v, want %v", reg.Queue, want)
				}

				mustCode(t, "update", d.update("lt=600"), coap.Changed)
				if reg, _ := s.d.registry.Lookup(ep); reg.Lifetime != 600*time.Second {
					t.Fatalf("lifetime after update %v, want 600s", reg.Lifetime)
				}
				if !storedHas(s, ep, 600*time.Second) {
					t.Fatal("updated lifetime not in the store")
				}

				mustCode(t, "de-register", d.deregister(), coap.Deleted)
				if _, ok := s.d.registry.Lookup(ep); ok {
					t.Fatal("still registered after de-register")
				}
				if storedHas(s, ep, 0) {
					t.Fatal("still stored after de-register")
				}
				mustCode(t, "update after de-register", d.update(""), coap.NotFound)
			})
		}
	}
}

// storedHas reports whether the store holds a registration of ep (with
// lifetime lt, unless lt is 0).
func storedHas(s *testServer, ep string, lt time.Duration) bool {
	for _, r := range s.storedRegistrations() {
		if r.Endpoint == ep && (lt == 0 || r.Lifetime == lt) {
			return true
		}
	}
	return false
}

func TestLifetimeExpiry(t *testing.T) {
	s := startServer(t, func(c *fileConfig) { c.OpenRegistration = true })
	s.provision("secure", "id-secure", "key-secure")
	sec, err := dialPSK(t, s.coapsAddr(), "id-secure", "key-secure", nil)
	if err != nil {
		t.Fatal(err)
	}
	mustCode(t, "register coaps", sec.register("ep=secure&lt=1&lwm2m=1.1", objects), coap.Created)
	plain := dialPlain(t, s.coapAddr())
	mustCode(t, "register coap", plain.register("ep=plain&lt=1&lwm2m=1.0", objects), coap.Created)
	keep := dialPlain(t, s.coapAddr())
	mustCode(t, "register long", keep.register("ep=keep&lt=3600", objects), coap.Created)

	waitFor(t, "expiry", func() bool { return s.d.registry.Count() == 1 })
	if _, ok := s.d.registry.Lookup("keep"); !ok {
		t.Fatal("the long-lived registration expired too")
	}
	waitFor(t, "expired registrations to leave the store", func() bool { return len(s.storedRegistrations()) == 1 })
	mustCode(t, "update after expiry", plain.update(""), coap.NotFound)
}

func TestMalformedRegistrations(t *testing.T) {
	s := startServer(t, func(c *fileConfig) { c.OpenRegistration = true })
	d := dialPlain(t, s.coapAddr())
	for _, tc := range []struct {
		name, query, links string
		want               coap.Code
	}{
		{"no ep", "lt=60&lwm2m=1.0", objects, coap.BadRequest},
		{"lt not a number", "ep=x&lt=abc", objects, coap.BadRequest},
		{"lt zero", "ep=x&lt=0", objects, coap.BadRequest},
		{"lt negative", "ep=x&lt=-5", objects, coap.BadRequest},
		{"bad link-format", "ep=x&lt=60", `</3/0`, coap.BadRequest},
		{"unknown version", "ep=x&lwm2m=1.3", objects, coap.PreconditionFailed},
		{"malformed version", "ep=x&lwm2m=one", objects, coap.BadRequest},
		{"bad binding", "ep=x&b=X", objects, coap.BadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustCode(t, tc.name, d.register(tc.query, tc.links), tc.want)
		})
	}
	if n := s.d.registry.Count(); n != 0 || len(s.storedRegistrations()) != 0 {
		t.Fatalf("%d registrations after malformed requests", n)
	}
}

func TestRefusedCredentials(t *testing.T) {
	s := startServer(t, func(c *fileConfig) {
		c.OpenRegistration = true
		c.CoAP.HandshakeTimeout = 2 * time.Second
	})
	s.provision("dev-a", "id-a", "key-a")
	s.provision("dev-b", "id-b", "key-b")

	t.Run("wrong psk", func(t *testing.T) {
		if _, err := dialPSK(t, s.coapsAddr(), "id-a", "not-key-a", nil); err == nil {
			t.Fatal("handshake with a wrong key succeeded")
		}
	})
	t.Run("unknown identity", func(t *testing.T) {
		if _, err := dialPSK(t, s.coapsAddr(), "id-nobody", "key", nil); err == nil {
			t.Fatal("handshake with an unknown identity succeeded")
		}
	})
	t.Run("identity of another endpoint", func(t *testing.T) {
		d, err := dialPSK(t, s.coapsAddr(), "id-a", "key-a", nil)
		if err != nil {
			t.Fatal(err)
		}
		mustCode(t, "register dev-b with dev-a's identity", d.register("ep=dev-b&lt=60&lwm2m=1.1", objects), coap.Forbidden)
	})
	t.Run("nosec for a device with credentials", func(t *testing.T) {
		mustCode(t, "plain register of dev-a", dialPlain(t, s.coapAddr()).register("ep=dev-a&lt=60", objects), coap.Forbidden)
	})
	if n := s.d.registry.Count(); n != 0 || len(s.storedRegistrations()) != 0 {
		t.Fatalf("%d registrations stored after refusals", n)
	}
	st := s.d.coap.Stats().Handshakes
	if st[coap.HandshakeUnknownIdentity] == 0 || st[coap.HandshakeBadKey] == 0 {
		t.Fatalf("handshake outcomes not counted: %v", st)
	}

	t.Run("update from another identity", func(t *testing.T) {
		a, err := dialPSK(t, s.coapsAddr(), "id-a", "key-a", nil)
		if err != nil {
			t.Fatal(err)
		}
		mustCode(t, "register dev-a", a.register("ep=dev-a&lt=60&lwm2m=1.1", objects), coap.Created)
		b, err := dialPSK(t, s.coapsAddr(), "id-b", "key-b", nil)
		if err != nil {
			t.Fatal(err)
		}
		b.location = a.location
		mustCode(t, "dev-b updating dev-a", b.update("lt=9999"), coap.Forbidden)
		mustCode(t, "dev-b de-registering dev-a", b.deregister(), coap.Forbidden)
		if reg, ok := s.d.registry.Lookup("dev-a"); !ok || reg.Lifetime != 60*time.Second {
			t.Fatalf("dev-a's registration changed: %+v", reg)
		}
	})
}

func TestRegistrationFollowsNATRebinding(t *testing.T) {
	s := startServer(t, nil)
	s.provision("nat-dev", "id-nat", "key-nat")
	relay := coaptest.NewRelay(t, s.d.coap.DTLSAddr())
	d, err := dialPSK(t, relay.Addr().String(), "id-nat", "key-nat", nil)
	if err != nil {
		t.Fatal(err)
	}
	mustCode(t, "register", d.register("ep=nat-dev&lt=300&lwm2m=1.1", objects), coap.Created)
	before, _ := s.d.registry.Lookup("nat-dev")
	// fotad reads /3/0/3 after a Register: let that exchange end first, so
	// that the rebinding happens on an idle session, as this test means.
	waitFor(t, "the firmware version read", func() bool { _, ok := s.d.inventory.Installed("nat-dev"); return ok })

	relay.Rebind(t)
	mustCode(t, "update from the new mapping", d.update(""), coap.Changed)
	after, ok := s.d.registry.Lookup("nat-dev")
	if !ok || after.ID != before.ID {
		t.Fatalf("update did not reach the same registration: %+v", after)
	}
	if after.Address != relay.OutsideAddr() || after.Address == before.Address {
		t.Fatalf("registration address %s, want the new mapping %s", after.Address, relay.OutsideAddr())
	}
	sess := s.d.registry.Session("nat-dev")
	if sess == nil {
		t.Fatal("no session for the device")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := sess.Do(ctx, coap.NewRequest(coap.GET, "/3/0/3"))
	if err != nil || string(resp.Payload) != "1.0.0" {
		t.Fatalf("server-initiated read after rebinding: %v %q", err, resp.Payload)
	}
}

func TestRestartKeepsDevicesAndRegistrations(t *testing.T) {
	s := startServer(t, func(c *fileConfig) {
		// Fixed ports so the device's session can come back to the same server.
		c.CoAP.CoAPSListen = freeUDPAddr(t)
	})
	s.provision("persist", "id-persist", "key-persist")
	d, err := dialPSK(t, s.coapsAddr(), "id-persist", "key-persist", nil)
	if err != nil {
		t.Fatal(err)
	}
	mustCode(t, "register", d.register("ep=persist&lt=600&lwm2m=1.2", objects), coap.Created)
	reg, _ := s.d.registry.Lookup("persist")

	s.restart()

	if got, ok := s.d.registry.Lookup("persist"); !ok || got.ID != reg.ID || got.Version != "1.2" || len(got.Objects) != 4 {
		t.Fatalf("after restart: %+v (ok=%v)", got, ok)
	}
	var dev map[string]any
	if code := s.api("GET", "/api/v1/devices/persist", nil, &dev); code != 200 || dev["psk_identity"] != "id-persist" {
		t.Fatalf("device after restart: HTTP %d %v", code, dev)
	}
	// The old DTLS session died with the old process: the device opens a
	// new one and its Update still reaches its registration.
	d2, err := dialPSK(t, s.coapsAddr(), "id-persist", "key-persist", nil)
	if err != nil {
		t.Fatal(err)
	}
	d2.location = d.location
	mustCode(t, "update over a new session", d2.update(""), coap.Changed)
}

func freeUDPAddr(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

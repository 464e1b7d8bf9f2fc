package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
)

// Interop with real third-party peers: the example clients of Debian's
// libcoap3-bin register, update and de-register against an in-process
// fotad. libcoap exits 0 even when a request fails, so every step is
// judged by the server's state; the client's debug output is checked too
// for the response code it saw.

// libcoapClients are the libcoap example clients, one per DTLS library,
// with the PSK cipher suite each picks from what fotad offers (as the
// library names it). Both suites must keep working: a client that stops
// picking its suite leaves the suite untested here, so the test says so.
var libcoapClients = []struct {
	name  string
	psk   bool
	suite string
}{
	{"coap-client-openssl", true, "PSK-AES128-GCM-SHA256"},
	{"coap-client-gnutls", true, "GNUTLS_ECDHE_PSK_AES_128_CBC_SHA256"},
	{"coap-client-notls", false, ""},
}

func TestInteropLibcoapLifecycle(t *testing.T) {
	for _, c := range libcoapClients {
		t.Run(c.name, func(t *testing.T) {
			bin := libcoapClient(t, c.name)
			t.Parallel()
			s := startServer(t, func(cfg *fileConfig) { cfg.OpenRegistration = !c.psk })
			ep, id, key := "libcoap-"+c.name, "id-"+c.name, "key-"+c.name
			var base string
			var creds []string
			if c.psk {
				s.provision(ep, id, key)
				base, creds = "coaps://"+s.coapsAddr(), []string{"-u", id, "-k", key}
			} else {
				base = "coap://" + s.coapAddr()
			}

			out := runLibcoap(t, bin, append(creds, "-m", "post", "-t", "40", "-e", "</1/0>,</3/0>,</5/0>",
				base+"/rd?ep="+ep+"&lt=60&lwm2m=1.1&b=U")...)
			reg, ok := s.d.registry.Lookup(ep)
			if !ok {
				t.Fatalf("not registered after libcoap's Register; libcoap saw %v:\n%s", out.codes, out.text)
			}
			wantID := "nosec"
			if c.psk {
				wantID = "psk:" + id
			}
			if reg.Version != "1.1" || reg.Lifetime != 60*time.Second || reg.Binding != "U" ||
				len(reg.Objects) != 3 || reg.Identity.String() != wantID {
				t.Fatalf("registry holds %+v", reg)
			}
			if !storedHas(s, ep, 60*time.Second) {
				t.Fatal("registration not in the store")
			}
			out.mustSee(t, "2.01")
			if out.suite != c.suite {
				t.Errorf("%s negotiated cipher suite %q, want %q (update the table if a newer libcoap prefers another suite)", c.name, out.suite, c.suite)
			}
			if loc := strings.Join(out.location, "/"); loc != "rd/"+reg.ID {
				t.Fatalf("libcoap saw Location-Path %q, want rd/%s", loc, reg.ID)
			}

			// Each libcoap run is a new session from a new port: the
			// Update and De-register reach the registration by its
			// location and identity.
			out = runLibcoap(t, bin, append(creds, "-m", "post", base+"/rd/"+reg.ID+"?lt=120")...)
			if got, _ := s.d.registry.Lookup(ep); got.Lifetime != 120*time.Second || got.ID != reg.ID {
				t.Fatalf("after libcoap's Update the registry holds %+v; libcoap saw %v", got, out.codes)
			}
			if !storedHas(s, ep, 120*time.Second) {
				t.Fatal("updated lifetime not in the store")
			}
			out.mustSee(t, "2.04")

			out = runLibcoap(t, bin, append(creds, "-m", "delete", base+"/rd/"+reg.ID)...)
			if _, ok := s.d.registry.Lookup(ep); ok {
				t.Fatalf("still registered after libcoap's De-register; libcoap saw %v", out.codes)
			}
			if storedHas(s, ep, 0) {
				t.Fatal("still stored after de-register")
			}
			out.mustSee(t, "2.02")
		})
	}
}

func TestInteropLibcoapWrongKey(t *testing.T) {
	for _, c := range libcoapClients {
		if !c.psk {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			bin := libcoapClient(t, c.name)
			t.Parallel()
			s := startServer(t, func(cfg *fileConfig) { cfg.CoAP.HandshakeTimeout = 2 * time.Second })
			s.provision("victim", "id-victim", "key-victim")

			// The handshake never completes, so libcoap gives up after -B.
			out := runLibcoap(t, bin, "-u", "id-victim", "-k", "not-the-key", "-B", "3",
				"-m", "post", "-t", "40", "-e", "</3/0>",
				"coaps://"+s.coapsAddr()+"/rd?ep=victim&lt=60&lwm2m=1.1")
			if len(out.codes) != 0 {
				t.Errorf("libcoap got responses %v with a wrong key", out.codes)
			}
			waitFor(t, "the server to count the failed handshake", func() bool {
				return s.d.coap.Stats().Handshakes[coap.HandshakeBadKey] > 0
			})
			if st := s.d.coap.Stats().Handshakes; st[coap.HandshakeOK] != 0 {
				t.Fatalf("handshake outcomes %v: a wrong key got through", st)
			}
			if n := s.d.registry.Count(); n != 0 || len(s.storedRegistrations()) != 0 {
				t.Fatalf("%d registrations after a handshake with a wrong key", n)
			}
		})
	}
}

// libcoapClient returns the path of a libcoap example client. Outside CI a
// missing client skips the test; CI installs them, so there it fails.
func libcoapClient(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("%s not found, and CI must run the interop tests: install Debian's libcoap3-bin (.ci/run does)", name)
	}
	t.Skipf("%s not found: apt-get install libcoap3-bin to run the interop tests with libcoap", name)
	return ""
}

// libcoapOutput is what a libcoap client printed at debug level.
type libcoapOutput struct {
	text     string
	codes    []string // response codes received, "2.01"
	location []string // Location-Path of the last response that had one
	suite    string   // DTLS cipher suite, as the TLS library names it
}

var (
	// A PDU dump: "v:1 t:ACK c:2.01 i:82e8 {01} [ Location-Path:rd, ... ]".
	// Requests show their method ("c:POST") and so do not match.
	libcoapResponse = regexp.MustCompile(`(?m)^v:1 t:\w+ c:(\d\.\d\d) .*$`)
	libcoapLocation = regexp.MustCompile(`Location-Path:([^,\] ]+)`)
	// OpenSSL: "Using cipher: PSK-AES128-GCM-SHA256"; GnuTLS: "Selected
	// cipher suite: GNUTLS_ECDHE_PSK_AES_128_CBC_SHA256".
	libcoapSuite = regexp.MustCompile(`(?:Using cipher|Selected cipher suite): (\S+)`)
)

// runLibcoap runs a libcoap client with full debug output, bounded in time.
func runLibcoap(t *testing.T, bin string, args ...string) libcoapOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// -v 9 shows the PDUs and the cipher suite; a later -B wins.
	args = append([]string{"-v", "9", "-B", "10"}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = time.Second
	b, err := cmd.CombinedOutput()
	out := libcoapOutput{text: string(b)}
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after 30 s:\n%s", bin, strings.Join(args, " "), b)
	}
	if err != nil {
		t.Fatalf("%s %s: %v:\n%s", bin, strings.Join(args, " "), err, b)
	}
	if m := libcoapSuite.FindStringSubmatch(out.text); m != nil {
		out.suite = m[1]
	}
	for _, m := range libcoapResponse.FindAllStringSubmatch(out.text, -1) {
		out.codes = append(out.codes, m[1])
		if locs := libcoapLocation.FindAllStringSubmatch(m[0], -1); len(locs) > 0 {
			out.location = out.location[:0]
			for _, l := range locs {
				out.location = append(out.location, l[1])
			}
		}
	}
	return out
}

// mustSee fails unless the client received exactly one response, with code.
func (o libcoapOutput) mustSee(t *testing.T, code string) {
	t.Helper()
	if len(o.codes) != 1 || o.codes[0] != code {
		t.Fatalf("libcoap saw responses %v, want [%s]:\n%s", o.codes, code, o.text)
	}
}

package coap

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fotahub/fota/coap/coaptest"
	piondtls "github.com/pion/dtls/v3"
	"github.com/rs/zerolog"
)

var testKeys = map[string][]byte{"dev-1": []byte("secret-1"), "dev-2": []byte("secret-2")}

func testPSK(id string) ([]byte, error) {
	if k, ok := testKeys[id]; ok {
		return k, nil
	}
	return nil, ErrUnknownIdentity
}

// whoami answers every request with the identity and session of its peer.
var whoami = HandlerFunc(func(_ context.Context, r *Request) Response {
	switch r.Path {
	case "/panic":
		panic("handler bug")
	case "/rd":
		return Response{Code: Created, ContentFormat: NoFormat, LocationPath: []string{"rd", "abc"}}
	}
	body := r.Identity.Mode.String() + ":" + r.Identity.Name
	return Response{Code: Content, ContentFormat: 0, Payload: []byte(body)}
})

func startServer(t testing.TB, mutate func(*Config)) *Server {
	t.Helper()
	return startServerWith(t, mutate, nil)
}

// startServerWith also lets the test change the server between Listen and
// Serve, for settings Validate refuses (short parking times).
func startServerWith(t testing.TB, mutate func(*Config), beforeServe func(*Server)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DTLSAddr = "127.0.0.1:0"
	cfg.PSK = testPSK
	cfg.Handler = whoami
	cfg.Tick = 50 * time.Millisecond
	cfg.HandshakeTimeout = 5 * time.Second
	cfg.FlightInterval = 200 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if beforeServe != nil {
		beforeServe(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return s
}

func get(t testing.TB, c *ClientConn, path string) Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, NewRequest(GET, path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

func dialPSK(t testing.TB, addr net.Addr, id string, key []byte, mutate func(*ClientConfig)) (*ClientConn, error) {
	t.Helper()
	cfg := ClientConfig{PSKIdentity: id, PSKKey: key, ConnectionID: true, HandshakeTimeout: 3 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := DialDTLS(context.Background(), addr.String(), cfg)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func TestPSKCipherSuites(t *testing.T) {
	s := startServer(t, nil)
	for _, suite := range pskSuites {
		t.Run(suite.String(), func(t *testing.T) {
			c, err := dialPSK(t, s.DTLSAddr(), "dev-1", testKeys["dev-1"], func(c *ClientConfig) {
				c.CipherSuites = []uint16{uint16(suite)}
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := string(get(t, c, "/x").Payload); got != "psk:dev-1" {
				t.Fatalf("identity = %q, want psk:dev-1", got)
			}
		})
	}
}

func TestHandshakeRefused(t *testing.T) {
	s := startServer(t, func(c *Config) {
		c.HandshakeTimeout = 2 * time.Second
		c.Logger = zerolog.New(zerolog.NewTestWriter(t))
	})
	cases := []struct {
		name, id string
		key      []byte
		outcome  string
	}{
		{"unknown identity", "nobody", []byte("x"), HandshakeUnknownIdentity},
		// A record that fails its MAC is dropped silently (RFC 6347
		// §4.1.2.7): the handshake times out, and the failed decryption
		// of the peer's Finished names the reason.
		{"wrong key", "dev-1", []byte("not-the-key"), HandshakeBadKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats().Handshakes[tc.outcome]
			if _, err := dialPSK(t, s.DTLSAddr(), tc.id, tc.key, nil); err == nil {
				t.Fatal("handshake succeeded")
			}
			waitFor(t, func() bool { return s.Stats().Handshakes[tc.outcome] > before })
		})
	}
	if n := s.Stats().Handshakes[HandshakeOK]; n != 0 {
		t.Fatalf("%d handshakes succeeded", n)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestX509(t *testing.T) {
	ca := coaptest.NewCA(t)
	serverCert := ca.Issue(t, "fotad")
	pool := ca.Pool()
	s := startServer(t, func(c *Config) { c.Certificate = &serverCert; c.ClientCAs = pool })

	t.Run("verified device", func(t *testing.T) {
		devCert := ca.Issue(t, "urn:dev:cert-1")
		c, err := DialDTLS(context.Background(), s.DTLSAddr().String(), ClientConfig{
			Certificate: &devCert, RootCAs: pool, ServerName: "fotad", HandshakeTimeout: 3 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := string(get(t, c, "/x").Payload); got != "x509:urn:dev:cert-1" {
			t.Fatalf("identity = %q", got)
		}
	})
	t.Run("foreign CA", func(t *testing.T) {
		devCert := coaptest.NewCA(t).Issue(t, "urn:dev:evil")
		before := s.Stats().Handshakes[HandshakeFailed] + s.Stats().Handshakes[HandshakeBadCertificate]
		_, err := DialDTLS(context.Background(), s.DTLSAddr().String(), ClientConfig{
			Certificate: &devCert, RootCAs: pool, ServerName: "fotad", HandshakeTimeout: 3 * time.Second,
		})
		if err == nil {
			t.Fatal("handshake with a certificate from another CA succeeded")
		}
		waitFor(t, func() bool {
			st := s.Stats().Handshakes
			return st[HandshakeFailed]+st[HandshakeBadCertificate] > before
		})
	})
}

// sessionsByIdentity lists the server's open sessions of one identity.
func sessionsByIdentity(s *Server, name string) []*Session {
	var out []*Session
	for _, sess := range s.sessions.snapshot(nil) {
		if sess.identity.Name == name {
			out = append(out, sess)
		}
	}
	return out
}

func TestConnectionIDSurvivesNATRebinding(t *testing.T) {
	s := startServer(t, nil)
	r := coaptest.NewRelay(t, s.DTLSAddr())
	device := HandlerFunc(func(_ context.Context, req *Request) Response {
		return Response{Code: Content, ContentFormat: 0, Payload: []byte("device:" + req.Path)}
	})
	c, err := dialPSK(t, r.Addr(), "dev-1", testKeys["dev-1"], func(c *ClientConfig) { c.Handler = device })
	if err != nil {
		t.Fatal(err)
	}
	get(t, c, "/before")
	sessions := sessionsByIdentity(s, "dev-1")
	if len(sessions) != 1 {
		t.Fatalf("%d sessions, want 1", len(sessions))
	}
	sess := sessions[0]
	first := sess.RemoteAddr().String()

	r.Rebind(t)
	if got := string(get(t, c, "/after").Payload); got != "psk:dev-1" {
		t.Fatalf("after rebinding: %q", got)
	}
	if now := sess.RemoteAddr().String(); now == first || now != r.OutsideAddr() {
		t.Fatalf("session address %s, want the new mapping %s (was %s)", now, r.OutsideAddr(), first)
	}
	if n := len(sessionsByIdentity(s, "dev-1")); n != 1 {
		t.Fatalf("%d sessions after rebinding, want the same one", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := sess.Do(ctx, NewRequest(GET, "/3/0/3"))
	if err != nil {
		t.Fatalf("server-initiated request after rebinding: %v", err)
	}
	if string(resp.Payload) != "device:/3/0/3" {
		t.Fatalf("device answered %q", resp.Payload)
	}
}

func TestWithoutConnectionIDRebindingLosesSession(t *testing.T) {
	s := startServer(t, func(c *Config) { c.CIDLength = 0 })
	r := coaptest.NewRelay(t, s.DTLSAddr())
	c, err := dialPSK(t, r.Addr(), "dev-1", testKeys["dev-1"], nil)
	if err != nil {
		t.Fatal(err)
	}
	get(t, c, "/before")
	r.Rebind(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, NewRequest(GET, "/after")); err == nil {
		t.Fatal("request reached the server from an unknown address without a Connection ID")
	}
}

// device is a test client on a socket it can lose, as a device does when
// it loses power, and bind again on the same port when it boots.
type device struct {
	t    *testing.T
	s    *Server
	port string
	pc   net.PacketConn
	c    *ClientConn
}

func bootDevice(t *testing.T, s *Server, port string) *device {
	t.Helper()
	pc, err := net.ListenPacket("udp", port)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dialPSK(t, s.DTLSAddr(), "dev-1", testKeys["dev-1"], func(c *ClientConfig) { c.PacketConn = pc })
	if err != nil {
		t.Fatalf("handshake from %s: %v", port, err)
	}
	return &device{t: t, s: s, port: pc.LocalAddr().String(), pc: pc, c: c}
}

// reboot drops the socket without a close_notify and boots again on the
// same address and port.
func (d *device) reboot() *device {
	d.t.Helper()
	_ = d.pc.Close()
	_ = d.c.Close()
	return bootDevice(d.t, d.s, d.port)
}

func TestRebootedDeviceHandshakesAgainAtOnce(t *testing.T) {
	s := startServer(t, nil)
	d := bootDevice(t, s, "127.0.0.1:0")
	get(t, d.c, "/before-reboot")
	old := sessionsByIdentity(s, "dev-1")
	get(t, d.reboot().c, "/after-reboot")
	waitFor(t, func() bool {
		now := sessionsByIdentity(s, "dev-1")
		return len(now) == 1 && now[0] != old[0]
	})
}

func TestForgedClientHelloDoesNotEvictSession(t *testing.T) {
	s := startServer(t, nil)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := dialPSK(t, s.DTLSAddr(), "dev-1", testKeys["dev-1"], func(c *ClientConfig) {
		c.PacketConn = pc
		c.ConnectionID = false
	})
	if err != nil {
		t.Fatal(err)
	}
	get(t, c, "/before")
	// A handshake with a wrong key from the device's own address and port,
	// as an attacker spoofing the address would start it.
	attacker, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	forged, err := piondtls.ClientWithOptions(attackerConn{attacker, pc}, s.DTLSAddr(),
		piondtls.WithPSK(func([]byte) ([]byte, error) { return []byte("wrong"), nil }),
		piondtls.WithPSKIdentityHint([]byte("dev-1")),
		piondtls.WithCipherSuites(piondtls.TLS_PSK_WITH_AES_128_CCM_8))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = forged.HandshakeContext(ctx)
	}()
	waitFor(t, func() bool {
		s.dtlsLn.demux.mu.Lock()
		defer s.dtlsLn.demux.mu.Unlock()
		c := s.dtlsLn.demux.byAddr[pc.LocalAddr().(*net.UDPAddr).AddrPort()]
		return c != nil && c.prev != nil
	})
	if got := string(get(t, c, "/during").Payload); got != "psk:dev-1" {
		t.Fatalf("device during a forged handshake: %q", got)
	}
	if n := len(sessionsByIdentity(s, "dev-1")); n != 1 {
		t.Fatalf("%d sessions, want the device's one", n)
	}
}

// attackerConn writes through the device's socket (so records carry its
// source address) but never reads.
type attackerConn struct {
	net.PacketConn
	device net.PacketConn
}

func (a attackerConn) WriteTo(b []byte, addr net.Addr) (int, error) { return a.device.WriteTo(b, addr) }

func TestPlainCoAP(t *testing.T) {
	s := startServer(t, func(c *Config) { c.PlainAddr = "127.0.0.1:0" })
	c, err := DialUDP(context.Background(), s.PlainAddr().String(), ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := string(get(t, c, "/x").Payload); got != "nosec:" {
		t.Fatalf("identity = %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"no listener":  func(c *Config) { c.DTLSAddr = "" },
		"no psk":       func(c *Config) { c.PSK = nil },
		"bad block":    func(c *Config) { c.MaxBlockSize = 1000 },
		"bad cid":      func(c *Config) { c.CIDLength = 40 },
		"no handler":   func(c *Config) { c.Handler = nil },
		"zero timeout": func(c *Config) { c.BlockwiseTimeout = 0 },
		"small buffer": func(c *Config) { c.ReadBuffer = 10 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.PSK = testPSK
			cfg.Handler = whoami
			mutate(&cfg)
			if err := cfg.Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestResponseOptionsAndPanics(t *testing.T) {
	s := startServer(t, nil)
	c, err := dialPSK(t, s.DTLSAddr(), "dev-1", testKeys["dev-1"], nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := NewRequest(POST, "/rd")
	req.Query = []string{"ep=dev-1", "lt=60"}
	req.Payload, req.ContentFormat = []byte("</3/0>"), 40
	resp, err := c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != Created || strings.Join(resp.LocationPath, "/") != "rd/abc" {
		t.Fatalf("got %v %v, want 2.01 rd/abc", resp.Code, resp.LocationPath)
	}
	if got := get(t, c, "/panic").Code; got != InternalServerError {
		t.Fatalf("panicking handler answered %v, want 5.00", got)
	}
	if got := string(get(t, c, "/still-up").Payload); got != "psk:dev-1" {
		t.Fatalf("after a handler panic: %q", got)
	}
}

// TestShutdownRightAfterStart stops a server whose Serve may not have
// started its goroutines yet: no race between wg.Add and wg.Wait.
func TestShutdownRightAfterStart(t *testing.T) {
	for range 20 {
		cfg := DefaultConfig()
		cfg.DTLSAddr = "127.0.0.1:0"
		cfg.PSK = testPSK
		cfg.Handler = whoami
		s, err := Listen(cfg)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(context.Background()) }()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

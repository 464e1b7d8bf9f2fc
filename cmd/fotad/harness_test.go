package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
)

// testServer is a whole fotad started in-process on loopback port 0.
type testServer struct {
	t   testing.TB
	cfg fileConfig
	d   *daemon
}

// startServer starts fotad with a fresh data directory, plain CoAP on and
// open registration off unless mutate says otherwise.
func startServer(t testing.TB, mutate func(*fileConfig)) *testServer {
	t.Helper()
	cfg := defaultFileConfig()
	cfg.DataDir = t.TempDir()
	cfg.API.Listen = "127.0.0.1:0"
	cfg.CoAP.CoAPSListen = "127.0.0.1:0"
	cfg.CoAP.CoAPListen = "127.0.0.1:0"
	cfg.CoAP.Tick = 50 * time.Millisecond
	cfg.CoAP.FlightInterval = 200 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, cfg: cfg}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) start() {
	s.t.Helper()
	events := api.NewJournal(0)
	log := zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(s.t), events)).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	d, err := start(s.cfg, log, events)
	if err != nil {
		s.t.Fatal(err)
	}
	s.d = d
}

func (s *testServer) stop() {
	if s.d == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.d.shutdown(ctx); err != nil {
		s.t.Errorf("shutdown: %v", err)
	}
	s.d = nil
}

// restart shuts fotad down gracefully and starts it again on the same data.
func (s *testServer) restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

func (s *testServer) coapsAddr() string { return s.d.coap.DTLSAddr().String() }
func (s *testServer) coapAddr() string  { return s.d.coap.PlainAddr().String() }
func (s *testServer) apiURL() string    { return "http://" + s.d.apiLn.Addr().String() }

// api calls the admin API with the server's token.
func (s *testServer) api(method, path string, body any, out any) int {
	s.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, s.apiURL()+path, rd)
	req.Header.Set("Authorization", "Bearer "+s.d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// provision adds a PSK device through the admin API.
func (s *testServer) provision(endpoint, identity, key string) {
	s.t.Helper()
	code := s.api("POST", "/api/v1/devices", map[string]any{
		"endpoint": endpoint, "psk_identity": identity, "psk_key": hex.EncodeToString([]byte(key)),
	}, nil)
	if code != http.StatusCreated {
		s.t.Fatalf("provision %s: HTTP %d", endpoint, code)
	}
}

// storedRegistrations reads the registrations from the store itself.
func (s *testServer) storedRegistrations() []lwm2m.Registration {
	s.t.Helper()
	regs, err := s.d.db.Registrations(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return regs
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, what, 10*time.Second, cond)
}

// waitWithin polls cond until it holds or d passes.
func waitWithin(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// device is an LwM2M client under test.
type device struct {
	t        testing.TB
	conn     *coap.ClientConn
	endpoint string
	location []string
}

// answerDevice serves the few resources a test reads from a device.
var answerDevice = coap.HandlerFunc(func(_ context.Context, r *coap.Request) coap.Response {
	if r.Path == "/3/0/3" {
		return coap.Response{Code: coap.Content, ContentFormat: 0, Payload: []byte("1.0.0")}
	}
	return coap.Reply(coap.NotFound)
})

func dialPSK(t testing.TB, addr, identity, key string, via net.PacketConn) (*device, error) {
	t.Helper()
	conn, err := coap.DialDTLS(context.Background(), addr, coap.ClientConfig{
		PSKIdentity: identity, PSKKey: []byte(key), ConnectionID: true,
		Handler: answerDevice, PacketConn: via, HandshakeTimeout: 3 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &device{t: t, conn: conn}, nil
}

func dialPlain(t testing.TB, addr string) *device {
	t.Helper()
	conn, err := coap.DialUDP(context.Background(), addr, coap.ClientConfig{Handler: answerDevice})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &device{t: t, conn: conn}
}

func (d *device) do(req coap.Request) coap.Response {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := d.conn.Do(ctx, req)
	if err != nil {
		d.t.Fatalf("%v %s: %v", req.Method, req.Path, err)
	}
	return resp
}

// register sends Register with the given query and object list.
func (d *device) register(query string, links string) coap.Response {
	d.t.Helper()
	req := coap.NewRequest(coap.POST, "/rd")
	if query != "" {
		req.Query = strings.Split(query, "&")
	}
	req.ContentFormat, req.Payload = 40, []byte(links)
	resp := d.do(req)
	if resp.Code == coap.Created {
		d.location = resp.LocationPath
		for _, q := range req.Query {
			if ep, ok := strings.CutPrefix(q, "ep="); ok {
				d.endpoint = ep
			}
		}
	}
	return resp
}

func (d *device) locationPath() string { return "/" + strings.Join(d.location, "/") }

func (d *device) update(query string) coap.Response {
	d.t.Helper()
	req := coap.NewRequest(coap.POST, d.locationPath())
	if query != "" {
		req.Query = strings.Split(query, "&")
	}
	return d.do(req)
}

func (d *device) deregister() coap.Response {
	d.t.Helper()
	return d.do(coap.NewRequest(coap.DELETE, d.locationPath()))
}

func mustCode(t testing.TB, what string, got coap.Response, want coap.Code) {
	t.Helper()
	if got.Code != want {
		t.Fatalf("%s: got %v, want %v", what, got.Code, want)
	}
}

// addImages stores v1 as 1.0.0 and v2 as 2.0.0 of the class, straight
// into the firmware service.
func (s *testServer) addImages(class string, v1, v2 []byte) {
	s.t.Helper()
	for _, im := range []struct {
		b []byte
		v string
	}{{v1, "1.0.0"}, {v2, "2.0.0"}} {
		if _, _, err := s.d.firmware.AddImage(context.Background(), im.b, im.v, class, ""); err != nil {
			s.t.Fatal(err)
		}
	}
}

package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap/coaptest"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

// TestSimulatedDeviceAgainstFotad runs a simulated queue-mode device over
// an emulated Wi-Fi link against fotad: it registers, sleeps, and answers
// reads of Objects 3 and 5 queued for it while it slept.
func TestSimulatedDeviceAgainstFotad(t *testing.T) {
	s := startServer(t, func(c *fileConfig) { c.LwM2M.AwakeTime = 300 * time.Millisecond })
	s.provision("sim-q", "sim-q-id", "sim-q-key")
	prof, _ := link.Lookup("wifi")
	server, _ := net.ResolveUDPAddr("udp", s.coapsAddr())
	relay, err := link.NewRelay(server, prof, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	runDevice(t, simulator.Config{Endpoint: "sim-q", PSKIdentity: "sim-q-id", PSKKey: []byte("sim-q-key"),
		Server: relay.Addr().String(), Firmware: []byte(strings.Repeat("image ", 2000)), FirmwareVersion: "3.1.0",
		Queue: true, Awake: 300 * time.Millisecond, Lifetime: 3 * time.Second,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})

	time.Sleep(600 * time.Millisecond) // past its awake time: asleep
	var res struct {
		Code   string
		Values []struct {
			Path  string
			Value any
		}
		Ticket *struct{ ID, State string } `json:"ticket"`
	}
	code := s.api("POST", "/api/v1/devices/sim-q/ops", map[string]any{"op": "read", "path": "/3/0/3", "async": true}, &res)
	if code != http.StatusAccepted || res.Ticket == nil || res.Ticket.State != "queued" {
		t.Fatalf("read of a sleeping device: HTTP %d %+v, want a queued ticket", code, res.Ticket)
	}
	var body struct {
		Ticket struct {
			State  string
			Result struct {
				Values []struct{ Value any }
			}
		}
	}
	code = s.api("GET", "/api/v1/tickets/"+res.Ticket.ID+"?wait=20s", nil, &body)
	if tk := body.Ticket; code != http.StatusOK || tk.State != "done" || len(tk.Result.Values) != 1 || tk.Result.Values[0].Value != "3.1.0" {
		t.Fatalf("queued read after the device woke: HTTP %d %+v", code, tk)
	}
	code = s.api("POST", "/api/v1/devices/sim-q/ops", map[string]any{"op": "read", "path": "/5/0", "wait": "20s"}, &res)
	if code != http.StatusOK || len(res.Values) < 8 {
		t.Fatalf("read /5/0: HTTP %d %+v", code, res)
	}
	if st := relay.Stats(); st.Up.AirBytes == 0 || st.Down.AirBytes == 0 {
		t.Fatalf("nothing went through the link: %+v", st)
	}
}

// TestSimulatedX509Device registers a simulated device with a certificate
// and reads its firmware version.
func TestSimulatedX509Device(t *testing.T) {
	ca := coaptest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := coaptest.WritePEM(t, dir, "server", ca.Issue(t, "fotad.test"))
	s := startServer(t, func(c *fileConfig) {
		c.CoAP.X509 = x509Config{Certificate: certFile, Key: keyFile, ClientCA: ca.WriteCA(t, dir)}
	})
	cert := ca.Issue(t, "urn:dev:sim-x509")
	runDevice(t, simulator.Config{Endpoint: "urn:dev:sim-x509", Certificate: &cert, RootCAs: ca.Pool(),
		ServerName: "fotad.test", Server: s.coapsAddr(), Firmware: []byte("image"), FirmwareVersion: "4.0.1",
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	var res struct{ Values []struct{ Value any } }
	if code := s.api("POST", "/api/v1/devices/urn:dev:sim-x509/ops", map[string]any{"op": "read", "path": "/3/0/3"}, &res); code != http.StatusOK ||
		len(res.Values) != 1 || res.Values[0].Value != "4.0.1" {
		t.Fatalf("read over X.509: HTTP %d %+v", code, res)
	}
}

// runDevice runs a simulated device until the test ends and returns once
// it has registered.
func runDevice(t *testing.T, cfg simulator.Config) *simulator.Device {
	t.Helper()
	dev, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "registered", func() bool { return dev.Status().Registered })
	return dev
}

package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/coap/coaptest"
)

// TestX509Registration runs fotad in certificate mode from PEM files, as an
// operator configures it: a device registers under its certificate's
// Common Name and under no other name.
func TestX509Registration(t *testing.T) {
	ca := coaptest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := coaptest.WritePEM(t, dir, "server", ca.Issue(t, "fotad.test"))
	s := startServer(t, func(c *fileConfig) {
		c.CoAP.X509 = x509Config{Certificate: certFile, Key: keyFile, ClientCA: ca.WriteCA(t, dir)}
	})
	dial := func(cn string) *device {
		t.Helper()
		cert := ca.Issue(t, cn)
		conn, err := coap.DialDTLS(context.Background(), s.coapsAddr(), coap.ClientConfig{
			Certificate: &cert, RootCAs: ca.Pool(), ServerName: "fotad.test", HandshakeTimeout: 3 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return &device{t: t, conn: conn}
	}

	d := dial("urn:dev:x509-1")
	mustCode(t, "register as the certificate's CN", d.register("ep=urn:dev:x509-1&lt=300&lwm2m=1.1", objects), coap.Created)
	reg, ok := s.d.registry.Lookup("urn:dev:x509-1")
	if !ok || reg.Identity.Name != "urn:dev:x509-1" {
		t.Fatalf("registration %+v", reg)
	}
	mustCode(t, "register under another name", dial("urn:dev:x509-2").register("ep=urn:dev:x509-1&lt=300&lwm2m=1.1", objects), coap.Forbidden)
	mustCode(t, "1.1 register without ep takes the CN", dial("urn:dev:x509-3").register("lt=300&lwm2m=1.1", objects), coap.Created)
	if _, ok := s.d.registry.Lookup("urn:dev:x509-3"); !ok {
		t.Fatal("endpoint not derived from the certificate")
	}
}

// TestExampleConfig keeps configs/fotad.yaml loadable and valid.
func TestExampleConfig(t *testing.T) {
	cfg, err := loadConfig("../../configs/fotad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	tc, err := cfg.transport()
	if err != nil {
		t.Fatal(err)
	}
	tc.Handler = coap.HandlerFunc(func(context.Context, *coap.Request) coap.Response { return coap.Reply(coap.NotFound) })
	tc.PSK = func(string) ([]byte, error) { return nil, coap.ErrUnknownIdentity }
	if err := tc.Validate(); err != nil {
		t.Fatal(err)
	}
	if tc.ParkAfter != time.Minute || tc.CIDLength != 3 || cfg.API.Listen != "127.0.0.1:8080" {
		t.Fatalf("example config does not match the documented defaults: %+v", tc)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"unknown flag":   {"--nope"},
		"positional":     {"serve"},
		"bad log level":  {"--log-level", "loud"},
		"no listener":    {"--coaps", "", "--coap", ""},
		"missing config": {"--config", "/nonexistent/fotad.yaml"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseFlags(args, io.Discard); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

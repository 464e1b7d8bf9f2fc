package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

// deviceFlags are the settings of one device, shared by device and fleet.
type deviceFlags struct {
	endpoint, identity, keyHex, server string
	linkName, linksFile                string
	firmware, version, class, trustKey string
	client                             string
	lwm2m                              string
	queue                              bool
	lifetime, awake                    time.Duration
	blockSize                          int
	protocols                          string
	certFile, keyFile, caFile          string
	serverName                         string
	delivery                           int
	faults                             multiFlag
	jsonOut                            bool
	logLevel                           string
}

type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runDevice(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f deviceFlags
	fs := flag.NewFlagSet("fotasim device", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.endpoint, "endpoint", "", "LwM2M endpoint name (required)")
	fs.StringVar(&f.identity, "psk-identity", "", "DTLS PSK identity")
	fs.StringVar(&f.keyHex, "psk-key", "", "DTLS PSK key, hex")
	fs.StringVar(&f.certFile, "cert", "", "X.509: device certificate PEM (its CN is the endpoint)")
	fs.StringVar(&f.keyFile, "key", "", "X.509: device private key PEM")
	fs.StringVar(&f.caFile, "ca", "", "X.509: CA PEM that signed the server's certificate")
	fs.StringVar(&f.serverName, "server-name", "", "X.509: name in the server's certificate")
	fs.StringVar(&f.server, "server", "coaps://127.0.0.1:5684", "server URL, coaps:// or coap://")
	fs.StringVar(&f.linkName, "link", "wifi", "link profile, or none")
	fs.StringVar(&f.linksFile, "links", "", "YAML file with more link profiles")
	fs.StringVar(&f.client, "client", "native", "LwM2M client personality: native (fotad's signed packages), "+
		"zephyr (MCUboot images) or anjay (vendor blobs)")
	fs.StringVar(&f.firmware, "firmware", "", "the image the device runs at first (required); zephyr and anjay: in their format")
	fs.StringVar(&f.version, "version", "1.0.0", "its version, reported in /3/0/3 (native; the others read the image header)")
	fs.StringVar(&f.class, "class", "", "native: device class the packages must name")
	fs.StringVar(&f.trustKey, "trust-key", "", "native: PEM public key that signs packages")
	fs.StringVar(&f.lwm2m, "lwm2m", "1.1", "LwM2M version: 1.0, 1.1 or 1.2")
	fs.BoolVar(&f.queue, "queue", false, "queue mode: sleep between Updates")
	fs.DurationVar(&f.lifetime, "lifetime", 300*time.Second, "registration lifetime")
	fs.DurationVar(&f.awake, "awake", 93*time.Second, "queue mode: how long the device listens after it spoke")
	fs.IntVar(&f.blockSize, "block-size", 0, "Block2 size of downloads (0: the client's default: "+
		"native the largest the link MTU allows, zephyr 256, anjay 1024)")
	fs.StringVar(&f.protocols, "protocols", "0,1", "/5/0/8: firmware download protocols (0 CoAP, 1 CoAPS, 2 HTTP, 3 HTTPS)")
	fs.IntVar(&f.delivery, "delivery", 2, "/5/0/9: 0 pull only, 1 push only, 2 both")
	fs.Var(&f.faults, "fault", "inject a fault at start (repeatable): "+faultNames())
	fs.BoolVar(&f.jsonOut, "json", false, "print events as JSON lines")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.endpoint == "" || f.firmware == "" {
		return fmt.Errorf("--endpoint and --firmware are required")
	}
	image, err := os.ReadFile(f.firmware)
	if err != nil {
		return err
	}
	d, relay, err := buildDevice(f, image, 1, stderr)
	if err != nil {
		return err
	}
	if relay != nil {
		defer relay.Close()
	}
	for _, name := range f.faults {
		fault, err := simulator.ParseFault(name)
		if err != nil {
			return err
		}
		d.Inject(fault)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	enc := json.NewEncoder(stdout)
	for {
		select {
		case ev := <-d.Events():
			if f.jsonOut {
				_ = enc.Encode(ev)
			} else {
				fmt.Fprintf(stdout, "%s %s %s state=%d result=%d version=%s %s\n", ev.Time.Format("15:04:05.000"),
					ev.Endpoint, ev.Kind, ev.State, ev.Result, ev.Version, ev.Detail)
			}
		case err := <-done:
			if relay != nil {
				printLink(stdout, relay)
			}
			return err
		}
	}
}

// buildDevice makes the device and, unless the link is none, its relay.
func buildDevice(f deviceFlags, image []byte, seed uint64, stderr io.Writer) (*simulator.Device, *link.Relay, error) {
	server, secure, err := serverAddr(f.server)
	if err != nil {
		return nil, nil, err
	}
	trust, err := loadTrustKey(f.trustKey)
	if err != nil {
		return nil, nil, err
	}
	level, err := zerolog.ParseLevel(f.logLevel)
	if err != nil {
		return nil, nil, err
	}
	client, err := simulator.ParseClient(f.client)
	if err != nil {
		return nil, nil, fmt.Errorf("--client: %w", err)
	}
	cfg := simulator.Config{Endpoint: f.endpoint, PSKIdentity: f.identity, Server: server.String(), Client: client,
		Version: f.lwm2m, Lifetime: f.lifetime, Queue: f.queue, Awake: f.awake, Firmware: image,
		FirmwareVersion: f.version, Class: f.class, TrustKey: trust, BlockSize: f.blockSize,
		Delivery: f.delivery,
		Logger:   zerolog.New(stderr).Level(level).With().Timestamp().Logger()}
	for _, p := range splitList(f.protocols) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 5 {
			return nil, nil, fmt.Errorf("--protocols: %q is not 0-5", p)
		}
		cfg.Protocols = append(cfg.Protocols, n)
	}
	switch {
	case secure && f.certFile != "":
		if err := loadX509(&cfg, f); err != nil {
			return nil, nil, err
		}
	case secure:
		if cfg.PSKKey, err = hex.DecodeString(f.keyHex); err != nil || len(cfg.PSKKey) == 0 {
			return nil, nil, fmt.Errorf("--psk-key must be hex for a coaps:// server (or use --cert)")
		}
	}
	var relay *link.Relay
	if f.linkName != "none" {
		all, err := profiles(f.linksFile)
		if err != nil {
			return nil, nil, err
		}
		prof, ok := all[f.linkName]
		if !ok {
			return nil, nil, fmt.Errorf("no link profile %q (fotasim links lists them)", f.linkName)
		}
		if relay, err = link.NewRelay(server, prof, seed); err != nil {
			return nil, nil, err
		}
		cfg.Server = relay.Addr().String()
		cfg.DownloadVia = downloadVia(f.server, server, relay.Addr())
		if cfg.BlockSize == 0 && client == simulator.ClientNative {
			cfg.BlockSize = blockSize(prof)
		}
	}
	d, err := simulator.New(cfg)
	if err != nil {
		if relay != nil {
			_ = relay.Close()
		}
		return nil, nil, err
	}
	return d, relay, nil
}

// downloadVia sends the download sessions that zephyr and anjay open
// for a Package URI on fotad's coaps address through the device's relay,
// so that the link carries them as it carries the registration. The URI
// may name the server as the --server flag does or by its address.
func downloadVia(rawServer string, server, relay *net.UDPAddr) map[string]string {
	via := map[string]string{server.String(): relay.String()}
	if u, err := url.Parse(rawServer); err == nil && u.Port() != "" {
		via[u.Host] = relay.String()
	}
	return via
}

func printLink(w io.Writer, r *link.Relay) {
	st := r.Stats()
	p := r.Link().Profile()
	fmt.Fprintf(w, "link %s: up %d B on air (%d packets, %d lost), down %d B on air (%d packets, %d lost), radio connected %s, about %.1f J\n",
		p.Name, st.Up.AirBytes, st.Up.Offered.Packets, st.Up.Dropped().Packets,
		st.Down.AirBytes, st.Down.Offered.Packets, st.Down.Dropped().Packets,
		st.Connected.Round(time.Millisecond), p.Energy(st.Connected))
}

func faultNames() string {
	s := ""
	for i, f := range simulator.Faults {
		if i > 0 {
			s += ", "
		}
		s += string(f)
	}
	return s
}

func loadX509(cfg *simulator.Config, f deviceFlags) error {
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return fmt.Errorf("--cert/--key: %w", err)
	}
	cfg.Certificate, cfg.ServerName = &cert, f.serverName
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca %s: no certificate", f.caFile)
		}
	}
	return nil
}

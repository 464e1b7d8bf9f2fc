package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/campaign"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/simulator/link"
)

// fileConfig is fotad's YAML configuration (configs/fotad.yaml documents
// every field). Zero values mean "the default".
type fileConfig struct {
	DataDir          string         `yaml:"data_dir"`
	LogLevel         string         `yaml:"log_level"`
	LogFormat        string         `yaml:"log_format"`
	OpenRegistration bool           `yaml:"open_registration"`
	API              apiConfig      `yaml:"api"`
	CoAP             coapConfig     `yaml:"coap"`
	LwM2M            lwm2mConfig    `yaml:"lwm2m"`
	Delivery         deliveryConfig `yaml:"delivery"`
	Campaigns        campaignConfig `yaml:"campaigns"`
}

type campaignConfig struct {
	// PlanLinks are the link profiles a campaign plan estimates airtime
	// on (built-in simulator profiles; default wifi, catm1, nbiot).
	PlanLinks []string `yaml:"plan_links"`
	// Tick is how often the scheduler looks at running campaigns
	// (default 1 s).
	Tick time.Duration `yaml:"tick"`
}

type apiConfig struct {
	Listen string `yaml:"listen"`
}

type coapConfig struct {
	CoAPSListen      string         `yaml:"coaps_listen"`
	CoAPListen       string         `yaml:"coap_listen"`
	CIDLength        *int           `yaml:"cid_length"`
	HandshakeTimeout time.Duration  `yaml:"handshake_timeout"`
	FlightInterval   time.Duration  `yaml:"flight_interval"`
	ReadBuffer       int            `yaml:"read_buffer"`
	MaxBlockSize     int            `yaml:"max_block_size"`
	BlockwiseTimeout time.Duration  `yaml:"blockwise_timeout"`
	AckTimeout       time.Duration  `yaml:"ack_timeout"`
	MaxRetransmit    *int           `yaml:"max_retransmit"`
	Tick             time.Duration  `yaml:"tick"`
	IdleTimeout      time.Duration  `yaml:"idle_timeout"`
	ParkAfter        *time.Duration `yaml:"park_after"`
	X509             x509Config     `yaml:"x509"`
}

type x509Config struct {
	Certificate string `yaml:"certificate"`
	Key         string `yaml:"key"`
	ClientCA    string `yaml:"client_ca"`
}

type lwm2mConfig struct {
	IdleGrace   time.Duration `yaml:"idle_grace"`
	AwakeTime   time.Duration `yaml:"awake_time"`
	QueueExpiry time.Duration `yaml:"queue_expiry"`
	SendTimeout time.Duration `yaml:"send_timeout"`
	MaxQueued   int           `yaml:"max_queued"`
}

type deliveryConfig struct {
	// SigningKey is the PEM file of the package signing key; empty means
	// <data_dir>/signing-key.pem, created at first start.
	SigningKey string `yaml:"signing_key"`
	// ServerURI is how devices reach the CoAPS listener; Package URIs are
	// made from it. Empty: coaps:// and the listener's address, with
	// 127.0.0.1 for an unspecified host (fine on one machine only).
	ServerURI string `yaml:"server_uri"`
	// PlainURI is how devices reach the plain CoAP listener (coap.coap_listen),
	// for NoSec devices and classes with the coap scheme. Empty: coap:// and
	// the listener's address, as for ServerURI.
	PlainURI string `yaml:"plain_uri"`
	// UpdateDeadline bounds one device's update (default 24 h).
	UpdateDeadline time.Duration `yaml:"update_deadline"`
	// RebootTimeout is how long a device has after Update to come back
	// with its result (default 30 min).
	RebootTimeout time.Duration `yaml:"reboot_timeout"`
	// Retries and RetryBackoff: downloads started again after a lost
	// connection (default 3, first after 30 s, doubling).
	Retries      int           `yaml:"retries"`
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	// PollInterval is how often Object 5 is read while an update waits
	// for the device's notifications, in case one was lost (default 2 min).
	PollInterval time.Duration `yaml:"poll_interval"`
	// LinkMTU is the IP MTU assumed for a device's link when neither the
	// device nor its class sets one (default 1358); ClassLinkMTU sets it
	// per device class. Blocks are sized to fit (coap.BlockSizeForMTU).
	LinkMTU      int            `yaml:"link_mtu"`
	ClassLinkMTU map[string]int `yaml:"class_link_mtu"`
}

// signingKey returns the signing key's path and whether fotad may create
// the key there: only at the default path, so that a configured key that
// is missing (an unmounted secret) is an error, not a new key devices do
// not trust.
func (c *fileConfig) signingKey() (path string, create bool) {
	if c.Delivery.SigningKey != "" {
		return c.Delivery.SigningKey, false
	}
	return filepath.Join(c.DataDir, firmware.KeyFile), true
}

func defaultFileConfig() fileConfig {
	return fileConfig{
		DataDir:   "./data",
		LogLevel:  "info",
		LogFormat: "json",
		API:       apiConfig{Listen: "127.0.0.1:8080"},
		CoAP:      coapConfig{CoAPSListen: ":5684"},
		LwM2M: lwm2mConfig{IdleGrace: 93 * time.Second, AwakeTime: 93 * time.Second,
			QueueExpiry: 24 * time.Hour, SendTimeout: 93 * time.Second, MaxQueued: 64},
	}
}

// loadConfig reads path over the defaults; an empty path gives the defaults.
func loadConfig(path string) (fileConfig, error) {
	cfg := defaultFileConfig()
	if path == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("parse config %s: %w", path, err)
	}
	return cfg, nil
}

// validate names the first bad field.
func (c *fileConfig) validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("config: data_dir is empty")
	case c.API.Listen == "":
		return errors.New("config: api.listen is empty")
	case c.CoAP.CoAPSListen == "" && c.CoAP.CoAPListen == "":
		return errors.New("config: coap.coaps_listen and coap.coap_listen are both empty")
	case c.CoAP.CoAPSListen == "" && !c.OpenRegistration:
		return errors.New("config: without coap.coaps_listen only open_registration devices could register")
	case (c.CoAP.X509.Certificate == "") != (c.CoAP.X509.Key == ""):
		return errors.New("config: coap.x509.certificate and coap.x509.key go together")
	case c.CoAP.X509.Certificate != "" && c.CoAP.X509.ClientCA == "":
		return errors.New("config: coap.x509.client_ca is needed to verify device certificates")
	case c.LwM2M.IdleGrace < 0:
		return errors.New("config: lwm2m.idle_grace is negative")
	case c.LwM2M.AwakeTime <= 0 || c.LwM2M.QueueExpiry <= 0 || c.LwM2M.SendTimeout <= 0:
		return errors.New("config: lwm2m.awake_time, queue_expiry and send_timeout must be positive")
	case c.LwM2M.MaxQueued < 1:
		return errors.New("config: lwm2m.max_queued must be at least 1")
	case c.Delivery.UpdateDeadline < 0 || c.Delivery.RebootTimeout < 0 || c.Delivery.RetryBackoff < 0 || c.Delivery.PollInterval < 0:
		return errors.New("config: delivery.update_deadline, reboot_timeout, retry_backoff and poll_interval must not be negative")
	case c.Campaigns.Tick < 0:
		return errors.New("config: campaigns.tick is negative")
	}
	if _, err := c.Campaigns.links(); err != nil {
		return err
	}
	for class, mtu := range c.Delivery.ClassLinkMTU {
		if mtu < 256 || mtu > 65535 {
			return fmt.Errorf("config: delivery.class_link_mtu: %d for class %q is outside 256-65535", mtu, class)
		}
	}
	if m := c.Delivery.LinkMTU; m != 0 && (m < 256 || m > 65535) {
		return fmt.Errorf("config: delivery.link_mtu %d is outside 256-65535", m)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	return nil
}

// links returns the plan's link profiles.
func (c *campaignConfig) links() ([]campaign.Link, error) {
	names := c.PlanLinks
	if len(names) == 0 {
		names = []string{"wifi", "catm1", "nbiot"}
	}
	var out []campaign.Link
	for _, n := range names {
		p, ok := link.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("config: campaigns.plan_links: no built-in link profile %q", n)
		}
		out = append(out, campaign.Link{Name: p.Name, RateDown: p.Down.Rate, RateUp: p.Up.Rate,
			RTT: p.Up.Delay + p.Down.Delay, MTU: p.Down.MTU})
	}
	return out, nil
}

// transport turns the file's coap section into a coap.Config over the
// transport defaults.
func (c *fileConfig) transport() (coap.Config, error) {
	t := coap.DefaultConfig()
	f := c.CoAP
	t.DTLSAddr, t.PlainAddr = f.CoAPSListen, f.CoAPListen
	setInt(&t.CIDLength, f.CIDLength)
	setInt(&t.MaxRetransmit, f.MaxRetransmit)
	setDur(&t.HandshakeTimeout, f.HandshakeTimeout)
	setDur(&t.FlightInterval, f.FlightInterval)
	setDur(&t.BlockwiseTimeout, f.BlockwiseTimeout)
	setDur(&t.AckTimeout, f.AckTimeout)
	setDur(&t.Tick, f.Tick)
	setDur(&t.IdleTimeout, f.IdleTimeout)
	if f.ParkAfter != nil {
		t.ParkAfter = *f.ParkAfter
	}
	if f.ReadBuffer != 0 {
		t.ReadBuffer = f.ReadBuffer
	}
	if f.MaxBlockSize != 0 {
		t.MaxBlockSize = f.MaxBlockSize
	}
	if f.X509.Certificate != "" {
		cert, err := tls.LoadX509KeyPair(f.X509.Certificate, f.X509.Key)
		if err != nil {
			return t, fmt.Errorf("config: coap.x509: %w", err)
		}
		pem, err := os.ReadFile(f.X509.ClientCA)
		if err != nil {
			return t, fmt.Errorf("config: coap.x509.client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return t, fmt.Errorf("config: coap.x509.client_ca %s holds no PEM certificate", f.X509.ClientCA)
		}
		t.Certificate, t.ClientCAs = &cert, pool
	}
	return t, nil
}

func setInt(dst *int, v *int) {
	if v != nil {
		*dst = *v
	}
}

func setDur(dst *time.Duration, v time.Duration) {
	if v != 0 {
		*dst = v
	}
}

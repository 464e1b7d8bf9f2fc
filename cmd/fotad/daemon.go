package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/campaign"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/store"
)

// dbFile is the bbolt database under the data directory.
const dbFile = "fota.db"

// daemon is a running fotad: the store, the registry, the CoAP server and
// the API server, wired together.
type daemon struct {
	log       zerolog.Logger
	db        *store.DB
	registry  *lwm2m.Registry
	ops       *lwm2m.Operator
	firmware  *firmware.Service
	updates   *update.Driver
	inventory *lwm2m.Inventory
	campaigns *campaign.Manager
	// stopCampaigns ends the scheduler before the driver closes, so that
	// no update starts on the way down; campaignsDone closes when it has.
	stopCampaigns context.CancelFunc
	campaignsDone chan struct{}
	coap          *coap.Server
	http          *http.Server
	apiLn         net.Listener
	token         string
	events        *api.Journal

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errc   chan error
}

// start opens the store, binds every listener and starts serving. Binding
// first means a test can pass ":0" addresses and read the real ones.
//
// events, when not nil, is the journal log writes to (see newLogger): the
// API streams it.
func start(cfg fileConfig, log zerolog.Logger, events *api.Journal) (d *daemon, err error) {
	d = &daemon{log: log, events: events, errc: make(chan error, 4)}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.db, err = store.Open(filepath.Join(cfg.DataDir, dbFile), store.Options{}); err != nil {
		return d, err
	}
	if err = d.startFirmware(cfg, log); err != nil {
		return d, err
	}
	if cfg.OpenRegistration {
		log.Warn().Msg("open registration is on: endpoints without credentials may register over plain CoAP (NoSec); use only in labs and tests")
	}
	d.registry = lwm2m.NewRegistry(lwm2m.RegistryConfig{
		Devices:          d.db,
		Store:            d.db,
		OpenRegistration: cfg.OpenRegistration,
		IdleGrace:        cfg.LwM2M.IdleGrace,
		Logger:           log,
	})
	d.ops = lwm2m.NewOperator(d.registry, lwm2m.OperatorConfig{
		SendTimeout: cfg.LwM2M.SendTimeout,
		AwakeTime:   cfg.LwM2M.AwakeTime,
		QueueExpiry: cfg.LwM2M.QueueExpiry,
		MaxQueued:   cfg.LwM2M.MaxQueued,
		// Set before any device can register: the CoAP server starts below.
		Registered: func(reg lwm2m.Registration, update bool) { d.inventory.Registered(reg, update) },
		Logger:     log,
	})
	d.inventory = lwm2m.NewInventory(d.ops, d.db, log)
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	if err = d.registry.Load(ctx); err != nil {
		return d, fmt.Errorf("load registrations: %w", err)
	}
	if err = d.inventory.Load(ctx); err != nil {
		return d, fmt.Errorf("load device info: %w", err)
	}
	if err = d.startCoAP(cfg, log); err != nil {
		return d, err
	}
	d.startUpdates(cfg, log)
	if err = d.startCampaigns(ctx, cfg, log); err != nil {
		return d, err
	}
	if err = d.startAPI(cfg, log); err != nil {
		return d, err
	}
	if err = d.updates.Resume(ctx); err != nil {
		return d, err
	}
	cctx, stop := context.WithCancel(ctx)
	d.stopCampaigns, d.campaignsDone = stop, make(chan struct{})
	d.goRun(func() error {
		defer close(d.campaignsDone)
		return d.campaigns.Run(cctx)
	})
	d.goRun(func() error { return d.registry.Run(ctx) })
	d.goRun(func() error { return d.coap.Serve(ctx) })
	d.goRun(func() error {
		if err := d.http.Serve(d.apiLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("api: %w", err)
		}
		return nil
	})
	log.Info().Str("data", cfg.DataDir).Str("api", d.apiLn.Addr().String()).
		Int("registrations", d.registry.Count()).Msg("fotad started")
	return d, nil
}

// startUpdates makes the Object 5 driver; Package URIs point at the CoAPS
// listener as devices reach it (delivery.server_uri), or at the plain one
// (delivery.plain_uri) for NoSec devices and classes with the coap scheme.
func (d *daemon) startUpdates(cfg fileConfig, log zerolog.Logger) {
	dc := cfg.Delivery
	uri := listenerURI(dc.ServerURI, "coaps", d.coap.DTLSAddr(), "delivery.server_uri", log)
	plain := listenerURI(dc.PlainURI, "coap", d.coap.PlainAddr(), "delivery.plain_uri", log)
	d.updates = update.New(update.Config{Devices: d.ops, Registrations: d.registry, Packages: d.firmware,
		Publisher: d.coap, Store: d.db, ServerURI: uri, PlainURI: plain, Deadline: dc.UpdateDeadline,
		RebootTimeout: dc.RebootTimeout, Retries: dc.Retries, RetryBackoff: dc.RetryBackoff, PollInterval: dc.PollInterval,
		BlockSize: d.blockSize(dc), Logger: log})
}

// listenerURI is the configured URI, else scheme:// and the listener's
// address, with 127.0.0.1 for an unspecified host (fine on one machine
// only); empty without a listener.
func listenerURI(configured, scheme string, addr net.Addr, setting string, log zerolog.Logger) string {
	if configured != "" || addr == nil {
		return configured
	}
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
		log.Warn().Str("setting", setting).Msg("not set: Package URIs use 127.0.0.1, reachable only from this machine")
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// startCampaigns makes the campaign manager and loads the stored
// campaigns; start runs its scheduler once the driver has resumed.
func (d *daemon) startCampaigns(ctx context.Context, cfg fileConfig, log zerolog.Logger) error {
	links, err := cfg.Campaigns.links()
	if err != nil {
		return err
	}
	d.campaigns = campaign.New(campaign.Config{Store: d.db, Updates: d.updates, Devices: d.db,
		Fleet: fleet{d.inventory, d.ops}, Packages: d.firmware,
		Links: links, Tick: cfg.Campaigns.Tick, Logger: log})
	return d.campaigns.Load(ctx)
}

// fleet tells campaigns what devices run and whether they are reachable.
type fleet struct {
	*lwm2m.Inventory
	ops *lwm2m.Operator
}

func (f fleet) Reachable(ep string) bool { return f.ops.Reachable(ep) }

// blockSize sizes a device's blocks for its link MTU (the device's own,
// else its class's, else the configured default), at most its class's
// declared block size.
func (d *daemon) blockSize(dc deliveryConfig) update.BlockSizer {
	return func(ctx context.Context, ep, class string) int {
		mtu := dc.LinkMTU
		if m, ok := dc.ClassLinkMTU[class]; ok {
			mtu = m
		}
		if dev, err := d.db.Device(ctx, ep); err == nil && dev.LinkMTU > 0 {
			mtu = dev.LinkMTU
		}
		size := coap.BlockSizeForMTU(mtu)
		if c, err := d.firmware.Class(ctx, class); err == nil && c.BlockSize > 0 {
			size = min(size, c.BlockSize)
		}
		return size
	}
}

// startFirmware loads the package signing key (creating it at the default
// path on first start) and makes the firmware service on the store. Only
// the key's path and fingerprint are logged.
func (d *daemon) startFirmware(cfg fileConfig, log zerolog.Logger) error {
	path, create := cfg.signingKey()
	var key *ecdsa.PrivateKey
	var created bool
	var err error
	if create {
		key, created, err = firmware.LoadOrCreateKey(path)
	} else {
		key, err = firmware.LoadKey(path)
	}
	if err != nil {
		return err
	}
	ev := log.Info().Str("path", path).Str("fingerprint", firmware.KeyFingerprint(&key.PublicKey))
	if created {
		ev.Msg("created package signing key: back it up; devices verify packages with its public key (fotactl key show)")
	} else {
		ev.Msg("package signing key")
	}
	d.firmware, err = firmware.New(firmware.Config{Store: d.db, Key: key})
	return err
}

func (d *daemon) startCoAP(cfg fileConfig, log zerolog.Logger) error {
	tc, err := cfg.transport()
	if err != nil {
		return err
	}
	tc.Handler = d.ops
	tc.Logger = log
	tc.PSK = d.pskKey
	if tc.DTLSAddr == "" {
		tc.PSK = nil
	}
	if d.coap, err = coap.Listen(tc); err != nil {
		return err
	}
	return nil
}

// pskKey looks a PSK identity up for the DTLS handshake.
func (d *daemon) pskKey(identity string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dev, err := d.db.DeviceByPSKIdentity(ctx, identity)
	if errors.Is(err, lwm2m.ErrNotFound) || err == nil && len(dev.PSKKey) == 0 {
		return nil, coap.ErrUnknownIdentity
	}
	if err != nil {
		return nil, fmt.Errorf("psk lookup: %w", err)
	}
	return dev.PSKKey, nil
}

func (d *daemon) startAPI(cfg fileConfig, log zerolog.Logger) error {
	token, path, created, err := api.LoadOrCreateToken(cfg.DataDir)
	if err != nil {
		return err
	}
	d.token = token
	if created {
		log.Info().Str("path", path).Msg("created admin API token (give it to fotactl with --data, --token or FOTA_TOKEN)")
	} else {
		log.Info().Str("path", path).Msg("admin API token")
	}
	srv, err := api.New(api.Config{
		Devices:       d.db,
		Registrations: d.registry,
		Transport:     d.coap,
		Operations:    api.OperatorOperations(d.ops),
		Updates:       d.updates,
		History:       d.db,
		Campaigns:     d.campaigns,
		Inventory:     d.inventory,
		Events:        d.events,
		Images:        d.firmware,
		Packages:      d.firmware,
		Classes:       d.firmware,
		Token:         token,
		Logger:        log,
	})
	if err != nil {
		return err
	}
	if d.apiLn, err = net.Listen("tcp", cfg.API.Listen); err != nil {
		return fmt.Errorf("listen api %s: %w", cfg.API.Listen, err)
	}
	d.http = &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	// Observe streams and long waits never end on their own: Shutdown
	// would wait for them until its deadline.
	d.http.RegisterOnShutdown(srv.StopStreams)
	return nil
}

func (d *daemon) goRun(f func() error) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := f(); err != nil && !errors.Is(err, context.Canceled) {
			d.errc <- err
		}
	}()
}

// wait serves until ctx is done or a component fails, then shuts down.
func (d *daemon) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
		d.log.Info().Msg("shutting down")
	case err = <-d.errc:
		d.log.Error().Err(err).Msg("component failed; shutting down")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := d.shutdown(sctx); err == nil {
		err = serr
	}
	return err
}

// shutdown stops the listeners, waits for every goroutine and closes the
// store, so that nothing acknowledged is lost.
func (d *daemon) shutdown(ctx context.Context) error {
	var errs []error
	d.stopScheduler()
	if d.updates != nil {
		d.updates.Close() // updates stop where they are; the next start resumes them
	}
	if d.inventory != nil {
		d.inventory.Close()
	}
	if d.http != nil {
		errs = append(errs, d.http.Shutdown(ctx))
	}
	if d.coap != nil {
		errs = append(errs, d.coap.Shutdown(ctx))
	}
	d.cancel()
	d.wg.Wait()
	errs = append(errs, d.closeStore())
	return errors.Join(errs...)
}

// stopScheduler stops the campaign scheduler and waits for it.
func (d *daemon) stopScheduler() {
	if d.stopCampaigns != nil {
		d.stopCampaigns()
		<-d.campaignsDone
	}
}

func (d *daemon) close() {
	d.stopScheduler()
	if d.updates != nil {
		d.updates.Close()
	}
	if d.inventory != nil {
		d.inventory.Close()
	}
	if d.cancel != nil {
		d.cancel()
	}
	if d.apiLn != nil {
		_ = d.apiLn.Close()
	}
	if d.coap != nil {
		_ = d.coap.Shutdown(context.Background())
	}
	_ = d.closeStore()
}

func (d *daemon) closeStore() error {
	if d.db == nil {
		return nil
	}
	err := d.db.Close()
	d.db = nil
	return err
}

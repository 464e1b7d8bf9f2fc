package update_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/store/storetest"
)

type devices struct {
	mu sync.Mutex
	m  map[string]lwm2m.Device
}

func (d *devices) PutDevice(_ context.Context, dev lwm2m.Device) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[dev.Endpoint] = dev
	return nil
}
func (d *devices) Device(_ context.Context, ep string) (lwm2m.Device, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dev, ok := d.m[ep]; ok {
		return dev, nil
	}
	return lwm2m.Device{}, lwm2m.ErrNotFound
}
func (d *devices) DeviceByPSKIdentity(_ context.Context, id string) (lwm2m.Device, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dev := range d.m {
		if dev.PSKIdentity == id {
			return dev, nil
		}
	}
	return lwm2m.Device{}, lwm2m.ErrNotFound
}
func (d *devices) DeleteDevice(context.Context, string) error      { return nil }
func (d *devices) Devices(context.Context) ([]lwm2m.Device, error) { return nil, nil }

// updates is an in-memory update.Store.
type updates struct {
	mu sync.Mutex
	m  map[string]update.Update
}

func (s *updates) PutUpdate(_ context.Context, u update.Update) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[u.Endpoint] = u
	return nil
}
func (s *updates) Updates(context.Context) ([]update.Update, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []update.Update
	for _, u := range s.m {
		out = append(out, u)
	}
	return out, nil
}

var (
	image1 = []byte(strings.Repeat("firmware image one ", 2000))
	image2 = bytes.Replace(image1, []byte("one "), []byte("two "), 50)
)

type rig struct {
	devs   *devices
	reg    *lwm2m.Registry
	coap   *coap.Server
	fw     *firmware.Service
	store  *updates
	driver *update.Driver
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{devs: &devices{m: map[string]lwm2m.Device{}}, store: &updates{m: map[string]update.Update{}}}
	r.reg = lwm2m.NewRegistry(lwm2m.RegistryConfig{Devices: r.devs})
	ops := lwm2m.NewOperator(r.reg, lwm2m.OperatorConfig{})
	cfg := coap.DefaultConfig()
	cfg.DTLSAddr = "127.0.0.1:0"
	cfg.Tick = 50 * time.Millisecond
	cfg.AckTimeout = 500 * time.Millisecond
	cfg.Handler = ops
	cfg.PSK = func(id string) ([]byte, error) {
		dev, err := r.devs.DeviceByPSKIdentity(context.Background(), id)
		if err != nil {
			return nil, coap.ErrUnknownIdentity
		}
		return dev.PSKKey, nil
	}
	var err error
	if r.coap, err = coap.Listen(cfg); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.coap.Serve(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.coap.Shutdown(ctx)
		<-done
	})
	key, err := manifest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if r.fw, err = firmware.New(firmware.Config{Store: storetest.NewFirmwareStore(), Key: key}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, im := range []struct {
		b []byte
		v string
	}{{image1, "1.0.0"}, {image2, "2.0.0"}} {
		if _, _, err := r.fw.AddImage(ctx, im.b, im.v, "sensor-a"); err != nil {
			t.Fatal(err)
		}
	}
	r.driver = update.New(update.Config{Devices: ops, Registrations: r.reg, Packages: r.fw, Publisher: r.coap,
		Store: r.store, ServerURI: "coaps://" + r.coap.DTLSAddr().String(), Deadline: time.Minute,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	return r
}

func (r *rig) device(t *testing.T, ep string) *simulator.Device {
	return r.deviceWith(t, ep, nil)
}

func (r *rig) deviceWith(t *testing.T, ep string, mutate func(*simulator.Config)) *simulator.Device {
	t.Helper()
	key := []byte("key-" + ep)
	_ = r.devs.PutDevice(context.Background(), lwm2m.Device{Endpoint: ep, PSKIdentity: ep, PSKKey: key})
	cfg := simulator.Config{Endpoint: ep, PSKIdentity: ep, PSKKey: key, Server: r.coap.DTLSAddr().String(),
		Firmware: image1, FirmwareVersion: "1.0.0", Sequence: 1, Class: "sensor-a", TrustKey: r.fw.PublicKey(),
		BlockSize: 512, BootTime: 50 * time.Millisecond,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	if mutate != nil {
		mutate(&cfg)
	}
	d, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for !d.Status().Registered {
		if time.Now().After(deadline) {
			t.Fatal("device did not register")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

func (r *rig) wait(t *testing.T, ep string) update.Update {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		u, _ := r.driver.Status(ep)
		if u.Phase.Finished() {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("update of %s still %s after 30 s", ep, u.Phase)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestUpdateEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name     string
		req      update.Request
		format   manifest.Format
		fault    simulator.Fault
		back     bool
		delivery int // the device's /5/0/9
		push     bool
	}{
		{"pull-delta", update.Request{Image: "2.0.0"}, manifest.FormatDelta, "", false, 2, false},
		{"pull-full", update.Request{Image: "2.0.0", Full: true}, manifest.FormatFull, "", false, 2, false},
		{"push-delta", update.Request{Image: "2.0.0", Push: true}, manifest.FormatDelta, "", false, 2, true},
		{"push-only-device", update.Request{Image: "2.0.0"}, manifest.FormatDelta, "", false, 1, true},
		{"pull-only-device", update.Request{Image: "2.0.0", Push: true}, manifest.FormatDelta, "", false, 0, false},
		{"fallback", update.Request{Image: "2.0.0"}, manifest.FormatFull, simulator.FaultCorruptBlock, true, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			d := r.deviceWith(t, "upd-"+tc.name, func(c *simulator.Config) { c.Delivery = tc.delivery })
			if tc.fault != "" {
				d.Inject(tc.fault)
			}
			if _, err := r.driver.Start(context.Background(), "upd-"+tc.name, tc.req); err != nil {
				t.Fatal(err)
			}
			u := r.wait(t, "upd-"+tc.name)
			if u.Phase != update.Done || u.Result != 1 || u.Format != tc.format || u.FellBack != tc.back || u.Push != tc.push {
				t.Fatalf("update ended %+v", u)
			}
			if running, info := d.Flash().Running(); !bytes.Equal(running, image2) || info.Version != "2.0.0" {
				t.Fatalf("device runs %s", info.Version)
			}
			if stored, _ := r.store.Updates(context.Background()); len(stored) != 1 || stored[0].Phase != update.Done {
				t.Fatalf("persisted %+v", stored)
			}
		})
	}
}

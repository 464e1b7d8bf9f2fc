package update_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/lwm2mtest"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
	"github.com/fotahub/fota/store/storetest"
)

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
	*lwm2mtest.Server
	fw     *firmware.Service
	store  *updates
	driver *update.Driver
}

func newRig(t *testing.T) *rig { return newRigWith(t, nil) }

// newRigWith makes a server whose driver never polls Object 5 unless
// mutate says so: an update that completes has followed the observation.
func newRigWith(t *testing.T, mutate func(*update.Config)) *rig {
	return newRigOps(t, lwm2m.OperatorConfig{}, mutate)
}

func newRigOps(t *testing.T, ops lwm2m.OperatorConfig, mutate func(*update.Config)) *rig {
	t.Helper()
	r := &rig{Server: lwm2mtest.Start(t, ops), store: &updates{m: map[string]update.Update{}}}
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
		if _, _, err := r.fw.AddImage(ctx, im.b, im.v, "sensor-a", ""); err != nil {
			t.Fatal(err)
		}
	}
	cfg := update.Config{Devices: r.Operator, Registrations: r.Registry, Packages: r.fw, Publisher: r.CoAP,
		Store: r.store, ServerURI: "coaps://" + r.Addr(), Deadline: time.Minute, PollInterval: time.Hour,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)}
	if mutate != nil {
		mutate(&cfg)
	}
	r.driver = update.New(cfg)
	t.Cleanup(r.driver.Close)
	return r
}

func (r *rig) device(t *testing.T, ep string) *simulator.Device {
	return r.deviceWith(t, ep, nil)
}

func (r *rig) deviceWith(t *testing.T, ep string, mutate func(*simulator.Config)) *simulator.Device {
	t.Helper()
	id, key := r.Provision(t, ep)
	cfg := simulator.Config{Endpoint: ep, PSKIdentity: id, PSKKey: key, Server: r.Addr(),
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

// TestUpdateWithoutObserve: a device that refuses observations is read
// instead, at the poll interval.
func TestUpdateWithoutObserve(t *testing.T) {
	r := newRigWith(t, func(c *update.Config) { c.PollInterval = 100 * time.Millisecond })
	d := r.deviceWith(t, "no-observe", func(c *simulator.Config) { c.NoObserve = true })
	if _, err := r.driver.Start(context.Background(), "no-observe", update.Request{Image: "2.0.0"}); err != nil {
		t.Fatal(err)
	}
	if u := r.wait(t, "no-observe"); u.Phase != update.Done || u.Result != 1 {
		t.Fatalf("update ended %+v", u)
	}
	if _, info := d.Flash().Running(); info.Version != "2.0.0" {
		t.Fatalf("device runs %s", info.Version)
	}
}

// TestUpdateDeferred: a device that defers the update (result 11, low
// battery) gets Update executed again after the backoff.
func TestUpdateDeferred(t *testing.T) {
	r := newRigWith(t, func(c *update.Config) { c.RetryBackoff = 200 * time.Millisecond })
	d := r.device(t, "deferring")
	d.Inject(simulator.FaultLowBattery)
	if _, err := r.driver.Start(context.Background(), "deferring", update.Request{Image: "2.0.0"}); err != nil {
		t.Fatal(err)
	}
	if u := r.wait(t, "deferring"); u.Phase != update.Done || u.Result != 1 {
		t.Fatalf("update ended %+v", u)
	}
	if _, info := d.Flash().Running(); info.Version != "2.0.0" {
		t.Fatalf("device runs %s", info.Version)
	}
}

// TestUpdateRetriesLostConnection: the link goes down mid-download, the
// device gives up with result 4, and the driver starts the download
// again after its backoff, at the same Package URI.
func TestUpdateRetriesLostConnection(t *testing.T) {
	r := newRigWith(t, func(c *update.Config) { c.RetryBackoff = time.Second })
	server, _ := net.ResolveUDPAddr("udp", r.Addr())
	relay, err := link.NewRelay(server, link.Profile{Name: "slow", Up: link.Params{Delay: 2 * time.Millisecond},
		Down: link.Params{Delay: 2 * time.Millisecond}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	d := r.deviceWith(t, "lossy", func(c *simulator.Config) {
		c.Server, c.BlockSize = relay.Addr().String(), 64
		c.BlockTimeout, c.DownloadRetries = 300*time.Millisecond, 1
	})
	if _, err := r.driver.Start(context.Background(), "lossy", update.Request{Image: "2.0.0", Full: true}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a third downloaded", func() bool { return d.Status().Downloaded > int64(len(image2)/3) })
	first, _ := r.driver.Status("lossy")
	relay.Outage(5 * time.Second)
	u := r.wait(t, "lossy")
	if u.Phase != update.Done || u.Retries == 0 || u.Path != first.Path {
		t.Fatalf("update ended %+v (first path %s)", u, first.Path)
	}
	if running, _ := d.Flash().Running(); !bytes.Equal(running, image2) {
		t.Fatal("device does not run the new image")
	}
}

// TestUpdateNeverComesBack: a device that goes away after Execute fails
// the update at the reboot timeout, long before the update's deadline.
func TestUpdateNeverComesBack(t *testing.T) {
	r := newRigWith(t, func(c *update.Config) { c.RebootTimeout = time.Second })
	id, key := r.Provision(t, "gone")
	d, err := simulator.New(simulator.Config{Endpoint: "gone", PSKIdentity: id, PSKKey: key, Server: r.Addr(),
		Firmware: image1, FirmwareVersion: "1.0.0", Sequence: 1, Class: "sensor-a", TrustKey: r.fw.PublicKey(),
		BootTime: time.Hour, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "registered", func() bool { return d.Status().Registered })
	if _, err := r.driver.Start(context.Background(), "gone", update.Request{Image: "2.0.0"}); err != nil {
		t.Fatal(err)
	}
	u := r.wait(t, "gone")
	if u.Phase != update.Failed || !strings.Contains(u.Error, "never came back") || u.Executed.IsZero() {
		t.Fatalf("update ended %+v", u)
	}
}

// TestUpdateCancel: a cancelled update resets the device's Object 5,
// stops serving the package, and stays cancelled.
func TestUpdateCancel(t *testing.T) {
	r := newRig(t)
	server, _ := net.ResolveUDPAddr("udp", r.Addr())
	relay, err := link.NewRelay(server, link.Profile{Name: "slow", Up: link.Params{Delay: 5 * time.Millisecond},
		Down: link.Params{Delay: 5 * time.Millisecond}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	d := r.deviceWith(t, "cancelled", func(c *simulator.Config) { c.Server, c.BlockSize = relay.Addr().String(), 64 })
	if _, err := r.driver.Start(context.Background(), "cancelled", update.Request{Image: "2.0.0", Full: true}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "download under way", func() bool { return d.Status().Downloaded > 1024 })
	if err := r.driver.Cancel(context.Background(), "cancelled"); err != nil {
		t.Fatal(err)
	}
	r.driver.Wait()
	u, _ := r.driver.Status("cancelled")
	if u.Phase != update.Cancelled || r.CoAP.Published() != 0 {
		t.Fatalf("update %+v, %d published", u, r.CoAP.Published())
	}
	if st := d.Status(); st.State != simulator.StateIdle {
		t.Fatalf("device in state %d after cancel", st.State)
	}
	if _, info := d.Flash().Running(); info.Version != "1.0.0" {
		t.Fatalf("device runs %s", info.Version)
	}
	if err := r.driver.Cancel(context.Background(), "cancelled"); err != update.ErrNotRunning {
		t.Fatalf("second cancel: %v", err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUpdateQueueMode drives a queue-mode device across its sleeps: every
// operation waits for the device to speak (its Updates, every 2.4 s), by
// pull and by push.
func TestUpdateQueueMode(t *testing.T) {
	for _, delivery := range []int{0, 1} {
		t.Run(map[int]string{0: "pull", 1: "push"}[delivery], func(t *testing.T) {
			r := newRigOps(t, lwm2m.OperatorConfig{AwakeTime: 300 * time.Millisecond}, nil)
			ep := fmt.Sprintf("sleeper-%d", delivery)
			d := r.deviceWith(t, ep, func(c *simulator.Config) {
				c.Queue, c.Awake, c.Lifetime, c.Delivery = true, 300*time.Millisecond, 3*time.Second, delivery
			})
			time.Sleep(700 * time.Millisecond) // asleep on both sides
			if _, err := r.driver.Start(context.Background(), ep, update.Request{Image: "2.0.0"}); err != nil {
				t.Fatal(err)
			}
			if u := r.wait(t, ep); u.Phase != update.Done || u.Result != 1 || u.Push != (delivery == 1) {
				t.Fatalf("update ended %+v", u)
			}
			if running, _ := d.Flash().Running(); !bytes.Equal(running, image2) {
				t.Fatal("device does not run the new image")
			}
		})
	}
}

// TestResumeAheadOfDevice: fotad stopped after it recorded an update as
// Downloading and before its write of the Package URI reached the device
// (the phase is persisted first, so that a crash never forgets a write the
// device took). The resumed driver finds the device Idle with no result,
// without having written anything itself: it must write the URI again,
// not wait for a download that never started.
func TestResumeAheadOfDevice(t *testing.T) {
	for _, push := range []bool{false, true} {
		t.Run(map[bool]string{false: "pull", true: "push"}[push], func(t *testing.T) { testResumeAheadOfDevice(t, push) })
	}
}

func testResumeAheadOfDevice(t *testing.T, push bool) {
	r := newRigWith(t, func(c *update.Config) { c.RetryBackoff = 10 * time.Millisecond })
	dev := r.deviceWith(t, "ahead", func(c *simulator.Config) { c.Delivery = 2 })
	ctx := context.Background()
	offer, err := r.fw.MakePackage(ctx, firmware.Request{Image: "2.0.0", Class: "sensor-a", Full: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	img, _ := r.fw.Image(ctx, "2.0.0", "sensor-a")
	r.store.m["ahead"] = update.Update{Endpoint: "ahead", Image: "2.0.0", Class: "sensor-a", Target: img.Digest,
		Version: "2.0.0", Full: true, Push: push, Package: offer.ID, Format: offer.Manifest.Format, Size: offer.Size,
		Phase: update.Downloading, Started: now, Changed: now, Deadline: now.Add(time.Minute)}
	if err := r.driver.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	u := r.wait(t, "ahead")
	if u.Phase != update.Done || u.Retries != 1 || u.Push != push || dev.Status().Version != "2.0.0" {
		t.Fatalf("resumed update %s after %d retries (%s); device runs %q", u.Phase, u.Retries, u.Error, dev.Status().Version)
	}
}

package simulator_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

// devices is a map-backed lwm2m.DeviceStore.
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

// server is the LwM2M core on loopback DTLS, plus packages served by path
// under /fw/ (what the firmware-delivery service will do).
type server struct {
	devs *devices
	reg  *lwm2m.Registry
	ops  *lwm2m.Operator
	coap *coap.Server

	mu       sync.Mutex
	packages map[string][]byte
}

func startServer(t testing.TB, opcfg lwm2m.OperatorConfig) *server {
	t.Helper()
	s := &server{devs: &devices{m: map[string]lwm2m.Device{}}, packages: map[string][]byte{}}
	s.reg = lwm2m.NewRegistry(lwm2m.RegistryConfig{Devices: s.devs})
	s.ops = lwm2m.NewOperator(s.reg, opcfg)
	cfg := coap.DefaultConfig()
	cfg.DTLSAddr = "127.0.0.1:0"
	cfg.Tick = 50 * time.Millisecond
	cfg.AckTimeout = 500 * time.Millisecond
	cfg.Handler = coap.HandlerFunc(func(ctx context.Context, r *coap.Request) coap.Response {
		if strings.HasPrefix(r.Path, "/fw/") {
			return s.servePackage(r)
		}
		return s.ops.ServeCoAP(ctx, r)
	})
	cfg.PSK = func(id string) ([]byte, error) {
		dev, err := s.devs.DeviceByPSKIdentity(context.Background(), id)
		if err != nil {
			return nil, coap.ErrUnknownIdentity
		}
		return dev.PSKKey, nil
	}
	var err error
	if s.coap, err = coap.Listen(cfg); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.coap.Serve(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.coap.Shutdown(ctx)
		<-done
	})
	return s
}

func (s *server) servePackage(r *coap.Request) coap.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	pkg, ok := s.packages[r.Path]
	if !ok {
		return coap.Reply(coap.NotFound)
	}
	return coap.Response{Code: coap.Content, ContentFormat: model.ContentFormatOpaque, Payload: pkg,
		ETag: []byte{byte(len(pkg)), byte(len(pkg) >> 8)}, Size2: int64(len(pkg))}
}

// device provisions ep and runs a simulated device until the test ends.
func (s *server) device(t testing.TB, ep string, firmware []byte, mutate func(*simulator.Config)) *simulator.Device {
	t.Helper()
	key := []byte("key-" + ep)
	_ = s.devs.PutDevice(context.Background(), lwm2m.Device{Endpoint: ep, PSKIdentity: "id-" + ep, PSKKey: key})
	cfg := simulator.Config{Endpoint: ep, PSKIdentity: "id-" + ep, PSKKey: key, Server: s.coap.DTLSAddr().String(),
		Firmware: firmware, FirmwareVersion: "1.0.0", Class: "sensor-a", BootTime: 50 * time.Millisecond,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)}
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
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitFor(t, ep+" registered", func() bool { _, ok := s.reg.Lookup(ep); return ok })
	return d
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func read(t testing.TB, s *server, ep, p string) model.Value {
	t.Helper()
	path, _ := model.ParsePath(p)
	res, err := s.ops.Do(ctxT(t), ep, lwm2m.Op{Kind: lwm2m.OpRead, Path: path})
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	if len(res.Values) != 1 {
		t.Fatalf("read %s: %d values", p, len(res.Values))
	}
	return res.Values[0].Value
}

var image1 = []byte(strings.Repeat("firmware image one ", 1000))

func TestRegisterAndRead(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	s.device(t, "sim-1", image1, nil)
	if v, _ := read(t, s, "sim-1", "/3/0/3").AsString(); v != "1.0.0" {
		t.Errorf("firmware version %q", v)
	}
	if v, _ := read(t, s, "sim-1", "/5/0/3").AsInteger(); v != simulator.StateIdle {
		t.Errorf("object 5 state %d", v)
	}
	res, err := s.ops.Do(ctxT(t), "sim-1", lwm2m.Op{Kind: lwm2m.OpRead, Path: model.ObjectInstancePath(5, 0)})
	if err != nil {
		t.Fatal(err)
	}
	oi := res.Node.(*model.ObjectInstance)
	for _, r := range []uint16{1, 3, 5, 6, 7, 8, 9, 11, 12, 13} {
		if _, ok := oi.Resources[r]; !ok {
			t.Errorf("/5/0/%d missing", r)
		}
	}
	reg, _ := s.reg.Lookup("sim-1")
	if reg.Version != "1.1" {
		t.Errorf("registered with %s", reg.Version)
	}
	for _, l := range reg.Objects {
		if strings.HasPrefix(l.Path, "/0") {
			t.Errorf("security object announced: %s", l.Path)
		}
	}
	_, err = s.ops.Do(ctxT(t), "sim-1", lwm2m.Op{Kind: lwm2m.OpRead, Path: model.ObjectInstancePath(0, 0)})
	if !errors.Is(err, lwm2m.ErrUnauthorized) {
		t.Errorf("read of the security object: %v, want 4.01", err)
	}
}

func TestQueueModeSleepAndWake(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{AwakeTime: 300 * time.Millisecond})
	s.device(t, "sleeper", image1, func(c *simulator.Config) {
		c.Queue, c.Awake, c.Lifetime = true, 300*time.Millisecond, 3*time.Second
	})
	time.Sleep(700 * time.Millisecond) // asleep on both sides
	ticket, err := s.ops.Submit("sleeper", lwm2m.Op{Kind: lwm2m.OpRead, Path: model.ResourcePath(3, 0, 0)}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := s.ops.Ticket(ticket.ID); st.State != lwm2m.TicketQueued {
		t.Fatalf("read for a sleeping device is %s", st.State)
	}
	st, err := s.ops.Wait(ctxT(t), ticket.ID) // delivered at its next Update (2.4 s)
	if err != nil || st.State != lwm2m.TicketDone {
		t.Fatalf("queued read: %+v %v", st, err)
	}
	if v, _ := st.Result.Values[0].Value.AsString(); v != "fotahub" {
		t.Fatalf("manufacturer %q", v)
	}
}

// TestNATRebinding moves the device to a new public address mid-session:
// with the DTLS Connection ID the session and registration stay, and the
// server still reaches the device.
func TestNATRebinding(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	relay, err := link.NewRelay(s.coap.DTLSAddr().(*net.UDPAddr), mustProfile(t, "wifi"), 7)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	s.device(t, "roamer", image1, func(c *simulator.Config) {
		c.Server, c.Lifetime = relay.Addr().String(), 2*time.Second // an Update every 1.6 s
	})
	before, _ := s.reg.Lookup("roamer")
	oldAddr := relay.OutsideAddr().String()
	if err := relay.Rebind(); err != nil {
		t.Fatal(err)
	}
	if relay.OutsideAddr().String() == oldAddr {
		t.Fatal("rebinding kept the address")
	}
	// The server's request goes to the device's new address.
	if v, _ := read(t, s, "roamer", "/3/0/0").AsString(); v != "fotahub" {
		t.Fatalf("read after rebinding: %q", v)
	}
	waitFor(t, "an update from the new address", func() bool {
		reg, _ := s.reg.Lookup("roamer")
		return reg.Address == relay.OutsideAddr().String()
	})
	after, _ := s.reg.Lookup("roamer")
	if after.ID != before.ID || !after.RegisteredAt.Equal(before.RegisteredAt) {
		t.Fatalf("registration replaced: %s -> %s", before.ID, after.ID)
	}
	if st := relay.Stats(); st.Up.AirBytes == 0 || st.Down.AirBytes == 0 || st.Connected == 0 {
		t.Fatalf("link counted nothing: %+v", st)
	}
}

func mustProfile(t testing.TB, name string) link.Profile {
	t.Helper()
	p, ok := link.Lookup(name)
	if !ok {
		t.Fatalf("no profile %s", name)
	}
	return p
}

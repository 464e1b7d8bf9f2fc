package simulator_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/lwm2mtest"
	"github.com/fotahub/fota/lwm2m/model"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

// server is the LwM2M core on loopback DTLS; packages are published for
// one device each, as fotad's update driver does.
type server struct {
	*lwm2mtest.Server
	reg *lwm2m.Registry
	ops *lwm2m.Operator
}

func startServer(t testing.TB, opcfg lwm2m.OperatorConfig) *server {
	t.Helper()
	ts := lwm2mtest.Start(t, opcfg)
	return &server{Server: ts, reg: ts.Registry, ops: ts.Operator}
}

// device provisions ep and runs a simulated device until the test ends.
func (s *server) device(t testing.TB, ep string, firmware []byte, mutate func(*simulator.Config)) *simulator.Device {
	t.Helper()
	id, key := s.Provision(t, ep)
	cfg := simulator.Config{Endpoint: ep, PSKIdentity: id, PSKKey: key, Server: s.Addr(),
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
	relay, err := link.NewRelay(s.CoAP.DTLSAddr().(*net.UDPAddr), mustProfile(t, "wifi"), 7)
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

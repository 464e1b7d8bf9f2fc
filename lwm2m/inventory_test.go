package lwm2m_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/client"
	"github.com/fotahub/fota/lwm2m/model"
)

type memInfos struct {
	mu sync.Mutex
	m  map[string]lwm2m.DeviceInfo
}

func (s *memInfos) PutDeviceInfo(_ context.Context, i lwm2m.DeviceInfo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[i.Endpoint] = i
	return nil
}

func (s *memInfos) DeviceInfos(context.Context) ([]lwm2m.DeviceInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []lwm2m.DeviceInfo
	for _, i := range s.m {
		out = append(out, i)
	}
	return out, nil
}

// TestInventory: the firmware version is read after every Register (not
// after an Update), kept, and persisted; Reachable follows queue mode.
func TestInventory(t *testing.T) {
	store := &memInfos{m: map[string]lwm2m.DeviceInfo{}}
	var inv *lwm2m.Inventory
	s := startServer(t, lwm2m.OperatorConfig{AwakeTime: 300 * time.Millisecond,
		Registered: func(reg lwm2m.Registration, update bool) { inv.Registered(reg, update) }})
	inv = lwm2m.NewInventory(s.ops, store, zerolog.Nop())
	t.Cleanup(inv.Close)

	c := s.device(t, "meter", func(c *client.Config) { c.Queue = true })
	waitFor(t, func() bool { v, ok := inv.Installed("meter"); return ok && v == "1.0" })
	if !s.ops.Reachable("meter") {
		t.Fatal("a queue-mode device that just registered is not reachable")
	}
	waitFor(t, func() bool { return !s.ops.Reachable("meter") })
	if s.ops.Reachable("nobody") {
		t.Fatal("an unknown endpoint is reachable")
	}

	if err := c.Set(ctx5(t), model.ResourcePath(3, 0, 3), model.StringValue("2.0")); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	if !s.ops.Reachable("meter") {
		t.Fatal("awake after its Update, but not reachable")
	}
	time.Sleep(200 * time.Millisecond)
	if v, _ := inv.Installed("meter"); v != "1.0" {
		t.Fatalf("version %q after an Update, want 1.0 (no read)", v)
	}
	if err := c.Register(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { v, _ := inv.Installed("meter"); return v == "2.0" })

	again := lwm2m.NewInventory(s.ops, store, zerolog.Nop())
	if err := again.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if i, ok := again.Info("meter"); !ok || i.FirmwareVersion != "2.0" || i.Read.IsZero() {
		t.Fatalf("loaded %+v, want 2.0", i)
	}
}

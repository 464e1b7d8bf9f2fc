// Package lwm2mtest runs the server side of LwM2M on loopback for tests in
// other packages: an in-memory device store, the registry, the operator
// and a DTLS (PSK) CoAP server, torn down when the test ends.
package lwm2mtest

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
)

// Devices is a map-backed lwm2m.DeviceStore.
type Devices struct {
	mu sync.Mutex
	m  map[string]lwm2m.Device
}

var _ lwm2m.DeviceStore = (*Devices)(nil)

// NewDevices returns an empty store.
func NewDevices() *Devices { return &Devices{m: map[string]lwm2m.Device{}} }

// PutDevice implements lwm2m.DeviceStore.
func (d *Devices) PutDevice(_ context.Context, dev lwm2m.Device) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.m {
		if dev.PSKIdentity != "" && o.PSKIdentity == dev.PSKIdentity && o.Endpoint != dev.Endpoint {
			return lwm2m.ErrExists
		}
	}
	d.m[dev.Endpoint] = dev
	return nil
}

// Device implements lwm2m.DeviceStore.
func (d *Devices) Device(_ context.Context, ep string) (lwm2m.Device, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dev, ok := d.m[ep]; ok {
		return dev, nil
	}
	return lwm2m.Device{}, lwm2m.ErrNotFound
}

// DeviceByPSKIdentity implements lwm2m.DeviceStore.
func (d *Devices) DeviceByPSKIdentity(_ context.Context, id string) (lwm2m.Device, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dev := range d.m {
		if dev.PSKIdentity == id {
			return dev, nil
		}
	}
	return lwm2m.Device{}, lwm2m.ErrNotFound
}

// DeleteDevice implements lwm2m.DeviceStore.
func (d *Devices) DeleteDevice(_ context.Context, ep string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.m[ep]; !ok {
		return lwm2m.ErrNotFound
	}
	delete(d.m, ep)
	return nil
}

// Devices implements lwm2m.DeviceStore.
func (d *Devices) Devices(context.Context) ([]lwm2m.Device, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]lwm2m.Device, 0, len(d.m))
	for _, dev := range d.m {
		out = append(out, dev)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out, nil
}

// Server is the LwM2M core on a loopback DTLS port.
type Server struct {
	Devices  *Devices
	Registry *lwm2m.Registry
	Operator *lwm2m.Operator
	CoAP     *coap.Server
}

// Start runs a server until the test ends. Retransmissions and ticks are
// short so that tests of lost messages stay quick.
func Start(t testing.TB, opcfg lwm2m.OperatorConfig) *Server {
	t.Helper()
	s := &Server{Devices: NewDevices()}
	s.Registry = lwm2m.NewRegistry(lwm2m.RegistryConfig{Devices: s.Devices})
	s.Operator = lwm2m.NewOperator(s.Registry, opcfg)
	cfg := coap.DefaultConfig()
	cfg.DTLSAddr = "127.0.0.1:0"
	cfg.Handler = s.Operator
	cfg.Tick = 50 * time.Millisecond
	cfg.AckTimeout = 500 * time.Millisecond
	cfg.PSK = func(id string) ([]byte, error) {
		dev, err := s.Devices.DeviceByPSKIdentity(context.Background(), id)
		if err != nil {
			return nil, coap.ErrUnknownIdentity
		}
		return dev.PSKKey, nil
	}
	var err error
	if s.CoAP, err = coap.Listen(cfg); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.CoAP.Serve(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.CoAP.Shutdown(ctx)
		<-done
	})
	return s
}

// Addr is the server's DTLS address.
func (s *Server) Addr() string { return s.CoAP.DTLSAddr().String() }

// Provision adds ep with PSK identity "id-"+ep and key "key-"+ep and
// returns them.
func (s *Server) Provision(t testing.TB, ep string) (identity string, key []byte) {
	t.Helper()
	identity, key = "id-"+ep, []byte("key-"+ep)
	if err := s.Devices.PutDevice(context.Background(), lwm2m.Device{Endpoint: ep, PSKIdentity: identity, PSKKey: key}); err != nil {
		t.Fatal(err)
	}
	return identity, key
}

// Identity is what ep's DTLS session proves, for coap.Server.Publish.
func Identity(ep string) coap.Identity { return coap.Identity{Mode: coap.PSK, Name: "id-" + ep} }

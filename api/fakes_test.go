package api

import (
	"context"
	"sort"
	"sync"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/lwm2m"
)

// memDevices is a map-backed lwm2m.DeviceStore.
type memDevices struct {
	mu      sync.Mutex
	devices map[string]lwm2m.Device
	err     error // returned by every call when set
}

func newMemDevices() *memDevices { return &memDevices{devices: map[string]lwm2m.Device{}} }

func (m *memDevices) PutDevice(_ context.Context, d lwm2m.Device) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if d.PSKIdentity != "" {
		for _, o := range m.devices {
			if o.PSKIdentity == d.PSKIdentity && o.Endpoint != d.Endpoint {
				return lwm2m.ErrExists
			}
		}
	}
	d.PSKKey = append([]byte(nil), d.PSKKey...)
	m.devices[d.Endpoint] = d
	return nil
}

func (m *memDevices) Device(_ context.Context, ep string) (lwm2m.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return lwm2m.Device{}, m.err
	}
	d, ok := m.devices[ep]
	if !ok {
		return lwm2m.Device{}, lwm2m.ErrNotFound
	}
	return d, nil
}

func (m *memDevices) DeviceByPSKIdentity(_ context.Context, id string) (lwm2m.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.devices {
		if d.PSKIdentity == id {
			return d, nil
		}
	}
	return lwm2m.Device{}, lwm2m.ErrNotFound
}

func (m *memDevices) DeleteDevice(_ context.Context, ep string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if _, ok := m.devices[ep]; !ok {
		return lwm2m.ErrNotFound
	}
	delete(m.devices, ep)
	return nil
}

func (m *memDevices) Devices(context.Context) ([]lwm2m.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	out := make([]lwm2m.Device, 0, len(m.devices))
	for _, d := range m.devices {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out, nil
}

// memRegs is a map-backed Registrations.
type memRegs map[string]lwm2m.Registration

func (m memRegs) Registrations() []lwm2m.Registration {
	out := make([]lwm2m.Registration, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	return out
}

func (m memRegs) Lookup(ep string) (lwm2m.Registration, bool) { r, ok := m[ep]; return r, ok }
func (m memRegs) Count() int                                  { return len(m) }

// statsFunc is a TransportStats.
type statsFunc func() coap.Stats

func (f statsFunc) Stats() coap.Stats { return f() }

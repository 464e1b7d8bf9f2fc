package lwm2m

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// memDevices is a map-backed DeviceStore.
type memDevices struct {
	mu      sync.Mutex
	devices map[string]Device
	err     error // returned by every lookup when set
}

func newMemDevices(ds ...Device) *memDevices {
	m := &memDevices{devices: map[string]Device{}}
	for _, d := range ds {
		m.devices[d.Endpoint] = d
	}
	return m
}

func (m *memDevices) PutDevice(_ context.Context, d Device) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.devices {
		if d.PSKIdentity != "" && o.PSKIdentity == d.PSKIdentity && o.Endpoint != d.Endpoint {
			return ErrExists
		}
	}
	m.devices[d.Endpoint] = d
	return nil
}

func (m *memDevices) Device(_ context.Context, endpoint string) (Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return Device{}, m.err
	}
	d, ok := m.devices[endpoint]
	if !ok {
		return Device{}, ErrNotFound
	}
	return d, nil
}

func (m *memDevices) DeviceByPSKIdentity(_ context.Context, identity string) (Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return Device{}, m.err
	}
	for _, d := range m.devices {
		if d.PSKIdentity == identity {
			return d, nil
		}
	}
	return Device{}, ErrNotFound
}

func (m *memDevices) DeleteDevice(_ context.Context, endpoint string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.devices[endpoint]; !ok {
		return ErrNotFound
	}
	delete(m.devices, endpoint)
	return nil
}

func (m *memDevices) Devices(context.Context) ([]Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ds := slices.Collect(maps.Values(m.devices))
	slices.SortFunc(ds, func(a, b Device) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	return ds, nil
}

// memRegs is a map-backed RegistrationStore whose calls can be made to fail.
type memRegs struct {
	mu        sync.Mutex
	regs      map[string]Registration
	putErr    error
	deleteErr error
	listErr   error
}

func newMemRegs(regs ...Registration) *memRegs {
	m := &memRegs{regs: map[string]Registration{}}
	for _, r := range regs {
		m.regs[r.ID] = r
	}
	return m
}

func (m *memRegs) PutRegistration(_ context.Context, r Registration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.putErr != nil {
		return m.putErr
	}
	m.regs[r.ID] = cloneRegistration(r)
	return nil
}

func (m *memRegs) DeleteRegistration(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deleteErr != nil {
		return m.deleteErr
	}
	delete(m.regs, id)
	return nil
}

func (m *memRegs) Registrations(context.Context) ([]Registration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.listErr != nil {
		return nil, m.listErr
	}
	return slices.Collect(maps.Values(m.regs)), nil
}

func (m *memRegs) fail(put, del error) {
	m.mu.Lock()
	m.putErr, m.deleteErr = put, del
	m.mu.Unlock()
}

// snapshot returns a copy of the stored registrations by id.
func (m *memRegs) snapshot() map[string]Registration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.regs)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

package lwm2m

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/lwm2m/model"
)

// DeviceInfo is what a device last reported about itself in the Device
// object (/3/0).
type DeviceInfo struct {
	Endpoint string
	// FirmwareVersion is /3/0/3.
	FirmwareVersion string
	Read            time.Time
}

// InfoStore persists DeviceInfo records, one per endpoint.
type InfoStore interface {
	PutDeviceInfo(ctx context.Context, info DeviceInfo) error
	DeviceInfos(ctx context.Context) ([]DeviceInfo, error)
}

// infoReadTimeout bounds the read of /3/0/3 after a registration; a
// queue-mode device is awake then, so it answers at once or not at all.
const infoReadTimeout = 2 * time.Minute

// Inventory knows the firmware version every device runs: it reads /3/0/3
// when a device registers (a device registers again after it installed an
// image) and keeps the last answer, in memory and in its store, so that
// campaigns can select and plan by version without asking each device.
type Inventory struct {
	ops   *Operator
	store InfoStore
	log   zerolog.Logger

	mu    sync.Mutex
	infos map[string]DeviceInfo
	// ctx ends the reads in flight at Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewInventory returns an Inventory that reads through ops and persists
// to store (nil: memory only).
func NewInventory(ops *Operator, store InfoStore, log zerolog.Logger) *Inventory {
	inv := &Inventory{ops: ops, store: store, log: log.With().Str("component", "inventory").Logger(),
		infos: map[string]DeviceInfo{}}
	inv.ctx, inv.cancel = context.WithCancel(context.Background())
	return inv
}

// Load reads the stored records.
func (inv *Inventory) Load(ctx context.Context) error {
	if inv.store == nil {
		return nil
	}
	infos, err := inv.store.DeviceInfos(ctx)
	if err != nil {
		return err
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	for _, i := range infos {
		inv.infos[i.Endpoint] = i
	}
	return nil
}

// Registered reads /3/0/3 after a Register (not after an Update: the
// version changes only across a reboot, and a reboot registers again).
// The read runs on its own goroutine; Close ends those in flight.
func (inv *Inventory) Registered(reg Registration, update bool) {
	if update || inv.ctx.Err() != nil {
		return
	}
	inv.wg.Add(1)
	go func() {
		defer inv.wg.Done()
		inv.read(reg.Endpoint)
	}()
}

func (inv *Inventory) read(ep string) {
	ctx, cancel := context.WithTimeout(inv.ctx, infoReadTimeout)
	defer cancel()
	res, err := inv.ops.Do(ctx, ep, Op{Kind: OpRead, Path: model.ResourcePath(3, 0, 3)})
	if err != nil {
		inv.log.Debug().Str("endpoint", ep).Err(err).Msg("firmware version not read")
		return
	}
	for _, pv := range res.Values {
		if s, ok := pv.Value.AsString(); ok && pv.Path == model.ResourcePath(3, 0, 3) {
			inv.Set(ep, s)
			return
		}
	}
}

// Set records the firmware version a device reported.
func (inv *Inventory) Set(ep, version string) {
	info := DeviceInfo{Endpoint: ep, FirmwareVersion: version, Read: time.Now()}
	inv.mu.Lock()
	old, had := inv.infos[ep]
	inv.infos[ep] = info
	inv.mu.Unlock()
	if had && old.FirmwareVersion != version {
		inv.log.Info().Str("endpoint", ep).Str("from", old.FirmwareVersion).Str("to", version).Msg("firmware version changed")
	}
	if inv.store == nil {
		return
	}
	if err := inv.store.PutDeviceInfo(context.Background(), info); err != nil {
		inv.log.Error().Err(err).Str("endpoint", ep).Msg("device info not persisted")
	}
}

// Info returns what the device last reported.
func (inv *Inventory) Info(ep string) (DeviceInfo, bool) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	i, ok := inv.infos[ep]
	return i, ok
}

// Installed returns the firmware version the device last reported.
func (inv *Inventory) Installed(ep string) (string, bool) {
	i, ok := inv.Info(ep)
	return i.FirmwareVersion, ok && i.FirmwareVersion != ""
}

// Close ends the reads in flight and waits for them.
func (inv *Inventory) Close() {
	inv.cancel()
	inv.wg.Wait()
}

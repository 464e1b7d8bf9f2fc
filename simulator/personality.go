package simulator

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Client is the LwM2M client stack a simulated device runs. Most devices
// in the field run clients fotahub does not write, which take their
// vendor's image format byte for byte and fetch, keep and report an update
// in their own way; a personality copies those habits so that the server
// is tested against them and not only against fotahub's own client.
type Client string

// Client personalities.
const (
	// ClientNative is fotahub's own client (the default): it takes fotad's
	// signed packages (manifest checked, deltas applied), downloads over
	// its registration session and resumes a download from its journal.
	ClientNative Client = "native"
	// ClientZephyr is Zephyr's (nRF Connect SDK's) LwM2M client with
	// MCUboot: raw MCUboot images, 256-byte blocks, Size2 asked first, a
	// download session of its own, Object 5 in RAM only (a reboot forgets
	// a download), and the result reported about a second after it
	// registered with the new image.
	ClientZephyr Client = "zephyr"
	// ClientAnjay is a product built on Anjay that takes a vendor-wrapped
	// blob: 1024-byte blocks, no Size2, a download session of its own, a
	// download persisted and resumed after a reboot when the ETag is
	// unchanged, and the result set before it registers with the new image.
	ClientAnjay Client = "anjay"
)

// Clients lists every personality.
var Clients = []Client{ClientNative, ClientZephyr, ClientAnjay}

// ParseClient checks a personality name; "" is ClientNative.
func ParseClient(s string) (Client, error) {
	if s == "" {
		return ClientNative, nil
	}
	for _, c := range Clients {
		if string(c) == s {
			return c, nil
		}
	}
	names := make([]string, len(Clients))
	for i, c := range Clients {
		names[i] = string(c)
	}
	return "", fmt.Errorf("unknown client %q (want %s)", s, strings.Join(names, ", "))
}

// reportOrder is when a client sets Update Result 1 after it booted the
// new image: servers must cope with each order.
type reportOrder int

const (
	// reportOnRegister: right after the Register succeeded (native).
	reportOnRegister reportOrder = iota
	// reportAfterRegister: a while after the Register, as a notification
	// (Zephyr: "re-register before reporting the result").
	reportAfterRegister
	// reportBeforeRegister: already in Object 5 when the Register goes
	// out (Anjay: "report the result, then re-register").
	reportBeforeRegister
)

// zephyrReportDelay is how long after its Register a Zephyr device sets
// the result of an update.
const zephyrReportDelay = time.Second

// personality is what differs between the client stacks.
type personality struct {
	// blockSize is the Block2 size of a pull when Config.BlockSize is 0.
	blockSize int
	// askSize2 asks for Size2 in the first request of a download.
	askSize2 bool
	// ownSession downloads over a session of its own instead of the
	// registration's.
	ownSession bool
	// volatile keeps Object 5 in RAM only: a reboot forgets the state, the
	// result and any download under way.
	volatile bool
	report   reportOrder
	// image is the format a raw client writes to its slot unchanged; nil
	// for fotad's signed packages.
	image rawFormat
}

// personalities are the client stacks the simulator plays.
var personalities = map[Client]personality{
	ClientNative: {blockSize: 512, askSize2: true, report: reportOnRegister},
	ClientZephyr: {blockSize: 256, askSize2: true, ownSession: true, volatile: true,
		report: reportAfterRegister, image: mcubootFormat{}},
	ClientAnjay: {blockSize: 1024, ownSession: true,
		report: reportBeforeRegister, image: vendorFormat{}},
}

// raw reports whether the client takes a vendor image rather than fotad's
// signed package.
func (p personality) raw() bool { return p.image != nil }

// pkgName is /5/0/6 after a download.
func (p personality) pkgName(class string) string {
	if p.raw() {
		return p.image.name()
	}
	return class
}

// initialImage describes the image a device runs at first: for a raw
// client what its header says (Config.FirmwareVersion does not apply).
func (p personality) initialImage(cfg Config) (ImageInfo, error) {
	if !p.raw() {
		return ImageInfo{Version: cfg.FirmwareVersion, Sequence: cfg.Sequence}, nil
	}
	version, err := p.image.verify(cfg.Firmware)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("firmware is not a valid %s image: %w", p.image.name(), err)
	}
	return ImageInfo{Version: version}, nil
}

// restored is Object 5 as a boot finds it: what the flash kept, or
// nothing for a client that keeps it in RAM.
func (p personality) restored(saved fwRecord) fwRecord {
	if p.volatile {
		return fwRecord{}
	}
	return saved
}

// reportBootedLocked sets, before the Register, the result of an update whose
// image just booted, for the clients that report it then.
func (d *Device) reportBootedLocked() {
	if d.p.report != reportBeforeRegister {
		return
	}
	d.fw.Journal = nil
	d.fw.State, d.fw.Result, d.fw.LastChange = StateIdle, ResultSuccess, d.now()
	d.log.Info().Msg("new image booted: result 1 before registering")
}

// reportRegistered reports, once the new image has registered, the
// result of the update that installed it, each client in its order.
func (d *Device) reportRegistered(ctx context.Context) {
	switch d.p.report {
	case reportOnRegister:
		d.reportSuccess(ctx, false)
	case reportAfterRegister:
		go func() {
			select {
			case <-time.After(zephyrReportDelay):
				d.reportSuccess(ctx, true)
			case <-ctx.Done(): // rebooted first: RAM forgot the result
			}
		}()
	case reportBeforeRegister:
		d.emit("updated-firmware", "")
	}
}

// reportSuccess sets Update Result 1, notified to the observers, and the
// running version. Reported late, it leaves alone a download the server
// started meanwhile.
func (d *Device) reportSuccess(ctx context.Context, late bool) {
	d.mu.Lock()
	if late && d.fw.State != StateIdle {
		d.mu.Unlock()
		return
	}
	d.fw.Journal = nil
	d.setStateLocked(StateIdle, ResultSuccess)
	d.mu.Unlock()
	d.setFirmwareResources(ctx)
	d.emit("updated-firmware", "")
}

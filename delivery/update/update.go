// Package update drives firmware updates of LwM2M devices through Object 5
// (OMA LwM2M Core, Firmware Update): it picks the package (delta or full),
// serves it by pull (Package URI, Block2) or push (Block1 writes of
// /5/0/0), executes Update once the device has it, and counts the update
// done only when the device reports Update Result 1 and comes back with the
// target version in /3/0/3. A delta the device cannot apply falls back to
// the full image. docs/update-driver.md has the design.
package update

import (
	"context"
	"errors"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/lwm2m"
)

// Phase is where an update is.
type Phase string

// Phases, in order; an update ends Done, Failed or Cancelled.
const (
	Preparing   Phase = "preparing"
	Downloading Phase = "downloading"
	Downloaded  Phase = "downloaded"
	Updating    Phase = "updating"
	Done        Phase = "done"
	Failed      Phase = "failed"
	Cancelled   Phase = "cancelled"
)

// Finished reports an end phase.
func (p Phase) Finished() bool { return p == Done || p == Failed || p == Cancelled }

// Update is one device's update, as persisted after every transition.
type Update struct {
	Endpoint string
	// Image is the target as asked (a version or digest); Target and
	// Version what it resolved to.
	Image   string
	Target  manifest.Digest
	Version string
	// Class is the target image's class, whose profile says how the
	// update is delivered and recognised (firmware.Class).
	Class string
	Push  bool // push (Block1) rather than pull
	Full  bool // full image asked for, or after a delta fell back
	// Campaign is the campaign that started the update ("" for one
	// started by hand).
	Campaign string
	// FellBack is set when a delta failed on the device and the full
	// image was sent instead.
	FellBack bool
	Package  manifest.Digest
	Format   manifest.Format
	// Raw is set when the package is a raw image, sent as uploaded.
	Raw  bool
	Size int64
	// FullSize is the size of the target's full-image package: what a
	// delta saved against.
	FullSize int64
	Path     string // the published path (pull)
	Phase    Phase
	// Result is the last Update Result (/5/0/5) the device reported.
	Result int
	Error  string
	// BytesServed counts package bytes sent (pull: blocks served).
	BytesServed int64
	// BlockSize is the Block2 size of the device's download (pull): the
	// cap for its link until it asks, then the size it asks for.
	BlockSize int
	// MaxBlock caps BlockSize below the link's size (0: no cap).
	MaxBlock int
	// Retries counts downloads started again after a lost connection
	// (result 4) or an unanswered operation.
	Retries int
	// RetryLimit bounds Retries for this update (0: the driver's
	// Config.Retries, negative: none).
	RetryLimit int
	Started    time.Time
	Changed    time.Time
	// Executed is when Update (/5/0/2) was last executed: the device has
	// RebootTimeout from then to come back.
	Executed time.Time
	Deadline time.Time
}

// Store persists updates. PutUpdate must be durable when it returns.
type Store interface {
	PutUpdate(ctx context.Context, u Update) error
	Updates(ctx context.Context) ([]Update, error)
}

// Devices is the operation layer (*lwm2m.Operator).
type Devices interface {
	Do(ctx context.Context, ep string, op lwm2m.Op) (lwm2m.Result, error)
	Observe(ctx context.Context, ep string, op lwm2m.Op) (*lwm2m.Watch, lwm2m.Result, error)
}

// Registrations finds a device's registration (*lwm2m.Registry).
type Registrations interface {
	Lookup(endpoint string) (lwm2m.Registration, bool)
}

// Packages makes and serves packages and knows the device classes
// (*firmware.Service).
type Packages interface {
	Image(ctx context.Context, ref, class string) (firmware.Image, error)
	Class(ctx context.Context, name string) (firmware.Class, error)
	MakePackage(ctx context.Context, req firmware.Request) (firmware.Offer, error)
	PackageData(ctx context.Context, id manifest.Digest) ([]byte, error)
}

// BlockSizer returns the largest block size for the device's link (see
// coap.BlockSizeForMTU) and class, 0 for the server's default.
type BlockSizer func(ctx context.Context, ep, class string) int

// Publisher serves package bytes to one device (*coap.Server).
type Publisher interface {
	Publish(owner coap.Identity, blob coap.Blob, opts coap.PublishOptions) (string, error)
	Unpublish(path string) bool
}

// Errors of Start and Cancel.
var (
	ErrBusy       = errors.New("an update is already running for this device")
	ErrNoUpdate   = errors.New("no update for this device")
	ErrNotRunning = errors.New("the update has finished")
)

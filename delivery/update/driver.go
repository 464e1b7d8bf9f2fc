package update

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
)

// Config wires a Driver.
type Config struct {
	Devices       Devices
	Registrations Registrations
	Packages      Packages
	Publisher     Publisher
	Store         Store
	// ServerURI is how devices reach the CoAPS listener, e.g.
	// "coaps://fota.example.net:5684"; Package URIs are made from it.
	ServerURI string
	// PlainURI is how devices reach the plain CoAP listener, e.g.
	// "coap://fota.example.net:5683": the Package URIs of NoSec devices
	// and of classes with the coap scheme. Empty when there is none.
	PlainURI string
	// Deadline bounds a whole update (default 24 h).
	Deadline time.Duration
	// RebootTimeout is how long a device has, after Update is executed,
	// to come back with a result (default 30 min); after it the update
	// fails as "device never came back".
	RebootTimeout time.Duration
	// Retries bounds how often a download starts again after a lost
	// connection (result 4) or an operation the device did not answer
	// (default 3, negative for none); RetryBackoff is the first wait, doubled each time up to
	// 15 min (default 30 s). A deferred update (result 11) is executed
	// again after RetryBackoff until the deadline.
	Retries      int
	RetryBackoff time.Duration
	// PollInterval is how often Object 5 is read while the driver waits
	// for notifications, in case one was lost (default 2 min).
	PollInterval time.Duration
	// BlockSize caps the Block2 size per device (nil: the server's).
	BlockSize BlockSizer
	Logger    zerolog.Logger
}

// Driver runs updates, one per device at a time.
type Driver struct {
	cfg Config
	log zerolog.Logger

	mu      sync.Mutex
	updates map[string]*Update
	// writes serializes set per endpoint, so that one change is
	// persisted and shown before the next is made.
	writes  map[string]*sync.Mutex
	cancels map[string]context.CancelFunc
	closing bool            // Close: runs stop where they are, to resume next start
	live    map[string]bool // paths this process has published
	wg      sync.WaitGroup
}

// New returns a Driver; call Resume to continue persisted updates.
func New(cfg Config) *Driver {
	if cfg.Deadline <= 0 {
		cfg.Deadline = 24 * time.Hour
	}
	if cfg.RebootTimeout <= 0 {
		cfg.RebootTimeout = 30 * time.Minute
	}
	if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Minute
	}
	return &Driver{cfg: cfg, log: cfg.Logger.With().Str("component", "update").Logger(),
		updates: map[string]*Update{}, writes: map[string]*sync.Mutex{}, cancels: map[string]context.CancelFunc{}, live: map[string]bool{}}
}

// Request asks for an update.
type Request struct {
	Image string // version or digest of the target image
	// Class is the image's class, for a version several classes have;
	// empty: the version must name one image.
	Class string
	Full  bool // never a delta
	Push  bool // write the package (Block1) instead of a Package URI
	// BlockSize caps the Block2 size below the link's (0: no cap).
	BlockSize int
	// Retries overrides Config.Retries for this update (0: keep it,
	// negative: no retries).
	Retries int
	// Campaign names the campaign asking, for the record.
	Campaign string
}

// Start begins updating the endpoint; it fails with ErrBusy while an
// update of it runs.
func (d *Driver) Start(ctx context.Context, ep string, req Request) (Update, error) {
	if _, ok := d.cfg.Registrations.Lookup(ep); !ok {
		return Update{}, fmt.Errorf("update %s: %w", ep, lwm2m.ErrNotRegistered)
	}
	target, err := d.cfg.Packages.Image(ctx, req.Image, req.Class)
	if err != nil {
		return Update{}, fmt.Errorf("update %s: %w", ep, err)
	}

	class, err := d.cfg.Packages.Class(ctx, target.Class)
	if err != nil {
		return Update{}, fmt.Errorf("update %s: %w", ep, err)
	}
	deadline := d.cfg.Deadline
	if class.Deadline > 0 {
		deadline = class.Deadline
	}
	d.mu.Lock()
	if u, ok := d.updates[ep]; ok && !u.Phase.Finished() {
		d.mu.Unlock()
		return Update{}, ErrBusy
	}
	now := time.Now()
	u := &Update{Endpoint: ep, Image: req.Image, Class: target.Class, Full: req.Full,
		Push: req.Push || class.Method == firmware.MethodPush, Campaign: req.Campaign,
		MaxBlock: req.BlockSize, RetryLimit: req.Retries, Phase: Preparing,
		Started: now, Changed: now, Deadline: now.Add(deadline)}
	d.updates[ep] = u
	d.mu.Unlock()
	if err := d.cfg.Store.PutUpdate(ctx, *u); err != nil {
		d.mu.Lock()
		delete(d.updates, ep)
		d.mu.Unlock()
		return Update{}, fmt.Errorf("start update of %s: %w", ep, err)
	}
	snapshot := *u
	d.launch(u)
	return snapshot, nil
}

// Resume continues every unfinished update of a previous run.
func (d *Driver) Resume(ctx context.Context) error {
	us, err := d.cfg.Store.Updates(ctx)
	if err != nil {
		return fmt.Errorf("resume updates: %w", err)
	}
	for _, u := range us {
		u := u
		d.mu.Lock()
		d.updates[u.Endpoint] = &u
		d.mu.Unlock()
		if !u.Phase.Finished() {
			d.log.Info().Str("endpoint", u.Endpoint).Str("phase", string(u.Phase)).Msg("update resumes")
			d.launch(&u)
		}
	}
	return nil
}

// Status returns the endpoint's current or last update.
func (d *Driver) Status(ep string) (Update, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.updates[ep]
	if !ok {
		return Update{}, false
	}
	return *u, true
}

// Cancel stops the endpoint's update and tells the device (Write of an
// empty Package URI resets Object 5).
func (d *Driver) Cancel(ctx context.Context, ep string) error {
	d.mu.Lock()
	u, ok := d.updates[ep]
	finished := ok && u.Phase.Finished()
	cancel := d.cancels[ep]
	d.mu.Unlock()
	switch {
	case !ok:
		return ErrNoUpdate
	case finished:
		return ErrNotRunning
	}
	// Finished first, so that the run, stopped next, cannot end it as
	// failed; then the device is told (an empty Package URI resets it).
	d.finish(ctx, ep, Cancelled, 0, "cancelled")
	if cancel != nil {
		cancel()
	}
	reset := model.SingleResource(1, model.StringValue(""))
	_, err := d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpWrite, Path: model.ResourcePath(5, 0, 1), Node: &reset})
	if err != nil {
		return fmt.Errorf("cancel update of %s: reset the device: %w", ep, err)
	}
	return nil
}

// Wait blocks until every running update has ended (tests, shutdown).
func (d *Driver) Wait() { d.wg.Wait() }

// Close stops every running update where it is, without finishing it:
// the persisted record lets Resume continue it at the next start.
func (d *Driver) Close() {
	d.mu.Lock()
	d.closing = true
	for _, cancel := range d.cancels {
		cancel()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

func (d *Driver) isClosing() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closing
}

func (d *Driver) launch(u *Update) {
	ctx, cancel := context.WithDeadline(context.Background(), u.Deadline)
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		cancel()
		return
	}
	d.cancels[u.Endpoint] = cancel
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		d.run(ctx, u.Endpoint)
	}()
}

// set changes the update and persists it; the change shows in Status
// only once it is stored, so what Status reports survives a crash.
// change must be idempotent: it is applied to a copy, then to the update.
func (d *Driver) set(ctx context.Context, ep string, change func(*Update)) Update {
	d.mu.Lock()
	w := d.writes[ep]
	if w == nil {
		w = new(sync.Mutex)
		d.writes[ep] = w
	}
	d.mu.Unlock()
	w.Lock()
	defer w.Unlock()
	d.mu.Lock()
	u := d.updates[ep]
	if u.Phase.Finished() {
		snapshot := *u
		d.mu.Unlock()
		return snapshot
	}
	next := *u
	d.mu.Unlock()
	change(&next)
	next.Changed = time.Now()
	if err := d.cfg.Store.PutUpdate(context.WithoutCancel(ctx), next); err != nil {
		d.log.Error().Err(err).Str("endpoint", ep).Msg("update not persisted")
	}
	d.mu.Lock()
	change(u)
	u.Changed = next.Changed
	snapshot := *u
	d.mu.Unlock()
	ev := d.log.Info().Str("endpoint", ep).Str("phase", string(snapshot.Phase)).Int("result", snapshot.Result)
	if snapshot.Format != 0 {
		ev = ev.Str("format", snapshot.Format.String())
	}
	if snapshot.Raw {
		ev = ev.Bool("raw", true)
	}
	if snapshot.Error != "" {
		ev = ev.Str("error", snapshot.Error)
	}
	ev.Msg("update")
	return snapshot
}

func (d *Driver) finish(ctx context.Context, ep string, phase Phase, result int, msg string) {
	u := d.set(ctx, ep, func(u *Update) { u.Phase, u.Result, u.Error = phase, result, msg })
	d.withdraw(u.Path)
}

// run takes one update from its persisted phase to its end.
func (d *Driver) run(ctx context.Context, ep string) {
	j := &job{ep: ep}
	defer d.stopWatch(j)
	for {
		u, _ := d.Status(ep)
		var err error
		switch u.Phase {
		case Preparing:
			err = d.prepare(ctx, j)
		case Downloading, Downloaded:
			err = d.download(ctx, j)
		case Updating:
			err = d.verify(ctx, j)
		default:
			return
		}
		if err == nil {
			continue
		}
		if d.isClosing() {
			return // fotad is stopping: the record stays as it is
		}
		if !d.recover(ctx, j, u, err) {
			return
		}
	}
}

// recover decides what follows a failed step: it sets the update up for
// another try and reports true, or ends it and reports false.
func (d *Driver) recover(ctx context.Context, j *job, u Update, err error) bool {
	ep := j.ep
	if now, ok := d.Status(ep); ok {
		u = now // what the failed step recorded (its result) counts
	}
	var dev *deviceFailure
	isDev := errors.As(err, &dev)
	switch {
	case isDev && (dev.result == resultIntegrity || dev.result == resultUnsupportedType) && !u.Full && u.Format.IsDelta():
		// The device could not apply the delta: send the full image.
		d.log.Info().Str("endpoint", ep).Int("result", dev.result).Msg("delta refused: falling back to the full image")
		d.set(ctx, ep, func(u *Update) { u.Full, u.FellBack, u.Phase, u.Result = true, true, Preparing, dev.result })
		d.unpublish(ep)
		return true
	case isDev && dev.result == resultCancelled:
		d.finish(ctx, ep, Cancelled, resultCancelled, "cancelled by the device")
		return false
	case isDev && dev.result == resultUnsupportedType:
		d.finish(ctx, ep, Failed, dev.result, d.unsupported(ctx, u))
		return false
	case isDev && dev.result != resultConnectionLost:
		d.finish(ctx, ep, Failed, dev.result, err.Error())
		return false
	case ctx.Err() != nil:
		d.finish(ctx, ep, Failed, u.Result, "deadline passed: "+err.Error())
		return false
	case errors.Is(err, errNeverBack):
		d.finish(ctx, ep, Failed, u.Result, err.Error())
		return false
	case !isDev && !transient(err):
		d.finish(ctx, ep, Failed, 0, err.Error())
		return false
	case u.Phase == Updating:
		// Update was executed: never download again, wait for the device
		// (verify is bounded by RebootTimeout).
		d.log.Info().Str("endpoint", ep).Err(err).Msg("waiting for the device after Update")
		if !sleep(ctx, pollFallback) {
			d.finish(ctx, ep, Failed, u.Result, "deadline passed: "+err.Error())
			return false
		}
		return true
	case u.Retries >= d.retryLimit(u):
		d.finish(ctx, ep, Failed, u.Result, fmt.Sprintf("gave up after %d retries: %v", u.Retries, err))
		return false
	}
	// Result 4, or the device did not answer: wait, then start the
	// download again at the same Package URI (the device may resume).
	wait := backoff(d.cfg.RetryBackoff, u.Retries)
	d.log.Info().Str("endpoint", ep).Err(err).Dur("backoff", wait).Int("retry", u.Retries+1).Msg("update retries")
	if !sleep(ctx, wait) {
		d.finish(ctx, ep, Failed, u.Result, "deadline passed: "+err.Error())
		return false
	}
	d.set(ctx, ep, func(u *Update) { u.Retries++; u.Phase = Preparing })
	return true
}

// retryLimit is how often the update may start its download again.
func (d *Driver) retryLimit(u Update) int {
	if u.RetryLimit != 0 {
		return u.RetryLimit
	}
	return d.cfg.Retries
}

// transient reports an error that may pass: an operation that timed out,
// went unanswered or found the device away, or a push the device lost
// half way (4.08). Any other CoAP error code or an unreadable answer from
// the device is definite, as are errors of the server's own (an image
// that does not exist).
func transient(err error) bool {
	var code lwm2m.CodeError
	if errors.As(err, &code) {
		// 4.08: the device lost a block-wise body half way (it rebooted
		// during a push): RFC 7959 §2.9.2 says to start the body again.
		return coap.Code(code) == coap.RequestEntityIncomplete
	}
	if errors.Is(err, lwm2m.ErrUnexpectedResponse) {
		return false
	}
	var op *lwm2m.OpError
	return errors.As(err, &op) || errors.Is(err, lwm2m.ErrNotRegistered) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, errDownloadLost)
}

// backoff is base doubled n times, at most 15 minutes.
func backoff(base time.Duration, n int) time.Duration {
	const limit = 15 * time.Minute
	for ; n > 0 && base < limit; n-- {
		base *= 2
	}
	return min(base, limit)
}

// sleep waits for d or the end of ctx, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (d *Driver) unpublish(ep string) {
	d.mu.Lock()
	path := d.updates[ep].Path
	d.updates[ep].Path = ""
	d.mu.Unlock()
	d.withdraw(path)
}

// withdraw stops serving a published path.
func (d *Driver) withdraw(path string) {
	if path == "" {
		return
	}
	d.mu.Lock()
	delete(d.live, path)
	d.mu.Unlock()
	d.cfg.Publisher.Unpublish(path)
}

// unsupported explains Update Result 6 (unsupported package type): the
// device's client does not take what its class's profile sends.
func (d *Driver) unsupported(ctx context.Context, u Update) string {
	class := d.class(ctx, u.Class)
	what := "the declared"
	if !class.Declared {
		what = "the default"
	}
	if u.Raw {
		return fmt.Sprintf("device reported update result 6 (unsupported package type) for raw image %s of class %q: "+
			"its client refused the file as uploaded; check that the image is the vendor's package for this device "+
			"(fotactl class show %s)", u.Version, u.Class, u.Class)
	}
	return fmt.Sprintf("device reported update result 6 (unsupported package type) for fotad's signed %s package: "+
		"class %q has %s profile native, and this device's client takes another format. If it runs a third-party "+
		"client (Zephyr/MCUboot, Anjay, a module's own FOTA), give it a raw class: fotactl class add NAME --profile raw, "+
		"add the vendor's image with fotactl image add FILE --version V --class NAME --format raw, and set the "+
		"device's class to NAME; see docs/devices.md", u.Format, u.Class, what)
}

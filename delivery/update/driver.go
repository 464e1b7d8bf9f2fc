package update

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
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
	// Deadline bounds a whole update (default 24 h).
	Deadline time.Duration
	Logger   zerolog.Logger
}

// Driver runs updates, one per device at a time.
type Driver struct {
	cfg Config
	log zerolog.Logger

	mu      sync.Mutex
	updates map[string]*Update
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
	return &Driver{cfg: cfg, log: cfg.Logger.With().Str("component", "update").Logger(),
		updates: map[string]*Update{}, cancels: map[string]context.CancelFunc{}, live: map[string]bool{}}
}

// Request asks for an update.
type Request struct {
	Image string // version or digest of the target image
	Full  bool   // never a delta
	Push  bool   // write the package (Block1) instead of a Package URI
}

// Start begins updating the endpoint; it fails with ErrBusy while an
// update of it runs.
func (d *Driver) Start(ctx context.Context, ep string, req Request) (Update, error) {
	if _, ok := d.cfg.Registrations.Lookup(ep); !ok {
		return Update{}, fmt.Errorf("update %s: %w", ep, lwm2m.ErrNotRegistered)
	}
	if _, err := d.cfg.Packages.Image(ctx, req.Image, ""); err != nil {
		return Update{}, fmt.Errorf("update %s: %w", ep, err)
	}
	d.mu.Lock()
	if u, ok := d.updates[ep]; ok && !u.Phase.Finished() {
		d.mu.Unlock()
		return Update{}, ErrBusy
	}
	now := time.Now()
	u := &Update{Endpoint: ep, Image: req.Image, Full: req.Full, Push: req.Push, Phase: Preparing,
		Started: now, Changed: now, Deadline: now.Add(d.cfg.Deadline)}
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
	if cancel != nil {
		cancel()
	}
	reset := model.SingleResource(1, model.StringValue(""))
	_, err := d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpWrite, Path: model.ResourcePath(5, 0, 1), Node: &reset})
	d.finish(ctx, ep, Cancelled, 0, "cancelled")
	return err
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
	d.log.Info().Str("endpoint", ep).Str("phase", string(snapshot.Phase)).Str("format", snapshot.Format.String()).
		Int("result", snapshot.Result).Msg("update")
	return snapshot
}

func (d *Driver) finish(ctx context.Context, ep string, phase Phase, result int, msg string) {
	u := d.set(ctx, ep, func(u *Update) { u.Phase, u.Result, u.Error = phase, result, msg })
	d.withdraw(u.Path)
}

// run takes one update from its persisted phase to its end.
func (d *Driver) run(ctx context.Context, ep string) {
	for {
		u, _ := d.Status(ep)
		var err error
		switch u.Phase {
		case Preparing:
			err = d.prepare(ctx, ep)
		case Downloading, Downloaded:
			err = d.download(ctx, ep)
		case Updating:
			err = d.verify(ctx, ep)
		default:
			return
		}
		if err == nil {
			continue
		}
		if d.isClosing() {
			return // fotad is stopping: the record stays as it is
		}
		var dev *deviceFailure
		switch {
		case errors.As(err, &dev) && (dev.result == 5 || dev.result == 6) && !u.Full && u.Format.IsDelta():
			// The device could not apply the delta: send the full image.
			d.log.Info().Str("endpoint", ep).Int("result", dev.result).Msg("delta refused: falling back to the full image")
			d.set(ctx, ep, func(u *Update) { u.Full, u.FellBack, u.Phase, u.Result = true, true, Preparing, dev.result })
			d.unpublish(ep)
		case errors.As(err, &dev):
			d.finish(ctx, ep, Failed, dev.result, err.Error())
			return
		case ctx.Err() != nil:
			if u, _ := d.Status(ep); !u.Phase.Finished() {
				d.finish(ctx, ep, Failed, 0, "deadline passed: "+err.Error())
			}
			return
		default:
			d.finish(ctx, ep, Failed, 0, err.Error())
			return
		}
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

// deviceFailure is an Update Result from 2 to 11.
type deviceFailure struct{ result int }

func (e *deviceFailure) Error() string {
	return fmt.Sprintf("device reported update result %d (%s)", e.result, resultText[e.result])
}

var resultText = map[int]string{2: "not enough flash", 3: "out of RAM", 4: "connection lost during download",
	5: "integrity check failure", 6: "unsupported package type", 7: "invalid URI", 8: "update failed",
	9: "unsupported protocol", 10: "cancelled", 11: "deferred"}

// prepare reads the device, makes the package and publishes or pushes it.
func (d *Driver) prepare(ctx context.Context, ep string) error {
	reg, ok := d.cfg.Registrations.Lookup(ep)
	if !ok {
		return fmt.Errorf("update %s: %w", ep, lwm2m.ErrNotRegistered)
	}
	installed, err := d.readString(ctx, ep, model.ResourcePath(3, 0, 3))
	if err != nil {
		return err
	}
	push, err := d.method(ctx, ep, reg)
	if err != nil {
		return err
	}
	d.set(ctx, ep, func(u *Update) { u.Push = push })
	u, _ := d.Status(ep)
	target, err := d.cfg.Packages.Image(ctx, u.Image, "")
	if err != nil {
		return err
	}
	req := firmware.Request{Image: target.Digest.String(), Class: target.Class, Full: u.Full}
	if inst, err := d.cfg.Packages.Image(ctx, installed, target.Class); err == nil {
		req.Installed = inst.Digest
	}
	offer, err := d.cfg.Packages.MakePackage(ctx, req)
	if err != nil {
		return err
	}
	data, err := d.cfg.Packages.PackageData(ctx, offer.ID)
	if err != nil {
		return err
	}
	d.set(ctx, ep, func(u *Update) {
		u.Target, u.Version, u.Package, u.Format, u.Size = target.Digest, target.Version, offer.ID, offer.Manifest.Format, offer.Size
		u.Phase, u.Result, u.BytesServed = Downloading, 0, 0
	})
	if u.Push {
		return d.push(ctx, ep, data)
	}
	return d.publish(ctx, ep, reg, offer.ID, data, "")
}

// errMethod: the device supports neither the delivery method asked for
// nor a protocol the server serves.
var errMethod = errors.New("the device cannot take the package that way")

// method decides push or pull from /5/0/9 (0 pull, 1 push, 2 both) and,
// for pull, /5/0/8 (the server serves CoAPS to devices with DTLS, CoAP
// to NoSec ones). A push asked for is kept when the device allows it.
func (d *Driver) method(ctx context.Context, ep string, reg lwm2m.Registration) (push bool, err error) {
	res, err := d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpRead, Path: model.ObjectInstancePath(5, 0)})
	if err != nil {
		return false, err
	}
	delivery, protocols := int64(2), map[int64]bool{}
	for _, pv := range res.Values {
		v, _ := pv.Value.AsInteger()
		switch {
		case pv.Path == model.ResourcePath(5, 0, 9):
			delivery = v
		case pv.Path.Parent() == model.ResourcePath(5, 0, 8):
			protocols[v] = true
		}
	}
	want := int64(1) // CoAPS
	if reg.Identity.Kind == lwm2m.IdentityNone {
		want = 0
	}
	canPull := delivery != 1 && (len(protocols) == 0 || protocols[want])
	canPush := delivery != 0
	u, _ := d.Status(ep)
	switch {
	case u.Push && canPush, !canPull && canPush:
		return true, nil
	case canPull:
		return false, nil
	}
	return false, fmt.Errorf("%w: delivery method %d, protocols %v", errMethod, delivery, protocols)
}

// publish serves the package to the device and writes its Package URI;
// path reuses an earlier path after a restart.
func (d *Driver) publish(ctx context.Context, ep string, reg lwm2m.Registration, id manifest.Digest, data []byte, path string) error {
	owner := coap.Identity{Mode: coap.SecurityMode(reg.Identity.Kind), Name: reg.Identity.Name}
	p, err := d.cfg.Publisher.Publish(owner, coap.NewBlob(bytes.NewReader(data), int64(len(data)), id[:]),
		coap.PublishOptions{Path: path, OnBlock: func(b coap.BlockServed) {
			d.mu.Lock()
			d.updates[ep].BytesServed += int64(b.Len)
			d.mu.Unlock()
		}})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.live[p] = true
	d.mu.Unlock()
	d.set(ctx, ep, func(u *Update) { u.Path = p })
	if path != "" {
		return nil // the device has the URI already
	}
	uri := model.SingleResource(1, model.StringValue(strings.TrimSuffix(d.cfg.ServerURI, "/")+p))
	_, err = d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpWrite, Path: model.ResourcePath(5, 0, 1), Node: &uri})
	return err
}

func (d *Driver) push(ctx context.Context, ep string, data []byte) error {
	pkg := model.SingleResource(0, model.OpaqueValue(data))
	_, err := d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpWrite, Path: model.ResourcePath(5, 0, 0), Node: &pkg})
	d.set(ctx, ep, func(u *Update) { u.BytesServed = int64(len(data)) })
	return err
}

// download waits for the device to have the package, then executes Update.
func (d *Driver) download(ctx context.Context, ep string) error {
	u, _ := d.Status(ep)
	d.mu.Lock()
	live := d.live[u.Path]
	d.mu.Unlock()
	if u.Path != "" && !live && u.Phase == Downloading {
		// After a restart: serve the same path again, the device resumes.
		reg, _ := d.cfg.Registrations.Lookup(ep)
		data, err := d.cfg.Packages.PackageData(ctx, u.Package)
		if err != nil {
			return err
		}
		if err := d.publish(ctx, ep, reg, u.Package, data, u.Path); err != nil {
			return err
		}
	}
	if err := d.waitState(ctx, ep, 2); err != nil {
		return err
	}
	d.set(ctx, ep, func(u *Update) { u.Phase = Downloaded })
	if _, err := d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpExecute, Path: model.ResourcePath(5, 0, 2)}); err != nil {
		return err
	}
	d.set(ctx, ep, func(u *Update) { u.Phase = Updating })
	return nil
}

// verify waits for Update Result 1 and the target version in /3/0/3;
// the reads wait in the device's queue while it reboots.
func (d *Driver) verify(ctx context.Context, ep string) error {
	u, _ := d.Status(ep)
	for {
		res, err := d.readFirmwareState(ctx, ep)
		if err != nil {
			return err
		}
		switch {
		case res.result == 1:
			version, err := d.readString(ctx, ep, model.ResourcePath(3, 0, 3))
			if err != nil {
				return err
			}
			if version == u.Version {
				d.finish(ctx, ep, Done, 1, "")
				return nil
			}
		case res.result > 1:
			return &deviceFailure{result: res.result}
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type fwState struct{ state, result int }

// readFirmwareState reads /5/0/3 and /5/0/5.
func (d *Driver) readFirmwareState(ctx context.Context, ep string) (fwState, error) {
	res, err := d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpRead, Path: model.ObjectInstancePath(5, 0)})
	if err != nil {
		return fwState{}, err
	}
	var st fwState
	for _, pv := range res.Values {
		v, _ := pv.Value.AsInteger()
		switch pv.Path {
		case model.ResourcePath(5, 0, 3):
			st.state = int(v)
		case model.ResourcePath(5, 0, 5):
			st.result = int(v)
		}
	}
	return st, nil
}

// waitState polls Object 5 until it reaches state, or a failure result.
func (d *Driver) waitState(ctx context.Context, ep string, state int) error {
	for {
		st, err := d.readFirmwareState(ctx, ep)
		if err != nil {
			return err
		}
		if u, _ := d.Status(ep); u.Result != st.result {
			d.set(ctx, ep, func(u *Update) { u.Result = st.result }) // a write only when it changed
		}
		switch {
		case st.state == state:
			return nil
		case st.state == 0 && st.result > 1:
			return &deviceFailure{result: st.result}
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (d *Driver) readString(ctx context.Context, ep string, p model.Path) (string, error) {
	res, err := d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpRead, Path: p})
	if err != nil {
		return "", err
	}
	if len(res.Values) != 1 {
		return "", fmt.Errorf("read %s: %d values", p, len(res.Values))
	}
	s, _ := res.Values[0].Value.AsString()
	return s, nil
}

package update

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
)

// Object 5 states (/5/0/3) the driver waits for.
const (
	stateIdle       = 0
	stateDownloaded = 2
	stateUpdating   = 3
)

// Update Results (/5/0/5) the driver treats apart from plain failures.
const (
	resultSuccess         = 1
	resultConnectionLost  = 4
	resultIntegrity       = 5
	resultUnsupportedType = 6
	resultCancelled       = 10
	resultDeferred        = 11
)

// deviceFailure is an Update Result from 2 to 11.
type deviceFailure struct{ result int }

func (e *deviceFailure) Error() string {
	return fmt.Sprintf("device reported update result %d (%s)", e.result, ResultText(e.result))
}

// resultNames names the Update Results of Object 5 (/5/0/5).
var resultNames = [...]string{0: "initial", 1: "success", 2: "not enough flash", 3: "out of RAM",
	4: "connection lost", 5: "integrity check failure", 6: "unsupported package type", 7: "invalid URI",
	8: "update failed", 9: "unsupported protocol", 10: "cancelled", 11: "deferred"}

// ResultText names an Object 5 Update Result: 0 "initial", 1 "success",
// 2 "not enough flash" ... 11 "deferred"; "unknown" for others.
func ResultText(result int) string {
	if result >= 0 && result < len(resultNames) {
		return resultNames[result]
	}
	return "unknown"
}

// errNeverBack: the device did not report a result within RebootTimeout
// of the Execute.
var errNeverBack = errors.New("device never came back after Update")

// errDownloadLost: the device came back from a reboot with Object 5 idle
// and no result, its download gone; it is started again like one that
// lost its connection.
var errDownloadLost = errors.New("the device rebooted and lost its download")

// errMethod: the device supports neither the delivery method asked for
// nor a protocol the server serves.
var errMethod = errors.New("the device cannot take the package that way")

// job is one update's run in this process: the observation of /5/0 and
// the state it last reported. None of it is persisted: after a restart
// the run observes again.
type job struct {
	ep      string
	watch   *lwm2m.Watch
	polling bool // the device refused the observation: read instead
	st      fwState
	// back is set when the device was observed again on a new
	// registration or session: it rebooted, or came back.
	back bool
	// regID is the registration the download started on: a device
	// registered anew since has rebooted or reconnected, which a device
	// that cannot be observed shows only this way.
	regID string
	// wrote and executed are set once this run had the device take the
	// package (its Package URI written, or the package pushed) and
	// executed Update. A run resumed after a restart has done neither:
	// the persisted phase may be ahead of what the device received (fotad
	// stopped while the write or the Execute was in flight).
	wrote, executed bool
}

// fwState is /5/0/3 and /5/0/5.
type fwState struct{ state, result int }

// with returns s changed by the values of a read or notification.
func (s fwState) with(values []model.PathValue) fwState {
	for _, pv := range values {
		v, ok := pv.Value.AsInteger()
		switch {
		case !ok:
		case pv.Path == model.ResourcePath(5, 0, 3):
			s.state = int(v)
		case pv.Path == model.ResourcePath(5, 0, 5):
			s.result = int(v)
		}
	}
	return s
}

// prepare reads the device, makes the package and publishes or pushes it.
func (d *Driver) prepare(ctx context.Context, j *job) error {
	ep := j.ep
	reg, ok := d.cfg.Registrations.Lookup(ep)
	if !ok {
		return fmt.Errorf("update %s: %w", ep, lwm2m.ErrNotRegistered)
	}
	j.back, j.regID = false, reg.ID // only a return during this download counts
	installed, err := d.readString(ctx, ep, model.ResourcePath(3, 0, 3))
	if err != nil {
		return err
	}
	u, _ := d.Status(ep)
	// Class was resolved at Start: a version may name images of several.
	target, err := d.cfg.Packages.Image(ctx, u.Image, u.Class)
	if err != nil {
		return err
	}
	class := d.class(ctx, target.Class)
	push, err := d.method(ctx, j, reg, class)
	if err != nil {
		return err
	}
	d.set(ctx, ep, func(u *Update) { u.Push, u.Class = push, target.Class })
	u, _ = d.Status(ep)
	if u.Retries > 0 && installed == target.Version && j.st.result == resultSuccess {
		// A retry found the earlier attempt done: the device runs the
		// target and reported success.
		d.finish(ctx, ep, Done, resultSuccess, "")
		return nil
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
	// A retry of the same package keeps its Package URI, so that a device
	// that kept what it had may resume.
	again := u.Path != "" && u.Package == offer.ID
	if !again {
		d.unpublish(ep)
	}
	block := 0
	if !push && d.cfg.BlockSize != nil {
		block = d.cfg.BlockSize(ctx, ep, target.Class)
	}
	if !push && u.MaxBlock > 0 && (block == 0 || u.MaxBlock < block) {
		block = u.MaxBlock
	}
	d.set(ctx, ep, func(u *Update) {
		u.Target, u.Version, u.Package, u.Format, u.Size = target.Digest, target.Version, offer.ID, offer.Manifest.Format, offer.Size
		u.Raw, u.FullSize = offer.Raw, offer.FullSize
		u.Phase, u.Result, u.BlockSize = Downloading, 0, block
		if !again {
			u.BytesServed = 0
		}
	})
	if push {
		err = d.pushFromIdle(ctx, j, data)
	} else {
		err = d.publish(ctx, ep, reg, class, offer.ID, data, true)
	}
	if err != nil {
		return err
	}
	j.wrote = true
	return d.resync(ctx, j)
}

// class returns the named class's profile; if it cannot be read, the
// default one, so that a store hiccup does not stop an update.
func (d *Driver) class(ctx context.Context, name string) firmware.Class {
	c, err := d.cfg.Packages.Class(ctx, name)
	if err != nil {
		d.log.Warn().Err(err).Str("class", name).Msg("class not readable: its default profile applies")
		return firmware.DefaultClass(name)
	}
	return c
}

// method decides push or pull from the class's method, /5/0/9 (0 pull,
// 1 push, 2 both) and, for pull, /5/0/8 (the protocol of the Package URI's
// scheme). A push asked for is kept when the device allows it. The state
// it reads becomes the job's.
func (d *Driver) method(ctx context.Context, j *job, reg lwm2m.Registration, class firmware.Class) (push bool, err error) {
	ep := j.ep
	res, err := d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpRead, Path: model.ObjectInstancePath(5, 0)})
	if err != nil {
		return false, err
	}
	j.st = fwState{}.with(res.Values)
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
	if d.scheme(reg, class) == firmware.SchemeCoAP {
		want = 0
	}
	canPull := class.Method != firmware.MethodPush && delivery != 1 && (len(protocols) == 0 || protocols[want])
	canPush := class.Method != firmware.MethodPull && delivery != 0
	u, _ := d.Status(ep)
	switch {
	case u.Push && canPush, !canPull && canPush:
		return true, nil
	case canPull:
		return false, nil
	}
	return false, fmt.Errorf("%w: class %q method %s, device delivery method %d, protocols %v (want %d for %s)",
		errMethod, class.Name, class.Method, delivery, slices.Sorted(maps.Keys(protocols)), want, d.scheme(reg, class))
}

// scheme is the Package URI scheme for the device: the class's, or coaps
// for a device with DTLS and coap for a NoSec one.
func (d *Driver) scheme(reg lwm2m.Registration, class firmware.Class) string {
	switch {
	case class.Scheme == firmware.SchemeCoAPS || class.Scheme == firmware.SchemeCoAP:
		return class.Scheme
	case reg.Identity.Kind == lwm2m.IdentityNone:
		return firmware.SchemeCoAP
	}
	return firmware.SchemeCoAPS
}

// publish serves the package to the device at the update's path (a new
// one when it has none) and, when write is set, writes its Package URI.
// A coaps path is the device's identity's alone; a coap one is any plain
// peer's, guarded by the path's 128 random bits.
func (d *Driver) publish(ctx context.Context, ep string, reg lwm2m.Registration, class firmware.Class, id manifest.Digest, data []byte, write bool) error {
	u, _ := d.Status(ep)
	base, owner := d.cfg.ServerURI, coap.Identity{Mode: coap.SecurityMode(reg.Identity.Kind), Name: reg.Identity.Name}
	if d.scheme(reg, class) == firmware.SchemeCoAP {
		base, owner = d.cfg.PlainURI, coap.Identity{Mode: coap.NoSec}
	}
	if base == "" {
		return fmt.Errorf("%w: the device needs a %s Package URI and fotad has no such listener",
			errMethod, d.scheme(reg, class))
	}
	p, err := d.cfg.Publisher.Publish(owner, coap.NewBlob(bytes.NewReader(data), int64(len(data)), id[:]),
		coap.PublishOptions{Path: u.Path, MaxBlock: u.BlockSize, OnBlock: func(b coap.BlockServed) {
			d.mu.Lock()
			u := d.updates[ep]
			u.BytesServed += int64(b.Len)
			u.BlockSize = b.Size // the device may ask for less than the cap
			d.mu.Unlock()
		}})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.live[p] = true
	d.mu.Unlock()
	d.set(ctx, ep, func(u *Update) { u.Path = p })
	if !write {
		return nil
	}
	uri := model.SingleResource(1, model.StringValue(strings.TrimSuffix(base, "/")+p))
	_, err = d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpWrite, Path: model.ResourcePath(5, 0, 1), Node: &uri})
	return err
}

// pushFromIdle writes the package, after resetting Object 5 when an
// earlier push was cut off and left the device Downloading: a device
// takes the first block of a Package only when idle, and cannot resume a
// push.
func (d *Driver) pushFromIdle(ctx context.Context, j *job, data []byte) error {
	if j.st.state != stateIdle {
		d.log.Info().Str("endpoint", j.ep).Int("state", j.st.state).Msg("resetting Object 5 before the push")
		reset := model.SingleResource(1, model.StringValue(""))
		if _, err := d.cfg.Devices.Do(ctx, j.ep, lwm2m.Op{Kind: lwm2m.OpWrite, Path: model.ResourcePath(5, 0, 1), Node: &reset}); err != nil {
			return err
		}
	}
	return d.push(ctx, j.ep, data)
}

func (d *Driver) push(ctx context.Context, ep string, data []byte) error {
	pkg := model.SingleResource(0, model.OpaqueValue(data))
	_, err := d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpWrite, Path: model.ResourcePath(5, 0, 0), Node: &pkg})
	if err == nil {
		d.set(ctx, ep, func(u *Update) { u.BytesServed = int64(len(data)) })
	}
	return err
}

// download waits for the device to have the package, then executes Update.
func (d *Driver) download(ctx context.Context, j *job) error {
	ep := j.ep
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
		if err := d.publish(ctx, ep, reg, d.class(ctx, u.Class), u.Package, data, false); err != nil {
			return err
		}
	}
	executed := false
	err := d.await(ctx, j, func(st fwState) (bool, error) {
		switch {
		case st.state == stateDownloaded:
			return true, nil
		case st.state == stateUpdating || (st.state == stateIdle && st.result == resultSuccess && u.Phase == Downloaded):
			// Executed before a restart, which came before it was noted.
			executed = true
			return true, nil
		case st.state == stateIdle && st.result > resultSuccess:
			return false, &deviceFailure{result: st.result}
		case st.state == stateIdle && st.result == 0 && (j.back || d.reregistered(j) || !j.wrote):
			// Back from a reboot with Object 5 reset: a client that keeps
			// it in RAM (Zephyr's) lost the download. Or fotad restarted
			// before the device took the Package URI.
			return false, errDownloadLost
		case u.Push && !j.wrote:
			// A push this run did not make (fotad restarted during it)
			// is not going on: a device cannot resume it.
			return false, errDownloadLost
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	if !executed {
		d.set(ctx, ep, func(u *Update) { u.Phase = Downloaded })
		j.back, j.executed = false, true // only a return after this Execute counts
		if err := d.execute(ctx, ep); err != nil && !transient(err) {
			return err
		}
		// An Execute without an answer may have been taken: the device
		// reboots at once and its answer is lost with its session. verify
		// executes again if the device comes back still Downloaded.
	}
	d.set(ctx, ep, func(u *Update) { u.Phase, u.Executed = Updating, time.Now() })
	return nil
}

func (d *Driver) execute(ctx context.Context, ep string) error {
	_, err := d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpExecute, Path: model.ResourcePath(5, 0, 2)})
	return err
}

// verify waits for Update Result 1 and the target version in /3/0/3,
// for at most RebootTimeout after the Execute. A deferred update (result
// 11) is executed again after RetryBackoff.
func (d *Driver) verify(ctx context.Context, j *job) error {
	for {
		err := d.verifyOnce(ctx, j)
		switch {
		case errors.Is(err, errNotExecuted):
			d.log.Info().Str("endpoint", j.ep).Msg("device came back without executing Update: executing it again")
		case !errors.Is(err, errDeferred):
			return err
		case !sleep(ctx, d.cfg.RetryBackoff):
			return ctx.Err()
		default:
			d.log.Info().Str("endpoint", j.ep).Msg("update deferred by the device: executing it again")
		}
		j.back, j.executed = false, true
		if err := d.execute(ctx, j.ep); err != nil && !transient(err) {
			return err
		}
		d.set(ctx, j.ep, func(u *Update) { u.Executed = time.Now() })
		// What the observation queued before this Execute is stale (the
		// deferral itself, notified once per resource it changed).
		if err := d.resync(ctx, j); err != nil {
			j.st = fwState{state: stateUpdating} // rebooting already
		}
	}
}

// errDeferred: the device deferred the update (result 11);
// errNotExecuted: it came back still Downloaded, the Execute lost.
var (
	errDeferred    = errors.New("update deferred")
	errNotExecuted = errors.New("update not executed")
)

func (d *Driver) verifyOnce(ctx context.Context, j *job) error {
	u, _ := d.Status(j.ep)
	class := d.class(ctx, u.Class)
	vctx, cancel := context.WithDeadline(ctx, u.Executed.Add(d.cfg.RebootTimeout))
	defer cancel()
	var reported string // what the device runs, once it looked done
	err := d.await(vctx, j, func(st fwState) (bool, error) {
		switch {
		case st.result == resultDeferred && st.state == stateDownloaded:
			return false, errDeferred
		case st.result == 0 && st.state == stateDownloaded && (j.back || !j.executed):
			// Back still Downloaded: the Execute was lost with the
			// device's session, or with fotad's (a restart before the
			// device took it).
			return false, errNotExecuted
		case st.result > resultSuccess && st.result != resultDeferred:
			return false, &deviceFailure{result: st.result}
		case st.result != resultSuccess && (class.Has(firmware.SuccessResult) || (st.state != stateIdle && !j.back)):
			// Not done yet: no result 1, or, for a class that does not
			// count on it, the device is not back from its reboot.
			return false, nil
		}
		ok, seen, err := d.succeeded(vctx, j.ep, class, u.Version)
		if err != nil {
			return false, nil // away again, or still rebooting: wait on
		}
		reported = seen
		return ok, nil
	})
	switch {
	case err == nil:
		d.finish(ctx, j.ep, Done, resultSuccess, "")
		return nil
	case vctx.Err() != nil && ctx.Err() == nil:
		if reported != "" {
			return fmt.Errorf("%w: it looks done but reports %s, not %q", errNeverBack, reported, u.Version)
		}
		return fmt.Errorf("%w within %s", errNeverBack, d.cfg.RebootTimeout)
	}
	return err
}

// succeeded reads what the class's success checks compare with the target
// version: /3/0/3 (version) and /5/0/7 (package). It reports whether all
// match and, when one does not, what the device reported.
func (d *Driver) succeeded(ctx context.Context, ep string, class firmware.Class, version string) (bool, string, error) {
	for _, c := range []struct {
		check string
		path  model.Path
		name  string
	}{
		{firmware.SuccessVersion, model.ResourcePath(3, 0, 3), "firmware version"},
		{firmware.SuccessPackage, model.ResourcePath(5, 0, 7), "package version"},
	} {
		if !class.Has(c.check) {
			continue
		}
		got, err := d.readString(ctx, ep, c.path)
		if err != nil {
			return false, "", err
		}
		if got != version {
			return false, fmt.Sprintf("%s %q", c.name, got), nil
		}
	}
	return true, "", nil
}

// reregistered reports whether the device registered anew since the
// job's download started.
func (d *Driver) reregistered(j *job) bool {
	reg, ok := d.cfg.Registrations.Lookup(j.ep)
	return ok && j.regID != "" && reg.ID != j.regID
}

// observe makes the job follow /5/0: it observes it, and the answer is
// the state now. A device that refuses the observation is read instead.
func (d *Driver) observe(ctx context.Context, j *job) error {
	w, res, err := d.cfg.Devices.Observe(ctx, j.ep, lwm2m.Op{Kind: lwm2m.OpObserve, Path: model.ObjectInstancePath(5, 0)})
	var code lwm2m.CodeError
	switch {
	case errors.As(err, &code):
		d.log.Info().Str("endpoint", j.ep).Err(err).Msg("device cannot observe /5/0: reading it instead")
		j.polling = true
		return d.resync(ctx, j)
	case err != nil:
		return err
	}
	j.watch, j.st = w, fwState{}.with(res.Values)
	return nil
}

// resync is called after every write that starts a download and every
// Execute that repeats a deferred one, so that no state from before is
// taken for what follows: it observes /5/0 the first time, later it drops
// what the observation queued and reads /5/0 again.
func (d *Driver) resync(ctx context.Context, j *job) error {
	if j.watch == nil && !j.polling {
		return d.observe(ctx, j)
	}
	for drained := false; !drained && j.watch != nil; {
		select {
		case <-j.watch.C:
		default:
			drained = true
		}
	}
	st, err := d.readFirmwareState(ctx, j.ep)
	if err == nil {
		j.st = st
	}
	return err
}

// stopWatch cancels the job's observation, unless fotad is stopping (the
// observation ends with the process; a device's next notification gets a
// reset).
func (d *Driver) stopWatch(j *job) {
	if j.watch == nil || d.isClosing() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := j.watch.Cancel(ctx); err != nil {
		d.log.Debug().Str("endpoint", j.ep).Err(err).Msg("cancel /5/0 observation")
	}
}

// pollFallback is how often Object 5 is read when the device cannot
// observe it.
const pollFallback = 5 * time.Second

// await feeds the device's Object 5 state to check until check reports
// done or an error. States come from the observation of /5/0; a read
// every PollInterval covers a lost notification. A device away (rebooting,
// asleep past its queue, not answering) is not an error: await observes or
// reads again until ctx ends.
func (d *Driver) await(ctx context.Context, j *job, check func(fwState) (bool, error)) error {
	poll := time.NewTicker(d.pollEvery(j))
	defer poll.Stop()
	for {
		var retry <-chan time.Time // observe again
		if j.watch == nil && !j.polling {
			// After a restart the job has no observation yet.
			if err := d.observe(ctx, j); err != nil {
				if !transient(err) || ctx.Err() != nil {
					return err
				}
				retry = time.After(pollFallback)
			}
			poll.Reset(d.pollEvery(j))
		}
		if j.watch != nil || j.polling {
			d.noteResult(ctx, j.ep, j.st.result)
			if done, err := check(j.st); done || err != nil {
				return err
			}
		}
		var notes <-chan lwm2m.Notification
		if j.watch != nil {
			notes = j.watch.C
		}
		select {
		case n := <-notes:
			j.st = j.st.with(n.Values)
			j.back = j.back || n.Reestablished
		case <-poll.C:
			d.refresh(ctx, j)
		case <-retry:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pollEvery is how often await reads /5/0: rarely beside an
// observation, often for a device that refused it.
func (d *Driver) pollEvery(j *job) time.Duration {
	if j.polling {
		return min(d.cfg.PollInterval, pollFallback)
	}
	return d.cfg.PollInterval
}

// refresh reads /5/0 into the job; a device that does not answer keeps
// its last known state.
func (d *Driver) refresh(ctx context.Context, j *job) {
	if st, err := d.readFirmwareState(ctx, j.ep); err == nil {
		j.st = st
	} else {
		d.log.Debug().Str("endpoint", j.ep).Err(err).Msg("read /5/0")
	}
}

// noteResult records the device's latest Update Result, writing only
// when it changed.
func (d *Driver) noteResult(ctx context.Context, ep string, result int) {
	if u, _ := d.Status(ep); u.Result != result {
		d.set(ctx, ep, func(u *Update) { u.Result = result })
	}
}

// readFirmwareState reads /5/0/3 and /5/0/5.
func (d *Driver) readFirmwareState(ctx context.Context, ep string) (fwState, error) {
	res, err := d.cfg.Devices.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpRead, Path: model.ObjectInstancePath(5, 0)})
	if err != nil {
		return fwState{}, err
	}
	return fwState{}.with(res.Values), nil
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

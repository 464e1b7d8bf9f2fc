package api

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/campaign"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/delivery/update"
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

// fakeOps is an Operations whose devices answer what outcome says.
type fakeOps struct {
	mu      sync.Mutex
	seq     int
	tickets map[string]*fakeTicket
	order   []string // ticket ids by submission
	// submitErr, when set, is Submit's error.
	submitErr error
	// outcome, when set, finishes a submitted operation at once with its
	// result or error; done false leaves it queued, as for a sleeping
	// device, until finish is called.
	outcome func(ep string, op lwm2m.Op) (res lwm2m.Result, err error, done bool)

	// Observe answers with observeErr, or with the next watch and
	// observeRes; observed records the operations.
	observeErr error
	observeRes lwm2m.Result
	watches    chan *fakeWatch
	observed   []lwm2m.Op

	// Sends subscriptions.
	sends   chan lwm2m.Notification
	stopped chan string // receives the endpoint when a subscription stops
}

type fakeTicket struct {
	st   lwm2m.TicketStatus
	done chan struct{}
}

func newFakeOps() *fakeOps {
	return &fakeOps{
		tickets: map[string]*fakeTicket{},
		watches: make(chan *fakeWatch, 4),
		sends:   make(chan lwm2m.Notification, 4),
		stopped: make(chan string, 4),
	}
}

var _ Operations = (*fakeOps)(nil)

func (f *fakeOps) Do(ctx context.Context, ep string, op lwm2m.Op) (lwm2m.Result, error) {
	st, err := f.Submit(ep, op, time.Time{})
	if err != nil {
		return lwm2m.Result{}, err
	}
	st, _ = f.Wait(ctx, st.ID)
	return st.Result, st.Err
}

func (f *fakeOps) Submit(ep string, op lwm2m.Op, expires time.Time) (lwm2m.TicketStatus, error) {
	f.mu.Lock()
	if f.submitErr != nil {
		err := f.submitErr
		f.mu.Unlock()
		return lwm2m.TicketStatus{}, err
	}
	f.seq++
	if expires.IsZero() {
		expires = testNow.Add(24 * time.Hour)
	}
	t := &fakeTicket{done: make(chan struct{}), st: lwm2m.TicketStatus{
		ID: fmt.Sprintf("t%d", f.seq), Endpoint: ep, Op: op, State: lwm2m.TicketQueued,
		Created: testNow, Expires: expires,
	}}
	f.tickets[t.st.ID] = t
	f.order = append(f.order, t.st.ID)
	outcome := f.outcome
	f.mu.Unlock()
	if outcome != nil {
		if res, err, done := outcome(ep, op); done {
			f.finish(t.st.ID, res, err)
		}
	}
	return f.Ticket(t.st.ID)
}

// finish ends a ticket as the device's answer would.
func (f *fakeOps) finish(id string, res lwm2m.Result, err error) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tickets[id]
	if !ok || t.st.State == lwm2m.TicketDone || t.st.State == lwm2m.TicketFailed {
		return false
	}
	t.st.State, t.st.Result, t.st.Err, t.st.Finished = lwm2m.TicketDone, res, err, testNow.Add(time.Second)
	if err != nil {
		t.st.State = lwm2m.TicketFailed
	}
	close(t.done)
	return true
}

// last is the most recently submitted ticket.
func (f *fakeOps) last() lwm2m.TicketStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.order) == 0 {
		return lwm2m.TicketStatus{}
	}
	return f.tickets[f.order[len(f.order)-1]].st
}

func (f *fakeOps) Ticket(id string) (lwm2m.TicketStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tickets[id]
	if !ok {
		return lwm2m.TicketStatus{}, fmt.Errorf("ticket %s: %w", id, lwm2m.ErrNotFound)
	}
	return t.st, nil
}

func (f *fakeOps) Wait(ctx context.Context, id string) (lwm2m.TicketStatus, error) {
	f.mu.Lock()
	t, ok := f.tickets[id]
	f.mu.Unlock()
	if !ok {
		return lwm2m.TicketStatus{}, fmt.Errorf("ticket %s: %w", id, lwm2m.ErrNotFound)
	}
	select {
	case <-t.done:
	case <-ctx.Done():
	}
	return f.Ticket(id)
}

func (f *fakeOps) Cancel(id string) bool {
	f.mu.Lock()
	t, ok := f.tickets[id]
	queued := ok && t.st.State == lwm2m.TicketQueued
	f.mu.Unlock()
	if !queued {
		return false
	}
	return f.finish(id, lwm2m.Result{}, &lwm2m.OpError{Op: t.st.Op.Kind.String(), Endpoint: t.st.Endpoint,
		Path: t.st.Op.Path.String(), Err: lwm2m.ErrCancelled})
}

func (f *fakeOps) Queue(ep string) []lwm2m.TicketStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []lwm2m.TicketStatus
	for _, id := range f.order {
		if t := f.tickets[id]; t.st.Endpoint == ep && t.st.State == lwm2m.TicketQueued {
			out = append(out, t.st)
		}
	}
	return out
}

func (f *fakeOps) Observe(ctx context.Context, ep string, op lwm2m.Op) (Watch, lwm2m.Result, error) {
	f.mu.Lock()
	f.observed = append(f.observed, op)
	err, res := f.observeErr, f.observeRes
	f.mu.Unlock()
	if err != nil {
		return nil, lwm2m.Result{}, err
	}
	select {
	case w := <-f.watches:
		return w, res, nil
	case <-ctx.Done():
		return nil, lwm2m.Result{}, &lwm2m.OpError{Op: op.Kind.String(), Endpoint: ep, Path: op.Path.String(), Err: ctx.Err()}
	}
}

func (f *fakeOps) Sends(ep string) (<-chan lwm2m.Notification, func()) {
	var once sync.Once
	return f.sends, func() { once.Do(func() { f.stopped <- ep }) }
}

// fakeWatch is a Watch fed by the test.
type fakeWatch struct {
	c         chan lwm2m.Notification
	once      sync.Once
	cancelled chan struct{}
}

func newFakeWatch() *fakeWatch {
	return &fakeWatch{c: make(chan lwm2m.Notification, 8), cancelled: make(chan struct{})}
}

func (w *fakeWatch) Notifications() <-chan lwm2m.Notification { return w.c }

func (w *fakeWatch) Cancel(context.Context) error {
	w.once.Do(func() { close(w.cancelled) })
	return nil
}

// observedOps returns the operations Observe was called with.
func (f *fakeOps) observedOps() []lwm2m.Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]lwm2m.Op(nil), f.observed...)
}

// fakeUpdates is an Updates whose updates the test moves along with set.
type fakeUpdates struct {
	mu      sync.Mutex
	updates map[string]update.Update
	// startErr and cancelErr, when set, are Start's and Cancel's errors;
	// Cancel still cancels (as the driver does when the device cannot be
	// told).
	startErr  error
	cancelErr error
	requests  []update.Request // Start's, in order
	now       func() time.Time
}

func newFakeUpdates(now func() time.Time) *fakeUpdates {
	return &fakeUpdates{updates: map[string]update.Update{}, now: now}
}

var _ Updates = (*fakeUpdates)(nil)

func (f *fakeUpdates) Start(_ context.Context, ep string, req update.Request) (update.Update, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if f.startErr != nil {
		return update.Update{}, f.startErr
	}
	if u, ok := f.updates[ep]; ok && !u.Phase.Finished() {
		return update.Update{}, update.ErrBusy
	}
	now := f.now()
	u := update.Update{Endpoint: ep, Image: req.Image, Full: req.Full, Push: req.Push, Phase: update.Preparing,
		Started: now, Changed: now, Deadline: now.Add(24 * time.Hour)}
	f.updates[ep] = u
	return u, nil
}

func (f *fakeUpdates) Status(ep string) (update.Update, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.updates[ep]
	return u, ok
}

func (f *fakeUpdates) Cancel(_ context.Context, ep string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.updates[ep]
	switch {
	case !ok:
		return update.ErrNoUpdate
	case u.Phase.Finished():
		return update.ErrNotRunning
	}
	u.Phase, u.Error, u.Changed = update.Cancelled, "cancelled", f.now()
	f.updates[ep] = u
	return f.cancelErr
}

// set changes the endpoint's update (creating it when missing).
func (f *fakeUpdates) set(ep string, change func(*update.Update)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.updates[ep]
	u.Endpoint = ep
	change(&u)
	f.updates[ep] = u
}

func (f *fakeUpdates) lastRequest() update.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return update.Request{}
	}
	return f.requests[len(f.requests)-1]
}

// fakeCampaigns is a Campaigns that keeps campaigns in memory; the test
// moves their progress along with setProgress.
type fakeCampaigns struct {
	mu        sync.Mutex
	seq       int
	campaigns map[string]campaign.Campaign
	progress  map[string]campaign.Progress
	order     []string
	// planErr and createErr, when set, are Plan's and Create's errors.
	planErr   error
	createErr error
	specs     []campaign.Spec // Plan's and Create's, in order
	now       func() time.Time
}

func newFakeCampaigns(now func() time.Time) *fakeCampaigns {
	return &fakeCampaigns{campaigns: map[string]campaign.Campaign{}, progress: map[string]campaign.Progress{}, now: now}
}

var _ Campaigns = (*fakeCampaigns)(nil)

// fakePlan is what the fake plans: dev-1 a delta, dev-2 the full image,
// dev-3 nothing, in two waves.
func fakePlan(spec campaign.Spec) campaign.Plan {
	return campaign.Plan{Image: strings.Repeat("ab", 32), Version: spec.Image, Class: "sensor-a",
		Devices: []campaign.PlanDevice{
			{Endpoint: "dev-1", Wave: 0, Installed: "1.0.0", Format: manifest.FormatDelta, Size: 1000, FullSize: 10000},
			{Endpoint: "dev-2", Wave: 0, Format: manifest.FormatFull, Size: 10000, FullSize: 10000, Reason: "installed version unknown"},
			{Endpoint: "dev-3", Wave: 1, Installed: spec.Image, Skip: true, Reason: "runs " + spec.Image + " already"},
		},
		Waves: []int{2, 1}, Delta: 1, Full: 1, Skip: 1, Bytes: 11000, FullBytes: 20000,
		Airtime: []campaign.Airtime{{Link: "nb-iot", BlockSize: 512, PerDevice: 30 * time.Second, Total: time.Minute, FullOnly: 2 * time.Minute}},
	}
}

func (f *fakeCampaigns) Plan(_ context.Context, spec campaign.Spec) (campaign.Plan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, spec)
	if f.planErr != nil {
		return campaign.Plan{}, f.planErr
	}
	return fakePlan(spec), nil
}

func (f *fakeCampaigns) Create(_ context.Context, spec campaign.Spec) (campaign.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, spec)
	if f.createErr != nil {
		return campaign.Campaign{}, f.createErr
	}
	f.seq++
	p := fakePlan(spec)
	now := f.now()
	c := campaign.Campaign{ID: fmt.Sprintf("c%d", f.seq), Spec: spec, Version: spec.Image, State: campaign.Created,
		Created: now, Waves: []campaign.WaveState{{Size: 2}, {Size: 1}}}
	for _, d := range p.Devices {
		t := campaign.Target{Endpoint: d.Endpoint, Wave: d.Wave, State: campaign.TargetPending, Installed: d.Installed,
			Format: d.Format, Size: d.Size, FullSize: d.FullSize}
		if d.Skip {
			t.State, t.Reason, t.Ended = campaign.TargetSkipped, d.Reason, now
		}
		c.Targets = append(c.Targets, t)
	}
	f.campaigns[c.ID] = c
	f.order = append(f.order, c.ID)
	f.progress[c.ID] = campaign.Progress{ID: c.ID, Name: spec.Name, Image: spec.Image, State: campaign.Created,
		Created: now, Total: 3, Counts: map[campaign.TargetState]int{campaign.TargetPending: 2, campaign.TargetSkipped: 1},
		Waves: []campaign.WaveProgress{
			{Index: 1, Size: 2, Counts: map[campaign.TargetState]int{campaign.TargetPending: 2}},
			{Index: 2, Size: 1, Counts: map[campaign.TargetState]int{campaign.TargetSkipped: 1}},
		}}
	return c, nil
}

func (f *fakeCampaigns) Get(id string) (campaign.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.campaigns[id]
	if !ok {
		return campaign.Campaign{}, fmt.Errorf("campaign %s: %w", id, campaign.ErrNotFound)
	}
	c.Targets = append([]campaign.Target(nil), c.Targets...)
	return c, nil
}

func (f *fakeCampaigns) Progress(id string) (campaign.Progress, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.progress[id]
	if !ok {
		return campaign.Progress{}, fmt.Errorf("campaign %s: %w", id, campaign.ErrNotFound)
	}
	return p, nil
}

func (f *fakeCampaigns) Progresses() []campaign.Progress {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []campaign.Progress
	for _, id := range f.order {
		out = append(out, f.progress[id])
	}
	return out
}

// change moves the campaign from one of the states in from to state.
func (f *fakeCampaigns) change(id string, state campaign.State, from ...campaign.State) (campaign.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.campaigns[id]
	if !ok {
		return campaign.Campaign{}, fmt.Errorf("campaign %s: %w", id, campaign.ErrNotFound)
	}
	if !slices.Contains(from, c.State) {
		return campaign.Campaign{}, fmt.Errorf("campaign %s is %s: %w", id, c.State, campaign.ErrState)
	}
	c.State = state
	f.campaigns[id] = c
	p := f.progress[id]
	p.State = state
	f.progress[id] = p
	return c, nil
}

func (f *fakeCampaigns) Start(_ context.Context, id string) (campaign.Campaign, error) {
	return f.change(id, campaign.Running, campaign.Created)
}

func (f *fakeCampaigns) Pause(_ context.Context, id string) (campaign.Campaign, error) {
	return f.change(id, campaign.Paused, campaign.Running)
}

func (f *fakeCampaigns) Resume(_ context.Context, id string) (campaign.Campaign, error) {
	return f.change(id, campaign.Running, campaign.Paused)
}

func (f *fakeCampaigns) Cancel(_ context.Context, id string) (campaign.Campaign, error) {
	return f.change(id, campaign.Cancelled, campaign.Created, campaign.Running, campaign.Paused)
}

// setProgress changes the campaign's progress (creating it when missing).
func (f *fakeCampaigns) setProgress(id string, change func(*campaign.Progress)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.progress[id]
	if !ok {
		f.order = append(f.order, id)
		f.campaigns[id] = campaign.Campaign{ID: id}
	}
	p.ID = id
	change(&p)
	f.progress[id] = p
	c := f.campaigns[id]
	c.State = p.State
	f.campaigns[id] = c
}

func (f *fakeCampaigns) lastSpec() campaign.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.specs) == 0 {
		return campaign.Spec{}
	}
	return f.specs[len(f.specs)-1]
}

// inventoryMap is an Inventory.
type inventoryMap map[string]string

func (m inventoryMap) Installed(ep string) (string, bool) { v, ok := m[ep]; return v, ok }

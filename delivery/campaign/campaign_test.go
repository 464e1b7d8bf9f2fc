package campaign

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/lwm2m"
)

// The fakes below stand in for the store, the driver, the inventory and
// the firmware service; the clock is the test's.

type memStore struct {
	mu        sync.Mutex
	campaigns map[string]Campaign
	targets   map[string]map[string]Target
}

func newMemStore() *memStore {
	return &memStore{campaigns: map[string]Campaign{}, targets: map[string]map[string]Target{}}
}

func (s *memStore) PutCampaign(_ context.Context, c Campaign) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Targets = nil
	c.Waves = slices.Clone(c.Waves)
	s.campaigns[c.ID] = c
	return nil
}

func (s *memStore) PutTargets(_ context.Context, id string, ts []Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.campaigns[id]; !ok {
		return fmt.Errorf("no campaign %s", id)
	}
	if s.targets[id] == nil {
		s.targets[id] = map[string]Target{}
	}
	for _, t := range ts {
		s.targets[id][t.Endpoint] = t
	}
	return nil
}

func (s *memStore) Campaigns(context.Context) ([]Campaign, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Campaign
	for _, id := range slices.Sorted(maps.Keys(s.campaigns)) {
		c := s.campaigns[id]
		for _, ep := range slices.Sorted(maps.Keys(s.targets[id])) {
			c.Targets = append(c.Targets, s.targets[id][ep])
		}
		out = append(out, c)
	}
	return out, nil
}

// fakeDriver runs no update: the test ends them with finish.
type fakeDriver struct {
	mu      sync.Mutex
	updates map[string]update.Update
	starts  []string
	refuse  map[string]error
	// peak is the most updates that ran at once.
	peak int
}

func newFakeDriver() *fakeDriver {
	return &fakeDriver{updates: map[string]update.Update{}, refuse: map[string]error{}}
}

func (d *fakeDriver) Start(_ context.Context, ep string, req update.Request) (update.Update, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.refuse[ep]; err != nil {
		return update.Update{}, err
	}
	if u, ok := d.updates[ep]; ok && !u.Phase.Finished() {
		return update.Update{}, update.ErrBusy
	}
	u := update.Update{Endpoint: ep, Image: req.Image, Campaign: req.Campaign, Full: req.Full, Push: req.Push,
		MaxBlock: req.BlockSize, RetryLimit: req.Retries, Phase: update.Downloading, Started: time.Now()}
	d.updates[ep] = u
	d.starts = append(d.starts, ep)
	n := 0
	for _, u := range d.updates {
		if !u.Phase.Finished() {
			n++
		}
	}
	d.peak = max(d.peak, n)
	return u, nil
}

func (d *fakeDriver) Status(ep string) (update.Update, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.updates[ep]
	return u, ok
}

func (d *fakeDriver) Cancel(_ context.Context, ep string) error {
	d.finish(ep, update.Cancelled, 0, "cancelled")
	return nil
}

func (d *fakeDriver) finish(ep string, phase update.Phase, result int, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.updates[ep]
	u.Phase, u.Result, u.Error = phase, result, msg
	if phase == update.Done {
		u.Format, u.Size, u.FullSize, u.BytesServed = manifest.FormatDelta, 100, 1000, 100
	}
	d.updates[ep] = u
}

// running returns the endpoints with an update running, sorted.
func (d *fakeDriver) running() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var eps []string
	for ep, u := range d.updates {
		if !u.Phase.Finished() {
			eps = append(eps, ep)
		}
	}
	slices.Sort(eps)
	return eps
}

type fakeFleet struct {
	mu        sync.Mutex
	installed map[string]string
	asleep    map[string]bool
}

func (f *fakeFleet) Installed(ep string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.installed[ep]
	return v, ok
}

func (f *fakeFleet) Reachable(ep string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.asleep[ep]
}

func (f *fakeFleet) sleep(ep string, asleep bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asleep[ep] = asleep
}

type fakeDevices []lwm2m.Device

// fakePackages knows images 1.0.0 and 2.0.0 of class "m4" and 1.0.0 of
// class "other"; a delta is 100 bytes, the full image 1000.
type fakePackages struct {
	classBlock int // the block size of every class (0: the link's)
}

func (f fakePackages) Class(_ context.Context, name string) (firmware.Class, error) {
	c := firmware.DefaultClass(name)
	c.BlockSize = f.classBlock
	return c, nil
}

var (
	imgV1    = firmware.Image{Digest: manifest.Digest{1}, Version: "1.0.0", Class: "m4", Sequence: 1}
	imgV2    = firmware.Image{Digest: manifest.Digest{2}, Version: "2.0.0", Class: "m4", Sequence: 2}
	imgOther = firmware.Image{Digest: manifest.Digest{3}, Version: "1.0.0", Class: "other", Sequence: 1}
)

func (fakePackages) Image(_ context.Context, ref, class string) (firmware.Image, error) {
	for _, img := range []firmware.Image{imgV1, imgV2, imgOther} {
		if (ref == img.Version || ref == img.Digest.String()) && (class == "" || class == img.Class) {
			return img, nil
		}
	}
	return firmware.Image{}, firmware.ErrNotFound
}

func (fakePackages) MakePackage(_ context.Context, req firmware.Request) (firmware.Offer, error) {
	full := firmware.Offer{Package: firmware.Package{Size: 1000, Manifest: manifest.Manifest{Format: manifest.FormatFull}},
		FullSize: 1000, Reason: firmware.ReasonNoInstalled}
	switch {
	case req.Installed == imgV2.Digest:
		return firmware.Offer{}, firmware.ErrNotNewer
	case req.Installed == imgV1.Digest && !req.Full:
		return firmware.Offer{Package: firmware.Package{Size: 100, Manifest: manifest.Manifest{Format: manifest.FormatDelta}},
			FullSize: 1000, DeltaSize: 100}, nil
	}
	return full, nil
}

type rig struct {
	t      *testing.T
	store  *memStore
	driver *fakeDriver
	fleet  *fakeFleet
	devs   fakeDevices
	now    time.Time
	m      *Manager
}

// newRig makes n devices dev000..., running 1.0.0, tagged by cell (5 cells).
func newRig(t *testing.T, n int) *rig {
	r := &rig{t: t, store: newMemStore(), driver: newFakeDriver(),
		fleet: &fakeFleet{installed: map[string]string{}, asleep: map[string]bool{}},
		now:   time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	for i := range n {
		ep := fmt.Sprintf("dev%03d", i)
		r.devs = append(r.devs, lwm2m.Device{Endpoint: ep, Tags: map[string]string{"cell": fmt.Sprint(i % 5)}})
		r.fleet.installed[ep] = "1.0.0"
	}
	r.m = r.manager()
	return r
}

// manager makes a Manager on the rig's store, as a restart would.
func (r *rig) manager() *Manager {
	m := New(Config{Store: r.store, Updates: r.driver, Devices: &r.devs, Fleet: r.fleet, Packages: fakePackages{},
		Links: []Link{{Name: "catm1", RateDown: 300_000, RateUp: 300_000, RTT: 150 * time.Millisecond, MTU: 1358}},
		Now:   func() time.Time { return r.now }, Logger: zerolog.Nop()})
	if err := m.Load(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (d *fakeDevices) Devices(context.Context) ([]lwm2m.Device, error) { return *d, nil }

func (r *rig) create(spec Spec) Campaign {
	r.t.Helper()
	if spec.Image == "" {
		spec.Image = "2.0.0"
	}
	c, err := r.m.Create(context.Background(), spec)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.m.Start(context.Background(), c.ID); err != nil {
		r.t.Fatal(err)
	}
	return c
}

// step advances the clock and runs the scheduler once.
func (r *rig) step(d time.Duration) {
	r.now = r.now.Add(d)
	r.m.stepAll(context.Background())
}

// finishAll ends every running update, failing those in fail.
func (r *rig) finishAll(fail map[string]bool) {
	for _, ep := range r.driver.running() {
		if fail[ep] {
			r.driver.finish(ep, update.Failed, 5, "device reported update result 5 (integrity check failure)")
		} else {
			r.driver.finish(ep, update.Done, 1, "")
		}
	}
}

func (r *rig) progress(id string) Progress {
	r.t.Helper()
	p, err := r.m.Progress(id)
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

func TestWavesSoakAndConcurrency(t *testing.T) {
	r := newRig(t, 40)
	c := r.create(Spec{Select: Selection{All: true},
		Waves:  []Wave{{Count: 4, Soak: Duration(10 * time.Minute)}, {Percent: 25}},
		Limits: Limits{MaxConcurrent: 3}})
	if got := len(r.progress(c.ID).Waves); got != 3 {
		t.Fatalf("waves = %d, want 3 (4, 10, rest 26)", got)
	}
	wave := map[string]int{}
	for _, tg := range mustGet(t, r.m, c.ID).Targets {
		wave[tg.Endpoint] = tg.Wave
	}
	r.step(0)
	if n := len(r.driver.running()); n != 3 {
		t.Fatalf("running after the first step = %d, want 3 (the limit)", n)
	}
	// Until wave 1 has settled and soaked, nobody of wave 2 starts.
	for range 3 {
		r.finishAll(nil)
		r.step(time.Second)
	}
	for _, ep := range r.driver.starts {
		if wave[ep] != 0 {
			t.Fatalf("%s of wave %d started before wave 1 soaked", ep, wave[ep]+1)
		}
	}
	p := r.progress(c.ID)
	if p.Waves[0].Counts[TargetDone] != 4 || p.Waves[0].Settled.IsZero() {
		t.Fatalf("wave 1 = %+v, want 4 done and settled", p.Waves[0])
	}
	r.step(9 * time.Minute)
	if len(r.driver.running()) != 0 {
		t.Fatal("wave 2 opened during the soak")
	}
	r.step(time.Minute)
	if len(r.driver.running()) != 3 {
		t.Fatalf("wave 2 after the soak: running %d, want 3", len(r.driver.running()))
	}
	for i := 0; r.progress(c.ID).State == Running; i++ {
		if i > 100 {
			t.Fatal("campaign did not end")
		}
		r.finishAll(nil)
		r.step(time.Second)
	}
	p = r.progress(c.ID)
	if p.State != Done || p.Counts[TargetDone] != 40 || r.driver.peak != 3 || p.PeakRunning != 3 {
		t.Fatalf("end: state %s, done %d, driver peak %d, recorded peak %d; want done, 40, 3, 3",
			p.State, p.Counts[TargetDone], r.driver.peak, p.PeakRunning)
	}
	if p.BytesServed != 4000 || p.BytesBaseline != 40000 || p.BytesSaved != 36000 {
		t.Fatalf("bytes served %d, baseline %d, saved %d; want 4000, 40000, 36000", p.BytesServed, p.BytesBaseline, p.BytesSaved)
	}
}

func mustGet(t *testing.T, m *Manager, id string) Campaign {
	t.Helper()
	c, err := m.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFailurePolicyPausesAndResumeCompletes(t *testing.T) {
	r := newRig(t, 30)
	c := r.create(Spec{Select: Selection{All: true}, Waves: []Wave{{Count: 10}},
		Failure: FailurePolicy{MaxFailures: 2}})
	r.step(0)
	first := r.driver.running()
	fail := map[string]bool{first[0]: true, first[1]: true, first[2]: true}
	r.finishAll(fail)
	r.step(time.Second)
	p := r.progress(c.ID)
	if p.State != Paused || p.Reason == "" {
		t.Fatalf("after 3 failures of 10 with max 2: state %s (%q), want paused with a reason", p.State, p.Reason)
	}
	if len(p.Failures) != 1 || p.Failures[0].Count != 3 || p.Failures[0].Result != 5 || p.Failures[0].ResultText != "integrity check failure" {
		t.Fatalf("failures = %+v, want one group of 3 with result 5", p.Failures)
	}
	starts := len(r.driver.starts)
	r.step(time.Minute)
	if len(r.driver.starts) != starts {
		t.Fatal("a paused campaign started an update")
	}
	if _, err := r.m.Resume(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	for i := 0; r.progress(c.ID).State == Running; i++ {
		if i > 100 {
			t.Fatal("campaign did not end after resume")
		}
		r.step(time.Second)
		r.finishAll(nil)
	}
	p = r.progress(c.ID)
	if p.State != Done || p.Counts[TargetDone] != 27 || p.Counts[TargetFailed] != 3 {
		t.Fatalf("end: %s, counts %v; want done, 27 done, 3 failed", p.State, p.Counts)
	}
	if _, err := r.m.Resume(context.Background(), c.ID); !errors.Is(err, ErrState) {
		t.Fatalf("resume of a done campaign: %v, want ErrState", err)
	}
}

func TestFailurePercent(t *testing.T) {
	r := newRig(t, 20)
	c := r.create(Spec{Select: Selection{All: true}, Failure: FailurePolicy{MaxFailurePercent: 10}})
	r.step(0)
	run := r.driver.running()
	r.finishAll(map[string]bool{run[0]: true, run[1]: true}) // 10 %: allowed
	r.step(time.Second)
	if st := r.progress(c.ID).State; st != Done {
		t.Fatalf("2 of 20 failed with max 10 %%: state %s, want done", st)
	}

	r = newRig(t, 20)
	c = r.create(Spec{Select: Selection{All: true}, Waves: []Wave{{Count: 10}}, Failure: FailurePolicy{MaxFailurePercent: 10}})
	r.step(0)
	run = r.driver.running()
	r.finishAll(map[string]bool{run[0]: true, run[1]: true, run[2]: true})
	r.step(time.Second)
	if st := r.progress(c.ID).State; st != Paused {
		t.Fatalf("3 of a wave of 10 failed with max 10 %%: state %s, want paused", st)
	}
}

func TestRestartContinues(t *testing.T) {
	r := newRig(t, 12)
	c := r.create(Spec{Select: Selection{All: true}, Waves: []Wave{{Count: 4, Soak: Duration(time.Hour)}},
		Limits: Limits{MaxConcurrent: 2}})
	r.step(0)
	r.finishAll(nil)
	r.step(time.Second) // 2 done, 2 more running
	before := mustGet(t, r.m, c.ID)

	r.m = r.manager() // a restart: only the store and the driver's records remain
	after := mustGet(t, r.m, c.ID)
	if after.State != Running || len(after.Targets) != 12 {
		t.Fatalf("after restart: %s with %d targets", after.State, len(after.Targets))
	}
	for i := range before.Targets {
		b, a := before.Targets[i], after.Targets[i]
		if b.Endpoint != a.Endpoint || b.State != a.State || b.Wave != a.Wave {
			t.Fatalf("target %d: before %+v, after %+v", i, b, a)
		}
	}
	if !after.Waves[0].Opened.Equal(before.Waves[0].Opened) {
		t.Fatal("wave 1's opening was lost")
	}
	for i := 0; r.progress(c.ID).State == Running; i++ {
		if i > 100 {
			t.Fatal("campaign did not end after restart")
		}
		r.finishAll(nil)
		r.step(time.Minute)
	}
	if p := r.progress(c.ID); p.Counts[TargetDone] != 12 || r.driver.peak > 2 {
		t.Fatalf("end: %v, peak %d", p.Counts, r.driver.peak)
	}
	if len(r.driver.starts) != 12 {
		t.Fatalf("%d starts for 12 devices: the restart started some twice", len(r.driver.starts))
	}
}

// A device marked running whose update the driver never stored (a crash
// between the two writes) is started again.
func TestRunningWithoutUpdateStartsAgain(t *testing.T) {
	r := newRig(t, 1)
	r.driver.refuse["dev000"] = errors.New("crash")
	c := r.create(Spec{Select: Selection{All: true}})
	e := r.m.campaigns[c.ID]
	e.c.Targets[0].State = TargetRunning // as persisted just before the crash
	e.dirty[0] = true
	if err := r.m.persist(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	delete(r.driver.refuse, "dev000")
	r.m = r.manager()
	r.step(time.Second) // follow: no update in the driver -> pending
	r.step(time.Second) // pick: started
	if got := r.driver.running(); !slices.Equal(got, []string{"dev000"}) {
		t.Fatalf("running = %v, want dev000 started again", got)
	}
}

func TestAsleepDevicesWaveMovesOnAndWakeLater(t *testing.T) {
	r := newRig(t, 6)
	c := r.create(Spec{Select: Selection{All: true}, Waves: []Wave{{Count: 3}},
		AsleepWait: Duration(5 * time.Minute), Deadline: Duration(24 * time.Hour)})
	w0 := mustGet(t, r.m, c.ID).Targets[0].Endpoint // wave 1, sleeping
	last := mustGet(t, r.m, c.ID).Targets[5].Endpoint
	r.fleet.sleep(w0, true)
	r.fleet.sleep(last, true)
	r.step(0)
	r.finishAll(nil)
	r.step(time.Minute)
	if p := r.progress(c.ID); !p.Waves[0].Settled.IsZero() || !p.Waves[1].Opened.IsZero() {
		t.Fatal("wave 2 opened before the asleep wait")
	}
	r.step(5 * time.Minute)
	p := r.progress(c.ID)
	if p.Waves[0].Settled.IsZero() || p.Waves[1].Opened.IsZero() {
		t.Fatalf("after the asleep wait, wave 1 settled %v, wave 2 opened %v", p.Waves[0].Settled, p.Waves[1].Opened)
	}
	r.step(time.Second)
	r.finishAll(nil)
	r.fleet.sleep(w0, false) // wakes up while wave 2 runs
	r.step(time.Second)
	if got := r.driver.running(); !slices.Equal(got, []string{w0}) {
		t.Fatalf("running = %v, want the woken %s", got, w0)
	}
	r.finishAll(nil)
	r.step(25 * time.Hour) // the other never wakes
	p = r.progress(c.ID)
	if p.State != Done || p.Counts[TargetDone] != 5 || p.Counts[TargetExpired] != 1 {
		t.Fatalf("end: %s %v; want done with 5 done and 1 expired", p.State, p.Counts)
	}
	if tg := mustGet(t, r.m, c.ID).Targets; tg[5].State != TargetExpired || tg[5].Reason == "" {
		t.Fatalf("sleeper: %+v", tg[5])
	}
}

func TestPerTagLimit(t *testing.T) {
	r := newRig(t, 25) // 5 cells
	c := r.create(Spec{Select: Selection{All: true}, Limits: Limits{PerTag: map[string]int{"cell": 2}}})
	for i := 0; r.progress(c.ID).State == Running; i++ {
		if i > 50 {
			t.Fatal("campaign did not end")
		}
		r.step(time.Second)
		perCell := map[string]int{}
		for _, ep := range r.driver.running() {
			for _, d := range r.devs {
				if d.Endpoint == ep {
					perCell[d.Tags["cell"]]++
				}
			}
		}
		for cell, n := range perCell {
			if n > 2 {
				t.Fatalf("cell %s has %d running, limit 2", cell, n)
			}
		}
		if i == 0 && len(r.driver.running()) != 10 {
			t.Fatalf("first step: %d running, want 10 (2 in each of 5 cells)", len(r.driver.running()))
		}
		r.finishAll(nil)
	}
}

func TestBytesPerHourAndWindow(t *testing.T) {
	r := newRig(t, 6)
	c := r.create(Spec{Select: Selection{All: true}, Limits: Limits{BytesPerHour: 250,
		Window: &Window{Start: "22:00", End: "02:00"}}})
	r.step(0) // 12:00 UTC: outside the window
	if len(r.driver.starts) != 0 {
		t.Fatal("started outside the maintenance window")
	}
	r.step(10 * time.Hour) // 22:00
	if n := len(r.driver.starts); n != 2 {
		t.Fatalf("%d started at 22:00 with 250 B/h and 100 B deltas, want 2", n)
	}
	r.finishAll(nil)
	r.step(30 * time.Minute)
	if n := len(r.driver.starts); n != 2 {
		t.Fatalf("%d started within the hour, want 2", n)
	}
	r.step(31 * time.Minute)
	if n := len(r.driver.starts); n != 4 {
		t.Fatalf("%d started an hour later, want 4", n)
	}
	r.finishAll(nil)
	r.step(3 * time.Hour) // 02:31: window closed again
	if n := len(r.driver.starts); n != 4 {
		t.Fatalf("%d started after the window closed, want 4", n)
	}
	if st := r.progress(c.ID).State; st != Running {
		t.Fatalf("state %s", st)
	}
}

func TestPlanSelectionAndPayloads(t *testing.T) {
	r := newRig(t, 0)
	r.devs = fakeDevices{
		{Endpoint: "a", Tags: map[string]string{"site": "berlin"}}, // 1.0.0: delta
		{Endpoint: "b", Tags: map[string]string{"site": "berlin"}}, // 0.9.0, not stored: full
		{Endpoint: "c", Tags: map[string]string{"site": "berlin"}}, // 2.0.0: skip
		{Endpoint: "d", Tags: map[string]string{"site": "berlin"}}, // version unknown: full
		{Endpoint: "e", Tags: map[string]string{"site": "paris"}},  // other site
		{Endpoint: "f", Class: "other", Tags: map[string]string{"site": "berlin"}},
	}
	r.fleet.installed = map[string]string{"a": "1.0.0", "b": "0.9.0", "c": "2.0.0", "e": "1.0.0", "f": "1.0.0"}
	p, err := r.m.Plan(context.Background(), Spec{Image: "2.0.0", Select: Selection{Tags: map[string]string{"site": "berlin"}},
		Delivery: Delivery{BlockSize: 64}})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]PlanDevice{}
	for _, d := range p.Devices {
		rows[d.Endpoint] = d
	}
	if len(rows) != 4 || rows["e"].Endpoint != "" || rows["f"].Endpoint != "" {
		t.Fatalf("selected %v, want a b c d (not e of paris, not f of class other)", slices.Collect(maps.Keys(rows)))
	}
	switch {
	case rows["a"].Format != manifest.FormatDelta || rows["a"].Size != 100:
		t.Fatalf("a: %+v, want a 100-byte delta", rows["a"])
	case rows["b"].Format != manifest.FormatFull || rows["b"].Reason != "installed 0.9.0 is not stored":
		t.Fatalf("b: %+v, want full because 0.9.0 is not stored", rows["b"])
	case !rows["c"].Skip:
		t.Fatalf("c: %+v, want skipped (runs the target)", rows["c"])
	case rows["d"].Format != manifest.FormatFull || rows["d"].Reason != "installed version unknown":
		t.Fatalf("d: %+v", rows["d"])
	}
	if p.Delta != 1 || p.Full != 2 || p.Skip != 1 || p.Bytes != 2100 || p.FullBytes != 3000 {
		t.Fatalf("totals: delta %d full %d skip %d bytes %d full bytes %d", p.Delta, p.Full, p.Skip, p.Bytes, p.FullBytes)
	}
	if len(p.Airtime) != 1 || p.Airtime[0].BlockSize != 64 || p.Airtime[0].Total >= p.Airtime[0].FullOnly {
		t.Fatalf("airtime = %+v", p.Airtime)
	}
	// The class's block size caps the link's (1024 for catm1's MTU), and
	// the campaign's caps both.
	r.m.cfg.Packages = fakePackages{classBlock: 256}
	for _, c := range []struct{ campaign, want int }{{0, 256}, {64, 64}, {512, 256}} {
		spec := Spec{Image: "2.0.0", Select: Selection{All: true}, Delivery: Delivery{BlockSize: c.campaign}}
		p, err := r.m.Plan(context.Background(), spec)
		if err != nil || len(p.Airtime) != 1 || p.Airtime[0].BlockSize != c.want {
			t.Fatalf("campaign block size %d, class 256: airtime %+v, %v; want %d-byte blocks", c.campaign, p.Airtime, err, c.want)
		}
	}

	if _, err := r.m.Plan(context.Background(), Spec{Image: "2.0.0", Select: Selection{Versions: []string{"7"}}}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty selection: %v", err)
	}
}

func TestSpecValidation(t *testing.T) {
	for _, s := range []Spec{
		{Select: Selection{All: true}},
		{Image: "2.0.0"},
		{Image: "2.0.0", Select: Selection{All: true}, Waves: []Wave{{}}},
		{Image: "2.0.0", Select: Selection{All: true}, Waves: []Wave{{Count: 2, Percent: 10}}},
		{Image: "2.0.0", Select: Selection{All: true}, Delivery: Delivery{BlockSize: 100}},
		{Image: "2.0.0", Select: Selection{All: true}, Limits: Limits{Window: &Window{Start: "25:00", End: "01:00"}}},
		{Image: "2.0.0", Select: Selection{All: true}, Limits: Limits{PerTag: map[string]int{"cell": 0}}},
		{Image: "2.0.0", Select: Selection{All: true}, Failure: FailurePolicy{MaxFailurePercent: 101}},
	} {
		if err := s.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", s, err)
		}
	}
}

func TestCancel(t *testing.T) {
	r := newRig(t, 10)
	c := r.create(Spec{Select: Selection{All: true}, Limits: Limits{MaxConcurrent: 3}})
	r.step(0)
	if _, err := r.m.Cancel(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	p := r.progress(c.ID)
	if p.State != Cancelled || p.Counts[TargetCancelled] != 10 {
		t.Fatalf("after cancel: %s %v", p.State, p.Counts)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(r.driver.running()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the driver is told on other goroutines
	}
	if got := r.driver.running(); len(got) != 0 {
		t.Fatalf("updates still running after cancel: %v", got)
	}
	if _, err := r.m.Start(context.Background(), c.ID); !errors.Is(err, ErrState) {
		t.Fatalf("start after cancel: %v", err)
	}
}

func TestStopAndWaitMatchesLinksModel(t *testing.T) {
	// links.md: a 381 KB full image in 1024-byte blocks over catm1 takes
	// 69 s stop-and-wait, over nbiot 12.5 min.
	catm1 := Link{RateDown: 300_000, RateUp: 300_000, RTT: 150 * time.Millisecond}
	nbiot := Link{RateDown: 20_000, RateUp: 20_000, RTT: 1500 * time.Millisecond}
	for _, c := range []struct {
		l    Link
		want time.Duration
	}{{catm1, 69 * time.Second}, {nbiot, 750 * time.Second}} {
		got := StopAndWait(381_705, 1024, c.l)
		if d := got - c.want; d > c.want/50 || -d > c.want/50 {
			t.Errorf("StopAndWait = %v, want %v ± 2 %%", got, c.want)
		}
	}
}

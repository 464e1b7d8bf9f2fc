package campaign

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/lwm2m"
)

// Store persists campaigns. Writes must be durable when they return.
type Store interface {
	// PutCampaign stores the campaign without its targets (c.Targets is
	// not written).
	PutCampaign(ctx context.Context, c Campaign) error
	// PutTargets creates or replaces targets of the campaign, by endpoint.
	PutTargets(ctx context.Context, id string, ts []Target) error
	// Campaigns returns every campaign with its targets, by ID; targets
	// by endpoint.
	Campaigns(ctx context.Context) ([]Campaign, error)
}

// Updates runs device updates (*update.Driver).
type Updates interface {
	Start(ctx context.Context, ep string, req update.Request) (update.Update, error)
	Status(ep string) (update.Update, bool)
	Cancel(ctx context.Context, ep string) error
}

// Devices lists provisioned devices (lwm2m.DeviceStore).
type Devices interface {
	Devices(ctx context.Context) ([]lwm2m.Device, error)
}

// Fleet tells what the server knows of devices right now.
type Fleet interface {
	// Installed is the firmware version the device last reported.
	Installed(ep string) (string, bool)
	// Reachable reports whether an operation sent now would reach the
	// device: it is registered and, in queue mode, awake.
	Reachable(ep string) bool
}

// Packages resolves images and makes packages (*firmware.Service).
type Packages interface {
	Image(ctx context.Context, ref, class string) (firmware.Image, error)
	Class(ctx context.Context, name string) (firmware.Class, error)
	MakePackage(ctx context.Context, req firmware.Request) (firmware.Offer, error)
}

// Config wires a Manager.
type Config struct {
	Store    Store
	Updates  Updates
	Devices  Devices
	Fleet    Fleet
	Packages Packages
	// Links are the profiles a plan estimates airtime on.
	Links []Link
	// Tick is how often the scheduler looks at running campaigns
	// (default 1 s).
	Tick   time.Duration
	Now    func() time.Time
	Logger zerolog.Logger
}

// Manager creates, persists and runs campaigns.
type Manager struct {
	cfg Config
	log zerolog.Logger

	mu        sync.Mutex
	campaigns map[string]*entry
	order     []string // IDs by creation
	kick      chan struct{}
	// wmu serializes persistence: a copy taken under it is written before
	// any later copy, so an older state never overwrites a newer one.
	wmu sync.Mutex
}

// entry is a campaign in memory with what is not yet persisted.
type entry struct {
	c Campaign
	// index finds a target by endpoint.
	index map[string]int
	// dirty targets (by index) and header await persist.
	dirty       map[int]bool
	headerDirty bool
}

// New returns a Manager; call Load, then Run.
func New(cfg Config) *Manager {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{cfg: cfg, log: cfg.Logger.With().Str("component", "campaign").Logger(),
		campaigns: map[string]*entry{}, kick: make(chan struct{}, 1)}
}

// Load reads the stored campaigns; call it once, before Run.
func (m *Manager) Load(ctx context.Context) error {
	cs, err := m.cfg.Store.Campaigns(ctx)
	if err != nil {
		return fmt.Errorf("load campaigns: %w", err)
	}
	slices.SortFunc(cs, func(a, b Campaign) int { return a.Created.Compare(b.Created) })
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range cs {
		slices.SortFunc(c.Targets, byWave)
		if c.Version == "" {
			// Stored before the record kept it.
			if img, err := m.cfg.Packages.Image(ctx, c.Spec.Image, ""); err == nil {
				c.Version = img.Version
			}
		}
		m.add(c)
		if !c.State.Finished() {
			m.log.Info().Str("campaign", c.ID).Str("state", string(c.State)).Msg("campaign resumes")
		}
	}
	return nil
}

func byWave(a, b Target) int {
	return cmp.Or(cmp.Compare(a.Wave, b.Wave), cmp.Compare(a.Endpoint, b.Endpoint))
}

// add puts c in memory; m.mu is held.
func (m *Manager) add(c Campaign) *entry {
	e := &entry{c: c, index: make(map[string]int, len(c.Targets)), dirty: map[int]bool{}}
	for i, t := range c.Targets {
		e.index[t.Endpoint] = i
	}
	m.campaigns[c.ID] = e
	m.order = append(m.order, c.ID)
	return e
}

// Create plans the spec and stores it as a new campaign, not started.
func (m *Manager) Create(ctx context.Context, spec Spec) (Campaign, error) {
	p, tags, err := m.plan(ctx, spec)
	if err != nil {
		return Campaign{}, err
	}
	now := m.cfg.Now()
	spec.Image = p.Image // the digest: a version could be re-added later
	c := Campaign{ID: newID(), Spec: spec, Version: p.Version, State: Created, Created: now}
	c.Waves = splitWaves(len(p.Devices), spec.Waves)
	for _, d := range p.Devices {
		t := Target{Endpoint: d.Endpoint, Wave: d.Wave, State: TargetPending, Installed: d.Installed,
			Format: d.Format, Size: d.Size, FullSize: d.FullSize, Tags: tags[d.Endpoint]}
		if d.Skip {
			t.State, t.Reason, t.Ended = TargetSkipped, d.Reason, now
		}
		c.Targets = append(c.Targets, t)
	}
	// Within a wave, devices go in endpoint order, as they come back
	// from the store after a restart.
	slices.SortStableFunc(c.Targets, byWave)
	if err := m.cfg.Store.PutCampaign(ctx, c); err != nil {
		return Campaign{}, fmt.Errorf("create campaign: %w", err)
	}
	if err := m.cfg.Store.PutTargets(ctx, c.ID, c.Targets); err != nil {
		return Campaign{}, fmt.Errorf("create campaign: %w", err)
	}
	m.mu.Lock()
	m.add(c)
	m.mu.Unlock()
	m.log.Info().Str("campaign", c.ID).Str("image", p.Version).Int("devices", len(c.Targets)).
		Int("delta", p.Delta).Int("full", p.Full).Int("skip", p.Skip).Int("waves", len(c.Waves)).Msg("campaign created")
	return c, nil
}

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "c" + hex.EncodeToString(b[:])
}

// List returns every campaign without its targets, oldest first.
func (m *Manager) List() []Campaign {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Campaign, 0, len(m.order))
	for _, id := range m.order {
		c := m.campaigns[id].c
		c.Targets = nil
		c.Waves = slices.Clone(c.Waves)
		out = append(out, c)
	}
	return out
}

// Get returns the campaign with its targets.
func (m *Manager) Get(id string) (Campaign, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.campaigns[id]
	if !ok {
		return Campaign{}, fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	return e.copy(), nil
}

func (e *entry) copy() Campaign {
	c := e.c
	c.Waves = slices.Clone(c.Waves)
	c.Targets = slices.Clone(c.Targets)
	return c
}

// Start starts a created campaign.
func (m *Manager) Start(ctx context.Context, id string) (Campaign, error) {
	return m.change(ctx, id, "start", func(e *entry, now time.Time) error {
		if e.c.State != Created {
			return fmt.Errorf("campaign %s is %s, not created: %w", id, e.c.State, ErrState)
		}
		e.c.State, e.c.Started, e.c.Reason = Running, now, ""
		return nil
	})
}

// Pause stops the campaign from starting updates; running ones finish.
func (m *Manager) Pause(ctx context.Context, id string) (Campaign, error) {
	return m.change(ctx, id, "pause", func(e *entry, now time.Time) error {
		if e.c.State != Running {
			return fmt.Errorf("campaign %s is %s, not running: %w", id, e.c.State, ErrState)
		}
		e.c.State, e.c.Reason = Paused, "paused by hand"
		return nil
	})
}

// Resume continues a paused campaign. The failures that paused it are
// forgiven: the failure policy counts only those after the resume.
func (m *Manager) Resume(ctx context.Context, id string) (Campaign, error) {
	return m.change(ctx, id, "resume", func(e *entry, now time.Time) error {
		if e.c.State != Paused {
			return fmt.Errorf("campaign %s is %s, not paused: %w", id, e.c.State, ErrState)
		}
		counts := e.waveCounts()
		for w := range e.c.Waves {
			e.c.Waves[w].Forgiven = counts[w][TargetFailed]
		}
		e.c.State, e.c.Reason = Running, ""
		return nil
	})
}

// Cancel ends the campaign: devices not yet started are cancelled, and
// running updates are cancelled on their devices.
func (m *Manager) Cancel(ctx context.Context, id string) (Campaign, error) {
	var running []string
	c, err := m.change(ctx, id, "cancel", func(e *entry, now time.Time) error {
		if e.c.State.Finished() {
			return fmt.Errorf("campaign %s is %s: %w", id, e.c.State, ErrState)
		}
		for i := range e.c.Targets {
			t := &e.c.Targets[i]
			switch t.State {
			case TargetRunning:
				running = append(running, t.Endpoint)
				fallthrough
			case TargetPending:
				t.State, t.Reason, t.Ended = TargetCancelled, "campaign cancelled", now
				e.dirty[i] = true
			}
		}
		e.c.State, e.c.Reason, e.c.Ended = Cancelled, "cancelled by hand", now
		return nil
	})
	for _, ep := range running {
		// The driver ends the update at once and then tells the device,
		// which may sleep: do not hold the caller.
		go m.cancelUpdate(ctx, id, ep)
	}
	return c, err
}

// cancelUpdate cancels the campaign's update of ep on the driver and the
// device.
func (m *Manager) cancelUpdate(ctx context.Context, id, ep string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer cancel()
	if u, ok := m.cfg.Updates.Status(ep); !ok || u.Campaign != id {
		return // never started
	}
	if err := m.cfg.Updates.Cancel(cctx, ep); err != nil && !errors.Is(err, update.ErrNotRunning) {
		m.log.Warn().Err(err).Str("campaign", id).Str("endpoint", ep).Msg("update not cancelled on the device")
	}
}

// cancelTimeout bounds telling a device its update is cancelled.
const cancelTimeout = 5 * time.Minute

// change applies f to the campaign, persists it and wakes the scheduler.
func (m *Manager) change(ctx context.Context, id, what string, f func(*entry, time.Time) error) (Campaign, error) {
	m.mu.Lock()
	e, ok := m.campaigns[id]
	if !ok {
		m.mu.Unlock()
		return Campaign{}, fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	if err := f(e, m.cfg.Now()); err != nil {
		m.mu.Unlock()
		return Campaign{}, err
	}
	e.headerDirty = true
	c := e.copy()
	m.mu.Unlock()
	if err := m.persist(ctx, id); err != nil {
		return Campaign{}, fmt.Errorf("%s campaign %s: %w", what, id, err)
	}
	m.log.Info().Str("campaign", id).Str("state", string(c.State)).Msg("campaign " + what)
	m.wake()
	return c, nil
}

func (m *Manager) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// persist writes what changed in the campaign since the last persist.
func (m *Manager) persist(ctx context.Context, id string) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	m.mu.Lock()
	e := m.campaigns[id]
	var header *Campaign
	if e.headerDirty {
		c := e.c
		c.Targets = nil
		c.Waves = slices.Clone(c.Waves)
		header = &c
		e.headerDirty = false
	}
	ts := make([]Target, 0, len(e.dirty))
	idx := make([]int, 0, len(e.dirty))
	for i := range e.dirty {
		ts = append(ts, e.c.Targets[i])
		idx = append(idx, i)
	}
	clear(e.dirty)
	m.mu.Unlock()
	ctx = context.WithoutCancel(ctx) // a change made in memory is written
	var err error
	if len(ts) > 0 {
		err = m.cfg.Store.PutTargets(ctx, id, ts)
	}
	if err == nil && header != nil {
		err = m.cfg.Store.PutCampaign(ctx, *header)
	}
	if err != nil {
		// Written next time.
		m.mu.Lock()
		for _, i := range idx {
			e.dirty[i] = true
		}
		e.headerDirty = e.headerDirty || header != nil
		m.mu.Unlock()
	}
	return err
}

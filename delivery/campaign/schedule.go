package campaign

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/lwm2m"
)

// Run schedules the campaigns until ctx ends: every Tick, and at once
// after a change, it records how running updates ended and starts the
// next devices the waves, limits and devices' reachability allow.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Tick)
	defer t.Stop()
	for {
		m.stepAll(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-m.kick:
		}
	}
}

func (m *Manager) stepAll(ctx context.Context) {
	m.mu.Lock()
	var ids []string
	for _, id := range m.order {
		if st := m.campaigns[id].c.State; st == Running || st == Paused {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.step(ctx, id)
		if err := m.persist(ctx, id); err != nil {
			m.log.Error().Err(err).Str("campaign", id).Msg("campaign not persisted")
		}
	}
}

// step moves one campaign on.
func (m *Manager) step(ctx context.Context, id string) {
	// The driver's state is read without m.mu: it has its own lock.
	m.mu.Lock()
	e := m.campaigns[id]
	var running []string
	for _, t := range e.c.Targets {
		if t.State == TargetRunning {
			running = append(running, t.Endpoint)
		}
	}
	m.mu.Unlock()
	statuses := make(map[string]update.Update, len(running))
	for _, ep := range running {
		if u, ok := m.cfg.Updates.Status(ep); ok {
			statuses[ep] = u
		}
	}

	now := m.cfg.Now()
	m.mu.Lock()
	m.follow(e, statuses, now)
	m.checkFailures(e)
	m.advance(e, now)
	starts := m.pick(e, now)
	m.mu.Unlock()

	for _, i := range starts {
		m.startTarget(ctx, e, i)
	}
}

// follow copies the driver's progress into the running targets and ends
// those whose update ended; m.mu is held.
func (m *Manager) follow(e *entry, statuses map[string]update.Update, now time.Time) {
	for i := range e.c.Targets {
		t := &e.c.Targets[i]
		if t.State != TargetRunning {
			continue
		}
		u, ok := statuses[t.Endpoint]
		if !ok || u.Campaign != e.c.ID {
			// Started in memory but never stored by the driver (a crash
			// in between): start again.
			t.State, t.Started = TargetPending, time.Time{}
			e.dirty[i] = true
			continue
		}
		t.BytesServed = u.BytesServed
		if u.Size > 0 {
			t.Format, t.Size = u.Format, u.Size
		}
		if u.FullSize > 0 {
			t.FullSize = u.FullSize
		}
		t.FellBack = u.FellBack
		if !u.Phase.Finished() {
			continue
		}
		t.Result, t.Reason, t.Ended = u.Result, u.Error, now
		switch u.Phase {
		case update.Done:
			t.State = TargetDone
		case update.Cancelled:
			t.State = TargetCancelled
		default:
			t.State = TargetFailed
		}
		e.dirty[i] = true
		m.log.Info().Str("campaign", e.c.ID).Str("endpoint", t.Endpoint).Str("state", string(t.State)).
			Int("result", t.Result).Str("reason", t.Reason).Msg("campaign device ended")
	}
}

// waveCounts counts the targets of each wave by state.
func (e *entry) waveCounts() []map[TargetState]int {
	counts := make([]map[TargetState]int, len(e.c.Waves))
	for w := range counts {
		counts[w] = map[TargetState]int{}
	}
	for _, t := range e.c.Targets {
		counts[t.Wave][t.State]++
	}
	return counts
}

// checkFailures pauses a running campaign whose open waves failed more
// than the failure policy allows; m.mu is held.
func (m *Manager) checkFailures(e *entry) {
	p := e.c.Spec.Failure
	if e.c.State != Running || (p.MaxFailures == 0 && p.MaxFailurePercent == 0) {
		return
	}
	counts := e.waveCounts()
	for w, ws := range e.c.Waves {
		if ws.Opened.IsZero() {
			break
		}
		failed := counts[w][TargetFailed] - ws.Forgiven
		over := p.MaxFailures > 0 && failed > p.MaxFailures
		if p.MaxFailurePercent > 0 && float64(failed)*100 > p.MaxFailurePercent*float64(ws.Size) {
			over = true
		}
		if over {
			e.c.State = Paused
			e.c.Reason = fmt.Sprintf("wave %d: %d of %d devices failed, more than the failure policy allows", w+1, failed, ws.Size)
			e.headerDirty = true
			m.log.Warn().Str("campaign", e.c.ID).Int("wave", w+1).Int("failed", failed).Msg("campaign paused by its failure policy")
			return
		}
	}
}

// advance settles waves, opens the next after its soak, expires devices
// past the deadline and ends the campaign when every device has ended;
// m.mu is held.
func (m *Manager) advance(e *entry, now time.Time) {
	c := &e.c
	if c.State == Running && now.After(c.Started.Add(c.Spec.deadline())) {
		for i := range c.Targets {
			if t := &c.Targets[i]; t.State == TargetPending {
				t.State, t.Reason, t.Ended = TargetExpired, "not reachable before the campaign's deadline", now
				e.dirty[i] = true
			}
		}
	}
	counts := e.waveCounts()
	for w := range c.Waves {
		ws := &c.Waves[w]
		if ws.Opened.IsZero() {
			if c.State != Running || (w > 0 && !m.soaked(c, w-1, now)) {
				break
			}
			ws.Opened = now
			e.headerDirty = true
			m.log.Info().Str("campaign", c.ID).Int("wave", w+1).Int("devices", ws.Size).Msg("campaign wave opens")
		}
		if ws.Settled.IsZero() && m.settled(e, w, counts[w], now) {
			ws.Settled = now
			e.headerDirty = true
			m.log.Info().Str("campaign", c.ID).Int("wave", w+1).Int("done", counts[w][TargetDone]).
				Int("failed", counts[w][TargetFailed]).Int("pending", counts[w][TargetPending]).Msg("campaign wave settled")
		}
	}
	left, failed := 0, 0
	for _, t := range c.Targets {
		if !t.State.Finished() {
			left++
		}
		if t.State == TargetFailed {
			failed++
		}
	}
	if left == 0 && (c.State == Running || c.State == Paused) {
		c.State, c.Ended, c.Reason = Done, now, ""
		if failed > 0 {
			c.Reason = fmt.Sprintf("%d of %d devices failed", failed, len(c.Targets))
		}
		e.headerDirty = true
		m.log.Info().Str("campaign", c.ID).Msg("campaign done")
	}
}

// soaked reports whether wave w settled at least its soak time ago.
func (m *Manager) soaked(c *Campaign, w int, now time.Time) bool {
	ws := c.Waves[w]
	return !ws.Settled.IsZero() && !now.Before(ws.Settled.Add(time.Duration(ws.Soak)))
}

// settled reports whether wave w has nothing left to wait for: no device
// runs, and the pending ones have been unreachable for the campaign's
// asleep wait since the wave opened.
func (m *Manager) settled(e *entry, w int, counts map[TargetState]int, now time.Time) bool {
	if counts[TargetRunning] > 0 {
		return false
	}
	if counts[TargetPending] == 0 {
		return true
	}
	if now.Before(e.c.Waves[w].Opened.Add(e.c.Spec.asleepWait())) {
		return false
	}
	for _, t := range e.c.Targets {
		if t.Wave == w && t.State == TargetPending && m.cfg.Fleet.Reachable(t.Endpoint) {
			return false
		}
	}
	return true
}

// pick chooses the pending devices to start now and marks them running;
// m.mu is held. Devices of open waves go in wave order, each only when
// it is reachable and every limit allows.
func (m *Manager) pick(e *entry, now time.Time) []int {
	c := &e.c
	lim := c.Spec.Limits
	if c.State != Running || !lim.Window.open(now) {
		return nil
	}
	running, perTag := 0, map[string]map[string]int{}
	var hourBytes int64
	for _, t := range c.Targets {
		if t.State == TargetRunning {
			running++
			for k := range lim.PerTag {
				if v, ok := t.Tags[k]; ok {
					if perTag[k] == nil {
						perTag[k] = map[string]int{}
					}
					perTag[k][v]++
				}
			}
		}
		if !t.Started.IsZero() && now.Sub(t.Started) < time.Hour {
			hourBytes += max(t.Size, t.BytesServed)
		}
	}
	var starts []int
	for i := range c.Targets {
		t := &c.Targets[i]
		if lim.MaxConcurrent > 0 && running >= lim.MaxConcurrent {
			break
		}
		if t.State != TargetPending || c.Waves[t.Wave].Opened.IsZero() {
			continue
		}
		if !tagsAllow(lim.PerTag, perTag, t.Tags) {
			continue
		}
		if lim.BytesPerHour > 0 && hourBytes > 0 && hourBytes+t.Size > lim.BytesPerHour {
			continue
		}
		if inst, ok := m.cfg.Fleet.Installed(t.Endpoint); ok && inst == c.Version {
			t.State, t.Reason, t.Ended, t.Installed = TargetSkipped, "runs "+inst+" already", now, inst
			e.dirty[i] = true
			continue
		}
		if !m.cfg.Fleet.Reachable(t.Endpoint) {
			continue
		}
		t.State, t.Started = TargetRunning, now
		e.dirty[i] = true
		running++
		hourBytes += t.Size
		for k := range lim.PerTag {
			if v, ok := t.Tags[k]; ok {
				if perTag[k] == nil {
					perTag[k] = map[string]int{}
				}
				perTag[k][v]++
			}
		}
		starts = append(starts, i)
	}
	if running > c.PeakRunning {
		c.PeakRunning = running
		e.headerDirty = true
	}
	return starts
}

func tagsAllow(limits map[string]int, counts map[string]map[string]int, tags map[string]string) bool {
	for k, n := range limits {
		if v, ok := tags[k]; ok && counts[k][v] >= n {
			return false
		}
	}
	return true
}

// startTarget asks the driver to update target i, which pick marked
// running (and which is persisted first, so that a crash between the two
// is noticed by follow).
func (m *Manager) startTarget(ctx context.Context, e *entry, i int) {
	if err := m.persist(ctx, e.c.ID); err != nil {
		m.log.Error().Err(err).Str("campaign", e.c.ID).Msg("campaign not persisted")
	}
	m.mu.Lock()
	t := e.c.Targets[i]
	spec, id, state := e.c.Spec, e.c.ID, e.c.State
	m.mu.Unlock()
	if t.State != TargetRunning || state != Running {
		return // cancelled or paused since pick
	}
	req := update.Request{Image: spec.Image, Full: spec.Delivery.Full, Push: spec.Delivery.Push,
		BlockSize: spec.Delivery.BlockSize, Retries: spec.Failure.Retries, Campaign: id}
	_, err := m.cfg.Updates.Start(ctx, t.Endpoint, req)
	m.mu.Lock()
	defer m.mu.Unlock()
	tt := &e.c.Targets[i]
	if err == nil {
		m.log.Info().Str("campaign", id).Str("endpoint", t.Endpoint).Int("wave", t.Wave+1).Msg("campaign device starts")
		if tt.State == TargetCancelled {
			// Cancel came between the check above and Start.
			go m.cancelUpdate(ctx, id, t.Endpoint)
		}
		return
	}
	if tt.State != TargetRunning {
		return
	}
	e.dirty[i] = true
	switch {
	case errors.Is(err, firmware.ErrNotFound):
		// The image was removed: this device cannot be updated.
		tt.State, tt.Reason, tt.Ended = TargetFailed, err.Error(), m.cfg.Now()
		m.log.Warn().Str("campaign", e.c.ID).Str("endpoint", t.Endpoint).Err(err).Msg("campaign device not started")
	case errors.Is(err, lwm2m.ErrNotRegistered), errors.Is(err, update.ErrBusy), ctx.Err() != nil:
		// It went away, someone updates it by hand, or fotad stops: later.
		tt.State, tt.Started = TargetPending, time.Time{}
		m.log.Debug().Str("campaign", e.c.ID).Str("endpoint", t.Endpoint).Err(err).Msg("campaign device waits")
	default:
		tt.State, tt.Started = TargetPending, time.Time{}
		m.log.Warn().Str("campaign", e.c.ID).Str("endpoint", t.Endpoint).Err(err).Msg("campaign device not started: trying again")
	}
}

package campaign

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/fotahub/fota/delivery/update"
)

// maxListed bounds the endpoints a failure group names.
const maxListed = 10

// Progress summarizes the campaign.
func (m *Manager) Progress(id string) (Progress, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.campaigns[id]
	if !ok {
		return Progress{}, fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	return e.progress(), nil
}

// Progresses summarizes every campaign, oldest first (metrics).
func (m *Manager) Progresses() []Progress {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Progress, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, m.campaigns[id].progress())
	}
	return out
}

func (e *entry) progress() Progress {
	c := &e.c
	p := Progress{ID: c.ID, Name: c.Spec.Name, Image: c.Version, State: c.State, Reason: c.Reason,
		Created: c.Created, Started: c.Started, Ended: c.Ended, Total: len(c.Targets),
		Counts: map[TargetState]int{}, PeakRunning: c.PeakRunning}
	counts := e.waveCounts()
	for w, ws := range c.Waves {
		wp := WaveProgress{Index: w + 1, Size: ws.Size, Counts: counts[w], Opened: ws.Opened, Settled: ws.Settled}
		if !ws.Settled.IsZero() {
			wp.SoakUntil = ws.Settled.Add(time.Duration(ws.Soak))
		}
		p.Waves = append(p.Waves, wp)
	}
	type groupKey struct {
		result int
		reason string
	}
	groups := map[groupKey]*FailureGroup{}
	for _, t := range c.Targets {
		p.Counts[t.State]++
		p.BytesServed += t.BytesServed
		if t.State == TargetRunning {
			p.Running++
		}
		if t.State == TargetDone {
			p.BytesBaseline += t.FullSize
			if t.FullSize > t.BytesServed {
				p.BytesSaved += t.FullSize - t.BytesServed
			}
		}
		if t.State != TargetFailed {
			continue
		}
		key := groupKey{t.Result, t.Reason}
		g := groups[key]
		if g == nil {
			g = &FailureGroup{Result: t.Result, ResultText: update.ResultText(t.Result), Reason: t.Reason}
			groups[key] = g
		}
		g.Count++
		if len(g.Endpoints) < maxListed {
			g.Endpoints = append(g.Endpoints, t.Endpoint)
		}
	}
	for _, g := range groups {
		p.Failures = append(p.Failures, *g)
	}
	slices.SortFunc(p.Failures, func(a, b FailureGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Result, b.Result), cmp.Compare(a.Reason, b.Reason))
	})
	return p
}

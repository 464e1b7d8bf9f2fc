package campaign

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/lwm2m"
)

// Validate reports the first thing wrong with the spec, wrapping
// ErrInvalid.
func (s *Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	sel := s.Select
	switch {
	case s.Image == "":
		return bad("no target image")
	case !sel.All && len(sel.Endpoints) == 0 && sel.Class == "" && len(sel.Versions) == 0 && len(sel.Tags) == 0:
		return bad("the selection is empty: give endpoints, a class, versions, tags, or all")
	case s.Limits.MaxConcurrent < 0, s.Limits.BytesPerHour < 0:
		return bad("limits must not be negative")
	case s.Failure.MaxFailures < 0, s.Failure.MaxFailurePercent < 0, s.Failure.MaxFailurePercent > 100:
		return bad("failure limits must be 0-100 %% and counts not negative")
	case s.Delivery.BlockSize != 0 && !validBlock(s.Delivery.BlockSize):
		return bad("block size %d is not a power of two from 16 to 1024", s.Delivery.BlockSize)
	case s.AsleepWait < 0, s.Deadline < 0:
		return bad("durations must not be negative")
	}
	for k, n := range s.Limits.PerTag {
		if n <= 0 || k == "" {
			return bad("per-tag limit %q: %d: want a tag name and a positive count", k, n)
		}
	}
	for i, w := range s.Waves {
		if w.Count < 0 || w.Percent < 0 || w.Percent > 100 || (w.Count == 0) == (w.Percent == 0) || w.Soak < 0 {
			return bad("wave %d: give a count or a percentage (0-100], and a soak time not negative", i+1)
		}
	}
	if w := s.Limits.Window; w != nil {
		if _, _, err := w.bounds(); err != nil {
			return bad("window: %v", err)
		}
	}
	return nil
}

func validBlock(n int) bool { return n >= 16 && n <= 1024 && n&(n-1) == 0 }

// bounds parses the window into minutes after midnight.
func (w Window) bounds() (start, end int, err error) {
	parse := func(s string) (int, error) {
		t, err := time.Parse("15:04", s)
		if err != nil {
			return 0, fmt.Errorf("%q is not HH:MM", s)
		}
		return t.Hour()*60 + t.Minute(), nil
	}
	if start, err = parse(w.Start); err != nil {
		return 0, 0, err
	}
	if end, err = parse(w.End); err != nil {
		return 0, 0, err
	}
	if start == end {
		return 0, 0, fmt.Errorf("start and end are both %s", w.Start)
	}
	return start, end, nil
}

// open reports whether t (in UTC) falls inside the window.
func (w *Window) open(t time.Time) bool {
	if w == nil {
		return true
	}
	start, end, err := w.bounds()
	if err != nil {
		return false
	}
	t = t.UTC()
	m := t.Hour()*60 + t.Minute()
	if start < end {
		return m >= start && m < end
	}
	return m >= start || m < end // wraps past midnight
}

func (s *Spec) asleepWait() time.Duration {
	if s.AsleepWait > 0 {
		return time.Duration(s.AsleepWait)
	}
	return time.Hour
}

func (s *Spec) deadline() time.Duration {
	if s.Deadline > 0 {
		return time.Duration(s.Deadline)
	}
	return 14 * 24 * time.Hour
}

// Plan works out, without sending anything, who the spec selects, in
// which wave, and which package each device would get.
func (m *Manager) Plan(ctx context.Context, spec Spec) (Plan, error) {
	p, _, err := m.plan(ctx, spec)
	return p, err
}

// plan is Plan that also returns the selected devices' tags, by endpoint.
func (m *Manager) plan(ctx context.Context, spec Spec) (Plan, map[string]map[string]string, error) {
	if err := spec.Validate(); err != nil {
		return Plan{}, nil, err
	}
	target, err := m.cfg.Packages.Image(ctx, spec.Image, "")
	if err != nil {
		return Plan{}, nil, fmt.Errorf("plan: target image: %w", err)
	}
	devs, err := m.selectDevices(ctx, spec.Select, target)
	if err != nil {
		return Plan{}, nil, err
	}
	if len(devs) == 0 {
		return Plan{}, nil, ErrEmpty
	}
	tags := make(map[string]map[string]string, len(devs))
	for _, d := range devs {
		tags[d.ep] = d.tags
	}
	p := Plan{Image: target.Digest.String(), Version: target.Version, Class: target.Class}
	waves := splitWaves(len(devs), spec.Waves)
	offers := map[string]PlanDevice{} // by installed version
	i := 0
	for w, ws := range waves {
		p.Waves = append(p.Waves, ws.Size)
		for n := ws.Size; n > 0; n-- {
			d := devs[i]
			i++
			row, ok := offers[d.installed]
			if !ok {
				row = m.offer(ctx, d.installed, target, spec.Delivery.Full)
				offers[d.installed] = row
			}
			row.Endpoint, row.Wave, row.Installed = d.ep, w, d.installed
			p.add(row)
		}
	}
	// Within a wave devices go in endpoint order, as the campaign runs them.
	slices.SortStableFunc(p.Devices, func(a, b PlanDevice) int {
		return cmp.Or(cmp.Compare(a.Wave, b.Wave), cmp.Compare(a.Endpoint, b.Endpoint))
	})
	p.Airtime = m.airtime(p.Devices, m.blockCap(ctx, spec, target.Class))
	return p, tags, nil
}

func (p *Plan) add(row PlanDevice) {
	p.Devices = append(p.Devices, row)
	switch {
	case row.Skip:
		p.Skip++
		return
	case row.Format.IsDelta():
		p.Delta++
	default:
		p.Full++
	}
	p.Bytes += row.Size
	p.FullBytes += row.FullSize
}

// offer is the package a device running installed would get.
func (m *Manager) offer(ctx context.Context, installed string, target firmware.Image, full bool) PlanDevice {
	if installed != "" && installed == target.Version {
		return PlanDevice{Skip: true, Reason: "runs " + target.Version + " already"}
	}
	req := firmware.Request{Image: target.Digest.String(), Class: target.Class, Full: full}
	if installed != "" {
		if inst, err := m.cfg.Packages.Image(ctx, installed, target.Class); err == nil {
			req.Installed = inst.Digest
		}
	}
	o, err := m.cfg.Packages.MakePackage(ctx, req)
	switch {
	case errors.Is(err, firmware.ErrNotNewer), errors.Is(err, firmware.ErrClassMismatch):
		return PlanDevice{Skip: true, Reason: err.Error()}
	case err != nil:
		return PlanDevice{Skip: true, Reason: "no package: " + err.Error()}
	}
	reason := o.Reason
	if installed == "" {
		reason = "installed version unknown"
	} else if req.Installed == (manifest.Digest{}) {
		reason = "installed " + installed + " is not stored"
	}
	switch {
	case o.Manifest.Format.IsDelta():
		reason = ""
	case o.Raw:
		reason = o.Reason // whatever the device runs
	}
	return PlanDevice{Format: o.Manifest.Format, Size: o.Size, FullSize: o.FullSize, Reason: reason}
}

// blockCap is the smallest of the campaign's block size and its class's
// (0: neither caps the link's).
func (m *Manager) blockCap(ctx context.Context, spec Spec, class string) int {
	limit := spec.Delivery.BlockSize
	if c, err := m.cfg.Packages.Class(ctx, class); err == nil && c.BlockSize > 0 && (limit == 0 || c.BlockSize < limit) {
		limit = c.BlockSize
	}
	return limit
}

// airtime estimates the plan's transfer times on every configured link,
// in the link's block size capped at limit (0: no cap).
func (m *Manager) airtime(rows []PlanDevice, limit int) []Airtime {
	var out []Airtime
	for _, l := range m.cfg.Links {
		block := coap.BlockSizeForMTU(l.MTU)
		if limit > 0 {
			block = min(block, limit)
		}
		a := Airtime{Link: l.Name, BlockSize: block}
		n := 0
		for _, r := range rows {
			if r.Skip {
				continue
			}
			n++
			a.Total += StopAndWait(r.Size, block, l)
			a.FullOnly += StopAndWait(r.FullSize, block, l)
		}
		if n > 0 {
			a.PerDevice = a.Total / time.Duration(n)
		}
		out = append(out, a)
	}
	return out
}

// selected is a device the selection picked.
type selected struct {
	ep        string
	installed string
	tags      map[string]string
}

// selectDevices returns the devices the selection picks, in rollout
// order: as listed when endpoints are given, else in an order fixed by a
// hash of the endpoint name, so that early waves sample the whole fleet.
func (m *Manager) selectDevices(ctx context.Context, sel Selection, target firmware.Image) ([]selected, error) {
	all, err := m.cfg.Devices.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("select devices: %w", err)
	}
	byEP := make(map[string]lwm2m.Device, len(all))
	for _, d := range all {
		byEP[d.Endpoint] = d
	}
	var cands []lwm2m.Device
	if len(sel.Endpoints) > 0 {
		seen := map[string]bool{}
		for _, ep := range sel.Endpoints {
			if seen[ep] {
				continue
			}
			seen[ep] = true
			d, ok := byEP[ep]
			if !ok {
				d = lwm2m.Device{Endpoint: ep} // open registration: not provisioned
			}
			cands = append(cands, d)
		}
	} else {
		cands = all
	}
	class := cmp.Or(sel.Class, target.Class)
	var out []selected
	for _, d := range cands {
		installed, _ := m.cfg.Fleet.Installed(d.Endpoint)
		if !m.matches(ctx, sel, class, d, installed) {
			continue
		}
		out = append(out, selected{ep: d.Endpoint, installed: installed, tags: d.Tags})
	}
	if len(sel.Endpoints) == 0 {
		slices.SortFunc(out, func(a, b selected) int { return cmp.Compare(rolloutKey(a.ep), rolloutKey(b.ep)) })
	}
	return out, nil
}

func rolloutKey(ep string) string {
	h := sha256.Sum256([]byte(ep))
	return string(h[:8])
}

// matches applies the selection's criteria. A device of a known class
// other than the target's is never selected.
func (m *Manager) matches(ctx context.Context, sel Selection, class string, d lwm2m.Device, installed string) bool {
	devClass := d.Class
	if devClass == "" && installed != "" {
		if img, err := m.cfg.Packages.Image(ctx, installed, ""); err == nil {
			devClass = img.Class
		}
	}
	if devClass != "" && devClass != class {
		return false
	}
	if sel.Class != "" && devClass == "" {
		return false
	}
	if len(sel.Versions) > 0 && !slices.Contains(sel.Versions, installed) {
		return false
	}
	for k, v := range sel.Tags {
		got, ok := d.Tags[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}

// splitWaves sizes the waves of a rollout of total devices: as the waves
// ask, in order, and the rest in a last wave. Waves left empty are
// dropped.
func splitWaves(total int, waves []Wave) []WaveState {
	var out []WaveState
	left := total
	for _, w := range waves {
		n := w.Count
		if w.Percent > 0 {
			n = int(math.Ceil(w.Percent / 100 * float64(total)))
		}
		n = min(n, left)
		if n == 0 {
			continue
		}
		out = append(out, WaveState{Size: n, Soak: w.Soak})
		left -= n
	}
	if left > 0 {
		out = append(out, WaveState{Size: left})
	}
	return out
}

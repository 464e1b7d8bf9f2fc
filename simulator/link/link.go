package link

import (
	"fmt"
	"time"
)

// Random streams of the two directions, so that they draw independently
// from one seed.
const (
	streamUp   = 0x7570     // "up"
	streamDown = 0x646f776e // "down"
)

// Link is a device's link: an Up pipe (device to server) and a Down pipe
// (server to device) sharing outages and the radio. Like its pipes, it
// reads no clock. A Link is safe for concurrent use.
type Link struct {
	prof     Profile
	sh       shared
	up, down *Pipe
}

// NewLink returns a link with the profile's parameters, its random sources
// seeded from seed.
func NewLink(prof Profile, seed uint64) (*Link, error) {
	if err := prof.Validate(); err != nil {
		return nil, fmt.Errorf("new link: %w", err)
	}
	l := &Link{prof: prof}
	l.sh.radio.rrc = prof.RRCInactivity
	l.up = newPipe(&l.sh, prof.Up, seed, streamUp)
	l.down = newPipe(&l.sh, prof.Down, seed, streamDown)
	return l, nil
}

// Profile returns the link's profile.
func (l *Link) Profile() Profile { return l.prof }

// Up is the device-to-server direction.
func (l *Link) Up() *Pipe { return l.up }

// Down is the server-to-device direction.
func (l *Link) Down() *Pipe { return l.down }

// Outage drops every packet sent in [from, until), in both directions.
// Outages may overlap.
func (l *Link) Outage(from, until time.Time) {
	if !until.After(from) {
		return
	}
	l.sh.mu.Lock()
	defer l.sh.mu.Unlock()
	l.sh.outages = append(l.sh.outages, window{from, until})
}

// EndOutages ends every outage at the given time: packets sent from then
// on pass.
func (l *Link) EndOutages(at time.Time) {
	l.sh.mu.Lock()
	defer l.sh.mu.Unlock()
	kept := l.sh.outages[:0]
	for _, w := range l.sh.outages {
		if w.until.After(at) {
			w.until = at
		}
		if w.until.After(w.from) {
			kept = append(kept, w)
		}
	}
	clear(l.sh.outages[len(kept):])
	l.sh.outages = kept
}

// Connected is the radio-connected time so far: the union over both
// directions of [air start, air end + RRC inactivity]. It includes the
// inactivity tail after the last packet even where that lies ahead of the
// latest send time, since the radio stays connected for it whatever
// happens next.
func (l *Link) Connected() time.Duration {
	l.sh.mu.Lock()
	defer l.sh.mu.Unlock()
	return l.sh.radio.connected()
}

// Stats is a snapshot of a link's counters.
type Stats struct {
	Up, Down DirStats
	// Connected is the radio-connected time (see Link.Connected).
	Connected time.Duration
}

// Stats returns a snapshot of both directions and the radio time, taken
// atomically.
func (l *Link) Stats() Stats {
	l.sh.mu.Lock()
	defer l.sh.mu.Unlock()
	return Stats{Up: l.up.stats, Down: l.down.stats, Connected: l.sh.radio.connected()}
}

// radio accumulates the union of connected intervals. Intervals arrive with
// non-decreasing starts, except that one may start where an earlier one of
// the same pipe ended; both keep the union of the current run of
// overlapping intervals exact, so only that run needs keeping.
type radio struct {
	rrc        time.Duration
	closed     time.Duration // total of the runs that are over
	start, end time.Time     // the current run
	have       bool
}

func (r *radio) add(start, end time.Time) {
	end = end.Add(r.rrc)
	switch {
	case !r.have:
		r.start, r.end, r.have = start, end, true
	case start.After(r.end):
		r.closed += r.end.Sub(r.start)
		r.start, r.end = start, end
	default:
		if start.Before(r.start) {
			r.start = start
		}
		if end.After(r.end) {
			r.end = end
		}
	}
}

func (r *radio) connected() time.Duration {
	if !r.have {
		return 0
	}
	return r.closed + r.end.Sub(r.start)
}

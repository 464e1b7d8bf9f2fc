package link

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Count is a number of packets and their UDP payload bytes.
type Count struct {
	Packets int64
	Bytes   int64
}

func (c *Count) add(bytes int64) {
	c.Packets++
	c.Bytes += bytes
}

// Plus returns the sum of two counts.
func (c Count) Plus(o Count) Count {
	return Count{Packets: c.Packets + o.Packets, Bytes: c.Bytes + o.Bytes}
}

// DirStats counts what one direction did. Counts are in UDP payload bytes
// (DTLS and CoAP included); AirBytes adds the IP and UDP headers.
// Offered = Delivered + Dropped().
type DirStats struct {
	Offered   Count
	Delivered Count
	// Drops by cause: Loss (random) and Burst (Gilbert-Elliott) were lost
	// on the air; MTU, Queue and Outage never reached it.
	Loss   Count
	Burst  Count
	MTU    Count
	Queue  Count
	Outage Count
	// AirBytes are the IP bytes (payload + IPv4Overhead) of every packet
	// that went on the air, delivered or lost; AirTime is their
	// serialization time.
	AirBytes int64
	AirTime  time.Duration
}

// Dropped is the sum of the drops of every cause.
func (s DirStats) Dropped() Count {
	return s.Loss.Plus(s.Burst).Plus(s.MTU).Plus(s.Queue).Plus(s.Outage)
}

// shared is the state the two pipes of a Link have in common. Its mutex
// guards both pipes too.
type shared struct {
	mu      sync.Mutex
	last    time.Time // latest send time seen; earlier ones are moved up to it
	outages []window
	radio   radio
}

type window struct{ from, until time.Time }

// clamp makes send times non-decreasing across the pipes of a link, which
// the radio-time union and outage pruning rely on. Callers hold mu.
func (sh *shared) clamp(now time.Time) time.Time {
	if now.Before(sh.last) {
		return sh.last
	}
	sh.last = now
	return now
}

// inOutage reports whether now falls in an outage window, forgetting the
// windows that are over for good. Callers hold mu.
func (sh *shared) inOutage(now time.Time) bool {
	in := false
	kept := sh.outages[:0]
	for _, w := range sh.outages {
		if !w.until.After(now) {
			continue
		}
		kept = append(kept, w)
		if !now.Before(w.from) {
			in = true
		}
	}
	clear(sh.outages[len(kept):])
	sh.outages = kept
	return in
}

// Pipe is one direction of a link. It decides for every packet whether it
// is dropped and when it is delivered, from the send times it is given and
// a seeded random source: the same seed and the same calls give the same
// answers. A Pipe is safe for concurrent use.
type Pipe struct {
	sh  *shared
	p   Params
	rng *rand.Rand

	busyUntil   time.Time // when the last packet accepted leaves the air
	lastDeliver time.Time // delivery time of the last delivered packet
	bad         bool      // Gilbert-Elliott state
	stats       DirStats
}

// NewPipe returns a standalone pipe; the pipes of a Link come from NewLink.
func NewPipe(p Params, seed uint64) (*Pipe, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("new pipe: %w", err)
	}
	return newPipe(&shared{}, p, seed, 0), nil
}

func newPipe(sh *shared, p Params, seed, stream uint64) *Pipe {
	return &Pipe{sh: sh, p: p, rng: rand.New(rand.NewPCG(seed, stream))}
}

// Params returns the pipe's parameters.
func (p *Pipe) Params() Params { return p.p }

// Send offers a packet of size bytes of UDP payload at time now and
// returns when it is delivered, or ok = false if it is dropped. Send times
// must not go backwards across the pipes of a link; one that does is
// treated as the latest time seen so far.
func (p *Pipe) Send(now time.Time, size int) (deliverAt time.Time, ok bool) {
	sh := p.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now = sh.clamp(now)
	payload := int64(max(size, 0))
	ip := payload + IPv4Overhead
	p.stats.Offered.add(payload)

	if len(sh.outages) > 0 && sh.inOutage(now) {
		p.stats.Outage.add(payload)
		return time.Time{}, false
	}
	if p.p.MTU > 0 && ip > int64(p.p.MTU) {
		p.stats.MTU.add(payload)
		return time.Time{}, false
	}
	start := now
	if p.busyUntil.After(now) {
		start = p.busyUntil
		if p.p.QueueBytes > 0 {
			backlog := float64(start.Sub(now)) * float64(p.p.Rate) / 8e9
			if backlog+float64(ip) > float64(p.p.QueueBytes) {
				p.stats.Queue.add(payload)
				return time.Time{}, false
			}
		}
	}

	air := serialization(ip, p.p.Rate)
	end := start.Add(air)
	p.busyUntil = end
	p.stats.AirBytes += ip
	p.stats.AirTime += air
	sh.radio.add(start, end)

	if g := p.p.Burst; g.Enabled() {
		lost := p.bad && p.rng.Float64() < g.LossBad
		if p.bad {
			p.bad = p.rng.Float64() >= g.PBadGood
		} else {
			p.bad = p.rng.Float64() < g.PGoodBad
		}
		if lost {
			p.stats.Burst.add(payload)
			return time.Time{}, false
		}
	}
	if p.p.Loss > 0 && p.rng.Float64() < p.p.Loss {
		p.stats.Loss.add(payload)
		return time.Time{}, false
	}

	at := end.Add(p.p.Delay)
	if j := int64(p.p.Jitter); j > 0 {
		at = at.Add(time.Duration(p.rng.Int64N(2*j+1) - j))
	}
	if !p.p.Reorder && at.Before(p.lastDeliver) {
		at = p.lastDeliver
	}
	if at.After(p.lastDeliver) {
		p.lastDeliver = at
	}
	p.stats.Delivered.add(payload)
	return at, true
}

// Stats returns a snapshot of the pipe's counters.
func (p *Pipe) Stats() DirStats {
	p.sh.mu.Lock()
	defer p.sh.mu.Unlock()
	return p.stats
}

// serialization is the time ipBytes occupy a link of rate bit/s, rounded
// up to the nanosecond.
func serialization(ipBytes, rate int64) time.Duration {
	if rate <= 0 {
		return 0
	}
	bits := ipBytes * 8
	if bits <= (math.MaxInt64-rate)/1e9 {
		return time.Duration((bits*1e9 + rate - 1) / rate)
	}
	return time.Duration(math.Ceil(float64(bits) * 1e9 / float64(rate)))
}

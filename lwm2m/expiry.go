package lwm2m

import (
	"context"
	"time"
)

// Lifetime expiry uses one min-heap of live registrations ordered by
// expiry and one goroutine (Run) with one timer set to the earliest: no
// timer or goroutine per device, so a hundred thousand idle registrations
// cost only their heap slots.

// expiryHeap implements heap.Interface over the live entries; each entry
// knows its index so that Update and De-register fix or remove it in
// O(log n).
type expiryHeap []*entry

func (h expiryHeap) Len() int { return len(h) }

func (h expiryHeap) Less(i, j int) bool {
	return h[i].reg.Expires().Before(h[j].reg.Expires())
}

func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *expiryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *expiryHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil // let the entry be collected
	e.index = -1
	*h = old[:n-1]
	return e
}

// Run removes registrations whose lifetime has passed until ctx is done,
// then returns ctx.Err(). Call it once, on a goroutine its caller owns.
func (r *Registry) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var fire <-chan time.Time
		if next, ok := r.nextExpiry(); ok {
			timer.Reset(max(next.Sub(r.now()), 0))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.wake:
		case <-fire:
			r.expire(ctx, r.now())
		}
		// Since Go 1.23 Stop leaves no stale tick behind for the next Reset.
		timer.Stop()
	}
}

// nextExpiry returns the earliest expiry, if any registration is live.
func (r *Registry) nextExpiry() (time.Time, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.expiry) == 0 {
		return time.Time{}, false
	}
	return r.expiry[0].reg.Expires(), true
}

// expire removes every registration expired at now, from the store and
// from memory, and returns how many it removed. Run calls it; tests call
// it with the time they want.
func (r *Registry) expire(ctx context.Context, now time.Time) int {
	n := 0
	for _, reg := range r.due(now) {
		if r.expireOne(ctx, reg.ID, reg.Endpoint, now) {
			n++
		}
	}
	return n
}

// due lists the registrations expired at now. It walks only the part of
// the heap that is due: below an entry that is not due, none is.
func (r *Registry) due(now time.Time) []Registration {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var regs []Registration
	stack := []int{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(r.expiry) || r.expiry[i].reg.Expires().After(now) {
			continue
		}
		regs = append(regs, r.expiry[i].reg)
		stack = append(stack, 2*i+1, 2*i+2)
	}
	return regs
}

// expireOne removes one expired registration unless an Update renewed it
// (or another request removed it) since due listed it. A store failure
// does not keep a dead registration alive: it is logged, and Load drops
// the leftover record as expired.
func (r *Registry) expireOne(ctx context.Context, id, ep string, now time.Time) bool {
	unlock := r.lockEndpoint(ep)
	defer unlock()
	reg, ok := r.lookupID(id)
	if !ok || reg.Expires().After(now) {
		return false
	}
	if r.store != nil {
		if err := r.store.DeleteRegistration(ctx, id); err != nil {
			r.log.Warn().Err(err).Str("endpoint", ep).Str("id", id).Msg("expired registration left in store")
		}
	}
	r.remove(id)
	r.event(r.log.Info(), reg, reg.Address).Time("expires", reg.Expires()).Msg("registration expired")
	if r.observer != nil {
		r.observer.Deregistered(reg)
	}
	return true
}

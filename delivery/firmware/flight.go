package firmware

import (
	"context"
	"errors"
	"sync"
)

// errFlightPanicked is what waiters get when the call they waited for
// panicked (the panic goes on in the caller that ran it).
var errFlightPanicked = errors.New("package build panicked")

// flight runs one call per key at a time: callers that ask for a key whose
// call is running wait for its result instead of running their own (what
// golang.org/x/sync/singleflight does, with waiters that can give up).
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flightCall[V]
}

type flightCall[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// do runs fn for key, or waits for the run already in progress. The
// caller that runs fn does so in its own goroutine and to the end, even if
// its ctx is done meanwhile; a waiter returns ctx.Err() when its ctx ends
// first.
func (g *flight[K, V]) do(ctx context.Context, key K, fn func() (V, error)) (V, error) {
	g.mu.Lock()
	if c, ok := g.calls[key]; ok {
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.v, c.err
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
	if g.calls == nil {
		g.calls = map[K]*flightCall[V]{}
	}
	c := &flightCall[V]{done: make(chan struct{}), err: errFlightPanicked}
	g.calls[key] = c
	g.mu.Unlock()

	defer func() {
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.v, c.err = fn()
	return c.v, c.err
}

package firmware

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/fotahub/fota/delivery/manifest"
)

func TestByteCache(t *testing.T) {
	c := newByteCache(10)
	id := func(b byte) manifest.Digest { return manifest.Digest{b} }
	c.add(id(1), make([]byte, 4), c.generation())
	c.add(id(2), make([]byte, 4), c.generation())
	if _, ok := c.get(id(1)); !ok { // 1 is now the most recently used
		t.Fatal("entry 1 missing")
	}
	c.add(id(3), make([]byte, 4), c.generation()) // over budget: 2 goes
	if _, ok := c.get(id(2)); ok {
		t.Error("least recently used entry kept over the budget")
	}
	if _, ok := c.get(id(1)); !ok {
		t.Error("recently used entry evicted")
	}
	if c.bytes() != 8 {
		t.Errorf("cache holds %d bytes, want 8", c.bytes())
	}
	c.add(id(4), make([]byte, 11), c.generation())
	if _, ok := c.get(id(4)); ok {
		t.Error("entry larger than the budget kept")
	}
	gen := c.generation()
	c.clear()
	c.add(id(5), make([]byte, 1), gen) // loaded before the clear
	if _, ok := c.get(id(5)); ok || c.bytes() != 0 {
		t.Error("a load from before clear was kept")
	}
	c.remove(id(9)) // unknown: nothing happens
}

func TestFlight(t *testing.T) {
	var g flight[string, int]
	release := make(chan struct{})
	entered := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]int, 5)
	wg.Go(func() {
		results[0], _ = g.do(context.Background(), "k", func() (int, error) {
			close(entered)
			<-release
			return 42, nil
		})
	})
	<-entered
	for i := 1; i < len(results); i++ {
		wg.Go(func() {
			results[i], _ = g.do(context.Background(), "k", func() (int, error) { return -1, nil })
		})
	}
	// A waiter whose context ends gives up.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.do(ctx, "k", func() (int, error) { return -1, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter = %v", err)
	}
	close(release)
	wg.Wait()
	for i, r := range results {
		if r != 42 && r != -1 { // a late caller may start its own run
			t.Errorf("caller %d got %d", i, r)
		}
	}
	if results[0] != 42 {
		t.Errorf("leader got %d", results[0])
	}

	// A panic reaches the caller that ran the function; the key is free
	// again afterwards.
	func() {
		defer func() { _ = recover() }()
		_, _ = g.do(context.Background(), "p", func() (int, error) { panic("boom") })
	}()
	if v, err := g.do(context.Background(), "p", func() (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Errorf("after a panic: %d, %v", v, err)
	}
}

package firmware

import (
	"container/list"
	"sync"

	"github.com/fotahub/fota/delivery/manifest"
)

// byteCache keeps the bytes of recently used packages, least recently used
// out first, within a budget of bytes. The slices it hands out are shared:
// nobody may modify them.
type byteCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // of *cacheEntry, most recently used first
	byID  map[manifest.Digest]*list.Element
	// gen counts clears: a load that started before a clear must not put
	// what it read back in.
	gen uint64
}

type cacheEntry struct {
	id   manifest.Digest
	data []byte
}

func newByteCache(max int64) *byteCache {
	return &byteCache{max: max, order: list.New(), byID: map[manifest.Digest]*list.Element{}}
}

func (c *byteCache) get(id manifest.Digest) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).data, true
}

// generation returns the number to pass to add for bytes about to be
// loaded.
func (c *byteCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// add keeps data unless a clear happened since gen was taken or data alone
// exceeds the budget.
func (c *byteCache) add(id manifest.Digest, data []byte, gen uint64) {
	n := int64(len(data))
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || n > c.max {
		return
	}
	if e, ok := c.byID[id]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byID[id] = c.order.PushFront(&cacheEntry{id: id, data: data})
	c.size += n
	for c.size > c.max {
		c.removeElement(c.order.Back())
	}
}

func (c *byteCache) remove(id manifest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[id]; ok {
		c.removeElement(e)
	}
}

func (c *byteCache) removeElement(e *list.Element) {
	ce := c.order.Remove(e).(*cacheEntry)
	delete(c.byID, ce.id)
	c.size -= int64(len(ce.data))
}

// clear drops everything, and whatever loads are in progress.
func (c *byteCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.byID)
	c.size = 0
	c.gen++
}

// bytes returns the bytes held, for tests.
func (c *byteCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/delivery/update"
)

var _ update.Store = (*DB)(nil)

// updateRecord is the on-disk form of an update: one per endpoint, the
// current or last one.
type updateRecord struct {
	Endpoint    string          `json:"endpoint"`
	Image       string          `json:"image"`
	Target      manifest.Digest `json:"target"`
	Version     string          `json:"version,omitempty"`
	Class       string          `json:"class,omitempty"`
	Push        bool            `json:"push,omitempty"`
	Full        bool            `json:"full,omitempty"`
	Campaign    string          `json:"campaign,omitempty"`
	FellBack    bool            `json:"fell_back,omitempty"`
	Package     manifest.Digest `json:"package"`
	Format      manifest.Format `json:"format,omitempty"`
	Raw         bool            `json:"raw,omitempty"`
	Size        int64           `json:"size,omitempty"`
	FullSize    int64           `json:"full_size,omitempty"`
	Path        string          `json:"path,omitempty"`
	Phase       update.Phase    `json:"phase"`
	Result      int             `json:"result,omitempty"`
	Error       string          `json:"error,omitempty"`
	BytesServed int64           `json:"bytes_served,omitempty"`
	BlockSize   int             `json:"block_size,omitempty"`
	MaxBlock    int             `json:"max_block,omitempty"`
	Retries     int             `json:"retries,omitempty"`
	RetryLimit  int             `json:"retry_limit,omitempty"`
	Started     time.Time       `json:"started"`
	Changed     time.Time       `json:"changed"`
	Executed    time.Time       `json:"executed,omitzero"`
	Deadline    time.Time       `json:"deadline"`
}

// maxUpdateHistory is how many earlier updates update_history keeps per
// endpoint; PutUpdate removes the oldest beyond it.
const maxUpdateHistory = 20

// PutUpdate stores the endpoint's update, replacing its previous one.
// When the previous one is another update (another Started; the driver
// rewrites an update as it progresses and keeps its Started), it moves to
// the endpoint's history, in the same transaction, and the history loses
// its oldest records beyond maxUpdateHistory.
func (db *DB) PutUpdate(ctx context.Context, u update.Update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if u.Endpoint == "" {
		return fmt.Errorf("put update: empty endpoint")
	}
	val, err := json.Marshal(updateRecord(u))
	if err != nil {
		return fmt.Errorf("put update of %q: %w", u.Endpoint, err)
	}
	key := []byte(u.Endpoint)
	// Batch may run the function again, in a new transaction, after
	// rolling the first one back: it reads the previous record afresh and
	// writes the same keys and values, so a rerun is harmless.
	err = db.bolt.Batch(func(tx *bolt.Tx) error {
		updates := tx.Bucket(bucketUpdates)
		if prev := updates.Get(key); prev != nil {
			if err := archiveUpdate(tx.Bucket(bucketUpdateHistory), key, bytes.Clone(prev), u.Started); err != nil {
				return err
			}
		}
		return updates.Put(key, val)
	})
	if err != nil {
		return fmt.Errorf("put update of %q: %w", u.Endpoint, boltErr(err))
	}
	return nil
}

// archiveUpdate appends prev, the endpoint's current update record, to its
// history unless it is the update that started at started (which is being
// rewritten), and prunes the history to maxUpdateHistory records.
func archiveUpdate(history *bolt.Bucket, ep, prev []byte, started time.Time) error {
	var head struct {
		Started time.Time `json:"started"`
	}
	if err := json.Unmarshal(prev, &head); err != nil {
		return fmt.Errorf("current update record does not decode: %v: %w", err, ErrCorrupt)
	}
	if head.Started.Equal(started) {
		return nil
	}
	if err := history.Put(historyKey(ep, head.Started), prev); err != nil {
		return fmt.Errorf("append to update history: %w", err)
	}
	keys := historyKeys(history, ep)
	for _, k := range keys[:max(0, len(keys)-maxUpdateHistory)] {
		if err := history.Delete(k); err != nil {
			return fmt.Errorf("prune update history: %w", err)
		}
	}
	return nil
}

// historyKey is the update_history key of the endpoint's update that
// started at started: the endpoint, a zero byte and the big-endian
// nanoseconds since 1970, so that an endpoint's keys walk oldest first.
// A start those nanoseconds cannot hold (before 1970, such as the zero
// time, or after 2262; the driver writes none) is clamped to the nearer
// end.
func historyKey(ep []byte, started time.Time) []byte {
	var ns uint64
	switch {
	case started.Before(time.Unix(0, 0)):
	case started.After(time.Unix(0, math.MaxInt64)):
		ns = math.MaxInt64
	default:
		ns = uint64(started.UnixNano())
	}
	k := make([]byte, 0, len(ep)+9)
	k = append(append(k, ep...), 0)
	return binary.BigEndian.AppendUint64(k, ns)
}

// historyKeys returns the endpoint's update_history keys, oldest first.
// Only keys exactly 8 bytes longer than the prefix are the endpoint's, so
// another endpoint that begins with ep and a zero byte (LwM2M endpoint
// names have none) would not be mixed in.
func historyKeys(history *bolt.Bucket, ep []byte) [][]byte {
	prefix := append(bytes.Clone(ep), 0)
	var keys [][]byte
	c := history.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) == len(prefix)+8 {
			keys = append(keys, bytes.Clone(k))
		}
	}
	return keys
}

// UpdateHistory returns the endpoint's earlier updates, newest first:
// those PutUpdate replaced with another update, at most maxUpdateHistory.
// The current update (see Updates) is not among them.
func (db *DB) UpdateHistory(ctx context.Context, ep string) ([]update.Update, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var us []update.Update
	err := db.bolt.View(func(tx *bolt.Tx) error {
		history := tx.Bucket(bucketUpdateHistory)
		keys := historyKeys(history, []byte(ep))
		for i := len(keys) - 1; i >= 0; i-- {
			var rec updateRecord
			if err := json.Unmarshal(history.Get(keys[i]), &rec); err != nil {
				return fmt.Errorf("update history record %x does not decode: %v: %w", keys[i][len(ep)+1:], err, ErrCorrupt)
			}
			us = append(us, update.Update(rec))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update history of %q: %w", ep, boltErr(err))
	}
	return us, nil
}

// Updates returns every stored update, in endpoint order.
func (db *DB) Updates(ctx context.Context) ([]update.Update, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var us []update.Update
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUpdates).ForEach(func(k, v []byte) error {
			var rec updateRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("update %q: %w", k, err)
			}
			us = append(us, update.Update(rec))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list updates: %w", boltErr(err))
	}
	return us, nil
}

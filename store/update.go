package store

import (
	"context"
	"encoding/json"
	"fmt"
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

// PutUpdate stores the endpoint's update, replacing its previous one.
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
	err = db.bolt.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucketUpdates).Put(key, val) })
	if err != nil {
		return fmt.Errorf("put update of %q: %w", u.Endpoint, boltErr(err))
	}
	return nil
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

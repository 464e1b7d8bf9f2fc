package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fotahub/fota/lwm2m"
)

// PutRegistration creates or replaces the registration with r.ID. Writes
// from concurrent callers share one commit (bbolt's Batch, tuned by
// Options.MaxBatchSize and MaxBatchDelay); the registration is on disk,
// fsynced, when PutRegistration returns nil.
//
// ctx is checked on entry only: once the write joins a batch, it either
// commits or fails with the batch, so a nil error always means stored.
func (db *DB) PutRegistration(ctx context.Context, r lwm2m.Registration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.ID == "" {
		return fmt.Errorf("put registration of %q: empty registration id", r.Endpoint)
	}
	val, err := encodeRegistration(r)
	if err != nil {
		return fmt.Errorf("put registration %q: %w", r.ID, err)
	}
	key := []byte(r.ID)
	// Batch may run this function more than once; it must stay idempotent.
	err = db.bolt.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRegistrations).Put(key, val)
	})
	if err != nil {
		return fmt.Errorf("put registration %q: %w", r.ID, boltErr(err))
	}
	return nil
}

// DeleteRegistration removes the registration, batched like
// PutRegistration and durable when it returns nil. Deleting a missing
// registration is not an error.
func (db *DB) DeleteRegistration(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id == "" {
		return nil // no registration has an empty ID
	}
	key := []byte(id)
	err := db.bolt.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRegistrations).Delete(key)
	})
	if err != nil {
		return fmt.Errorf("delete registration %q: %w", id, boltErr(err))
	}
	return nil
}

// Registrations returns every stored registration ordered by ID.
func (db *DB) Registrations(ctx context.Context) ([]lwm2m.Registration, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rs []lwm2m.Registration
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRegistrations).ForEach(func(k, v []byte) error {
			r, err := decodeRegistration(v)
			if err != nil {
				return fmt.Errorf("registration %q: %w", k, err)
			}
			rs = append(rs, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list registrations: %w", boltErr(err))
	}
	return rs, nil
}

package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fotahub/fota/delivery/firmware"
)

var _ firmware.ClassStore = (*DB)(nil)

// classRecordVersion is the layout of a classes value.
const classRecordVersion = 1

type classRecord struct {
	V         int              `json:"v"`
	Name      string           `json:"name"`
	Profile   firmware.Profile `json:"profile"`
	Delta     bool             `json:"delta,omitempty"`
	Method    string           `json:"method"`
	BlockSize int              `json:"block_size,omitempty"`
	Scheme    string           `json:"scheme"`
	Deadline  time.Duration    `json:"deadline_ns,omitempty"`
	Success   []string         `json:"success"`
	Changed   time.Time        `json:"changed"`
}

// PutClass creates or replaces the declared class with c.Name.
func (db *DB) PutClass(ctx context.Context, c firmware.Class) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.Name == "" {
		return errors.New("put class: empty name")
	}
	val, err := json.Marshal(classRecord{V: classRecordVersion, Name: c.Name, Profile: c.Profile, Delta: c.Delta,
		Method: c.Method, BlockSize: c.BlockSize, Scheme: c.Scheme, Deadline: c.Deadline, Success: c.Success,
		Changed: c.Changed.UTC()})
	if err != nil {
		return fmt.Errorf("put class %q: %w", c.Name, err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketClasses).Put([]byte(c.Name), val) })
	if err != nil {
		return fmt.Errorf("put class %q: %w", c.Name, boltErr(err))
	}
	return nil
}

// Class returns the declared class, or an error wrapping
// firmware.ErrNotFound.
func (db *DB) Class(ctx context.Context, name string) (firmware.Class, error) {
	if err := ctx.Err(); err != nil {
		return firmware.Class{}, err
	}
	var c firmware.Class
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketClasses).Get([]byte(name))
		if v == nil {
			return firmware.ErrNotFound
		}
		var err error
		c, err = decodeClass(v)
		return err
	})
	if err != nil {
		return firmware.Class{}, fmt.Errorf("class %q: %w", name, boltErr(err))
	}
	return c, nil
}

// Classes returns every declared class, by name.
func (db *DB) Classes(ctx context.Context) ([]firmware.Class, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var cs []firmware.Class
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketClasses).ForEach(func(k, v []byte) error {
			c, err := decodeClass(v)
			if err != nil {
				return fmt.Errorf("class %q: %w", k, err)
			}
			cs = append(cs, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list classes: %w", boltErr(err))
	}
	return cs, nil
}

// DeleteClass removes the declared class, or returns an error wrapping
// firmware.ErrNotFound.
func (db *DB) DeleteClass(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketClasses)
		if b.Get([]byte(name)) == nil {
			return firmware.ErrNotFound
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("delete class %q: %w", name, boltErr(err))
	}
	return nil
}

func decodeClass(b []byte) (firmware.Class, error) {
	var rec classRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return firmware.Class{}, fmt.Errorf("class record does not decode: %v: %w", err, ErrCorrupt)
	}
	if rec.V != classRecordVersion {
		return firmware.Class{}, fmt.Errorf("class record version %d, want %d: %w", rec.V, classRecordVersion, ErrCorrupt)
	}
	return firmware.Class{Name: rec.Name, Profile: rec.Profile, Delta: rec.Delta, Method: rec.Method,
		BlockSize: rec.BlockSize, Scheme: rec.Scheme, Deadline: rec.Deadline, Success: rec.Success,
		Declared: true, Changed: rec.Changed}, nil
}

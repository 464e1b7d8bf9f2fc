package store

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fotahub/fota/lwm2m"
)

var _ lwm2m.InfoStore = (*DB)(nil)

// PutDeviceInfo creates or replaces what the device last reported about
// itself. Writes are batched like PutRegistration's (every device that
// registers brings one) and durable when PutDeviceInfo returns nil.
func (db *DB) PutDeviceInfo(ctx context.Context, info lwm2m.DeviceInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if info.Endpoint == "" {
		return errors.New("put device info: empty endpoint name")
	}
	val, err := encodeDeviceInfo(info)
	if err != nil {
		return fmt.Errorf("put device info of %q: %w", info.Endpoint, err)
	}
	key := []byte(info.Endpoint)
	// Batch may run this function more than once; it must stay idempotent.
	err = db.bolt.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucketDeviceInfo).Put(key, val) })
	if err != nil {
		return fmt.Errorf("put device info of %q: %w", info.Endpoint, boltErr(err))
	}
	return nil
}

// DeviceInfos returns every stored device info, in endpoint order.
func (db *DB) DeviceInfos(ctx context.Context) ([]lwm2m.DeviceInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var infos []lwm2m.DeviceInfo
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeviceInfo).ForEach(func(k, v []byte) error {
			info, err := decodeDeviceInfo(v)
			if err != nil {
				return fmt.Errorf("device info %q: %w", k, err)
			}
			infos = append(infos, info)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list device infos: %w", boltErr(err))
	}
	return infos, nil
}

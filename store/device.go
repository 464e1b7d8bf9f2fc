package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fotahub/fota/lwm2m"
)

// PutDevice creates or replaces the device with d.Endpoint and keeps the
// PSK identity index in step, in one transaction. It fails with an error
// wrapping lwm2m.ErrExists when d.PSKIdentity belongs to another endpoint.
func (db *DB) PutDevice(ctx context.Context, d lwm2m.Device) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.Endpoint == "" {
		return errors.New("put device: empty endpoint name")
	}
	val, err := encodeDevice(d)
	if err != nil {
		return fmt.Errorf("put device %q: %w", d.Endpoint, err)
	}
	ep := []byte(d.Endpoint)
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		// The wait for the writer lock may have outlasted the caller.
		if err := ctx.Err(); err != nil {
			return err
		}
		devices, index := tx.Bucket(bucketDevices), tx.Bucket(bucketPSKIdentities)
		if d.PSKIdentity != "" {
			if owner := index.Get([]byte(d.PSKIdentity)); owner != nil && !bytes.Equal(owner, ep) {
				return fmt.Errorf("psk identity %q is held by device %q: %w", d.PSKIdentity, owner, lwm2m.ErrExists)
			}
		}
		if old := devices.Get(ep); old != nil {
			prev, err := decodeDevice(old)
			if err != nil {
				return fmt.Errorf("read previous record: %w", err)
			}
			if prev.PSKIdentity != "" && prev.PSKIdentity != d.PSKIdentity {
				if err := deleteIndexEntry(index, prev.PSKIdentity, ep); err != nil {
					return err
				}
			}
		}
		if d.PSKIdentity != "" {
			if err := index.Put([]byte(d.PSKIdentity), ep); err != nil {
				return fmt.Errorf("index psk identity %q: %w", d.PSKIdentity, err)
			}
		}
		return devices.Put(ep, val)
	})
	if err != nil {
		return fmt.Errorf("put device %q: %w", d.Endpoint, boltErr(err))
	}
	return nil
}

// Device returns the device with the endpoint name, or an error wrapping
// lwm2m.ErrNotFound.
func (db *DB) Device(ctx context.Context, endpoint string) (lwm2m.Device, error) {
	if err := ctx.Err(); err != nil {
		return lwm2m.Device{}, err
	}
	var d lwm2m.Device
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDevices).Get([]byte(endpoint))
		if v == nil {
			return lwm2m.ErrNotFound
		}
		var err error
		d, err = decodeDevice(v)
		return err
	})
	if err != nil {
		return lwm2m.Device{}, fmt.Errorf("device %q: %w", endpoint, boltErr(err))
	}
	return d, nil
}

// DeviceByPSKIdentity returns the device holding the PSK identity, or an
// error wrapping lwm2m.ErrNotFound.
func (db *DB) DeviceByPSKIdentity(ctx context.Context, identity string) (lwm2m.Device, error) {
	if err := ctx.Err(); err != nil {
		return lwm2m.Device{}, err
	}
	var d lwm2m.Device
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if identity == "" {
			return lwm2m.ErrNotFound
		}
		ep := tx.Bucket(bucketPSKIdentities).Get([]byte(identity))
		if ep == nil {
			return lwm2m.ErrNotFound
		}
		v := tx.Bucket(bucketDevices).Get(ep)
		if v == nil {
			return fmt.Errorf("index names device %q, which does not exist: %w", ep, ErrCorrupt)
		}
		var err error
		if d, err = decodeDevice(v); err != nil {
			return err
		}
		if d.PSKIdentity != identity {
			return fmt.Errorf("index names device %q, which holds another identity: %w", ep, ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return lwm2m.Device{}, fmt.Errorf("device by psk identity %q: %w", identity, boltErr(err))
	}
	return d, nil
}

// DeleteDevice removes the device and its PSK identity index entry, or
// returns an error wrapping lwm2m.ErrNotFound.
func (db *DB) DeleteDevice(ctx context.Context, endpoint string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ep := []byte(endpoint)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		devices := tx.Bucket(bucketDevices)
		v := devices.Get(ep)
		if v == nil {
			return lwm2m.ErrNotFound
		}
		d, err := decodeDevice(v)
		if err != nil {
			return err
		}
		if d.PSKIdentity != "" {
			if err := deleteIndexEntry(tx.Bucket(bucketPSKIdentities), d.PSKIdentity, ep); err != nil {
				return err
			}
		}
		return devices.Delete(ep)
	})
	if err != nil {
		return fmt.Errorf("delete device %q: %w", endpoint, boltErr(err))
	}
	return nil
}

// Devices returns every device ordered by endpoint name (byte order,
// which is Go's string order).
func (db *DB) Devices(ctx context.Context) ([]lwm2m.Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var ds []lwm2m.Device
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d, err := decodeDevice(v)
			if err != nil {
				return fmt.Errorf("device %q: %w", k, err)
			}
			ds = append(ds, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", boltErr(err))
	}
	return ds, nil
}

// deleteIndexEntry removes identity from the index if it points at ep.
// An entry pointing elsewhere is left alone: it belongs to another device.
func deleteIndexEntry(index *bolt.Bucket, identity string, ep []byte) error {
	key := []byte(identity)
	if owner := index.Get(key); owner != nil && !bytes.Equal(owner, ep) {
		return nil
	}
	if err := index.Delete(key); err != nil {
		return fmt.Errorf("unindex psk identity %q: %w", identity, err)
	}
	return nil
}

package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
)

const digestLen = len(manifest.Digest{})

// packageKey is the package_keys key of k: the 32-byte precursor digest
// (zero for a full image), the 32-byte image digest and the format's name.
func packageKey(k firmware.PackageKey) ([]byte, error) {
	name, ok := packageFormats[k.Format]
	if !ok {
		return nil, fmt.Errorf("unknown package format %d", uint8(k.Format))
	}
	b := make([]byte, 0, 2*digestLen+len(name))
	b = append(b, k.From[:]...)
	b = append(b, k.To[:]...)
	return append(b, name...), nil
}

// splitPackageKey is the inverse of packageKey; the slices alias k.
func splitPackageKey(k []byte) (from, to []byte, format manifest.Format, ok bool) {
	if len(k) <= 2*digestLen {
		return nil, nil, 0, false
	}
	format, ok = packageFormatOf(string(k[2*digestLen:]))
	return k[:digestLen], k[digestLen : 2*digestLen], format, ok
}

// PutPackage stores the package and its bytes under its ID and its key,
// replacing the package stored under the key before; see
// firmware.PackageStore.
func (db *DB) PutPackage(ctx context.Context, p firmware.Package, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m := &p.Manifest
	key, err := packageKey(p.Key())
	switch {
	case err != nil:
		return fmt.Errorf("put package %s: %w", p.ID, err)
	case int64(len(data)) != p.Size || sha256.Sum256(data) != p.ID:
		return fmt.Errorf("put package %s: the %d bytes given are not the package's (size %d)", p.ID, len(data), p.Size)
	case m.Format.IsDelta() == (m.PrecursorDigest == manifest.Digest{}):
		return fmt.Errorf("put package %s: a %s package with precursor %s", p.ID, m.Format, m.PrecursorDigest)
	}
	rec, err := encodePackage(p)
	if err != nil {
		return fmt.Errorf("put package %s: %w", p.ID, err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		images := tx.Bucket(bucketImages)
		if images.Get(m.ImageDigest[:]) == nil {
			return fmt.Errorf("image %s: %w", m.ImageDigest, firmware.ErrNotFound)
		}
		if m.Format.IsDelta() && images.Get(m.PrecursorDigest[:]) == nil {
			return fmt.Errorf("precursor image %s: %w", m.PrecursorDigest, firmware.ErrNotFound)
		}
		keys := tx.Bucket(bucketPackageKeys)
		if old := keys.Get(key); old != nil && !bytes.Equal(old, p.ID[:]) {
			if err := deletePackage(tx, bytes.Clone(old)); err != nil {
				return err
			}
		}
		if err := keys.Put(key, p.ID[:]); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPackageData).Put(p.ID[:], data); err != nil {
			return err
		}
		return tx.Bucket(bucketPackages).Put(p.ID[:], rec)
	})
	if err != nil {
		return fmt.Errorf("put package %s (%s): %w", p.ID, p.Key(), boltErr(err))
	}
	return nil
}

// deletePackage removes a package's record and bytes, not its key.
func deletePackage(tx *bolt.Tx, id []byte) error {
	if err := tx.Bucket(bucketPackageData).Delete(id); err != nil {
		return err
	}
	return tx.Bucket(bucketPackages).Delete(id)
}

// PackageFor returns the package stored under key, or an error wrapping
// firmware.ErrNotFound.
func (db *DB) PackageFor(ctx context.Context, key firmware.PackageKey) (firmware.Package, error) {
	if err := ctx.Err(); err != nil {
		return firmware.Package{}, err
	}
	k, err := packageKey(key)
	if err != nil {
		return firmware.Package{}, fmt.Errorf("package %s: %w", key, err)
	}
	var p firmware.Package
	err = db.bolt.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketPackageKeys).Get(k)
		if id == nil {
			return firmware.ErrNotFound
		}
		v := tx.Bucket(bucketPackages).Get(id)
		if v == nil {
			return fmt.Errorf("key names missing package %x: %w", id, ErrCorrupt)
		}
		p, err = decodePackage(v)
		return err
	})
	if err != nil {
		return firmware.Package{}, fmt.Errorf("package %s: %w", key, boltErr(err))
	}
	return p, nil
}

// Package returns the package with the ID, or an error wrapping
// firmware.ErrNotFound.
func (db *DB) Package(ctx context.Context, id manifest.Digest) (firmware.Package, error) {
	if err := ctx.Err(); err != nil {
		return firmware.Package{}, err
	}
	var p firmware.Package
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPackages).Get(id[:])
		if v == nil {
			return firmware.ErrNotFound
		}
		var err error
		p, err = decodePackage(v)
		return err
	})
	if err != nil {
		return firmware.Package{}, fmt.Errorf("package %s: %w", id, boltErr(err))
	}
	return p, nil
}

// PackageData returns a copy of the package's bytes, or an error wrapping
// firmware.ErrNotFound.
func (db *DB) PackageData(ctx context.Context, id manifest.Digest) ([]byte, error) {
	return db.blob(ctx, bucketPackageData, id, "package")
}

package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
)

// versionKey is the image_versions key of a class's version: the class, a
// zero byte, the version. Classes hold no zero byte (PutImage checks).
func versionKey(class, version string) []byte {
	k := make([]byte, 0, len(class)+1+len(version))
	k = append(k, class...)
	k = append(k, 0)
	return append(k, version...)
}

// PutImage stores the image with its bytes and gives it the next sequence
// number of its class, in one transaction; see firmware.ImageStore.
func (db *DB) PutImage(ctx context.Context, img firmware.Image, data []byte) (firmware.Image, bool, error) {
	if err := ctx.Err(); err != nil {
		return firmware.Image{}, false, err
	}
	switch {
	case img.Version == "" || img.Class == "":
		return firmware.Image{}, false, fmt.Errorf("put image %s: empty version or class", img.Digest)
	case strings.IndexByte(img.Class, 0) >= 0:
		return firmware.Image{}, false, fmt.Errorf("put image %s: class holds a zero byte", img.Digest)
	case int64(len(data)) != img.Size || sha256.Sum256(data) != img.Digest:
		return firmware.Image{}, false, fmt.Errorf("put image %s: the %d bytes given are not the image's (size %d)", img.Digest, len(data), img.Size)
	}
	var stored firmware.Image
	created := false
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		images := tx.Bucket(bucketImages)
		key := img.Digest[:]
		if v := images.Get(key); v != nil {
			old, err := decodeImage(v)
			if err != nil {
				return err
			}
			if old.Version != img.Version || old.Class != img.Class {
				return fmt.Errorf("the same bytes are stored as version %q of class %q: %w", old.Version, old.Class, firmware.ErrConflict)
			}
			stored = old
			return nil
		}
		versions := tx.Bucket(bucketImageVersions)
		vkey := versionKey(img.Class, img.Version)
		if other := versions.Get(vkey); other != nil {
			return fmt.Errorf("version %q of class %q is image %x: %w", img.Version, img.Class, other, firmware.ErrConflict)
		}
		seqs := tx.Bucket(bucketClassSequences)
		var last uint64
		if v := seqs.Get([]byte(img.Class)); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("sequence of class %q is %d bytes, want 8: %w", img.Class, len(v), ErrCorrupt)
			}
			last = binary.BigEndian.Uint64(v)
		}
		img.Sequence = last + 1
		rec, err := encodeImage(img)
		if err != nil {
			return err
		}
		if err := seqs.Put([]byte(img.Class), binary.BigEndian.AppendUint64(nil, img.Sequence)); err != nil {
			return err
		}
		if err := versions.Put(vkey, key); err != nil {
			return err
		}
		if err := tx.Bucket(bucketImageData).Put(key, data); err != nil {
			return err
		}
		if err := images.Put(key, rec); err != nil {
			return err
		}
		stored, created = img, true
		return nil
	})
	if err != nil {
		return firmware.Image{}, false, fmt.Errorf("put image %s: %w", img.Digest, boltErr(err))
	}
	return stored, created, nil
}

// Image returns the image's metadata, or an error wrapping
// firmware.ErrNotFound.
func (db *DB) Image(ctx context.Context, digest manifest.Digest) (firmware.Image, error) {
	if err := ctx.Err(); err != nil {
		return firmware.Image{}, err
	}
	var img firmware.Image
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		img, err = getImage(tx, digest[:])
		return err
	})
	if err != nil {
		return firmware.Image{}, fmt.Errorf("image %s: %w", digest, boltErr(err))
	}
	return img, nil
}

// ImageByVersion returns the class's image with the version, or an error
// wrapping firmware.ErrNotFound.
func (db *DB) ImageByVersion(ctx context.Context, class, version string) (firmware.Image, error) {
	if err := ctx.Err(); err != nil {
		return firmware.Image{}, err
	}
	var img firmware.Image
	err := db.bolt.View(func(tx *bolt.Tx) error {
		digest := tx.Bucket(bucketImageVersions).Get(versionKey(class, version))
		if digest == nil {
			return firmware.ErrNotFound
		}
		var err error
		if img, err = getImage(tx, digest); errors.Is(err, firmware.ErrNotFound) {
			return fmt.Errorf("version index names missing image %x: %w", digest, ErrCorrupt)
		}
		return err
	})
	if err != nil {
		return firmware.Image{}, fmt.Errorf("image version %q of class %q: %w", version, class, boltErr(err))
	}
	return img, nil
}

func getImage(tx *bolt.Tx, key []byte) (firmware.Image, error) {
	v := tx.Bucket(bucketImages).Get(key)
	if v == nil {
		return firmware.Image{}, firmware.ErrNotFound
	}
	return decodeImage(v)
}

// Images returns every image's metadata in digest order; the bytes are
// not read.
func (db *DB) Images(ctx context.Context) ([]firmware.Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var imgs []firmware.Image
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			img, err := decodeImage(v)
			if err != nil {
				return fmt.Errorf("image %x: %w", k, err)
			}
			imgs = append(imgs, img)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", boltErr(err))
	}
	return imgs, nil
}

// ImageData returns a copy of the image's bytes, or an error wrapping
// firmware.ErrNotFound.
func (db *DB) ImageData(ctx context.Context, digest manifest.Digest) ([]byte, error) {
	return db.blob(ctx, bucketImageData, digest, "image")
}

// blob copies a value out of a data bucket.
func (db *DB) blob(ctx context.Context, bucket []byte, key manifest.Digest, what string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var data []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get(key[:])
		if v == nil {
			return firmware.ErrNotFound
		}
		data = bytes.Clone(v) // v lives only as long as the transaction
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s data %s: %w", what, key, boltErr(err))
	}
	return data, nil
}

// DeleteImage removes the image, its bytes, its version and every package
// made from or to it, in one transaction; the class's sequence counter
// stays. It returns an error wrapping firmware.ErrNotFound for an unknown
// image.
func (db *DB) DeleteImage(ctx context.Context, digest manifest.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		img, err := getImage(tx, digest[:])
		if err != nil {
			return err
		}
		// Collect first: bbolt forbids deleting under a running ForEach.
		keys := tx.Bucket(bucketPackageKeys)
		var doomed [][2][]byte // package key, package ID
		err = keys.ForEach(func(k, id []byte) error {
			from, to, _, ok := splitPackageKey(k)
			if !ok {
				return fmt.Errorf("package key of %d bytes: %w", len(k), ErrCorrupt)
			}
			if bytes.Equal(from, digest[:]) || bytes.Equal(to, digest[:]) {
				doomed = append(doomed, [2][]byte{bytes.Clone(k), bytes.Clone(id)})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, d := range doomed {
			if err := keys.Delete(d[0]); err != nil {
				return err
			}
			if err := deletePackage(tx, d[1]); err != nil {
				return err
			}
		}
		for _, del := range []struct {
			bucket, key []byte
		}{
			{bucketImageVersions, versionKey(img.Class, img.Version)},
			{bucketImageData, digest[:]},
			{bucketImages, digest[:]},
		} {
			if err := tx.Bucket(del.bucket).Delete(del.key); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete image %s: %w", digest, boltErr(err))
	}
	return nil
}

package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Bucket and key names. They are the on-disk format: never rename one
// without a migration.
var (
	bucketMeta          = []byte("meta")
	bucketDevices       = []byte("devices")
	bucketPSKIdentities = []byte("psk_identities")
	bucketRegistrations = []byte("registrations")

	bucketImages         = []byte("images")
	bucketImageData      = []byte("image_data")
	bucketImageVersions  = []byte("image_versions")
	bucketClassSequences = []byte("class_sequences")
	bucketPackages       = []byte("packages")
	bucketPackageData    = []byte("package_data")
	bucketPackageKeys    = []byte("package_keys")
	bucketUpdates        = []byte("updates")

	bucketCampaigns       = []byte("campaigns")
	bucketCampaignTargets = []byte("campaign_targets")
	bucketDeviceInfo      = []byte("device_info")

	bucketClasses = []byte("classes")

	bucketUpdateHistory = []byte("update_history")

	keySchemaVersion = []byte("schema_version")
)

// A migration brings a file from version-1 to version. It runs inside the
// transaction that opens the file, together with every other pending
// migration and the version bump, so a file is never left half-migrated.
type migration struct {
	version     uint64
	description string
	up          func(tx *bolt.Tx) error
}

// migrations lists every schema version in order; migrations[i] produces
// version i+1 and the last entry is the version this program writes.
// Append to it; never edit or reorder a released entry. Keep the history
// in doc.go in step.
var migrations = []migration{
	{1, "initial schema: meta, devices, psk_identities, registrations", migrateV1},
	{2, "firmware: images, image_data, image_versions, class_sequences, packages, package_data, package_keys", migrateV2},
	{3, "updates: one record per endpoint", migrateV3},
	{4, "campaigns: campaigns, campaign_targets; device_info", migrateV4},
	{5, "device classes: classes", migrateV5},
	{6, "update history: update_history", migrateV6},
}

func migrateV1(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketDevices, bucketPSKIdentities, bucketRegistrations} {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

func migrateV2(tx *bolt.Tx) error {
	for _, name := range [][]byte{
		bucketImages, bucketImageData, bucketImageVersions, bucketClassSequences,
		bucketPackages, bucketPackageData, bucketPackageKeys,
	} {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

func migrateV3(tx *bolt.Tx) error {
	if _, err := tx.CreateBucket(bucketUpdates); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketUpdates, err)
	}
	return nil
}

func migrateV4(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketCampaigns, bucketCampaignTargets, bucketDeviceInfo} {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

func migrateV5(tx *bolt.Tx) error {
	if _, err := tx.CreateBucket(bucketClasses); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketClasses, err)
	}
	return nil
}

func migrateV6(tx *bolt.Tx) error {
	if _, err := tx.CreateBucket(bucketUpdateHistory); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketUpdateHistory, err)
	}
	return nil
}

// schemaVersion is the version this program reads and writes.
func schemaVersion() uint64 { return uint64(len(migrations)) }

// migrate creates the schema in a new file, checks the version of an
// existing one and runs the migrations it lacks.
func migrate(tx *bolt.Tx) error {
	have, err := readSchemaVersion(tx)
	if err != nil {
		return err
	}
	want := schemaVersion()
	if have > want {
		return fmt.Errorf("file has schema version %d, this program supports up to %d: %w", have, want, ErrSchemaTooNew)
	}
	if have == want {
		return nil
	}
	if have == 0 {
		// Only a file without buckets may be initialised: anything else
		// belongs to someone else.
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			return fmt.Errorf("file has bucket %q but no schema version: %w", name, ErrNotStore)
		}); err != nil {
			return err
		}
	}
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketMeta, err)
	}
	for i, m := range migrations[have:] {
		if m.version != have+uint64(i)+1 {
			return fmt.Errorf("migration list out of order: entry %d has version %d", int(have)+i, m.version)
		}
		if err := m.up(tx); err != nil {
			return fmt.Errorf("migrate schema to version %d (%s): %w", m.version, m.description, err)
		}
	}
	if err := meta.Put(keySchemaVersion, encodeVersion(want)); err != nil {
		return fmt.Errorf("write schema version: %w", err)
	}
	return nil
}

// readSchemaVersion returns the file's schema version, 0 for a file that
// has none (a new file).
func readSchemaVersion(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(keySchemaVersion)
	if len(v) != 8 {
		return 0, fmt.Errorf("schema version is %d bytes, want 8: %w", len(v), ErrCorrupt)
	}
	n := binary.BigEndian.Uint64(v)
	if n == 0 {
		return 0, fmt.Errorf("schema version is 0: %w", ErrCorrupt)
	}
	return n, nil
}

func encodeVersion(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

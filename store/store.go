package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/lwm2m"
)

// Defaults applied by Open to zero Options fields.
const (
	// DefaultLockTimeout is how long Open waits for another process to
	// release the file before failing with ErrLocked.
	DefaultLockTimeout = time.Second
	// DefaultMaxBatchSize is the most registration writes one commit carries.
	DefaultMaxBatchSize = 1000
	// DefaultMaxBatchDelay is the longest a registration write waits for
	// others to share its commit. It adds at most this much latency to an
	// acknowledgement, far below CoAP's 2 s retransmission timeout.
	DefaultMaxBatchDelay = 10 * time.Millisecond
)

var (
	// ErrLocked is returned by Open when another process (or another DB in
	// this process) holds the database file.
	ErrLocked = errors.New("database file is in use by another process")
	// ErrSchemaTooNew is returned by Open when the file was written by a
	// newer version of this program than the running one.
	ErrSchemaTooNew = errors.New("schema version is newer than this program supports")
	// ErrNotStore is returned by Open for a bbolt file that holds buckets
	// but no schema version: some other program's database.
	ErrNotStore = errors.New("not a fota store")
	// ErrCorrupt is returned when a stored record or index cannot be read
	// back. The store does not repair it.
	ErrCorrupt = errors.New("corrupt store")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("store is closed")
)

// Options tune Open. The zero value is ready for production use.
type Options struct {
	// LockTimeout bounds how long Open waits for the file lock held by
	// another process. Zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// NoSync skips fsync on commit. For benchmarks and tests only: a crash
	// of the machine (not only of the process) can then lose acknowledged
	// writes or corrupt the file.
	NoSync bool
	// MaxBatchSize is the most registration writes one commit carries.
	// Zero means DefaultMaxBatchSize.
	MaxBatchSize int
	// MaxBatchDelay is the longest a registration write waits for others
	// to join its commit. Zero means DefaultMaxBatchDelay.
	MaxBatchDelay time.Duration
}

// Validate reports the first field with a value Open cannot use.
func (o Options) Validate() error {
	switch {
	case o.LockTimeout < 0:
		return fmt.Errorf("store options: LockTimeout %v is negative", o.LockTimeout)
	case o.MaxBatchSize < 0:
		return fmt.Errorf("store options: MaxBatchSize %d is negative", o.MaxBatchSize)
	case o.MaxBatchDelay < 0:
		return fmt.Errorf("store options: MaxBatchDelay %v is negative", o.MaxBatchDelay)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.MaxBatchSize == 0 {
		o.MaxBatchSize = DefaultMaxBatchSize
	}
	if o.MaxBatchDelay == 0 {
		o.MaxBatchDelay = DefaultMaxBatchDelay
	}
	return o
}

// DB is the bbolt-backed store. It implements lwm2m.DeviceStore,
// lwm2m.RegistrationStore, lwm2m.InfoStore, firmware.Store, update.Store
// and campaign.Store and is safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	path string
}

var (
	_ lwm2m.DeviceStore       = (*DB)(nil)
	_ lwm2m.RegistrationStore = (*DB)(nil)
	_ firmware.Store          = (*DB)(nil)
)

// Open opens the store at path, creating the file (mode 0600) and its
// directory (mode 0700) if needed, and brings its schema up to date.
//
// Only one DB may hold a file at a time. Open fails with ErrLocked when
// another holder does not let go within Options.LockTimeout, with
// ErrSchemaTooNew when the file comes from a newer program and with
// ErrNotStore when it is some other bbolt database.
func Open(path string, opts Options) (*DB, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.LockTimeout,
		NoSync:  opts.NoSync,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w (waited %v)", path, ErrLocked, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	b.MaxBatchSize = opts.MaxBatchSize
	b.MaxBatchDelay = opts.MaxBatchDelay
	if err := b.Update(migrate); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &DB{bolt: b, path: path}, nil
}

// Path returns the file the store was opened on.
func (db *DB) Path() string { return db.path }

// Close releases the file. Writes that returned before Close are durable.
// Calling Close again does nothing.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", db.path, err)
	}
	return nil
}

// boltErr translates bbolt errors callers may branch on into this
// package's sentinels, so that no caller needs to import bbolt.
func boltErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openTestDB opens a store in a fresh directory. When the test ends it
// closes the store and checks the file (see checkFile).
func openTestDB(t testing.TB, opts Options) *DB {
	t.Helper()
	return openTestPath(t, filepath.Join(t.TempDir(), "fota.db"), opts)
}

// openTestPath opens the store at path; the cleanup closes it (a no-op if
// the test closed it already) and checks the file.
func openTestPath(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkFile(t, path)
	})
	return db
}

// checkFile opens a closed store file read-only and checks bbolt's page
// consistency (tx.Check) and this package's invariants: the schema
// version, that every record decodes under its own key, and that
// psk_identities indexes exactly the devices with a PSK identity.
func checkFile(t testing.TB, path string) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("check %s: %v", path, err)
		return
	}
	defer b.Close()
	err = b.View(func(tx *bolt.Tx) error {
		for err := range tx.Check(bolt.WithKVStringer(redactedKV{})) {
			t.Errorf("check %s: bbolt: %v", path, err)
		}
		for _, err := range checkInvariants(tx) {
			t.Errorf("check %s: %v", path, err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("check %s: %v", path, err)
	}
}

func checkInvariants(tx *bolt.Tx) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	v, err := readSchemaVersion(tx)
	if err != nil {
		fail("schema version: %v", err)
	} else if v != schemaVersion() {
		fail("schema version %d, want %d", v, schemaVersion())
	}
	devices, index, regs := tx.Bucket(bucketDevices), tx.Bucket(bucketPSKIdentities), tx.Bucket(bucketRegistrations)
	if devices == nil || index == nil || regs == nil {
		fail("missing bucket: devices %t, psk_identities %t, registrations %t", devices != nil, index != nil, regs != nil)
		return errs
	}
	_ = devices.ForEach(func(k, v []byte) error {
		d, err := decodeDevice(v)
		switch {
		case err != nil:
			fail("device %q: %v", k, err)
		case d.Endpoint != string(k):
			fail("device key %q holds endpoint %q", k, d.Endpoint)
		case d.PSKIdentity != "" && !bytes.Equal(index.Get([]byte(d.PSKIdentity)), k):
			fail("device %q: identity %q indexed to %q", k, d.PSKIdentity, index.Get([]byte(d.PSKIdentity)))
		}
		return nil
	})
	_ = index.ForEach(func(k, v []byte) error {
		raw := devices.Get(v)
		if raw == nil {
			fail("identity %q indexed to missing device %q", k, v)
			return nil
		}
		if d, err := decodeDevice(raw); err == nil && d.PSKIdentity != string(k) {
			fail("identity %q indexed to device %q, which holds %q", k, v, d.PSKIdentity)
		}
		return nil
	})
	_ = regs.ForEach(func(k, v []byte) error {
		r, err := decodeRegistration(v)
		switch {
		case err != nil:
			fail("registration %q: %v", k, err)
		case r.ID != string(k):
			fail("registration key %q holds id %q", k, r.ID)
		}
		return nil
	})
	return errs
}

// redactedKV prints keys and hides values in bbolt's check messages:
// device values hold PSK keys.
type redactedKV struct{}

func (redactedKV) KeyToString(k []byte) string   { return fmt.Sprintf("%q", k) }
func (redactedKV) ValueToString(v []byte) string { return fmt.Sprintf("<%d bytes>", len(v)) }

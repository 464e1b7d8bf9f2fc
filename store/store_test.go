package store

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fotahub/fota/delivery/campaign"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/store/storetest"
)

func TestDeviceStore(t *testing.T) {
	storetest.TestDeviceStore(t, func(t *testing.T) lwm2m.DeviceStore {
		return openTestDB(t, Options{})
	})
}

func TestRegistrationStore(t *testing.T) {
	storetest.TestRegistrationStore(t, func(t *testing.T) lwm2m.RegistrationStore {
		return openTestDB(t, Options{})
	})
}

func TestImageStore(t *testing.T) {
	storetest.TestImageStore(t, func(t *testing.T) firmware.ImageStore {
		return openTestDB(t, Options{})
	})
}

func TestPackageStore(t *testing.T) {
	storetest.TestPackageStore(t, func(t *testing.T) firmware.Store {
		return openTestDB(t, Options{})
	})
}

func testRegistration(id string) lwm2m.Registration {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	return lwm2m.Registration{
		ID:           id,
		Endpoint:     "ep-" + id,
		Version:      "1.1",
		Lifetime:     time.Hour,
		Binding:      "U",
		RootPath:     "/",
		Objects:      []lwm2m.Link{{Path: "/3/0"}, {Path: "/5/0"}},
		Identity:     lwm2m.Identity{Kind: lwm2m.IdentityPSK, Name: "psk-" + id},
		Address:      "192.0.2.7:5684",
		RegisteredAt: at,
		LastSeen:     at,
	}
}

func TestPersistence(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fota.db")
	db := openTestPath(t, path, Options{})
	dev := lwm2m.Device{Endpoint: "dev-1", PSKIdentity: "id-1", PSKKey: []byte{0, 1, 2, 0xff}, Tags: map[string]string{"a": "b"}, LinkMTU: 680, Class: "sensor-a", CreatedAt: time.Unix(1700000000, 5)}
	if err := db.PutDevice(ctx, dev); err != nil {
		t.Fatal(err)
	}
	if err := db.PutRegistration(ctx, testRegistration("reg-1")); err != nil {
		t.Fatal(err)
	}
	if err := db.PutRegistration(ctx, testRegistration("reg-2")); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRegistration(ctx, "reg-1"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTestPath(t, path, Options{})
	got, err := db.DeviceByPSKIdentity(ctx, "id-1")
	if err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	if got.Endpoint != "dev-1" || string(got.PSKKey) != string(dev.PSKKey) || got.Tags["a"] != "b" || got.LinkMTU != 680 || got.Class != "sensor-a" || !got.CreatedAt.Equal(dev.CreatedAt) {
		t.Errorf("after reopen: device %s, tags %v, class %q, created %v differs from what was put", got.Endpoint, got.Tags, got.Class, got.CreatedAt)
	}
	regs, err := db.Registrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 1 || regs[0].ID != "reg-2" || regs[0].Lifetime != time.Hour {
		t.Errorf("after reopen: registrations %+v, want only reg-2", regs)
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "fotad")
	path := filepath.Join(dir, "fota.db")
	openTestPath(t, path, Options{})
	for _, p := range []string{dir, path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group or other access", p, perm)
		}
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fota.db")
	openTestPath(t, path, Options{})
	start := time.Now()
	db, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		db.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("second Open took %v to fail", took)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for name, opts := range map[string]Options{
		"LockTimeout":   {LockTimeout: -1},
		"MaxBatchSize":  {MaxBatchSize: -1},
		"MaxBatchDelay": {MaxBatchDelay: -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(filepath.Join(t.TempDir(), "fota.db"), opts)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("Open = %v, want an error naming %s", err, name)
			}
		})
	}
}

// writeRawFile creates a bbolt file with fn's changes, bypassing Open.
func writeRawFile(t *testing.T, fn func(tx *bolt.Tx) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fota.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func rawSchemaVersion(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var v uint64
	if err := b.View(func(tx *bolt.Tx) (err error) { v, err = readSchemaVersion(tx); return err }); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSchemaTooNew(t *testing.T) {
	future := schemaVersion() + 1
	path := writeRawFile(t, func(tx *bolt.Tx) error {
		if err := migrateV1(tx); err != nil {
			return err
		}
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(keySchemaVersion, encodeVersion(future))
	})
	db, err := Open(path, Options{})
	if err == nil {
		db.Close()
		t.Fatal("Open of a file from the future succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprint(future)) || !strings.Contains(msg, fmt.Sprint(schemaVersion())) {
		t.Errorf("error %q does not give both versions", msg)
	}
	if v := rawSchemaVersion(t, path); v != future {
		t.Errorf("schema version after the failed Open = %d, want %d untouched", v, future)
	}
	// The lock is released: the file can be opened again.
	if _, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("second Open = %v, want ErrSchemaTooNew again", err)
	}
}

func TestNotStore(t *testing.T) {
	path := writeRawFile(t, func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("someone-elses"))
		return err
	})
	if _, err := Open(path, Options{}); !errors.Is(err, ErrNotStore) {
		t.Fatalf("Open = %v, want ErrNotStore", err)
	}
}

func TestCorruptSchemaVersion(t *testing.T) {
	path := writeRawFile(t, func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(keySchemaVersion, []byte("1"))
	})
	if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
}

// withMigrations replaces the migration list for one test; such tests
// must not run in parallel.
func withMigrations(t *testing.T, ms ...migration) {
	saved := migrations
	migrations = ms
	t.Cleanup(func() { migrations = saved })
}

// v1File writes a file of schema version 1, the first release, with a
// registration in it.
func v1File(t *testing.T) string {
	t.Helper()
	all := migrations
	withMigrations(t, migrations[0])
	defer func() { migrations = all }()
	path := filepath.Join(t.TempDir(), "fota.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PutRegistration(context.Background(), testRegistration("reg-1")); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMigrationsRunInOrder(t *testing.T) {
	ctx := context.Background()
	path := v1File(t)
	n := uint64(len(migrations))

	var ran []uint64
	step := func(v uint64) migration {
		return migration{v, fmt.Sprintf("test step %d", v), func(tx *bolt.Tx) error {
			ran = append(ran, v)
			_, err := tx.CreateBucket(fmt.Appendf(nil, "v%d", v))
			return err
		}}
	}
	// The real migrations after version 1, recorded, then two more.
	ms := slices.Clone(migrations)
	for i := 1; i < len(ms); i++ {
		v, up := ms[i].version, ms[i].up
		ms[i].up = func(tx *bolt.Tx) error { ran = append(ran, v); return up(tx) }
	}
	withMigrations(t, append(ms, step(n+1), step(n+2))...)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open with pending migrations: %v", err)
	}
	var want []uint64
	for v := uint64(2); v <= n+2; v++ {
		want = append(want, v)
	}
	if !slices.Equal(ran, want) {
		t.Errorf("migrations ran %v, want %v", ran, want)
	}
	if regs, err := db.Registrations(ctx); err != nil || len(regs) != 1 {
		t.Errorf("after migration: %d registrations, %v", len(regs), err)
	}
	db.Close()
	if v := rawSchemaVersion(t, path); v != n+2 {
		t.Errorf("schema version %d, want %d", v, n+2)
	}
	// Reopening runs nothing.
	ran = nil
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if ran != nil {
		t.Errorf("reopen ran migrations %v", ran)
	}
}

// TestMigrateV1 opens a file of the first release with this program: the
// registrations stay, and the firmware buckets work.
func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	path := v1File(t)
	db := openTestPath(t, path, Options{})
	if regs, err := db.Registrations(ctx); err != nil || len(regs) != 1 {
		t.Fatalf("after migration: %d registrations, %v", len(regs), err)
	}
	data := []byte("firmware")
	if _, _, err := db.PutImage(ctx, firmware.Image{Digest: sha256.Sum256(data), Size: int64(len(data)), Version: "1", Class: "c"}, data); err != nil {
		t.Fatalf("PutImage after migration: %v", err)
	}
	db.Close()
	if v := rawSchemaVersion(t, path); v != schemaVersion() {
		t.Errorf("schema version %d, want %d", v, schemaVersion())
	}
}

// v3File writes a file of schema version 3 with the records a program of
// that version wrote: a device without a class and an update without the
// campaign fields.
func v3File(t *testing.T) string {
	t.Helper()
	all := migrations
	withMigrations(t, migrations[:3]...)
	defer func() { migrations = all }()
	path := filepath.Join(t.TempDir(), "fota.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketDevices).Put([]byte("dev-1"),
			[]byte(`{"v":1,"endpoint":"dev-1","link_mtu":1280,"created_at":"2026-01-02T03:04:05Z"}`)); err != nil {
			return err
		}
		return tx.Bucket(bucketUpdates).Put([]byte("dev-1"), []byte(`{"endpoint":"dev-1","image":"2.0.0",`+
			`"target":"0102000000000000000000000000000000000000000000000000000000000000","version":"2.0.0",`+
			`"package":"0300000000000000000000000000000000000000000000000000000000000000","format":"delta","size":4096,`+
			`"phase":"done","result":1,"block_size":512,"retries":2,"started":"2026-01-02T03:04:05Z",`+
			`"changed":"2026-01-02T03:14:05Z","executed":"2026-01-02T03:10:05Z","deadline":"2026-01-02T04:04:05Z"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMigrateV3 opens a file of schema version 3 with this program: its
// device and update read as they were, and campaigns and device infos
// can be stored.
func TestMigrateV3(t *testing.T) {
	ctx := context.Background()
	path := v3File(t)
	if v := rawSchemaVersion(t, path); v != 3 {
		t.Fatalf("v3File wrote schema version %d", v)
	}
	db := openTestPath(t, path, Options{})
	d, err := db.Device(ctx, "dev-1")
	if err != nil || d.LinkMTU != 1280 || d.Class != "" {
		t.Errorf("after migration: device %+v, %v", d, err)
	}
	us, err := db.Updates(ctx)
	if err != nil || len(us) != 1 {
		t.Fatalf("after migration: %d updates, %v", len(us), err)
	}
	if u := us[0]; u.Phase != update.Done || u.Format != manifest.FormatDelta || u.Retries != 2 || u.BlockSize != 512 ||
		u.Campaign != "" || u.FullSize != 0 || u.MaxBlock != 0 || u.RetryLimit != 0 {
		t.Errorf("after migration: update %+v", u)
	}
	if cs, err := db.Campaigns(ctx); err != nil || len(cs) != 0 {
		t.Errorf("after migration: campaigns %v, %v", cs, err)
	}
	if err := db.PutCampaign(ctx, testCampaign("c-1")); err != nil {
		t.Fatalf("PutCampaign after migration: %v", err)
	}
	if err := db.PutTargets(ctx, "c-1", []campaign.Target{testTarget("dev-1", 0)}); err != nil {
		t.Fatalf("PutTargets after migration: %v", err)
	}
	if err := db.PutDeviceInfo(ctx, lwm2m.DeviceInfo{Endpoint: "dev-1", FirmwareVersion: "2.0.0"}); err != nil {
		t.Fatalf("PutDeviceInfo after migration: %v", err)
	}
	db.Close()
	if v := rawSchemaVersion(t, path); v != schemaVersion() {
		t.Errorf("schema version %d, want %d", v, schemaVersion())
	}
}

// TestMigrateV5 opens a file of schema version 5 with this program: its
// update is the current one, with no history, until another replaces it.
func TestMigrateV5(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fota.db")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old := update.Update{Endpoint: "dev-1", Image: "2.0.0", Phase: update.Done, Result: 1, Started: t0, Changed: t0, Deadline: t0}
	func() {
		all := migrations
		withMigrations(t, migrations[:5]...)
		defer func() { migrations = all }()
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.bolt.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketUpdates).Put([]byte("dev-1"), []byte(`{"endpoint":"dev-1","image":"2.0.0",`+
				`"target":"0000000000000000000000000000000000000000000000000000000000000000",`+
				`"package":"0000000000000000000000000000000000000000000000000000000000000000",`+
				`"phase":"done","result":1,"started":"2026-01-02T03:04:05Z","changed":"2026-01-02T03:04:05Z",`+
				`"deadline":"2026-01-02T03:04:05Z"}`))
		}); err != nil {
			t.Fatal(err)
		}
	}()
	if v := rawSchemaVersion(t, path); v != 5 {
		t.Fatalf("wrote schema version %d", v)
	}
	db := openTestPath(t, path, Options{})
	if hs, err := db.UpdateHistory(ctx, "dev-1"); err != nil || len(hs) != 0 {
		t.Fatalf("after migration: history %+v, %v", hs, err)
	}
	next := old
	next.Image, next.Phase, next.Result, next.Started = "3.0.0", update.Preparing, 0, t0.Add(time.Hour)
	if err := db.PutUpdate(ctx, next); err != nil {
		t.Fatal(err)
	}
	if hs, err := db.UpdateHistory(ctx, "dev-1"); err != nil || len(hs) != 1 || !reflect.DeepEqual(hs[0], old) {
		t.Fatalf("history %+v, %v; want %+v", hs, err, old)
	}
	db.Close()
	if v := rawSchemaVersion(t, path); v != schemaVersion() {
		t.Errorf("schema version %d, want %d", v, schemaVersion())
	}
}

func TestFailedMigrationChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fota.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	n := uint64(len(migrations))
	withMigrations(t, append(slices.Clone(migrations),
		migration{n + 1, "adds a bucket", func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("added")); return err }},
		migration{n + 2, "fails", func(*bolt.Tx) error { return errors.New("boom") }},
	)...)
	_, err = Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("version %d", n+2)) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Open = %v, want the failure of migration %d", err, n+2)
	}
	if v := rawSchemaVersion(t, path); v != n {
		t.Errorf("schema version %d after a failed migration, want %d", v, n)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_ = b.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("added")) != nil {
			t.Errorf("migration %d was kept although migration %d failed", n+1, n+2)
		}
		return nil
	})
}

func TestMigrationListIsOrdered(t *testing.T) {
	for i, m := range migrations {
		if m.version != uint64(i)+1 || m.description == "" || m.up == nil {
			t.Errorf("migrations[%d] = version %d %q: want version %d with a description and a function", i, m.version, m.description, i+1)
		}
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	errs := map[string]error{
		"PutDevice":       db.PutDevice(ctx, lwm2m.Device{Endpoint: "x"}),
		"DeleteDevice":    db.DeleteDevice(ctx, "x"),
		"PutRegistration": db.PutRegistration(ctx, testRegistration("x")),
	}
	_, errs["Devices"] = db.Devices(ctx)
	_, errs["Registrations"] = db.Registrations(ctx)
	data := []byte("image")
	_, _, errs["PutImage"] = db.PutImage(ctx, firmware.Image{Digest: sha256.Sum256(data), Size: 5, Version: "1", Class: "c"}, data)
	_, errs["Images"] = db.Images(ctx)
	_, errs["ImageData"] = db.ImageData(ctx, sha256.Sum256(data))
	errs["DeleteImage"] = db.DeleteImage(ctx, sha256.Sum256(data))
	_, errs["PackageFor"] = db.PackageFor(ctx, firmware.PackageKey{Format: manifest.FormatFull})
	_, errs["PackageData"] = db.PackageData(ctx, sha256.Sum256(data))
	errs["PutUpdate"] = db.PutUpdate(ctx, update.Update{Endpoint: "x"})
	_, errs["Updates"] = db.Updates(ctx)
	_, errs["UpdateHistory"] = db.UpdateHistory(ctx, "x")
	errs["PutCampaign"] = db.PutCampaign(ctx, campaign.Campaign{ID: "x"})
	errs["PutTargets"] = db.PutTargets(ctx, "x", []campaign.Target{{Endpoint: "x"}})
	_, errs["Campaigns"] = db.Campaigns(ctx)
	errs["PutDeviceInfo"] = db.PutDeviceInfo(ctx, lwm2m.DeviceInfo{Endpoint: "x"})
	_, errs["DeviceInfos"] = db.DeviceInfos(ctx)
	for name, err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestEmptyKeys(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, Options{})
	if err := db.PutDevice(ctx, lwm2m.Device{PSKIdentity: "id"}); err == nil {
		t.Error("PutDevice with an empty endpoint succeeded")
	}
	if err := db.PutRegistration(ctx, lwm2m.Registration{Endpoint: "ep"}); err == nil {
		t.Error("PutRegistration with an empty ID succeeded")
	}
	if err := db.DeleteRegistration(ctx, ""); err != nil {
		t.Errorf("DeleteRegistration(\"\") = %v, want nil", err)
	}
	if _, err := db.Device(ctx, ""); !errors.Is(err, lwm2m.ErrNotFound) {
		t.Errorf("Device(\"\") = %v, want ErrNotFound", err)
	}
}

func TestUnknownIdentityKind(t *testing.T) {
	db := openTestDB(t, Options{})
	r := testRegistration("reg-1")
	r.Identity.Kind = 42
	if err := db.PutRegistration(context.Background(), r); err == nil {
		t.Error("PutRegistration with identity kind 42 succeeded")
	}
}

// A corrupt device record must not leak its bytes, which hold the key,
// into the error.
func TestCorruptDeviceRecordKeepsSecret(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, Options{})
	secret := `{"v":1,"endpoint":"dev-1","psk_key":"c2VjcmV0LWtleQ==" TOPSECRET`
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).Put([]byte("dev-1"), []byte(secret))
	}); err != nil {
		t.Fatal(err)
	}
	_, err := db.Device(ctx, "dev-1")
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Device = %v, want ErrCorrupt", err)
	}
	for _, part := range []string{"TOPSECRET", "c2VjcmV0LWtleQ", "secret-key"} {
		if strings.Contains(err.Error(), part) {
			t.Errorf("error %q quotes the record", err)
		}
	}
	// Repair the file so the cleanup check passes.
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDevices).Delete([]byte("dev-1")) }); err != nil {
		t.Fatal(err)
	}
}

// The on-disk format is the private records, pinned here: a failure means
// a change that needs a new record version and a migration.
func TestRecordFormat(t *testing.T) {
	d := lwm2m.Device{
		Endpoint:    "dev-1",
		PSKIdentity: "id-1",
		PSKKey:      []byte("key"),
		Tags:        map[string]string{"site": "lab"},
		LinkMTU:     1280,
		Class:       "sensor-a",
		CreatedAt:   time.Date(2025, 1, 2, 4, 4, 5, 6, time.FixedZone("CET", 3600)),
	}
	const wantDevice = `{"v":1,"endpoint":"dev-1","psk_identity":"id-1","psk_key":"a2V5","tags":{"site":"lab"},"link_mtu":1280,"class":"sensor-a","created_at":"2025-01-02T03:04:05.000000006Z"}`
	r := lwm2m.Registration{
		ID:           "reg-1",
		Endpoint:     "dev-1",
		Version:      "1.1",
		Lifetime:     90 * time.Second,
		Binding:      "UQ",
		Queue:        true,
		SMSNumber:    "+1555",
		RootPath:     "/",
		Objects:      []lwm2m.Link{{Path: "/", Attrs: []lwm2m.LinkAttr{{Key: "rt", Value: "oma.lwm2m"}, {Key: "obs"}}}, {Path: "/3/0"}},
		Identity:     lwm2m.Identity{Kind: lwm2m.IdentityX509, Name: "dev-1"},
		Address:      "192.0.2.1:5684",
		RegisteredAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		LastSeen:     time.Date(2025, 1, 2, 3, 5, 5, 0, time.UTC),
	}
	const wantReg = `{"v":1,"id":"reg-1","endpoint":"dev-1","lwm2m_version":"1.1","lifetime_ns":90000000000,"binding":"UQ","queue":true,"sms_number":"+1555","root_path":"/",` +
		`"objects":[{"path":"/","attrs":[{"key":"rt","value":"oma.lwm2m"},{"key":"obs"}]},{"path":"/3/0"}],` +
		`"identity":{"kind":"x509","name":"dev-1"},"address":"192.0.2.1:5684","registered_at":"2025-01-02T03:04:05Z","last_seen":"2025-01-02T03:05:05Z"}`

	if b, err := encodeDevice(d); err != nil || string(b) != wantDevice {
		t.Errorf("encodeDevice = %s, %v\nwant %s", b, err, wantDevice)
	}
	if b, err := encodeRegistration(r); err != nil || string(b) != wantReg {
		t.Errorf("encodeRegistration = %s, %v\nwant %s", b, err, wantReg)
	}
	gotD, err := decodeDevice([]byte(wantDevice))
	if err != nil || gotD.Endpoint != d.Endpoint || gotD.PSKIdentity != d.PSKIdentity || string(gotD.PSKKey) != "key" || gotD.Tags["site"] != "lab" || gotD.LinkMTU != 1280 || gotD.Class != "sensor-a" || !gotD.CreatedAt.Equal(d.CreatedAt) {
		t.Errorf("decodeDevice = %s %s %v %d %q %v, %v", gotD.Endpoint, gotD.PSKIdentity, gotD.Tags, gotD.LinkMTU, gotD.Class, gotD.CreatedAt, err)
	}
	gotR, err := decodeRegistration([]byte(wantReg))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := encodeRegistration(gotR); string(b) != wantReg {
		t.Errorf("registration does not round-trip:\n got %s\nwant %s", b, wantReg)
	}
}

// TestFirmwareRecordFormat pins the image and package records, as
// TestRecordFormat pins the others.
func TestFirmwareRecordFormat(t *testing.T) {
	digest := func(s string) manifest.Digest { return sha256.Sum256([]byte(s)) }
	img := firmware.Image{
		Digest:   digest("new"),
		Size:     19452,
		Version:  "1.1.0",
		Class:    "sensor-a",
		Sequence: 3,
		Added:    time.Date(2025, 1, 2, 4, 4, 5, 0, time.FixedZone("CET", 3600)),
	}
	const wantImage = `{"v":1,"digest":"11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437","size":19452,` +
		`"version":"1.1.0","class":"sensor-a","sequence":3,"added":"2025-01-02T03:04:05Z"}`
	p := firmware.Package{
		ID: digest("package"),
		Manifest: manifest.Manifest{
			Sequence: 3, Version: "1.1.0", Class: "sensor-a", Format: manifest.FormatDelta,
			PayloadDigest: digest("patch"), PayloadSize: 777,
			ImageDigest: digest("new"), ImageSize: 19452,
			PrecursorDigest: digest("old"), PrecursorSize: 19340,
		},
		Size:           1100,
		KeyFingerprint: "sha256:ab",
		Created:        time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC),
	}
	// ID, PAYLOAD and PRECURSOR stand for the hex digests.
	const wantPackage = `{"v":1,"id":"ID","size":1100,"format":"delta",` +
		`"sequence":3,"version":"1.1.0","class":"sensor-a",` +
		`"payload_digest":"PAYLOAD","payload_size":777,` +
		`"image_digest":"11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437","image_size":19452,` +
		`"precursor_digest":"PRECURSOR","precursor_size":19340,` +
		`"key_fingerprint":"sha256:ab","created":"2025-01-02T03:04:06Z"}`
	want := strings.NewReplacer(`"ID"`, `"`+digest("package").String()+`"`,
		"PAYLOAD", digest("patch").String(), "PRECURSOR", digest("old").String()).Replace(wantPackage)

	if b, err := encodeImage(img); err != nil || string(b) != wantImage {
		t.Errorf("encodeImage = %s, %v\nwant %s", b, err, wantImage)
	}
	if b, err := encodePackage(p); err != nil || string(b) != want {
		t.Errorf("encodePackage = %s, %v\nwant %s", b, err, want)
	}
	gotImg, err := decodeImage([]byte(wantImage))
	if err != nil || gotImg.Digest != img.Digest || gotImg.Sequence != 3 || !gotImg.Added.Equal(img.Added) {
		t.Errorf("decodeImage = %+v, %v", gotImg, err)
	}
	gotPkg, err := decodePackage([]byte(want))
	if err != nil || gotPkg.ID != p.ID || gotPkg.Manifest != p.Manifest || gotPkg.Size != p.Size || !gotPkg.Created.Equal(p.Created) {
		t.Errorf("decodePackage = %+v, %v", gotPkg, err)
	}
	// A full package has no precursor fields.
	p.Manifest.Format, p.Manifest.PrecursorDigest, p.Manifest.PrecursorSize = manifest.FormatFull, manifest.Digest{}, 0
	if b, err := encodePackage(p); err != nil || strings.Contains(string(b), "precursor") || !strings.Contains(string(b), `"format":"full"`) {
		t.Errorf("encodePackage(full) = %s, %v", b, err)
	}
}

// TestFirmwarePersistence: images, their sequence counters and packages
// survive closing and reopening the store.
func TestFirmwarePersistence(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fota.db")
	db := openTestPath(t, path, Options{})
	put := func(data, version string) firmware.Image {
		t.Helper()
		b := []byte(data)
		img, _, err := db.PutImage(ctx, firmware.Image{Digest: sha256.Sum256(b), Size: int64(len(b)), Version: version, Class: "c",
			Added: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, b)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	a, b := put("image a", "1"), put("image b", "2")
	data := []byte("a signed package")
	p := firmware.Package{ID: sha256.Sum256(data), Size: int64(len(data)), KeyFingerprint: "sha256:k",
		Manifest: manifest.Manifest{Sequence: b.Sequence, Version: "2", Class: "c", Format: manifest.FormatDelta,
			ImageDigest: b.Digest, ImageSize: uint64(b.Size), PrecursorDigest: a.Digest, PrecursorSize: uint64(a.Size)}}
	if err := db.PutPackage(ctx, p, data); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTestPath(t, path, Options{})
	imgs, err := db.Images(ctx)
	if err != nil || len(imgs) != 2 {
		t.Fatalf("after reopen: %d images, %v", len(imgs), err)
	}
	if got, err := db.ImageData(ctx, b.Digest); err != nil || string(got) != "image b" {
		t.Errorf("after reopen: image data %q, %v", got, err)
	}
	got, err := db.PackageFor(ctx, p.Key())
	if err != nil || got.ID != p.ID || got.Manifest != p.Manifest {
		t.Errorf("after reopen: package %+v, %v", got, err)
	}
	if got, err := db.PackageData(ctx, p.ID); err != nil || string(got) != string(data) {
		t.Errorf("after reopen: package data %q, %v", got, err)
	}
	if c := put("image c", "3"); c.Sequence != 3 {
		t.Errorf("after reopen: next sequence %d, want 3", c.Sequence)
	}
}

// commits returns the ID of the last committed write transaction.
func commits(t testing.TB, db *DB) int {
	t.Helper()
	var id int
	if err := db.bolt.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestConcurrentPutRegistration(t *testing.T) {
	const n = 200
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fota.db")
	db := openTestPath(t, path, Options{})
	before := commits(t, db)

	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = db.PutRegistration(ctx, testRegistration(fmt.Sprintf("reg-%03d", i))) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("PutRegistration %d: %v", i, err)
		}
	}
	used := commits(t, db) - before
	t.Logf("%d registrations in %d commits", n, used)
	if used >= n {
		t.Errorf("%d registrations took %d commits: writes were not batched", n, used)
	}

	db.Close()
	db = openTestPath(t, path, Options{})
	regs, err := db.Registrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != n {
		t.Fatalf("after reopen: %d registrations, want %d", len(regs), n)
	}
	for i, r := range regs { // key order
		if want := fmt.Sprintf("reg-%03d", i); r.ID != want {
			t.Fatalf("registration %d is %s, want %s", i, r.ID, want)
		}
	}
}

const crashChildEnv = "FOTA_STORE_CRASH_CHILD"

// TestCrashAfterAck runs a child process that stores registrations,
// reports them stored and is then killed with SIGKILL: every registration
// it reported must be in the file, and while it lived a second Open must
// fail fast with ErrLocked.
func TestCrashAfterAck(t *testing.T) {
	const n = 100
	path := filepath.Join(t.TempDir(), "fota.db")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d", crashChildEnv, path, n))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	acked := false
	for sc := bufio.NewScanner(out); sc.Scan(); {
		if sc.Text() == "stored" {
			acked = true
			break
		}
	}
	if !acked {
		t.Fatal("child exited without storing")
	}

	if db, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		if err == nil {
			db.Close()
		}
		t.Fatalf("Open while the child holds the file = %v, want ErrLocked", err)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	db := openTestPath(t, path, Options{})
	regs, err := db.Registrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != n {
		t.Errorf("after SIGKILL: %d registrations, want %d", len(regs), n)
	}
}

// TestCrashChild is the child half of TestCrashAfterAck; it does nothing
// in a normal run.
func TestCrashChild(t *testing.T) {
	spec := os.Getenv(crashChildEnv)
	if spec == "" {
		t.Skip("child process of TestCrashAfterAck")
	}
	path, count, _ := strings.Cut(spec, "|")
	var n int
	fmt.Sscan(count, &n)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := db.PutRegistration(context.Background(), testRegistration(fmt.Sprintf("reg-%03d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	fmt.Println("stored")
	time.Sleep(time.Minute) // until killed
}

func TestClassStore(t *testing.T) {
	storetest.TestClassStore(t, func(t *testing.T) firmware.ClassStore {
		return openTestDB(t, Options{})
	})
}

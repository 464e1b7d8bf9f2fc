package store

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/delivery/update"
)

// TestUpdatesSurviveReopen: an update written before a crash is there,
// whole, when fotad starts again.
func TestUpdatesSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fota.db")
	db := openTestPath(t, path, Options{})
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	u := update.Update{Endpoint: "dev-1", Image: "2.0.0", Target: manifest.Digest{1, 2}, Version: "2.0.0",
		Package: manifest.Digest{3}, Format: manifest.FormatDelta, Size: 4096, Path: "/fw/abc",
		Phase: update.Downloading, BytesServed: 1024, Started: now, Changed: now, Deadline: now.Add(time.Hour),
		Campaign: "c-1", FullSize: 65536, MaxBlock: 256, RetryLimit: -1}
	if err := db.PutUpdate(ctx, u); err != nil {
		t.Fatal(err)
	}
	u2 := u
	u2.Endpoint, u2.Phase, u2.Result = "dev-0", update.Failed, 5
	if err := db.PutUpdate(ctx, u2); err != nil {
		t.Fatal(err)
	}
	u.BytesServed = 2048 // replaces the first record
	if err := db.PutUpdate(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestPath(t, path, Options{})
	got, err := db.Updates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !reflect.DeepEqual(got[0], u2) || !reflect.DeepEqual(got[1], u) {
		t.Fatalf("after reopen:\n got %+v\nwant %+v and %+v", got, u2, u)
	}
	if err := db.PutUpdate(ctx, update.Update{}); err == nil {
		t.Fatal("update without endpoint stored")
	}
}

// TestUpdateRecordFields pins the names of the update record's newer
// fields, and that they are left out when empty, so that records written
// before them read the same.
func TestUpdateRecordFields(t *testing.T) {
	db := openTestDB(t, Options{})
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	u := update.Update{Endpoint: "dev-1", Image: "2.0.0", Phase: update.Preparing, Started: now, Changed: now, Deadline: now,
		Campaign: "c-1", FullSize: 65536, MaxBlock: 256, RetryLimit: 3}
	raw := func() string {
		t.Helper()
		if err := db.PutUpdate(ctx, u); err != nil {
			t.Fatal(err)
		}
		var v []byte
		if err := db.bolt.View(func(tx *bolt.Tx) error { v = bytes.Clone(tx.Bucket(bucketUpdates).Get([]byte(u.Endpoint))); return nil }); err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	rec := raw()
	for _, want := range []string{`"campaign":"c-1"`, `"full_size":65536`, `"max_block":256`, `"retry_limit":3`} {
		if !strings.Contains(rec, want) {
			t.Errorf("update record %s lacks %s", rec, want)
		}
	}
	u.Campaign, u.FullSize, u.MaxBlock, u.RetryLimit = "", 0, 0, 0
	rec = raw()
	for _, name := range []string{"campaign", "full_size", "max_block", "retry_limit"} {
		if strings.Contains(rec, `"`+name+`"`) {
			t.Errorf("update record %s holds empty %s", rec, name)
		}
	}
}

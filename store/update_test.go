package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
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

// historyUpdate is an update of ep that started at started.
func historyUpdate(ep string, started time.Time) update.Update {
	return update.Update{Endpoint: ep, Image: "2.0.0", Target: manifest.Digest{1}, Version: "2.0.0",
		Package: manifest.Digest{2}, Format: manifest.FormatFull, Size: 4096, Phase: update.Preparing,
		Started: started, Changed: started, Deadline: started.Add(time.Hour)}
}

func mustPutUpdate(t *testing.T, db *DB, u update.Update) {
	t.Helper()
	if err := db.PutUpdate(context.Background(), u); err != nil {
		t.Fatalf("PutUpdate: %v", err)
	}
}

func checkHistory(t *testing.T, db *DB, ep string, want ...update.Update) {
	t.Helper()
	got, err := db.UpdateHistory(context.Background(), ep)
	if err != nil {
		t.Fatalf("UpdateHistory(%q): %v", ep, err)
	}
	if len(got) != len(want) {
		t.Fatalf("UpdateHistory(%q): %d updates, want %d:\n%+v", ep, len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("UpdateHistory(%q)[%d]:\n got %+v\nwant %+v", ep, i, got[i], want[i])
		}
	}
}

// TestUpdateHistory: an update replaced by another one moves to the
// endpoint's history; one rewritten as it progresses does not.
func TestUpdateHistory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fota.db")
	db := openTestPath(t, path, Options{})
	t0 := time.Date(2026, 11, 26, 7, 0, 0, 123, time.UTC)

	checkHistory(t, db, "dev-1")
	a := historyUpdate("dev-1", t0)
	mustPutUpdate(t, db, a)
	checkHistory(t, db, "dev-1")
	// Rewrites of the same update (same Started) are not history.
	a.Phase, a.BytesServed, a.Changed = update.Downloading, 1024, t0.Add(time.Minute)
	mustPutUpdate(t, db, a)
	a.Phase, a.BytesServed, a.Result, a.Changed = update.Done, 4096, 1, t0.Add(2*time.Minute)
	mustPutUpdate(t, db, a)
	checkHistory(t, db, "dev-1")

	// Another update replaces it: the last state of a is history.
	b := historyUpdate("dev-1", t0.Add(time.Hour))
	mustPutUpdate(t, db, b)
	checkHistory(t, db, "dev-1", a)
	b.Phase, b.Result, b.Error = update.Failed, 5, "integrity check failure"
	mustPutUpdate(t, db, b)
	checkHistory(t, db, "dev-1", a)

	// Endpoints that begin with another's name keep their own history.
	x := historyUpdate("dev-10", t0)
	mustPutUpdate(t, db, x)
	mustPutUpdate(t, db, historyUpdate("dev-10", t0.Add(time.Second)))
	checkHistory(t, db, "dev-10", x)

	c := historyUpdate("dev-1", t0.Add(2*time.Hour))
	mustPutUpdate(t, db, c)
	checkHistory(t, db, "dev-1", b, a)
	// The current updates are not in the history, and Updates lists only them.
	us, err := db.Updates(ctx)
	if err != nil || len(us) != 2 || !reflect.DeepEqual(us[0], c) || us[1].Endpoint != "dev-10" {
		t.Fatalf("Updates = %+v, %v", us, err)
	}
	checkHistory(t, db, "dev-9")
	checkHistory(t, db, "dev")

	// The history survives a reopen.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestPath(t, path, Options{})
	checkHistory(t, db, "dev-1", b, a)
	checkHistory(t, db, "dev-10", x)
}

// TestUpdateHistoryLimit: an endpoint's history keeps its newest
// maxUpdateHistory updates.
func TestUpdateHistoryLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fota.db")
	db := openTestPath(t, path, Options{})
	t0 := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	const n = maxUpdateHistory + 6
	var all []update.Update
	for i := range n {
		u := historyUpdate("dev-1", t0.Add(time.Duration(i)*time.Minute))
		u.Phase, u.Result = update.Done, 1
		all = append(all, u)
		mustPutUpdate(t, db, u)
	}
	mustPutUpdate(t, db, historyUpdate("dev-2", t0))
	var want []update.Update // newest first, without the current one
	for i := n - 2; i >= n-1-maxUpdateHistory; i-- {
		want = append(want, all[i])
	}
	checkHistory(t, db, "dev-1", want...)
	// The pruned records are gone from the file, not just unlisted.
	var keys int
	if err := db.bolt.View(func(tx *bolt.Tx) error { keys = tx.Bucket(bucketUpdateHistory).Stats().KeyN; return nil }); err != nil {
		t.Fatal(err)
	}
	if keys != maxUpdateHistory {
		t.Errorf("update_history holds %d keys, want %d", keys, maxUpdateHistory)
	}
	db.Close()
	db = openTestPath(t, path, Options{})
	checkHistory(t, db, "dev-1", want...)
	checkHistory(t, db, "dev-2")
}

// TestUpdateHistoryZeroByte: the store does not rely on endpoints without
// a zero byte (LwM2M has none) to keep histories apart.
func TestUpdateHistoryZeroByte(t *testing.T) {
	db := openTestDB(t, Options{})
	t0 := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	a, ab := historyUpdate("a", t0), historyUpdate("a\x00b", t0.Add(time.Second))
	for _, u := range []update.Update{a, ab, historyUpdate("a", t0.Add(time.Hour)), historyUpdate("a\x00b", t0.Add(time.Hour))} {
		mustPutUpdate(t, db, u)
	}
	checkHistory(t, db, "a", a)
	checkHistory(t, db, "a\x00b", ab)
	checkHistory(t, db, "a\x00")
}

// TestUpdateHistoryBatchRetry: a PutUpdate that fails in a batch makes
// bbolt roll the batch back and run the others again; they must leave one
// history record each, as if run once.
func TestUpdateHistoryBatchRetry(t *testing.T) {
	const n = 30
	ctx := context.Background()
	db := openTestDB(t, Options{MaxBatchDelay: 50 * time.Millisecond})
	t0 := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	first := make([]update.Update, n)
	for i := range n {
		first[i] = historyUpdate(fmt.Sprintf("dev-%02d", i), t0)
		mustPutUpdate(t, db, first[i])
	}
	// A current record that does not decode fails its PutUpdate.
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketUpdates).Put([]byte("bad"), []byte("{")) }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for i := range n + 1 {
		wg.Go(func() {
			if i == n {
				errs[i] = db.PutUpdate(ctx, historyUpdate("bad", t0.Add(time.Hour)))
				return
			}
			errs[i] = db.PutUpdate(ctx, historyUpdate(fmt.Sprintf("dev-%02d", i), t0.Add(time.Hour)))
		})
	}
	wg.Wait()
	if !errors.Is(errs[n], ErrCorrupt) {
		t.Errorf("PutUpdate over a corrupt record = %v, want ErrCorrupt", errs[n])
	}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("PutUpdate %d: %v", i, errs[i])
		}
		checkHistory(t, db, first[i].Endpoint, first[i])
	}
	checkHistory(t, db, "bad")
	// Leave a file that passes checkFile.
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketUpdates).Delete([]byte("bad")) }); err != nil {
		t.Fatal(err)
	}
}

package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fotahub/fota/delivery/campaign"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/lwm2m"
)

// testCampaign sets every field of a campaign to a value other than its
// zero value, targets aside.
func testCampaign(id string) campaign.Campaign {
	at := time.Date(2026, 3, 2, 8, 0, 0, 123456789, time.UTC)
	return campaign.Campaign{
		ID: id,
		Spec: campaign.Spec{
			Name:  "roll out " + id,
			Image: "2.0.0",
			Select: campaign.Selection{
				Endpoints: []string{"dev-1", "dev-2"},
				Class:     "sensor-a",
				Versions:  []string{"1.0.0", "1.1.0"},
				Tags:      map[string]string{"site": "lab", "hw": ""},
				All:       true,
			},
			Waves: []campaign.Wave{{Count: 2, Soak: campaign.Duration(10 * time.Minute)}, {Percent: 12.5}},
			Limits: campaign.Limits{
				MaxConcurrent: 4,
				PerTag:        map[string]int{"cell": 2},
				BytesPerHour:  1 << 30,
				Window:        &campaign.Window{Start: "22:00", End: "04:00"},
			},
			Failure:    campaign.FailurePolicy{MaxFailures: 3, MaxFailurePercent: 7.5, Retries: -1},
			Delivery:   campaign.Delivery{Full: true, Push: true, BlockSize: 512},
			AsleepWait: campaign.Duration(90 * time.Second),
			Deadline:   campaign.Duration(48 * time.Hour),
		},
		Version: "2.0.0",
		State:   campaign.Paused,
		Reason:  "wave 1: 4 of 10 failed",
		Created: at,
		Started: at.Add(time.Minute),
		Ended:   at.Add(time.Hour),
		Waves: []campaign.WaveState{
			{Size: 2, Soak: campaign.Duration(10 * time.Minute), Opened: at.Add(time.Minute), Settled: at.Add(30 * time.Minute), Forgiven: 1},
			{Size: 10, Opened: at.Add(40 * time.Minute)},
		},
		PeakRunning: 4,
	}
}

// testTarget sets every field of a target to a value other than its zero
// value.
func testTarget(ep string, wave int) campaign.Target {
	at := time.Date(2026, 3, 2, 9, 0, 0, 987654321, time.UTC)
	return campaign.Target{
		Endpoint:    ep,
		Wave:        wave,
		State:       campaign.TargetFailed,
		Installed:   "1.0.0",
		Format:      manifest.FormatDelta,
		Size:        4096,
		FullSize:    65536,
		BytesServed: 2048,
		FellBack:    true,
		Result:      5,
		Reason:      "integrity check failure",
		Tags:        map[string]string{"cell": "c-" + ep},
		Started:     at,
		Ended:       at.Add(time.Minute),
	}
}

// viaJSON returns v after a round trip through package campaign's JSON,
// which is what the store promises to keep: nil and empty maps and
// slices are the same to it.
func viaJSON[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkCampaigns(t *testing.T, db *DB, want ...campaign.Campaign) {
	t.Helper()
	got, err := db.Campaigns(context.Background())
	if err != nil {
		t.Fatalf("Campaigns: %v", err)
	}
	if want := viaJSON(t, want); !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", " ")
		wb, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("Campaigns:\n got %s\nwant %s", gb, wb)
	}
}

func TestCampaignsRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fota.db")
	db := openTestPath(t, path, Options{})

	if cs, err := db.Campaigns(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("Campaigns of a new store = %v, %v", cs, err)
	}

	// Put out of order; c-1 is put with targets, which PutCampaign ignores.
	c2, c1, c10 := testCampaign("c-2"), testCampaign("c-1"), testCampaign("c-10")
	c2.State, c2.Reason, c2.Waves = campaign.Created, "", nil
	c10.Waves = []campaign.WaveState{}
	c1.Targets = []campaign.Target{testTarget("ignored", 0)}
	for _, c := range []campaign.Campaign{c2, c1, c10} {
		if err := db.PutCampaign(ctx, c); err != nil {
			t.Fatalf("PutCampaign(%s): %v", c.ID, err)
		}
	}
	c1.Targets = nil
	checkCampaigns(t, db, c1, c10, c2)

	// Targets in several calls, out of order; one replaced.
	t3, t1, t2 := testTarget("dev-3", 1), testTarget("dev-1", 0), testTarget("dev-2", 0)
	t1.State, t1.Format, t1.Result, t1.Reason, t1.Tags = campaign.TargetPending, 0, 0, "", nil
	t1.Started, t1.Ended, t1.BytesServed, t1.FellBack = time.Time{}, time.Time{}, 0, false
	if err := db.PutTargets(ctx, "c-1", []campaign.Target{t3, t1}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutTargets(ctx, "c-1", []campaign.Target{t2}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutTargets(ctx, "c-2", []campaign.Target{testTarget("dev-9", 0)}); err != nil {
		t.Fatal(err)
	}
	t1 = testTarget("dev-1", 0) // replaces the pending dev-1
	t1.Format = manifest.FormatFull
	if err := db.PutTargets(ctx, "c-1", []campaign.Target{t1}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutTargets(ctx, "c-10", nil); err != nil {
		t.Fatalf("PutTargets with no targets: %v", err)
	}

	// Replacing a campaign keeps its targets.
	c1.State, c1.Reason = campaign.Running, ""
	if err := db.PutCampaign(ctx, c1); err != nil {
		t.Fatal(err)
	}

	wantC1 := c1
	wantC1.Targets = []campaign.Target{t1, t2, t3}
	wantC2 := c2
	wantC2.Targets = []campaign.Target{testTarget("dev-9", 0)}
	checkCampaigns(t, db, wantC1, c10, wantC2)

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestPath(t, path, Options{})
	checkCampaigns(t, db, wantC1, c10, wantC2)
}

// A campaign whose ID is a prefix of another's does not get its targets.
func TestCampaignTargetsByPrefix(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, Options{})
	for _, id := range []string{"a", "a-b", "ab"} {
		if err := db.PutCampaign(ctx, testCampaign(id)); err != nil {
			t.Fatal(err)
		}
		if err := db.PutTargets(ctx, id, []campaign.Target{testTarget("dev-"+id, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := db.Campaigns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if len(c.Targets) != 1 || c.Targets[0].Endpoint != "dev-"+c.ID {
			t.Errorf("campaign %s has targets %+v", c.ID, c.Targets)
		}
	}
}

// Times come back as the same instants, in UTC.
func TestCampaignTimesInUTC(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, Options{})
	cet := time.FixedZone("CET", 3600)
	c := testCampaign("c-1")
	c.Created = time.Date(2026, 3, 2, 9, 0, 0, 1, cet)
	c.Waves[0].Opened = time.Date(2026, 3, 2, 9, 1, 0, 2, cet)
	tg := testTarget("dev-1", 0)
	tg.Started = time.Now() // with a monotonic reading
	if err := db.PutCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := db.PutTargets(ctx, c.ID, []campaign.Target{tg}); err != nil {
		t.Fatal(err)
	}
	cs, err := db.Campaigns(ctx)
	if err != nil || len(cs) != 1 || len(cs[0].Targets) != 1 {
		t.Fatalf("Campaigns = %+v, %v", cs, err)
	}
	got := cs[0]
	for _, tt := range []struct {
		name      string
		got, want time.Time
	}{
		{"Created", got.Created, c.Created},
		{"Waves[0].Opened", got.Waves[0].Opened, c.Waves[0].Opened},
		{"Targets[0].Started", got.Targets[0].Started, tg.Started},
	} {
		if !tt.got.Equal(tt.want) || tt.got.Location() != time.UTC {
			t.Errorf("%s = %v, want %v in UTC", tt.name, tt.got, tt.want)
		}
	}
}

func TestPutTargetsUnknownCampaign(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, Options{})
	if err := db.PutCampaign(ctx, testCampaign("c-1")); err != nil {
		t.Fatal(err)
	}
	for _, ts := range [][]campaign.Target{{testTarget("dev-1", 0)}, nil} {
		err := db.PutTargets(ctx, "c-2", ts)
		if !errors.Is(err, campaign.ErrNotFound) || !strings.Contains(err.Error(), `"c-2"`) {
			t.Errorf("PutTargets of %d targets for an unknown campaign = %v, want campaign.ErrNotFound naming it", len(ts), err)
		}
	}
	var n int
	if err := db.bolt.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketCampaignTargets).Stats().KeyN; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d targets stored for an unknown campaign", n)
	}
}

func TestCampaignBadInput(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, Options{})
	if err := db.PutCampaign(ctx, testCampaign("c-1")); err != nil {
		t.Fatal(err)
	}
	if err := db.PutTargets(ctx, "c-1", []campaign.Target{testTarget("dev-1", 0)}); err != nil {
		t.Fatal(err)
	}
	badFormat := testTarget("dev-2", 0)
	badFormat.Format = 42
	for name, err := range map[string]error{
		"PutCampaign empty ID":      db.PutCampaign(ctx, testCampaign("")),
		"PutCampaign zero byte":     db.PutCampaign(ctx, testCampaign("c\x00-1")),
		"PutTargets empty ID":       db.PutTargets(ctx, "", []campaign.Target{testTarget("dev-1", 0)}),
		"PutTargets zero byte":      db.PutTargets(ctx, "c-1\x00", []campaign.Target{testTarget("dev-1", 0)}),
		"PutTargets empty endpoint": db.PutTargets(ctx, "c-1", []campaign.Target{testTarget("dev-3", 0), testTarget("", 0)}),
		"PutTargets unknown format": db.PutTargets(ctx, "c-1", []campaign.Target{testTarget("dev-3", 0), badFormat}),
		"PutCampaign bad wave share": db.PutCampaign(ctx, func() campaign.Campaign {
			c := testCampaign("c-3")
			c.Spec.Waves[1].Percent = nan()
			return c
		}()),
	} {
		if err == nil {
			t.Errorf("%s succeeded", name)
		}
	}
	// A failed PutTargets stores none of its targets.
	want := testCampaign("c-1")
	want.Targets = []campaign.Target{testTarget("dev-1", 0)}
	checkCampaigns(t, db, want)
}

func nan() float64 { z := 0.0; return z / z }

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	db := openTestDB(t, Options{})
	errs := map[string]error{
		"PutCampaign":   db.PutCampaign(ctx, testCampaign("c-1")),
		"PutTargets":    db.PutTargets(ctx, "c-1", []campaign.Target{testTarget("dev-1", 0)}),
		"PutDeviceInfo": db.PutDeviceInfo(ctx, lwm2m.DeviceInfo{Endpoint: "dev-1"}),
		"PutUpdate":     db.PutUpdate(ctx, update.Update{Endpoint: "dev-1"}),
	}
	_, errs["Campaigns"] = db.Campaigns(ctx)
	_, errs["DeviceInfos"] = db.DeviceInfos(ctx)
	_, errs["Updates"] = db.Updates(ctx)
	_, errs["UpdateHistory"] = db.UpdateHistory(ctx, "dev-1")
	for name, err := range errs {
		if err != context.Canceled {
			t.Errorf("%s with a cancelled context = %v, want ctx.Err()", name, err)
		}
	}
	// Nothing was written.
	bg := context.Background()
	if cs, err := db.Campaigns(bg); err != nil || len(cs) != 0 {
		t.Errorf("Campaigns = %v, %v", cs, err)
	}
	if is, err := db.DeviceInfos(bg); err != nil || len(is) != 0 {
		t.Errorf("DeviceInfos = %v, %v", is, err)
	}
}

// Concurrent PutTargets share commits and lose nothing.
func TestConcurrentPutTargets(t *testing.T) {
	const n = 100
	ctx := context.Background()
	db := openTestDB(t, Options{})
	if err := db.PutCampaign(ctx, testCampaign("c-1")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			ep := fmt.Sprintf("dev-%03d", i)
			errs[i] = db.PutTargets(ctx, "c-1", []campaign.Target{testTarget(ep, 0), testTarget(ep+"-b", 1)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("PutTargets %d: %v", i, err)
		}
	}
	cs, err := db.Campaigns(ctx)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Campaigns = %d, %v", len(cs), err)
	}
	if len(cs[0].Targets) != 2*n {
		t.Fatalf("%d targets, want %d", len(cs[0].Targets), 2*n)
	}
	for i := range n {
		if want := fmt.Sprintf("dev-%03d", i); cs[0].Targets[2*i].Endpoint != want || cs[0].Targets[2*i+1].Endpoint != want+"-b" {
			t.Fatalf("targets %d, %d are %s, %s: not in endpoint order", 2*i, 2*i+1, cs[0].Targets[2*i].Endpoint, cs[0].Targets[2*i+1].Endpoint)
		}
	}
}

func TestDeviceInfos(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fota.db")
	db := openTestPath(t, path, Options{})
	at := time.Date(2026, 3, 2, 8, 0, 0, 5, time.UTC)
	infos := []lwm2m.DeviceInfo{
		{Endpoint: "dev-2", FirmwareVersion: "1.0.0", Read: at},
		{Endpoint: "dev-1", FirmwareVersion: "1.0.0", Read: at},
		{Endpoint: "dev-3", Read: at},
		{Endpoint: "dev-1", FirmwareVersion: "2.0.0", Read: at.Add(time.Hour)}, // replaces the first dev-1
	}
	for _, i := range infos {
		if err := db.PutDeviceInfo(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutDeviceInfo(ctx, lwm2m.DeviceInfo{FirmwareVersion: "1.0.0"}); err == nil {
		t.Error("PutDeviceInfo with an empty endpoint succeeded")
	}
	want := []lwm2m.DeviceInfo{infos[3], infos[0], infos[2]}
	check := func(when string) {
		t.Helper()
		got, err := db.DeviceInfos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: DeviceInfos = %+v, want %+v", when, got, want)
		}
	}
	check("before reopen")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestPath(t, path, Options{})
	check("after reopen")

	// A local time with a monotonic reading comes back as the same instant.
	now := time.Now()
	if err := db.PutDeviceInfo(ctx, lwm2m.DeviceInfo{Endpoint: "dev-0", Read: now}); err != nil {
		t.Fatal(err)
	}
	got, err := db.DeviceInfos(ctx)
	if err != nil || len(got) != 4 || got[0].Endpoint != "dev-0" || !got[0].Read.Equal(now) {
		t.Errorf("DeviceInfos = %+v, %v", got, err)
	}
}

// TestCampaignRecordFormat pins the campaign, target and device info
// records, as TestRecordFormat pins the others.
func TestCampaignRecordFormat(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	c := campaign.Campaign{
		ID:          "c-1",
		Spec:        campaign.Spec{Image: "2.0.0", Select: campaign.Selection{Class: "sensor-a"}, Waves: []campaign.Wave{{Count: 1, Soak: campaign.Duration(time.Hour)}}},
		State:       campaign.Running,
		Created:     time.Date(2026, 1, 2, 4, 4, 5, 6, cet),
		Started:     time.Date(2026, 1, 2, 4, 5, 5, 0, cet),
		Version:     "2.0.0",
		Waves:       []campaign.WaveState{{Size: 1, Soak: campaign.Duration(time.Hour), Opened: time.Date(2026, 1, 2, 4, 5, 5, 0, cet)}, {Size: 3}},
		Targets:     []campaign.Target{testTarget("not-written", 0)},
		PeakRunning: 1,
	}
	const wantCampaign = `{"v":1,"id":"c-1","spec":{"image":"2.0.0","select":{"class":"sensor-a"},"waves":[{"count":1,"soak":"1h0m0s"}]},` +
		`"version":"2.0.0","state":"running","created":"2026-01-02T03:04:05.000000006Z","started":"2026-01-02T03:05:05Z",` +
		`"waves":[{"size":1,"soak":"1h0m0s","opened":"2026-01-02T03:05:05Z"},{"size":3}],"peak_running":1}`
	tg := campaign.Target{Endpoint: "dev-1", State: campaign.TargetRunning, Format: manifest.FormatPelion, Size: 100,
		Tags: map[string]string{"cell": "7"}, Started: time.Date(2026, 1, 2, 4, 5, 5, 0, cet)}
	const wantTarget = `{"v":1,"endpoint":"dev-1","wave":0,"state":"running","format":"pelion","size":100,"tags":{"cell":"7"},"started":"2026-01-02T03:05:05Z"}`
	info := lwm2m.DeviceInfo{Endpoint: "dev-1", FirmwareVersion: "1.0.0", Read: time.Date(2026, 1, 2, 4, 4, 5, 0, cet)}
	const wantInfo = `{"v":1,"endpoint":"dev-1","firmware_version":"1.0.0","read":"2026-01-02T03:04:05Z"}`

	if b, err := encodeCampaign(c); err != nil || string(b) != wantCampaign {
		t.Errorf("encodeCampaign = %s, %v\nwant %s", b, err, wantCampaign)
	}
	if b, err := encodeTarget(tg); err != nil || string(b) != wantTarget {
		t.Errorf("encodeTarget = %s, %v\nwant %s", b, err, wantTarget)
	}
	if b, err := encodeDeviceInfo(info); err != nil || string(b) != wantInfo {
		t.Errorf("encodeDeviceInfo = %s, %v\nwant %s", b, err, wantInfo)
	}
	for name, err := range map[string]error{
		"campaign version": func() error { _, err := decodeCampaign([]byte(`{"v":2,"id":"c-1"}`)); return err }(),
		"campaign json":    func() error { _, err := decodeCampaign([]byte(`{"v":1,`)); return err }(),
		"target version":   func() error { _, err := decodeTarget([]byte(`{"v":0,"endpoint":"dev-1"}`)); return err }(),
		"target format":    func() error { _, err := decodeTarget([]byte(`{"v":1,"endpoint":"dev-1","format":"zip"}`)); return err }(),
		"info version":     func() error { _, err := decodeDeviceInfo([]byte(`{"endpoint":"dev-1"}`)); return err }(),
	} {
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode with bad %s = %v, want ErrCorrupt", name, err)
		}
	}
}

// TestCorruptCampaignRecord: Campaigns fails with ErrCorrupt naming the
// record it cannot read.
func TestCorruptCampaignRecord(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, Options{})
	if err := db.PutCampaign(ctx, testCampaign("c-1")); err != nil {
		t.Fatal(err)
	}
	put := func(k, v []byte) {
		t.Helper()
		if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketCampaignTargets).Put(k, v) }); err != nil {
			t.Fatal(err)
		}
	}
	put(targetKey("c-1", "dev-1"), []byte(`{"v":1,"endpoint":"dev-1","format":"zip"}`))
	if _, err := db.Campaigns(ctx); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "dev-1") {
		t.Errorf("Campaigns = %v, want ErrCorrupt naming dev-1", err)
	}
	put(targetKey("c-1", "dev-1"), []byte(`{"v":1,"endpoint":"dev-1"}`)) // repair for the cleanup check
}

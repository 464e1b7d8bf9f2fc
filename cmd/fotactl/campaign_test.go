package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/delivery/campaign"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/lwm2m"
)

// fakeCampaigns is an api.Campaigns holding campaigns the test sets.
type fakeCampaigns struct {
	mu        sync.Mutex
	campaigns map[string]campaign.Campaign
	progress  map[string]campaign.Progress
	order     []string
	specs     []campaign.Spec
	err       error // Plan's and Create's, when set
}

func (f *fakeCampaigns) Plan(_ context.Context, spec campaign.Spec) (campaign.Plan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, spec)
	if f.err != nil {
		return campaign.Plan{}, f.err
	}
	return testPlan(), nil
}

// testPlan: dev-1 gets a delta, dev-2 the full image, dev-3 nothing.
func testPlan() campaign.Plan {
	return campaign.Plan{Image: strings.Repeat("ab", 32), Version: "2.0.0", Class: "sensor-a",
		Devices: []campaign.PlanDevice{
			{Endpoint: "dev-1", Wave: 0, Installed: "1.0.0", Format: manifest.FormatDelta, Size: 2048, FullSize: 102400},
			{Endpoint: "dev-2", Wave: 0, Format: manifest.FormatFull, Size: 102400, FullSize: 102400, Reason: "installed version unknown"},
			{Endpoint: "dev-3", Wave: 1, Installed: "2.0.0", Skip: true, Reason: "runs 2.0.0 already"},
		},
		Waves: []int{2, 1}, Delta: 1, Full: 1, Skip: 1, Bytes: 104448, FullBytes: 204800,
		Airtime: []campaign.Airtime{
			{Link: "nb-iot", BlockSize: 512, PerDevice: 95 * time.Second, Total: 190 * time.Second, FullOnly: 7200 * time.Second},
			{Link: "lte-m", BlockSize: 1024, PerDevice: 800 * time.Millisecond, Total: 1600 * time.Millisecond, FullOnly: 3 * time.Second},
		},
	}
}

func (f *fakeCampaigns) Create(_ context.Context, spec campaign.Spec) (campaign.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, spec)
	if f.err != nil {
		return campaign.Campaign{}, f.err
	}
	id := fmt.Sprintf("c%d", len(f.order)+1)
	spec.Image = strings.Repeat("ab", 32)
	c := campaign.Campaign{ID: id, Spec: spec, Version: "2.0.0", State: campaign.Created, Created: testNow,
		Waves: []campaign.WaveState{{Size: 2}, {Size: 1}},
		Targets: []campaign.Target{
			{Endpoint: "dev-1", State: campaign.TargetPending, Installed: "1.0.0", Format: manifest.FormatDelta, Size: 2048, FullSize: 102400},
			{Endpoint: "dev-2", State: campaign.TargetPending, Format: manifest.FormatFull, Size: 102400, FullSize: 102400},
			{Endpoint: "dev-3", Wave: 1, State: campaign.TargetSkipped, Installed: "2.0.0", Reason: "runs 2.0.0 already"},
		}}
	f.put(c, campaign.Progress{ID: id, Name: spec.Name, Image: "2.0.0", State: campaign.Created, Created: testNow, Total: 3,
		Counts: map[campaign.TargetState]int{campaign.TargetPending: 2, campaign.TargetSkipped: 1},
		Waves: []campaign.WaveProgress{
			{Index: 1, Size: 2, Counts: map[campaign.TargetState]int{campaign.TargetPending: 2}},
			{Index: 2, Size: 1, Counts: map[campaign.TargetState]int{campaign.TargetSkipped: 1}},
		}})
	return c, nil
}

// put stores a campaign and its progress; f.mu is held.
func (f *fakeCampaigns) put(c campaign.Campaign, p campaign.Progress) {
	if _, ok := f.campaigns[c.ID]; !ok {
		f.order = append(f.order, c.ID)
	}
	f.campaigns[c.ID], f.progress[c.ID] = c, p
}

func (f *fakeCampaigns) set(c campaign.Campaign, p campaign.Progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.put(c, p)
}

func (f *fakeCampaigns) Get(id string) (campaign.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.campaigns[id]
	if !ok {
		return c, fmt.Errorf("campaign %s: %w", id, campaign.ErrNotFound)
	}
	return c, nil
}

func (f *fakeCampaigns) Progress(id string) (campaign.Progress, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.progress[id]
	if !ok {
		return p, fmt.Errorf("campaign %s: %w", id, campaign.ErrNotFound)
	}
	return p, nil
}

func (f *fakeCampaigns) Progresses() []campaign.Progress {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []campaign.Progress
	for _, id := range f.order {
		out = append(out, f.progress[id])
	}
	return out
}

func (f *fakeCampaigns) change(id string, to campaign.State, reason string, from ...campaign.State) (campaign.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.campaigns[id]
	if !ok {
		return c, fmt.Errorf("campaign %s: %w", id, campaign.ErrNotFound)
	}
	if !slices.Contains(from, c.State) {
		return c, fmt.Errorf("campaign %s is %s: %w", id, c.State, campaign.ErrState)
	}
	p := f.progress[id]
	c.State, c.Reason, p.State, p.Reason = to, reason, to, reason
	if to == campaign.Running && p.Started.IsZero() {
		c.Started, p.Started = testNow, testNow
	}
	f.campaigns[id], f.progress[id] = c, p
	return c, nil
}

func (f *fakeCampaigns) Start(_ context.Context, id string) (campaign.Campaign, error) {
	return f.change(id, campaign.Running, "", campaign.Created)
}

func (f *fakeCampaigns) Pause(_ context.Context, id string) (campaign.Campaign, error) {
	return f.change(id, campaign.Paused, "paused by hand", campaign.Running)
}

func (f *fakeCampaigns) Resume(_ context.Context, id string) (campaign.Campaign, error) {
	return f.change(id, campaign.Running, "", campaign.Paused)
}

func (f *fakeCampaigns) Cancel(_ context.Context, id string) (campaign.Campaign, error) {
	return f.change(id, campaign.Cancelled, "cancelled by hand", campaign.Created, campaign.Running, campaign.Paused)
}

func (f *fakeCampaigns) lastSpec() campaign.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.specs) == 0 {
		return campaign.Spec{}
	}
	return f.specs[len(f.specs)-1]
}

type campaignEnv struct {
	*env
	campaigns *fakeCampaigns
	// scripts, by campaign ID, replace its event stream: each progress
	// is sent as an event, then the stream stays open.
	mu      sync.Mutex
	scripts map[string][]campaign.Progress
}

func newCampaignEnv(t *testing.T) *campaignEnv {
	t.Helper()
	e := &env{t: t, devices: &memDevices{devices: map[string]lwm2m.Device{}}, regs: memRegs{}}
	campaigns := &fakeCampaigns{campaigns: map[string]campaign.Campaign{}, progress: map[string]campaign.Progress{}}
	srv, err := api.New(api.Config{Devices: e.devices, Registrations: e.regs, Transport: noStats{},
		Campaigns: campaigns, Inventory: inventoryMap{"ep1": "1.4.2"}, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	ce := &campaignEnv{env: e, campaigns: campaigns, scripts: map[string][]campaign.Progress{}}
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, "/api/v1/campaigns/")
		if id, ok = strings.CutSuffix(id, "/events"); ok {
			ce.mu.Lock()
			script, ok := ce.scripts[id]
			ce.mu.Unlock()
			if ok {
				serveScript(w, r, script)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(srv.StopStreams)
	e.url = ts.URL
	return ce
}

func (e *campaignEnv) script(id string, events ...campaign.Progress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.scripts[id] = events
}

// serveScript sends the events as the API's stream would, with a
// keep-alive comment among them, and ends after a finished campaign or at
// an empty Progress.
func serveScript(w http.ResponseWriter, r *http.Request, events []campaign.Progress) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for i, p := range events {
		if p.ID == "" {
			return
		}
		b, _ := json.Marshal(p)
		if i == 1 {
			fmt.Fprint(w, ": keep-alive\n\n")
		}
		fmt.Fprintf(w, "event: progress\ndata: %s\n\n", b)
		w.(http.Flusher).Flush()
		if p.State.Finished() {
			return
		}
	}
	<-r.Context().Done()
}

type inventoryMap map[string]string

func (m inventoryMap) Installed(ep string) (string, bool) { v, ok := m[ep]; return v, ok }

func TestCampaignSpecFlags(t *testing.T) {
	e := newCampaignEnv(t)
	for _, c := range []struct {
		name string
		args []string
		want campaign.Spec
	}{
		{"minimal", []string{"--image", "2.0.0", "--all"},
			campaign.Spec{Image: "2.0.0", Select: campaign.Selection{All: true}}},
		{"selection", []string{"--image", " 2.0.0 ", "--endpoint", "dev-1,dev-2", "--endpoint", "dev-3", "--class", "sensor-a",
			"--version", "1.0.0", "--version", "1.1.0", "--tag", "site=field", "--tag", "cell", "--name", "spring"},
			campaign.Spec{Name: "spring", Image: "2.0.0", Select: campaign.Selection{Endpoints: []string{"dev-1", "dev-2", "dev-3"},
				Class: "sensor-a", Versions: []string{"1.0.0", "1.1.0"}, Tags: map[string]string{"site": "field", "cell": ""}}}},
		{"waves and limits", []string{"--image", "2.0.0", "--all", "--wave", "10", "--wave", "50%,soak=10m", "--wave", "12.5%,soak=1d",
			"--max-concurrent", "20", "--per-tag", "cell=4", "--per-tag", "site=10", "--bytes-per-hour", "10MB",
			"--window", "22:00-04:00", "--max-failures", "3", "--max-failure-percent", "2.5", "--retries", "-1",
			"--full", "--push", "--block-size", "512", "--asleep-wait", "30m", "--deadline", "7d"},
			campaign.Spec{Image: "2.0.0", Select: campaign.Selection{All: true},
				Waves: []campaign.Wave{{Count: 10}, {Percent: 50, Soak: campaign.Duration(10 * time.Minute)},
					{Percent: 12.5, Soak: campaign.Duration(24 * time.Hour)}},
				Limits: campaign.Limits{MaxConcurrent: 20, PerTag: map[string]int{"cell": 4, "site": 10}, BytesPerHour: 10_000_000,
					Window: &campaign.Window{Start: "22:00", End: "04:00"}},
				Failure:    campaign.FailurePolicy{MaxFailures: 3, MaxFailurePercent: 2.5, Retries: -1},
				Delivery:   campaign.Delivery{Full: true, Push: true, BlockSize: 512},
				AsleepWait: campaign.Duration(30 * time.Minute), Deadline: campaign.Duration(7 * 24 * time.Hour)}},
		{"binary size", []string{"--image", "2.0.0", "--all", "--bytes-per-hour", "500KiB"},
			campaign.Spec{Image: "2.0.0", Select: campaign.Selection{All: true}, Limits: campaign.Limits{BytesPerHour: 512000}}},
		{"bytes", []string{"--image", "2.0.0", "--all", "--bytes-per-hour", "123456"},
			campaign.Spec{Image: "2.0.0", Select: campaign.Selection{All: true}, Limits: campaign.Limits{BytesPerHour: 123456}}},
	} {
		e.run(append([]string{"campaign", "plan"}, c.args...)...).ok(t)
		if got := e.campaigns.lastSpec(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: spec %s\nwant %s", c.name, specJSON(got), specJSON(c.want))
		}
	}

	// A file, with flags that override it.
	file := filepath.Join(t.TempDir(), "spec.json")
	err := os.WriteFile(file, []byte(`{"name":"from file","image":"1.9.0","select":{"class":"sensor-a","versions":["1.0.0"]},
		"waves":[{"count":5,"soak":"1h"}],"limits":{"max_concurrent":8,"window":{"start":"01:00","end":"05:00"}},
		"delivery":{"full":true},"deadline":"48h"}`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	e.run("campaign", "plan", "--file", file, "--image", "2.0.0", "--wave", "25%", "--full=false", "--version", "1.1.0").ok(t)
	want := campaign.Spec{Name: "from file", Image: "2.0.0", Select: campaign.Selection{Class: "sensor-a", Versions: []string{"1.1.0"}},
		Waves:    []campaign.Wave{{Percent: 25}},
		Limits:   campaign.Limits{MaxConcurrent: 8, Window: &campaign.Window{Start: "01:00", End: "05:00"}},
		Deadline: campaign.Duration(48 * time.Hour)}
	if got := e.campaigns.lastSpec(); !reflect.DeepEqual(got, want) {
		t.Errorf("file: spec %s\nwant %s", specJSON(got), specJSON(want))
	}
	e.run("campaign", "plan", "--file", file).ok(t)
	if got := e.campaigns.lastSpec(); got.Image != "1.9.0" || !got.Delivery.Full || got.Waves[0].Soak != campaign.Duration(time.Hour) {
		t.Errorf("file alone: %s", specJSON(got))
	}

	n := len(e.campaigns.specs)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--all"}, "--image is required"},
		{[]string{"--image", "2.0.0"}, "select devices with --endpoint, --class, --version, --tag or --all"},
		{[]string{"--image", "2.0.0", "--all", "--wave", "0"}, `wave "0": want a number of devices or a share`},
		{[]string{"--image", "2.0.0", "--all", "--wave", "150%"}, "at most 100 %"},
		{[]string{"--image", "2.0.0", "--all", "--wave", "10,pause=1m"}, `unknown option "pause=1m"`},
		{[]string{"--image", "2.0.0", "--all", "--wave", "10,soak=forever"}, `soak: duration "forever"`},
		{[]string{"--image", "2.0.0", "--all", "--bytes-per-hour", "10 parsecs"}, `size "10 parsecs"`},
		{[]string{"--image", "2.0.0", "--all", "--window", "22:00"}, "want HH:MM-HH:MM"},
		{[]string{"--image", "2.0.0", "--all", "--window", "22:00-25:00"}, "want HH:MM-HH:MM"},
		{[]string{"--image", "2.0.0", "--all", "--per-tag", "cell"}, "want KEY=N"},
		{[]string{"--image", "2.0.0", "--all", "--per-tag", "cell=0"}, "want KEY=N"},
		{[]string{"--image", "2.0.0", "--all", "--deadline", "-1h"}, "want 90s, 10m, 2h or 7d"},
		{[]string{"--image", "2.0.0", "--all", "extra"}, `unexpected argument "extra"`},
	} {
		r := e.run(append([]string{"campaign", "plan"}, c.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q", c.args, r.code, r.stderr)
		}
	}
	r := e.run("campaign", "plan", "--file", filepath.Join(t.TempDir(), "missing.json"), "--all")
	if r.code != exitFailure || !strings.Contains(r.stderr, "read campaign spec") {
		t.Errorf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
	if err := os.WriteFile(file, []byte(`{"image":"2.0.0","select":{"al":true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run("campaign", "plan", "--file", file)
	if r.code != exitFailure || !strings.Contains(r.stderr, `unknown field "al"`) {
		t.Errorf("bad file: exit %d, stderr %q", r.code, r.stderr)
	}
	// The server's validation reaches the user too.
	r = e.run("campaign", "plan", "--image", "2.0.0", "--all", "--block-size", "100")
	if r.code != exitFailure || !strings.Contains(r.stderr, "block size 100 is not a power of two") || !strings.Contains(r.stderr, "HTTP 400") {
		t.Errorf("bad block size: exit %d, stderr %q", r.code, r.stderr)
	}
	if len(e.campaigns.specs) != n {
		t.Errorf("bad command lines reached the manager")
	}
}

func specJSON(s campaign.Spec) string { b, _ := json.Marshal(s); return string(b) }

func TestSpecValueParsers(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "10MB": 10_000_000, "10 mb": 10_000_000, "500KiB": 512000,
		"1.5GB": 1_500_000_000, "2GiB": 2 << 30, "3kB": 3000, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "-5", "10 MiBs", "1e3", "10M"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) took it", in)
		}
	}
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "10m": 10 * time.Minute, "2h30m": 150 * time.Minute,
		"7d": 7 * 24 * time.Hour, "1.5d": 36 * time.Hour, "0": 0} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "soon", "-5m", "10"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) took it", in)
		}
	}
	for in, want := range map[string]campaign.Wave{"10": {Count: 10}, "50%": {Percent: 50}, " 5 , soak=90s": {Count: 5, Soak: campaign.Duration(90 * time.Second)},
		"100%,soak=2h": {Percent: 100, Soak: campaign.Duration(2 * time.Hour)}} {
		if got, err := parseWave(in); err != nil || got != want {
			t.Errorf("parseWave(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0%", "-1", "x", "10,soak", "10%%"} {
		if _, err := parseWave(in); err == nil {
			t.Errorf("parseWave(%q) took it", in)
		}
	}
	for d, want := range map[time.Duration]string{0: "0s", 850 * time.Millisecond: "850ms", 4200 * time.Millisecond: "4.2s",
		185 * time.Second: "3m05s", 7620 * time.Second: "2h07m", 76 * time.Hour: "3d04h"} {
		if got := durationText(d); got != want {
			t.Errorf("durationText(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestCampaignPlanCommand(t *testing.T) {
	e := newCampaignEnv(t)
	r := e.run("campaign", "plan", "--image", "2.0.0", "--class", "sensor-a").ok(t)
	want := "Plan for 2.0.0 (class sensor-a, sha256 " + strings.Repeat("ab", 32) + ")\n" +
		"\n" +
		"ENDPOINT  WAVE  INSTALLED  PAYLOAD  SIZE       REASON\n" +
		"dev-1     1     1.0.0      delta    2.0 KiB    -\n" +
		"dev-2     1     -          full     100.0 KiB  installed version unknown\n" +
		"dev-3     2     2.0.0      skip     -          runs 2.0.0 already\n" +
		"\n" +
		"Devices:   3 in 2 waves (1: 2 devices, 2: 1 device)\n" +
		"Payloads:  1 delta, 1 full, 1 skip\n" +
		"Bytes:     102.0 KiB (200.0 KiB with full images only: saves 98.0 KiB, 49.0 %)\n" +
		"\n" +
		"Airtime (stop-and-wait Block2 transfers, no loss):\n" +
		"LINK    BLOCK  PER DEVICE  TOTAL  FULL ONLY\n" +
		"nb-iot  512    1m35s       3m10s  2h00m\n" +
		"lte-m   1024   800ms       1.6s   3.0s\n"
	if r.stdout != want {
		t.Errorf("plan output:\n%s\nwant:\n%s", r.stdout, want)
	}

	r = e.run("campaign", "plan", "--image", "2.0.0", "--all", "--json").ok(t)
	var p campaign.Plan
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || !reflect.DeepEqual(p, testPlan()) {
		t.Errorf("--json: %v\n%s", err, r.stdout)
	}

	e.campaigns.err = campaign.ErrEmpty
	r = e.run("campaign", "plan", "--image", "2.0.0", "--class", "nothing")
	if r.code != exitFailure || r.stderr != "fotactl: plan campaign: the selection matches no device (HTTP 422)\n" {
		t.Errorf("empty: exit %d, stderr %q", r.code, r.stderr)
	}
	e.campaigns.err = fmt.Errorf("plan: target image: image 9.9.9: %w", firmware.ErrNotFound)
	r = e.run("campaign", "plan", "--image", "9.9.9", "--all")
	if r.code != exitFailure || !strings.Contains(r.stderr, "image 9.9.9: not found (HTTP 404)") {
		t.Errorf("unknown image: exit %d, stderr %q", r.code, r.stderr)
	}

	if r := e.run("campaign", "plan", "-h").ok(t); !strings.Contains(r.stdout, "--wave N|P%[,soak=DURATION]") ||
		!strings.Contains(r.stdout, "--bytes-per-hour SIZE") || !strings.Contains(r.stdout, "flags override") {
		t.Errorf("help:\n%s", r.stdout)
	}
	if r := runCLI(t, nil, "help").ok(t); !strings.Contains(r.stdout, "campaign watch ID [--json]") ||
		!strings.Contains(r.stdout, "campaign plan SPEC-FLAGS") {
		t.Errorf("main help lacks campaigns:\n%s", r.stdout)
	}
	r = e.run("campaign")
	if r.code != exitUsage || !strings.Contains(r.stderr, "missing verb: plan, create") {
		t.Errorf("no verb: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCampaignCreateCommand(t *testing.T) {
	e := newCampaignEnv(t)
	r := e.run("campaign", "create", "--image", "2.0.0", "--endpoint", "dev-1,dev-2,dev-3", "--name", "spring").ok(t)
	want := "c1\n" +
		"campaign c1 (spring) created: 2.0.0 to 3 devices in 2 waves (2, 1); 1 skipped (no update needed or possible)\n" +
		"start it with: fotactl campaign start c1\n"
	if r.stdout != want {
		t.Errorf("create output %q\nwant %q", r.stdout, want)
	}
	if c, _ := e.campaigns.Get("c1"); c.State != campaign.Created {
		t.Errorf("state %s", c.State)
	}

	r = e.run("campaign", "create", "--image", "2.0.0", "--all", "--start").ok(t)
	if !strings.Contains(r.stdout, "campaign c2 running; follow it with: fotactl campaign watch c2\n") {
		t.Errorf("--start output %q", r.stdout)
	}
	if c, _ := e.campaigns.Get("c2"); c.State != campaign.Running {
		t.Errorf("--start: state %s", c.State)
	}

	r = e.run("campaign", "create", "--image", "2.0.0", "--all", "--start", "--json").ok(t)
	var body struct {
		Campaign map[string]any `json:"campaign"`
		Progress map[string]any `json:"progress"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &body); err != nil || body.Campaign["id"] != "c3" ||
		body.Campaign["state"] != "running" || body.Progress["state"] != "running" || body.Campaign["targets"] != nil {
		t.Errorf("--json: %v\n%s", err, r.stdout)
	}
	r = e.run("campaign", "create", "--image", "2.0.0", "--all", "--json").ok(t)
	if err := json.Unmarshal([]byte(r.stdout), &body); err != nil || body.Campaign["state"] != "created" || body.Progress["total"] != 3.0 {
		t.Errorf("--json: %v\n%s", err, r.stdout)
	}

	e.campaigns.err = campaign.ErrEmpty
	r = e.run("campaign", "create", "--image", "2.0.0", "--tag", "site=moon")
	if r.code != exitFailure || !strings.Contains(r.stderr, "create campaign: the selection matches no device (HTTP 422)") {
		t.Errorf("empty: exit %d, stderr %q", r.code, r.stderr)
	}
}

// runningCampaign is campaign c7: wave 1 of 4 has ended (2 done, 1
// failed, 1 skipped), wave 2 of 6 is open with 2 running.
func runningCampaign() (campaign.Campaign, campaign.Progress) {
	opened := testNow.Add(-time.Hour)
	c := campaign.Campaign{ID: "c7", Spec: campaign.Spec{Name: "spring", Image: strings.Repeat("cd", 32),
		Select:  campaign.Selection{Class: "sensor-a", Tags: map[string]string{"site": ""}},
		Limits:  campaign.Limits{MaxConcurrent: 2, BytesPerHour: 10 << 20, Window: &campaign.Window{Start: "22:00", End: "04:00"}},
		Failure: campaign.FailurePolicy{MaxFailurePercent: 20}},
		Version: "2.0.0", State: campaign.Running, Created: opened.Add(-time.Minute), Started: opened,
		Targets: []campaign.Target{
			{Endpoint: "dev-1", State: campaign.TargetDone, Installed: "1.0.0", Format: manifest.FormatDelta, Size: 2048, FullSize: 102400, BytesServed: 2048, Result: 1},
			{Endpoint: "dev-2", State: campaign.TargetFailed, Installed: "1.0.0", Format: manifest.FormatFull, Size: 102400, BytesServed: 4096, FellBack: true, Result: 5, Reason: "integrity check failure"},
			{Endpoint: "dev-3", Wave: 1, State: campaign.TargetRunning, Format: manifest.FormatFull, Size: 102400, BytesServed: 51200},
		}}
	p := campaign.Progress{ID: "c7", Name: "spring", Image: "2.0.0", State: campaign.Running, Created: c.Created, Started: opened,
		Total: 10, Counts: map[campaign.TargetState]int{campaign.TargetDone: 2, campaign.TargetFailed: 1, campaign.TargetSkipped: 1,
			campaign.TargetRunning: 2, campaign.TargetPending: 4},
		Waves: []campaign.WaveProgress{
			{Index: 1, Size: 4, Counts: map[campaign.TargetState]int{campaign.TargetDone: 2, campaign.TargetFailed: 1, campaign.TargetSkipped: 1},
				Opened: opened, Settled: testNow.Add(-20 * time.Minute), SoakUntil: testNow.Add(-10 * time.Minute)},
			{Index: 2, Size: 6, Counts: map[campaign.TargetState]int{campaign.TargetRunning: 2, campaign.TargetPending: 4},
				Opened: testNow.Add(-10 * time.Minute)},
		},
		Running: 2, PeakRunning: 2, BytesServed: 157696, BytesBaseline: 204800, BytesSaved: 100352,
		Failures: []campaign.FailureGroup{{Result: 5, ResultText: "integrity check failure", Reason: "integrity check failure",
			Count: 12, Endpoints: []string{"dev-2", "dev-4", "dev-5", "dev-6", "dev-7", "dev-8", "dev-9", "dev-10", "dev-11", "dev-12"}}},
	}
	return c, p
}

func TestCampaignListAndShowCommands(t *testing.T) {
	e := newCampaignEnv(t)
	r := e.run("campaign", "list").ok(t)
	if !strings.Contains(r.stdout, "No campaigns.") {
		t.Errorf("empty list %q", r.stdout)
	}
	c, p := runningCampaign()
	e.campaigns.set(c, p)
	r = e.run("campaign", "list").ok(t)
	want := "ID  NAME    IMAGE  STATE    ENDED  DONE  FAILED  RUNNING  CREATED\n" +
		"c7  spring  2.0.0  running  4/10   2     1       2        1h ago\n"
	if r.stdout != want {
		t.Errorf("list:\n%s\nwant:\n%s", r.stdout, want)
	}
	r = e.run("campaign", "list", "--json").ok(t)
	var list api.CampaignList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Campaigns) != 1 || list.Campaigns[0].Total != 10 {
		t.Errorf("list --json: %v\n%s", err, r.stdout)
	}

	r = e.run("campaign", "show", "c7").ok(t)
	for _, want := range []string{
		"Campaign:   c7 (spring)\n",
		"Image:      2.0.0, sha256 cdcd",
		"State:      running\n",
		"Selection:  class sensor-a; tagged site=*\n",
		"Limits:     2 at once; 10.0 MiB/h; 22:00-04:00 UTC; pause after more than 20 % failures in a wave\n",
		"Started:    2025-03-01T11:00:00Z (1h ago)\n",
		"Devices:    4/10 ended: 4 pending, 2 running, 2 done, 1 failed, 1 skipped\n",
		"Running:    2 now, at most 2 at once\n",
		"Bytes:      154.0 KiB served; 98.0 KiB saved by deltas (49.0 % of 200.0 KiB for full images)\n",
		"WAVE  SIZE  ENDED  DEVICES                      STATUS\n",
		"1     4     4/4    2 done, 1 failed, 1 skipped  settled " + testNow.Add(-20*time.Minute).Local().Format("15:04:05") + " (20m ago)\n",
		"2     6     0/6    4 pending, 2 running         open since " + testNow.Add(-10*time.Minute).Local().Format("15:04:05") + " (10m ago)\n",
		"Failures:\n  12 devices  result 5 (integrity check failure): integrity check failure\n" +
			"      dev-2, dev-4, dev-5, dev-6, dev-7, dev-8, dev-9, dev-10, dev-11, dev-12 and 2 more\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "ENDPOINT") {
		t.Errorf("devices listed without --devices:\n%s", r.stdout)
	}
	r = e.run("campaign", "show", "c7", "--devices").ok(t)
	for _, re := range []string{
		`ENDPOINT +WAVE +STATE +INSTALLED +PAYLOAD +SIZE +SERVED +RESULT +REASON\n`,
		`dev-1 +1 +done +1\.0\.0 +delta +2\.0 KiB +2\.0 KiB +1 \(success\) +-\n`,
		`dev-2 +1 +failed +1\.0\.0 +full \(fell back\) +100\.0 KiB +4\.0 KiB +5 \(integrity check failure\) +integrity check failure\n`,
		`dev-3 +2 +running +- +full +100\.0 KiB +50\.0 KiB +- +-\n`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("show --devices does not match %s:\n%s", re, r.stdout)
		}
	}
	r = e.run("campaign", "show", "c7", "--json").ok(t)
	var cb api.CampaignBody
	if err := json.Unmarshal([]byte(r.stdout), &cb); err != nil || len(cb.Campaign.Targets) != 3 || cb.Progress.BytesSaved != 100352 {
		t.Errorf("show --json: %v\n%s", err, r.stdout)
	}
	r = e.run("campaign", "show", "c9")
	if r.code != exitFailure || r.stderr != "fotactl: show campaign c9: campaign c9: no such campaign (HTTP 404)\n" {
		t.Errorf("unknown: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("campaign", "show")
	if r.code != exitUsage || !strings.Contains(r.stderr, "missing ID") {
		t.Errorf("no ID: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCampaignChangeCommands(t *testing.T) {
	e := newCampaignEnv(t)
	e.run("campaign", "create", "--image", "2.0.0", "--all").ok(t)
	for _, c := range []struct {
		verb, want string
		code       int
	}{
		{"start", "campaign c1 started: running; 1/3 devices ended (2 pending, 1 skipped)\nfollow it with: fotactl campaign watch c1\n", exitOK},
		{"start", "fotactl: start campaign c1: campaign c1 is running: campaign state does not allow this (HTTP 409)\n", exitFailure},
		{"pause", "campaign c1 paused: paused: paused by hand; 1/3 devices ended (2 pending, 1 skipped)\n", exitOK},
		{"resume", "campaign c1 resumed: running; 1/3 devices ended", exitOK},
		{"cancel", "campaign c1 cancelled: cancelled: cancelled by hand;", exitOK},
		{"resume", "campaign c1 is cancelled: campaign state does not allow this (HTTP 409)", exitFailure},
	} {
		r := e.run("campaign", c.verb, "c1")
		out := r.stdout
		if c.code != exitOK {
			out = r.stderr
		}
		if r.code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", c.verb, r.code, r.stdout, r.stderr, c.want)
		}
	}
	e.run("campaign", "create", "--image", "2.0.0", "--all").ok(t)
	r := e.run("campaign", "start", "c2", "--json").ok(t)
	var p campaign.Progress
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p.ID != "c2" || p.State != campaign.Running {
		t.Errorf("--json: %v\n%s", err, r.stdout)
	}
	r = e.run("campaign", "pause", "c9")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no such campaign (HTTP 404)") {
		t.Errorf("unknown: exit %d, stderr %q", r.code, r.stderr)
	}
}

// campaignEvents is a campaign's progress through its events: wave 1 of 2
// running, then a device done and one failed, then the end.
func campaignEvents(end campaign.State, reason string) []campaign.Progress {
	p := campaign.Progress{ID: "c5", Name: "night", Image: "2.0.0", State: campaign.Running, Total: 4,
		Counts:  map[campaign.TargetState]int{campaign.TargetRunning: 2, campaign.TargetPending: 2},
		Waves:   []campaign.WaveProgress{{Index: 1, Size: 2, Opened: testNow, Counts: map[campaign.TargetState]int{campaign.TargetRunning: 2}}, {Index: 2, Size: 2, Counts: map[campaign.TargetState]int{campaign.TargetPending: 2}}},
		Running: 2, PeakRunning: 2, BytesServed: 1000}
	second := p
	second.Counts = map[campaign.TargetState]int{campaign.TargetDone: 1, campaign.TargetFailed: 1, campaign.TargetPending: 2}
	second.Waves = []campaign.WaveProgress{{Index: 1, Size: 2, Opened: testNow, Settled: testNow, SoakUntil: testNow.Add(10 * time.Minute),
		Counts: map[campaign.TargetState]int{campaign.TargetDone: 1, campaign.TargetFailed: 1}}, p.Waves[1]}
	second.Running, second.BytesServed, second.BytesSaved = 0, 3072, 99328
	second.Failures = []campaign.FailureGroup{{Result: 2, ResultText: "not enough flash", Reason: "device reported update result 2", Count: 1, Endpoints: []string{"dev-2"}}}
	last := second
	last.State, last.Reason = end, reason
	if end == campaign.Done {
		last.Counts = map[campaign.TargetState]int{campaign.TargetDone: 3, campaign.TargetFailed: 1}
		last.Waves = []campaign.WaveProgress{second.Waves[0], {Index: 2, Size: 2, Opened: testNow, Settled: testNow,
			Counts: map[campaign.TargetState]int{campaign.TargetDone: 2}}}
	} else {
		last.Counts = map[campaign.TargetState]int{campaign.TargetDone: 1, campaign.TargetFailed: 1, campaign.TargetCancelled: 2}
		last.Waves = []campaign.WaveProgress{second.Waves[0], {Index: 2, Size: 2, Counts: map[campaign.TargetState]int{campaign.TargetCancelled: 2}}}
	}
	return []campaign.Progress{p, second, last}
}

func TestCampaignWatchCommand(t *testing.T) {
	e := newCampaignEnv(t)
	e.script("c5", campaignEvents(campaign.Done, "")...)
	r := e.run("campaign", "watch", "c5").ok(t)
	stamp := testNow.Local().Format("15:04:05")
	blocks := strings.Split(r.stdout, "\n\n")
	if len(blocks) != 3 || strings.Contains(r.stdout, "\x1b") {
		t.Fatalf("want 3 blocks without escapes:\n%s", r.stdout)
	}
	want := stamp + "  campaign c5 (night), image 2.0.0: running\n" +
		"  wave 1  [....................]   0.0 %  0/2  2 running; open since " + stamp + " (now)\n" +
		"  wave 2  [....................]   0.0 %  0/2  2 pending; not open\n" +
		"  all     [....................]   0.0 %  0/4  2 pending, 2 running\n" +
		"  running now: 2 (at most 2 at once)\n" +
		"  bytes: 1000 B served, 0 B saved by deltas"
	if blocks[0] != want {
		t.Errorf("first block:\n%s\nwant:\n%s", blocks[0], want)
	}
	for _, want := range []string{
		"  wave 1  [####################] 100.0 %  2/2  1 done, 1 failed; settled, soaking until " + testNow.Add(10*time.Minute).Local().Format("15:04:05") + " (in 10m)\n",
		"  all     [##########..........]  50.0 %  2/4  2 pending, 1 done, 1 failed\n",
		"  bytes: 3.0 KiB served, 97.0 KiB saved by deltas\n",
		"  failures:\n    1 device  result 2 (not enough flash): device reported update result 2\n        dev-2\n",
	} {
		if !strings.Contains(blocks[1]+"\n", want) {
			t.Errorf("second block lacks %q:\n%s", want, blocks[1])
		}
	}
	if !strings.HasPrefix(blocks[2], stamp+"  campaign c5 (night), image 2.0.0: done\n") ||
		!strings.Contains(blocks[2], "  all     [####################] 100.0 %  4/4  3 done, 1 failed\n") {
		t.Errorf("last block:\n%s", blocks[2])
	}
	if !strings.Contains(r.stderr, "Following campaign c5") {
		t.Errorf("stderr %q", r.stderr)
	}

	// Cancelled: exit 1 with the reason.
	e.script("c5", campaignEvents(campaign.Cancelled, "cancelled by hand")...)
	r = e.run("campaign", "watch", "c5")
	if r.code != exitFailure || !strings.Contains(r.stderr, "fotactl: campaign c5 was cancelled: cancelled by hand\n") ||
		!strings.Contains(r.stdout, "image 2.0.0: cancelled: cancelled by hand\n") {
		t.Errorf("cancelled: exit %d, stderr %q\n%s", r.code, r.stderr, r.stdout)
	}

	// --json: one line per event.
	r = e.run("campaign", "watch", "c5", "--json")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != exitFailure || len(lines) != 3 {
		t.Fatalf("--json: exit %d\n%s", r.code, r.stdout)
	}
	for i, want := range []campaign.State{campaign.Running, campaign.Running, campaign.Cancelled} {
		var p campaign.Progress
		if err := json.Unmarshal([]byte(lines[i]), &p); err != nil || p.State != want || p.ID != "c5" {
			t.Errorf("line %d: %v %q", i, err, lines[i])
		}
	}
	if r.stderr != "fotactl: campaign c5 was cancelled: cancelled by hand\n" {
		t.Errorf("--json stderr %q", r.stderr)
	}

	// Through the API's own stream: a finished campaign is one event;
	// an unknown one is a 404.
	c, p := runningCampaign()
	c.State, p.State, p.Ended = campaign.Done, campaign.Done, testNow
	e.campaigns.set(c, p)
	r = e.run("campaign", "watch", "c7").ok(t)
	if strings.Count(r.stdout, "campaign c7 (spring)") != 1 || !strings.Contains(r.stdout, ": done\n") {
		t.Errorf("finished campaign:\n%s", r.stdout)
	}
	r = e.run("campaign", "watch", "c9")
	if r.code != exitFailure || r.stderr != "fotactl: campaign c9: campaign c9: no such campaign (HTTP 404)\n" {
		t.Errorf("unknown: exit %d, stderr %q", r.code, r.stderr)
	}

	// A stream that ends before the campaign does is an error; Ctrl-C is
	// not.
	e.script("c5", campaignEvents(campaign.Done, "")[0], campaign.Progress{})
	r = e.run("campaign", "watch", "c5")
	if r.code != exitFailure || !strings.HasSuffix(r.stderr, "\nfotactl: campaign c5: fotad ended the stream before the campaign finished\n") {
		t.Errorf("early end: exit %d, stderr %q", r.code, r.stderr)
	}
	e.script("c6", campaignEvents(campaign.Done, "")[:1]...)
	stdout, stderr, interrupt, code := e.runAsync("campaign", "watch", "c6")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stdout.String(), "bytes:") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	interrupt()
	if c := waitExit(t, code); c != exitOK {
		t.Errorf("exit %d after Ctrl-C; stderr %s", c, stderr.String())
	}
}

func TestCampaignWatchRedraws(t *testing.T) {
	defer func(f func(*cli) bool) { outputIsTerminal = f }(outputIsTerminal)
	outputIsTerminal = func(*cli) bool { return true }
	e := newCampaignEnv(t)
	e.script("c5", campaignEvents(campaign.Done, "")...)
	r := e.run("campaign", "watch", "c5").ok(t)
	// Each block after the first moves up over the one before and clears
	// it: 6 lines for the first, 9 (with a failure) for the second.
	parts := regexp.MustCompile(`\x1b\[(\d+)A\r\x1b\[J`).FindAllStringSubmatch(r.stdout, -1)
	if len(parts) != 2 || parts[0][1] != "6" || parts[1][1] != "9" || strings.Count(r.stdout, "campaign c5") != 3 ||
		!strings.HasSuffix(r.stdout, "\n") || strings.Contains(r.stdout, "\n\n") {
		t.Errorf("output %q", r.stdout)
	}
}

func TestDeviceClassAndFirmwareCommands(t *testing.T) {
	e := newCampaignEnv(t)
	r := e.run("device", "add", "ep1", "--class", "sensor-a").ok(t)
	if !strings.Contains(r.stdout, "device ep1 provisioned (no PSK: X.509 or NoSec, class sensor-a)") {
		t.Errorf("add output %q", r.stdout)
	}
	if d, _ := e.devices.Device(t.Context(), "ep1"); d.Class != "sensor-a" {
		t.Errorf("stored %+v", d)
	}
	r = e.run("device", "show", "ep1").ok(t)
	if !strings.Contains(r.stdout, "Class:         sensor-a\n") || !strings.Contains(r.stdout, "Firmware:      1.4.2 (as last reported)\n") {
		t.Errorf("show:\n%s", r.stdout)
	}
	e.run("device", "add", "ep2").ok(t)
	r = e.run("device", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^ENDPOINT +PSK IDENTITY +CLASS +FIRMWARE +REGISTERED`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^ep1 +- +sensor-a +1\.4\.2 +no`).MatchString(lines[1]) ||
		!regexp.MustCompile(`^ep2 +- +- +- +no`).MatchString(lines[2]) {
		t.Errorf("list:\n%s", r.stdout)
	}
	r = e.run("device", "show", "ep2").ok(t)
	if strings.Contains(r.stdout, "Class:") || strings.Contains(r.stdout, "Firmware:") {
		t.Errorf("show of a device without class or version:\n%s", r.stdout)
	}
	r = e.run("device", "add", "ep3", "--class", "a\tb")
	if r.code != exitFailure || !strings.Contains(r.stderr, "control character (HTTP 400)") {
		t.Errorf("bad class: exit %d, stderr %q", r.code, r.stderr)
	}
}

// runAsync runs fotactl in the background (see updateEnv.runAsync).
func (e *campaignEnv) runAsync(args ...string) (stdout, stderr *syncBuffer, interrupt func(), code <-chan int) {
	return (&updateEnv{env: e.env}).runAsync(args...)
}

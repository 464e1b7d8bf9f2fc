package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/campaign"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/lwm2m"
)

// The campaign manager and the inventory are what fotad gives the API.
var (
	_ Campaigns = (*campaign.Manager)(nil)
	_ Inventory = (*lwm2m.Inventory)(nil)
)

type campaignsFixture struct {
	*fixture
	campaigns *fakeCampaigns
	clock     *testClock
}

func newCampaignsFixture(t testing.TB) *campaignsFixture {
	t.Helper()
	f := &fixture{t: t, devices: newMemDevices(), regs: memRegs{}, logs: &syncBuffer{}}
	clock := &testClock{t: testNow}
	campaigns := newFakeCampaigns(clock.Now)
	srv, err := New(Config{
		Devices:       f.devices,
		Registrations: f.regs,
		Transport:     statsFunc(func() coap.Stats { return coap.Stats{} }),
		Campaigns:     campaigns,
		Token:         testToken,
		Logger:        zerolog.New(f.logs).Level(zerolog.DebugLevel),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.now = clock.Now
	srv.campaignPoll = 5 * time.Millisecond
	f.srv, f.handler = srv, srv.Handler()
	return &campaignsFixture{f, campaigns, clock}
}

const goodSpec = `{"image":"2.0.0","select":{"all":true}}`

var campaignRoutes = []struct{ method, path, body string }{
	{"POST", "/api/v1/campaigns/plan", goodSpec},
	{"POST", "/api/v1/campaigns", goodSpec},
	{"GET", "/api/v1/campaigns", ""},
	{"GET", "/api/v1/campaigns/c1", ""},
	{"POST", "/api/v1/campaigns/c1/start", ""},
	{"POST", "/api/v1/campaigns/c1/pause", ""},
	{"POST", "/api/v1/campaigns/c1/resume", ""},
	{"POST", "/api/v1/campaigns/c1/cancel", ""},
	{"GET", "/api/v1/campaigns/c1/events", ""},
}

func TestCampaignsDisabled(t *testing.T) {
	f := newFixture(t)
	for _, c := range campaignRoutes {
		r := f.do(c.method, c.path, c.body)
		f.mustStatus(r, http.StatusServiceUnavailable)
		if msg := r.errorMessage(t); msg != "campaigns not enabled" {
			t.Errorf("%s %s: %q", c.method, c.path, msg)
		}
	}
	if body := string(f.do("GET", "/metrics", "").body); strings.Contains(body, "fota_campaign") {
		t.Errorf("campaign metrics without campaigns:\n%s", body)
	}
}

func TestCampaignsNeedToken(t *testing.T) {
	f := newCampaignsFixture(t)
	for _, c := range campaignRoutes {
		f.mustStatus(f.doAuth(c.method, c.path, c.body, ""), http.StatusUnauthorized)
	}
	if len(f.campaigns.specs) != 0 {
		t.Fatal("a campaign was planned without a token")
	}
}

func TestPlanCampaign(t *testing.T) {
	f := newCampaignsFixture(t)
	body := `{"name":"spring","image":" 2.0.0 ","select":{"class":"sensor-a","versions":["1.0.0"],"tags":{"site":""}},
		"waves":[{"count":10,"soak":"1h"},{"percent":50,"soak":600}],
		"limits":{"max_concurrent":4,"per_tag":{"cell":2},"bytes_per_hour":1000000,"window":{"start":"22:00","end":"04:00"}},
		"failure":{"max_failures":3,"max_failure_percent":10,"retries":2},
		"delivery":{"full":true,"push":true,"block_size":512},"asleep_wait":"30m","deadline":"48h"}`
	r := f.do("POST", "/api/v1/campaigns/plan", body)
	f.mustStatus(r, http.StatusOK)
	want := campaign.Spec{Name: "spring", Image: "2.0.0",
		Select: campaign.Selection{Class: "sensor-a", Versions: []string{"1.0.0"}, Tags: map[string]string{"site": ""}},
		Waves: []campaign.Wave{{Count: 10, Soak: campaign.Duration(time.Hour)},
			{Percent: 50, Soak: campaign.Duration(10 * time.Minute)}},
		Limits: campaign.Limits{MaxConcurrent: 4, PerTag: map[string]int{"cell": 2}, BytesPerHour: 1000000,
			Window: &campaign.Window{Start: "22:00", End: "04:00"}},
		Failure:    campaign.FailurePolicy{MaxFailures: 3, MaxFailurePercent: 10, Retries: 2},
		Delivery:   campaign.Delivery{Full: true, Push: true, BlockSize: 512},
		AsleepWait: campaign.Duration(30 * time.Minute), Deadline: campaign.Duration(48 * time.Hour)}
	got := f.campaigns.lastSpec()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spec %+v\nwant %+v", got, want)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"image", "version", "class", "devices", "waves", "delta", "full", "skip", "bytes", "full_bytes", "airtime"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("plan lacks %q: %s", key, r.body)
		}
	}
	p := decode[campaign.Plan](t, r.body)
	if len(p.Devices) != 3 || p.Devices[0].Format.String() != "delta" || !p.Devices[2].Skip || p.Airtime[0].Total != time.Minute {
		t.Errorf("plan %+v", p)
	}
	if !strings.Contains(string(r.body), `"format": "delta"`) {
		t.Errorf("formats are not named:\n%s", r.body)
	}
}

func TestCampaignSpecBadRequests(t *testing.T) {
	f := newCampaignsFixture(t)
	for _, c := range []struct{ body, want string }{
		{"", "empty request body: send a campaign spec"},
		{`{"image":"2.0.0"`, "malformed JSON"},
		{`[1]`, "must be a JSON object"},
		{`{"image":2,"select":{"all":true}}`, `field "image" must be a JSON string`},
		{`{"image":"2.0.0","select":{"all":true},"colour":"red"}`, `unknown field "colour"; known fields are name, image, select`},
		{`{"image":"2.0.0","select":{"all":true,"everyone":true}}`, `unknown field "everyone"`},
		{`{"image":"2.0.0","select":{"all":true},"limits":{"window":{"start":"22:00","end":"04:00","tz":"CET"}}}`, `unknown field "tz"`},
		{`{"image":"2.0.0","select":{"all":true}} {}`, "unexpected data"},
		{`{"select":{"all":true}}`, "invalid campaign: no target image"},
		{`{"image":"  ","select":{"all":true}}`, "no target image"},
		{`{"image":"2.0.0"}`, "the selection is empty"},
		{`{"image":"2.0.0","select":{"all":true},"waves":[{"count":1,"percent":5}]}`, "wave 1: give a count or a percentage"},
		{`{"image":"2.0.0","select":{"all":true},"limits":{"window":{"start":"25:00","end":"04:00"}}}`, "window"},
		{`{"image":"2.0.0","select":{"all":true},"deadline":"soon"}`, "duration"},
		{`{"image":"2.0.0","select":{"all":true},"delivery":{"block_size":100}}`, "block size 100"},
	} {
		for _, path := range []string{"/api/v1/campaigns/plan", "/api/v1/campaigns"} {
			r := f.do("POST", path, c.body)
			f.mustStatus(r, http.StatusBadRequest)
			if msg := r.errorMessage(t); !strings.Contains(msg, c.want) {
				t.Errorf("%s %q: %q, want %q", path, c.body, msg, c.want)
			}
		}
	}
	if len(f.campaigns.specs) != 0 {
		t.Errorf("the manager saw bad specs: %+v", f.campaigns.specs)
	}
	// The body may be large (a list of endpoints), but not without bound.
	eps := make([]string, 100000)
	for i := range eps {
		eps[i] = fmt.Sprintf("device-%06d", i)
	}
	big, _ := json.Marshal(campaign.Spec{Image: "2.0.0", Select: campaign.Selection{Endpoints: eps[:20000]}})
	f.mustStatus(f.do("POST", "/api/v1/campaigns/plan", string(big)), http.StatusOK)
	big, _ = json.Marshal(campaign.Spec{Image: "2.0.0", Select: campaign.Selection{Endpoints: eps}})
	f.mustStatus(f.do("POST", "/api/v1/campaigns/plan", string(big)), http.StatusRequestEntityTooLarge)
}

func TestCampaignErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		want   string
	}{
		{campaign.ErrEmpty, 422, "the selection matches no device"},
		{fmt.Errorf("plan: target image: image 9.9.9: %w", firmware.ErrNotFound), 404, "image 9.9.9: not found"},
		{fmt.Errorf("%w: per-tag limit", campaign.ErrInvalid), 400, "invalid campaign: per-tag limit"},
		{fmt.Errorf("version 2.0.0: %w", firmware.ErrAmbiguous), 400, "ambiguous"},
		{errors.New("bolt: disk on fire at /var/lib/fota"), 500, "internal error"},
	} {
		f := newCampaignsFixture(t)
		f.campaigns.planErr, f.campaigns.createErr = c.err, c.err
		for _, path := range []string{"/api/v1/campaigns/plan", "/api/v1/campaigns"} {
			r := f.do("POST", path, goodSpec)
			f.mustStatus(r, c.status)
			if msg := r.errorMessage(t); !strings.Contains(msg, c.want) {
				t.Errorf("%s %v: %q, want %q", path, c.err, msg, c.want)
			}
		}
		if logged := strings.Contains(f.logs.String(), "disk on fire"); logged != (c.status == 500) {
			t.Errorf("%v: logged %v", c.err, logged)
		}
	}
}

func TestCreateAndShowCampaign(t *testing.T) {
	f := newCampaignsFixture(t)
	r := f.do("GET", "/api/v1/campaigns", "")
	f.mustStatus(r, http.StatusOK)
	if got := strings.Join(strings.Fields(string(r.body)), ""); got != `{"campaigns":[]}` {
		t.Errorf("empty list %s", r.body)
	}

	r = f.do("POST", "/api/v1/campaigns", `{"name":"spring","image":"2.0.0","select":{"endpoints":["dev-1","dev-2","dev-3"]}}`)
	f.mustStatus(r, http.StatusCreated)
	if loc := r.header.Get("Location"); loc != "/api/v1/campaigns/c1" {
		t.Errorf("Location %q", loc)
	}
	var raw struct {
		Campaign map[string]json.RawMessage `json:"campaign"`
		Progress map[string]json.RawMessage `json:"progress"`
	}
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw.Campaign["targets"]; ok {
		t.Errorf("created campaign has its targets: %s", r.body)
	}
	if string(raw.Campaign["id"]) != `"c1"` || string(raw.Campaign["state"]) != `"created"` ||
		string(raw.Progress["total"]) != "3" || string(raw.Progress["state"]) != `"created"` {
		t.Errorf("body %s", r.body)
	}

	r = f.do("GET", "/api/v1/campaigns/c1", "")
	f.mustStatus(r, http.StatusOK)
	body := decode[CampaignBody](t, r.body)
	if len(body.Campaign.Targets) != 3 || body.Campaign.Targets[2].State != campaign.TargetSkipped ||
		body.Campaign.Spec.Name != "spring" || body.Progress.Counts[campaign.TargetPending] != 2 {
		t.Errorf("show %s", r.body)
	}

	r = f.do("GET", "/api/v1/campaigns", "")
	list := decode[CampaignList](t, r.body)
	if len(list.Campaigns) != 1 || list.Campaigns[0].ID != "c1" || list.Campaigns[0].Name != "spring" {
		t.Errorf("list %s", r.body)
	}

	r = f.do("GET", "/api/v1/campaigns/c9", "")
	f.mustStatus(r, http.StatusNotFound)
	if msg := r.errorMessage(t); msg != "campaign c9: no such campaign" {
		t.Errorf("unknown campaign: %q", msg)
	}
}

func TestCampaignActions(t *testing.T) {
	f := newCampaignsFixture(t)
	f.mustStatus(f.do("POST", "/api/v1/campaigns", goodSpec), http.StatusCreated)
	for _, c := range []struct {
		action string
		status int
		state  campaign.State
	}{
		{"pause", 409, ""},
		{"start", 200, campaign.Running},
		{"start", 409, ""},
		{"resume", 409, ""},
		{"pause", 200, campaign.Paused},
		{"resume", 200, campaign.Running},
		{"cancel", 200, campaign.Cancelled},
		{"cancel", 409, ""},
	} {
		r := f.do("POST", "/api/v1/campaigns/c1/"+c.action, "")
		f.mustStatus(r, c.status)
		if c.status != 200 {
			if msg := r.errorMessage(t); !strings.Contains(msg, "campaign state does not allow this") {
				t.Errorf("%s: %q", c.action, msg)
			}
			continue
		}
		if p := decode[campaign.Progress](t, r.body); p.ID != "c1" || p.State != c.state || p.Total != 3 {
			t.Errorf("%s: %s", c.action, r.body)
		}
	}
	for _, action := range []string{"start", "pause", "resume", "cancel"} {
		f.mustStatus(f.do("POST", "/api/v1/campaigns/c9/"+action, ""), http.StatusNotFound)
	}
	f.mustStatus(f.do("GET", "/api/v1/campaigns/c1/start", ""), http.StatusMethodNotAllowed)
}

// readProgress reads the next SSE event of a campaign stream, skipping
// comments; ok is false at the end of the stream.
func readProgress(t *testing.T, rd *bufio.Reader) (name string, p campaign.Progress, ok bool) {
	t.Helper()
	var data string
	for {
		line, err := rd.ReadString('\n')
		if err == io.EOF && line == "" {
			if name != "" || data != "" {
				t.Fatal("stream ended inside an event")
			}
			return "", p, false
		}
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if name == "" && data == "" {
				continue
			}
			if err := json.Unmarshal([]byte(data), &p); err != nil {
				t.Fatalf("event data %q: %v", data, err)
			}
			return name, p, true
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if data != "" {
				t.Fatalf("event data on several lines")
			}
			data = strings.TrimPrefix(line, "data: ")
		case strings.HasPrefix(line, "id: "):
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
}

func TestCampaignEvents(t *testing.T) {
	f := newCampaignsFixture(t)
	ts, handled := eventServer(t, &updatesFixture{fixture: f.fixture})
	const path = "/api/v1/campaigns/c1/events"

	r := f.do("GET", path, "")
	f.mustStatus(r, http.StatusNotFound)
	if r.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
	}

	f.mustStatus(f.do("POST", "/api/v1/campaigns", goodSpec), http.StatusCreated)
	f.mustStatus(f.do("POST", "/api/v1/campaigns/c1/start", ""), http.StatusOK)
	resp, rd := openEvents(t, t.Context(), ts.URL+path)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, header %v", resp.StatusCode, resp.Header)
	}
	name, p, ok := readProgress(t, rd)
	if !ok || name != "progress" || p.State != campaign.Running || p.Total != 3 {
		t.Fatalf("first event %s %+v", name, p)
	}
	// Unchanged polls send nothing; a change is the next event.
	time.Sleep(30 * time.Millisecond)
	f.campaigns.setProgress("c1", func(p *campaign.Progress) {
		p.Running, p.Counts = 2, map[campaign.TargetState]int{campaign.TargetRunning: 2, campaign.TargetSkipped: 1}
	})
	if _, p, _ = readProgress(t, rd); p.Running != 2 {
		t.Fatalf("second event %+v", p)
	}
	f.campaigns.setProgress("c1", func(p *campaign.Progress) {
		p.State, p.Running, p.BytesServed, p.Ended = campaign.Done, 0, 11000, testNow
		p.Counts = map[campaign.TargetState]int{campaign.TargetDone: 2, campaign.TargetSkipped: 1}
	})
	if _, p, _ = readProgress(t, rd); p.State != campaign.Done || p.BytesServed != 11000 {
		t.Fatalf("last event %+v", p)
	}
	if _, p, ok := readProgress(t, rd); ok {
		t.Fatalf("event after the end: %+v", p)
	}
	waitHandled(t, handled, path)

	// A finished campaign: one event, and the end.
	_, rd = openEvents(t, t.Context(), ts.URL+path)
	if _, p, ok := readProgress(t, rd); !ok || p.State != campaign.Done {
		t.Fatalf("event of a finished campaign %+v", p)
	}
	if _, _, ok := readProgress(t, rd); ok {
		t.Fatal("a finished campaign's stream went on")
	}
	// A browser reconnecting after the end is told it is over: 204, which
	// stops EventSource from reconnecting.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Last-Event-ID", "3")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("reconnect to a finished campaign's stream: %v %v, want 204", resp, err)
	} else {
		resp.Body.Close()
	}

	// A cancelled campaign ends the stream too; so does StopStreams.
	f.mustStatus(f.do("POST", "/api/v1/campaigns", goodSpec), http.StatusCreated)
	_, rd = openEvents(t, t.Context(), ts.URL+"/api/v1/campaigns/c2/events")
	if _, p, _ := readProgress(t, rd); p.State != campaign.Created {
		t.Fatalf("c2 %+v", p)
	}
	f.mustStatus(f.do("POST", "/api/v1/campaigns/c2/cancel", ""), http.StatusOK)
	if _, p, _ := readProgress(t, rd); p.State != campaign.Cancelled {
		t.Fatalf("c2 %+v", p)
	}
	if _, _, ok := readProgress(t, rd); ok {
		t.Fatal("a cancelled campaign's stream went on")
	}

	f.mustStatus(f.do("POST", "/api/v1/campaigns", goodSpec), http.StatusCreated)
	_, rd = openEvents(t, t.Context(), ts.URL+"/api/v1/campaigns/c3/events")
	readProgress(t, rd)
	f.srv.StopStreams()
	if _, _, ok := readProgress(t, rd); ok {
		t.Fatal("event after StopStreams")
	}
	waitHandled(t, handled, "/api/v1/campaigns/c3/events")
	f.mustStatus(f.do("GET", "/api/v1/campaigns/c3/events", ""), http.StatusServiceUnavailable)
}

func TestCampaignMetrics(t *testing.T) {
	f := newCampaignsFixture(t)
	f.campaigns.setProgress("c1", func(p *campaign.Progress) {
		p.State, p.Running, p.BytesServed, p.BytesSaved = campaign.Running, 3, 123456, 654321
		p.Counts = map[campaign.TargetState]int{campaign.TargetDone: 5, campaign.TargetRunning: 3, campaign.TargetFailed: 4}
		p.Failures = []campaign.FailureGroup{
			{Result: 5, Reason: "integrity", Count: 2, Endpoints: []string{"a", "b"}},
			{Result: 8, Reason: "update failed", Count: 1, Endpoints: []string{"c"}},
			{Result: 5, Reason: "other reason", Count: 1, Endpoints: []string{"d"}},
		}
	})
	// Finished a day and more ago: no longer exported.
	f.campaigns.setProgress("c0", func(p *campaign.Progress) {
		p.State, p.Ended = campaign.Done, testNow.Add(-25*time.Hour)
	})
	f.campaigns.setProgress("c2", func(p *campaign.Progress) {
		p.State, p.Ended = campaign.Cancelled, testNow.Add(-time.Hour)
	})
	r := f.do("GET", "/metrics", "")
	f.mustStatus(r, http.StatusOK)
	body := string(r.body)
	for _, line := range []string{
		"# TYPE fota_campaign_devices gauge",
		`fota_campaign_devices{campaign="c1",state="done"} 5`,
		`fota_campaign_devices{campaign="c1",state="running"} 3`,
		`fota_campaign_devices{campaign="c1",state="failed"} 4`,
		`fota_campaign_devices{campaign="c1",state="pending"} 0`,
		`fota_campaign_devices{campaign="c1",state="expired"} 0`,
		`fota_campaign_bytes_served{campaign="c1"} 123456`,
		`fota_campaign_bytes_saved{campaign="c1"} 654321`,
		`fota_campaign_failures{campaign="c1",result="5"} 3`,
		`fota_campaign_failures{campaign="c1",result="8"} 1`,
		`fota_campaign_running{campaign="c1"} 3`,
		`fota_campaign_running{campaign="c2"} 0`,
		`fota_campaign_devices{campaign="c2",state="done"} 0`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	if strings.Contains(body, `campaign="c0"`) {
		t.Errorf("a campaign ended long ago is exported")
	}
	if strings.Contains(body, "integrity") || strings.Contains(body, `"a"`) {
		t.Errorf("free text in labels")
	}
}

func TestDeviceClassAndFirmware(t *testing.T) {
	f := &fixture{t: t, devices: newMemDevices(), regs: memRegs{}, logs: &syncBuffer{}}
	srv, err := New(Config{Devices: f.devices, Registrations: f.regs, Transport: statsFunc(func() coap.Stats { return coap.Stats{} }),
		Inventory: inventoryMap{"ep1": "1.2.0"}, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	srv.now = func() time.Time { return testNow }
	f.srv, f.handler = srv, srv.Handler()

	r := f.do("POST", "/api/v1/devices", `{"endpoint":"ep1","class":"sensor-a"}`)
	f.mustStatus(r, http.StatusCreated)
	if v := decode[DeviceView](t, r.body); v.Class != "sensor-a" || v.FirmwareVersion != "1.2.0" {
		t.Errorf("view %s", r.body)
	}
	if d, _ := f.devices.Device(t.Context(), "ep1"); d.Class != "sensor-a" {
		t.Errorf("stored %+v", d)
	}
	f.mustStatus(f.do("PUT", "/api/v1/devices/ep2", `{}`), http.StatusCreated)
	r = f.do("GET", "/api/v1/devices/ep2", "")
	if strings.Contains(string(r.body), "class") || strings.Contains(string(r.body), "firmware_version") {
		t.Errorf("empty class and version shown: %s", r.body)
	}
	list := decode[DeviceList](t, f.do("GET", "/api/v1/devices", "").body)
	if len(list.Devices) != 2 || list.Devices[0].FirmwareVersion != "1.2.0" || list.Devices[0].Class != "sensor-a" {
		t.Errorf("list %+v", list)
	}
	// A registered endpoint's view carries them too.
	f.regs["ep1"] = lwm2m.Registration{ID: "r1", Endpoint: "ep1"}
	if v := decode[DeviceView](t, f.do("GET", "/api/v1/devices/ep1", "").body); !v.Registered || v.Class != "sensor-a" || v.FirmwareVersion != "1.2.0" {
		t.Errorf("registered view %+v", v)
	}

	for _, c := range []struct{ body, want string }{
		{`{"endpoint":"ep3","class":"a\u0007b"}`, "class \"a\\ab\" holds a control character"},
		{`{"endpoint":"ep3","class":"` + strings.Repeat("c", 200) + `"}`, "class is 200 bytes"},
		{`{"endpoint":"ep3","klass":"x"}`, `"link_mtu" and "class"`},
	} {
		r := f.do("POST", "/api/v1/devices", c.body)
		f.mustStatus(r, http.StatusBadRequest)
		if msg := r.errorMessage(t); !strings.Contains(msg, c.want) {
			t.Errorf("%s: %q, want %q", c.body, msg, c.want)
		}
	}
}

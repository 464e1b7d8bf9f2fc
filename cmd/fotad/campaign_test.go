package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/delivery/campaign"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

// Fleet of TestCampaignOverFleet: 210 devices.
const (
	cfDevices      = 210
	cfMaxRunning   = 20
	cfPerCell      = 8 // at most this many per value of the "cell" tag
	cfMaxFailures  = 3 // per wave, before the campaign pauses
	cfSoak         = 2 * time.Second
	cfAsleepWait   = 10 * time.Second
	cfLateDevices  = 5 // offline until after fotad's restart
	cfUnknown      = 15
	cfOnTarget     = 5
	cfQueueDevices = 10
	cfFailing      = 5 // bad image: the bootloader rolls back (result 8), all in wave 2
)

// cfDevice is one simulated device of the fleet and what it should end as.
type cfDevice struct {
	ep      string
	cfg     simulator.Config
	dev     *simulator.Device
	want    campaign.TargetState
	full    bool // an unknown precursor gets the full image
	late    bool // started after fotad's restart
	failing bool
}

// TestCampaignOverFleet runs one campaign through fotad's API over 210
// simulated devices behind wifi, catm1 and nbiot link relays:
//   - 185 run 1.0.0 (a delta to 2.0.0), 15 run a 0.9.0 fotad never stored
//     (unknown precursor: the full image), 5 run 2.0.0 already (skipped);
//   - 10 are in queue mode, asleep most of the time; 5 are offline until
//     after fotad restarted;
//   - 5 of wave 2 install a bad image, which their bootloader rolls back.
//
// Waves of 10, 25 % and the rest, 2 s soak; at most 20 updates at once and
// 8 per cell; the campaign pauses when a wave has more than 3 failures.
// The test checks, while it runs, that no more than 20 (and 8 per cell)
// ever run at once; that the campaign pauses in wave 2 and starts
// nothing while paused; that resume completes it across a restart of
// fotad in the middle of wave 3; and at the end that every device is in
// the end state it should be, for the right reason, that no wave started
// before the one before it had soaked, and that the devices run what the
// campaign says.
func TestCampaignOverFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("210 devices")
	}
	v1, v2 := readCorpus(t, "v1"), readCorpus(t, "v2")
	v0 := bytes.Replace(v1, []byte("1.0.0"), []byte("0.9.0"), -1)
	v0 = append(v0, "an older build"...)
	coapsPort, apiPort := freeUDPPort(t), freeTCPPort(t)
	s := startServer(t, func(c *fileConfig) {
		c.CoAP.CoAPSListen = "127.0.0.1:" + coapsPort
		c.API.Listen = "127.0.0.1:" + apiPort
		c.Campaigns.Tick = 250 * time.Millisecond
		// The queue-mode devices listen for 3 s after they spoke.
		c.LwM2M.AwakeTime = 2 * time.Second
		c.Delivery.RetryBackoff = time.Second
		// A notification lost (UDP, or a device that changed its state
		// before the observation was set up) costs a poll: 5 s, not 2 min.
		c.Delivery.PollInterval = 5 * time.Second
	})
	dmAddImages(t, s, "meter", map[string][]byte{"1.0.0": v1, "2.0.0": v2})

	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
	devs := make([]*cfDevice, cfDevices)
	byEP := map[string]*cfDevice{}
	for i := range devs {
		d := &cfDevice{ep: fmt.Sprintf("cf-%03d", i), want: campaign.TargetDone}
		prof := cfProfile(t, i)
		relay := dmRelay(t, s.coapsAddr(), prof, uint64(1000+i))
		code := dmAPI(t, s, "POST", "/api/v1/devices", map[string]any{"endpoint": d.ep, "psk_identity": d.ep,
			"psk_key": fmt.Sprintf("%x", d.ep+"-key"), "tags": map[string]string{"cell": fmt.Sprint(i % 4), "link": prof.Name}}, nil)
		if code != http.StatusCreated {
			t.Fatalf("provision %s: HTTP %d", d.ep, code)
		}
		d.cfg = simulator.Config{Endpoint: d.ep, PSKIdentity: d.ep, PSKKey: []byte(d.ep + "-key"),
			Server: relay.Addr().String(), Firmware: v1, FirmwareVersion: "1.0.0", Sequence: 1, Class: "meter",
			TrustKey: s.d.firmware.PublicKey(), BlockSize: 1024, BootTime: 100 * time.Millisecond,
			Lifetime: 20 * time.Second, BlockTimeout: 5 * time.Second, RegTimeout: 5 * time.Second, Logger: logger}
		switch {
		case i < cfUnknown:
			d.cfg.Firmware, d.cfg.FirmwareVersion, d.full = v0, "0.9.0", true
		case i < cfUnknown+cfOnTarget:
			d.cfg.Firmware, d.cfg.FirmwareVersion, d.cfg.Sequence, d.want = v2, "2.0.0", 2, campaign.TargetSkipped
		case i < cfUnknown+cfOnTarget+cfQueueDevices:
			d.cfg.Queue, d.cfg.Awake, d.cfg.Lifetime = true, 3*time.Second, 20*time.Second
		case i < cfUnknown+cfOnTarget+cfQueueDevices+cfLateDevices:
			d.late = true
		}
		devs[i], byEP[d.ep] = d, d
		if !d.late {
			d.dev = dmStartDevice(t, d.cfg)
		}
	}
	// The inventory learns every online device's version as it registers.
	waitWithin(t, "every online device registered and its version read", 2*time.Minute, func() bool {
		for _, d := range devs {
			if v, ok := s.d.inventory.Installed(d.ep); !d.late && (!ok || v != d.cfg.FirmwareVersion) {
				return false
			}
		}
		return true
	})

	spec := campaign.Spec{Name: "fleet", Image: "2.0.0", Select: campaign.Selection{Tags: map[string]string{"cell": ""}},
		Waves:      []campaign.Wave{{Count: 10, Soak: campaign.Duration(cfSoak)}, {Percent: 25, Soak: campaign.Duration(cfSoak)}},
		Limits:     campaign.Limits{MaxConcurrent: cfMaxRunning, PerTag: map[string]int{"cell": cfPerCell}},
		Failure:    campaign.FailurePolicy{MaxFailures: cfMaxFailures, Retries: 1},
		AsleepWait: campaign.Duration(cfAsleepWait)}
	var plan campaign.Plan
	if code := dmAPI(t, s, "POST", "/api/v1/campaigns/plan", spec, &plan); code != http.StatusOK {
		t.Fatalf("plan: HTTP %d", code)
	}
	if plan.Skip != cfOnTarget || plan.Full != cfUnknown+cfLateDevices || len(plan.Devices) != cfDevices {
		// Late devices have never registered: their version is unknown.
		t.Fatalf("plan: %d devices, %d delta, %d full, %d skip", len(plan.Devices), plan.Delta, plan.Full, plan.Skip)
	}
	var created struct {
		Campaign campaign.Campaign `json:"campaign"`
	}
	if code := dmAPI(t, s, "POST", "/api/v1/campaigns", spec, &created); code != http.StatusCreated {
		t.Fatalf("create: HTTP %d", code)
	}
	id := created.Campaign.ID
	c, err := s.d.campaigns.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	// Arm the failures in wave 2, on devices that get a delta.
	failing := 0
	for _, tg := range c.Targets {
		d := byEP[tg.Endpoint]
		if tg.Wave == 1 && failing < cfFailing && d.dev != nil && !d.full && !d.cfg.Queue && d.want == campaign.TargetDone {
			d.dev.Inject(simulator.FaultBadImage)
			d.failing, d.want = true, campaign.TargetFailed
			failing++
		}
	}
	if failing != cfFailing {
		t.Fatalf("only %d devices of wave 2 could be made to fail", failing)
	}

	t0 := time.Now()
	mark := func(what string) { t.Logf("%5.1f s: %s", time.Since(t0).Seconds(), what) }
	mon := newCampaignMonitor(t, s, id)
	if code := dmAPI(t, s, "POST", "/api/v1/campaigns/"+id+"/start", nil, nil); code != http.StatusOK {
		t.Fatalf("start: HTTP %d", code)
	}

	// Wave 2 fails: the campaign pauses, and starts nothing while paused.
	p := mon.waitFor("paused by the failure policy", 3*time.Minute, func(p campaign.Progress) bool { return p.State == campaign.Paused })
	if !strings.Contains(p.Reason, "wave 2") {
		t.Fatalf("paused: %q, want it to name wave 2", p.Reason)
	}
	mark("paused: " + p.Reason)
	mon.waitFor("running updates ended", 2*time.Minute, func(p campaign.Progress) bool { return p.Running == 0 })
	mark("running updates ended")
	started := mon.started()
	time.Sleep(3 * time.Second)
	if now := mon.started(); now != started {
		t.Fatalf("%d devices started while the campaign was paused", now-started)
	}
	if code := dmAPI(t, s, "POST", "/api/v1/campaigns/"+id+"/resume", nil, nil); code != http.StatusOK {
		t.Fatalf("resume: HTTP %d", code)
	}
	mark("resumed")

	// Restart fotad in the middle of wave 3, then bring the late devices up.
	mon.waitFor("wave 3 under way", 3*time.Minute, func(p campaign.Progress) bool {
		w := p.Waves[len(p.Waves)-1]
		return w.Counts[campaign.TargetDone] >= 20 && p.Running > 0
	})
	mon.stop()
	mark("restarting fotad")
	old := s.d.campaigns
	s.restart()
	// As the old fotad left it: persisted on its way down.
	before, err := old.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	mon = newCampaignMonitor(t, s, id)
	after, err := s.d.campaigns.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	cfSameProgress(t, before, after)
	for _, d := range devs {
		if d.late {
			d.dev = dmStartDevice(t, d.cfg)
		}
	}
	p = mon.waitFor("campaign done", 5*time.Minute, func(p campaign.Progress) bool { return p.State.Finished() })
	mon.stop()
	mark("campaign " + string(p.State))
	if p.State != campaign.Done {
		t.Fatalf("campaign ended %s: %s", p.State, p.Reason)
	}
	c, err = s.d.campaigns.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	cfCheckEnd(t, c, byEP, sha256.Sum256(v2))
	cfCheckWaves(t, c)
	if mon.peak > cfMaxRunning || c.PeakRunning > cfMaxRunning {
		t.Fatalf("%d updates ran at once (recorded %d), limit %d", mon.peak, c.PeakRunning, cfMaxRunning)
	}
	t.Logf("done: %v; peak running %d (recorded %d), peak per cell %d; served %d B, full-only %d B, saved %d B",
		p.Counts, mon.peak, c.PeakRunning, mon.peakCell, p.BytesServed, p.BytesBaseline, p.BytesSaved)
	if p.BytesSaved <= 0 || p.BytesServed >= p.BytesBaseline {
		t.Fatalf("bytes served %d, baseline %d, saved %d: the deltas saved nothing", p.BytesServed, p.BytesBaseline, p.BytesSaved)
	}
}

// cfProfile: 70 % wifi, 20 % catm1, 10 % nbiot, without random loss (see
// TestDeliveryMatrix). The devices that get the full image and the
// queue-mode ones are on wifi or catm1: over NB-IoT each would hold its
// wave back for a minute or more, and CI time with it.
func cfProfile(t *testing.T, i int) link.Profile {
	name := "wifi"
	switch i % 10 {
	case 7, 8:
		name = "catm1"
	case 9:
		name = "nbiot"
		if i < cfUnknown+cfOnTarget+cfQueueDevices {
			name = "catm1"
		}
	}
	prof, ok := link.Lookup(name)
	if !ok {
		t.Fatalf("no profile %s", name)
	}
	prof.Up.Loss, prof.Down.Loss = 0, 0
	return prof
}

// cfSameProgress checks that nothing a restart must keep was lost.
func cfSameProgress(t *testing.T, before, after campaign.Campaign) {
	t.Helper()
	if after.State != before.State || len(after.Targets) != len(before.Targets) {
		t.Fatalf("after restart: %s with %d devices; before: %s with %d", after.State, len(after.Targets), before.State, len(before.Targets))
	}
	for i, b := range before.Targets {
		a := after.Targets[i]
		if a.Endpoint != b.Endpoint || a.Wave != b.Wave {
			t.Fatalf("device %d: %s wave %d before, %s wave %d after", i, b.Endpoint, b.Wave, a.Endpoint, a.Wave)
		}
		// A device that had ended stays ended as it was; one that ran may
		// have ended since the snapshot.
		if b.State.Finished() && (a.State != b.State || a.Result != b.Result) {
			t.Fatalf("%s: %s (result %d) before the restart, %s (result %d) after", b.Endpoint, b.State, b.Result, a.State, a.Result)
		}
		if b.State == campaign.TargetRunning && a.State == campaign.TargetPending {
			t.Fatalf("%s was running before the restart and is pending after it", b.Endpoint)
		}
	}
	for w := range before.Waves {
		if !after.Waves[w].Opened.Equal(before.Waves[w].Opened) || after.Waves[w].Forgiven != before.Waves[w].Forgiven {
			t.Fatalf("wave %d: %+v before, %+v after", w+1, before.Waves[w], after.Waves[w])
		}
	}
}

// cfCheckEnd checks every device's end state and reason against what it
// should be, and the device itself.
func cfCheckEnd(t *testing.T, c campaign.Campaign, byEP map[string]*cfDevice, v2sum [32]byte) {
	t.Helper()
	for _, tg := range c.Targets {
		d := byEP[tg.Endpoint]
		if tg.State != d.want {
			t.Errorf("%s: %s (%q), want %s", tg.Endpoint, tg.State, tg.Reason, d.want)
			continue
		}
		st := d.dev.Status()
		switch tg.State {
		case campaign.TargetDone:
			running, _ := d.dev.Flash().Running()
			if st.Version != "2.0.0" || sha256.Sum256(running) != v2sum || tg.Result != 1 {
				t.Errorf("%s: done, but the device runs %s (result %d)", tg.Endpoint, st.Version, tg.Result)
			}
			// A late device was planned a full image (its version was not
			// known), but the driver reads /3/0/3 when its turn comes.
			wantFormat := manifest.FormatDelta
			if d.full {
				wantFormat = manifest.FormatFull
			}
			if tg.Format != wantFormat {
				t.Errorf("%s: delivered as %s, want %s", tg.Endpoint, tg.Format, wantFormat)
			}
		case campaign.TargetFailed:
			if tg.Result != 8 || !strings.Contains(tg.Reason, "update failed") || st.Version != d.cfg.FirmwareVersion {
				t.Errorf("%s: failed with result %d (%q), device on %s; want result 8 and the old image", tg.Endpoint, tg.Result, tg.Reason, st.Version)
			}
		case campaign.TargetSkipped:
			if !strings.Contains(tg.Reason, "2.0.0 already") {
				t.Errorf("%s: skipped because %q", tg.Endpoint, tg.Reason)
			}
		}
	}
}

// cfCheckWaves checks that no device started before its wave opened and
// that no wave opened before the one before it had settled and soaked.
func cfCheckWaves(t *testing.T, c campaign.Campaign) {
	t.Helper()
	for w, ws := range c.Waves {
		if w > 0 {
			prev := c.Waves[w-1]
			if prev.Settled.IsZero() || ws.Opened.Before(prev.Settled.Add(time.Duration(prev.Soak))) {
				t.Errorf("wave %d opened %v, before wave %d settled (%v) and soaked %v", w+1, ws.Opened, w, prev.Settled, time.Duration(prev.Soak))
			}
		}
	}
	for _, tg := range c.Targets {
		if !tg.Started.IsZero() && tg.Started.Before(c.Waves[tg.Wave].Opened) {
			t.Errorf("%s of wave %d started %v, before its wave opened %v", tg.Endpoint, tg.Wave+1, tg.Started, c.Waves[tg.Wave].Opened)
		}
	}
}

// campaignMonitor samples the driver every 50 ms and records the most
// updates of the campaign that ran at once, overall and per cell.
type campaignMonitor struct {
	t           *testing.T
	s           *testServer
	id          string
	stopc, done chan struct{}
	once        sync.Once

	mu       sync.Mutex
	peak     int
	peakCell int
	last     campaign.Progress
}

func newCampaignMonitor(t *testing.T, s *testServer, id string) *campaignMonitor {
	m := &campaignMonitor{t: t, s: s, id: id, stopc: make(chan struct{}), done: make(chan struct{})}
	go m.run()
	t.Cleanup(func() { m.halt() }) // before the server stops, should the test fail
	return m
}

func (m *campaignMonitor) halt() {
	m.once.Do(func() { close(m.stopc) })
	<-m.done
}

func (m *campaignMonitor) run() {
	defer close(m.done)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := m.s.d.campaigns.Get(m.id)
		if err == nil {
			n, cells := 0, map[string]int{}
			for _, tg := range c.Targets {
				if u, ok := m.s.d.updates.Status(tg.Endpoint); ok && u.Campaign == m.id && !u.Phase.Finished() {
					n++
					cells[tg.Tags["cell"]]++
				}
			}
			p, _ := m.s.d.campaigns.Progress(m.id)
			m.mu.Lock()
			m.peak = max(m.peak, n)
			for cell, k := range cells {
				if k > cfPerCell {
					m.t.Errorf("cell %s: %d updates at once, limit %d", cell, k, cfPerCell)
				}
				m.peakCell = max(m.peakCell, k)
			}
			m.last = p
			m.mu.Unlock()
		}
		select {
		case <-m.stopc:
			return
		case <-tick.C:
		}
	}
}

// waitFor waits until the campaign's progress satisfies cond.
func (m *campaignMonitor) waitFor(what string, within time.Duration, cond func(campaign.Progress) bool) campaign.Progress {
	m.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		p := m.last
		m.mu.Unlock()
		if p.ID != "" && cond(p) {
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	// What was stuck, for the one who reads the failure.
	var stacks strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
	m.t.Logf("goroutines:\n%s", stacks.String())
	if c, err := m.s.d.campaigns.Get(m.id); err == nil {
		for _, tg := range c.Targets {
			if !tg.State.Finished() {
				u, _ := m.s.d.updates.Status(tg.Endpoint)
				m.t.Logf("%s: %s since %v; update %s, result %d, executed %v; queue %d", tg.Endpoint, tg.State, tg.Started,
					u.Phase, u.Result, u.Executed, len(m.s.d.ops.Queue(tg.Endpoint)))
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t.Fatalf("%s: not within %v; last progress: %s %q, %v", what, within, m.last.State, m.last.Reason, m.last.Counts)
	return campaign.Progress{}
}

// started counts the devices the campaign has started.
func (m *campaignMonitor) started() int {
	c, err := m.s.d.campaigns.Get(m.id)
	if err != nil {
		m.t.Fatal(err)
	}
	n := 0
	for _, tg := range c.Targets {
		if !tg.Started.IsZero() {
			n++
		}
	}
	return n
}

// stop ends the sampling and returns the campaign as it is.
func (m *campaignMonitor) stop() campaign.Campaign {
	m.halt()
	c, err := m.s.d.campaigns.Get(m.id)
	if err != nil {
		m.t.Fatal(err)
	}
	return c
}

func freeTCPPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// TestCampaignSurvivesSIGKILL: fotad, as a child process, is killed with
// SIGKILL in the middle of a campaign over 30 devices and started again on
// the same data (TestCampaignOverFleet restarts it gracefully). Every
// device that had ended keeps its end, and the
// campaign completes: every device runs 2.0.0, and none downloaded its
// package twice (a device the campaign had started before the kill is
// followed to its end, not started again).
func TestCampaignSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("30 devices")
	}
	const n = 30
	v1, v2 := resumeImages()
	dir := t.TempDir()
	opts, coapsAddr := childOptions(t, "campaigns:\n  tick: 200ms\ndelivery:\n  poll_interval: 5s\n")
	p := startProcessWith(t, dir, opts)
	c := newChildAPI(t, dir, opts.API)
	c.addMeterImages(t, v1, v2)
	key, err := firmware.LoadKey(filepath.Join(dir, firmware.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	devs := map[string]*simulator.Device{}
	for i := range n {
		ep := fmt.Sprintf("kill-%02d", i)
		if code := c.json("POST", "/api/v1/devices", map[string]any{"endpoint": ep, "psk_identity": ep,
			"psk_key": hex.EncodeToString([]byte(ep + "-key"))}, nil); code != http.StatusCreated {
			t.Fatalf("provision %s: HTTP %d", ep, code)
		}
		cfg := resumeDevice(t, ep, resumeRelay(t, coapsAddr, uint64(i)).Addr().String(), v1, &key.PublicKey)
		cfg.Lifetime, cfg.RegTimeout = 20*time.Second, 5*time.Second
		devs[ep] = dmStartDevice(t, cfg)
	}
	spec := campaign.Spec{Image: "2.0.0", Select: campaign.Selection{All: true},
		Waves:  []campaign.Wave{{Count: 5, Soak: campaign.Duration(time.Second)}},
		Limits: campaign.Limits{MaxConcurrent: 4}}
	waitWithin(t, "every device's version known", 2*time.Minute, func() bool {
		var plan campaign.Plan
		return c.json("POST", "/api/v1/campaigns/plan", spec, &plan) == http.StatusOK && plan.Delta == n
	})
	var created api.CampaignBody
	if code := c.json("POST", "/api/v1/campaigns", spec, &created); code != http.StatusCreated {
		t.Fatalf("create: HTTP %d", code)
	}
	id := created.Campaign.ID
	if code := c.json("POST", "/api/v1/campaigns/"+id+"/start", nil, nil); code != http.StatusOK {
		t.Fatalf("start: HTTP %d", code)
	}
	get := func() api.CampaignBody {
		var b api.CampaignBody
		if code := c.json("GET", "/api/v1/campaigns/"+id, nil, &b); code != http.StatusOK {
			t.Fatalf("GET campaign: HTTP %d", code)
		}
		return b
	}
	waitWithin(t, "a third done", 3*time.Minute, func() bool { return get().Progress.Counts[campaign.TargetDone] >= n/3 })
	before := get().Campaign
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill fotad: %v", err)
	}
	<-p.exited
	startProcessWith(t, dir, opts)

	var end api.CampaignBody
	waitWithin(t, "campaign done", 4*time.Minute, func() bool {
		end = get()
		return end.Progress.State.Finished()
	})
	if end.Progress.State != campaign.Done || end.Progress.Counts[campaign.TargetDone] != n {
		t.Fatalf("campaign ended %s: %v (%s)", end.Progress.State, end.Progress.Counts, end.Progress.Reason)
	}
	after := map[string]campaign.Target{}
	for _, tg := range end.Campaign.Targets {
		after[tg.Endpoint] = tg
	}
	// The API shows the campaign as it is in memory, a moment ahead of the
	// store: a device seen done may be stored as running at the kill, and
	// is then followed to the same end again. Its end must not change.
	for _, b := range before.Targets {
		if a := after[b.Endpoint]; b.State.Finished() && (a.State != b.State || a.Result != b.Result) {
			t.Errorf("%s: %s (result %d) before the kill, %s (result %d) after", b.Endpoint, b.State, b.Result, a.State, a.Result)
		}
	}
	for ep, d := range devs {
		st := d.Status()
		if st.Version != "2.0.0" {
			t.Errorf("%s runs %s", ep, st.Version)
		}
		// Downloading the package a second time would be updating twice;
		// a download resumed after the kill repeats a block or two.
		if size := after[ep].Size; st.Downloaded >= 2*size {
			t.Errorf("%s downloaded %d bytes of a %d-byte package: updated twice?", ep, st.Downloaded, size)
		}
	}
	if end.Progress.PeakRunning > 4 {
		t.Errorf("%d ran at once, limit 4", end.Progress.PeakRunning)
	}
}

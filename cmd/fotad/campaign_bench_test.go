package main

// BenchmarkCampaign runs one campaign over a fleet of simulated devices
// and measures what it costs the server and how long it takes. fotad runs
// as a child process (see BenchmarkConcurrentDownloads), the devices in
// this process, each behind its own link relay with a built-in profile and
// its random loss. Run it with:
//
//	go test -run '^$' -bench Campaign -benchtime 1x -timeout 60m ./cmd/fotad/
//
// The fleet (FOTA_CAMPAIGN_N devices, default 1000) runs v5.bin ("1.0.0")
// and is updated to v6.bin ("2.0.0"): 381 KB of Cortex-M4 firmware whose
// delta is about 2.4 KB. Links cycle catm1, nbiot, catm1, wifi, catm1 (60 %
// catm1, 20 % nbiot, 20 % wifi); every 50th device runs an image fotad does
// not know (an unknown precursor) and is put on wifi, since it gets the
// full image. The campaign: waves of 1 % and 10 % with 10 s of soak, then
// the rest; at most FOTA_CAMPAIGN_CONCURRENT (default 200) updates at once.
// FOTA_CAMPAIGN_FULL=1 sends every device the full image instead: the
// full-image-only baseline, side by side (over NB-IoT a full image takes
// about 13 min per device, so this run takes about 50 min: -timeout 120m).
//
// Reported: the total time from start to done; the plan's estimate; the
// child's peak RSS (VmHWM) and its RSS with the fleet registered and idle;
// CPU time over the campaign; bytes served against the full-image-only
// baseline (every device sent the full image).

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fotahub/fota/delivery/campaign"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

func BenchmarkCampaign(b *testing.B) {
	if _, err := os.Stat(corpus + "v6.bin"); err != nil {
		b.Skip("needs v5.bin and v6.bin (delivery/delta/testdata/firmware/build.sh)")
	}
	n := dlEnvInt(b, "FOTA_CAMPAIGN_N", 1000)
	for range b.N {
		benchCampaign(b, n, dlEnvInt(b, "FOTA_CAMPAIGN_CONCURRENT", 200))
	}
}

var cbProfiles = []string{"catm1", "nbiot", "catm1", "wifi", "catm1"}

func benchCampaign(b *testing.B, n, concurrent int) {
	b.StopTimer()
	old, next := readCorpus(b, "v5"), readCorpus(b, "v6")
	unknown := append([]byte("an image fotad never saw"), old...)
	c := startDLChild(b)
	for _, im := range []struct {
		data    []byte
		version string
	}{{old, "1.0.0"}, {next, "2.0.0"}} {
		if code, body := c.do(b, "POST", "/api/v1/images?version="+im.version+"&class=m4", im.data); code != http.StatusCreated {
			b.Fatalf("add image %s: HTTP %d %s", im.version, code, body)
		}
	}
	dlParallel(b, n, 8, func(i int) error {
		ep, id, key := dlPSK(i)
		body, _ := json.Marshal(map[string]any{"endpoint": ep, "psk_identity": id, "psk_key": hex.EncodeToString([]byte(key)),
			"tags": map[string]string{"link": cbProfile(i)}})
		if code, resp := c.do(b, "POST", "/api/v1/devices", body); code != http.StatusCreated {
			return fmt.Errorf("provision %s: HTTP %d %s", ep, code, resp)
		}
		return nil
	})

	c.startFleet(b, n, func(i int) link.Profile {
		prof, _ := link.Lookup(cbProfile(i))
		return prof
	}, func(i int) simulator.Config {
		fw, version := old, "1.0.0"
		if i%50 == 0 {
			fw, version = unknown, "0.9.0"
		}
		// A 4-min lifetime: the device's registration Updates keep its
		// relay's NAT mapping (link.DefaultIdleTimeout, 5 min) alive, as
		// a real device behind a carrier NAT must to stay reachable. With
		// 30 min, devices idle for the 13 min an NB-IoT full image holds
		// wave 1 became unreachable and failed.
		return simulator.Config{Firmware: fw, FirmwareVersion: version, Sequence: 1, Class: "m4",
			BlockSize: 1024, SlotSize: len(next) + 64<<10, Lifetime: 4 * time.Minute}
	})

	spec := campaign.Spec{Name: "bench", Image: "2.0.0", Select: campaign.Selection{All: true},
		Waves:  []campaign.Wave{{Percent: 1, Soak: campaign.Duration(10 * time.Second)}, {Percent: 10, Soak: campaign.Duration(10 * time.Second)}},
		Limits: campaign.Limits{MaxConcurrent: concurrent}, Failure: campaign.FailurePolicy{MaxFailurePercent: 10},
		Delivery: campaign.Delivery{Full: os.Getenv("FOTA_CAMPAIGN_FULL") == "1"}}
	var plan campaign.Plan
	waitWithin(b, "the inventory knows every device's version", 5*time.Minute, func() bool {
		body, _ := json.Marshal(spec)
		code, resp := c.do(b, "POST", "/api/v1/campaigns/plan", body)
		if code != http.StatusOK || json.Unmarshal(resp, &plan) != nil {
			b.Fatalf("plan: HTTP %d %s", code, resp)
		}
		if spec.Delivery.Full {
			return plan.Full == n && plan.Skip == 0 && countUnknown(plan) == (n+49)/50
		}
		return plan.Delta+plan.Full == n && plan.Full == (n+49)/50
	})
	for _, a := range plan.Airtime {
		b.Logf("plan over %s: %d-byte blocks, %v per device, %v in all (full images: %v)",
			a.Link, a.BlockSize, a.PerDevice.Round(time.Millisecond), a.Total.Round(time.Second), a.FullOnly.Round(time.Second))
	}
	body, _ := json.Marshal(spec)
	code, resp := c.do(b, "POST", "/api/v1/campaigns", body)
	var created struct {
		Campaign campaign.Campaign `json:"campaign"`
	}
	if code != http.StatusCreated || json.Unmarshal(resp, &created) != nil {
		b.Fatalf("create: HTTP %d %s", code, resp)
	}
	id := created.Campaign.ID

	time.Sleep(5 * time.Second)
	idleRSS := c.rss(b)
	cpu0 := c.cpu(b)
	start := time.Now()
	b.StartTimer()
	if code, resp := c.do(b, "POST", "/api/v1/campaigns/"+id+"/start", nil); code != http.StatusOK {
		b.Fatalf("start: HTTP %d %s", code, resp)
	}
	var p campaign.Progress
	var peakRSS int64
	for {
		time.Sleep(time.Second)
		code, resp := c.do(b, "GET", "/api/v1/campaigns/"+id, nil)
		var view struct {
			Progress campaign.Progress `json:"progress"`
		}
		if code != http.StatusOK || json.Unmarshal(resp, &view) != nil {
			b.Fatalf("campaign: HTTP %d %s", code, resp)
		}
		p = view.Progress
		rss, hwm := c.memory(b)
		peakRSS = max(peakRSS, rss, hwm)
		if p.State.Finished() || p.State == campaign.Paused {
			break
		}
		if time.Since(start) > 90*time.Minute {
			b.Fatalf("campaign not done after 90 min: %v", p.Counts)
		}
	}
	b.StopTimer()
	total := time.Since(start)
	cpu := c.cpu(b) - cpu0
	if p.State != campaign.Done || p.Counts[campaign.TargetDone] != n {
		b.Fatalf("campaign %s (%s): %v; failures %+v", p.State, p.Reason, p.Counts, p.Failures)
	}
	served := float64(p.BytesServed)
	b.ReportMetric(total.Seconds(), "total-s")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(idleRSS)/(1<<20), "idle-rss-MiB")
	b.ReportMetric(cpu.Seconds(), "cpu-s")
	b.ReportMetric(served/(1<<20), "served-MiB")
	b.ReportMetric(float64(p.BytesBaseline)/(1<<20), "full-only-MiB")
	b.ReportMetric(100*(1-served/float64(p.BytesBaseline)), "saved-%")
	b.Logf("%d devices done in %v (peak %d at once); fotad peak RSS %s (idle with the fleet registered %s), CPU %v (%.0f%% of one core); "+
		"served %s against %s full-only (%.1f %% saved)", n, total.Round(time.Second), p.PeakRunning, dlMiB(peakRSS), dlMiB(idleRSS),
		cpu.Round(time.Millisecond), 100*cpu.Seconds()/total.Seconds(), dlMiB(p.BytesServed), dlMiB(p.BytesBaseline),
		100*(1-served/float64(p.BytesBaseline)))
	for _, w := range p.Waves {
		b.Logf("wave %d: %d devices, opened %s, settled %s", w.Index, w.Size, w.Opened.Sub(start).Round(time.Second),
			w.Settled.Sub(start).Round(time.Second))
	}
}

func cbProfile(i int) string {
	if i%50 == 0 {
		return "wifi"
	}
	return cbProfiles[i%len(cbProfiles)]
}

// countUnknown counts the plan's devices whose version was not stored.
func countUnknown(p campaign.Plan) int {
	n := 0
	for _, d := range p.Devices {
		if strings.Contains(d.Reason, "not stored") {
			n++
		}
	}
	return n
}

package main

// BenchmarkConcurrentDownloads measures what concurrent firmware downloads
// cost the server: fotad runs as a child process (this test binary with
// FOTAD_TEST_MAIN=1, see TestMain), so that /proc/<pid> shows the server
// alone, and N simulated devices in this process each download the full
// image through a link.Relay that delays every datagram, so that the N
// downloads overlap for tens of seconds. Run it with:
//
//	go test -run '^$' -bench ConcurrentDownloads -benchtime 1x -timeout 30m ./cmd/fotad/
//
// Three moments are measured: (a) idle, N devices registered over DTLS
// PSK with live sessions (parking is off, so that the baseline holds the
// same sessions the downloads use: a registered device's session is not
// download memory); (b) while the N downloads run, sampled every 200 ms;
// (c) after, once every device runs the new image and every update is done.
//
// Memory per download is reported three ways:
//
//   - rss-KB/dl: (largest VmRSS while at least 90% of the downloads run -
//     VmRSS at idle as it stands after registration) / N. What an operator
//     sees the process grow by.
//   - rss-gc-KB/dl: the same against the idle VmRSS after two forced
//     collections and the scavenger (an upper bound: the runtime's GC
//     headroom on the idle heap counts against the downloads).
//   - live-KB/dl: (heap in use + stacks right after a forced collection
//     in the middle of the downloads - the same at idle) / active
//     downloads. The memory the downloads keep reachable, without GC
//     headroom.
//
// CPU is the child's utime+stime from /proc/<pid>/stat over the download
// window: from the first update request to the last device holding the
// whole package (devices then reboot after 90 s, so their new handshakes
// fall outside the window). Environment knobs: FOTA_DL_N (comma-separated
// counts, default 100,1000), FOTA_DL_DELAY (one-way delay, default 100ms),
// FOTA_DL_BLOCK (Block2 size, default 512), FOTA_DL_BOOT (device reboot
// time, default 90s), FOTA_DL_PROFILE (a directory: heap and goroutine
// profiles and the log of the child are saved there), FOTA_DL_CLIENT
// (the devices' client personality: native, the default, downloads
// fotad's signed package over its registration session; zephyr and anjay
// download a raw image of a raw class, an MCUboot image or a vendor blob
// of the same code, over a DTLS session of their own). The image is
// delivery/delta/testdata/firmware/v6.bin when present (v5 -> v6), else
// v1..v4 end to end (about 80 KB).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
	"github.com/fotahub/fota/simulator/rawimage"
)

// dlBootTime is how long a simulated device takes to reboot into the new
// image (FOTA_DL_BOOT): longer than the spread of the download finishes,
// so that no re-registration handshake falls into the measured download
// window.
const dlBootTime = 90 * time.Second

func BenchmarkConcurrentDownloads(b *testing.B) {
	counts := []int{100, 1000}
	if s := os.Getenv("FOTA_DL_N"); s != "" {
		counts = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("FOTA_DL_N: bad count %q", f)
			}
			counts = append(counts, n)
		}
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for range b.N {
				benchConcurrentDownloads(b, n)
			}
		})
	}
}

// dlImages returns the running (1.0.0) and target (2.0.0) images: the
// largest corpus pair present. Without v5/v6, the target is v1..v4 end to
// end (about 80 KB of real firmware code).
func dlImages(b *testing.B) (old, next []byte, name string) {
	if _, err := os.Stat(corpus + "v6.bin"); err == nil {
		return readCorpus(b, "v5"), readCorpus(b, "v6"), "v6.bin"
	}
	old = readCorpus(b, "v1")
	for _, v := range []string{"v1", "v2", "v3", "v4"} {
		next = append(next, readCorpus(b, v)...)
	}
	return old, next, "v1..v4.bin"
}

// dlRawImage wraps an image's code in the client's vendor format as
// version major.0.0.
func dlRawImage(b *testing.B, client simulator.Client, code []byte, major uint8) []byte {
	v := rawimage.MCUbootVersion{Major: major}
	if client == simulator.ClientZephyr {
		return rawimage.MCUboot(code, v)
	}
	blob, err := rawimage.VendorBlob(code, v.String())
	if err != nil {
		b.Fatal(err)
	}
	return blob
}

func dlEnvDuration(b *testing.B, name string, def time.Duration) time.Duration {
	if s := os.Getenv(name); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return d
	}
	return def
}

func dlEnvInt(b *testing.B, name string, def int) int {
	if s := os.Getenv(name); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return v
	}
	return def
}

// dlSample is one look at the child and the devices.
type dlSample struct {
	at     time.Duration // since the first update request
	rss    int64
	hwm    int64
	cpu    time.Duration
	active int // devices downloading
	done   int // devices holding the whole package (or past it)
}

func benchConcurrentDownloads(b *testing.B, n int) {
	b.StopTimer()
	delay := dlEnvDuration(b, "FOTA_DL_DELAY", 100*time.Millisecond)
	blockSize := dlEnvInt(b, "FOTA_DL_BLOCK", 512)
	profDir := os.Getenv("FOTA_DL_PROFILE")
	bootTime := dlEnvDuration(b, "FOTA_DL_BOOT", dlBootTime)
	old, next, imageName := dlImages(b)
	client, err := simulator.ParseClient(os.Getenv("FOTA_DL_CLIENT"))
	if err != nil {
		b.Fatalf("FOTA_DL_CLIENT: %v", err)
	}
	format := ""
	if client != simulator.ClientNative {
		old, next, imageName = dlRawImage(b, client, old, 1), dlRawImage(b, client, next, 2), string(client)+" "+imageName
		format = "&format=raw"
	}

	c := startDLChild(b)
	b.Logf("fotad pid %d, image %s (%d bytes), %d devices, %v each way, %d-byte blocks",
		c.cmd.Process.Pid, imageName, len(next), n, delay, blockSize)
	for _, im := range []struct {
		data    []byte
		version string
	}{{old, "1.0.0"}, {next, "2.0.0"}} {
		if code, body := c.do(b, "POST", "/api/v1/images?version="+im.version+"&class=dl-bench"+format, im.data); code != http.StatusCreated {
			b.Fatalf("add image %s: HTTP %d %s", im.version, code, body)
		}
	}
	dlParallel(b, n, 8, func(i int) error {
		ep, id, key := dlPSK(i)
		body, _ := json.Marshal(map[string]string{"endpoint": ep, "psk_identity": id, "psk_key": hex.EncodeToString([]byte(key))})
		if code, resp := c.do(b, "POST", "/api/v1/devices", body); code != http.StatusCreated {
			return fmt.Errorf("provision %s: HTTP %d %s", ep, code, resp)
		}
		return nil
	})

	// The devices, each behind its own delaying relay.
	prof := link.Profile{Name: "dl-bench", Up: link.Params{Delay: delay}, Down: link.Params{Delay: delay}}
	devs := c.startFleet(b, n, func(int) link.Profile { return prof }, func(i int) simulator.Config {
		return simulator.Config{Client: client, Firmware: old, FirmwareVersion: "1.0.0", Sequence: 1, Class: "dl-bench",
			BlockSize: blockSize, SlotSize: len(next) + 64<<10, BootTime: bootTime}
	})

	// (a) Idle: N registered devices with live sessions, nothing running.
	time.Sleep(10 * time.Second)
	var idleRSS int64
	for range 5 {
		idleRSS += c.rss(b)
		time.Sleep(time.Second)
	}
	idleRSS /= 5
	idleLive := c.collect(b, dlProfilePath(profDir, n, "idle"))
	idleGCRSS := c.settledRSS(b)
	idleCPU := c.cpu(b)

	// (b) The N updates, started together.
	var (
		mu        sync.Mutex
		samples   []dlSample
		firstSeen = make([]time.Duration, n)
		doneAt    = make([]time.Duration, n)
		failed    = make([]bool, n)
		midLive   map[string]float64
		midActive int
		midAt     time.Duration
	)
	var scanMu sync.Mutex
	scan := func(at time.Duration) (active, done int) {
		scanMu.Lock()
		defer scanMu.Unlock()
		for i, d := range devs {
			st := d.Status()
			switch {
			case doneAt[i] > 0:
			case st.Version == "2.0.0" || st.State == simulator.StateDownloaded || st.State == simulator.StateUpdating:
				doneAt[i] = at
			case st.State == simulator.StateDownloading:
				if firstSeen[i] == 0 {
					firstSeen[i] = at
				}
			case st.Result != simulator.ResultInitial && st.Result != simulator.ResultSuccess && !failed[i]:
				failed[i] = true
			}
			if doneAt[i] > 0 {
				done++
			} else if st.State == simulator.StateDownloading {
				active++
			}
		}
		return active, done
	}
	cpu0, start := c.cpu(b), time.Now()
	samplerDone := make(chan struct{})
	stopSampling := make(chan struct{})
	allDone := make(chan struct{})
	var snapshot sync.WaitGroup
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		fullSince, snapped, closed := time.Duration(-1), false, false
		for {
			at := time.Since(start)
			rss, hwm := c.memory(b)
			s := dlSample{at: at, rss: rss, hwm: hwm, cpu: c.cpu(b)}
			s.active, s.done = scan(at)
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
			// Once (nearly) all downloads have run together for 3 s, take
			// the live heap of the child (a forced collection) once.
			if s.active >= n*95/100 {
				if fullSince < 0 {
					fullSince = at
				}
				if !snapped && at-fullSince >= 3*time.Second {
					snapped = true
					snapshot.Add(1)
					go func() {
						defer snapshot.Done()
						m := c.collect(b, dlProfilePath(profDir, n, "downloads"))
						a, _ := scan(time.Since(start))
						mu.Lock()
						midLive, midActive, midAt = m, min(a, s.active), at
						mu.Unlock()
						if profDir != "" {
							_ = os.WriteFile(filepath.Join(profDir, fmt.Sprintf("goroutines-%d-downloads.txt", n)),
								c.get(b, "/debug/pprof/goroutine?debug=1"), 0o644)
						}
					}()
				}
			}
			if s.done == n && !closed {
				closed = true
				close(allDone)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	b.StartTimer()
	update := []byte(`{"image":"2.0.0","full":true}`)
	dlParallel(b, n, 16, func(i int) error {
		ep, _, _ := dlPSK(i)
		if code, body := c.do(b, "POST", "/api/v1/devices/"+ep+"/update", update); code != http.StatusAccepted {
			return fmt.Errorf("start update of %s: HTTP %d %s", ep, code, body)
		}
		return nil
	})
	startedIn := time.Since(start)
	select {
	case <-allDone:
	case <-time.After(15 * time.Minute):
		close(stopSampling)
		<-samplerDone
		mu.Lock()
		last := samples[len(samples)-1]
		mu.Unlock()
		b.Fatalf("downloads not finished after 15 min: %d done, %d downloading, %d failed", last.done, last.active, dlCount(failed))
	}
	b.StopTimer()
	close(stopSampling)
	<-samplerDone
	snapshot.Wait()
	mu.Lock()
	window := samples[len(samples)-1]
	all := slices.Clone(samples)
	mu.Unlock()
	var pkgView struct {
		Size        int64  `json:"size"`
		BytesServed int64  `json:"bytes_served"`
		Format      string `json:"format"`
	}
	ep0, _, _ := dlPSK(0)
	if code, body := c.do(b, "GET", "/api/v1/devices/"+ep0+"/update", nil); code == http.StatusOK {
		_ = json.Unmarshal(body, &pkgView)
	}
	var downloaded int64
	for _, d := range devs {
		downloaded += d.Status().Downloaded
	}

	// (c) After: every device back on 2.0.0 and every update done.
	waitWithin(b, "every device back on 2.0.0", bootTime+5*time.Minute, func() bool {
		for _, d := range devs {
			if st := d.Status(); st.Version != "2.0.0" || !st.Registered {
				return false
			}
		}
		return true
	})
	// The server's update records end done (or failed: see the log line).
	phases := map[string]int{}
	var failure string
	pending := make([]int, n)
	for i := range pending {
		pending[i] = i
	}
	for deadline := time.Now().Add(3 * time.Minute); len(pending) > 0 && time.Now().Before(deadline); {
		var still []int
		for _, i := range pending {
			ep, _, _ := dlPSK(i)
			var v struct{ Phase, Error string }
			code, body := c.do(b, "GET", "/api/v1/devices/"+ep+"/update", nil)
			if code == http.StatusOK {
				_ = json.Unmarshal(body, &v)
			}
			switch v.Phase {
			case "done", "failed", "cancelled":
				phases[v.Phase]++
				if v.Phase != "done" && failure == "" {
					failure = ep + ": " + v.Error
				}
			default:
				still = append(still, i)
			}
		}
		pending = still
		if len(still) > 0 {
			time.Sleep(time.Second)
		}
	}
	phases["unfinished"] = len(pending)
	time.Sleep(5 * time.Second)
	afterRSS := c.rss(b)
	afterLive := c.collect(b, dlProfilePath(profDir, n, "after"))
	afterGCRSS := c.settledRSS(b)

	// The figures.
	var full []dlSample
	peakActive := 0
	for _, s := range all {
		peakActive = max(peakActive, s.active)
		if s.active >= n*9/10 {
			full = append(full, s)
		}
	}
	if len(full) == 0 {
		b.Logf("never 90%% of downloads at once (peak %d): memory figures use the samples at the peak", peakActive)
		for _, s := range all {
			if s.active == peakActive {
				full = append(full, s)
			}
		}
	}
	var maxRSS, sumRSS int64
	for _, s := range full {
		maxRSS = max(maxRSS, s.rss)
		sumRSS += s.rss
	}
	meanRSS := sumRSS / int64(len(full))
	fullSpan := full[len(full)-1].at - full[0].at
	cpu := window.cpu - cpu0
	servedMB := float64(int64(n)*pkgView.Size) / 1e6
	liveOf := func(m map[string]float64) float64 {
		return m["go_memstats_heap_inuse_bytes"] + m["go_memstats_stack_inuse_bytes"]
	}
	var durs []time.Duration
	for i := range n {
		if doneAt[i] > 0 && firstSeen[i] > 0 {
			durs = append(durs, doneAt[i]-firstSeen[i])
		}
	}
	slices.Sort(durs)
	if len(durs) == 0 {
		durs = []time.Duration{0}
	}

	kb := func(v float64) float64 { return v / 1024 }
	b.ReportMetric(kb(float64(maxRSS-idleRSS)/float64(n)), "rss-KB/dl")
	b.ReportMetric(kb(float64(maxRSS-idleGCRSS)/float64(n)), "rss-gc-KB/dl")
	if midLive != nil {
		b.ReportMetric(kb((liveOf(midLive)-liveOf(idleLive))/float64(midActive)), "live-KB/dl")
		b.ReportMetric(kb((midLive["go_memstats_stack_inuse_bytes"]-idleLive["go_memstats_stack_inuse_bytes"])/float64(midActive)), "stack-KB/dl")
		b.ReportMetric((midLive["go_goroutines"]-idleLive["go_goroutines"])/float64(midActive), "goroutines/dl")
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n), "cpu-ms/dl")
	b.ReportMetric(float64(cpu.Microseconds())/1000/servedMB, "cpu-ms/MB")
	b.ReportMetric(float64(peakActive), "peak-active")
	b.ReportMetric(float64(maxRSS)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(idleRSS)/(1<<20), "idle-rss-MiB")
	b.ReportMetric(kb(float64(afterRSS-idleRSS)/float64(n)), "after-rss-KB/dev")
	b.ReportMetric(kb((liveOf(afterLive)-liveOf(idleLive))/float64(n)), "after-live-KB/dev")
	b.ReportMetric(window.at.Seconds(), "window-s")

	b.Logf("image: package %d bytes (%s), %d blocks of %d; devices downloaded %d bytes in all (%.2f x the packages)",
		pkgView.Size, pkgView.Format, (pkgView.Size+int64(blockSize)-1)/int64(blockSize), blockSize,
		downloaded, float64(downloaded)/float64(int64(n)*pkgView.Size))
	b.Logf("idle:  VmRSS %s as it stands, %s after GC+scavenge; live heap %s + stacks %s, %v goroutines, %v sessions; CPU since start %v",
		dlMiB(idleRSS), dlMiB(idleGCRSS), dlMiB(int64(idleLive["go_memstats_heap_inuse_bytes"])),
		dlMiB(int64(idleLive["go_memstats_stack_inuse_bytes"])), idleLive["go_goroutines"], idleLive["fota_coap_sessions"], idleCPU)
	b.Logf("downloads: updates requested in %v; window %v; %d samples with >= 90%% active over %v (peak %d active); VmRSS max %s mean %s; VmHWM %s",
		startedIn.Round(time.Millisecond), window.at.Round(time.Millisecond), len(full), fullSpan.Round(time.Millisecond), peakActive,
		dlMiB(maxRSS), dlMiB(meanRSS), dlMiB(window.hwm))
	if midLive != nil {
		b.Logf("downloads, forced GC at %v with %d active: live heap %s + stacks %s, %v goroutines, %v sessions",
			midAt.Round(time.Millisecond), midActive, dlMiB(int64(midLive["go_memstats_heap_inuse_bytes"])),
			dlMiB(int64(midLive["go_memstats_stack_inuse_bytes"])), midLive["go_goroutines"], midLive["fota_coap_sessions"])
	}
	b.Logf("download durations: min %v median %v max %v; CPU %v over the window (%.0f%% of one core), %.1f MB served",
		durs[0].Round(time.Millisecond), durs[len(durs)/2].Round(time.Millisecond), durs[len(durs)-1].Round(time.Millisecond),
		cpu, 100*cpu.Seconds()/window.at.Seconds(), servedMB)
	b.Logf("after: VmRSS %s as it stands, %s after GC+scavenge; live heap %s + stacks %s, %v goroutines, %v sessions",
		dlMiB(afterRSS), dlMiB(afterGCRSS), dlMiB(int64(afterLive["go_memstats_heap_inuse_bytes"])),
		dlMiB(int64(afterLive["go_memstats_stack_inuse_bytes"])), afterLive["go_goroutines"], afterLive["fota_coap_sessions"])
	b.Logf("server update phases once the devices run 2.0.0: %v", phases)
	if failure != "" {
		b.Logf("a failed update: %s", failure)
	}
	if f := dlCount(failed); f > 0 {
		b.Logf("%d devices reported a failed download result at some point (retried)", f)
	}
	if fi, err := os.Stat(c.devLog); err == nil && fi.Size() > 0 {
		b.Logf("devices logged %d bytes of warnings: %s", fi.Size(), c.devLog)
	}
	if fi, err := os.Stat(c.log); err == nil {
		b.Logf("fotad logged %d bytes", fi.Size())
	}
}

func dlCount(v []bool) (n int) {
	for _, b := range v {
		if b {
			n++
		}
	}
	return n
}

func dlMiB(v int64) string { return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20)) }

func dlProfilePath(dir string, n int, phase string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, fmt.Sprintf("heap-%d-%s.pb.gz", n, phase))
}

func dlPSK(i int) (ep, id, key string) {
	return fmt.Sprintf("dl-%05d", i), fmt.Sprintf("dl-id-%05d", i), fmt.Sprintf("dl-key-%05d", i)
}

// dlParallel runs f(0..n-1) on workers goroutines and fails b on the first
// error.
func dlParallel(b *testing.B, n, workers int, f func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// startFleet makes n devices (dlPSK credentials, the child's trust key,
// warnings logged to a file), each behind its own relay with profile(i)
// in front of the child, runs them until the benchmark ends, and waits
// until fotad has every one registered. config(i) gives the rest of a
// device's configuration. At most 50 register at a time: 1000
// simultaneous handshakes on two shared cores would time out and retry.
func (c *dlChild) startFleet(b *testing.B, n int, profile func(i int) link.Profile,
	config func(i int) simulator.Config) []*simulator.Device {
	b.Helper()
	server, err := net.ResolveUDPAddr("udp", c.coaps)
	if err != nil {
		b.Fatal(err)
	}
	devLog, err := os.Create(filepath.Join(b.TempDir(), "devices.log"))
	if err != nil {
		b.Fatal(err)
	}
	c.devLog = devLog.Name()
	logger := zerolog.New(devLog).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	devs := make([]*simulator.Device, n)
	relays := make([]*link.Relay, n)
	b.Cleanup(func() {
		cancel()
		running.Wait()
		for _, r := range relays {
			if r != nil {
				_ = r.Close()
			}
		}
		_ = devLog.Close()
	})
	for i := range devs {
		if relays[i], err = link.NewRelay(server, profile(i), uint64(i)+1); err != nil {
			b.Fatalf("relay %d: %v", i, err)
		}
		cfg := config(i)
		ep, id, key := dlPSK(i)
		cfg.Endpoint, cfg.PSKIdentity, cfg.PSKKey = ep, id, []byte(key)
		cfg.Server, cfg.TrustKey, cfg.Logger = relays[i].Addr().String(), c.trust, logger
		// A client with a download session of its own reaches the
		// Package URI's host through its relay too.
		cfg.DownloadVia = map[string]string{c.coaps: relays[i].Addr().String()}
		if devs[i], err = simulator.New(cfg); err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now()
	sem := make(chan struct{}, 50)
	for _, d := range devs {
		sem <- struct{}{}
		running.Add(1)
		go func() {
			defer running.Done()
			_ = d.Run(ctx)
		}()
		go func() {
			defer func() { <-sem }()
			for deadline := time.Now().Add(2 * time.Minute); !d.Status().Registered && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	waitWithin(b, "every device registered", 10*time.Minute, func() bool {
		return int(c.metrics(b)["fota_registrations"]) == n
	})
	b.Logf("%d devices registered in %v", n, time.Since(t0).Round(time.Millisecond))
	return devs
}

// dlChild is fotad as a child process: this test binary run as fotad.
type dlChild struct {
	cmd    *exec.Cmd
	api    string
	coaps  string
	token  string
	log    string
	devLog string // the simulated devices' log (startFleet)
	trust  *ecdsa.PublicKey
	client *http.Client
	exited chan struct{}
}

// startDLChild starts fotad on a new data directory with its signing key
// made here (the devices' trust key), CoAPS and the API on fixed loopback
// ports and sessions never parked.
func startDLChild(b *testing.B) *dlChild {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	key, _, err := firmware.LoadOrCreateKey(filepath.Join(dir, firmware.KeyFile))
	if err != nil {
		b.Fatal(err)
	}
	c := &dlChild{api: freeTCPAddr(b), coaps: freeUDPAddr(b), log: filepath.Join(dir, "fotad.log"), trust: &key.PublicKey,
		client: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 32}},
		exited: make(chan struct{})}
	conf := fmt.Sprintf(`data_dir: %s
log_level: info
api:
  listen: %s
coap:
  coaps_listen: %s
  park_after: 0s
delivery:
  server_uri: coaps://%s
`, dir, c.api, c.coaps, c.coaps)
	confPath := filepath.Join(dir, "fotad.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	out, err := os.Create(c.log)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	c.cmd = exec.Command(exe, "--config", confPath)
	c.cmd.Env = append(os.Environ(), childEnv+"=1")
	c.cmd.Stdout, c.cmd.Stderr = out, out
	if err := c.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	b.Cleanup(func() {
		_ = c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.exited:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		log, err := os.ReadFile(c.log)
		if err == nil && (b.Failed() || bytes.Contains(log, []byte("panic:"))) {
			b.Logf("fotad output (last lines):\n%s", tail(log, 30))
		}
		if dir := os.Getenv("FOTA_DL_PROFILE"); dir != "" && err == nil {
			_ = os.WriteFile(filepath.Join(dir, "fotad-"+strings.ReplaceAll(b.Name(), "/", "-")+".log"), log, 0o644)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.client.Get("http://" + c.api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-c.exited:
			log, _ := os.ReadFile(c.log)
			b.Fatalf("fotad exited at start:\n%s", tail(log, 30))
		default:
		}
		if time.Now().After(deadline) {
			b.Fatal("fotad did not serve its API within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "api-token"))
	if err != nil {
		b.Fatal(err)
	}
	c.token = strings.TrimSpace(string(tok))
	return c
}

// do calls the admin API with the token.
func (c *dlChild) do(b testing.TB, method, path string, body []byte) (int, []byte) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+c.api+path, r)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	// No gzip: promhttp would allocate a compressor (about 1 MB) in the
	// child for each scrape, and that would show in its heap.
	req.Header.Set("Accept-Encoding", "identity")
	if body != nil && body[0] == '{' {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		// Not Fatal: do runs on other goroutines than the benchmark's.
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// get fetches path; a failure is reported with Errorf (it may run on
// another goroutine than the benchmark's) and gives nil.
func (c *dlChild) get(b testing.TB, path string) []byte {
	code, body := c.do(b, "GET", path, nil)
	if code != http.StatusOK {
		b.Errorf("GET %s: HTTP %d %s", path, code, body)
		return nil
	}
	return body
}

// metrics reads the child's unlabelled Prometheus samples.
func (c *dlChild) metrics(b testing.TB) map[string]float64 {
	m := map[string]float64{}
	for _, line := range strings.Split(string(c.get(b, "/metrics")), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			m[name] = f
		}
	}
	return m
}

// collect forces a collection in the child (saving its heap profile to
// path if path is not empty) and returns its metrics right after.
func (c *dlChild) collect(b testing.TB, path string) map[string]float64 {
	prof := c.get(b, "/debug/pprof/heap?gc=1")
	if path != "" && prof != nil {
		if err := os.WriteFile(path, prof, 0o644); err != nil {
			b.Error(err)
		}
	}
	return c.metrics(b)
}

// settledRSS forces a second collection and waits (at most 40 s) for the
// scavenger to stop returning pages.
func (c *dlChild) settledRSS(b testing.TB) int64 {
	c.get(b, "/debug/pprof/heap?gc=1")
	rss := c.rss(b)
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); {
		time.Sleep(4 * time.Second)
		now := c.rss(b)
		if now > rss-rss/200 {
			return min(rss, now)
		}
		rss = now
	}
	return rss
}

func (c *dlChild) rss(b testing.TB) int64 {
	rss, _ := c.memory(b)
	return rss
}

// memory is the child's VmRSS and VmHWM in bytes.
func (c *dlChild) memory(b testing.TB) (rss, hwm int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		b.Error(err)
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// cpu is the child's user plus system time (/proc/<pid>/stat, in clock
// ticks of 10 ms).
func (c *dlChild) cpu(b testing.TB) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		b.Error(err)
		return 0
	}
	// Fields after the command name (which may hold spaces) start at
	// field 3, state; utime and stime are fields 14 and 15.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

package main

// BenchmarkDeliveryOverLinks reproduces the seed experiment (Arm Pelion:
// delta updates cut the transfer time by more than 90 %) through fotad
// and the simulator over the emulated links of links.md:
//
//	go test -run '^$' -bench DeliveryOverLinks -benchtime 1x -timeout 60m ./cmd/fotad/
//
// For every link profile and payload (full image, delta) it starts its own
// fotad (production CoAP defaults, loopback only), puts a link.Relay with
// the built-in profile in front of it, registers a simulated device
// running the old image and pulls the new one (Package URI, Block2, 1024-
// byte blocks). The runs go in parallel: they are latency-bound, so they
// hardly compete for the CPU. One markdown table comes out at the end.
//
// Knobs (flag or environment):
//
//	-links wifi,catm1       or FOTA_BENCH_LINKS   profiles (default wifi,catm1,nbiot)
//	FOTA_BENCH_IMAGES=v1,v2                       image pair (default v5,v6)
//	FOTA_BENCH_SEED=1                             the relays' loss seed
//	FOTA_BENCH_SERIAL=1                           one run at a time
//	FOTA_BENCH_LOSS=0.05                          override the random loss (diagnostics)
//	FOTA_BENCH_LOG=info                           log level of fotad and devices (printed on failure)
//
// Definitions:
//
//   - transfer: from the device taking the Package URI (Object 5 state 1,
//     the moment its first Block2 GET leaves) to the device holding the
//     whole, verified package (state 2), from the simulator's own event
//     timestamps; the DTLS session already exists.
//   - end-to-end: from the update being started at the driver to the
//     device re-registered running (and confirming) the new image, from
//     the device's event. The driver's own outcome and time are reported
//     beside it: it concludes a little later, after reading /3/0/3 (and
//     before 8b66280 it could fail after the device was updated, when its
//     read of /5/0 raced the device's reboot).
//   - block stalls: gaps between block arrivals (Downloaded polled every
//     2 ms) above 1.5x the median gap + 20 ms; each is a lost request or
//     response waiting for the CoAP retransmission.
//   - bytes on air: the relay's AirBytes (UDP payload + 28 bytes IPv4/UDP)
//     of every packet that went on the air, lost ones included.
//   - radio time: the relay's Connected time (union of air time plus the
//     profile's RRC inactivity tail) over the whole update, the final tail
//     included; the link is idle before the update starts.
//   - energy: radio time x the profile's connected current x 3.7 V
//     (links.md: LTE-M ~50 mA, NB-IoT ~40 mA). Wi-Fi: n/a (links.md gives
//     no figure and the relay counts only air time for a link without RRC).
//   - model: links.md's T_sw = N (RTT + s_d + s_u), T_lb = N (B+78) 8 / R_down
//     with N = ceil(S / B), S the package size (envelope included).

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

var olLinksFlag = flag.String("links", "", "link profiles for BenchmarkDeliveryOverLinks, comma-separated "+
	"(default wifi,catm1,nbiot; or FOTA_BENCH_LINKS)")

const (
	olBlockSize   = 1024 // fits the 1358-byte MTU (links.md)
	olClass       = "sensor"
	olFirmwareDir = "../../delivery/delta/testdata/firmware"
	// Per-exchange overheads of links.md: a Block2 response carries B+78
	// bytes on the air, a request 75.
	olDownOverhead = 78
	olUpBytes      = 75
)

// olRun is one profile x payload run and what it measured.
type olRun struct {
	prof    link.Profile
	payload string // "full" or "delta"
	ep      string

	s     *testServer
	relay *link.Relay
	dev   *simulator.Device
	logs  *olLogBuffer
	// events is fed from the device's event channel from its start.
	events chan simulator.Event
	target string // version

	size   int64 // package bytes (envelope + payload)
	format manifest.Format

	// measured
	err     error
	trigger time.Time
	// done is the device's re-registration running the new image (the
	// end-to-end end); driverEnd when the driver concluded.
	done                  time.Time
	start, end            time.Time // transfer
	st0, stStart, stEnd   link.Stats
	stDone                link.Stats
	driverEnd             time.Time
	driverPhase           update.Phase
	driverErr             string
	blocks                []olBlock
	bytesServed           int64
	driverRetries         int
	deviceReboots         int
	transferUpPkts        int64
	transferLost          [2]int64 // up, down
	stalls                int
	stallTime, medianGap  time.Duration
	maxGap                time.Duration
	stallGaps             []olStall
	regStalls             int
	regUpdates            []time.Time // the device's registration Updates
	transferAirUp, airDn  int64
	e2eAirUp, e2eAirDn    int64
	radio, transferRadio  time.Duration
	energyJ, energyMAh    float64
	tsw, tlb, nBlocksWant float64
}

type olBlock struct {
	at         time.Time
	downloaded int64
}

// olLogBuffer collects the logs of one run; they are printed if it fails.
type olLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *olLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *olLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func olLinkNames() []string {
	v := *olLinksFlag
	if v == "" {
		v = os.Getenv("FOTA_BENCH_LINKS")
	}
	if v == "" {
		v = "wifi,catm1,nbiot"
	}
	var names []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// olImages reads the old and new image, v5 and v6 unless
// FOTA_BENCH_IMAGES names another pair.
func olImages(b *testing.B) (oldName string, old []byte, newName string, new []byte) {
	b.Helper()
	pair := os.Getenv("FOTA_BENCH_IMAGES")
	if pair == "" {
		pair = "v5,v6"
	}
	names := strings.Split(pair, ",")
	if len(names) != 2 {
		b.Fatalf("FOTA_BENCH_IMAGES=%q: want two image names such as v5,v6", pair)
	}
	read := func(n string) []byte {
		p := filepath.Join(olFirmwareDir, strings.TrimSpace(n)+".bin")
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			b.Fatalf("firmware image %s is missing: the seed experiment needs the ~380 KB images v5.bin and v6.bin "+
				"in delivery/delta/testdata/firmware (set FOTA_BENCH_IMAGES=v1,v2 to try the small pair)", p)
		}
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	return strings.TrimSpace(names[0]), read(names[0]), strings.TrimSpace(names[1]), read(names[1])
}

// olVersion turns "v5" into "5.0.0".
func olVersion(name string) string {
	n, err := strconv.Atoi(strings.TrimPrefix(name, "v"))
	if err != nil {
		return "1.0.0-" + name
	}
	return fmt.Sprintf("%d.0.0", n)
}

func olEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func BenchmarkDeliveryOverLinks(b *testing.B) {
	oldName, oldImg, newName, newImg := olImages(b)
	oldVer, newVer := olVersion(oldName), olVersion(newName)
	seed := uint64(olEnvInt("FOTA_BENCH_SEED", 1))
	var runs []*olRun
	for _, name := range olLinkNames() {
		prof, ok := link.Lookup(name)
		if !ok {
			b.Fatalf("no link profile %q (have %v)", name, link.Names())
		}
		if v := os.Getenv("FOTA_BENCH_LOSS"); v != "" { // diagnostics only
			loss, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("FOTA_BENCH_LOSS=%q: %v", v, err)
			}
			prof.Up.Loss, prof.Down.Loss = loss, loss
		}
		for _, payload := range []string{"full", "delta"} {
			runs = append(runs, &olRun{prof: prof, payload: payload, ep: "dev-" + name + "-" + payload, target: newVer})
		}
	}
	// Setup one after the other: building the delta is CPU work that must
	// not overlap another run's transfer.
	for _, r := range runs {
		r.setup(b, seed, oldImg, oldVer, newImg, newVer)
	}
	for _, r := range runs {
		r.waitQuiet(b)
	}
	b.Logf("images %s (%d B, %s) -> %s (%d B, %s); block %d; relay seed %d; %d runs",
		oldName, len(oldImg), oldVer, newName, len(newImg), newVer, olBlockSize, seed, len(runs))

	b.ResetTimer()
	var wg sync.WaitGroup
	serial := os.Getenv("FOTA_BENCH_SERIAL") != ""
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.err = r.measure()
		}()
		if serial {
			wg.Wait()
		}
	}
	wg.Wait()
	b.StopTimer()

	failed := false
	for _, r := range runs {
		if r.err != nil {
			failed = true
			b.Errorf("%s %s: %v\nlogs:\n%s", r.prof.Name, r.payload, r.err, r.logs.String())
			continue
		}
		r.compute()
	}
	if failed {
		return
	}
	table := olTable(runs, oldName, newName, seed)
	fmt.Println(table) // stdout: b.Log would indent the markdown
	for _, r := range runs {
		key := r.prof.Name + "_" + r.payload
		b.ReportMetric(r.end.Sub(r.start).Seconds(), key+"_transfer_s")
		b.ReportMetric(r.end.Sub(r.start).Seconds()/r.tsw, key+"_meas/Tsw")
		b.ReportMetric(r.done.Sub(r.trigger).Seconds(), key+"_e2e_s")
		b.ReportMetric(float64(r.transferAirUp+r.airDn), key+"_air_B")
	}
	for _, p := range olPairs(runs) {
		b.ReportMetric(100*(1-p.delta.end.Sub(p.delta.start).Seconds()/p.full.end.Sub(p.full.start).Seconds()),
			p.full.prof.Name+"_delta_time_saving_%")
	}
}

// setup starts the run's fotad, relay and device; it returns once the
// device has registered.
func (r *olRun) setup(b *testing.B, seed uint64, oldImg []byte, oldVer string, newImg []byte, newVer string) {
	b.Helper()
	ctx := context.Background()
	r.logs = &olLogBuffer{}
	logger := zerolog.New(r.logs).Level(olLogLevel()).With().Timestamp().Str("run", r.ep).Logger()

	// fotad with its production CoAP timing (no test-harness ticks).
	cfg := defaultFileConfig()
	cfg.DataDir = b.TempDir()
	cfg.API.Listen = "127.0.0.1:0"
	cfg.CoAP.CoAPSListen = "127.0.0.1:0"
	if err := cfg.validate(); err != nil {
		b.Fatal(err)
	}
	d, err := start(cfg, logger, nil)
	if err != nil {
		b.Fatal(err)
	}
	r.s = &testServer{t: b, cfg: cfg, d: d}
	b.Cleanup(r.s.stop)

	oldI, _, err := d.firmware.AddImage(ctx, oldImg, oldVer, olClass, "")
	if err != nil {
		b.Fatal(err)
	}
	newI, _, err := d.firmware.AddImage(ctx, newImg, newVer, olClass, "")
	if err != nil {
		b.Fatal(err)
	}
	// Make (and store) the package now, as the driver will ask for it.
	offer, err := d.firmware.MakePackage(ctx, firmware.Request{Image: newI.Digest.String(), Class: olClass,
		Installed: oldI.Digest, Full: r.payload == "full"})
	if err != nil {
		b.Fatal(err)
	}
	wantFormat := manifest.FormatFull
	if r.payload == "delta" {
		wantFormat = manifest.FormatDelta
	}
	if offer.Manifest.Format != wantFormat {
		b.Fatalf("%s: package is %s (reason %q), want %s", r.ep, offer.Manifest.Format, offer.Reason, wantFormat)
	}
	r.size, r.format = offer.Size, offer.Manifest.Format

	key := r.ep + "-key"
	r.s.provision(r.ep, r.ep, key)
	server, err := net.ResolveUDPAddr("udp", r.s.coapsAddr())
	if err != nil {
		b.Fatal(err)
	}
	r.relay, err = link.NewRelay(server, r.prof, seed)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.relay.Close() })
	r.dev, err = simulator.New(simulator.Config{Endpoint: r.ep, PSKIdentity: r.ep, PSKKey: []byte(key),
		Server: r.relay.Addr().String(), Firmware: oldImg, FirmwareVersion: oldVer, Sequence: oldI.Sequence,
		Class: olClass, TrustKey: d.firmware.PublicKey(), BlockSize: olBlockSize, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	// Keep every event: the channel drops what nobody reads.
	r.events = make(chan simulator.Event, 4096)
	devCtx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		_ = r.dev.Run(devCtx)
	}()
	go func() {
		for {
			select {
			case ev := <-r.dev.Events():
				select {
				case r.events <- ev:
				default:
				}
			case <-runDone:
				return
			}
		}
	}()
	b.Cleanup(func() { cancel(); <-runDone })
	waitWithin(b, r.ep+" registered", 3*time.Minute, func() bool {
		_, ok := d.registry.Lookup(r.ep)
		return r.dev.Status().Registered && ok
	})
}

// waitQuiet waits until the link has been idle for its RRC inactivity
// time, so that the update's radio time starts from an idle radio.
func (r *olRun) waitQuiet(b *testing.B) {
	b.Helper()
	quiet := r.prof.RRCInactivity + 500*time.Millisecond
	last, changed := r.relay.Stats(), time.Now()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Since(changed) < quiet {
		if time.Now().After(deadline) {
			b.Fatalf("%s: the link never went quiet", r.ep)
		}
		time.Sleep(100 * time.Millisecond)
		st := r.relay.Stats()
		if st.Up.Offered != last.Up.Offered || st.Down.Offered != last.Down.Offered {
			last, changed = st, time.Now()
		}
	}
}

// measure runs the update and records the timeline. It runs on its own
// goroutine: it returns errors instead of failing the benchmark.
func (r *olRun) measure() error {
	ctx := context.Background()
	// Drain events from before the update (registration).
	for len(r.events) > 0 {
		<-r.events
	}
	stop := make(chan struct{})
	var pollWG sync.WaitGroup
	pollWG.Add(1)
	go func() { // block arrivals, at 2 ms resolution
		defer pollWG.Done()
		var last int64
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				if n := r.dev.Status().Downloaded; n != last {
					r.blocks = append(r.blocks, olBlock{at: now, downloaded: n})
					last = n
				}
			}
		}
	}()
	defer func() { close(stop); pollWG.Wait() }()

	r.st0 = r.relay.Stats()
	r.trigger = time.Now()
	if _, err := r.s.d.updates.Start(ctx, r.ep, update.Request{Image: r.target, Full: r.payload == "full"}); err != nil {
		return fmt.Errorf("start update: %w", err)
	}
	deadline := r.trigger.Add(55 * time.Minute)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case ev := <-r.events:
			switch {
			case ev.Kind == "state" && ev.State == simulator.StateDownloading && r.start.IsZero():
				r.start, r.stStart = ev.Time, r.relay.Stats()
			case ev.Kind == "state" && ev.State == simulator.StateDownloaded && r.end.IsZero():
				r.end, r.stEnd = ev.Time, r.relay.Stats()
			case ev.Kind == "updated" && !r.start.IsZero() && r.end.IsZero():
				r.regUpdates = append(r.regUpdates, ev.Time)
			case ev.Kind == "updated-firmware" && r.done.IsZero():
				// Re-registered, running and confirming the new image.
				r.done, r.stDone = ev.Time, r.relay.Stats()
			}
			continue
		case now := <-tick.C:
			u, _ := r.s.d.updates.Status(r.ep)
			if u.Phase.Finished() && r.driverEnd.IsZero() {
				r.driverEnd, r.driverPhase, r.driverErr = now, u.Phase, u.Error
				r.bytesServed, r.driverRetries = u.BytesServed, u.Retries
				if u.Format != r.format || u.Size != r.size {
					return fmt.Errorf("update sent a %s package of %d B, want %s of %d B", u.Format, u.Size, r.format, r.size)
				}
			}
			switch {
			case now.After(deadline):
				return fmt.Errorf("update still %s after %v", u.Phase, now.Sub(r.trigger))
			case r.done.IsZero() && !r.driverEnd.IsZero() && now.Sub(r.driverEnd) > 10*time.Second:
				return fmt.Errorf("update ended %s (result %d) before the device ran the new image: %s", u.Phase, u.Result, u.Error)
			case r.done.IsZero():
				continue
			case r.driverEnd.IsZero() && now.Sub(r.done) < 3*time.Minute:
				continue // let the driver conclude (or fail) for the report
			}
			if r.driverEnd.IsZero() {
				r.driverPhase, r.bytesServed, r.driverRetries = u.Phase, u.BytesServed, u.Retries
			}
		}
		break
	}
	if r.start.IsZero() || r.end.IsZero() {
		return errors.New("missed the device's download start or end")
	}
	st := r.dev.Status()
	if st.Version != r.target {
		return fmt.Errorf("device runs %s, want %s", st.Version, r.target)
	}
	r.deviceReboots = st.Reboots
	return nil
}

// compute derives the model and the table's numbers.
func (r *olRun) compute() {
	p := r.prof
	B := float64(olBlockSize)
	rtt := (p.Up.Delay + p.Down.Delay).Seconds()
	r.nBlocksWant = math.Ceil(float64(r.size) / B)
	sd := (B + olDownOverhead) * 8 / float64(p.Down.Rate)
	su := olUpBytes * 8 / float64(p.Up.Rate)
	r.tsw = r.nBlocksWant * (rtt + sd + su)
	r.tlb = r.nBlocksWant * (B + olDownOverhead) * 8 / float64(p.Down.Rate)

	up := olSub(r.stEnd.Up, r.stStart.Up)
	dn := olSub(r.stEnd.Down, r.stStart.Down)
	r.transferAirUp, r.airDn = up.AirBytes, dn.AirBytes
	r.transferUpPkts = up.Offered.Packets
	r.transferLost = [2]int64{up.Dropped().Packets, dn.Dropped().Packets}
	r.e2eAirUp = r.stDone.Up.AirBytes - r.st0.Up.AirBytes
	r.e2eAirDn = r.stDone.Down.AirBytes - r.st0.Down.AirBytes
	r.radio = r.stDone.Connected - r.st0.Connected
	r.transferRadio = r.stEnd.Connected - r.stStart.Connected
	r.energyJ = p.Energy(r.radio)
	r.energyMAh = r.radio.Hours() * p.CurrentMA

	// Gaps between block arrivals inside the transfer; a gap well above
	// the median is a block that waited: for a retransmission after a
	// loss, or behind a registration Update (the device's client runs one
	// exchange at a time), which the device's events tell.
	type gap struct {
		from time.Time
		d    time.Duration
	}
	var gaps []gap
	prev := r.start
	for _, bl := range r.blocks {
		if bl.at.Before(r.start) || bl.at.After(r.end.Add(10*time.Millisecond)) {
			continue
		}
		gaps = append(gaps, gap{prev, bl.at.Sub(prev)})
		prev = bl.at
	}
	if len(gaps) > 0 {
		sorted := make([]time.Duration, len(gaps))
		for i, g := range gaps {
			sorted[i] = g.d
		}
		slices.Sort(sorted)
		r.medianGap = sorted[len(sorted)/2]
		r.maxGap = sorted[len(sorted)-1]
		for _, g := range gaps {
			if g.d <= r.medianGap*3/2+20*time.Millisecond {
				continue
			}
			r.stalls++
			r.stallTime += g.d - r.medianGap
			st := olStall{at: g.from.Sub(r.start), d: g.d}
			for _, u := range r.regUpdates {
				if u.After(g.from) && !u.After(g.from.Add(g.d)) {
					st.regUpdate = true
				}
			}
			if st.regUpdate {
				r.regStalls++
			}
			r.stallGaps = append(r.stallGaps, st)
		}
	}
}

// olStall is a block that waited well over the median block time.
type olStall struct {
	at, d     time.Duration // start, from the transfer's, and length
	regUpdate bool          // a registration Update ran in it
}

func olSub(a, b link.DirStats) link.DirStats {
	d := link.DirStats{AirBytes: a.AirBytes - b.AirBytes, AirTime: a.AirTime - b.AirTime}
	c := func(x, y link.Count) link.Count {
		return link.Count{Packets: x.Packets - y.Packets, Bytes: x.Bytes - y.Bytes}
	}
	d.Offered, d.Delivered = c(a.Offered, b.Offered), c(a.Delivered, b.Delivered)
	d.Loss, d.Burst, d.MTU = c(a.Loss, b.Loss), c(a.Burst, b.Burst), c(a.MTU, b.MTU)
	d.Queue, d.Outage = c(a.Queue, b.Queue), c(a.Outage, b.Outage)
	return d
}

type olPair struct{ full, delta *olRun }

func olPairs(runs []*olRun) []olPair {
	var ps []olPair
	for _, f := range runs {
		if f.payload != "full" {
			continue
		}
		for _, d := range runs {
			if d.payload == "delta" && d.prof.Name == f.prof.Name {
				ps = append(ps, olPair{f, d})
			}
		}
	}
	return ps
}

func olDur(d time.Duration) string {
	switch {
	case d >= 2*time.Minute:
		return fmt.Sprintf("%.1f min", d.Minutes())
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func olSecs(s float64) string { return olDur(time.Duration(s * float64(time.Second))) }

func olKB(n int64) string { return fmt.Sprintf("%.1f KB", float64(n)/1000) }

// olTable is the markdown report.
func olTable(runs []*olRun, oldName, newName string, seed uint64) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "### Transfer (%s -> %s, Block2 %d B, stop-and-wait, relay seed %d)\n\n", oldName, newName, olBlockSize, seed)
	sb.WriteString("| link | payload | package | blocks | model T_sw | model T_lb | measured | meas / T_sw | (meas - stalls) / T_sw | air up | air down | lost up/down | stalled blocks: loss + reg. Update (time) | max gap |\n")
	sb.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		t := r.end.Sub(r.start)
		fmt.Fprintf(&sb, "| %s | %s | %d B | %.0f | %s | %s | %s | %.2f | %.2f | %s | %s | %d / %d | %d + %d (%s) | %s |\n",
			r.prof.Name, r.payload, r.size, r.nBlocksWant, olSecs(r.tsw), olSecs(r.tlb), olDur(t), t.Seconds()/r.tsw,
			(t-r.stallTime).Seconds()/r.tsw,
			olKB(r.transferAirUp), olKB(r.airDn), r.transferLost[0], r.transferLost[1], r.stalls-r.regStalls, r.regStalls, olDur(r.stallTime), olDur(r.maxGap))
	}
	for _, r := range runs {
		if len(r.stallGaps) > 0 {
			gaps := make([]string, len(r.stallGaps))
			for i, g := range r.stallGaps {
				gaps[i] = fmt.Sprintf("%.2f s at +%.0f s", g.d.Seconds(), g.at.Seconds())
				if g.regUpdate {
					gaps[i] += " (registration Update)"
				}
			}
			fmt.Fprintf(&sb, "\n%s %s: median block time %.3f s; blocks that waited: %s", r.prof.Name, r.payload,
				r.medianGap.Seconds(), strings.Join(gaps, ", "))
		}
	}
	sb.WriteString("\n")
	sb.WriteString("\n### Whole update (trigger to the device re-registered on the new image)\n\n")
	sb.WriteString("| link | payload | end-to-end | driver | air up | air down | radio-connected | energy | served / package | up pkts in transfer | driver retries | device boots |\n")
	sb.WriteString("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		energy := fmt.Sprintf("%.2f mAh / %.1f J", r.energyMAh, r.energyJ)
		if r.prof.RRCInactivity == 0 {
			energy = "n/a"
		}
		driver := string(r.driverPhase)
		if !r.driverEnd.IsZero() {
			driver += " at " + olDur(r.driverEnd.Sub(r.trigger))
		}
		if r.driverPhase != update.Done && r.driverErr != "" {
			driver += ": " + olShort(r.driverErr, 110)
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s | %s | %.3f | %d | %d | %d |\n",
			r.prof.Name, r.payload, olDur(r.done.Sub(r.trigger)), driver, olKB(r.e2eAirUp), olKB(r.e2eAirDn), olDur(r.radio), energy,
			float64(r.bytesServed)/float64(r.size), r.transferUpPkts, r.driverRetries, r.deviceReboots)
	}
	ps := olPairs(runs)
	if len(ps) > 0 {
		sb.WriteString("\n### What the delta saves\n\n")
		sb.WriteString("| link | package bytes | transfer time | bytes on air (transfer) | end-to-end | radio time / energy | >90 % of transfer time? |\n")
		sb.WriteString("|---|---:|---:|---:|---:|---:|---|\n")
		for _, p := range ps {
			f, d := p.full, p.delta
			pct := func(a, b float64) float64 { return 100 * (1 - b/a) }
			ts := pct(f.end.Sub(f.start).Seconds(), d.end.Sub(d.start).Seconds())
			yes := "no"
			if ts > 90 {
				yes = "yes"
			}
			radio := "n/a"
			if f.prof.RRCInactivity > 0 {
				radio = fmt.Sprintf("%.1f %%", pct(f.radio.Seconds(), d.radio.Seconds()))
			}
			fmt.Fprintf(&sb, "| %s | %.1f %% | %.1f %% | %.1f %% | %.1f %% | %s | %s |\n", f.prof.Name,
				pct(float64(f.size), float64(d.size)), ts,
				pct(float64(f.transferAirUp+f.airDn), float64(d.transferAirUp+d.airDn)),
				pct(f.done.Sub(f.trigger).Seconds(), d.done.Sub(d.trigger).Seconds()), radio, yes)
		}
	}
	return sb.String()
}

// olLogLevel is the runs' log level: warn, or FOTA_BENCH_LOG.
func olLogLevel() zerolog.Level {
	if l, err := zerolog.ParseLevel(os.Getenv("FOTA_BENCH_LOG")); err == nil && os.Getenv("FOTA_BENCH_LOG") != "" {
		return l
	}
	return zerolog.WarnLevel
}

var olDigest = regexp.MustCompile(` ?\([0-9a-f]{16,}\)`)

func olShort(s string, n int) string {
	s = strings.ReplaceAll(olDigest.ReplaceAllString(s, ""), "|", "/")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

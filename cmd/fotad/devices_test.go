package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/delivery/campaign"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
	"github.com/fotahub/fota/simulator/rawimage"
)

// devImages are the images of one client personality: what the device
// runs at first (1.0.0) and the target (2.0.0), in its vendor's format for
// the raw personalities, and the class they belong to.
type devImages struct {
	class   firmware.Class
	v1, v2  []byte
	native  bool // fotad's signed packages: the device needs the trust key
	resumes bool // the client resumes a download at its saved offset after a reboot
}

// personalityImages makes a personality's images from the real firmware
// corpus (about 40 KB of code with its header).
func personalityImages(t *testing.T, client simulator.Client, method string) devImages {
	t.Helper()
	// Each class holds its own images: the same bytes cannot be in two.
	tag := []byte(string(client) + "/" + method)
	body1 := append(readCorpus(t, "v1"), tag...)
	body2 := slices.Concat(readCorpus(t, "v2"), readCorpus(t, "v3"), tag)
	switch client {
	case simulator.ClientZephyr:
		return devImages{
			class: firmware.Class{Name: "zephyr-" + method, Profile: firmware.ProfileRaw, Method: method},
			v1:    rawimage.MCUboot(body1, rawimage.MCUbootVersion{Major: 1}),
			v2:    rawimage.MCUboot(body2, rawimage.MCUbootVersion{Major: 2}),
		}
	case simulator.ClientAnjay:
		v1, err := rawimage.VendorBlob(body1, "1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		v2, err := rawimage.VendorBlob(body2, "2.0.0")
		if err != nil {
			t.Fatal(err)
		}
		return devImages{class: firmware.Class{Name: "anjay-" + method, Profile: firmware.ProfileRaw, Method: method},
			v1: v1, v2: v2, resumes: true}
	}
	return devImages{class: firmware.Class{Name: "native-" + method, Profile: firmware.ProfileNative, Method: method},
		v1: body1, v2: body2, native: true, resumes: true}
}

// TestRawClassUpdatePerPersonality updates a device of every simulator
// client personality (zephyr: MCUboot image; anjay: vendor blob; native:
// fotad's signed package) by pull and by push, through fotad's API, each
// behind a link relay. Mid-download the link goes down for 4 s, and later
// the device loses power. Each device must end on the new image, its
// running slot byte for byte the uploaded file (for native, the image the
// package installs), with the update done (result 1) and the package the
// class's: raw for raw classes, never wrapped. A client that resumes
// (anjay, native) must not be sent the image twice; Zephyr, which forgets
// a download when it reboots, must be started again by the server. A push
// the outage or the power loss cut off is started again from block 0
// after Object 5 is reset (a device cannot resume a push); the outage
// alone must not cost a push its progress: the block lost in it is sent
// again (coap's continuation tracker), so only the power loss counts as
// a retry.
func TestRawClassUpdatePerPersonality(t *testing.T) {
	s := startServer(t, func(c *fileConfig) {
		c.Delivery.RetryBackoff = time.Second
		c.Delivery.RebootTimeout = 2 * time.Minute
		c.Delivery.PollInterval = 5 * time.Second
	})
	ctx := context.Background()
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	type run struct {
		name, ep string
		client   simulator.Client
		method   string
		im       devImages
		dev      *simulator.Device
		relay    *link.Relay
		faults   chan string
	}
	var runs []*run
	for i, client := range []simulator.Client{simulator.ClientZephyr, simulator.ClientAnjay, simulator.ClientNative} {
		for j, method := range []string{firmware.MethodPull, firmware.MethodPush} {
			r := &run{name: string(client) + "/" + method, ep: fmt.Sprintf("pers-%s-%s", client, method),
				client: client, method: method, im: personalityImages(t, client, method), faults: make(chan string, 4)}
			if _, err := s.d.firmware.PutClass(ctx, r.im.class); err != nil {
				t.Fatal(err)
			}
			for _, im := range []struct {
				b []byte
				v string
			}{{r.im.v1, "1.0.0"}, {r.im.v2, "2.0.0"}} {
				if _, _, err := s.d.firmware.AddImage(ctx, im.b, im.v, r.im.class.Name, ""); err != nil {
					t.Fatal(err)
				}
			}
			// 20 ms each way: a download of ~80 KB takes seconds, so the
			// faults land in its middle.
			prof := link.Profile{Name: "slow", Up: link.Params{Delay: 20 * time.Millisecond}, Down: link.Params{Delay: 20 * time.Millisecond}}
			r.relay = dmRelay(t, s.coapsAddr(), prof, uint64(10*i+j))
			dmProvision(t, s, r.ep)
			cfg := simulator.Config{Endpoint: r.ep, PSKIdentity: r.ep, PSKKey: []byte(r.ep + "-key"),
				Server: r.relay.Addr().String(), Client: client, Firmware: r.im.v1, FirmwareVersion: "1.0.0", Sequence: 1,
				DownloadVia: map[string]string{s.coapsAddr(): r.relay.Addr().String()},
				Delivery:    2, SlotSize: 128 << 10, BootTime: 200 * time.Millisecond, BlockTimeout: 20 * time.Second, Logger: logger}
			if r.im.native {
				cfg.Class, cfg.TrustKey = r.im.class.Name, s.d.firmware.PublicKey()
			}
			r.dev = dmStartDevice(t, cfg)
			runs = append(runs, r)
		}
	}
	for _, r := range runs {
		waitWithin(t, r.ep+" registered", time.Minute, func() bool { return r.dev.Status().Registered })
		waitWithin(t, r.ep+"'s version read", time.Minute, func() bool {
			v, ok := s.d.inventory.Installed(r.ep)
			return ok && v == "1.0.0"
		})
	}
	for _, r := range runs {
		body := map[string]any{"image": "2.0.0", "class": r.im.class.Name}
		if code := dmAPI(t, s, "POST", "/api/v1/devices/"+r.ep+"/update", body, nil); code != http.StatusAccepted {
			t.Fatalf("start update of %s: HTTP %d", r.ep, code)
		}
		go injectFaults(r.dev, r.relay, len(r.im.v2), r.faults)
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			view := dmAwaitUpdate(t, s, r.ep, 4*time.Minute)
			var faults []string
			for len(r.faults) > 0 {
				faults = append(faults, <-r.faults)
			}
			st := r.dev.Status()
			t.Logf("%s after %.1f s: %d-byte %s package (raw %t) by %s, %d bytes served, %d retries, %d reboots; faults: %s",
				view.Phase, view.Changed.Sub(view.Started).Seconds(), view.Size, view.Format, view.Raw, view.Method,
				view.BytesServed, view.Retries, st.Reboots, strings.Join(faults, ", "))
			if view.Phase != "done" || view.Result != 1 || view.Version != "2.0.0" {
				t.Fatalf("update ended %s (result %d, version %q): %s", view.Phase, view.Result, view.Version, view.Error)
			}
			if len(faults) != 2 {
				t.Fatalf("faults injected: %v, want the outage and the power loss", faults)
			}
			running, info := r.dev.Flash().Running()
			want := r.im.v2
			if sha256.Sum256(running) != sha256.Sum256(want) || st.Version != "2.0.0" {
				t.Fatalf("device runs %q (%q), %d bytes, sha256 %x; want the uploaded 2.0.0, %d bytes",
					st.Version, info.Version, len(running), sha256.Sum256(running), len(want))
			}
			if view.Method != r.method || view.Raw == r.im.native || view.Class != r.im.class.Name {
				t.Fatalf("update went by %s, raw %t, class %q; want %s, raw %t, class %q",
					view.Method, view.Raw, view.Class, r.method, !r.im.native, r.im.class.Name)
			}
			if view.Method == firmware.MethodPush && view.Retries > 1 {
				t.Fatalf("push took %d retries: only the power loss should have cut it", view.Retries)
			}
			if r.im.native || view.Method != firmware.MethodPull {
				return
			}
			// A raw package is the uploaded file: its size, never wrapped.
			if view.Size != int64(len(want)) || view.Format != "full" {
				t.Fatalf("raw package of %d bytes as %s, want the %d uploaded", view.Size, view.Format, len(want))
			}
			if r.im.resumes && view.BytesServed >= view.Size*5/4 {
				t.Fatalf("%d bytes served for a %d-byte image: the client should have resumed", view.BytesServed, view.Size)
			}
			if !r.im.resumes && (view.BytesServed <= view.Size || view.Retries == 0) {
				t.Fatalf("%d bytes served in %d retries for a %d-byte image: a Zephyr device that lost its download must be sent it again",
					view.BytesServed, view.Retries, view.Size)
			}
		})
	}
}

// injectFaults takes the link down for 4 s once a quarter of the image is
// downloaded, then cuts the device's power after a block past the half,
// and reports each fault on done.
func injectFaults(dev *simulator.Device, relay *link.Relay, size int, done chan<- string) {
	wait := func(bytes int64) bool {
		deadline := time.Now().Add(3 * time.Minute)
		for dev.Status().Downloaded < bytes {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(5 * time.Millisecond)
		}
		return true
	}
	if !wait(int64(size / 4)) {
		return
	}
	relay.Outage(4 * time.Second)
	done <- fmt.Sprintf("outage at %d bytes", dev.Status().Downloaded)
	if !wait(int64(size / 2)) {
		return
	}
	dev.Inject(simulator.FaultPowerLossDownload)
	done <- fmt.Sprintf("power loss at %d bytes", dev.Status().Downloaded)
}

// TestNativePackageToRawDevice sends fotad's signed package to a Zephyr
// device whose class nobody declared raw: the device answers Update
// Result 6 to the delta and to the full image the driver falls back to,
// and the update fails with a message that points at the class's profile,
// without any further try.
func TestNativePackageToRawDevice(t *testing.T) {
	s := startServer(t, func(c *fileConfig) { c.Delivery.RetryBackoff = time.Second })
	ctx := context.Background()
	body1, body2 := readCorpus(t, "v1"), readCorpus(t, "v2")
	// The engineer uploaded plain images to an undeclared class: native.
	for _, im := range []struct {
		b []byte
		v string
	}{{body1, "1.0.0"}, {body2, "2.0.0"}} {
		if _, _, err := s.d.firmware.AddImage(ctx, im.b, im.v, "nrf9160", ""); err != nil {
			t.Fatal(err)
		}
	}
	const ep = "zephyr-undeclared"
	dmProvision(t, s, ep)
	dev := dmStartDevice(t, simulator.Config{Endpoint: ep, PSKIdentity: ep, PSKKey: []byte(ep + "-key"),
		Server: s.coapsAddr(), Client: simulator.ClientZephyr, Firmware: rawimage.MCUboot(body1, rawimage.MCUbootVersion{Major: 1}),
		BootTime: 100 * time.Millisecond, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	waitWithin(t, "registered and its version read", time.Minute, func() bool {
		v, ok := s.d.inventory.Installed(ep)
		return ok && v == "1.0.0"
	})
	if code := dmAPI(t, s, "POST", "/api/v1/devices/"+ep+"/update", map[string]any{"image": "2.0.0"}, nil); code != http.StatusAccepted {
		t.Fatalf("start update: HTTP %d", code)
	}
	view := dmAwaitUpdate(t, s, ep, 2*time.Minute)
	if view.Phase != "failed" || view.Result != 6 || !view.FellBack || view.Retries != 0 {
		t.Fatalf("update %s, result %d, fell back %t, %d retries: %s; want failed with result 6 after the fallback",
			view.Phase, view.Result, view.FellBack, view.Retries, view.Error)
	}
	for _, want := range []string{"result 6", `class "nrf9160"`, "default profile native", "fotactl class add NAME --profile raw", "--format raw"} {
		if !strings.Contains(view.Error, want) {
			t.Fatalf("failure message %q does not say %q", view.Error, want)
		}
	}
	// Nothing more is sent: the device stays idle on its old image.
	served := view.BytesServed
	time.Sleep(3 * time.Second)
	after := dmAwaitUpdate(t, s, ep, time.Second)
	if st := dev.Status(); after.BytesServed != served || !after.Changed.Equal(view.Changed) || st.State != simulator.StateIdle || st.Version != "1.0.0" {
		t.Fatalf("after the failure: %d bytes served (was %d), changed %v (was %v); device state %d, version %q",
			after.BytesServed, served, after.Changed, view.Changed, st.State, st.Version)
	}
}

// TestRawClassCampaign runs a campaign to three Zephyr devices of a raw
// class: the plan offers the raw image as uploaded, and every device ends
// on it.
func TestRawClassCampaign(t *testing.T) {
	s := startServer(t, func(c *fileConfig) { c.Campaigns.Tick = 200 * time.Millisecond })
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(3, 3))
	body := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.IntN(32))
		}
		return b
	}
	v1 := rawimage.MCUboot(body(6000), rawimage.MCUbootVersion{Major: 1})
	v2 := rawimage.MCUboot(body(9000), rawimage.MCUbootVersion{Major: 1, Minor: 1})
	for _, im := range []struct {
		b []byte
		v string
	}{{v1, "1.0.0"}, {v2, "1.1.0"}} {
		if _, _, err := s.d.firmware.AddImage(ctx, im.b, im.v, "nrf52-mcuboot", firmware.ProfileRaw); err != nil {
			t.Fatal(err)
		}
	}
	var devs []*simulator.Device
	for i := range 3 {
		ep := fmt.Sprintf("zc-%d", i)
		dmProvision(t, s, ep)
		devs = append(devs, dmStartDevice(t, simulator.Config{Endpoint: ep, PSKIdentity: ep, PSKKey: []byte(ep + "-key"),
			Server: s.coapsAddr(), Client: simulator.ClientZephyr, Firmware: v1, BootTime: 100 * time.Millisecond,
			Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}))
	}
	spec := campaign.Spec{Image: "1.1.0", Select: campaign.Selection{All: true}, Waves: []campaign.Wave{{Count: 1}}}
	waitWithin(t, "every device's version known", time.Minute, func() bool {
		var plan campaign.Plan
		return dmAPI(t, s, "POST", "/api/v1/campaigns/plan", spec, &plan) == http.StatusOK && plan.Full == 3
	})
	var plan campaign.Plan
	dmAPI(t, s, "POST", "/api/v1/campaigns/plan", spec, &plan)
	for _, d := range plan.Devices {
		if d.Reason != firmware.ReasonRaw || d.Size != int64(len(v2)) {
			t.Fatalf("plan for %s: %d bytes, %q; want the raw image of %d bytes", d.Endpoint, d.Size, d.Reason, len(v2))
		}
	}
	var created api.CampaignBody
	if code := dmAPI(t, s, "POST", "/api/v1/campaigns", spec, &created); code != http.StatusCreated {
		t.Fatalf("create: HTTP %d", code)
	}
	id := created.Campaign.ID
	if code := dmAPI(t, s, "POST", "/api/v1/campaigns/"+id+"/start", nil, nil); code != http.StatusOK {
		t.Fatalf("start: HTTP %d", code)
	}
	waitWithin(t, "campaign done", 3*time.Minute, func() bool {
		var b api.CampaignBody
		dmAPI(t, s, "GET", "/api/v1/campaigns/"+id, nil, &b)
		return b.Campaign.State == campaign.Done
	})
	var b api.CampaignBody
	dmAPI(t, s, "GET", "/api/v1/campaigns/"+id, nil, &b)
	for _, tg := range b.Campaign.Targets {
		if tg.State != campaign.TargetDone {
			t.Fatalf("%s ended %s: %s", tg.Endpoint, tg.State, tg.Reason)
		}
	}
	for _, d := range devs {
		if running, _ := d.Flash().Running(); sha256.Sum256(running) != sha256.Sum256(v2) || d.Status().Version != "1.1.0" {
			t.Fatalf("%s runs %q, not the uploaded 1.1.0", d.Status().Endpoint, d.Status().Version)
		}
	}
}

// TestUnobservableZephyrRebootsMidDownload: a Zephyr device that refuses
// observations (the driver reads /5/0 instead) loses power mid-download
// and comes back registered anew with Object 5 idle and result 0; the
// driver must see from the new registration that the download was lost
// and start it again, instead of waiting for the deadline.
func TestUnobservableZephyrRebootsMidDownload(t *testing.T) {
	s := startServer(t, func(c *fileConfig) { c.Delivery.RetryBackoff = time.Second })
	ctx := context.Background()
	im := personalityImages(t, simulator.ClientZephyr, firmware.MethodPull)
	if _, err := s.d.firmware.PutClass(ctx, im.class); err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		b []byte
		v string
	}{{im.v1, "1.0.0"}, {im.v2, "2.0.0"}} {
		if _, _, err := s.d.firmware.AddImage(ctx, v.b, v.v, im.class.Name, ""); err != nil {
			t.Fatal(err)
		}
	}
	const ep = "zephyr-no-observe"
	relay := dmRelay(t, s.coapsAddr(), link.Profile{Name: "slow", Up: link.Params{Delay: 20 * time.Millisecond},
		Down: link.Params{Delay: 20 * time.Millisecond}}, 7)
	dmProvision(t, s, ep)
	dev := dmStartDevice(t, simulator.Config{Endpoint: ep, PSKIdentity: ep, PSKKey: []byte(ep + "-key"),
		Server: relay.Addr().String(), Client: simulator.ClientZephyr, Firmware: im.v1, NoObserve: true,
		DownloadVia: map[string]string{s.coapsAddr(): relay.Addr().String()}, SlotSize: 128 << 10,
		BootTime: 100 * time.Millisecond, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	waitWithin(t, "registered and its version read", time.Minute, func() bool {
		v, ok := s.d.inventory.Installed(ep)
		return ok && v == "1.0.0"
	})
	if code := dmAPI(t, s, "POST", "/api/v1/devices/"+ep+"/update", map[string]any{"image": "2.0.0", "class": im.class.Name}, nil); code != http.StatusAccepted {
		t.Fatalf("start update: HTTP %d", code)
	}
	waitWithin(t, "half the image downloaded", time.Minute, func() bool { return dev.Status().Downloaded >= int64(len(im.v2)/2) })
	dev.Inject(simulator.FaultPowerLossDownload)
	view := dmAwaitUpdate(t, s, ep, 2*time.Minute)
	running, _ := dev.Flash().Running()
	if view.Phase != "done" || view.Retries == 0 || sha256.Sum256(running) != sha256.Sum256(im.v2) {
		t.Fatalf("update %s after %d retries (%s); device runs %q", view.Phase, view.Retries, view.Error, dev.Status().Version)
	}
}

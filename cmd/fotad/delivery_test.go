package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

// TestDeliveryMatrix updates fotasim devices from v1.bin to v2.bin (real
// firmware, about 19 KB) through one fotad, each device behind a link
// relay with a built-in profile (wifi, catm1, nbiot: their rate, RTT and
// MTU), in every combination of format (full image, delta) and delivery
// method (pull with a Package URI, push with Block1 writes of /5/0/0).
// The update is started through the admin API; at the end the update is
// done in the format and method asked for, the device reports Update
// Result 1 and Idle, runs 2.0.0, and its running image is v2.bin byte for
// byte.
//
// The profiles' random loss is set to 0: it is a property of the link
// emulator tested in simulator/link, and over NB-IoT's 1.5 s RTT a lost
// DTLS flight or CoAP message costs many seconds of retransmission
// timeouts, which would make the run time vary without testing fotad.
//
// The device reboots ~100 ms after it answers Execute, before the
// driver's next read reaches it on catm1 and nbiot: the driver must wait
// for it, not take the failed read for a download to retry.
func TestDeliveryMatrix(t *testing.T) {
	v1, v2 := readCorpus(t, "v1"), readCorpus(t, "v2")
	s := startServer(t, nil)
	dmAddImages(t, s, "meter", map[string][]byte{"1.0.0": v1, "2.0.0": v2})
	want := sha256.Sum256(v2)

	type tc struct {
		profile string
		full    bool
		push    bool
		// delivery is the device's /5/0/9; askPush is the request's push
		// flag. Push is chosen either way: by the flag with a device
		// that allows both, or by a push-only device without it.
		delivery int
		askPush  bool
	}
	var cases []tc
	for _, profile := range []string{"wifi", "catm1", "nbiot"} {
		for _, full := range []bool{true, false} {
			cases = append(cases, tc{profile: profile, full: full})
			// wifi pushes to a push-only device; the others are asked to push.
			if profile == "wifi" {
				cases = append(cases, tc{profile: profile, full: full, push: true, delivery: 1})
			} else {
				cases = append(cases, tc{profile: profile, full: full, push: true, delivery: 2, askPush: true})
			}
		}
	}
	// All devices update at once: the subtests only check the outcomes
	// (t.Parallel would run no more than GOMAXPROCS of these mostly idle
	// subtests at a time).
	type run struct {
		tc
		name, ep, format, method string
		dev                      *simulator.Device
	}
	runs := make([]*run, len(cases))
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	for i, c := range cases {
		r := &run{tc: c, format: map[bool]string{true: "full", false: "delta"}[c.full],
			method: map[bool]string{true: "push", false: "pull"}[c.push]}
		r.name = c.profile + "/" + r.format + "/" + r.method
		r.ep = fmt.Sprintf("dm-%s-%s-%s", c.profile, r.format, r.method)
		prof, ok := link.Lookup(c.profile)
		if !ok {
			t.Fatalf("no link profile %q", c.profile)
		}
		prof.Up.Loss, prof.Down.Loss = 0, 0
		relay := dmRelay(t, s.coapsAddr(), prof, uint64(100+i))
		dmProvision(t, s, r.ep)
		r.dev = dmStartDevice(t, simulator.Config{Endpoint: r.ep, PSKIdentity: r.ep, PSKKey: []byte(r.ep + "-key"),
			Server: relay.Addr().String(), Firmware: v1, FirmwareVersion: "1.0.0", Sequence: 1, Class: "meter",
			TrustKey: s.d.firmware.PublicKey(), BlockSize: 1024, Delivery: c.delivery, BootTime: 100 * time.Millisecond,
			Logger: logger})
		runs[i] = r
	}
	for _, r := range runs {
		waitWithin(t, r.ep+" registered", 60*time.Second, func() bool { return r.dev.Status().Registered })
	}
	for _, r := range runs {
		body := map[string]any{"image": "2.0.0", "full": r.full, "push": r.askPush}
		if code := dmAPI(t, s, "POST", "/api/v1/devices/"+r.ep+"/update", body, nil); code != http.StatusAccepted {
			t.Fatalf("start update of %s: HTTP %d", r.ep, code)
		}
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			dev, format, method := r.dev, r.format, r.method
			view := dmAwaitUpdate(t, s, r.ep, 120*time.Second)
			t.Logf("%s after %.1f s: %d bytes %s by %s, %d retries", view.Phase, view.Changed.Sub(view.Started).Seconds(),
				view.Size, view.Format, view.Method, view.Retries)
			// The device first: it reports result 1 before the update is
			// done (the driver then reads /3/0/3), so once done it has.
			st := dev.Status()
			if st.State != simulator.StateIdle || st.Result != simulator.ResultSuccess || st.Version != "2.0.0" {
				t.Fatalf("device: state %d, result %d, version %q; update %s: %s", st.State, st.Result, st.Version, view.Phase, view.Error)
			}
			running, info := dev.Flash().Running()
			if sha256.Sum256(running) != want || info.Version != "2.0.0" {
				t.Fatalf("device runs %q, %d bytes, sha256 %x, not v2.bin", info.Version, len(running), sha256.Sum256(running))
			}
			if view.Format != format || view.FellBack || view.Method != method {
				t.Fatalf("update went as format %q method %q (fell back %v), want %s by %s", view.Format, view.Method, view.FellBack, format, method)
			}
			if view.BytesServed < view.Size {
				t.Fatalf("served %d of %d bytes (progress %v)", view.BytesServed, view.Size, view.Progress)
			}
			if view.Phase != "done" || view.Result != 1 || view.Version != "2.0.0" || view.Retries != 0 {
				t.Fatalf("update ended %s (result %d, version %q): %s", view.Phase, view.Result, view.Version, view.Error)
			}
			if view.Progress != 1 {
				t.Fatalf("progress %v once done", view.Progress)
			}
		})
	}
}

// dmAddImages adds images, by version, to the class through the API.
func dmAddImages(t *testing.T, s *testServer, class string, images map[string][]byte) {
	t.Helper()
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		b, ok := images[v]
		if !ok {
			continue
		}
		req, _ := http.NewRequest("POST", s.apiURL()+"/api/v1/images?version="+v+"&class="+class, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+s.d.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("add image %s: %v", v, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("add image %s: HTTP %d", v, resp.StatusCode)
		}
	}
}

// dmAPI calls the admin API; unlike testServer.api it reports to t, so
// that parallel subtests can share one server.
func dmAPI(t *testing.T, s *testServer, method, path string, body any, out any) int {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, s.apiURL()+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: HTTP %d: %v", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

// dmProvision adds a PSK device whose identity is ep and key ep-key.
func dmProvision(t *testing.T, s *testServer, ep string) {
	t.Helper()
	code := dmAPI(t, s, "POST", "/api/v1/devices", map[string]any{
		"endpoint": ep, "psk_identity": ep, "psk_key": hex.EncodeToString([]byte(ep + "-key")),
	}, nil)
	if code != http.StatusCreated {
		t.Fatalf("provision %s: HTTP %d", ep, code)
	}
}

// dmRelay is a link relay with the profile in front of server.
func dmRelay(t *testing.T, server string, prof link.Profile, seed uint64) *link.Relay {
	t.Helper()
	addr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := link.NewRelay(addr, prof, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	return relay
}

// dmStartDevice runs a simulated device until the test ends; it does not
// wait for the registration.
func dmStartDevice(t *testing.T, cfg simulator.Config) *simulator.Device {
	t.Helper()
	dev, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return dev
}

// dmAwaitUpdate polls the update through the API until it has finished.
func dmAwaitUpdate(t *testing.T, s *testServer, ep string, within time.Duration) api.UpdateView {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var view api.UpdateView
		if code := dmAPI(t, s, "GET", "/api/v1/devices/"+ep+"/update", nil, &view); code != http.StatusOK {
			t.Fatalf("GET update of %s: HTTP %d", ep, code)
		}
		switch view.Phase {
		case "done", "failed", "cancelled":
			return view
		}
		if time.Now().After(deadline) {
			t.Fatalf("update of %s not finished after %v: %+v", ep, within, view)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPushOverLossyLink pushes an image (Block1 writes of /5/0/0) over a
// link that loses 5 % of the datagrams each way. Every block after the
// first is sent from go-coap's response path, which does not retransmit:
// coap's continuation tracker must, or one lost block stalls the push
// until the operation's deadline and the push starts over from block 0.
// The push must complete on its first attempt.
func TestPushOverLossyLink(t *testing.T) {
	v1, v2 := readCorpus(t, "v1"), readCorpus(t, "v2")
	s := startServer(t, nil)
	dmAddImages(t, s, "lossy", map[string][]byte{"1.0.0": v1, "2.0.0": v2})
	prof := link.Profile{Name: "lossy", Up: link.Params{Delay: 10 * time.Millisecond, Loss: 0.05},
		Down: link.Params{Delay: 10 * time.Millisecond, Loss: 0.05}}
	relay := dmRelay(t, s.coapsAddr(), prof, 42)
	const ep = "lossy-push"
	dmProvision(t, s, ep)
	dev := dmStartDevice(t, simulator.Config{Endpoint: ep, PSKIdentity: ep, PSKKey: []byte(ep + "-key"),
		Server: relay.Addr().String(), Firmware: v1, FirmwareVersion: "1.0.0", Sequence: 1, Class: "lossy",
		TrustKey: s.d.firmware.PublicKey(), Delivery: 1, BootTime: 100 * time.Millisecond,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	waitWithin(t, ep+" registered", time.Minute, func() bool { return dev.Status().Registered })
	if code := dmAPI(t, s, "POST", "/api/v1/devices/"+ep+"/update", map[string]any{"image": "2.0.0", "full": true}, nil); code != http.StatusAccepted {
		t.Fatalf("start update: HTTP %d", code)
	}
	view := dmAwaitUpdate(t, s, ep, 3*time.Minute)
	st := relay.Stats()
	t.Logf("%s after %.1f s, %d retries; the link lost %d datagrams up and %d down", view.Phase,
		view.Changed.Sub(view.Started).Seconds(), view.Retries, st.Up.Loss.Packets, st.Down.Loss.Packets)
	if view.Phase != "done" || view.Method != "push" || view.Retries != 0 {
		t.Fatalf("push ended %s by %s after %d retries: %s", view.Phase, view.Method, view.Retries, view.Error)
	}
	if st.Down.Loss.Packets == 0 {
		t.Fatal("the link lost nothing: the test proves nothing")
	}
	if running, _ := dev.Flash().Running(); sha256.Sum256(running) != sha256.Sum256(v2) {
		t.Fatal("the device does not run v2.bin")
	}
}

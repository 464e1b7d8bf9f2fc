package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/lwm2m/client"
	"github.com/fotahub/fota/lwm2m/model"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

// TestFotadUpdateFailures runs updates that go wrong through fotad: the
// admin API starts (and cancels) them, the Object 5 driver runs them,
// fotasim devices (and, where fotasim cannot fail that way, a minimal
// LwM2M client) fail them. Each subtest checks how the update ended (phase,
// result, fallback) and what the device runs afterwards.
func TestFotadUpdateFailures(t *testing.T) {
	v1, v2 := readCorpus(t, "v1"), readCorpus(t, "v2")

	// A byte of the full image flipped on the way: integrity check failure
	// (5). A full image has nothing to fall back to: failed with 5.
	t.Run("corrupted-package", func(t *testing.T) {
		t.Parallel()
		s, dev := ufSetup(t, nil, v1, v2, func(c *simulator.Config) {})
		dev.Inject(simulator.FaultCorruptBlock)
		view := ufUpdate(t, s, "uf-dev", map[string]any{"image": "2.0.0", "full": true})
		ufWant(t, view, "failed", 5, "full", false)
		ufRunsOld(t, dev, v1, simulator.ResultIntegrity)
	})

	// fotasim never reports 6 (unsupported package type) for a delta it
	// could take as a full image: its checks that end in 6 (class,
	// sequence, unknown payload format) do not depend on the format. A
	// device that does not apply deltas at all is played by ufPickyDevice:
	// 6 on the delta, then the full image is sent and installed.
	t.Run("unsupported-delta-falls-back", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, nil)
		dmAddImages(t, s, "meter", map[string][]byte{"1.0.0": v1, "2.0.0": v2})
		dmProvision(t, s, "uf-picky")
		dev := ufStartPicky(t, s, "uf-picky", "1.0.0")
		view := ufUpdate(t, s, "uf-picky", map[string]any{"image": "2.0.0"})
		ufWant(t, view, "done", 1, "full", true)
		formats, image, version := dev.outcome()
		if len(formats) != 2 || formats[0] != manifest.FormatDelta || formats[1] != manifest.FormatFull {
			t.Fatalf("the device was offered %v, want a delta, then the full image", formats)
		}
		if sha256.Sum256(image) != sha256.Sum256(v2) || version != "2.0.0" {
			t.Fatalf("the device installed %q, %d bytes, not v2.bin", version, len(image))
		}
	})

	// A device whose delta applier has too little RAM for fotad's deltas
	// fails the delta with 5 (fotasim's way of not taking a delta): fall
	// back to the full image, which it installs.
	t.Run("delta-ram-too-small-falls-back", func(t *testing.T) {
		t.Parallel()
		s, dev := ufSetup(t, nil, v1, v2, func(c *simulator.Config) { c.DeltaRAM = 1024 })
		view := ufUpdate(t, s, "uf-dev", map[string]any{"image": "2.0.0"})
		ufWant(t, view, "done", 1, "full", true)
		ufRunsNew(t, dev, v2)
	})

	// 6 on a full image (the package's sequence is not above the one the
	// device has installed): nothing to fall back to, failed with 6.
	t.Run("unsupported-full-fails", func(t *testing.T) {
		t.Parallel()
		s, dev := ufSetup(t, nil, v1, v2, func(c *simulator.Config) { c.Sequence = 100 })
		view := ufUpdate(t, s, "uf-dev", map[string]any{"image": "2.0.0", "full": true})
		ufWant(t, view, "failed", 6, "full", false)
		ufRunsOld(t, dev, v1, simulator.ResultUnsupportedType)
	})

	// The device does not run the image fotad believes installed: the
	// delta's precursor does not match (5), the full image is sent.
	t.Run("wrong-precursor-falls-back", func(t *testing.T) {
		t.Parallel()
		s, dev := ufSetup(t, nil, v1, v2, func(c *simulator.Config) {})
		dev.Inject(simulator.FaultWrongPrecursor)
		view := ufUpdate(t, s, "uf-dev", map[string]any{"image": "2.0.0"})
		ufWant(t, view, "done", 1, "full", true)
		ufRunsNew(t, dev, v2)
	})

	// The device trusts another signing key: every package fotad signs
	// fails its manifest check (5), the delta and then the full image.
	t.Run("untrusted-signature", func(t *testing.T) {
		t.Parallel()
		other, err := manifest.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		s, dev := ufSetup(t, nil, v1, v2, func(c *simulator.Config) { c.TrustKey = &other.PublicKey })
		view := ufUpdate(t, s, "uf-dev", map[string]any{"image": "2.0.0"})
		if view.Phase != "failed" || view.Result != 5 {
			t.Fatalf("update ended %s with result %d (%s), want failed with 5", view.Phase, view.Result, view.Error)
		}
		t.Logf("fell back: %v, last format %s", view.FellBack, view.Format)
		ufRunsOld(t, dev, v1, simulator.ResultIntegrity)
	})

	// The link goes down for good once Update is executed: the device
	// installs and reboots but never reports back. With a 6 s update
	// deadline the update fails naming the deadline.
	t.Run("device-never-comes-back", func(t *testing.T) {
		t.Parallel()
		const deadline = 6 * time.Second
		s := startServer(t, func(c *fileConfig) { c.Delivery.UpdateDeadline = deadline })
		dmAddImages(t, s, "meter", map[string][]byte{"1.0.0": v1, "2.0.0": v2})
		dmProvision(t, s, "uf-gone")
		relay := dmRelay(t, s.coapsAddr(), link.Profile{Name: "lan"}, 7)
		dev := runDevice(t, ufDevice(t, s, "uf-gone", relay.Addr().String(), v1))
		start := time.Now()
		if code := dmAPI(t, s, "POST", "/api/v1/devices/uf-gone/update", map[string]any{"image": "2.0.0", "full": true}, nil); code != http.StatusAccepted {
			t.Fatalf("start update: HTTP %d", code)
		}
		waitWithin(t, "update executed", deadline, func() bool {
			u, _ := s.d.updates.Status("uf-gone")
			return u.Phase == "updating" || u.Phase.Finished()
		})
		relay.Outage(time.Hour)
		if u, _ := s.d.updates.Status("uf-gone"); u.Phase != "updating" {
			t.Fatalf("update %s before the device went away: %s", u.Phase, u.Error)
		}
		view := dmAwaitUpdate(t, s, "uf-gone", deadline+30*time.Second)
		took := time.Since(start)
		if view.Phase != "failed" || !strings.Contains(view.Error, "deadline") {
			t.Fatalf("update ended %s: %q, want failed at the deadline", view.Phase, view.Error)
		}
		if took > deadline+20*time.Second {
			t.Fatalf("update failed %v after it started, with a %v deadline", took.Round(time.Second), deadline)
		}
		if st := dev.Status(); st.Registered {
			t.Fatalf("device registered again through the outage: %+v", st)
		}
		t.Logf("failed after %v: %s", took.Round(100*time.Millisecond), view.Error)
	})

	// DELETE of the update while the device downloads (100 ms each way,
	// 256-byte blocks): the update is cancelled, the device reset to Idle
	// with result 0 and stops downloading, the package is no longer
	// served, and the device still runs v1.
	t.Run("cancel-mid-download", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, nil)
		dmAddImages(t, s, "meter", map[string][]byte{"1.0.0": v1, "2.0.0": v2})
		dmProvision(t, s, "uf-cancel")
		slow := link.Params{Delay: 100 * time.Millisecond}
		relay := dmRelay(t, s.coapsAddr(), link.Profile{Name: "slow", Up: slow, Down: slow}, 9)
		cfg := ufDevice(t, s, "uf-cancel", relay.Addr().String(), v1)
		cfg.BlockSize = 256
		dev := runDevice(t, cfg)
		if code := dmAPI(t, s, "POST", "/api/v1/devices/uf-cancel/update", map[string]any{"image": "2.0.0", "full": true}, nil); code != http.StatusAccepted {
			t.Fatalf("start update: HTTP %d", code)
		}
		waitWithin(t, "download under way", 30*time.Second, func() bool { return dev.Status().Downloaded >= 1024 })
		if s.d.coap.Published() != 1 {
			t.Fatalf("%d packages published during the download", s.d.coap.Published())
		}
		if code := dmAPI(t, s, "DELETE", "/api/v1/devices/uf-cancel/update", nil, nil); code != http.StatusNoContent {
			t.Fatalf("cancel: HTTP %d", code)
		}
		var view api.UpdateView
		dmAPI(t, s, "GET", "/api/v1/devices/uf-cancel/update", nil, &view)
		if view.Phase != "cancelled" {
			t.Fatalf("update %s after the cancel: %s", view.Phase, view.Error)
		}
		if st := dev.Status(); st.State != simulator.StateIdle || st.Result != simulator.ResultInitial {
			t.Fatalf("device: state %d, result %d after the cancel, want 0 and 0", st.State, st.Result)
		}
		if n := s.d.coap.Published(); n != 0 {
			t.Fatalf("%d packages still published after the cancel", n)
		}
		got := dev.Status().Downloaded
		if got >= int64(len(v2)) {
			t.Fatalf("the device downloaded %d bytes before the cancel: too fast to test it", got)
		}
		time.Sleep(time.Second) // a few blocks' time: the download must have stopped
		st := dev.Status()
		if st.Downloaded != got || st.State != simulator.StateIdle {
			t.Fatalf("after the cancel the device went on: %d then %d bytes, state %d", got, st.Downloaded, st.State)
		}
		ufRunsOld(t, dev, v1, simulator.ResultInitial)
		if u, _ := s.d.updates.Status("uf-cancel"); u.Phase != "cancelled" {
			t.Fatalf("update %s a second after the cancel", u.Phase)
		}
	})
}

// ufDevice is a fotasim device on v1 (1.0.0, sequence 1, class meter)
// that trusts fotad's key and downloads in 1024-byte blocks.
func ufDevice(t *testing.T, s *testServer, ep, server string, v1 []byte) simulator.Config {
	return simulator.Config{Endpoint: ep, PSKIdentity: ep, PSKKey: []byte(ep + "-key"),
		Server: server, Firmware: v1, FirmwareVersion: "1.0.0", Sequence: 1, Class: "meter",
		TrustKey: s.d.firmware.PublicKey(), BlockSize: 1024, BootTime: 100 * time.Millisecond,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
}

// ufSetup starts fotad with v1 and v2 and a fotasim device uf-dev on v1,
// changed by change, registered directly (loopback, no relay).
func ufSetup(t *testing.T, mutate func(*fileConfig), v1, v2 []byte, change func(*simulator.Config)) (*testServer, *simulator.Device) {
	t.Helper()
	s := startServer(t, mutate)
	dmAddImages(t, s, "meter", map[string][]byte{"1.0.0": v1, "2.0.0": v2})
	dmProvision(t, s, "uf-dev")
	cfg := ufDevice(t, s, "uf-dev", s.coapsAddr(), v1)
	change(&cfg)
	return s, runDevice(t, cfg)
}

// ufUpdate starts an update through the API and waits for its end.
func ufUpdate(t *testing.T, s *testServer, ep string, body map[string]any) api.UpdateView {
	t.Helper()
	if code := dmAPI(t, s, "POST", "/api/v1/devices/"+ep+"/update", body, nil); code != http.StatusAccepted {
		t.Fatalf("start update: HTTP %d", code)
	}
	view := dmAwaitUpdate(t, s, ep, 60*time.Second)
	t.Logf("update %s: result %d, format %s, fell back %v, retries %d: %s", view.Phase, view.Result, view.Format,
		view.FellBack, view.Retries, view.Error)
	return view
}

// ufWant checks how an update ended.
func ufWant(t *testing.T, view api.UpdateView, phase string, result int, format string, fellBack bool) {
	t.Helper()
	if view.Phase != phase || view.Result != result || view.Format != format || view.FellBack != fellBack {
		t.Fatalf("update ended %s, result %d, format %s, fell back %v (%s); want %s, result %d, format %s, fell back %v",
			view.Phase, view.Result, view.Format, view.FellBack, view.Error, phase, result, format, fellBack)
	}
}

// ufRunsOld checks that the device still runs v1, unchanged, and reports
// Idle with the result.
func ufRunsOld(t *testing.T, dev *simulator.Device, v1 []byte, result int) {
	t.Helper()
	st := dev.Status()
	running, info := dev.Flash().Running()
	if st.Version != "1.0.0" || info.Version != "1.0.0" || sha256.Sum256(running) != sha256.Sum256(v1) {
		t.Fatalf("device runs %q (%d bytes), not v1.bin", info.Version, len(running))
	}
	if st.State != simulator.StateIdle || st.Result != result {
		t.Fatalf("device: state %d, result %d; want 0 and %d", st.State, st.Result, result)
	}
}

// ufRunsNew checks that the device runs v2 byte for byte and reports
// Idle with result 1.
func ufRunsNew(t *testing.T, dev *simulator.Device, v2 []byte) {
	t.Helper()
	st := dev.Status()
	running, info := dev.Flash().Running()
	if info.Version != "2.0.0" || sha256.Sum256(running) != sha256.Sum256(v2) {
		t.Fatalf("device runs %q (%d bytes), not v2.bin", info.Version, len(running))
	}
	if st.State != simulator.StateIdle || st.Result != simulator.ResultSuccess {
		t.Fatalf("device: state %d, result %d; want 0 and 1", st.State, st.Result)
	}
}

// ufPickyDevice is a minimal LwM2M client that pulls packages from a
// Package URI, checks their manifest, and refuses every delta with
// Update Result 6 (unsupported package type); a full image it keeps, and
// installs on Execute without rebooting.
type ufPickyDevice struct {
	c   *client.Client
	key *ecdsa.PublicKey

	mu      sync.Mutex
	state   int
	formats []manifest.Format // of the packages offered, in order
	image   []byte            // the last full image downloaded
	pending string            // its version
	version string            // the version it runs
	changes chan func(context.Context)
}

func ufStartPicky(t *testing.T, s *testServer, ep, version string) *ufPickyDevice {
	t.Helper()
	f := &ufPickyDevice{key: s.d.firmware.PublicKey(), version: version, changes: make(chan func(context.Context), 16)}
	f.c = client.New(client.Config{Endpoint: ep, Server: s.coapsAddr(), Secure: true, Lifetime: 300 * time.Second,
		Formats:   []int{model.ContentFormatSenMLCBOR, model.ContentFormatTLV},
		Transport: coap.ClientConfig{PSKIdentity: ep, PSKKey: []byte(ep + "-key"), ConnectionID: true, HandshakeTimeout: 5 * time.Second},
		Intercept: f.intercept})
	f.c.AddInstance(1, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		0: model.SingleResource(0, model.IntegerValue(1)),
		1: model.SingleResource(1, model.UnsignedValue(300)),
		7: model.SingleResource(7, model.StringValue("U")),
	}})
	f.c.AddInstance(3, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		0:  model.SingleResource(0, model.StringValue("fotahub")),
		3:  model.SingleResource(3, model.StringValue(version)),
		17: model.SingleResource(17, model.StringValue("meter")),
	}})
	f.c.AddInstance(5, model.ObjectInstance{ID: 0, Resources: map[uint16]model.Resource{
		1: model.SingleResource(1, model.StringValue("")),
		3: model.SingleResource(3, model.IntegerValue(0)),
		5: model.SingleResource(5, model.IntegerValue(0)),
		8: model.MultipleResource(8, map[uint16]model.Value{0: model.IntegerValue(1)}),
		9: model.SingleResource(9, model.IntegerValue(0)),
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // Object 5 changes, applied (and notified) in order
		defer close(done)
		for {
			select {
			case change := <-f.changes:
				change(ctx)
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = f.c.Deregister(dctx)
		dcancel()
		cancel()
		<-done
		_ = f.c.Close()
	})
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	if err := f.c.Dial(rctx); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Register(rctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// setLocked changes /5/0/3 and /5/0/5; the observation is notified.
func (f *ufPickyDevice) setLocked(state, result int) {
	f.state = state
	f.changes <- func(ctx context.Context) {
		_ = f.c.Set(ctx, model.ResourcePath(5, 0, 3), model.IntegerValue(int64(state)))
		_ = f.c.Set(ctx, model.ResourcePath(5, 0, 5), model.IntegerValue(int64(result)))
	}
}

func (f *ufPickyDevice) intercept(r *coap.Request) coap.Response {
	switch {
	case r.Path == "/5/0/1" && (r.Method == coap.PUT || r.Method == coap.POST):
		vals, err := model.DecodeValues(max(r.ContentFormat, 0), model.ResourcePath(5, 0, 1), r.Payload)
		if err != nil || len(vals) != 1 {
			return coap.Reply(coap.BadRequest)
		}
		uri, _ := vals[0].Value.AsString()
		f.mu.Lock()
		defer f.mu.Unlock()
		if uri == "" {
			f.setLocked(0, 0)
			return coap.Reply(coap.Changed)
		}
		if f.state != 0 {
			return coap.Reply(coap.BadRequest)
		}
		f.setLocked(1, 0)
		go f.download(uri)
		return coap.Reply(coap.Changed)
	case r.Path == "/5/0/2" && r.Method == coap.POST:
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.state != 2 {
			return coap.Reply(coap.MethodNotAllowed)
		}
		f.setLocked(3, 0)
		version := f.pending
		f.changes <- func(ctx context.Context) {
			f.mu.Lock()
			f.version = version
			f.mu.Unlock()
			_ = f.c.Set(ctx, model.ResourcePath(3, 0, 3), model.StringValue(version))
		}
		f.setLocked(0, 1)
		return coap.Reply(coap.Changed)
	}
	return coap.Response{}
}

// download fetches the package (go-coap does the Block2 transfer) and
// refuses it unless it is a full image with a valid manifest.
func (f *ufPickyDevice) download(uri string) {
	result := 0
	var m manifest.Manifest
	var payload []byte
	u, err := url.Parse(uri)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var resp coap.Response
		resp, err = f.c.Do(ctx, coap.NewRequest(coap.GET, u.Path))
		cancel()
		if err == nil && resp.Code == coap.Content {
			m, payload, err = manifest.Parse(resp.Payload, f.key)
		} else if err == nil {
			result = 7
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case result != 0:
	case err != nil:
		result = 4
		if u != nil {
			result = 5
		}
	case m.Format != manifest.FormatFull:
		f.formats = append(f.formats, m.Format)
		result = 6
	case sha256.Sum256(payload) != m.ImageDigest:
		f.formats = append(f.formats, m.Format)
		result = 5
	default:
		f.formats = append(f.formats, m.Format)
		f.image, f.pending = payload, m.Version
		f.setLocked(2, 0)
		return
	}
	f.setLocked(0, result)
}

// outcome is what the device was offered, the last full image it
// downloaded and the version it runs.
func (f *ufPickyDevice) outcome() ([]manifest.Format, []byte, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]manifest.Format(nil), f.formats...), f.image, f.version
}

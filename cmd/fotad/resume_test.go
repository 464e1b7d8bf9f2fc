package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fotahub/fota/api"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/update"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

// The tests here interrupt a pull download of a full image half way (a
// link outage, a power loss of the device, a SIGKILL of fotad) and check
// that the update completes with the device resuming where it was: over
// the whole test the device downloads little more than the package once,
// where starting over would cost the quarter already downloaded again,
// and the candidate slot it writes the image to never shrinks (a download
// that starts over erases it first).

// resumeImages are the images of the resume tests: about 25 KB, which
// takes a few seconds in 64-byte blocks over resumeRelay.
func resumeImages() (v1, v2 []byte) {
	v1 = []byte(strings.Repeat("firmware build one ", 1300))
	v2 = bytes.Replace(v1, []byte("one "), []byte("two "), 30)
	return v1, v2
}

// resumeRelay is a link with 5 ms of delay each way in front of server.
func resumeRelay(t *testing.T, server string, seed uint64) *link.Relay {
	t.Helper()
	addr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := link.NewRelay(addr, link.Profile{Name: "slow", Up: link.Params{Delay: 5 * time.Millisecond},
		Down: link.Params{Delay: 5 * time.Millisecond}}, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	return relay
}

// resumeDevice is a fotasim device on v1 that downloads in 64-byte blocks
// and gives up on a block after 1 s (three in a row: it connects again).
func resumeDevice(t *testing.T, ep, server string, v1 []byte, trust *ecdsa.PublicKey) simulator.Config {
	return simulator.Config{Endpoint: ep, PSKIdentity: ep, PSKKey: []byte(ep + "-key"),
		Server: server, Firmware: v1, FirmwareVersion: "1.0.0", Sequence: 1, Class: "meter",
		TrustKey: trust, BlockSize: 64, BootTime: 50 * time.Millisecond, BlockTimeout: time.Second,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
}

// startResumeServer is fotad in process with v1 and v2 and ep provisioned.
func startResumeServer(t *testing.T, ep string, v1, v2 []byte) *testServer {
	t.Helper()
	s := startServer(t, nil)
	s.addImages("meter", v1, v2)
	s.provision(ep, ep, ep+"-key")
	return s
}

// startFullUpdate starts the update to 2.0.0 (full image: the package is
// the image's size, not a small delta) and returns the package's size.
func startFullUpdate(t *testing.T, s *testServer, ep string) int64 {
	t.Helper()
	if _, err := s.d.updates.Start(context.Background(), ep, update.Request{Image: "2.0.0", Full: true}); err != nil {
		t.Fatal(err)
	}
	var u update.Update
	waitWithin(t, "the package made", 30*time.Second, func() bool {
		u, _ = s.d.updates.Status(ep)
		return u.Size > 0 || u.Phase.Finished()
	})
	if u.Size == 0 {
		t.Fatalf("update ended before its package was made: %+v", u)
	}
	return u.Size
}

// waitInProcessUpdate waits for the update of ep to end and checks it is
// done with Update Result 1.
func waitInProcessUpdate(t *testing.T, s *testServer, ep string) update.Update {
	t.Helper()
	var u update.Update
	waitWithin(t, "update finished", 100*time.Second, func() bool {
		u, _ = s.d.updates.Status(ep)
		return u.Phase.Finished()
	})
	if u.Phase != update.Done || u.Result != simulator.ResultSuccess {
		t.Fatalf("update: phase %s, result %d, error %q (%+v)", u.Phase, u.Result, u.Error, u)
	}
	return u
}

// waitDownloaded waits until the device has downloaded more than n bytes.
func waitDownloaded(t *testing.T, dev *simulator.Device, n int64) int64 {
	t.Helper()
	var st simulator.Status
	waitWithin(t, fmt.Sprintf("%d bytes downloaded", n), 60*time.Second, func() bool {
		st = dev.Status()
		return st.Downloaded > n || st.State != simulator.StateDownloading && st.Downloaded > 0
	})
	if st.State != simulator.StateDownloading {
		t.Fatalf("device left downloading after %d bytes (state %d, result %d): nothing to interrupt",
			st.Downloaded, st.State, st.Result)
	}
	return st.Downloaded
}

// checkRunsV2 checks that the device booted the new image, byte for byte,
// and reported Update Result 1.
func checkRunsV2(t *testing.T, dev *simulator.Device, v2 []byte) {
	t.Helper()
	running, info := dev.Flash().Running()
	if !bytes.Equal(running, v2) || info.Version != "2.0.0" {
		t.Fatalf("device runs %q (%d bytes, identical to v2: %v)", info.Version, len(running), bytes.Equal(running, v2))
	}
	if st := dev.Status(); st.Version != "2.0.0" || st.Result != simulator.ResultSuccess || st.State != simulator.StateIdle {
		t.Fatalf("device status after the update: %+v", st)
	}
}

// checkResumed checks the device downloaded the package about once: had
// it started over after the interruption (at atEvent bytes, at least a
// quarter of size), it would have downloaded atEvent+size. A few blocks
// fetched twice around the interruption are tolerated.
func checkResumed(t *testing.T, dev *simulator.Device, size, atEvent int64) {
	t.Helper()
	total := dev.Status().Downloaded
	t.Logf("device downloaded %d bytes of a %d-byte package (%d before the interruption)", total, size, atEvent)
	if total < size {
		t.Fatalf("device downloaded %d bytes, less than the %d-byte package", total, size)
	}
	if limit := size + size/10; total > limit || total >= size+atEvent {
		t.Fatalf("device downloaded %d bytes of a %d-byte package, %d before the interruption: it started over, not resumed",
			total, size, atEvent)
	}
}

// candidateWatch samples the device's candidate slot while the device is
// downloading and notes any shrink: a download that starts over erases
// the slot, one that resumes only appends to it.
type candidateWatch struct {
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	largest int
	shrunk  string // the first shrink seen
}

func watchCandidate(t *testing.T, dev *simulator.Device) *candidateWatch {
	w := &candidateWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			// The length counts only when the device was downloading
			// before and after reading it: once downloaded, the install
			// switches slots.
			before := dev.Status().State
			n := dev.Flash().CandidateLen()
			after := dev.Status().State
			if before != simulator.StateDownloading || after != simulator.StateDownloading {
				continue
			}
			w.mu.Lock()
			if n < w.largest && w.shrunk == "" {
				w.shrunk = fmt.Sprintf("candidate slot shrank from %d to %d bytes during the download", w.largest, n)
			}
			w.largest = max(w.largest, n)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.end)
	return w
}

func (w *candidateWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// check ends the watch and fails the test on a shrink.
func (w *candidateWatch) check(t *testing.T) {
	t.Helper()
	w.end()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.shrunk != "" {
		t.Fatal(w.shrunk)
	}
	if w.largest == 0 {
		t.Fatal("candidate slot never seen written during the download")
	}
}

// TestResumeAfterLinkOutage cuts the link in the middle of a pull
// download, both ways: for 3 s, which the device rides out by retrying
// the block it was at in the same DTLS session, and for 9 s, longer than
// its three block retries (1 s each, 1 s and 2 s apart): it then drops
// its session, connects again once the link is back and resumes from its
// journal. Either way the update completes with the device on the new
// image, having downloaded the package about once.
func TestResumeAfterLinkOutage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		outage     time.Duration
		newSession bool // the device must have connected again
	}{
		{"same-session", 3 * time.Second, false},
		{"new-session", 9 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ep := "resume-outage-" + tc.name
			v1, v2 := resumeImages()
			s := startResumeServer(t, ep, v1, v2)
			relay := resumeRelay(t, s.coapsAddr(), 11)
			dev := runDevice(t, resumeDevice(t, ep, relay.Addr().String(), v1, s.d.firmware.PublicKey()))
			cw := watchCandidate(t, dev)

			size := startFullUpdate(t, s, ep)
			atEvent := waitDownloaded(t, dev, size/4)
			relay.Outage(tc.outage)
			// The outage must have hit the download: wait until it is
			// over and check it dropped the device's requests.
			time.Sleep(tc.outage)
			if st := relay.Stats(); st.Up.Outage.Packets == 0 {
				t.Fatalf("no datagram dropped by the outage: %+v", st)
			}
			if st := dev.Status(); st.Downloaded >= size {
				t.Fatalf("download finished during the outage (%d of %d bytes)", st.Downloaded, size)
			}

			u := waitInProcessUpdate(t, s, ep)
			checkResumed(t, dev, size, atEvent)
			cw.check(t)
			checkRunsV2(t, dev, v2)
			if u.BytesServed > size+size/10 {
				t.Fatalf("fotad served %d bytes of a %d-byte package: the download started over", u.BytesServed, size)
			}
			reboots := rebootReasons(dev)
			if lost := slices.Contains(reboots, "session lost"); tc.newSession && !lost {
				t.Fatalf("the device did not connect again after the %v outage; it rebooted for %q", tc.outage, reboots)
			}
			st := relay.Stats()
			t.Logf("outage dropped %d datagrams up, %d down; device rebooted for %q", st.Up.Outage.Packets,
				st.Down.Outage.Packets, reboots)
		})
	}
}

// rebootReasons drains the device's events and returns the reasons of
// its reboots ("session lost" is a new connection after a download lost
// its session).
func rebootReasons(dev *simulator.Device) []string {
	var reasons []string
	for {
		select {
		case ev := <-dev.Events():
			if ev.Kind == "rebooted" {
				reasons = append(reasons, ev.Detail)
			}
		default:
			return reasons
		}
	}
}

// TestResumeAfterDeviceReboot cuts the device's power right after a block
// in the middle of a pull download: it boots again, registers and resumes
// the download from the offset saved in its journal; the update
// completes with the device on the new image.
func TestResumeAfterDeviceReboot(t *testing.T) {
	t.Parallel()
	const ep = "resume-reboot"
	v1, v2 := resumeImages()
	s := startResumeServer(t, ep, v1, v2)
	relay := resumeRelay(t, s.coapsAddr(), 12)
	dev := runDevice(t, resumeDevice(t, ep, relay.Addr().String(), v1, s.d.firmware.PublicKey()))
	cw := watchCandidate(t, dev)

	size := startFullUpdate(t, s, ep)
	waitDownloaded(t, dev, size/4)
	dev.Inject(simulator.FaultPowerLossDownload)
	var atEvent int64
	waitWithin(t, "the power loss", 30*time.Second, func() bool {
		st := dev.Status()
		atEvent = st.Downloaded
		return st.Reboots > 0
	})
	// After the reboot the download goes on (the journal survived).
	var st simulator.Status
	waitWithin(t, "the download to go on after the reboot", 60*time.Second, func() bool {
		st = dev.Status()
		return st.Downloaded > atEvent || st.State != simulator.StateDownloading
	})
	if st.Downloaded <= atEvent {
		t.Fatalf("after the power loss the device does not download: %+v", st)
	}

	u := waitInProcessUpdate(t, s, ep)
	checkResumed(t, dev, size, atEvent)
	cw.check(t)
	checkRunsV2(t, dev, v2)
	if u.BytesServed > size+size/10 {
		t.Fatalf("fotad served %d bytes of a %d-byte package: the download started over", u.BytesServed, size)
	}
	if reboots := rebootReasons(dev); !slices.Contains(reboots, "power loss during download") {
		t.Fatalf("no reboot after a power loss during the download among the device's reboots %q", reboots)
	}
}

// TestResumeAfterSIGKILL kills fotad (a child process) with SIGKILL in
// the middle of a pull download and starts it again on the same data
// directory and ports: the update resumes from its stored record, the
// package is served again at the same path, and the device, once it has
// connected again, continues at its next block.
func TestResumeAfterSIGKILL(t *testing.T) {
	t.Parallel()
	const ep = "resume-kill"
	v1, v2 := resumeImages()
	dir := t.TempDir()
	opts, coapsAddr := childOptions(t, "")
	p := startProcessWith(t, dir, opts)
	c := newChildAPI(t, dir, opts.API)
	c.addMeterImages(t, v1, v2)
	if code := c.json("POST", "/api/v1/devices", map[string]any{"endpoint": ep, "psk_identity": ep,
		"psk_key": hex.EncodeToString([]byte(ep + "-key"))}, nil); code != http.StatusCreated {
		t.Fatalf("provision %s: HTTP %d", ep, code)
	}
	key, err := firmware.LoadKey(filepath.Join(dir, firmware.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	relay := resumeRelay(t, coapsAddr, 13)
	dev := runDevice(t, resumeDevice(t, ep, relay.Addr().String(), v1, &key.PublicKey))
	cw := watchCandidate(t, dev)

	var view api.UpdateView
	if code := c.json("POST", "/api/v1/devices/"+ep+"/update", map[string]any{"image": "2.0.0", "full": true}, &view); code != http.StatusAccepted {
		t.Fatalf("start update: HTTP %d %+v", code, view)
	}
	waitWithin(t, "the package made", 30*time.Second, func() bool {
		c.json("GET", "/api/v1/devices/"+ep+"/update", nil, &view)
		return view.Size > 0 && view.Phase == string(update.Downloading)
	})
	size := view.Size
	atEvent := waitDownloaded(t, dev, size/4)

	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill fotad: %v", err)
	}
	<-p.exited
	var ee *exec.ExitError
	if !errors.As(p.waitErr, &ee) || ee.ProcessState.Success() {
		t.Fatalf("fotad did not die from the kill: %v", p.waitErr)
	}
	killedAt := dev.Status().Downloaded
	if killedAt >= size {
		t.Fatalf("download finished before the kill (%d of %d bytes)", killedAt, size)
	}
	startProcessWith(t, dir, opts)

	waitWithin(t, "update finished", 100*time.Second, func() bool {
		view = api.UpdateView{}
		c.json("GET", "/api/v1/devices/"+ep+"/update", nil, &view)
		return update.Phase(view.Phase).Finished()
	})
	if view.Phase != string(update.Done) || view.Result != simulator.ResultSuccess || view.Version != "2.0.0" {
		t.Fatalf("update after the kill: %+v", view)
	}
	checkResumed(t, dev, size, atEvent)
	cw.check(t)
	checkRunsV2(t, dev, v2)
	t.Logf("killed fotad at %d of %d bytes; update retries %d", killedAt, size, view.Retries)
}

// childAPI calls the admin API of fotad running as a child process.
type childAPI struct {
	t     *testing.T
	base  string
	token string
}

func newChildAPI(t *testing.T, dir, addr string) *childAPI {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, api.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &childAPI{t: t, base: "http://" + addr, token: strings.TrimSpace(string(b))}
}

// do sends body with contentType and decodes a JSON answer into out.
func (c *childAPI) do(method, path, contentType string, body []byte, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// json sends body as JSON (none when nil).
func (c *childAPI) json(method, path string, body, out any) int {
	c.t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			c.t.Fatal(err)
		}
	}
	return c.do(method, path, "application/json", b, out)
}

// childOptions picks the ports of a fotad child process and writes its
// configuration: startServer's quick DTLS retransmissions and ticks, Package
// URIs on the CoAPS port, and extra (YAML, top-level keys other than coap).
// The ports stay the same across restarts of the child.
func childOptions(t *testing.T, extra string) (processOptions, string) {
	t.Helper()
	coapAddr, coapsAddr := freeUDPAddr(t), freeUDPAddr(t)
	for coapsAddr == coapAddr {
		coapsAddr = freeUDPAddr(t)
	}
	opts := processOptions{Config: filepath.Join(t.TempDir(), "fotad.yaml"),
		CoAP: coapAddr, CoAPS: coapsAddr, API: freeTCPAddr(t)}
	config := fmt.Sprintf("coap:\n  tick: 50ms\n  flight_interval: 200ms\n%s", extra)
	if !strings.Contains(extra, "delivery:") {
		config += "delivery:\n"
	}
	config = strings.Replace(config, "delivery:\n", fmt.Sprintf("delivery:\n  server_uri: coaps://%s\n", coapsAddr), 1)
	if err := os.WriteFile(opts.Config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return opts, coapsAddr
}

// addMeterImages adds v1 and v2 as versions 1.0.0 and 2.0.0 of class meter.
func (c *childAPI) addMeterImages(t *testing.T, v1, v2 []byte) {
	t.Helper()
	for _, im := range []struct {
		b []byte
		v string
	}{{v1, "1.0.0"}, {v2, "2.0.0"}} {
		if code := c.do("POST", "/api/v1/images?version="+im.v+"&class=meter", "application/octet-stream", im.b, nil); code != http.StatusCreated {
			t.Fatalf("add image %s: HTTP %d", im.v, code)
		}
	}
}

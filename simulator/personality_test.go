package simulator_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/coap/coaptest"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/model"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
	"github.com/fotahub/fota/simulator/rawimage"
)

// rawClient is a raw personality and the image format it takes.
type rawClient struct {
	client simulator.Client
	image  func(t testing.TB, version string, body []byte) []byte
	block  int    // its default block size
	pkg    string // its /5/0/6
}

var rawClients = []rawClient{
	{simulator.ClientZephyr, mcubootImage, 256, "mcuboot"},
	{simulator.ClientAnjay, vendorImage, 1024, "vendor-blob"},
}

var (
	rawBody1 = []byte(strings.Repeat("raw body one ", 400)) // 5200 bytes
	rawBody2 = bytes.Replace(rawBody1, []byte("one "), []byte("two "), 100)
	rawBody3 = bytes.Replace(rawBody1, []byte("one "), []byte("six "), 100)
)

func mcubootImage(t testing.TB, version string, body []byte) []byte {
	t.Helper()
	v, err := rawimage.ParseMCUbootVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	return rawimage.MCUboot(body, v)
}

func vendorImage(t testing.TB, version string, body []byte) []byte {
	t.Helper()
	b, err := rawimage.VendorBlob(body, version)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawDevice runs a device of personality rc on image 1.0.0.
func (s *server) rawDevice(t *testing.T, rc rawClient, mutate func(*simulator.Config)) (*simulator.Device, string) {
	t.Helper()
	ep := "raw-" + strings.ReplaceAll(t.Name(), "/", "-")
	d := s.device(t, ep, rc.image(t, "1.0.0", rawBody1), func(c *simulator.Config) {
		c.Client, c.FirmwareVersion, c.Class = rc.client, "", ""
		c.DownloadRetries, c.BlockTimeout = 2, 2*time.Second
		if mutate != nil {
			mutate(c)
		}
	})
	return d, ep
}

// served records the blocks a publication served, in order.
type served struct {
	mu     sync.Mutex
	blocks []coap.BlockServed
}

func (r *served) add(b coap.BlockServed) {
	r.mu.Lock()
	r.blocks = append(r.blocks, b)
	r.mu.Unlock()
}

func (r *served) list() []coap.BlockServed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]coap.BlockServed(nil), r.blocks...)
}

// bySession groups the blocks by the session they went to, in the order
// the sessions first asked.
func (r *served) bySession() [][]coap.BlockServed {
	var out [][]coap.BlockServed
	index := map[uint64]int{}
	for _, b := range r.list() {
		i, ok := index[b.Session.ID()]
		if !ok {
			i = len(out)
			index[b.Session.ID()] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], b)
	}
	return out
}

// publishRaw serves b to ep's sessions, recording the blocks served.
func (s *server) publishRaw(t testing.TB, ep string, b []byte, rec *served, opts coap.PublishOptions) string {
	t.Helper()
	opts.OnBlock = rec.add
	path, err := s.CoAP.Publish(identity(ep), coap.BytesBlob(b), opts)
	if err != nil {
		t.Fatal(err)
	}
	return "coaps://" + s.Addr() + path
}

func identity(ep string) coap.Identity { return coap.Identity{Mode: coap.PSK, Name: "id-" + ep} }

func execute(t testing.TB, s *server, ep string) {
	t.Helper()
	if _, err := s.ops.Do(ctxT(t), ep, lwm2m.Op{Kind: lwm2m.OpExecute, Path: model.ResourcePath(5, 0, 2)}); err != nil {
		t.Fatal(err)
	}
}

func str(t testing.TB, s *server, ep, p string) string {
	t.Helper()
	v, _ := read(t, s, ep, p).AsString()
	return v
}

// registeredWith returns the first "registered" event that reports
// version, draining the device's events until it comes.
func registeredWith(t testing.TB, d *simulator.Device, version string) simulator.Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-d.Events():
			if ev.Kind == "registered" && ev.Version == version {
				return ev
			}
		case <-timeout:
			t.Fatalf("no registration with version %s", version)
		}
	}
}

// TestRawPull downloads a raw image end to end, over a DTLS session of
// the device's own, installs it and checks when each client reports.
func TestRawPull(t *testing.T) {
	for _, rc := range rawClients {
		t.Run(string(rc.client), func(t *testing.T) {
			s := startServer(t, lwm2m.OperatorConfig{})
			d, ep := s.rawDevice(t, rc, nil)
			if st := d.Status(); st.Client != rc.client || st.Version != "1.0.0" {
				t.Fatalf("status %+v: want %s running 1.0.0 from the image header", st, rc.client)
			}
			if v := str(t, s, ep, "/3/0/3"); v != "1.0.0" {
				t.Fatalf("/3/0/3 %q", v)
			}
			before, _ := s.reg.Lookup(ep)
			img := rc.image(t, "2.0.0", rawBody2)
			var rec served
			write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue(s.publishRaw(t, ep, img, &rec, coap.PublishOptions{})))
			waitState(t, s, ep, simulator.StateDownloaded)
			if name, ver := str(t, s, ep, "/5/0/6"), str(t, s, ep, "/5/0/7"); name != rc.pkg || ver != "2.0.0" {
				t.Fatalf("PkgName %q PkgVersion %q", name, ver)
			}
			checkOwnSession(t, s, ep, before, rec.list(), rc.block)

			execute(t, s, ep)
			waitFor(t, "new version reported", func() bool { return str(t, s, ep, "/3/0/3") == "2.0.0" })
			waitFor(t, "update result 1", func() bool { return integer(t, s, ep, "/5/0/5") == simulator.ResultSuccess })
			running, info := d.Flash().Running()
			if !bytes.Equal(running, img) || info.Version != "2.0.0" || info.Digest != sha256.Sum256(img) {
				t.Fatalf("running %s (%d bytes), want the raw image byte for byte", info.Version, len(running))
			}
			ev := registeredWith(t, d, "2.0.0")
			switch rc.client {
			case simulator.ClientZephyr: // registers first, reports later
				if ev.State != simulator.StateIdle || ev.Result != simulator.ResultInitial {
					t.Fatalf("zephyr registered with state %d result %d, want 0 0", ev.State, ev.Result)
				}
			case simulator.ClientAnjay: // reports, then registers
				if ev.Result != simulator.ResultSuccess {
					t.Fatalf("anjay registered with result %d, want 1", ev.Result)
				}
			}
		})
	}
}

// checkOwnSession checks that a download went over sessions other than
// the registration's, with its identity, in blocks of size, while the
// registration stayed.
func checkOwnSession(t *testing.T, s *server, ep string, before lwm2m.Registration, blocks []coap.BlockServed, size int) {
	t.Helper()
	after, _ := s.reg.Lookup(ep)
	if after.ID != before.ID {
		t.Fatalf("registration replaced during the download: %s -> %s", before.ID, after.ID)
	}
	reg := s.reg.Session(ep)
	if len(blocks) == 0 || reg == nil {
		t.Fatalf("%d blocks served, registration session %v", len(blocks), reg)
	}
	for _, b := range blocks {
		if b.Session.ID() == reg.ID() || b.Session.Identity() != reg.Identity() {
			t.Fatalf("block %d on session %d (%+v), registration session %d (%+v): want another session, same identity",
				b.Num, b.Session.ID(), b.Session.Identity(), reg.ID(), reg.Identity())
		}
		if b.Size != size {
			t.Fatalf("block %d of %d bytes, want %d", b.Num, b.Size, size)
		}
	}
}

// TestRawRequests looks at the requests of a download over plain CoAP,
// sent through Config.DownloadVia: zephyr asks for Size2 first, anjay
// never; each uses its block size from block 0 on.
func TestRawRequests(t *testing.T) {
	for _, rc := range rawClients {
		t.Run(string(rc.client), func(t *testing.T) {
			s := startServer(t, lwm2m.OperatorConfig{})
			plain := startPlain(t)
			sn := startSniffer(t, plain.PlainAddr().(*net.UDPAddr))
			d, ep := s.rawDevice(t, rc, func(c *simulator.Config) {
				c.DownloadVia = map[string]string{plain.PlainAddr().String(): sn.addr()}
			})
			img := rc.image(t, "2.0.0", rawBody2)
			path, err := plain.Publish(coap.Identity{Mode: coap.NoSec}, coap.BytesBlob(img), coap.PublishOptions{})
			if err != nil {
				t.Fatal(err)
			}
			write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue("coap://"+plain.PlainAddr().String()+path))
			waitFor(t, "downloaded", func() bool { return d.Status().State == simulator.StateDownloaded })
			reqs := sn.requests()
			if len(reqs) != (len(img)+rc.block-1)/rc.block {
				t.Fatalf("%d requests for %d blocks", len(reqs), (len(img)+rc.block-1)/rc.block)
			}
			for i, r := range reqs {
				if r.block2.Num != uint32(i) || r.block2.Size != rc.block {
					t.Fatalf("request %d for block %s, want %d/%d", i, r.block2, i, rc.block)
				}
				wantSize2 := i == 0 && rc.client == simulator.ClientZephyr
				if r.size2 != wantSize2 {
					t.Fatalf("request %d: Size2 asked %v, want %v", i, r.size2, wantSize2)
				}
			}
		})
	}
}

// TestZephyrRefusesTooLarge: Size2 tells zephyr the image cannot fit its
// slot; it gives up after the first block with result 2.
func TestZephyrRefusesTooLarge(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	rc := rawClients[0]
	d, ep := s.rawDevice(t, rc, func(c *simulator.Config) { c.SlotSize = len(c.Firmware) + 100 })
	var rec served
	big := rc.image(t, "2.0.0", append(bytes.Clone(rawBody2), rawBody2...))
	write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue(s.publishRaw(t, ep, big, &rec, coap.PublishOptions{})))
	waitResult(t, d, simulator.ResultNoFlash)
	if n := len(rec.list()); n != 1 {
		t.Fatalf("%d blocks fetched, want 1: Size2 is in the first", n)
	}
}

// TestZephyrForgetsAfterPowerLoss: Object 5 lives in RAM, so a power loss
// mid-download leaves Idle with result 0; the server writes the URI again
// and the download starts from block 0.
func TestZephyrForgetsAfterPowerLoss(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	d, ep := s.rawDevice(t, rawClients[0], nil)
	img := rawClients[0].image(t, "2.0.0", rawBody2)
	var rec served
	uri := s.publishRaw(t, ep, img, &rec, coap.PublishOptions{})
	d.Inject(simulator.FaultPowerLossDownload)
	write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue(uri))
	waitFor(t, "rebooted and registered", func() bool { st := d.Status(); return st.Reboots == 1 && st.Registered })
	if st, res := integer(t, s, ep, "/5/0/3"), integer(t, s, ep, "/5/0/5"); st != simulator.StateIdle || res != simulator.ResultInitial {
		t.Fatalf("after the power loss: state %d result %d, want 0 0", st, res)
	}
	if n := len(rec.list()); n != 1 {
		t.Fatalf("%d blocks fetched before the URI was written again, want 1", n)
	}
	write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue(uri))
	waitState(t, s, ep, simulator.StateDownloaded)
	sessions := rec.bySession()
	if len(sessions) != 2 || sessions[1][0].Offset != 0 {
		t.Fatalf("%d download sessions, the second starting at %d: want 2, from 0", len(sessions), sessions[len(sessions)-1][0].Offset)
	}
}

// TestAnjayResumesAfterPowerLoss: the download is persisted, so after the
// reboot the first request is for the block after the last one stored.
func TestAnjayResumesAfterPowerLoss(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	rc := rawClients[1]
	d, ep := s.rawDevice(t, rc, nil)
	img := rc.image(t, "2.0.0", rawBody2)
	var rec served
	d.Inject(simulator.FaultPowerLossDownload)
	write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue(s.publishRaw(t, ep, img, &rec, coap.PublishOptions{})))
	waitState(t, s, ep, simulator.StateDownloaded)
	if st := d.Status(); st.Reboots != 1 || st.Downloaded != int64(len(img)) {
		t.Fatalf("%d reboots, %d bytes fetched for %d: want 1 reboot and every byte once", st.Reboots, st.Downloaded, len(img))
	}
	sessions := rec.bySession()
	if len(sessions) != 2 || len(sessions[0]) != 1 || sessions[1][0].Offset != int64(rc.block) {
		t.Fatalf("blocks by session %v: want block 0, then a resume at block 1", offsets(sessions))
	}
}

// TestAnjayRestartsWhenETagChanged: the package changed while the device
// was off, so the resumed download starts again from block 0.
func TestAnjayRestartsWhenETagChanged(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	rc := rawClients[1]
	d, ep := s.rawDevice(t, rc, nil)
	first, second := rc.image(t, "2.0.0", rawBody2), rc.image(t, "3.0.0", rawBody3)
	var rec1, rec2 served
	var once sync.Once
	var path string
	rec1OnBlock := func(b coap.BlockServed) {
		rec1.add(b)
		// Replace the package once its first block is out: the device
		// stores it, loses power and resumes against the new one.
		once.Do(func() {
			if _, err := s.CoAP.Publish(identity(ep), coap.BytesBlob(second), coap.PublishOptions{Path: path, OnBlock: rec2.add}); err != nil {
				t.Error(err)
			}
		})
	}
	var err error
	path, err = s.CoAP.Publish(identity(ep), coap.BytesBlob(first), coap.PublishOptions{OnBlock: rec1OnBlock})
	if err != nil {
		t.Fatal(err)
	}
	d.Inject(simulator.FaultPowerLossDownload)
	write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue("coaps://"+s.Addr()+path))
	waitState(t, s, ep, simulator.StateDownloaded)
	if v := str(t, s, ep, "/5/0/7"); v != "3.0.0" {
		t.Fatalf("downloaded %q, want the new package 3.0.0", v)
	}
	blocks := rec2.list()
	if len(rec1.list()) != 1 || len(blocks) < 2 || blocks[0].Offset == 0 || blocks[1].Offset != 0 {
		t.Fatalf("old package %d blocks, new one at offsets %v: want a resume, then block 0", len(rec1.list()), offsets([][]coap.BlockServed{blocks}))
	}
	execute(t, s, ep)
	waitFor(t, "new version", func() bool { return d.Status().Version == "3.0.0" })
	if running, _ := d.Flash().Running(); !bytes.Equal(running, second) {
		t.Fatal("running image is not the new package byte for byte")
	}
}

func offsets(sessions [][]coap.BlockServed) [][]int64 {
	out := make([][]int64, len(sessions))
	for i, bs := range sessions {
		for _, b := range bs {
			out[i] = append(out[i], b.Offset)
		}
	}
	return out
}

// TestRawRefusesSignedPackage: fotad's signed package is not the vendor
// format: result 6, nothing installed.
func TestRawRefusesSignedPackage(t *testing.T) {
	for _, rc := range rawClients {
		t.Run(string(rc.client), func(t *testing.T) {
			s := startServer(t, lwm2m.OperatorConfig{})
			d, ep := s.rawDevice(t, rc, nil)
			var rec served
			p := pkg(t, manifest.FormatFull, image2[:4000], nil)
			write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue(s.publishRaw(t, ep, p, &rec, coap.PublishOptions{})))
			waitResult(t, d, simulator.ResultUnsupportedType)
			if n := len(rec.list()); n != 1 {
				t.Fatalf("%d blocks fetched, want 1: the header is in the first", n)
			}
		})
	}
}

// TestRawPush writes the raw image into /5/0/0 and installs it.
func TestRawPush(t *testing.T) {
	for _, rc := range rawClients {
		t.Run(string(rc.client), func(t *testing.T) {
			s := startServer(t, lwm2m.OperatorConfig{})
			d, ep := s.rawDevice(t, rc, func(c *simulator.Config) { c.Delivery = 2 })
			img := rc.image(t, "2.0.0", rawBody2)
			write(t, s, ep, model.ResourcePath(5, 0, 0), model.OpaqueValue(img))
			waitState(t, s, ep, simulator.StateDownloaded)
			execute(t, s, ep)
			waitFor(t, "update result 1", func() bool { return integer(t, s, ep, "/5/0/5") == simulator.ResultSuccess })
			if running, info := d.Flash().Running(); !bytes.Equal(running, img) || info.Version != "2.0.0" {
				t.Fatalf("running %s, want the pushed image", info.Version)
			}
		})
	}
}

// TestPushPowerLoss cuts power after a pushed block: a push cannot
// resume; the native and anjay clients say the connection was lost
// (result 4), zephyr forgot it (result 0).
func TestPushPowerLoss(t *testing.T) {
	cases := []struct {
		client simulator.Client
		image  func(t testing.TB) []byte
		result int
	}{
		{simulator.ClientNative, func(t testing.TB) []byte { return pkg(t, manifest.FormatFull, image2, nil) }, simulator.ResultConnectionLost},
		{simulator.ClientZephyr, func(t testing.TB) []byte { return mcubootImage(t, "2.0.0", rawBody2) }, simulator.ResultInitial},
		{simulator.ClientAnjay, func(t testing.TB) []byte { return vendorImage(t, "2.0.0", rawBody2) }, simulator.ResultConnectionLost},
	}
	for _, tc := range cases {
		t.Run(string(tc.client), func(t *testing.T) {
			s := startServer(t, lwm2m.OperatorConfig{})
			var d *simulator.Device
			var ep string
			if tc.client == simulator.ClientNative {
				d = sim(s, t, nil)
				ep = d.Status().Endpoint
			} else {
				rc := rawClients[0]
				if tc.client == simulator.ClientAnjay {
					rc = rawClients[1]
				}
				d, ep = s.rawDevice(t, rc, nil)
			}
			d.Inject(simulator.FaultPowerLossDownload)
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			r := model.SingleResource(0, model.OpaqueValue(tc.image(t)))
			done := make(chan error, 1)
			go func() {
				_, err := s.ops.Do(ctx, ep, lwm2m.Op{Kind: lwm2m.OpWrite, Path: model.ResourcePath(5, 0, 0), Node: &r})
				done <- err
			}()
			waitFor(t, "rebooted and registered", func() bool { st := d.Status(); return st.Reboots == 1 && st.Registered })
			waitResult(t, d, tc.result)
			if err := <-done; err == nil || errors.Is(err, context.Canceled) {
				t.Fatalf("the push succeeded through a power loss: %v", err)
			}
		})
	}
}

func TestParseClient(t *testing.T) {
	for in, want := range map[string]simulator.Client{"": simulator.ClientNative, "native": simulator.ClientNative,
		"zephyr": simulator.ClientZephyr, "anjay": simulator.ClientAnjay} {
		if got, err := simulator.ParseClient(in); err != nil || got != want {
			t.Errorf("ParseClient(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := simulator.ParseClient("lwm2m-node"); err == nil {
		t.Error("unknown client accepted")
	}
}

// TestNewChecksRawFirmware: a raw client's first image must be in its
// format, since its version comes from the header.
func TestNewChecksRawFirmware(t *testing.T) {
	cfg := simulator.Config{Endpoint: "x", Server: "127.0.0.1:5684", Firmware: image1, Client: simulator.ClientZephyr}
	if _, err := simulator.New(cfg); err == nil {
		t.Error("zephyr accepted a firmware that is not MCUboot")
	}
	cfg.Client, cfg.Firmware = simulator.ClientAnjay, vendorImage(t, "1.2.3", rawBody1)
	d, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st := d.Status(); st.Version != "1.2.3" || st.Client != simulator.ClientAnjay {
		t.Errorf("status %+v", st)
	}
	cfg.BlockSize = 1000
	if _, err := simulator.New(cfg); err == nil {
		t.Error("block size 1000 accepted")
	}
}

// startPlain runs a plain-CoAP server that only serves published blobs.
func startPlain(t *testing.T) *coap.Server {
	t.Helper()
	cfg := coap.DefaultConfig()
	cfg.DTLSAddr, cfg.PlainAddr = "", "127.0.0.1:0"
	cfg.Handler = coap.HandlerFunc(func(context.Context, *coap.Request) coap.Response { return coap.Reply(coap.NotFound) })
	srv, err := coap.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return srv
}

// sniffer relays plain CoAP between one device and a server and decodes
// the device's requests.
type sniffer struct {
	pc     *net.UDPConn
	server *net.UDPAddr
	mu     sync.Mutex
	reqs   []sniffed
}

type sniffed struct {
	block2 coap.Block
	size2  bool
}

func startSniffer(t *testing.T, server *net.UDPAddr) *sniffer {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	sn := &sniffer{pc: pc, server: server}
	go sn.relay()
	t.Cleanup(func() { _ = pc.Close() })
	return sn
}

func (sn *sniffer) addr() string { return sn.pc.LocalAddr().String() }

func (sn *sniffer) relay() {
	buf := make([]byte, 2048)
	var device *net.UDPAddr
	for {
		n, from, err := sn.pc.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if from.String() == sn.server.String() {
			if device != nil {
				_, _ = sn.pc.WriteToUDP(buf[:n], device)
			}
			continue
		}
		device = from
		sn.record(buf[:n])
		_, _ = sn.pc.WriteToUDP(buf[:n], sn.server)
	}
}

func (sn *sniffer) record(b []byte) {
	get, ok := coaptest.ParseGet(b)
	if !ok {
		return
	}
	sn.mu.Lock()
	sn.reqs = append(sn.reqs, sniffed{block2: coap.Block{Num: get.Num, Size: get.Size, More: get.More}, size2: get.Size2})
	sn.mu.Unlock()
}

func (sn *sniffer) requests() []sniffed {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return append([]sniffed(nil), sn.reqs...)
}

// TestRawPullThroughRelay: with DownloadVia, the download session goes
// through the device's relay like the registration, from a second
// outside address (a NAT mapping of its own).
func TestRawPullThroughRelay(t *testing.T) {
	s := startServer(t, lwm2m.OperatorConfig{})
	relay, err := link.NewRelay(s.CoAP.DTLSAddr().(*net.UDPAddr), mustProfile(t, "wifi"), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	rc := rawClients[0]
	d, ep := s.rawDevice(t, rc, func(c *simulator.Config) {
		c.Server = relay.Addr().String()
		c.DownloadVia = map[string]string{s.Addr(): relay.Addr().String()}
	})
	img := rc.image(t, "2.0.0", rawBody2)
	var rec served
	write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue(s.publishRaw(t, ep, img, &rec, coap.PublishOptions{})))
	waitFor(t, "downloaded", func() bool { return d.Status().State == simulator.StateDownloaded })
	reg, _ := s.reg.Lookup(ep)
	for _, b := range rec.list() {
		addr := b.Session.RemoteAddr().(*net.UDPAddr)
		if !addr.IP.Equal(relay.OutsideAddr().IP) || addr.String() == reg.Address {
			t.Fatalf("block %d from %s, registration from %s: want a second address of the relay", b.Num, addr, reg.Address)
		}
	}
	if st := relay.Stats(); st.Down.AirBytes < int64(len(img)) {
		t.Fatalf("the link carried %d bytes down for a %d-byte image", st.Down.AirBytes, len(img))
	}
}

// TestRawSmallBlocks: with 16-byte blocks the header spans several of
// them; the client waits for the whole header before it decides.
func TestRawSmallBlocks(t *testing.T) {
	for _, rc := range rawClients {
		t.Run(string(rc.client), func(t *testing.T) {
			s := startServer(t, lwm2m.OperatorConfig{})
			d, ep := s.rawDevice(t, rc, func(c *simulator.Config) { c.BlockSize = 16 })
			version := "2.0.0"
			if rc.client == simulator.ClientAnjay {
				version = "2.0.0-rc.1+build.12345" // a 32-byte header
			}
			img := rc.image(t, version, rawBody2[:300])
			var rec served
			write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue(s.publishRaw(t, ep, img, &rec, coap.PublishOptions{})))
			waitFor(t, "downloaded", func() bool { return d.Status().State == simulator.StateDownloaded })
			if v := str(t, s, ep, "/5/0/7"); v != version {
				t.Fatalf("PkgVersion %q, want %q", v, version)
			}
			if b := rec.list()[0]; b.Size != 16 {
				t.Fatalf("%d-byte blocks, want 16", b.Size)
			}
		})
	}
}

// TestRawLinkOutage: the link goes down in the middle of the download;
// the client retries each block, then gives up with result 4. The
// subtests run in parallel: they mostly wait for the retries.
func TestRawLinkOutage(t *testing.T) {
	for _, rc := range rawClients {
		t.Run(string(rc.client), func(t *testing.T) {
			t.Parallel()
			s := startServer(t, lwm2m.OperatorConfig{})
			relay, err := link.NewRelay(s.CoAP.DTLSAddr().(*net.UDPAddr), mustProfile(t, "wifi"), 5)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = relay.Close() })
			d, ep := s.rawDevice(t, rc, func(c *simulator.Config) {
				c.Server = relay.Addr().String()
				c.DownloadVia = map[string]string{s.Addr(): relay.Addr().String()}
				c.DownloadRetries, c.BlockTimeout = 1, 300*time.Millisecond
			})
			t.Cleanup(relay.EndOutage) // before the device deregisters
			var once sync.Once
			path, err := s.CoAP.Publish(identity(ep), coap.BytesBlob(rc.image(t, "2.0.0", rawBody2)), coap.PublishOptions{
				OnBlock: func(coap.BlockServed) { once.Do(func() { relay.Outage(time.Minute) }) }})
			if err != nil {
				t.Fatal(err)
			}
			write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue("coaps://"+s.Addr()+path))
			waitResult(t, d, simulator.ResultConnectionLost)
		})
	}
}

package simulator_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/delta"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/lwm2m"
	"github.com/fotahub/fota/lwm2m/lwm2mtest"
	"github.com/fotahub/fota/lwm2m/model"
	"github.com/fotahub/fota/simulator"
	"github.com/fotahub/fota/simulator/link"
)

var (
	image2 = bytes.Replace(image1, []byte("one "), []byte("two "), 40)
	signer *ecdsa.PrivateKey
)

func init() {
	var err error
	if signer, err = manifest.GenerateKey(); err != nil {
		panic(err)
	}
}

// pkg builds a signed package turning image1 into image (full or delta).
func pkg(t testing.TB, format manifest.Format, image []byte, mutate func(*manifest.Manifest)) []byte {
	t.Helper()
	payload := image
	m := manifest.Manifest{Sequence: 2, Version: "2.0.0", Class: "sensor-a", Format: format,
		ImageDigest: sha256.Sum256(image), ImageSize: uint64(len(image))}
	if format == manifest.FormatDelta {
		var err error
		if payload, err = delta.Create(image1, image); err != nil {
			t.Fatal(err)
		}
		m.PrecursorDigest, m.PrecursorSize = sha256.Sum256(image1), uint64(len(image1))
	}
	if mutate != nil {
		mutate(&m)
	}
	b, err := manifest.Build(m, payload, signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publish serves b to ep's DTLS session and returns its Package URI.
func (s *server) publish(t testing.TB, ep string, b []byte) string {
	t.Helper()
	path, err := s.CoAP.Publish(lwm2mtest.Identity(ep), coap.BytesBlob(b), coap.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return "coaps://" + s.Addr() + path
}

func write(t testing.TB, s *server, ep string, p model.Path, v model.Value) {
	t.Helper()
	r := model.SingleResource(0, v)
	r.ID, _ = p.Resource()
	if _, err := s.ops.Do(ctxT(t), ep, lwm2m.Op{Kind: lwm2m.OpWrite, Path: p, Node: &r}); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
}

func integer(t testing.TB, s *server, ep, p string) int64 {
	t.Helper()
	v, _ := read(t, s, ep, p).AsInteger()
	return v
}

// waitState polls /5/0/3 until it is state, failing early when the
// download ends in another result.
func waitState(t testing.TB, s *server, ep string, state int64) {
	t.Helper()
	waitFor(t, "object 5 state", func() bool { return integer(t, s, ep, "/5/0/3") == state })
}

func waitResult(t testing.TB, d *simulator.Device, result int) {
	t.Helper()
	waitFor(t, "update result", func() bool {
		st := d.Status()
		return st.State == simulator.StateIdle && st.Result == result
	})
}

func sim(s *server, t *testing.T, mutate func(*simulator.Config)) *simulator.Device {
	return s.device(t, "fw-"+strings.ReplaceAll(t.Name(), "/", "-"), image1, func(c *simulator.Config) {
		c.TrustKey = &signer.PublicKey
		c.BlockSize = 256
		if mutate != nil {
			mutate(c)
		}
	})
}

// TestUpdate runs the whole update: pull (full and delta) and push, then
// Update, reboot into the candidate, register again and report.
func TestUpdate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format manifest.Format
		push   bool
	}{
		{"pull-full", manifest.FormatFull, false},
		{"pull-delta", manifest.FormatDelta, false},
		{"push-full", manifest.FormatFull, true},
		{"push-delta", manifest.FormatDelta, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, lwm2m.OperatorConfig{})
			d := sim(s, t, nil)
			ep := d.Status().Endpoint
			p := pkg(t, tc.format, image2, nil)
			if tc.push {
				write(t, s, ep, model.ResourcePath(5, 0, 0), model.OpaqueValue(p))
			} else {
				write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue(s.publish(t, ep, p)))
			}
			waitState(t, s, ep, simulator.StateDownloaded)
			if _, err := s.ops.Do(ctxT(t), ep, lwm2m.Op{Kind: lwm2m.OpExecute, Path: model.ResourcePath(5, 0, 2)}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "new version reported", func() bool {
				v, _ := read(t, s, ep, "/3/0/3").AsString()
				return v == "2.0.0"
			})
			// Result 1 follows the re-registration (a notification).
			waitFor(t, "update result 1", func() bool { return integer(t, s, ep, "/5/0/5") == simulator.ResultSuccess })
			running, info := d.Flash().Running()
			if !bytes.Equal(running, image2) || info.Version != "2.0.0" {
				t.Fatalf("running %s (%d bytes), want the new image", info.Version, len(running))
			}
			if st := d.Status(); st.Reboots != 1 {
				t.Fatalf("%d reboots, want 1", st.Reboots)
			}
		})
	}
}

// TestResumeAfterPowerLoss cuts power after the first block: the device
// boots, registers and continues at the next block, not from zero.
func TestResumeAfterPowerLoss(t *testing.T) {
	for _, format := range []manifest.Format{manifest.FormatFull, manifest.FormatDelta} {
		t.Run(format.String(), func(t *testing.T) {
			s := startServer(t, lwm2m.OperatorConfig{})
			// A link with 10 ms round trips, so that the download takes long
			// enough to lose power in the middle of it.
			relay, err := link.NewRelay(s.CoAP.DTLSAddr().(*net.UDPAddr), link.Profile{Name: "slow",
				Up: link.Params{Delay: 5 * time.Millisecond}, Down: link.Params{Delay: 5 * time.Millisecond}}, 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = relay.Close() })
			d := sim(s, t, func(c *simulator.Config) { c.BlockSize, c.Server = 64, relay.Addr().String() })
			ep := d.Status().Endpoint
			p := pkg(t, format, image2, nil)
			d.Inject(simulator.FaultPowerLossDownload)
			write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue(s.publish(t, ep, p)))
			reboots := 1
			if format == manifest.FormatFull {
				// A second power loss in the middle of the payload.
				waitFor(t, "half downloaded", func() bool { return d.Status().Downloaded > int64(len(p)/2) })
				d.Inject(simulator.FaultPowerLossDownload)
				reboots++
			}
			waitFor(t, "downloaded", func() bool { return d.Status().State == simulator.StateDownloaded })
			if st := d.Status(); st.Reboots != reboots {
				t.Fatalf("%d reboots, want %d (the power losses)", st.Reboots, reboots)
			}
			// Resumed at the next block: every byte fetched once (go-coap
			// serves the blocks from one handler call, so the device's own
			// count is the one to check).
			if got := d.Status().Downloaded; got != int64(len(p)) {
				t.Fatalf("%d bytes downloaded for a %d-byte package: the download did not resume", got, len(p))
			}
		})
	}
}

// TestUpdateFailures: every failure ends in the right Update Result and
// leaves the running image alone.
func TestUpdateFailures(t *testing.T) {
	cases := []struct {
		name   string
		build  func(t *testing.T, s *server, ep string) string // returns the URI
		fault  simulator.Fault
		result int
	}{
		{"corrupted block", func(t *testing.T, s *server, ep string) string {
			return s.publish(t, ep, pkg(t, manifest.FormatFull, image2, nil))
		}, simulator.FaultCorruptBlock, simulator.ResultIntegrity},
		{"tampered signature", func(t *testing.T, s *server, ep string) string {
			p := pkg(t, manifest.FormatFull, image2, nil)
			p[40] ^= 1
			return s.publish(t, ep, p)
		}, "", simulator.ResultIntegrity},
		{"wrong precursor", func(t *testing.T, s *server, ep string) string {
			return s.publish(t, ep, pkg(t, manifest.FormatDelta, image2, nil))
		}, simulator.FaultWrongPrecursor, simulator.ResultIntegrity},
		{"other device class", func(t *testing.T, s *server, ep string) string {
			return s.publish(t, ep, pkg(t, manifest.FormatFull, image2, func(m *manifest.Manifest) { m.Class = "gateway" }))
		}, "", simulator.ResultUnsupportedType},
		{"older sequence", func(t *testing.T, s *server, ep string) string {
			return s.publish(t, ep, pkg(t, manifest.FormatFull, image2, func(m *manifest.Manifest) { m.Sequence = 0 }))
		}, "", simulator.ResultUnsupportedType},
		{"unsupported protocol", func(*testing.T, *server, string) string { return "https://example.invalid/fw" }, "", simulator.ResultUnsupportedProt},
		{"invalid uri", func(*testing.T, *server, string) string { return "coaps://" }, "", simulator.ResultInvalidURI},
		{"missing package", func(_ *testing.T, s *server, _ string) string {
			return "coaps://" + s.Addr() + "/fw/missing"
		}, "", simulator.ResultInvalidURI},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, lwm2m.OperatorConfig{})
			d := sim(s, t, nil)
			if tc.fault != "" {
				d.Inject(tc.fault)
			}
			ep := d.Status().Endpoint
			before, _ := d.Flash().Running()
			before = bytes.Clone(before)
			write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue(tc.build(t, s, ep)))
			waitResult(t, d, tc.result)
			// The server sees the result once the device's notifier wrote it.
			waitFor(t, "result in /5/0/5", func() bool { return integer(t, s, ep, "/5/0/5") == int64(tc.result) })
			if now, _ := d.Flash().Running(); !bytes.Equal(now, before) {
				t.Fatal("the running image changed")
			}
		})
	}
}

// TestRollback: images that fail at boot go back to the old one with
// result 8; a low battery defers the update (result 11).
func TestRollback(t *testing.T) {
	for _, tc := range []struct {
		fault  simulator.Fault
		result int
	}{
		{simulator.FaultBadImage, simulator.ResultUpdateFailed},
		{simulator.FaultRebootLoop, simulator.ResultUpdateFailed},
		{simulator.FaultPowerLossApply, simulator.ResultUpdateFailed},
		{simulator.FaultLowBattery, simulator.ResultDeferred},
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			s := startServer(t, lwm2m.OperatorConfig{})
			d := sim(s, t, nil)
			ep := d.Status().Endpoint
			write(t, s, ep, model.ResourcePath(5, 0, 1), model.StringValue(s.publish(t, ep, pkg(t, manifest.FormatFull, image2, nil))))
			waitState(t, s, ep, simulator.StateDownloaded)
			d.Inject(tc.fault)
			if _, err := s.ops.Do(ctxT(t), ep, lwm2m.Op{Kind: lwm2m.OpExecute, Path: model.ResourcePath(5, 0, 2)}); err != nil {
				t.Fatal(err)
			}
			if tc.result == simulator.ResultDeferred {
				waitFor(t, "deferred", func() bool { return integer(t, s, ep, "/5/0/5") == simulator.ResultDeferred })
				return
			}
			waitResult(t, d, tc.result)
			waitFor(t, "registered again", func() bool { return d.Status().Registered })
			if v, _ := read(t, s, ep, "/3/0/3").AsString(); v != "1.0.0" {
				t.Fatalf("version after a failed update: %s", v)
			}
			if running, _ := d.Flash().Running(); !bytes.Equal(running, image1) {
				t.Fatal("not back on the old image")
			}
		})
	}
}

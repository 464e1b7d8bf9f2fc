package firmware_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fotahub/fota/delivery/delta"
	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
	"github.com/fotahub/fota/store/storetest"
)

// corpus holds real Cortex-M4 images of four releases (see its README).
const corpus = "../delta/testdata/firmware/"

func readCorpus(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(corpus + name + ".bin")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := manifest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixture is a Service on an in-memory store that counts the deltas it makes.
type fixture struct {
	t      testing.TB
	store  *storetest.FirmwareStore
	key    *ecdsa.PrivateKey
	svc    *firmware.Service
	deltas atomic.Int32
	// gate, when set, is waited on by every delta computation.
	gate chan struct{}
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, store: storetest.NewFirmwareStore(), key: newKey(t)}
	f.svc = f.service(f.key)
	return f
}

// service returns another Service on the fixture's store.
func (f *fixture) service(key *ecdsa.PrivateKey) *firmware.Service {
	f.t.Helper()
	svc, err := firmware.New(firmware.Config{
		Store: f.store,
		Key:   key,
		Now:   func() time.Time { return testNow },
		Delta: func(old, new []byte) ([]byte, error) {
			f.deltas.Add(1)
			if f.gate != nil {
				<-f.gate
			}
			return delta.Create(old, new)
		},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return svc
}

func (f *fixture) add(data []byte, version, class string) firmware.Image {
	f.t.Helper()
	img, created, err := f.svc.AddImage(context.Background(), data, version, class, "")
	if err != nil || !created {
		f.t.Fatalf("AddImage(%s/%s): created %t, %v", class, version, created, err)
	}
	return img
}

func (f *fixture) make(req firmware.Request) firmware.Offer {
	f.t.Helper()
	o, err := f.svc.MakePackage(context.Background(), req)
	if err != nil {
		f.t.Fatalf("MakePackage(%+v): %v", req, err)
	}
	return o
}

// verify parses the offer's package bytes with the service's public key
// and returns the manifest and payload.
func (f *fixture) verify(o firmware.Offer) (manifest.Manifest, []byte) {
	f.t.Helper()
	data, err := f.svc.PackageData(context.Background(), o.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	if int64(len(data)) != o.Size || sha256.Sum256(data) != o.ID {
		f.t.Fatalf("package %s: %d bytes that are not its ID", o.ID, len(data))
	}
	m, payload, err := manifest.Parse(data, f.svc.PublicKey())
	if err != nil {
		f.t.Fatalf("package %s does not verify: %v", o.ID, err)
	}
	if m != o.Manifest {
		f.t.Errorf("parsed manifest %+v\nwant %+v", m, o.Manifest)
	}
	return m, payload
}

func TestAddImage(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	v1 := readCorpus(t, "v1")
	img := f.add(v1, "1.0.0", "sensor")
	want := firmware.Image{Digest: sha256.Sum256(v1), Size: int64(len(v1)), Version: "1.0.0", Class: "sensor", Sequence: 1, Added: testNow}
	if img != want {
		t.Errorf("AddImage = %+v\nwant %+v", img, want)
	}

	again, created, err := f.svc.AddImage(ctx, bytes.Clone(v1), "1.0.0", "sensor", "")
	if err != nil || created || again != img {
		t.Errorf("adding the same image again = %+v, created %t, %v; want the stored one", again, created, err)
	}
	for _, c := range []struct{ version, class string }{{"1.0.1", "sensor"}, {"1.0.0", "gateway"}} {
		if _, _, err := f.svc.AddImage(ctx, v1, c.version, c.class, ""); !errors.Is(err, firmware.ErrConflict) {
			t.Errorf("same bytes as %s/%s = %v, want ErrConflict", c.class, c.version, err)
		}
	}
	if _, _, err := f.svc.AddImage(ctx, readCorpus(t, "v2"), "1.0.0", "sensor", ""); !errors.Is(err, firmware.ErrConflict) {
		t.Errorf("other bytes with a taken version = %v, want ErrConflict", err)
	}

	for name, c := range map[string]struct {
		data           []byte
		version, class string
	}{
		"empty image":       {nil, "2", "sensor"},
		"empty version":     {v1, "", "sensor"},
		"empty class":       {v1, "2", ""},
		"digest as version": {v1, strings.Repeat("ab", 32), "sensor"},
		"control character": {v1, "2\n", "sensor"},
		"long class":        {v1, "2", strings.Repeat("c", manifest.MaxClassLen+1)},
		"long version":      {v1, strings.Repeat("9", manifest.MaxVersionLen+1), "sensor"},
		"not UTF-8":         {v1, "\xff", "sensor"},
	} {
		if _, _, err := f.svc.AddImage(ctx, c.data, c.version, c.class, ""); !errors.Is(err, firmware.ErrInvalid) {
			t.Errorf("%s: AddImage = %v, want ErrInvalid", name, err)
		}
	}
}

func TestImageLookup(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := f.add([]byte("sensor 1"), "1.0.0", "sensor")
	b := f.add([]byte("gateway 1"), "1.0.0", "gateway")
	c := f.add([]byte("sensor 2"), "2.0.0", "sensor")

	for _, tc := range []struct {
		ref, class string
		want       firmware.Image
		err        error
	}{
		{a.Digest.String(), "", a, nil},
		{strings.ToUpper(a.Digest.String()), "", a, nil},
		{a.Digest.String(), "sensor", a, nil},
		{a.Digest.String(), "gateway", firmware.Image{}, firmware.ErrClassMismatch},
		{"2.0.0", "", c, nil},
		{"1.0.0", "gateway", b, nil},
		{"1.0.0", "", firmware.Image{}, firmware.ErrAmbiguous},
		{"3.0.0", "", firmware.Image{}, firmware.ErrNotFound},
		{"2.0.0", "gateway", firmware.Image{}, firmware.ErrNotFound},
		{strings.Repeat("0", 64), "", firmware.Image{}, firmware.ErrNotFound},
		{"", "", firmware.Image{}, firmware.ErrInvalid},
	} {
		got, err := f.svc.Image(ctx, tc.ref, tc.class)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("Image(%q, %q) = %s %s, %v; want %s, %v", tc.ref, tc.class, got.Class, got.Version, err, tc.want.Version, tc.err)
		}
	}

	imgs, err := f.svc.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, img := range imgs {
		order = append(order, fmt.Sprintf("%s/%s/%d", img.Class, img.Version, img.Sequence))
	}
	if got := strings.Join(order, " "); got != "gateway/1.0.0/1 sensor/1.0.0/1 sensor/2.0.0/2" {
		t.Errorf("Images in order %s", got)
	}
}

// TestFullOrDelta: a delta when the installed image is stored and the
// delta is smaller; a full image, with the reason, otherwise.
func TestFullOrDelta(t *testing.T) {
	f := newFixture(t)
	v1, v2 := readCorpus(t, "v1"), readCorpus(t, "v2")
	i1 := f.add(v1, "1.0.0", "sensor")
	i2 := f.add(v2, "1.0.1", "sensor")

	t.Run("delta", func(t *testing.T) {
		o := f.make(firmware.Request{Image: "1.0.1", Installed: i1.Digest})
		if o.Manifest.Format != manifest.FormatDelta || o.Reason != "" {
			t.Fatalf("offer is %s (%q), want a delta", o.Manifest.Format, o.Reason)
		}
		if o.Size >= o.FullSize || o.DeltaSize != o.Size {
			t.Errorf("delta of %d bytes, full %d, DeltaSize %d", o.Size, o.FullSize, o.DeltaSize)
		}
		t.Logf("v1 -> v2: delta package %d bytes, full %d", o.Size, o.FullSize)
		m, payload := f.verify(o)
		want := manifest.Manifest{
			Sequence: i2.Sequence, Version: "1.0.1", Class: "sensor", Format: manifest.FormatDelta,
			PayloadDigest: sha256.Sum256(payload), PayloadSize: uint64(len(payload)),
			ImageDigest: i2.Digest, ImageSize: uint64(i2.Size),
			PrecursorDigest: i1.Digest, PrecursorSize: uint64(i1.Size),
		}
		if m != want {
			t.Errorf("manifest %+v\nwant %+v", m, want)
		}
		rebuilt, err := delta.Apply(v1, payload)
		if err != nil || !bytes.Equal(rebuilt, v2) {
			t.Fatalf("the delta does not rebuild v2: %v", err)
		}
		if o.KeyFingerprint != firmware.KeyFingerprint(&f.key.PublicKey) || !o.Created.Equal(testNow) {
			t.Errorf("package key %s, created %v", o.KeyFingerprint, o.Created)
		}
	})

	for _, tc := range []struct {
		name   string
		req    firmware.Request
		reason string
	}{
		{"no installed image", firmware.Request{Image: "1.0.1"}, firmware.ReasonNoInstalled},
		{"installed image unknown", firmware.Request{Image: "1.0.1", Installed: sha256.Sum256([]byte("?"))}, firmware.ReasonInstalledUnknown},
		{"full requested", firmware.Request{Image: i2.Digest.String(), Installed: i1.Digest, Full: true}, firmware.ReasonFullRequested},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := f.make(tc.req)
			if o.Manifest.Format != manifest.FormatFull || o.Reason != tc.reason || o.Size != o.FullSize {
				t.Fatalf("offer %s of %d bytes (full %d), reason %q; want full, %q", o.Manifest.Format, o.Size, o.FullSize, o.Reason, tc.reason)
			}
			m, payload := f.verify(o)
			if !bytes.Equal(payload, v2) || m.Sequence != i2.Sequence || m.PrecursorDigest != (manifest.Digest{}) {
				t.Errorf("full package: manifest %+v", m)
			}
		})
	}

	t.Run("delta not smaller", func(t *testing.T) {
		// Unrelated random images: the delta cannot win.
		rng := rand.New(rand.NewPCG(1, 2))
		noise := func(n int) []byte {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			return b
		}
		old := f.add(noise(4000), "1", "noise")
		f.add(noise(4000), "2", "noise")
		before := f.deltas.Load()
		o := f.make(firmware.Request{Image: "2", Class: "noise", Installed: old.Digest})
		if o.Manifest.Format != manifest.FormatFull || o.Reason != firmware.ReasonDeltaNotSmaller || o.DeltaSize < o.FullSize {
			t.Fatalf("offer %s, reason %q, delta %d, full %d", o.Manifest.Format, o.Reason, o.DeltaSize, o.FullSize)
		}
		// The losing delta is stored: asking again computes nothing.
		again := f.make(firmware.Request{Image: "2", Class: "noise", Installed: old.Digest})
		if again.ID != o.ID || again.DeltaSize != o.DeltaSize {
			t.Errorf("second offer %+v differs from the first %+v", again, o)
		}
		if n := f.deltas.Load() - before; n != 1 {
			t.Errorf("%d deltas computed for two requests, want 1", n)
		}
	})
}

func TestRefusedRequests(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	i1 := f.add(readCorpus(t, "v1"), "1.0.0", "sensor")
	i2 := f.add(readCorpus(t, "v2"), "1.0.1", "sensor")
	other := f.add([]byte("gateway firmware"), "1.0.0", "gateway")
	for _, tc := range []struct {
		name string
		req  firmware.Request
		want error
	}{
		{"installed image of another class", firmware.Request{Image: "1.0.1", Installed: other.Digest}, firmware.ErrClassMismatch},
		{"requested class differs", firmware.Request{Image: i2.Digest.String(), Class: "gateway"}, firmware.ErrClassMismatch},
		{"already installed", firmware.Request{Image: "1.0.1", Class: "sensor", Installed: i2.Digest}, firmware.ErrNotNewer},
		{"older than installed", firmware.Request{Image: "1.0.0", Class: "sensor", Installed: i2.Digest}, firmware.ErrNotNewer},
		{"older, full", firmware.Request{Image: "1.0.0", Class: "sensor", Installed: i2.Digest, Full: true}, firmware.ErrNotNewer},
		{"unknown target", firmware.Request{Image: "9.9.9", Installed: i1.Digest}, firmware.ErrNotFound},
		{"ambiguous version", firmware.Request{Image: "1.0.0"}, firmware.ErrAmbiguous},
	} {
		if _, err := f.svc.MakePackage(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: MakePackage = %v, want %v", tc.name, err, tc.want)
		}
	}
	if n := f.deltas.Load(); n != 0 {
		t.Errorf("refused requests computed %d deltas", n)
	}
}

// TestDeltaReuse: two devices on the same image get the same stored delta,
// computed once, also by a Service started later on the same store.
func TestDeltaReuse(t *testing.T) {
	f := newFixture(t)
	i2 := f.add(readCorpus(t, "v2"), "1.0.1", "sensor")
	f.add(readCorpus(t, "v3"), "1.1.0", "sensor")
	req := firmware.Request{Image: "1.1.0", Class: "sensor", Installed: i2.Digest}
	first := f.make(req)
	second := f.make(req)
	later := f.service(f.key).MakePackage
	third, err := later(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if first.Manifest.Format != manifest.FormatDelta || second.ID != first.ID || third.ID != first.ID {
		t.Errorf("offers %s, %s, %s (%s): want one delta package", first.ID, second.ID, third.ID, first.Manifest.Format)
	}
	if n := f.deltas.Load(); n != 1 {
		t.Errorf("%d deltas computed, want 1", n)
	}
}

// TestConcurrentRequestsComputeOnce: devices asking for the same delta at
// once wait for one computation.
func TestConcurrentRequestsComputeOnce(t *testing.T) {
	const devices = 8
	f := newFixture(t)
	i1 := f.add(readCorpus(t, "v1"), "1.0.0", "sensor")
	i3 := f.add(readCorpus(t, "v3"), "1.1.0", "sensor")
	key := firmware.PackageKey{From: i1.Digest, To: i3.Digest, Format: manifest.FormatDelta}

	// The computation waits until every device has looked for the delta
	// in the store and missed it: without the flight, each would compute.
	f.gate = make(chan struct{})
	var misses atomic.Int32
	f.store.BeforePackageFor = func(k firmware.PackageKey) {
		if k == key && misses.Add(1) == devices {
			close(f.gate)
		}
	}
	offers := make([]firmware.Offer, devices)
	errs := make([]error, devices)
	var wg sync.WaitGroup
	for i := range devices {
		wg.Go(func() {
			offers[i], errs[i] = f.svc.MakePackage(context.Background(), firmware.Request{Image: "1.1.0", Installed: i1.Digest})
		})
	}
	wg.Wait()
	for i := range devices {
		if errs[i] != nil {
			t.Fatalf("device %d: %v", i, errs[i])
		}
		if offers[i].ID != offers[0].ID || offers[i].Manifest.Format != manifest.FormatDelta {
			t.Errorf("device %d got %s %s, device 0 %s", i, offers[i].Manifest.Format, offers[i].ID, offers[0].ID)
		}
	}
	if n := f.deltas.Load(); n != 1 {
		t.Errorf("%d deltas computed for %d devices, want 1", n, devices)
	}
}

// TestWaiterGivesUp: a request whose context ends while another computes
// its delta returns, and the computation still completes and is stored.
func TestWaiterGivesUp(t *testing.T) {
	f := newFixture(t)
	i1 := f.add(readCorpus(t, "v1"), "1.0.0", "sensor")
	i2 := f.add(readCorpus(t, "v2"), "1.0.1", "sensor")
	key := firmware.PackageKey{From: i1.Digest, To: i2.Digest, Format: manifest.FormatDelta}
	f.gate = make(chan struct{})
	started := make(chan struct{})
	var lookups atomic.Int32
	f.store.BeforePackageFor = func(k firmware.PackageKey) {
		if k == key && lookups.Add(1) == 2 { // the leader's lookup and its recheck
			close(started)
		}
	}
	req := firmware.Request{Image: "1.0.1", Installed: i1.Digest}
	leader := make(chan error, 1)
	go func() { _, err := f.svc.MakePackage(context.Background(), req); leader <- err }()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.svc.MakePackage(ctx, req); !errors.Is(err, context.Canceled) {
		t.Errorf("waiter with a cancelled context = %v, want context.Canceled", err)
	}
	close(f.gate)
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.PackageFor(context.Background(), key); err != nil {
		t.Errorf("delta not stored: %v", err)
	}
}

// TestKeyChange: after the signing key changes, stored packages are signed
// again with the new one, without computing the delta again.
func TestKeyChange(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	i1 := f.add(readCorpus(t, "v1"), "1.0.0", "sensor")
	f.add(readCorpus(t, "v2"), "1.0.1", "sensor")
	req := firmware.Request{Image: "1.0.1", Installed: i1.Digest}
	old := f.make(req)

	newKey := newKey(t)
	f.svc = f.service(newKey)
	o := f.make(req)
	if o.ID == old.ID || o.KeyFingerprint != firmware.KeyFingerprint(&newKey.PublicKey) {
		t.Fatalf("after the key change: package %s signed by %s", o.ID, o.KeyFingerprint)
	}
	_, payload := f.verify(o)
	if _, err := f.store.PackageData(ctx, old.ID); !errors.Is(err, firmware.ErrNotFound) {
		t.Errorf("the package signed with the old key is still stored (%v)", err)
	}
	if n := f.deltas.Load(); n != 1 {
		t.Errorf("%d deltas computed, want 1 (signing again reuses the payload)", n)
	}
	if rebuilt, err := delta.Apply(readCorpus(t, "v1"), payload); err != nil || !bytes.Equal(rebuilt, readCorpus(t, "v2")) {
		t.Errorf("re-signed delta does not rebuild v2: %v", err)
	}
	if _, err := f.svc.PackageData(ctx, old.ID); !errors.Is(err, firmware.ErrNotFound) {
		t.Errorf("PackageData of the replaced package = %v, want ErrNotFound", err)
	}
}

// TestRemoveImage removes the packages made from and to the image, the
// cached bytes too, and keeps the class's sequence going up.
func TestRemoveImage(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	i1 := f.add(readCorpus(t, "v1"), "1.0.0", "sensor")
	i2 := f.add(readCorpus(t, "v2"), "1.0.1", "sensor")
	d := f.make(firmware.Request{Image: "1.0.1", Installed: i1.Digest})
	full2 := f.make(firmware.Request{Image: "1.0.1"})
	full1 := f.make(firmware.Request{Image: "1.0.0"})
	for _, id := range []manifest.Digest{d.ID, full2.ID} {
		if _, err := f.svc.PackageData(ctx, id); err != nil { // now cached
			t.Fatal(err)
		}
	}

	if err := f.svc.RemoveImage(ctx, i2.Digest); err != nil {
		t.Fatal(err)
	}
	for _, id := range []manifest.Digest{d.ID, full2.ID} {
		if _, err := f.svc.PackageData(ctx, id); !errors.Is(err, firmware.ErrNotFound) {
			t.Errorf("PackageData of a removed image's package = %v, want ErrNotFound", err)
		}
	}
	if _, err := f.svc.PackageData(ctx, full1.ID); err != nil {
		t.Errorf("another image's package went too: %v", err)
	}
	if err := f.svc.RemoveImage(ctx, i2.Digest); !errors.Is(err, firmware.ErrNotFound) {
		t.Errorf("second RemoveImage = %v, want ErrNotFound", err)
	}
	again := f.add(readCorpus(t, "v2"), "1.0.1", "sensor")
	if again.Sequence != 3 {
		t.Errorf("re-added image has sequence %d, want 3", again.Sequence)
	}
	if o := f.make(firmware.Request{Image: "1.0.1", Installed: i1.Digest}); o.Manifest.Sequence != 3 {
		t.Errorf("package of the re-added image has sequence %d, want 3", o.Manifest.Sequence)
	}
}

// TestPackageDataShared: bytes served from memory are one slice for every
// request, not a copy each.
func TestPackageDataShared(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.add(readCorpus(t, "v1"), "1.0.0", "sensor")
	o := f.make(firmware.Request{Image: "1.0.0"})
	a, err := f.svc.PackageData(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.svc.PackageData(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if &a[0] != &b[0] {
		t.Error("two PackageData calls returned two copies")
	}
	// A Service that never made the package loads it once.
	later := f.service(f.key)
	a, _ = later.PackageData(ctx, o.ID)
	b, _ = later.PackageData(ctx, o.ID)
	if &a[0] != &b[0] || sha256.Sum256(a) != o.ID {
		t.Error("bytes loaded from the store are not shared")
	}

	// With the cache off, every call reads the store.
	uncached, err := firmware.New(firmware.Config{Store: f.store, Key: f.key, CacheBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	a, _ = uncached.PackageData(ctx, o.ID)
	b, _ = uncached.PackageData(ctx, o.ID)
	if &a[0] == &b[0] {
		t.Error("uncached PackageData shares a slice")
	}
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]firmware.Config{
		"Store": {Key: newKey(t)},
		"Key":   {Store: storetest.NewFirmwareStore()},
	} {
		if _, err := firmware.New(cfg); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("New without %s = %v", name, err)
		}
	}
}

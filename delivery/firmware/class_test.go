package firmware_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/store/storetest"
)

func TestClassDefaultAndDeclared(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, err := f.svc.Class(ctx, "sensor")
	if err != nil {
		t.Fatal(err)
	}
	if c.Declared || c.Profile != firmware.ProfileNative || !c.Delta || !c.Has(firmware.SuccessResult) || !c.Has(firmware.SuccessVersion) {
		t.Fatalf("undeclared class: %+v, want the default native profile with deltas", c)
	}
	stored, err := f.svc.PutClass(ctx, firmware.Class{Name: "sensor", Profile: firmware.ProfileRaw, Method: firmware.MethodPull,
		BlockSize: 256, Scheme: firmware.SchemeCoAPS, Deadline: 36 * time.Hour,
		Success: []string{firmware.SuccessPackage, firmware.SuccessResult, firmware.SuccessResult}})
	if err != nil {
		t.Fatal(err)
	}
	if !stored.Declared || strings.Join(stored.Success, ",") != "result,package" || !stored.Changed.Equal(testNow) {
		t.Fatalf("stored class %+v: want declared, success sorted without duplicates, changed now", stored)
	}
	got, err := f.svc.Class(ctx, "sensor")
	if err != nil || !got.Declared || got.Profile != firmware.ProfileRaw || got.BlockSize != 256 || got.Deadline != 36*time.Hour {
		t.Fatalf("Class after PutClass: %+v, %v", got, err)
	}
	if err := f.svc.RemoveClass(ctx, "sensor"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RemoveClass(ctx, "sensor"); !errors.Is(err, firmware.ErrNotFound) {
		t.Fatalf("second RemoveClass: %v, want ErrNotFound", err)
	}
}

func TestClassValidate(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		class firmware.Class
		want  string
	}{
		{firmware.Class{Name: ""}, "empty class"},
		{firmware.Class{Name: "a", Profile: "mcuboot"}, "profile"},
		{firmware.Class{Name: "a", Profile: firmware.ProfileRaw, Delta: true}, "no delta applier"},
		{firmware.Class{Name: "a", Method: "fax"}, "method"},
		{firmware.Class{Name: "a", BlockSize: 8}, "block size"},
		{firmware.Class{Name: "a", BlockSize: 2048}, "block size"},
		{firmware.Class{Name: "a", BlockSize: 300}, "block size"},
		{firmware.Class{Name: "a", Scheme: "http"}, "scheme"},
		{firmware.Class{Name: "a", Deadline: -time.Second}, "deadline"},
		{firmware.Class{Name: "a", Success: []string{"vibes"}}, "success check"},
	} {
		_, err := f.svc.PutClass(context.Background(), c.class)
		if !errors.Is(err, firmware.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("PutClass(%+v): %v, want ErrInvalid saying %q", c.class, err, c.want)
		}
	}
}

func TestRawImages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v1, v2 := readCorpus(t, "v1"), readCorpus(t, "v2")

	// A raw image for an undeclared class declares it raw.
	img1, created, err := f.svc.AddImage(ctx, v1, "1.0.0", "mcu", firmware.ProfileRaw)
	if err != nil || !created || !img1.Raw || img1.Digest != sha256.Sum256(v1) || img1.Size != int64(len(v1)) {
		t.Fatalf("AddImage raw: %+v created %t, %v", img1, created, err)
	}
	c, err := f.svc.Class(ctx, "mcu")
	if err != nil || !c.Declared || c.Profile != firmware.ProfileRaw || c.Delta {
		t.Fatalf("class after a raw image: %+v, %v", c, err)
	}
	// The class's profile is the default format of its images; another is refused.
	img2, _, err := f.svc.AddImage(ctx, v2, "2.0.0", "mcu", "")
	if err != nil || !img2.Raw {
		t.Fatalf("AddImage to a raw class: %+v, %v", img2, err)
	}
	if _, _, err := f.svc.AddImage(ctx, readCorpus(t, "v3"), "3.0.0", "mcu", firmware.ProfileNative); !errors.Is(err, firmware.ErrInvalid) {
		t.Fatalf("native image into a raw class: %v, want ErrInvalid", err)
	}
	if _, err := f.svc.PutClass(ctx, firmware.Class{Name: "mcu", Profile: firmware.ProfileNative}); !errors.Is(err, firmware.ErrConflict) {
		t.Fatalf("raw class with raw images made native: %v, want ErrConflict", err)
	}
	if err := f.svc.RemoveClass(ctx, "mcu"); !errors.Is(err, firmware.ErrConflict) {
		t.Fatalf("RemoveClass with images: %v, want ErrConflict", err)
	}

	// The package of a raw image is the image: byte for byte, never a delta.
	o := f.make(firmware.Request{Image: "2.0.0", Class: "mcu", Installed: img1.Digest})
	if !o.Raw || o.ID != img2.Digest || o.Size != img2.Size || o.DeltaSize != 0 || o.Reason != firmware.ReasonRaw || f.deltas.Load() != 0 {
		t.Fatalf("offer for a raw image: %+v (%d deltas made)", o, f.deltas.Load())
	}
	data, err := f.svc.PackageData(ctx, o.ID)
	if err != nil || !bytes.Equal(data, v2) {
		t.Fatalf("PackageData of a raw image: %d bytes, %v; want the %d uploaded", len(data), err, len(v2))
	}
	// The device runs the target already.
	if _, err := f.svc.MakePackage(ctx, firmware.Request{Image: "2.0.0", Class: "mcu", Installed: img2.Digest}); !errors.Is(err, firmware.ErrNotNewer) {
		t.Fatalf("raw image the device runs: %v, want ErrNotNewer", err)
	}
}

func TestDeltaOnlyToClassesWithAnApplier(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.PutClass(ctx, firmware.Class{Name: "plain", Profile: firmware.ProfileNative}); err != nil {
		t.Fatal(err)
	}
	from := f.add(readCorpus(t, "v1"), "1.0.0", "plain")
	f.add(readCorpus(t, "v2"), "2.0.0", "plain")
	o := f.make(firmware.Request{Image: "2.0.0", Class: "plain", Installed: from.Digest})
	if o.Manifest.Format.IsDelta() || o.Reason != firmware.ReasonNoApplier || f.deltas.Load() != 0 {
		t.Fatalf("class without an applier: %s package, reason %q, %d deltas made", o.Manifest.Format, o.Reason, f.deltas.Load())
	}
	if _, err := f.svc.PutClass(ctx, firmware.Class{Name: "plain", Profile: firmware.ProfileNative, Delta: true}); err != nil {
		t.Fatal(err)
	}
	if o := f.make(firmware.Request{Image: "2.0.0", Class: "plain", Installed: from.Digest}); !o.Manifest.Format.IsDelta() {
		t.Fatalf("class with an applier: %s package, reason %q", o.Manifest.Format, o.Reason)
	}
}

func TestClassesListsUndeclaredImageClasses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.add(readCorpus(t, "v1"), "1.0.0", "zeta")
	if _, err := f.svc.PutClass(ctx, firmware.Class{Name: "alpha", Profile: firmware.ProfileRaw}); err != nil {
		t.Fatal(err)
	}
	cs, err := f.svc.Classes(ctx)
	if err != nil || len(cs) != 2 || cs[0].Name != "alpha" || !cs[0].Declared || cs[1].Name != "zeta" || cs[1].Declared {
		t.Fatalf("Classes: %+v, %v", cs, err)
	}
}

// slowImages stores images slowly, so that a class change can fall
// between an image's class check and its store.
type slowImages struct{ *storetest.FirmwareStore }

func (s slowImages) PutImage(ctx context.Context, img firmware.Image, data []byte) (firmware.Image, bool, error) {
	time.Sleep(20 * time.Millisecond)
	return s.FirmwareStore.PutImage(ctx, img, data)
}

// TestClassProfileHoldsUnderConcurrency: a raw image added to an
// undeclared class (which declares it raw) races with declaring the class
// native; whatever wins, every image the class holds is of the profile it
// ends up with. (Without the Service's class lock the native declaration
// lands while the raw image is being stored.)
func TestClassProfileHoldsUnderConcurrency(t *testing.T) {
	svc, err := firmware.New(firmware.Config{Store: slowImages{storetest.NewFirmwareStore()}, Key: newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _, _ = svc.AddImage(ctx, []byte("raw image"), "1.0.0", "racy", firmware.ProfileRaw)
	}()
	go func() {
		defer wg.Done()
		time.Sleep(5 * time.Millisecond) // while the image is being stored
		_, _ = svc.PutClass(ctx, firmware.Class{Name: "racy", Profile: firmware.ProfileNative})
	}()
	wg.Wait()
	c, err := svc.Class(ctx, "racy")
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := svc.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if img.Raw != (c.Profile == firmware.ProfileRaw) {
			t.Fatalf("class %q is %s but holds image %s with raw %t", c.Name, c.Profile, img.Version, img.Raw)
		}
	}
}

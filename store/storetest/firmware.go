package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fotahub/fota/delivery/firmware"
	"github.com/fotahub/fota/delivery/manifest"
)

// TestImageStore runs the firmware.ImageStore conformance tests.
func TestImageStore(t *testing.T, open func(t *testing.T) firmware.ImageStore) {
	ctx := context.Background()

	t.Run("PutGet", func(t *testing.T) {
		s := open(t)
		data := imageBytes("a", 3000)
		img := image(data, "1.0.0", "sensor")
		got := mustPutImage(t, s, img, data, true)
		img.Sequence = 1
		checkImage(t, got, img)
		got, err := s.Image(ctx, img.Digest)
		if err != nil {
			t.Fatalf("Image: %v", err)
		}
		checkImage(t, got, img)
		got, err = s.ImageByVersion(ctx, "sensor", "1.0.0")
		if err != nil {
			t.Fatalf("ImageByVersion: %v", err)
		}
		checkImage(t, got, img)
		b, err := s.ImageData(ctx, img.Digest)
		if err != nil {
			t.Fatalf("ImageData: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Errorf("ImageData returned %d bytes that differ from the %d put", len(b), len(data))
		}
	})

	t.Run("SameBytesAgain", func(t *testing.T) {
		s := open(t)
		data := imageBytes("a", 100)
		first := mustPutImage(t, s, image(data, "1.0.0", "sensor"), data, true)
		again := image(data, "1.0.0", "sensor")
		again.Added = again.Added.Add(time.Hour)
		got := mustPutImage(t, s, again, data, false)
		checkImage(t, got, first) // the stored image, added time and all
		// The sequence was not spent.
		next := imageBytes("b", 100)
		if got := mustPutImage(t, s, image(next, "1.0.1", "sensor"), next, true); got.Sequence != 2 {
			t.Errorf("next image has sequence %d, want 2", got.Sequence)
		}
	})

	t.Run("SameBytesOtherVersionOrClass", func(t *testing.T) {
		s := open(t)
		data := imageBytes("a", 100)
		mustPutImage(t, s, image(data, "1.0.0", "sensor"), data, true)
		for _, img := range []firmware.Image{image(data, "1.0.1", "sensor"), image(data, "1.0.0", "gateway")} {
			if _, _, err := s.PutImage(ctx, img, data); !errors.Is(err, firmware.ErrConflict) {
				t.Errorf("PutImage of the same bytes as %s/%s = %v, want ErrConflict", img.Class, img.Version, err)
			}
		}
		checkImageCount(t, s, 1)
	})

	t.Run("VersionTaken", func(t *testing.T) {
		s := open(t)
		a, b := imageBytes("a", 100), imageBytes("b", 100)
		mustPutImage(t, s, image(a, "1.0.0", "sensor"), a, true)
		if _, _, err := s.PutImage(ctx, image(b, "1.0.0", "sensor"), b); !errors.Is(err, firmware.ErrConflict) {
			t.Errorf("PutImage of other bytes with a taken version = %v, want ErrConflict", err)
		}
		if _, err := s.ImageData(ctx, image(b, "", "").Digest); !errors.Is(err, firmware.ErrNotFound) {
			t.Errorf("the refused image's bytes were stored: ImageData = %v", err)
		}
		// The version is free in another class.
		mustPutImage(t, s, image(b, "1.0.0", "gateway"), b, true)
		got, err := s.ImageByVersion(ctx, "gateway", "1.0.0")
		if err != nil || got.Digest != sha256.Sum256(b) {
			t.Errorf("ImageByVersion(gateway) = %s, %v", got.Digest, err)
		}
	})

	t.Run("SequencePerClass", func(t *testing.T) {
		s := open(t)
		for i, step := range []struct {
			class string
			want  uint64
		}{{"a", 1}, {"a", 2}, {"b", 1}, {"a", 3}, {"b", 2}} {
			data := imageBytes(fmt.Sprint(i), 64)
			got := mustPutImage(t, s, image(data, fmt.Sprintf("v%d", i), step.class), data, true)
			if got.Sequence != step.want {
				t.Errorf("image %d of class %s has sequence %d, want %d", i, step.class, got.Sequence, step.want)
			}
		}
	})

	t.Run("SequenceNeverReused", func(t *testing.T) {
		s := open(t)
		one, two, three := imageBytes("1", 64), imageBytes("2", 64), imageBytes("3", 64)
		first := mustPutImage(t, s, image(one, "1", "c"), one, true)
		second := mustPutImage(t, s, image(two, "2", "c"), two, true)
		mustDeleteImage(t, s, second.Digest)
		if got := mustPutImage(t, s, image(three, "3", "c"), three, true); got.Sequence != 3 {
			t.Errorf("image after a removal has sequence %d, want 3", got.Sequence)
		}
		mustDeleteImage(t, s, first.Digest)
		// The same bytes and version again: a new image, with a new sequence.
		if got := mustPutImage(t, s, image(one, "1", "c"), one, true); got.Sequence != 4 {
			t.Errorf("re-added image has sequence %d, want 4", got.Sequence)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		a, b := imageBytes("a", 100), imageBytes("b", 100)
		ia := mustPutImage(t, s, image(a, "1.0.0", "sensor"), a, true)
		mustPutImage(t, s, image(b, "1.0.1", "sensor"), b, true)
		mustDeleteImage(t, s, ia.Digest)
		if _, err := s.Image(ctx, ia.Digest); !errors.Is(err, firmware.ErrNotFound) {
			t.Errorf("Image after delete = %v, want ErrNotFound", err)
		}
		if _, err := s.ImageData(ctx, ia.Digest); !errors.Is(err, firmware.ErrNotFound) {
			t.Errorf("ImageData after delete = %v, want ErrNotFound", err)
		}
		if _, err := s.ImageByVersion(ctx, "sensor", "1.0.0"); !errors.Is(err, firmware.ErrNotFound) {
			t.Errorf("ImageByVersion after delete = %v, want ErrNotFound", err)
		}
		if err := s.DeleteImage(ctx, ia.Digest); !errors.Is(err, firmware.ErrNotFound) {
			t.Errorf("second DeleteImage = %v, want ErrNotFound", err)
		}
		checkImageCount(t, s, 1)
		// The version is free again, for other bytes.
		c := imageBytes("c", 100)
		mustPutImage(t, s, image(c, "1.0.0", "sensor"), c, true)
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		data := imageBytes("a", 100)
		mustPutImage(t, s, image(data, "1.0.0", "sensor"), data, true)
		missing := sha256.Sum256([]byte("missing"))
		if _, err := s.Image(ctx, missing); !errors.Is(err, firmware.ErrNotFound) {
			t.Errorf("Image(missing) = %v, want ErrNotFound", err)
		}
		if _, err := s.ImageData(ctx, missing); !errors.Is(err, firmware.ErrNotFound) {
			t.Errorf("ImageData(missing) = %v, want ErrNotFound", err)
		}
		if err := s.DeleteImage(ctx, missing); !errors.Is(err, firmware.ErrNotFound) {
			t.Errorf("DeleteImage(missing) = %v, want ErrNotFound", err)
		}
		for _, cv := range [][2]string{{"sensor", "1.0.1"}, {"gateway", "1.0.0"}, {"", ""}} {
			if _, err := s.ImageByVersion(ctx, cv[0], cv[1]); !errors.Is(err, firmware.ErrNotFound) {
				t.Errorf("ImageByVersion(%q, %q) = %v, want ErrNotFound", cv[0], cv[1], err)
			}
		}
	})

	t.Run("WrongBytes", func(t *testing.T) {
		s := open(t)
		data := imageBytes("a", 100)
		img := image(data, "1.0.0", "sensor")
		if _, _, err := s.PutImage(ctx, img, data[1:]); err == nil {
			t.Error("PutImage with bytes that are not the image's succeeded")
		}
		other := bytes.Clone(data)
		other[0] ^= 1
		if _, _, err := s.PutImage(ctx, img, other); err == nil {
			t.Error("PutImage with bytes of another digest succeeded")
		}
		checkImageCount(t, s, 0)
	})

	t.Run("List", func(t *testing.T) {
		s := open(t)
		checkImageCount(t, s, 0)
		var want []firmware.Image
		for i := range 5 {
			data := imageBytes(fmt.Sprint(i), 1000+i)
			want = append(want, mustPutImage(t, s, image(data, fmt.Sprintf("1.0.%d", i), "sensor"), data, true))
		}
		got, err := s.Images(ctx)
		if err != nil {
			t.Fatalf("Images: %v", err)
		}
		byDigest := func(a, b firmware.Image) int { return bytes.Compare(a.Digest[:], b.Digest[:]) }
		slices.SortFunc(got, byDigest)
		slices.SortFunc(want, byDigest)
		if len(got) != len(want) {
			t.Fatalf("Images returned %d images, want %d", len(got), len(want))
		}
		for i := range want {
			checkImage(t, got[i], want[i])
		}
	})

	t.Run("ReturnsCopies", func(t *testing.T) {
		s := open(t)
		data := imageBytes("a", 100)
		put := bytes.Clone(data)
		img := mustPutImage(t, s, image(put, "1.0.0", "sensor"), put, true)
		put[0] ^= 0xff // the caller's slice must not alias the store's
		got, err := s.ImageData(ctx, img.Digest)
		if err != nil {
			t.Fatal(err)
		}
		got[1] ^= 0xff
		again, err := s.ImageData(ctx, img.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Error("image bytes changed through a slice the caller held")
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		const n = 20
		seqs := make([]uint64, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				data := imageBytes(fmt.Sprint(i), 256)
				var img firmware.Image
				img, _, errs[i] = s.PutImage(ctx, image(data, fmt.Sprintf("v%d", i), "sensor"), data)
				seqs[i] = img.Sequence
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("PutImage %d: %v", i, err)
			}
		}
		slices.Sort(seqs)
		for i, seq := range seqs {
			if seq != uint64(i)+1 {
				t.Fatalf("sequences %v, want 1 to %d, each once", seqs, n)
			}
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := open(t)
		data := imageBytes("a", 100)
		img := mustPutImage(t, s, image(data, "1.0.0", "sensor"), data, true)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		other := imageBytes("b", 100)
		calls := map[string]error{}
		_, _, calls["PutImage"] = s.PutImage(cctx, image(other, "1.0.1", "sensor"), other)
		_, calls["Image"] = s.Image(cctx, img.Digest)
		_, calls["ImageByVersion"] = s.ImageByVersion(cctx, "sensor", "1.0.0")
		_, calls["Images"] = s.Images(cctx)
		_, calls["ImageData"] = s.ImageData(cctx, img.Digest)
		calls["DeleteImage"] = s.DeleteImage(cctx, img.Digest)
		for name, err := range calls {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with cancelled context = %v, want context.Canceled", name, err)
			}
		}
		checkImageCount(t, s, 1)
	})
}

// TestPackageStore runs the firmware.PackageStore conformance tests, with
// the images the packages need put through the same store.
func TestPackageStore(t *testing.T, open func(t *testing.T) firmware.Store) {
	ctx := context.Background()

	// threeImages stores images a, b and c of one class.
	threeImages := func(t *testing.T, s firmware.Store) (a, b, c firmware.Image) {
		t.Helper()
		var imgs [3]firmware.Image
		for i := range imgs {
			data := imageBytes(fmt.Sprint(i), 2000)
			imgs[i] = mustPutImage(t, s, image(data, fmt.Sprintf("1.%d", i), "sensor"), data, true)
		}
		return imgs[0], imgs[1], imgs[2]
	}

	t.Run("PutGet", func(t *testing.T) {
		s := open(t)
		a, b, _ := threeImages(t, s)
		for _, tc := range []struct {
			name string
			from *firmware.Image
		}{{"full", nil}, {"delta", &a}} {
			t.Run(tc.name, func(t *testing.T) {
				p, data := pkg(tc.from, b, "payload of "+tc.name)
				mustPutPackage(t, s, p, data)
				got, err := s.PackageFor(ctx, p.Key())
				if err != nil {
					t.Fatalf("PackageFor: %v", err)
				}
				checkPackage(t, got, p)
				if got, err = s.Package(ctx, p.ID); err != nil {
					t.Fatalf("Package: %v", err)
				}
				checkPackage(t, got, p)
				b, err := s.PackageData(ctx, p.ID)
				if err != nil || !bytes.Equal(b, data) {
					t.Fatalf("PackageData: %d bytes, %v; want the %d put", len(b), err, len(data))
				}
			})
		}
	})

	t.Run("KeysAreDistinct", func(t *testing.T) {
		s := open(t)
		a, b, c := threeImages(t, s)
		var all []firmware.Package
		for _, k := range []struct {
			from *firmware.Image
			to   firmware.Image
		}{{nil, b}, {nil, c}, {&a, b}, {&a, c}, {&b, c}} {
			p, data := pkg(k.from, k.to, "x")
			mustPutPackage(t, s, p, data)
			all = append(all, p)
		}
		for _, p := range all {
			got, err := s.PackageFor(ctx, p.Key())
			if err != nil {
				t.Fatalf("PackageFor(%s): %v", p.Key(), err)
			}
			checkPackage(t, got, p)
		}
		// The delta format of a full key's images, and the reverse
		// direction, are other keys.
		for _, k := range []firmware.PackageKey{
			{To: b.Digest, Format: manifest.FormatDelta},
			{From: b.Digest, To: a.Digest, Format: manifest.FormatDelta},
			{From: a.Digest, To: b.Digest, Format: manifest.FormatPelion},
			{From: a.Digest, To: b.Digest, Format: manifest.FormatFull},
		} {
			if _, err := s.PackageFor(ctx, k); !errors.Is(err, firmware.ErrNotFound) {
				t.Errorf("PackageFor(%s) = %v, want ErrNotFound", k, err)
			}
		}
	})

	t.Run("Replace", func(t *testing.T) {
		s := open(t)
		a, b, _ := threeImages(t, s)
		old, oldData := pkg(&a, b, "signed with the old key")
		mustPutPackage(t, s, old, oldData)
		mustPutPackage(t, s, old, oldData) // again: nothing changes
		if got, err := s.Package(ctx, old.ID); err != nil {
			t.Fatalf("Package after putting it twice: %v", err)
		} else {
			checkPackage(t, got, old)
		}
		p, data := pkg(&a, b, "signed with the new key")
		p.KeyFingerprint = "sha256:new"
		mustPutPackage(t, s, p, data)
		got, err := s.PackageFor(ctx, p.Key())
		if err != nil {
			t.Fatal(err)
		}
		checkPackage(t, got, p)
		checkPackageGone(t, s, old, true)
	})

	t.Run("NeedsItsImages", func(t *testing.T) {
		s := open(t)
		a, _, _ := threeImages(t, s)
		missingData := imageBytes("missing", 100)
		missing := image(missingData, "9", "sensor")
		for name, p := range map[string]struct {
			from *firmware.Image
			to   firmware.Image
		}{"full of a missing image": {nil, missing}, "delta to a missing image": {&a, missing}, "delta from a missing image": {&missing, a}} {
			pk, data := pkg(p.from, p.to, name)
			if err := s.PutPackage(ctx, pk, data); !errors.Is(err, firmware.ErrNotFound) {
				t.Errorf("PutPackage of a %s = %v, want ErrNotFound", name, err)
			}
			checkPackageGone(t, s, pk, true)
		}
	})

	t.Run("DeleteImageDeletesItsPackages", func(t *testing.T) {
		s := open(t)
		a, b, c := threeImages(t, s)
		put := func(from *firmware.Image, to firmware.Image) firmware.Package {
			p, data := pkg(from, to, "x")
			mustPutPackage(t, s, p, data)
			return p
		}
		keep := []firmware.Package{put(nil, a), put(nil, c), put(&a, c)}
		doomed := []firmware.Package{put(nil, b), put(&a, b), put(&b, c)}
		mustDeleteImage(t, s, b.Digest)
		for _, p := range doomed {
			checkPackageGone(t, s, p, true)
		}
		for _, p := range keep {
			got, err := s.PackageFor(ctx, p.Key())
			if err != nil {
				t.Errorf("package %s lost with another image: %v", p.Key(), err)
				continue
			}
			checkPackage(t, got, p)
		}
	})

	t.Run("WrongBytes", func(t *testing.T) {
		s := open(t)
		_, b, _ := threeImages(t, s)
		p, data := pkg(nil, b, "x")
		if err := s.PutPackage(ctx, p, data[:len(data)-1]); err == nil {
			t.Error("PutPackage with bytes shorter than the package succeeded")
		}
		other := bytes.Clone(data)
		other[0] ^= 1
		if err := s.PutPackage(ctx, p, other); err == nil {
			t.Error("PutPackage with bytes of another digest succeeded")
		}
		checkPackageGone(t, s, p, true)
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		_, b, _ := threeImages(t, s)
		p, _ := pkg(nil, b, "never put")
		checkPackageGone(t, s, p, true)
	})

	t.Run("ReturnsCopies", func(t *testing.T) {
		s := open(t)
		_, b, _ := threeImages(t, s)
		p, data := pkg(nil, b, "x")
		put := bytes.Clone(data)
		mustPutPackage(t, s, p, put)
		put[0] ^= 0xff
		got, err := s.PackageData(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		got[1] ^= 0xff
		if again, err := s.PackageData(ctx, p.ID); err != nil || !bytes.Equal(again, data) {
			t.Errorf("package bytes changed through a slice the caller held (%v)", err)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := open(t)
		a, b, _ := threeImages(t, s)
		p, data := pkg(&a, b, "x")
		mustPutPackage(t, s, p, data)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		q, qdata := pkg(nil, b, "y")
		calls := map[string]error{"PutPackage": s.PutPackage(cctx, q, qdata)}
		_, calls["PackageFor"] = s.PackageFor(cctx, p.Key())
		_, calls["Package"] = s.Package(cctx, p.ID)
		_, calls["PackageData"] = s.PackageData(cctx, p.ID)
		for name, err := range calls {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with cancelled context = %v, want context.Canceled", name, err)
			}
		}
		checkPackageGone(t, s, q, true)
	})
}

// added is an image's Added time in a non-UTC zone with nanoseconds.
var added = time.Date(2025, 5, 4, 3, 2, 1, 987654321, time.FixedZone("EEST", 3*3600))

// imageBytes returns n bytes that depend on seed: distinct seeds give
// distinct images.
func imageBytes(seed string, n int) []byte {
	b := make([]byte, 0, n+sha256.Size)
	block := sha256.Sum256([]byte(seed))
	for len(b) < n {
		b = append(b, block[:]...)
		block = sha256.Sum256(block[:])
	}
	return b[:n]
}

func image(data []byte, version, class string) firmware.Image {
	return firmware.Image{
		Digest:  sha256.Sum256(data),
		Size:    int64(len(data)),
		Version: version,
		Class:   class,
		Added:   added,
	}
}

// pkg makes a package record and bytes that install to from from (nil for
// a full image). The bytes are not a real package: a store does not read
// them.
func pkg(from *firmware.Image, to firmware.Image, payload string) (firmware.Package, []byte) {
	source := "nothing"
	if from != nil {
		source = from.Digest.String()
	}
	data := []byte(fmt.Sprintf("package %s -> %s: %s", source, to.Digest, payload))
	m := manifest.Manifest{
		Sequence:      to.Sequence,
		Version:       to.Version,
		Class:         to.Class,
		Format:        manifest.FormatFull,
		PayloadDigest: to.Digest,
		PayloadSize:   uint64(to.Size),
		ImageDigest:   to.Digest,
		ImageSize:     uint64(to.Size),
	}
	if from != nil {
		m.Format = manifest.FormatDelta
		m.PayloadDigest = sha256.Sum256([]byte(payload))
		m.PayloadSize = uint64(len(payload))
		m.PrecursorDigest, m.PrecursorSize = from.Digest, uint64(from.Size)
	}
	return firmware.Package{
		ID:             sha256.Sum256(data),
		Manifest:       m,
		Size:           int64(len(data)),
		KeyFingerprint: "sha256:old",
		Created:        added.Add(time.Minute),
	}, data
}

func mustPutImage(t *testing.T, s firmware.ImageStore, img firmware.Image, data []byte, wantCreated bool) firmware.Image {
	t.Helper()
	got, created, err := s.PutImage(context.Background(), img, data)
	if err != nil {
		t.Fatalf("PutImage(%s/%s): %v", img.Class, img.Version, err)
	}
	if created != wantCreated {
		t.Fatalf("PutImage(%s/%s) created %t, want %t", img.Class, img.Version, created, wantCreated)
	}
	return got
}

func mustDeleteImage(t *testing.T, s firmware.ImageStore, d manifest.Digest) {
	t.Helper()
	if err := s.DeleteImage(context.Background(), d); err != nil {
		t.Fatalf("DeleteImage(%s): %v", d, err)
	}
}

func mustPutPackage(t *testing.T, s firmware.PackageStore, p firmware.Package, data []byte) {
	t.Helper()
	if err := s.PutPackage(context.Background(), p, data); err != nil {
		t.Fatalf("PutPackage(%s): %v", p.Key(), err)
	}
}

func checkImage(t *testing.T, got, want firmware.Image) {
	t.Helper()
	if got.Digest != want.Digest || got.Size != want.Size || got.Version != want.Version ||
		got.Class != want.Class || got.Sequence != want.Sequence || !got.Added.Equal(want.Added) {
		t.Errorf("image = %+v\nwant %+v", got, want)
	}
}

func checkImageCount(t *testing.T, s firmware.ImageStore, want int) {
	t.Helper()
	imgs, err := s.Images(context.Background())
	if err != nil {
		t.Fatalf("Images: %v", err)
	}
	if len(imgs) != want {
		t.Errorf("Images returned %d images, want %d", len(imgs), want)
	}
}

func checkPackage(t *testing.T, got, want firmware.Package) {
	t.Helper()
	if got.ID != want.ID || got.Manifest != want.Manifest || got.Size != want.Size ||
		got.KeyFingerprint != want.KeyFingerprint || !got.Created.Equal(want.Created) {
		t.Errorf("package = %+v\nwant %+v", got, want)
	}
}

// checkPackageGone checks that p is not stored, by key (when byKey), ID
// and bytes.
func checkPackageGone(t *testing.T, s firmware.PackageStore, p firmware.Package, byKey bool) {
	t.Helper()
	ctx := context.Background()
	if byKey {
		if got, err := s.PackageFor(ctx, p.Key()); err == nil && got.ID == p.ID {
			t.Errorf("package %s is still stored under its key", p.ID)
		} else if err != nil && !errors.Is(err, firmware.ErrNotFound) {
			t.Errorf("PackageFor(%s) = %v", p.Key(), err)
		}
	}
	if _, err := s.Package(ctx, p.ID); !errors.Is(err, firmware.ErrNotFound) {
		t.Errorf("Package(%s) = %v, want ErrNotFound", p.ID, err)
	}
	if _, err := s.PackageData(ctx, p.ID); !errors.Is(err, firmware.ErrNotFound) {
		t.Errorf("PackageData(%s) = %v, want ErrNotFound", p.ID, err)
	}
}

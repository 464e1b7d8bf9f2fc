package firmware

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fotahub/fota/delivery/delta"
	"github.com/fotahub/fota/delivery/manifest"
)

// DefaultCacheBytes is the memory Service keeps package bytes in when
// Config.CacheBytes is zero.
const DefaultCacheBytes = 64 << 20

// Why an offer is a full image (Offer.Reason).
const (
	ReasonNoInstalled      = "installed image not given"
	ReasonInstalledUnknown = "installed image is not stored"
	ReasonFullRequested    = "full image requested"
	ReasonDeltaNotSmaller  = "delta package is not smaller than the full one"
	ReasonNoApplier        = "the class declares no delta applier"
	ReasonRaw              = "raw image: delivered as uploaded"
)

// Config wires a Service.
type Config struct {
	// Store keeps images and packages. Required.
	Store Store
	// Key signs packages. Required; see LoadOrCreateKey.
	Key *ecdsa.PrivateKey
	// CacheBytes bounds the memory that holds recently used package bytes
	// for PackageData. Zero means DefaultCacheBytes; negative turns the
	// cache off (every PackageData reads the store).
	CacheBytes int64
	// Delta makes a native delta (FDELTA) from old to new. Nil means
	// delta.Create.
	Delta func(old, new []byte) ([]byte, error)
	// Now is the clock for Added and Created times. Nil means time.Now.
	Now func() time.Time
}

// Validate reports the first missing or bad field.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("firmware: config: Store is nil")
	case c.Key == nil:
		return errors.New("firmware: config: Key is nil")
	case KeyFingerprint(&c.Key.PublicKey) == "":
		return errors.New("firmware: config: Key is not a P-256 key")
	}
	return nil
}

// Service adds and finds images and makes, stores and serves the signed
// packages that install them. It is safe for concurrent use.
type Service struct {
	store     Store
	key       *ecdsa.PrivateKey
	keyFP     string
	makeDelta func(old, new []byte) ([]byte, error)
	now       func() time.Time
	cache     *byteCache // nil: off

	// classMu serializes what keeps a class's images of its profile:
	// declaring or removing a class and adding an image to one.
	classMu sync.Mutex

	builds flight[PackageKey, Package]
	loads  flight[manifest.Digest, []byte]
}

// New returns a Service for cfg, or an error naming the bad field.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{
		store:     cfg.Store,
		key:       cfg.Key,
		keyFP:     KeyFingerprint(&cfg.Key.PublicKey),
		makeDelta: cfg.Delta,
		now:       cfg.Now,
	}
	if s.makeDelta == nil {
		s.makeDelta = delta.Create
	}
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case cfg.CacheBytes == 0:
		s.cache = newByteCache(DefaultCacheBytes)
	case cfg.CacheBytes > 0:
		s.cache = newByteCache(cfg.CacheBytes)
	}
	return s, nil
}

// PublicKey returns the public half of the signing key: what devices
// verify packages with.
func (s *Service) PublicKey() *ecdsa.PublicKey {
	pub := s.key.PublicKey
	return &pub
}

// KeyFingerprint returns the signing key's fingerprint (see the function
// KeyFingerprint).
func (s *Service) KeyFingerprint() string { return s.keyFP }

// AddImage stores data as an image with the version and class and returns
// it with created true; or, for bytes already stored under the same
// version and class, the stored image with created false. profile is the
// image's kind: empty for the class's profile. A raw image for a class
// nobody declared declares the class raw (with its defaults); any other
// mismatch with the class's profile fails with ErrInvalid. It fails with
// ErrInvalid, too, for an empty image or a bad version or class, and with
// ErrConflict when the bytes are stored under another version or class or
// the version names another image of the class.
func (s *Service) AddImage(ctx context.Context, data []byte, version, class string, profile Profile) (Image, bool, error) {
	if err := CheckVersion(version); err != nil {
		return Image{}, false, fmt.Errorf("add image: %w", err)
	}
	s.classMu.Lock()
	defer s.classMu.Unlock()
	c, err := s.Class(ctx, class)
	if err != nil {
		return Image{}, false, fmt.Errorf("add image: %w", err)
	}
	switch {
	case len(data) == 0:
		return Image{}, false, fmt.Errorf("add image: %w: empty image", ErrInvalid)
	case uint64(len(data)) > manifest.MaxSize:
		return Image{}, false, fmt.Errorf("add image: %w: %d bytes, more than %d", ErrInvalid, len(data), uint64(manifest.MaxSize))
	case profile != "" && profile != ProfileNative && profile != ProfileRaw:
		return Image{}, false, fmt.Errorf("add image: %w: format %q is not native or raw", ErrInvalid, profile)
	case profile == "":
		profile = c.Profile
	case profile != c.Profile && c.Declared:
		return Image{}, false, fmt.Errorf("add image: %w: class %q takes %s images (its profile), not %s",
			ErrInvalid, class, c.Profile, profile)
	case profile == ProfileRaw:
		c = Class{Name: class, Profile: ProfileRaw}
		if c, err = s.putClassLocked(ctx, c); err != nil {
			return Image{}, false, fmt.Errorf("add image: declare class %q raw: %w", class, err)
		}
	}
	img := Image{
		Digest:  sha256.Sum256(data),
		Size:    int64(len(data)),
		Version: version,
		Class:   class,
		Raw:     profile == ProfileRaw,
		Added:   s.now().UTC().Truncate(time.Second),
	}
	return s.store.PutImage(ctx, img, data)
}

// Images returns every image, by class and then by sequence.
func (s *Service) Images(ctx context.Context) ([]Image, error) {
	imgs, err := s.store.Images(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(imgs, func(a, b Image) int {
		return cmp.Or(strings.Compare(a.Class, b.Class), cmp.Compare(a.Sequence, b.Sequence))
	})
	return imgs, nil
}

// Image finds an image by reference: its digest (64 hex digits) or its
// version. class, when not empty, must be the image's class; a version
// without a class must name an image in one class only (else
// ErrAmbiguous).
func (s *Service) Image(ctx context.Context, ref, class string) (Image, error) {
	if looksLikeDigest(ref) {
		d, err := ParseDigest(ref)
		if err != nil {
			return Image{}, err
		}
		img, err := s.store.Image(ctx, d)
		if err != nil {
			return Image{}, err
		}
		if class != "" && img.Class != class {
			return Image{}, fmt.Errorf("image %s is of class %q, not %q: %w", d, img.Class, class, ErrClassMismatch)
		}
		return img, nil
	}
	if ref == "" {
		return Image{}, fmt.Errorf("%w: no image digest or version given", ErrInvalid)
	}
	if class != "" {
		return s.store.ImageByVersion(ctx, class, ref)
	}
	imgs, err := s.Images(ctx)
	if err != nil {
		return Image{}, err
	}
	var found []Image
	for _, img := range imgs {
		if img.Version == ref {
			found = append(found, img)
		}
	}
	switch len(found) {
	case 0:
		return Image{}, fmt.Errorf("image version %q: %w", ref, ErrNotFound)
	case 1:
		return found[0], nil
	}
	classes := make([]string, len(found))
	for i, img := range found {
		classes[i] = fmt.Sprintf("%q", img.Class)
	}
	return Image{}, fmt.Errorf("version %q exists in classes %s; give the class: %w", ref, strings.Join(classes, ", "), ErrAmbiguous)
}

// ImageData returns the image's bytes, a copy the caller owns.
func (s *Service) ImageData(ctx context.Context, digest manifest.Digest) ([]byte, error) {
	return s.store.ImageData(ctx, digest)
}

// RemoveImage removes the image and every package made from or to it, or
// fails with ErrNotFound.
func (s *Service) RemoveImage(ctx context.Context, digest manifest.Digest) error {
	if err := s.store.DeleteImage(ctx, digest); err != nil {
		return err
	}
	if s.cache != nil {
		// The removed packages' IDs are not known here; removals are rare.
		s.cache.clear()
	}
	return nil
}

// Request asks for a package that brings a device to an image.
type Request struct {
	// Image is the target image's digest (hex) or version.
	Image string
	// Class is the device's class; optional, but when given the target
	// (and the installed image, if stored) must be of it.
	Class string
	// Installed is the digest of the image the device runs; the zero
	// digest when unknown.
	Installed manifest.Digest
	// Full asks for the full image even when a delta could be made.
	Full bool
}

// Offer is the package MakePackage chose, with what it was chosen over.
type Offer struct {
	Package
	// FullSize is the size of the full-image package of the target.
	FullSize int64
	// DeltaSize is the size of the delta package when one was made,
	// chosen or not; zero when none was.
	DeltaSize int64
	// Reason says why the package is a full image (one of the Reason
	// constants); empty for a delta.
	Reason string
	// Raw is set when the package is a raw image itself (see rawPackage).
	Raw bool
}

// rawPackage is the package of a raw image: the image's bytes, so its ID
// (the SHA-256 of its bytes, as for any package) is the image's digest.
// Its manifest is not sent; it describes the image for the driver and the
// records.
func rawPackage(img Image) Package {
	return Package{
		ID: img.Digest,
		Manifest: manifest.Manifest{Sequence: img.Sequence, Version: img.Version, Class: img.Class,
			Format: manifest.FormatFull, ImageDigest: img.Digest, ImageSize: uint64(img.Size)},
		Size:    img.Size,
		Created: img.Added,
	}
}

// MakePackage returns the package that brings a device from req.Installed
// to req.Image: a delta when the installed image is stored, of the same
// class and older than the target, and the delta package is smaller than
// the full one; else the full image. Packages are made on first request
// and stored; concurrent requests for the same package make it once.
//
// It fails with ErrNotFound for an unknown target, ErrClassMismatch when
// the classes disagree, and ErrNotNewer when the device runs the target or
// a later image already.
func (s *Service) MakePackage(ctx context.Context, req Request) (Offer, error) {
	target, err := s.Image(ctx, req.Image, req.Class)
	if err != nil {
		return Offer{}, fmt.Errorf("make package: %w", err)
	}
	var installed *Image
	reason := ReasonNoInstalled
	if req.Installed != (manifest.Digest{}) {
		inst, err := s.store.Image(ctx, req.Installed)
		switch {
		case err == nil:
			installed = &inst
		case errors.Is(err, ErrNotFound):
			reason = ReasonInstalledUnknown
		default:
			return Offer{}, fmt.Errorf("make package: %w", err)
		}
	}
	if installed != nil {
		switch {
		case installed.Class != target.Class:
			return Offer{}, fmt.Errorf("make package: installed image %s is of class %q, target %s of class %q: %w",
				installed.Digest, installed.Class, target.Digest, target.Class, ErrClassMismatch)
		case installed.Digest == target.Digest:
			return Offer{}, fmt.Errorf("make package: the device runs %s (%s) already: %w", target.Version, target.Digest, ErrNotNewer)
		case installed.Sequence >= target.Sequence:
			return Offer{}, fmt.Errorf("make package: %s (sequence %d) was added before the installed %s (sequence %d); "+
				"devices refuse it: %w", target.Version, target.Sequence, installed.Version, installed.Sequence, ErrNotNewer)
		}
	}

	if target.Raw {
		return Offer{Package: rawPackage(target), FullSize: target.Size, Raw: true, Reason: ReasonRaw}, nil
	}
	class, err := s.Class(ctx, target.Class)
	if err != nil {
		return Offer{}, fmt.Errorf("make package: %w", err)
	}
	full, err := s.packageFor(ctx, PackageKey{To: target.Digest, Format: manifest.FormatFull}, &target, nil)
	if err != nil {
		return Offer{}, fmt.Errorf("make package: %w", err)
	}
	offer := Offer{Package: full, FullSize: full.Size, Reason: reason}
	switch {
	case installed == nil:
		return offer, nil
	case req.Full:
		offer.Reason = ReasonFullRequested
		return offer, nil
	case !class.Delta:
		offer.Reason = ReasonNoApplier
		return offer, nil
	}
	key := PackageKey{From: installed.Digest, To: target.Digest, Format: manifest.FormatDelta}
	d, err := s.packageFor(ctx, key, &target, installed)
	if err != nil {
		return Offer{}, fmt.Errorf("make package: %w", err)
	}
	offer.DeltaSize = d.Size
	if d.Size < full.Size {
		offer.Package, offer.Reason = d, ""
	} else {
		offer.Reason = ReasonDeltaNotSmaller
	}
	return offer, nil
}

// Package returns a stored package's metadata.
func (s *Service) Package(ctx context.Context, id manifest.Digest) (Package, error) {
	return s.store.Package(ctx, id)
}

// PackageData returns a package's bytes for serving: a stored package's,
// or a raw image's (its own package, see rawPackage). The slice is shared
// with other callers and the cache: it must not be modified. Bytes served
// recently come from memory without a copy.
func (s *Service) PackageData(ctx context.Context, id manifest.Digest) ([]byte, error) {
	if s.cache == nil {
		return s.packageData(ctx, id)
	}
	if b, ok := s.cache.get(id); ok {
		return b, nil
	}
	return s.loads.do(ctx, id, func() ([]byte, error) {
		gen := s.cache.generation()
		b, err := s.packageData(context.WithoutCancel(ctx), id)
		if err != nil {
			return nil, err
		}
		s.cache.add(id, b, gen)
		return b, nil
	})
}

// packageData reads a stored package's bytes, or a raw image's.
func (s *Service) packageData(ctx context.Context, id manifest.Digest) ([]byte, error) {
	b, err := s.store.PackageData(ctx, id)
	if !errors.Is(err, ErrNotFound) {
		return b, err
	}
	if img, ierr := s.store.Image(ctx, id); ierr != nil || !img.Raw {
		return nil, err
	}
	return s.store.ImageData(ctx, id)
}

// packageFor returns the package stored under key if the current key
// signed it, else builds (or signs again) and stores it, once for all
// concurrent callers.
func (s *Service) packageFor(ctx context.Context, key PackageKey, target, precursor *Image) (Package, error) {
	p, err := s.store.PackageFor(ctx, key)
	switch {
	case err == nil && p.KeyFingerprint == s.keyFP:
		return p, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return Package{}, err
	}
	// The build goes on when the caller that started it gives up: others
	// may be waiting for it, and its result is stored for the next ones.
	return s.builds.do(ctx, key, func() (Package, error) {
		return s.build(context.WithoutCancel(ctx), key, target, precursor)
	})
}

// build makes the package for key, stores it and caches its bytes.
func (s *Service) build(ctx context.Context, key PackageKey, target, precursor *Image) (Package, error) {
	var gen uint64
	if s.cache != nil {
		gen = s.cache.generation()
	}
	// A build of this key may have finished between the caller's lookup
	// and this one; or the stored package is signed with another key, and
	// only needs signing again.
	old, err := s.store.PackageFor(ctx, key)
	var payload []byte
	switch {
	case err == nil && old.KeyFingerprint == s.keyFP:
		return old, nil
	case err == nil:
		data, err := s.store.PackageData(ctx, old.ID)
		if err != nil {
			return Package{}, fmt.Errorf("sign %s again: %w", key, err)
		}
		if _, payload, err = manifest.Parse(data, nil); err != nil {
			return Package{}, fmt.Errorf("sign %s again: stored package %s: %w", key, old.ID, err)
		}
	case errors.Is(err, ErrNotFound):
		if payload, err = s.payload(ctx, key, target, precursor); err != nil {
			return Package{}, err
		}
	default:
		return Package{}, err
	}

	m := manifest.Manifest{
		Sequence:    target.Sequence,
		Version:     target.Version,
		Class:       target.Class,
		Format:      key.Format,
		ImageDigest: target.Digest,
		ImageSize:   uint64(target.Size),
	}
	if key.Format.IsDelta() {
		m.PrecursorDigest, m.PrecursorSize = precursor.Digest, uint64(precursor.Size)
	}
	data, err := manifest.Build(m, payload, s.key)
	if err != nil {
		return Package{}, fmt.Errorf("build %s: %w", key, err)
	}
	// Check what devices will check before anything is stored.
	if m, _, err = manifest.Parse(data, &s.key.PublicKey); err != nil {
		return Package{}, fmt.Errorf("build %s: package does not verify: %w", key, err)
	}
	p := Package{
		ID:             sha256.Sum256(data),
		Manifest:       m,
		Size:           int64(len(data)),
		KeyFingerprint: s.keyFP,
		Created:        s.now().UTC().Truncate(time.Second),
	}
	if err := s.store.PutPackage(ctx, p, data); err != nil {
		return Package{}, err
	}
	if s.cache != nil {
		if old.ID != (manifest.Digest{}) && old.ID != p.ID {
			s.cache.remove(old.ID)
		}
		s.cache.add(p.ID, data, gen)
	}
	return p, nil
}

// payload returns the full image, or makes the delta and checks that it
// rebuilds the target.
func (s *Service) payload(ctx context.Context, key PackageKey, target, precursor *Image) ([]byte, error) {
	to, err := s.store.ImageData(ctx, target.Digest)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", key, err)
	}
	if !key.Format.IsDelta() {
		return to, nil
	}
	from, err := s.store.ImageData(ctx, precursor.Digest)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", key, err)
	}
	patch, err := s.makeDelta(from, to)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", key, err)
	}
	// A wrong delta would cost a fleet its downloads before each device's
	// digest check refused it: apply it here first.
	got, err := delta.Apply(from, patch)
	if err != nil {
		return nil, fmt.Errorf("build %s: the delta does not apply: %w", key, err)
	}
	if !bytes.Equal(got, to) {
		return nil, fmt.Errorf("build %s: the delta does not rebuild the image", key)
	}
	return patch, nil
}

package firmware

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fotahub/fota/delivery/manifest"
)

// Errors callers branch on. Stores return them too (wrapped), so that the
// Service and the API see the same sentinels whatever the backend.
var (
	// ErrNotFound: no image or package with that digest, version or ID.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the same bytes are stored under another version or
	// class, or the version already names other bytes in the class.
	ErrConflict = errors.New("conflicts with a stored image")
	// ErrInvalid: a version, class or image the Service refuses.
	ErrInvalid = errors.New("invalid")
	// ErrClassMismatch: the installed image, the target image and the
	// requested class do not all name the same device class.
	ErrClassMismatch = errors.New("device class mismatch")
	// ErrNotNewer: the target image is the installed one or was added
	// before it, so its sequence is not above the installed one and the
	// device would refuse the package.
	ErrNotNewer = errors.New("image is not newer than the installed one")
	// ErrAmbiguous: a version given without a class names images in
	// several classes.
	ErrAmbiguous = errors.New("ambiguous image version")
)

// Image is a stored firmware image's metadata; its bytes are kept apart
// (ImageStore.ImageData) so that listing images does not read them.
type Image struct {
	Digest  manifest.Digest // SHA-256 of the bytes: the image's identity
	Size    int64
	Version string
	Class   string
	// Sequence is the manifest sequence number of every package that
	// installs this image: given by the store when the image is added,
	// monotonic per class (see the package documentation).
	Sequence uint64
	// Raw is set for an image of a raw class (ProfileRaw): it is
	// delivered as uploaded, never wrapped in a package or patched.
	Raw   bool
	Added time.Time
}

// PackageKey identifies a package by what it does: it installs To, as
// Format, on a device running From (the zero digest for a full image).
type PackageKey struct {
	From   manifest.Digest
	To     manifest.Digest
	Format manifest.Format
}

// String returns "full:TO" or "delta:FROM:TO" with digests in hex.
func (k PackageKey) String() string {
	if k.Format.IsDelta() {
		return k.Format.String() + ":" + k.From.String() + ":" + k.To.String()
	}
	return k.Format.String() + ":" + k.To.String()
}

// Package is a stored signed package's metadata; its bytes are kept apart
// (PackageStore.PackageData).
type Package struct {
	ID       manifest.Digest // SHA-256 of the package bytes
	Manifest manifest.Manifest
	Size     int64 // bytes of the whole package: envelope and payload
	// KeyFingerprint identifies the key that signed the package (see
	// KeyFingerprint).
	KeyFingerprint string
	Created        time.Time
}

// Key returns the key the package is stored under.
func (p *Package) Key() PackageKey {
	return PackageKey{From: p.Manifest.PrecursorDigest, To: p.Manifest.ImageDigest, Format: p.Manifest.Format}
}

// ImageStore keeps images. Implementations are safe for concurrent use, make
// each method atomic, return errors wrapping ErrNotFound and ErrConflict
// where documented, and never return slices the caller's later changes
// could alter, or that alias the caller's.
type ImageStore interface {
	// PutImage stores img (Digest and Size must be those of data) and
	// gives it the next sequence number of its class; img.Sequence is
	// ignored. If an image with the digest is stored it returns that image
	// and created false, changing nothing, or ErrConflict if its version or
	// class differ from img's. It returns ErrConflict, too, when the class
	// holds another image with img's version.
	PutImage(ctx context.Context, img Image, data []byte) (stored Image, created bool, err error)
	// Image returns the image with the digest, or ErrNotFound.
	Image(ctx context.Context, digest manifest.Digest) (Image, error)
	// ImageByVersion returns the class's image with the version, or
	// ErrNotFound.
	ImageByVersion(ctx context.Context, class, version string) (Image, error)
	// Images returns every stored image, in any order, without the bytes.
	Images(ctx context.Context) ([]Image, error)
	// ImageData returns the image's bytes, or ErrNotFound.
	ImageData(ctx context.Context, digest manifest.Digest) ([]byte, error)
	// DeleteImage removes the image and every package made from or to it,
	// or returns ErrNotFound. The class's sequence counter is kept.
	DeleteImage(ctx context.Context, digest manifest.Digest) error
}

// PackageStore keeps packages by key and by ID; one package per key.
type PackageStore interface {
	// PutPackage stores p and its bytes under p.ID (the SHA-256 of data,
	// whose length is p.Size) and under p.Key(), replacing and deleting
	// the package stored under that key before, if any. It returns
	// ErrNotFound when the image the package installs, or for a delta its
	// precursor, is not stored (it was removed meanwhile).
	PutPackage(ctx context.Context, p Package, data []byte) error
	// PackageFor returns the package stored under key, or ErrNotFound.
	PackageFor(ctx context.Context, key PackageKey) (Package, error)
	// Package returns the package with the ID, or ErrNotFound.
	Package(ctx context.Context, id manifest.Digest) (Package, error)
	// PackageData returns the package's bytes, or ErrNotFound.
	PackageData(ctx context.Context, id manifest.Digest) ([]byte, error)
}

// ClassStore keeps declared device classes by name.
type ClassStore interface {
	// PutClass creates or replaces the class with c.Name.
	PutClass(ctx context.Context, c Class) error
	// Class returns the declared class, or ErrNotFound.
	Class(ctx context.Context, name string) (Class, error)
	// Classes returns every declared class, in any order.
	Classes(ctx context.Context) ([]Class, error)
	// DeleteClass removes the declared class, or returns ErrNotFound.
	DeleteClass(ctx context.Context, name string) error
}

// Store is what a Service needs: images, packages and classes in one
// backend, so that removing an image removes its packages atomically.
type Store interface {
	ImageStore
	PackageStore
	ClassStore
}

// ParseDigest reads a digest in hex, 64 digits, either case.
func ParseDigest(s string) (manifest.Digest, error) {
	var d manifest.Digest
	if err := d.UnmarshalText([]byte(s)); err != nil {
		return d, fmt.Errorf("%w: %q is not a SHA-256 digest (64 hex digits)", ErrInvalid, s)
	}
	return d, nil
}

// looksLikeDigest reports whether s would parse as a digest.
func looksLikeDigest(s string) bool {
	if len(s) != 2*len(manifest.Digest{}) {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// checkName checks a version or class: 1 to max bytes of UTF-8 without
// control characters.
func checkName(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	case len(s) > max:
		return fmt.Errorf("%w: %s is %d bytes, more than %d", ErrInvalid, what, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not UTF-8", ErrInvalid, what)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s %q holds a control character", ErrInvalid, what, s)
		}
	}
	return nil
}

// CheckVersion reports whether a version string is one an image may have:
// 1 to manifest.MaxVersionLen bytes of UTF-8, no control characters, and
// not 64 hex digits (which would read as a digest).
func CheckVersion(v string) error {
	if err := checkName("version", v, manifest.MaxVersionLen); err != nil {
		return err
	}
	if looksLikeDigest(v) {
		return fmt.Errorf("%w: version %q looks like a SHA-256 digest", ErrInvalid, v)
	}
	return nil
}

// CheckClass reports whether a device class is one an image may have: 1 to
// manifest.MaxClassLen bytes of UTF-8, no control characters.
func CheckClass(c string) error { return checkName("class", c, manifest.MaxClassLen) }

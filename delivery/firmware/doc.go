// Package firmware owns what fotad delivers: firmware images, kept by
// content, and the signed packages made from them (a full image or a delta
// from the image a device runs), made on demand and kept for reuse.
//
// It declares the storage it needs as small interfaces (ImageStore,
// PackageStore); package store implements them on bbolt and package
// store/storetest holds their conformance suite.
//
// # Images
//
// An image is its bytes, addressed by their SHA-256 digest, with a version
// string and a device class. It never changes once added: adding the same
// bytes again returns the stored image, and is a conflict (ErrConflict) if
// the version or class differ. A version names at most one image per class.
// Versions that look like a digest (64 hex digits) are refused, so that a
// reference to an image is unambiguous: a digest or a version.
//
// # Sequence numbers
//
// A manifest's sequence number is what protects devices from rollback: a
// device refuses a package whose sequence is not above that of the image it
// runs. The store gives each image its sequence when it is added: one more
// than the last one given in its class, from a per-class counter that never
// goes down, even when images are removed. Every package that installs an
// image carries the image's sequence, so the full and the delta packages of
// one image agree, and an image added later always outranks one added
// earlier in the same class. Rolling back therefore means adding the old
// code again as a new image (a new build, with a new version). Removing an
// image and adding the same bytes again gives it a new, higher sequence;
// the packages made for it before were removed with it.
//
// # Delta or full
//
// Service.MakePackage returns a delta (delivery/delta's FDELTA format,
// manifest.FormatDelta, with the installed image as precursor) when the
// device's installed image is known and stored, belongs to the same class
// and was added before the target, and the delta package is smaller than
// the full one; otherwise the full image. The offer says why it is a full
// image. Before a delta is signed it is applied to the precursor on the
// server and must rebuild the target exactly. Deltas are made without the
// Thumb-2 branch transform (delta.Options.Thumb) unless Config.Delta says
// otherwise: a device class that applies it could opt in. Requesting the image the device runs, or an older one, fails with
// ErrNotNewer: the device would refuse the package.
//
// Packages are keyed by (from digest, to digest, format) and stored with
// their bytes, so a delta is computed once and served to every device on
// the same precursor; a delta that lost to the full image stays stored
// too, so that the choice is not recomputed. Concurrent requests for the
// same package compute it once; the others wait for it. A package's ID is
// the SHA-256 of its bytes. Recently served package bytes are kept in
// memory (Config.CacheBytes) and handed out as shared read-only slices.
//
// # Signing key
//
// Packages are signed with one ECDSA P-256 key (see LoadOrCreateKey). Each
// stored package records the fingerprint of the key that signed it
// (KeyFingerprint); after a key change a stored package is signed again
// with the new key the next time it is asked for, reusing its payload, so
// deltas are not recomputed. The private key never leaves the Service: no
// method returns it and no error message quotes it.
package firmware

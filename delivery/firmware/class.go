package firmware

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Profile is the kind of package a device class takes.
type Profile string

// Profiles.
const (
	// ProfileNative: fotad's signed package (docs/package-format.md), a
	// full image or, for a class with a delta applier, a delta.
	ProfileNative Profile = "native"
	// ProfileRaw: the uploaded file byte for byte, as its vendor built it
	// (a signed MCUboot image, a vendor-wrapped blob). fotad neither wraps
	// nor patches it; the device checks it the vendor's way.
	ProfileRaw Profile = "raw"
)

// Delivery methods of a class (Class.Method).
const (
	MethodAuto = "auto" // from the device's /5/0/9: pull when it can
	MethodPull = "pull" // Package URI, Block2
	MethodPush = "push" // Block1 writes of /5/0/0
)

// Package URI schemes of a class (Class.Scheme).
const (
	SchemeAuto  = "auto"  // coaps for a device with DTLS, coap for a NoSec one
	SchemeCoAPS = "coaps" // the DTLS listener; the device's identity owns the path
	SchemeCoAP  = "coap"  // the plain listener; the path's 128 random bits guard it
)

// Success checks (Class.Success): how a class's devices show an update
// worked. Every check a class lists must hold.
const (
	SuccessResult  = "result"  // Update Result (/5/0/5) 1
	SuccessVersion = "version" // Firmware Version (/3/0/3) is the image's version
	SuccessPackage = "package" // PkgVersion (/5/0/7) is the image's version
)

// SuccessChecks lists the success checks.
var SuccessChecks = []string{SuccessResult, SuccessVersion, SuccessPackage}

// Class is a device class: what package its devices take and how fotad
// delivers it. Images belong to a class; devices name theirs.
type Class struct {
	Name    string
	Profile Profile
	// Delta is set when the devices apply fotad's delta packages (FDELTA,
	// docs/delta-format.md); only native classes may have it. Devices of
	// any other class get full images.
	Delta bool
	// Method is MethodAuto, MethodPull or MethodPush.
	Method string
	// BlockSize caps the Block2 size of downloads (16-1024, a power of
	// two; 0: the link's). A device asking for less is always served less.
	BlockSize int
	// Scheme is the Package URI's scheme: SchemeAuto, SchemeCoAPS or
	// SchemeCoAP.
	Scheme string
	// Deadline bounds one device's update (0: the server's default).
	Deadline time.Duration
	// Success lists the checks (SuccessResult, SuccessVersion, SuccessPackage)
	// that all hold when an update worked.
	Success []string
	// Declared is set for a class stored with PutClass; a class fotad
	// knows only from its images has the default profile.
	Declared bool
	Changed  time.Time
}

// DefaultClass is the profile of a class nobody declared: fotad's native
// package with deltas (what fotad's own client and fotasim's native
// personality take), the method the device offers, and success when the
// device reports result 1 and runs the target version.
func DefaultClass(name string) Class {
	return Class{Name: name, Profile: ProfileNative, Delta: true, Method: MethodAuto, Scheme: SchemeAuto,
		Success: []string{SuccessResult, SuccessVersion}}
}

// Normalize fills empty fields with their defaults: MethodAuto,
// SchemeAuto, and the result and version checks; and sorts Success.
func (c *Class) Normalize() {
	if c.Profile == "" {
		c.Profile = ProfileNative
	}
	if c.Method == "" {
		c.Method = MethodAuto
	}
	if c.Scheme == "" {
		c.Scheme = SchemeAuto
	}
	if len(c.Success) == 0 {
		c.Success = []string{SuccessResult, SuccessVersion}
	}
	slices.SortFunc(c.Success, func(a, b string) int { return slices.Index(SuccessChecks, a) - slices.Index(SuccessChecks, b) })
	c.Success = slices.Compact(c.Success)
}

// Validate reports the first field out of range, wrapping ErrInvalid.
func (c *Class) Validate() error {
	if err := CheckClass(c.Name); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: class %q: %s", ErrInvalid, c.Name, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Profile != ProfileNative && c.Profile != ProfileRaw:
		return bad("profile %q is not native or raw", c.Profile)
	case c.Delta && c.Profile != ProfileNative:
		return bad("a raw class takes the vendor's file as it is: it has no delta applier")
	case !slices.Contains([]string{MethodAuto, MethodPull, MethodPush}, c.Method):
		return bad("method %q is not auto, pull or push", c.Method)
	case c.BlockSize != 0 && (c.BlockSize < 16 || c.BlockSize > 1024 || c.BlockSize&(c.BlockSize-1) != 0):
		return bad("block size %d is not a power of two from 16 to 1024", c.BlockSize)
	case !slices.Contains([]string{SchemeAuto, SchemeCoAPS, SchemeCoAP}, c.Scheme):
		return bad("scheme %q is not auto, coaps or coap", c.Scheme)
	case c.Deadline < 0:
		return bad("negative deadline %s", c.Deadline)
	case len(c.Success) == 0:
		return bad("no success check (%s)", strings.Join(SuccessChecks, ", "))
	}
	for _, s := range c.Success {
		if !slices.Contains(SuccessChecks, s) {
			return bad("success check %q is not one of %s", s, strings.Join(SuccessChecks, ", "))
		}
	}
	return nil
}

// Has reports whether the class lists the success check.
func (c *Class) Has(check string) bool { return slices.Contains(c.Success, check) }

// Class returns the named class: the declared one, or DefaultClass for a
// class nobody declared.
func (s *Service) Class(ctx context.Context, name string) (Class, error) {
	if err := CheckClass(name); err != nil {
		return Class{}, err
	}
	c, err := s.store.Class(ctx, name)
	switch {
	case err == nil:
		c.Declared = true
		return c, nil
	case errors.Is(err, ErrNotFound):
		return DefaultClass(name), nil
	}
	return Class{}, fmt.Errorf("class %q: %w", name, err)
}

// Classes returns the declared classes and, with the default profile, the
// classes of stored images nobody declared; by name.
func (s *Service) Classes(ctx context.Context) ([]Class, error) {
	declared, err := s.store.Classes(ctx)
	if err != nil {
		return nil, err
	}
	imgs, err := s.store.Images(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]Class{}
	for _, c := range declared {
		c.Declared = true
		byName[c.Name] = c
	}
	for _, img := range imgs {
		if _, ok := byName[img.Class]; !ok {
			byName[img.Class] = DefaultClass(img.Class)
		}
	}
	out := make([]Class, 0, len(byName))
	for _, c := range byName {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Class) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// PutClass declares c (its empty fields defaulted, see Normalize),
// replacing the class with its name, and returns it as stored. It fails
// with ErrInvalid for a bad field and with ErrConflict when the class
// holds images of the other profile: the images a class holds are
// delivered its way.
func (s *Service) PutClass(ctx context.Context, c Class) (Class, error) {
	s.classMu.Lock()
	defer s.classMu.Unlock()
	return s.putClassLocked(ctx, c)
}

func (s *Service) putClassLocked(ctx context.Context, c Class) (Class, error) {
	c.Normalize()
	if err := c.Validate(); err != nil {
		return Class{}, err
	}
	imgs, err := s.classImages(ctx, c.Name)
	if err != nil {
		return Class{}, err
	}
	for _, img := range imgs {
		if img.Raw != (c.Profile == ProfileRaw) {
			return Class{}, fmt.Errorf("class %q holds image %s (%s) of the %s profile; remove it first: %w",
				c.Name, img.Version, img.Digest, profileOf(img), ErrConflict)
		}
	}
	c.Declared, c.Changed = true, s.now().UTC().Truncate(time.Second)
	if err := s.store.PutClass(ctx, c); err != nil {
		return Class{}, fmt.Errorf("put class %q: %w", c.Name, err)
	}
	return c, nil
}

// RemoveClass removes a declared class; it fails with ErrNotFound for a
// class not declared and with ErrConflict while images of the class are
// stored (they would change profile).
func (s *Service) RemoveClass(ctx context.Context, name string) error {
	if err := CheckClass(name); err != nil {
		return err
	}
	s.classMu.Lock()
	defer s.classMu.Unlock()
	if _, err := s.store.Class(ctx, name); err != nil {
		return fmt.Errorf("class %q: %w", name, err)
	}
	imgs, err := s.classImages(ctx, name)
	if err != nil {
		return err
	}
	if len(imgs) > 0 {
		return fmt.Errorf("class %q holds %d images; remove them first: %w", name, len(imgs), ErrConflict)
	}
	if err := s.store.DeleteClass(ctx, name); err != nil {
		return fmt.Errorf("remove class %q: %w", name, err)
	}
	return nil
}

func (s *Service) classImages(ctx context.Context, class string) ([]Image, error) {
	imgs, err := s.store.Images(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(imgs, func(img Image) bool { return img.Class != class }), nil
}

func profileOf(img Image) Profile {
	if img.Raw {
		return ProfileRaw
	}
	return ProfileNative
}

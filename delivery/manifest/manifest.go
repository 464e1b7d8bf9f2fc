package manifest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Errors callers branch on; every error of this package that is about a
// package's content wraps exactly one of them.
var (
	// ErrMalformed: the bytes are not a package of this format, or the
	// manifest is not well formed, names an unknown payload format or
	// insane sizes; also trailing bytes after the payload.
	ErrMalformed = errors.New("malformed firmware package")
	// ErrSignature: the signature does not verify with the key, or the
	// manifest is not the one the signature covers.
	ErrSignature = errors.New("firmware package signature check failed")
	// ErrDigest: the payload does not match the manifest's payload digest
	// and size (a payload cut short wraps io.ErrUnexpectedEOF too).
	ErrDigest = errors.New("firmware payload does not match its manifest")
	// ErrTooLarge: the envelope is larger than the verifier may buffer, or
	// a payload is larger than MaxSize.
	ErrTooLarge = errors.New("firmware package too large")
)

// Limits of the format. A device may rely on them: an envelope Build makes
// never exceeds MaxEnvelope bytes, and every size fits in 32 bits.
const (
	MaxSize       = 1<<32 - 1 // bytes of payload, image or precursor
	MaxClassLen   = 64        // bytes of Manifest.Class
	MaxVersionLen = 64        // bytes of Manifest.Version
	// MaxEnvelope is the largest envelope header (all bytes before the first
	// payload byte) a valid package can have: a delta manifest with the
	// longest class and version and the largest numbers.
	MaxEnvelope = 445
)

// Format says what the payload is and so how a device installs it.
type Format uint8

// Payload formats.
const (
	FormatFull   Format = 1 // raw image
	FormatDelta  Format = 2 // our native streaming delta (delivery/delta, "FDELTA")
	FormatPelion Format = 3 // PELION/BSDIFF001 (arm-patch-stream)
)

var formatNames = [...]string{FormatFull: "full", FormatDelta: "delta", FormatPelion: "pelion"}

// String returns "full", "delta" or "pelion", or "Format(n)" for an unknown
// value.
func (f Format) String() string {
	if f.known() {
		return formatNames[f]
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

func (f Format) known() bool { return f >= FormatFull && f <= FormatPelion }

// IsDelta reports whether the payload is a patch against a precursor image.
func (f Format) IsDelta() bool { return f == FormatDelta || f == FormatPelion }

// ParseFormat is the inverse of Format.String for the known formats.
func ParseFormat(s string) (Format, error) {
	for f := FormatFull; f <= FormatPelion; f++ {
		if formatNames[f] == s {
			return f, nil
		}
	}
	return 0, fmt.Errorf("unknown payload format %q (want full, delta or pelion)", s)
}

// MarshalText implements encoding.TextMarshaler with the String form.
func (f Format) MarshalText() ([]byte, error) {
	if !f.known() {
		return nil, fmt.Errorf("unknown payload format %d", uint8(f))
	}
	return []byte(f.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Format) UnmarshalText(b []byte) error {
	v, err := ParseFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Digest is a SHA-256 digest.
type Digest [32]byte

// String returns the digest in lower-case hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText implements encoding.TextMarshaler with the hex form.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler for 64 hex digits.
func (d *Digest) UnmarshalText(b []byte) error {
	if len(b) != 2*len(d) {
		return fmt.Errorf("digest: want %d hex digits, have %d", 2*len(d), len(b))
	}
	var v Digest
	if _, err := hex.Decode(v[:], b); err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	*d = v
	return nil
}

// Manifest is what the signature covers: which image a package installs,
// for which devices, and how to check what arrives.
type Manifest struct {
	Sequence        uint64 // monotonic; a device refuses a sequence not above its installed one
	Version         string // firmware version string, e.g. "2.4.1"
	Class           string // device class
	Format          Format
	PayloadDigest   Digest
	PayloadSize     uint64
	ImageDigest     Digest // the image installed after applying the payload
	ImageSize       uint64
	PrecursorDigest Digest // delta formats: the image the delta applies to
	PrecursorSize   uint64
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// validate checks the rules every manifest of a package obeys; decoding
// applies it too, so Build cannot make what a device refuses.
func (m *Manifest) validate() error {
	switch {
	case !m.Format.known():
		return malformed("unknown payload format %d", uint8(m.Format))
	case m.Class == "":
		return malformed("empty class")
	case len(m.Class) > MaxClassLen:
		return malformed("class is %d bytes, more than %d", len(m.Class), MaxClassLen)
	case !utf8.ValidString(m.Class):
		return malformed("class is not UTF-8")
	case m.Version == "":
		return malformed("empty version")
	case len(m.Version) > MaxVersionLen:
		return malformed("version is %d bytes, more than %d", len(m.Version), MaxVersionLen)
	case !utf8.ValidString(m.Version):
		return malformed("version is not UTF-8")
	case m.ImageSize == 0 || m.ImageSize > MaxSize:
		return malformed("image size %d out of range 1..%d", m.ImageSize, uint64(MaxSize))
	case m.PayloadSize == 0 || m.PayloadSize > MaxSize:
		return malformed("payload size %d out of range 1..%d", m.PayloadSize, uint64(MaxSize))
	}
	if !m.Format.IsDelta() {
		switch {
		case m.PayloadSize != m.ImageSize || m.PayloadDigest != m.ImageDigest:
			return malformed("full image: payload digest and size differ from the image's")
		case m.PrecursorSize != 0 || m.PrecursorDigest != (Digest{}):
			return malformed("full image with a precursor")
		}
		return nil
	}
	if m.PrecursorSize == 0 || m.PrecursorSize > MaxSize {
		return malformed("%s: precursor size %d out of range 1..%d", m.Format, m.PrecursorSize, uint64(MaxSize))
	}
	return nil
}

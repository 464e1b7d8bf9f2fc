package rawimage

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"
)

// Vendor blob layout: magic "VNDR", format version byte, version-string
// length byte and the string, payload length (u32 big-endian), payload,
// then the SHA-256 of everything before it.
const (
	vendorMagic         = "VNDR"
	vendorFormat        = 1
	vendorMaxVersionLen = 64
	// vendorFixedSize is the header without the version string.
	vendorFixedSize = len(vendorMagic) + 1 + 1 + 4
)

// VendorHeader is what a device learns from a vendor blob's header.
type VendorHeader struct {
	// Version is the firmware version the blob carries.
	Version string
	// PayloadSize is the size of the payload, which starts at HeaderSize.
	PayloadSize uint32
	// HeaderSize is the size of the header, version string included.
	HeaderSize int
}

// VendorBlob wraps payload in a vendor blob of the given version. The
// version must be 1 to 64 bytes of UTF-8 without control characters, and
// the payload shorter than 4 GiB.
func VendorBlob(payload []byte, version string) ([]byte, error) {
	if err := checkVendorVersion(version); err != nil {
		return nil, fmt.Errorf("vendor blob: %w", err)
	}
	if uint64(len(payload)) > math.MaxUint32 {
		return nil, fmt.Errorf("vendor blob: payload of %d bytes exceeds the 32-bit length", len(payload))
	}
	b := make([]byte, 0, vendorFixedSize+len(version)+len(payload)+sha256.Size)
	b = append(b, vendorMagic...)
	b = append(b, vendorFormat, byte(len(version)))
	b = append(b, version...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...), nil
}

// checkVendorVersion tells why s cannot be a blob's version string.
// Control characters are refused because the version ends up in logs and
// in LwM2M resources, where a NUL or a newline would do harm.
func checkVendorVersion(s string) error {
	switch {
	case len(s) == 0 || len(s) > vendorMaxVersionLen:
		return fmt.Errorf("version of %d bytes, want 1 to %d", len(s), vendorMaxVersionLen)
	case !utf8.ValidString(s):
		return errors.New("version is not UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("version %q has control character %U", s, r)
		}
	}
	return nil
}

// ParseVendorHeader reads a vendor blob's header from its first bytes,
// which is what a device checks on the first block. Each field is checked
// as soon as it is there: bytes that cannot begin a blob (wrong magic or
// format version, a bad version string) give an error wrapping ErrFormat,
// even when fewer than the whole header; a possible start too short to
// hold the header, one wrapping ErrShort.
func ParseVendorHeader(b []byte) (VendorHeader, error) {
	if n := min(len(b), len(vendorMagic)); string(b[:n]) != vendorMagic[:n] {
		return VendorHeader{}, fmt.Errorf("vendor header: magic %q, want %q: %w", b[:n], vendorMagic[:n], ErrFormat)
	}
	short := func() (VendorHeader, error) {
		return VendorHeader{}, fmt.Errorf("vendor header: %d bytes: %w", len(b), ErrShort)
	}
	if len(b) <= 4 {
		return short()
	}
	if b[4] != vendorFormat {
		return VendorHeader{}, fmt.Errorf("vendor header: format version %d, want %d: %w", b[4], vendorFormat, ErrFormat)
	}
	if len(b) <= 5 {
		return short()
	}
	n := int(b[5])
	if n == 0 || n > vendorMaxVersionLen {
		return VendorHeader{}, fmt.Errorf("vendor header: version of %d bytes, want 1 to %d: %w", n, vendorMaxVersionLen, ErrFormat)
	}
	if len(b) < 6+n {
		return short()
	}
	version := string(b[6 : 6+n])
	if err := checkVendorVersion(version); err != nil {
		return VendorHeader{}, fmt.Errorf("vendor header: %v: %w", err, ErrFormat)
	}
	if len(b) < vendorFixedSize+n {
		return short()
	}
	return VendorHeader{
		Version:     version,
		PayloadSize: binary.BigEndian.Uint32(b[6+n:]),
		HeaderSize:  vendorFixedSize + n,
	}, nil
}

// VerifyVendorBlob checks a whole blob: its header, that its length is
// exactly header, payload and digest, and the digest. A malformed blob
// (truncated ones included) gives an error wrapping ErrFormat, a digest
// mismatch one wrapping ErrDigest.
func VerifyVendorBlob(b []byte) (VendorHeader, error) {
	h, err := ParseVendorHeader(b)
	if errors.Is(err, ErrShort) {
		// A whole blob was promised: short is malformed here.
		return VendorHeader{}, fmt.Errorf("vendor blob of %d bytes: %w", len(b), ErrFormat)
	}
	if err != nil {
		return VendorHeader{}, err
	}
	// In 64 bits so that the sum cannot wrap where int has 32.
	want := uint64(h.HeaderSize) + uint64(h.PayloadSize) + sha256.Size
	if uint64(len(b)) != want {
		return VendorHeader{}, fmt.Errorf("vendor blob: %d bytes, header says %d: %w", len(b), want, ErrFormat)
	}
	body := len(b) - sha256.Size
	if !digestMatches(b[:body], b[body:]) {
		return VendorHeader{}, fmt.Errorf("vendor blob %q: SHA-256: %w", h.Version, ErrDigest)
	}
	return h, nil
}

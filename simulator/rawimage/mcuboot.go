package rawimage

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MCUboot image constants, from https://docs.mcuboot.com/design.html
// ("Image Format"). All fields are little-endian.
const (
	// MCUbootMagic opens every image (ih_magic).
	MCUbootMagic = 0x96f3b83d
	// MCUbootHeaderSize is the size of the header struct; the header may
	// be padded beyond it (hdr_size), as nRF Connect SDK pads it to 0x200.
	MCUbootHeaderSize = 32

	tlvInfoMagic  = 0x6907 // IMAGE_TLV_INFO_MAGIC: the unprotected TLV area
	tlvInfoSize   = 4      // magic u16, tlv_tot u16
	tlvEntrySize  = 4      // type u16, len u16
	tlvTypeSHA256 = 0x10   // IMAGE_TLV_SHA256
	// mcubootTLVSize is the TLV area MCUboot writes: the info header and
	// the SHA-256 entry.
	mcubootTLVSize = tlvInfoSize + tlvEntrySize + sha256.Size
)

// MCUbootVersion is an image version (struct image_version). Its text form
// is the one imgtool takes: "major.minor.revision[+build]".
type MCUbootVersion struct {
	Major, Minor uint8
	Revision     uint16
	Build        uint32
}

// String returns "1.2.3", or "1.2.3+4" when Build is not zero.
func (v MCUbootVersion) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Revision)
	if v.Build != 0 {
		s += "+" + strconv.FormatUint(uint64(v.Build), 10)
	}
	return s
}

// ParseMCUbootVersion parses what String returns: three dot-separated
// decimal numbers, optionally followed by "+build". Each must fit its
// field; "+0" is accepted and means no build number.
func ParseMCUbootVersion(s string) (MCUbootVersion, error) {
	triple, build, hasBuild := strings.Cut(s, "+")
	parts := strings.Split(triple, ".")
	if len(parts) != 3 {
		return MCUbootVersion{}, fmt.Errorf("mcuboot version %q: want major.minor.revision[+build]", s)
	}
	var v MCUbootVersion
	fields := []struct {
		name string
		text string
		bits int
		set  func(uint64)
	}{
		{"major", parts[0], 8, func(n uint64) { v.Major = uint8(n) }},
		{"minor", parts[1], 8, func(n uint64) { v.Minor = uint8(n) }},
		{"revision", parts[2], 16, func(n uint64) { v.Revision = uint16(n) }},
		{"build", build, 32, func(n uint64) { v.Build = uint32(n) }},
	}
	if !hasBuild {
		fields = fields[:3]
	}
	for _, f := range fields {
		// ParseUint in base 10 takes digits only: no sign, space or "_".
		n, err := strconv.ParseUint(f.text, 10, f.bits)
		if err != nil {
			return MCUbootVersion{}, fmt.Errorf("mcuboot version %q: %s %q is not a number from 0 to %d",
				s, f.name, f.text, uint64(1)<<f.bits-1)
		}
		f.set(n)
	}
	return v, nil
}

// MCUbootHeader is what a device learns from an image header.
type MCUbootHeader struct {
	// ImageSize is the size of the body (ih_img_size), which starts at
	// HeaderSize.
	ImageSize uint32
	// HeaderSize is ih_hdr_size: the header with its padding, at least
	// MCUbootHeaderSize.
	HeaderSize uint16
	Version    MCUbootVersion
}

// MCUboot wraps body as an image of version v, the way imgtool does for an
// unsigned image with a SHA-256: the 32-byte header (load address,
// protected TLV size and flags zero), the body, then the TLV area holding
// the SHA-256 of header and body. It panics if body is too large for the
// 32-bit size field, as no device could hold it anyway.
func MCUboot(body []byte, v MCUbootVersion) []byte {
	if uint64(len(body)) > math.MaxUint32-MCUbootHeaderSize {
		panic(fmt.Sprintf("rawimage: MCUboot body of %d bytes exceeds the 32-bit image size", len(body)))
	}
	img := make([]byte, MCUbootHeaderSize, MCUbootHeaderSize+len(body)+mcubootTLVSize)
	le := binary.LittleEndian
	le.PutUint32(img[0:], MCUbootMagic)
	// load_addr (4) stays 0.
	le.PutUint16(img[8:], MCUbootHeaderSize)
	// protect_tlv_size (10) stays 0.
	le.PutUint32(img[12:], uint32(len(body)))
	// flags (16) stay 0.
	img[20] = v.Major
	img[21] = v.Minor
	le.PutUint16(img[22:], v.Revision)
	le.PutUint32(img[24:], v.Build)
	// pad (28) stays 0.
	img = append(img, body...)
	sum := sha256.Sum256(img)
	img = le.AppendUint16(img, tlvInfoMagic)
	img = le.AppendUint16(img, mcubootTLVSize)
	img = le.AppendUint16(img, tlvTypeSHA256)
	img = le.AppendUint16(img, sha256.Size)
	return append(img, sum[:]...)
}

// ParseMCUbootHeader reads the header from the first bytes of an image,
// which is what a device checks on the first block before it writes
// anything. Bytes that cannot begin an image (a wrong magic, even in fewer
// than 4 bytes) give an error wrapping ErrFormat; a possible start shorter
// than the header, one wrapping ErrShort. A header whose fields cannot
// describe an image also wraps ErrFormat: hdr_size below 32, a protected
// TLV area (this subset has none), or a body that does not fit a 32-bit
// flash address space. Load address and flags are not checked.
func ParseMCUbootHeader(b []byte) (MCUbootHeader, error) {
	var magic [4]byte
	binary.LittleEndian.PutUint32(magic[:], MCUbootMagic)
	if n := min(len(b), len(magic)); string(b[:n]) != string(magic[:n]) {
		return MCUbootHeader{}, fmt.Errorf("mcuboot header: magic % x, want % x: %w", b[:n], magic[:n], ErrFormat)
	}
	if len(b) < MCUbootHeaderSize {
		return MCUbootHeader{}, fmt.Errorf("mcuboot header: %d of %d bytes: %w", len(b), MCUbootHeaderSize, ErrShort)
	}
	le := binary.LittleEndian
	h := MCUbootHeader{
		HeaderSize: le.Uint16(b[8:]),
		ImageSize:  le.Uint32(b[12:]),
		Version: MCUbootVersion{
			Major:    b[20],
			Minor:    b[21],
			Revision: le.Uint16(b[22:]),
			Build:    le.Uint32(b[24:]),
		},
	}
	if h.HeaderSize < MCUbootHeaderSize {
		return MCUbootHeader{}, fmt.Errorf("mcuboot header: hdr_size %d, below %d: %w", h.HeaderSize, MCUbootHeaderSize, ErrFormat)
	}
	if p := le.Uint16(b[10:]); p != 0 {
		return MCUbootHeader{}, fmt.Errorf("mcuboot header: protected TLV area of %d bytes not supported: %w", p, ErrFormat)
	}
	// Computed in 64 bits so that the sum cannot wrap.
	if end := uint64(h.HeaderSize) + uint64(h.ImageSize); end > math.MaxUint32 {
		return MCUbootHeader{}, fmt.Errorf("mcuboot header: hdr_size %d + img_size %d overflow 32 bits: %w",
			h.HeaderSize, h.ImageSize, ErrFormat)
	}
	return h, nil
}

// VerifyMCUboot checks a whole image, as a device does before it marks the
// image for the bootloader: the header; the TLV area where the header puts
// it, right after the body, with its magic and a total length that ends
// exactly at the end of img; and in it a SHA-256 entry that matches the
// hash of header and body. Other TLV entries (a signature, a key hash) are
// skipped, so that images imgtool signs pass too, their signature
// unchecked. A malformed image gives an error wrapping ErrFormat, a hash
// mismatch one wrapping ErrDigest.
func VerifyMCUboot(img []byte) (MCUbootHeader, error) {
	h, err := ParseMCUbootHeader(img)
	if errors.Is(err, ErrShort) {
		// A whole image was promised: short is malformed here.
		return MCUbootHeader{}, fmt.Errorf("mcuboot image of %d bytes: %w", len(img), ErrFormat)
	}
	if err != nil {
		return MCUbootHeader{}, err
	}
	end := uint64(h.HeaderSize) + uint64(h.ImageSize) // fits 32 bits, checked
	if uint64(len(img)) < end+tlvInfoSize {
		return MCUbootHeader{}, fmt.Errorf("mcuboot image: %d bytes, header and body alone need %d and the TLV area %d more: %w",
			len(img), end, tlvInfoSize, ErrFormat)
	}
	tlv := img[end:]
	le := binary.LittleEndian
	if m := le.Uint16(tlv); m != tlvInfoMagic {
		return MCUbootHeader{}, fmt.Errorf("mcuboot image: TLV magic %#04x at offset %d, want %#04x: %w", m, end, tlvInfoMagic, ErrFormat)
	}
	tot := int(le.Uint16(tlv[2:]))
	if tot != len(tlv) {
		return MCUbootHeader{}, fmt.Errorf("mcuboot image: TLV area declares %d bytes, %d follow the body: %w", tot, len(tlv), ErrFormat)
	}
	var sum []byte
	for off := tlvInfoSize; off < tot; {
		if tot-off < tlvEntrySize {
			return MCUbootHeader{}, fmt.Errorf("mcuboot image: TLV entry header cut at offset %d: %w", end+uint64(off), ErrFormat)
		}
		typ, n := le.Uint16(tlv[off:]), int(le.Uint16(tlv[off+2:]))
		off += tlvEntrySize
		if tot-off < n {
			return MCUbootHeader{}, fmt.Errorf("mcuboot image: TLV entry %#02x of %d bytes overruns the area: %w", typ, n, ErrFormat)
		}
		if typ == tlvTypeSHA256 {
			if n != sha256.Size {
				return MCUbootHeader{}, fmt.Errorf("mcuboot image: SHA-256 TLV of %d bytes: %w", n, ErrFormat)
			}
			if sum != nil {
				// Which one would the bootloader trust? Neither.
				return MCUbootHeader{}, fmt.Errorf("mcuboot image: two SHA-256 TLVs: %w", ErrFormat)
			}
			sum = tlv[off : off+n]
		}
		off += n
	}
	if sum == nil {
		return MCUbootHeader{}, fmt.Errorf("mcuboot image: no SHA-256 TLV: %w", ErrFormat)
	}
	if !digestMatches(img[:end], sum) {
		return MCUbootHeader{}, fmt.Errorf("mcuboot image %s: SHA-256 of header and body: %w", h.Version, ErrDigest)
	}
	return h, nil
}

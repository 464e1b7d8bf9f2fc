package delta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Header layout (little-endian), HeaderSize bytes; docs/delta-format.md.
const (
	HeaderSize = 92
	// Version is the format version this package writes and reads.
	Version = 1
	// FlagThumb marks a patch made with the ARM Thumb-2 branch transform.
	FlagThumb = 1 << 0
)

var magic = [6]byte{'F', 'D', 'E', 'L', 'T', 'A'}

// Errors an applier reports; each is wrapped with detail.
var (
	ErrNotPatch     = errors.New("not a delta patch")
	ErrVersion      = errors.New("unsupported delta version or flags")
	ErrHeader       = errors.New("corrupt delta header")
	ErrOldImage     = errors.New("old image does not match the patch")
	ErrRAM          = errors.New("patch needs more applier RAM than allowed")
	ErrCorrupt      = errors.New("corrupt delta stream")
	ErrNewImage     = errors.New("rebuilt image does not match the patch")
	ErrIncomplete   = errors.New("patch ended before the new image was complete")
	ErrTrailingData = errors.New("patch has bytes after its end")
)

// Header describes a patch.
type Header struct {
	Flags    uint8
	OldSize  uint32
	NewSize  uint32
	BodySize uint32 // bytes of coded stream after the header
	// RAMBound is the working RAM, in bytes, an applier of this version
	// needs for the patch: models, buffers, hash state.
	RAMBound uint32
	OldHash  [32]byte // SHA-256 of the old image
	NewHash  [32]byte // SHA-256 of the new image
}

// Marshal encodes h into HeaderSize bytes.
func (h *Header) Marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b[0:6], magic[:])
	b[6] = Version
	b[7] = h.Flags
	binary.LittleEndian.PutUint32(b[8:], h.OldSize)
	binary.LittleEndian.PutUint32(b[12:], h.NewSize)
	binary.LittleEndian.PutUint32(b[16:], h.BodySize)
	binary.LittleEndian.PutUint32(b[20:], h.RAMBound)
	copy(b[24:56], h.OldHash[:])
	copy(b[56:88], h.NewHash[:])
	binary.LittleEndian.PutUint32(b[88:], crc32.ChecksumIEEE(b[:88]))
	return b
}

// ParseHeader decodes and checks a patch header.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, fmt.Errorf("%w: %d bytes, want %d", ErrHeader, len(b), HeaderSize)
	}
	if [6]byte(b[0:6]) != magic {
		return h, ErrNotPatch
	}
	if crc32.ChecksumIEEE(b[:88]) != binary.LittleEndian.Uint32(b[88:]) {
		return h, fmt.Errorf("%w: checksum mismatch", ErrHeader)
	}
	if b[6] != Version || b[7]&^FlagThumb != 0 {
		return h, fmt.Errorf("%w: version %d, flags %#x", ErrVersion, b[6], b[7])
	}
	h.Flags = b[7]
	h.OldSize = binary.LittleEndian.Uint32(b[8:])
	h.NewSize = binary.LittleEndian.Uint32(b[12:])
	h.BodySize = binary.LittleEndian.Uint32(b[16:])
	h.RAMBound = binary.LittleEndian.Uint32(b[20:])
	copy(h.OldHash[:], b[24:56])
	copy(h.NewHash[:], b[56:88])
	if h.NewSize == 0 && h.BodySize != 0 {
		return h, fmt.Errorf("%w: %d-byte body for an empty image", ErrHeader, h.BodySize)
	}
	if h.NewSize > 0 && h.BodySize < 4 {
		return h, fmt.Errorf("%w: %d-byte body for a %d-byte image", ErrHeader, h.BodySize, h.NewSize)
	}
	return h, nil
}

// Applier RAM, in bytes, by what holds it. The models dominate.
const (
	modelRAM   = 3345 * 2
	carryRAM   = maxUnitInput // input carried between chunks
	oldBufRAM  = 256          // old-image read cache
	outBufRAM  = 256          // new-image write buffer
	hashRAM    = 112          // SHA-256 context
	counterRAM = 64           // positions, coder state, current op
	thumbRAM   = 8            // new-image bytes held back to undo the Thumb transform
	// RAMBound is what this version's applier needs for any patch.
	RAMBound = modelRAM + carryRAM + oldBufRAM + outBufRAM + hashRAM + counterRAM + thumbRAM
)

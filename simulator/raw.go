package simulator

import (
	"bytes"
	"crypto/sha256"
	"errors"

	"github.com/fotahub/fota/simulator/rawimage"
)

// rawFormat is a vendor image format that a raw client writes to its
// candidate slot exactly as it arrives: the server's bytes are the image.
type rawFormat interface {
	// name is /5/0/6 (PkgName) after a download.
	name() string
	// header reads the first bytes of an image: rawimage.ErrShort when it
	// needs more of them, another error when they are not this format.
	header(b []byte) (rawHeader, error)
	// verify checks a whole image and returns its version.
	verify(img []byte) (string, error)
}

// rawHeader is what a raw client learns from an image's first bytes.
type rawHeader struct {
	version string
	// size is the least the whole image takes in the slot.
	size int64
}

// mcubootFormat is MCUboot's signed image (Zephyr).
type mcubootFormat struct{}

func (mcubootFormat) name() string { return "mcuboot" }

func (mcubootFormat) header(b []byte) (rawHeader, error) {
	h, err := rawimage.ParseMCUbootHeader(b)
	if err != nil {
		return rawHeader{}, err
	}
	return rawHeader{version: h.Version.String(), size: int64(h.HeaderSize) + int64(h.ImageSize)}, nil
}

func (mcubootFormat) verify(img []byte) (string, error) {
	h, err := rawimage.VerifyMCUboot(img)
	if err != nil {
		return "", err
	}
	return h.Version.String(), nil
}

// vendorFormat is the vendor-wrapped blob of the Anjay-based product.
type vendorFormat struct{}

func (vendorFormat) name() string { return "vendor-blob" }

func (vendorFormat) header(b []byte) (rawHeader, error) {
	h, err := rawimage.ParseVendorHeader(b)
	if err != nil {
		return rawHeader{}, err
	}
	return rawHeader{version: h.Version, size: int64(h.HeaderSize) + int64(h.PayloadSize) + sha256.Size}, nil
}

func (vendorFormat) verify(img []byte) (string, error) {
	h, err := rawimage.VerifyVendorBlob(img)
	if err != nil {
		return "", err
	}
	return h.Version, nil
}

// rawTransfer takes a raw image into the candidate slot: its header is
// checked as soon as enough bytes are in (result 6 when it is not the
// client's format, 2 when the image cannot fit), the whole image at the
// end (result 5).
type rawTransfer struct {
	d      *Device
	j      *journal
	format rawFormat
	// accepted is set once the header has been read and found good.
	accepted bool
}

// newRawTransfer starts a raw transfer from scratch, erasing the slot.
func (d *Device) newRawTransfer(j *journal) *rawTransfer {
	d.flash.EraseCandidate()
	j.Next, j.Offset, j.Written, j.Verifier, j.Applier = 0, 0, 0, nil, nil
	return &rawTransfer{d: d, j: j, format: d.p.image}
}

// resumeRawTransfer continues a raw transfer at its journal's offset: the
// slot keeps the bytes written before it and loses anything after.
func (d *Device) resumeRawTransfer(j *journal) *rawTransfer {
	if j.Written == 0 || d.flash.CandidateLen() < j.Written {
		return d.newRawTransfer(j)
	}
	d.flash.TruncateCandidate(j.Written)
	return &rawTransfer{d: d, j: j, format: d.p.image}
}

func (t *rawTransfer) journal() *journal { return t.j }

func (t *rawTransfer) write(b []byte) error {
	if err := t.checkHeader(b); err != nil {
		return err
	}
	if _, err := (candidateWriter{f: t.d.flash}).Write(b); err != nil {
		return fail(ResultNoFlash, "candidate slot: %w", err)
	}
	return nil
}

// checkHeader reads the header from the slot's bytes and b, before b is
// written; it waits for more bytes while the header is incomplete.
func (t *rawTransfer) checkHeader(b []byte) error {
	if t.accepted {
		return nil
	}
	var head []byte
	t.d.flash.readCandidate(func(c []byte) { head = append(bytes.Clone(c), b...) })
	h, err := t.format.header(head)
	switch {
	case errors.Is(err, rawimage.ErrShort):
		return nil
	case err != nil:
		return fail(ResultUnsupportedType, "not a %s image: %w", t.format.name(), err)
	case h.size > int64(t.d.flash.SlotSize()):
		return fail(ResultNoFlash, "%s image of %d bytes, slot of %d", t.format.name(), h.size, t.d.flash.SlotSize())
	}
	t.accepted = true
	return nil
}

// save records how much of the image the slot holds; the caller
// persists the journal.
func (t *rawTransfer) save() error {
	t.j.Written = t.d.flash.CandidateLen()
	t.j.Offset = int64(t.j.Written)
	return nil
}

// finish verifies the image in the slot and describes it: its header's
// version, and the SHA-256 of the raw bytes the bootloader checks.
func (t *rawTransfer) finish() (ImageInfo, error) {
	if !t.accepted {
		return ImageInfo{}, fail(ResultUnsupportedType, "image shorter than a %s header", t.format.name())
	}
	var (
		version string
		digest  [32]byte
		err     error
	)
	t.d.flash.readCandidate(func(img []byte) {
		if version, err = t.format.verify(img); err == nil {
			digest = sha256.Sum256(img)
		}
	})
	if err != nil {
		return ImageInfo{}, fail(ResultIntegrity, "%s image: %w", t.format.name(), err)
	}
	return ImageInfo{Version: version, Digest: digest}, nil
}

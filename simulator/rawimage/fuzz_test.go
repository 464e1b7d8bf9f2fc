package rawimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
)

// oneOf fails unless err is nil or wraps exactly one of allowed and no
// other error of the package.
func oneOf(t *testing.T, err error, allowed ...error) {
	t.Helper()
	if err == nil {
		return
	}
	found := 0
	for _, e := range []error{ErrFormat, ErrDigest, ErrShort} {
		if errors.Is(err, e) {
			found++
			ok := false
			for _, a := range allowed {
				ok = ok || a == e
			}
			if !ok {
				t.Fatalf("error %v wraps %v", err, e)
			}
		}
	}
	if found != 1 {
		t.Fatalf("error %v wraps %d of the package's errors", err, found)
	}
}

func mcubootSeeds(f *testing.F) {
	body := bytes.Repeat([]byte("seed body "), 20)
	img := MCUboot(body, MCUbootVersion{Major: 1, Minor: 2, Revision: 3, Build: 4})
	f.Add(img)
	f.Add(MCUboot(nil, MCUbootVersion{}))
	f.Add(img[:MCUbootHeaderSize])
	f.Add(img[:len(img)-1])
	f.Add([]byte{})
	bad := bytes.Clone(img)
	binary.LittleEndian.PutUint32(bad[12:], 0xffff_ffff)
	f.Add(bad)
	bad = bytes.Clone(img)
	bad[len(bad)-1] ^= 1
	f.Add(bad)
}

// FuzzVerifyMCUboot: no panic; errors are ErrFormat or ErrDigest; an
// accepted image is as long as its parts, its header reads the same alone,
// and one in the layout MCUboot writes is exactly MCUboot of its body.
func FuzzVerifyMCUboot(f *testing.F) {
	mcubootSeeds(f)
	f.Fuzz(func(t *testing.T, img []byte) {
		h, err := VerifyMCUboot(img)
		oneOf(t, err, ErrFormat, ErrDigest)
		if err != nil {
			return
		}
		if ph, err := ParseMCUbootHeader(img[:MCUbootHeaderSize]); err != nil || ph != h {
			t.Fatalf("header alone %+v, %v; whole image %+v", ph, err, h)
		}
		end := int(h.HeaderSize) + int(h.ImageSize)
		tot := int(binary.LittleEndian.Uint16(img[end+2:]))
		if len(img) != end+tot {
			t.Fatalf("%d bytes, header, body and TLV area make %d", len(img), end+tot)
		}
		zero := make([]byte, 4)
		if h.HeaderSize == MCUbootHeaderSize && tot == mcubootTLVSize &&
			bytes.Equal(img[4:8], zero) && bytes.Equal(img[16:20], zero) && bytes.Equal(img[28:32], zero) {
			if again := MCUboot(img[MCUbootHeaderSize:end], h.Version); !bytes.Equal(again, img) {
				t.Fatalf("accepted image\n%x\nrebuilt as\n%x", img, again)
			}
		}
	})
}

// FuzzParseMCUbootHeader: no panic; errors are ErrFormat or ErrShort, the
// latter only below the header size; an accepted header describes an
// image that fits 32 bits and is read from the first 32 bytes alone.
func FuzzParseMCUbootHeader(f *testing.F) {
	mcubootSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseMCUbootHeader(b)
		oneOf(t, err, ErrFormat, ErrShort)
		if errors.Is(err, ErrShort) && len(b) >= MCUbootHeaderSize {
			t.Fatalf("ErrShort with %d bytes", len(b))
		}
		if err != nil {
			return
		}
		if h.HeaderSize < MCUbootHeaderSize || uint64(h.HeaderSize)+uint64(h.ImageSize) > 1<<32-1 {
			t.Fatalf("accepted header %+v", h)
		}
		if h2, err := ParseMCUbootHeader(b[:MCUbootHeaderSize]); err != nil || h2 != h {
			t.Fatalf("first 32 bytes give %+v, %v; all give %+v", h2, err, h)
		}
	})
}

func vendorSeeds(f *testing.F) {
	b, err := VendorBlob(bytes.Repeat([]byte("seed payload "), 20), "1.4.2-beta")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	empty, err := VendorBlob(nil, "0")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(empty)
	f.Add(b[:20])
	f.Add(b[:len(b)-1])
	f.Add([]byte("VNDR"))
	f.Add([]byte{})
	bad := bytes.Clone(b)
	binary.BigEndian.PutUint32(bad[6+10:], 0xffff_ffff)
	f.Add(bad)
}

// FuzzVerifyVendorBlob: no panic; errors are ErrFormat or ErrDigest; an
// accepted blob is exactly VendorBlob of its payload and version.
func FuzzVerifyVendorBlob(f *testing.F) {
	vendorSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := VerifyVendorBlob(b)
		oneOf(t, err, ErrFormat, ErrDigest)
		if err != nil {
			return
		}
		payload := b[h.HeaderSize : len(b)-sha256.Size]
		if uint32(len(payload)) != h.PayloadSize {
			t.Fatalf("payload of %d bytes, header says %d", len(payload), h.PayloadSize)
		}
		again, err := VendorBlob(payload, h.Version)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted blob\n%x\nrebuilt as\n%x, %v", b, again, err)
		}
	})
}

// FuzzParseVendorHeader: no panic; errors are ErrFormat or ErrShort; an
// accepted header has a version VendorBlob takes and is read from its own
// bytes alone, and any shorter prefix of them is ErrShort.
func FuzzParseVendorHeader(f *testing.F) {
	vendorSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseVendorHeader(b)
		oneOf(t, err, ErrFormat, ErrShort)
		if err != nil {
			return
		}
		if h.HeaderSize != 10+len(h.Version) || h.HeaderSize > len(b) {
			t.Fatalf("header %+v from %d bytes", h, len(b))
		}
		if _, err := VendorBlob(nil, h.Version); err != nil {
			t.Fatalf("accepted version %q refused by VendorBlob: %v", h.Version, err)
		}
		if h2, err := ParseVendorHeader(b[:h.HeaderSize]); err != nil || h2 != h {
			t.Fatalf("header bytes alone give %+v, %v; all give %+v", h2, err, h)
		}
		if _, err := ParseVendorHeader(b[:h.HeaderSize-1]); !errors.Is(err, ErrShort) {
			t.Fatalf("header less one byte: %v, want ErrShort", err)
		}
	})
}

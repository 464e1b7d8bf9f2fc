package rawimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// mustHex decodes hex written with spaces between fields.
func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantErr checks that err wraps want and none of the package's other
// errors, so that a device tells a corrupt download from a wrong file.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
		return
	}
	for _, other := range []error{ErrFormat, ErrDigest, ErrShort} {
		if other != want && errors.Is(err, other) {
			t.Errorf("%s: error %v wraps %v too", what, err, other)
		}
	}
}

// The bytes were worked out by hand from the layout in the MCUboot design
// document; the hash by an independent SHA-256 of header and body.
func TestMCUbootKnownAnswer(t *testing.T) {
	want := mustHex(t, `
		3db8f396 00000000 2000 0000 03000000 00000000 01 02 0300 04000000 00000000
		aabbcc
		0769 2800 1000 2000
		337f010f8f8d4a8f027e5eeb00c25e21561783669907c4071fe827b56b26797f`)
	v := MCUbootVersion{Major: 1, Minor: 2, Revision: 3, Build: 4}
	got := MCUboot([]byte{0xaa, 0xbb, 0xcc}, v)
	if !bytes.Equal(got, want) {
		t.Fatalf("image\n%x\nwant\n%x", got, want)
	}
	h, err := VerifyMCUboot(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := (MCUbootHeader{ImageSize: 3, HeaderSize: 32, Version: v}); h != want {
		t.Errorf("header %+v, want %+v", h, want)
	}
}

func TestMCUbootRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 31, 32, 4096, 100_003} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i * 7)
		}
		v := MCUbootVersion{Major: 255, Minor: 0, Revision: 65535, Build: uint32(size)}
		img := MCUboot(body, v)
		if len(img) != MCUbootHeaderSize+size+40 {
			t.Errorf("%d-byte body: image of %d bytes", size, len(img))
		}
		h, err := VerifyMCUboot(img)
		if err != nil {
			t.Fatalf("%d-byte body: %v", size, err)
		}
		if h.ImageSize != uint32(size) || h.HeaderSize != MCUbootHeaderSize || h.Version != v {
			t.Errorf("%d-byte body: header %+v", size, h)
		}
		if ph, err := ParseMCUbootHeader(img[:MCUbootHeaderSize]); err != nil || ph != h {
			t.Errorf("%d-byte body: first block header %+v, %v; want %+v", size, ph, err, h)
		}
		if !bytes.Equal(img[h.HeaderSize:uint32(h.HeaderSize)+h.ImageSize], body) {
			t.Errorf("%d-byte body: body not where the header says", size)
		}
	}
}

// rehash recomputes the SHA-256 TLV of an image whose TLV area is the one
// MCUboot writes, after a test edited header or body.
func rehash(img []byte) []byte {
	n := len(img) - sha256.Size - 8
	sum := sha256.Sum256(img[:n])
	copy(img[len(img)-sha256.Size:], sum[:])
	return img
}

// Images as imgtool makes them for nRF Connect SDK pass too: a header
// padded to 0x200 and TLV entries besides the hash.
func TestMCUbootImgtoolLayout(t *testing.T) {
	body := []byte("zephyr application")
	v := MCUbootVersion{Major: 2, Minor: 1}
	plain := MCUboot(body, v)

	padded := make([]byte, 0x200)
	copy(padded, plain[:MCUbootHeaderSize])
	binary.LittleEndian.PutUint16(padded[8:], 0x200)
	padded = append(padded, body...)
	sum := sha256.Sum256(padded)
	le := binary.LittleEndian
	tlv := le.AppendUint16(nil, tlvInfoMagic)
	tlv = le.AppendUint16(tlv, 4+(4+32)+(4+32)+(4+3))
	tlv = le.AppendUint16(tlv, 0x01) // IMAGE_TLV_KEYHASH
	tlv = le.AppendUint16(tlv, 32)
	tlv = append(tlv, bytes.Repeat([]byte{0x5a}, 32)...)
	tlv = le.AppendUint16(tlv, tlvTypeSHA256)
	tlv = le.AppendUint16(tlv, 32)
	tlv = append(tlv, sum[:]...)
	tlv = le.AppendUint16(tlv, 0x99) // unknown type, odd length
	tlv = le.AppendUint16(tlv, 3)
	tlv = append(tlv, 1, 2, 3)
	img := append(padded, tlv...)

	h, err := VerifyMCUboot(img)
	if err != nil {
		t.Fatal(err)
	}
	if h.HeaderSize != 0x200 || h.ImageSize != uint32(len(body)) || h.Version != v {
		t.Errorf("header %+v", h)
	}
	img[0x200] ^= 1
	_, err = VerifyMCUboot(img)
	wantErr(t, "padded image with a corrupt body", err, ErrDigest)
}

func TestMCUbootCorruption(t *testing.T) {
	body := bytes.Repeat([]byte("firmware"), 50)
	good := MCUboot(body, MCUbootVersion{Major: 1, Revision: 7})
	le := binary.LittleEndian
	tlvAt := MCUbootHeaderSize + len(body)
	cases := []struct {
		name string
		edit func(b []byte) []byte
		want error
	}{
		{"magic", func(b []byte) []byte { b[3] ^= 0x80; return b }, ErrFormat},
		{"hdr_size below 32", func(b []byte) []byte { le.PutUint16(b[8:], 31); return rehash(b) }, ErrFormat},
		{"hdr_size zero", func(b []byte) []byte { le.PutUint16(b[8:], 0); return rehash(b) }, ErrFormat},
		{"hdr_size too large", func(b []byte) []byte { le.PutUint16(b[8:], 36); return rehash(b) }, ErrFormat},
		{"protected TLV size", func(b []byte) []byte { le.PutUint16(b[10:], 8); return rehash(b) }, ErrFormat},
		{"img_size one more", func(b []byte) []byte { le.PutUint32(b[12:], uint32(len(body)+1)); return rehash(b) }, ErrFormat},
		{"img_size one less", func(b []byte) []byte { le.PutUint32(b[12:], uint32(len(body)-1)); return rehash(b) }, ErrFormat},
		{"img_size overflows", func(b []byte) []byte { le.PutUint32(b[12:], 0xffff_fff0); return rehash(b) }, ErrFormat},
		{"TLV magic", func(b []byte) []byte { b[tlvAt] ^= 1; return b }, ErrFormat},
		{"protected TLV magic", func(b []byte) []byte { le.PutUint16(b[tlvAt:], 0x6908); return b }, ErrFormat},
		{"tlv_tot short", func(b []byte) []byte { le.PutUint16(b[tlvAt+2:], 39); return b }, ErrFormat},
		{"tlv_tot long", func(b []byte) []byte { le.PutUint16(b[tlvAt+2:], 41); return b }, ErrFormat},
		{"tlv_tot below the info header", func(b []byte) []byte { le.PutUint16(b[tlvAt+2:], 2); return b }, ErrFormat},
		{"SHA-256 entry overruns", func(b []byte) []byte { le.PutUint16(b[tlvAt+6:], 33); return b }, ErrFormat},
		{"SHA-256 entry short", func(b []byte) []byte { le.PutUint16(b[tlvAt+6:], 28); return b }, ErrFormat},
		{"no SHA-256 entry", func(b []byte) []byte { le.PutUint16(b[tlvAt+4:], 0x11); return b }, ErrFormat},
		{"two SHA-256 entries", func(b []byte) []byte {
			b = append(b, b[tlvAt+4:]...)
			le.PutUint16(b[tlvAt+2:], 4+36+36)
			return b
		}, ErrFormat},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }, ErrFormat},
		{"body bit", func(b []byte) []byte { b[MCUbootHeaderSize+100] ^= 4; return b }, ErrDigest},
		{"version in the header", func(b []byte) []byte { b[20]++; return b }, ErrDigest},
		{"load address", func(b []byte) []byte { b[4] = 1; return b }, ErrDigest},
		{"hash bit", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrDigest},
		{"unchanged", func(b []byte) []byte { return b }, nil},
	}
	for _, c := range cases {
		img := c.edit(bytes.Clone(good))
		_, err := VerifyMCUboot(img)
		wantErr(t, c.name, err, c.want)
	}
	// Truncated anywhere, an image is malformed, never a digest mismatch.
	for n := range len(good) {
		_, err := VerifyMCUboot(good[:n])
		wantErr(t, "truncated to "+strconv.Itoa(n), err, ErrFormat)
	}
}

// A device checks the first block: it learns the image is wrong as early
// as the bytes allow, and that it needs more when they do not.
func TestParseMCUbootHeaderPrefix(t *testing.T) {
	img := MCUboot([]byte("body"), MCUbootVersion{Major: 3})
	for n := range MCUbootHeaderSize {
		_, err := ParseMCUbootHeader(img[:n])
		wantErr(t, "prefix of "+strconv.Itoa(n), err, ErrShort)
	}
	// A wrong magic byte is refused as soon as it is there.
	for n := 1; n <= 4; n++ {
		b := bytes.Clone(img[:n])
		b[n-1] ^= 0xff
		_, err := ParseMCUbootHeader(b)
		wantErr(t, "bad magic in "+strconv.Itoa(n)+" bytes", err, ErrFormat)
	}
	if _, err := ParseMCUbootHeader([]byte("ELF\x7f and more than thirty-two bytes")); !errors.Is(err, ErrFormat) {
		t.Errorf("ELF file: %v, want ErrFormat", err)
	}
	h, err := ParseMCUbootHeader(img[:MCUbootHeaderSize])
	if err != nil || h.ImageSize != 4 || h.Version.Major != 3 {
		t.Errorf("header %+v, %v", h, err)
	}
	// The overflow check holds at the limit: hdr_size 32 and a body up to
	// 2^32-33 bytes is a possible image.
	b := bytes.Clone(img[:MCUbootHeaderSize])
	binary.LittleEndian.PutUint32(b[12:], 0xffff_ffff-32)
	if _, err := ParseMCUbootHeader(b); err != nil {
		t.Errorf("largest image: %v", err)
	}
	binary.LittleEndian.PutUint32(b[12:], 0xffff_ffff-31)
	_, err = ParseMCUbootHeader(b)
	wantErr(t, "one byte over", err, ErrFormat)
}

func TestMCUbootVersion(t *testing.T) {
	for _, c := range []struct {
		v MCUbootVersion
		s string
	}{
		{MCUbootVersion{}, "0.0.0"},
		{MCUbootVersion{1, 2, 3, 0}, "1.2.3"},
		{MCUbootVersion{1, 2, 3, 4}, "1.2.3+4"},
		{MCUbootVersion{255, 255, 65535, 4294967295}, "255.255.65535+4294967295"},
	} {
		if got := c.v.String(); got != c.s {
			t.Errorf("%+v: %q, want %q", c.v, got, c.s)
		}
		if got, err := ParseMCUbootVersion(c.s); err != nil || got != c.v {
			t.Errorf("parse %q: %+v, %v", c.s, got, err)
		}
	}
	if v, err := ParseMCUbootVersion("1.02.3+0"); err != nil || v != (MCUbootVersion{1, 2, 3, 0}) {
		t.Errorf("1.02.3+0: %+v, %v", v, err)
	}
	for _, s := range []string{
		"", "1", "1.2", "1.2.3.4", "1.2.3+", "+4", "1.2.3+4+5", "1..3", ".1.2",
		"256.0.0", "0.256.0", "0.0.65536", "0.0.0+4294967296",
		"-1.0.0", "+1.0.0", "1.0.0+-1", " 1.0.0", "1.0.0 ", "1_0.0.0", "0x1.0.0", "v1.0.0", "1.0.0-rc1",
	} {
		if v, err := ParseMCUbootVersion(s); err == nil {
			t.Errorf("%q accepted as %+v", s, v)
		}
	}
}

package rawimage

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
)

// The hash was computed by an independent SHA-256 of the bytes before it.
func TestVendorBlobKnownAnswer(t *testing.T) {
	want := mustHex(t, `
		564e4452 01 03 312e30 00000002 6869
		15bfd15e5e886d5e4365de5ea9e5580b363f0fb6fe928022af1dd83089717a62`)
	got, err := VendorBlob([]byte("hi"), "1.0")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("blob\n%x\nwant\n%x", got, want)
	}
	h, err := VerifyVendorBlob(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := (VendorHeader{Version: "1.0", PayloadSize: 2, HeaderSize: 13}); h != want {
		t.Errorf("header %+v, want %+v", h, want)
	}
}

func TestVendorBlobRoundTrip(t *testing.T) {
	for _, c := range []struct {
		size    int
		version string
	}{
		{0, "0"},
		{1, "v2.4.1-rc3"},
		{4096, "héllo wörld ✓"},
		{100_003, strings.Repeat("x", 64)},
	} {
		payload := bytes.Repeat([]byte{0xa5, 0x5a, 0x01}, c.size/3+1)[:c.size]
		b, err := VendorBlob(payload, c.version)
		if err != nil {
			t.Fatalf("%q: %v", c.version, err)
		}
		h, err := VerifyVendorBlob(b)
		if err != nil {
			t.Fatalf("%q: %v", c.version, err)
		}
		if h.Version != c.version || h.PayloadSize != uint32(c.size) || h.HeaderSize != 10+len(c.version) {
			t.Errorf("%q: header %+v", c.version, h)
		}
		if ph, err := ParseVendorHeader(b[:h.HeaderSize]); err != nil || ph != h {
			t.Errorf("%q: first block header %+v, %v; want %+v", c.version, ph, err, h)
		}
		if !bytes.Equal(b[h.HeaderSize:h.HeaderSize+int(h.PayloadSize)], payload) {
			t.Errorf("%q: payload not where the header says", c.version)
		}
	}
}

func TestVendorBlobBadVersion(t *testing.T) {
	for _, v := range []string{"", strings.Repeat("x", 65), "1.0\x00", "1.0\n", "\x7f", "\u0085", "\xff\xfe", "a\xc3"} {
		if _, err := VendorBlob([]byte("p"), v); err == nil {
			t.Errorf("version %q accepted", v)
		}
	}
}

func TestVendorBlobCorruption(t *testing.T) {
	payload := bytes.Repeat([]byte("anjay"), 80)
	good, err := VendorBlob(payload, "2.0.1")
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	const sizeAt = 6 + 5
	cases := []struct {
		name string
		edit func(b []byte) []byte
		want error
	}{
		{"magic", func(b []byte) []byte { b[0] = 'v'; return b }, ErrFormat},
		{"format version", func(b []byte) []byte { b[4] = 2; return b }, ErrFormat},
		{"version length zero", func(b []byte) []byte { b[5] = 0; return b }, ErrFormat},
		{"version length 65", func(b []byte) []byte { b[5] = 65; return b }, ErrFormat},
		{"version length one more", func(b []byte) []byte { b[5]++; return b }, ErrFormat},
		{"version length one less", func(b []byte) []byte { b[5]--; return b }, ErrFormat},
		{"version not UTF-8", func(b []byte) []byte { b[6] = 0xff; return b }, ErrFormat},
		{"version control character", func(b []byte) []byte { b[7] = '\n'; return b }, ErrFormat},
		{"payload size one more", func(b []byte) []byte { be.PutUint32(b[sizeAt:], uint32(len(payload)+1)); return b }, ErrFormat},
		{"payload size one less", func(b []byte) []byte { be.PutUint32(b[sizeAt:], uint32(len(payload)-1)); return b }, ErrFormat},
		{"payload size maximal", func(b []byte) []byte { be.PutUint32(b[sizeAt:], 0xffff_ffff); return b }, ErrFormat},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }, ErrFormat},
		{"payload bit", func(b []byte) []byte { b[sizeAt+4+10] ^= 0x10; return b }, ErrDigest},
		{"version character", func(b []byte) []byte { b[6] = '3'; return b }, ErrDigest},
		{"digest bit", func(b []byte) []byte { b[len(b)-32] ^= 1; return b }, ErrDigest},
		{"unchanged", func(b []byte) []byte { return b }, nil},
	}
	for _, c := range cases {
		_, err := VerifyVendorBlob(c.edit(bytes.Clone(good)))
		wantErr(t, c.name, err, c.want)
	}
	for n := range len(good) {
		_, err := VerifyVendorBlob(good[:n])
		wantErr(t, "truncated to "+strconv.Itoa(n), err, ErrFormat)
	}
}

// A device checks the first block: it learns the blob is wrong as early
// as the bytes allow, and that it needs more when they do not.
func TestParseVendorHeaderPrefix(t *testing.T) {
	b, err := VendorBlob([]byte("payload"), "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	const headerSize = 10 + 5
	for n := range headerSize {
		_, err := ParseVendorHeader(b[:n])
		wantErr(t, "prefix of "+strconv.Itoa(n), err, ErrShort)
	}
	for _, c := range []struct {
		name   string
		prefix string
	}{
		{"magic first byte", "X"},
		{"magic last byte", "VNDX"},
		{"format version", "VNDR\x00"},
		{"version length", "VNDR\x01\x00"},
		{"version length too long", "VNDR\x01\x41"},
		{"version bytes", "VNDR\x01\x02\xc3\x28"},
		{"ZIP file", "PK\x03\x04 and a good deal more than the header"},
	} {
		_, err := ParseVendorHeader([]byte(c.prefix))
		wantErr(t, c.name, err, ErrFormat)
	}
	h, err := ParseVendorHeader(b)
	if want := (VendorHeader{Version: "1.2.3", PayloadSize: 7, HeaderSize: headerSize}); err != nil || h != want {
		t.Errorf("header %+v, %v; want %+v", h, err, want)
	}
}

package manifest

// The manifest: a SUIT_Manifest (draft-ietf-suit-manifest) whose common
// block holds one component and, as its shared sequence, a single
// directive-override-parameters with every parameter the device reads.
//
//	{
//	  1: 1,                         manifest-version
//	  2: Sequence,                  manifest-sequence-number
//	  3: << {                       common
//	    2: [[h'00']],               components: one, the firmware slot
//	    4: << [                     shared-sequence
//	      20, {                     directive-override-parameters
//	        2: Class,               class-identifier (bstr, UTF-8 text)
//	        3: << [-16, h'..'] >>,  image-digest (SUIT_Digest, SHA-256)
//	        14: ImageSize,          image-size
//	        -256: Format,           private: payload format
//	        -257: Version,          private: version text
//	        -258: << [-16, h'..'] >>, private, delta only: payload digest
//	        -259: PayloadSize,      private, delta only: payload size
//	        -260: << [-16, h'..'] >>, private, delta only: precursor digest
//	        -261: PrecursorSize,    private, delta only: precursor size
//	      }
//	    ] >>
//	  } >>
//	}
//
// Labels below -255 are SUIT's private-use parameters. A full image's
// payload is the image, so its payload digest and size are the image's and
// are not repeated. Decoding accepts exactly the deterministic encoding:
// it decodes, encodes the result again and compares.

import (
	"bytes"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// SUIT numbers used here.
const (
	suitManifestVersion         = 1
	suitDirectiveOverrideParams = 20
)

type suitManifest struct {
	Version  uint64 `cbor:"1,keyasint"`
	Sequence uint64 `cbor:"2,keyasint"`
	Common   []byte `cbor:"3,keyasint"`
}

type suitCommon struct {
	Components [][][]byte `cbor:"2,keyasint"`
	Shared     []byte     `cbor:"4,keyasint"`
}

type suitSequence struct {
	_         struct{} `cbor:",toarray"`
	Directive uint64
	Params    suitParams
}

type suitParams struct {
	ClassID         []byte `cbor:"2,keyasint"`
	ImageDigest     []byte `cbor:"3,keyasint"`
	ImageSize       uint64 `cbor:"14,keyasint"`
	Format          uint64 `cbor:"-256,keyasint"`
	Version         string `cbor:"-257,keyasint"`
	PayloadDigest   []byte `cbor:"-258,keyasint,omitempty"`
	PayloadSize     uint64 `cbor:"-259,keyasint,omitempty"`
	PrecursorDigest []byte `cbor:"-260,keyasint,omitempty"`
	PrecursorSize   uint64 `cbor:"-261,keyasint,omitempty"`
}

// suitDigestLen is the length of an encoded SHA-256 SUIT_Digest:
// 82 2F 58 20 followed by the 32 digest bytes.
const suitDigestLen = 4 + 32

var suitDigestPrefix = [4]byte{0x82, 0x2F /* -16 */, 0x58, 0x20}

func encodeDigest(d Digest) []byte {
	b := make([]byte, 0, suitDigestLen)
	b = append(b, suitDigestPrefix[:]...)
	return append(b, d[:]...)
}

func decodeDigest(what string, b []byte) (Digest, error) {
	var d Digest
	if len(b) != suitDigestLen || !bytes.Equal(b[:4], suitDigestPrefix[:]) {
		return d, malformed("%s: not a SHA-256 SUIT_Digest", what)
	}
	copy(d[:], b[4:])
	return d, nil
}

var encMode, decMode = func() (cbor.EncMode, cbor.DecMode) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       16,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		UTF8:              cbor.UTF8RejectInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return em, dm
}()

// encodeManifest encodes a validated manifest.
func encodeManifest(m *Manifest) ([]byte, error) {
	p := suitParams{
		ClassID:     []byte(m.Class),
		ImageDigest: encodeDigest(m.ImageDigest),
		ImageSize:   m.ImageSize,
		Format:      uint64(m.Format),
		Version:     m.Version,
	}
	if m.Format.IsDelta() {
		p.PayloadDigest = encodeDigest(m.PayloadDigest)
		p.PayloadSize = m.PayloadSize
		p.PrecursorDigest = encodeDigest(m.PrecursorDigest)
		p.PrecursorSize = m.PrecursorSize
	}
	shared, err := encMode.Marshal(suitSequence{Directive: suitDirectiveOverrideParams, Params: p})
	if err != nil {
		return nil, err
	}
	common, err := encMode.Marshal(suitCommon{Components: [][][]byte{{{0}}}, Shared: shared})
	if err != nil {
		return nil, err
	}
	return encMode.Marshal(suitManifest{Version: suitManifestVersion, Sequence: m.Sequence, Common: common})
}

// decodeManifest decodes and validates the manifest bytes the
// authentication wrapper's digest covers.
func decodeManifest(b []byte) (Manifest, error) {
	var m Manifest
	var sm suitManifest
	if err := decMode.Unmarshal(b, &sm); err != nil {
		return m, malformed("manifest: %v", err)
	}
	if sm.Version != suitManifestVersion {
		return m, malformed("manifest version %d, want %d", sm.Version, suitManifestVersion)
	}
	var c suitCommon
	if err := decMode.Unmarshal(sm.Common, &c); err != nil {
		return m, malformed("manifest common: %v", err)
	}
	if len(c.Components) != 1 || len(c.Components[0]) != 1 || !bytes.Equal(c.Components[0][0], []byte{0}) {
		return m, malformed("manifest components: want one, [h'00']")
	}
	var s suitSequence
	if err := decMode.Unmarshal(c.Shared, &s); err != nil {
		return m, malformed("manifest shared sequence: %v", err)
	}
	if s.Directive != suitDirectiveOverrideParams {
		return m, malformed("manifest shared sequence: directive %d, want %d", s.Directive, suitDirectiveOverrideParams)
	}
	p := &s.Params
	if p.Format > 0xFF || !Format(p.Format).known() {
		return m, malformed("unknown payload format %d", p.Format)
	}
	m = Manifest{
		Sequence:  sm.Sequence,
		Version:   p.Version,
		Class:     string(p.ClassID),
		Format:    Format(p.Format),
		ImageSize: p.ImageSize,
	}
	var err error
	if m.ImageDigest, err = decodeDigest("image digest", p.ImageDigest); err != nil {
		return Manifest{}, err
	}
	if m.Format.IsDelta() {
		if m.PayloadDigest, err = decodeDigest("payload digest", p.PayloadDigest); err != nil {
			return Manifest{}, err
		}
		if m.PrecursorDigest, err = decodeDigest("precursor digest", p.PrecursorDigest); err != nil {
			return Manifest{}, err
		}
		m.PayloadSize, m.PrecursorSize = p.PayloadSize, p.PrecursorSize
	} else {
		if p.PayloadDigest != nil || p.PayloadSize != 0 || p.PrecursorDigest != nil || p.PrecursorSize != 0 {
			return Manifest{}, malformed("full image with payload or precursor parameters")
		}
		m.PayloadDigest, m.PayloadSize = m.ImageDigest, m.ImageSize
	}
	if err := m.validate(); err != nil {
		return Manifest{}, err
	}
	again, err := encodeManifest(&m)
	if err != nil {
		return Manifest{}, malformed("manifest: %v", err)
	}
	if !bytes.Equal(again, b) {
		return Manifest{}, malformed("manifest is not in deterministic encoding")
	}
	return m, nil
}

// String returns a one-line summary for logs and CLIs.
func (m Manifest) String() string {
	s := fmt.Sprintf("seq %d %s %q %s image %d bytes sha256:%s", m.Sequence, m.Class, m.Version, m.Format, m.ImageSize, m.ImageDigest)
	if m.Format.IsDelta() {
		s += fmt.Sprintf(" from %d bytes sha256:%s, payload %d bytes", m.PrecursorSize, m.PrecursorDigest, m.PayloadSize)
	}
	return s
}

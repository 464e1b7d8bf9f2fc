package manifest

// The envelope: a tagged SUIT_Envelope, a map of three entries in
// deterministic order, the integrated payload last.
//
//	D8 6B              tag 107 (SUIT_Envelope_Tagged)
//	A3                 map(3)
//	02 58 73 <115>     suit-authentication-wrapper: bstr (cose.go)
//	03 <bstr head>     suit-manifest: bstr (suit.go)
//	   <manifest>
//	62 23 30           "#0": integrated payload key (URI "#0")
//	<bstr head>        payload length, 1..2^32-1
//	<payload>
//
// The envelope header is everything up to the payload's first byte.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

var (
	// envPrefix is the envelope up to the authentication wrapper's content.
	envPrefix = [6]byte{0xD8, 0x6B, 0xA3, 0x02, 0x58, authLen}
	// payloadKey is the integrated payload's key, the text "#0".
	payloadKey = [3]byte{0x62, '#', '0'}
)

const (
	manifestKeyAt      = len(envPrefix) + authLen // the 03 before the manifest
	payloadMagicDelta  = "FDELTA"
	payloadMagicPelion = "PELION/BSDIFF001"
)

// layout locates the parts of a complete envelope header.
type layout struct {
	manifestStart, manifestEnd int
	headerLen                  int    // bytes before the payload
	payloadLen                 uint64 // from the payload bstr's head
}

// bstrHead reads a definite-length byte string head in shortest form. n is
// the head's length, known from its first byte; complete says b holds all
// of it.
func bstrHead(b []byte) (arg uint64, n int, complete bool, err error) {
	if len(b) == 0 {
		return 0, 1, false, nil
	}
	if b[0]>>5 != 2 {
		return 0, 0, false, malformed("want a byte string, have initial byte 0x%02X", b[0])
	}
	ai := b[0] & 0x1F
	switch {
	case ai < 24:
		return uint64(ai), 1, true, nil
	case ai > 27:
		return 0, 0, false, malformed("byte string with initial byte 0x%02X", b[0])
	}
	n = 1 + 1<<(ai-24)
	if len(b) < n {
		return 0, n, false, nil
	}
	for _, c := range b[1:n] {
		arg = arg<<8 | uint64(c)
	}
	if min := [...]uint64{24, 1 << 8, 1 << 16, 1 << 32}[ai-24]; arg < min {
		return 0, 0, false, malformed("byte string length %d not in shortest form", arg)
	}
	return arg, n, true, nil
}

// matchPrefix checks the bytes of b at off against want, as far as b goes.
func matchPrefix(b []byte, off int, want []byte, what string) error {
	if off >= len(b) {
		return nil
	}
	have := b[off:min(len(b), off+len(want))]
	if !bytes.Equal(have, want[:len(have)]) {
		return malformed("%s: unexpected bytes % X at offset %d", what, have, off)
	}
	return nil
}

// scanHeader finds the envelope header at the start of b. It reports
// complete=false while b is a proper prefix of a header that would fit in
// max bytes, ErrTooLarge for a header that would not, and ErrMalformed as
// soon as b cannot start a package (a header longer than MaxEnvelope
// included).
func scanHeader(b []byte, max int) (l layout, complete bool, err error) {
	if err := matchPrefix(b, 0, envPrefix[:], "envelope"); err != nil {
		return l, false, err
	}
	if err := matchPrefix(b, manifestKeyAt, []byte{0x03}, "envelope manifest key"); err != nil {
		return l, false, err
	}
	pos := manifestKeyAt + 1
	if len(b) < pos {
		return l, false, nil
	}
	mlen, n, ok, err := bstrHead(b[pos:])
	if err != nil {
		return l, false, fmt.Errorf("envelope manifest: %w", err)
	}
	// The smallest rest of a header: payload key and a one-byte head.
	if err := checkHeaderLen(uint64(pos+n)+mlen+uint64(len(payloadKey))+1, max); err != nil {
		return l, false, err
	}
	if !ok {
		return l, false, nil
	}
	l.manifestStart = pos + n
	l.manifestEnd = l.manifestStart + int(mlen)
	if err := matchPrefix(b, l.manifestEnd, payloadKey[:], "envelope payload key"); err != nil {
		return l, false, err
	}
	pos = l.manifestEnd + len(payloadKey)
	if len(b) < pos {
		return l, false, nil
	}
	plen, n, ok, err := bstrHead(b[pos:])
	if err != nil {
		return l, false, fmt.Errorf("envelope payload: %w", err)
	}
	if err := checkHeaderLen(uint64(pos+n), max); err != nil {
		return l, false, err
	}
	if !ok {
		return l, false, nil
	}
	l.headerLen, l.payloadLen = pos+n, plen
	return l, true, nil
}

// checkHeaderLen refuses a header that needs at least need bytes when no
// valid package has one that long (ErrMalformed) or when it is longer than
// the max bytes the caller can buffer (ErrTooLarge).
func checkHeaderLen(need uint64, max int) error {
	if need > MaxEnvelope {
		return malformed("envelope header of at least %d bytes, more than any package has (%d)", need, MaxEnvelope)
	}
	if need > uint64(max) {
		return fmt.Errorf("%w: envelope header of at least %d bytes, more than the %d that can be buffered", ErrTooLarge, need, max)
	}
	return nil
}

// verifyHeader checks a complete envelope header: the authentication
// wrapper, then the manifest it covers, then that the payload's length is
// the manifest's.
func verifyHeader(hdr []byte, l layout, pub *ecdsa.PublicKey, checkSig bool) (Manifest, error) {
	mb := hdr[l.manifestStart:l.manifestEnd]
	if err := checkAuth(hdr[len(envPrefix):manifestKeyAt], mb, pub, checkSig); err != nil {
		return Manifest{}, err
	}
	m, err := decodeManifest(mb)
	if err != nil {
		return Manifest{}, err
	}
	if l.payloadLen != m.PayloadSize {
		return Manifest{}, malformed("integrated payload of %d bytes, manifest says %d", l.payloadLen, m.PayloadSize)
	}
	return m, nil
}

// Build returns the whole package: envelope with the signed manifest, then
// the payload. It fills PayloadDigest/PayloadSize from payload; for a full
// image also ImageDigest and ImageSize when both are zero (otherwise they
// must be the payload's). A delta payload must start with its format's
// magic ("FDELTA" or "PELION/BSDIFF001"). The signature is deterministic,
// so the same input gives the same bytes.
func Build(m Manifest, payload []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	if key == nil {
		return nil, errors.New("build package: no signing key")
	}
	if err := checkPublicKey(&key.PublicKey); err != nil {
		return nil, fmt.Errorf("build package: signing key: %w", err)
	}
	if uint64(len(payload)) > MaxSize {
		return nil, fmt.Errorf("build package: %w: payload of %d bytes, more than %d", ErrTooLarge, len(payload), uint64(MaxSize))
	}
	m.PayloadDigest, m.PayloadSize = sha256.Sum256(payload), uint64(len(payload))
	switch m.Format {
	case FormatFull:
		if m.ImageDigest == (Digest{}) && m.ImageSize == 0 {
			m.ImageDigest, m.ImageSize = m.PayloadDigest, m.PayloadSize
		}
	case FormatDelta:
		if !bytes.HasPrefix(payload, []byte(payloadMagicDelta)) {
			return nil, fmt.Errorf("build package: %w: delta payload does not start with %q", ErrMalformed, payloadMagicDelta)
		}
	case FormatPelion:
		if !bytes.HasPrefix(payload, []byte(payloadMagicPelion)) {
			return nil, fmt.Errorf("build package: %w: pelion payload does not start with %q", ErrMalformed, payloadMagicPelion)
		}
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("build package: %w", err)
	}
	mb, err := encodeManifest(&m)
	if err != nil {
		return nil, fmt.Errorf("build package: encode manifest: %w", err)
	}
	auth, err := authWrapper(sha256.Sum256(mb), key)
	if err != nil {
		return nil, fmt.Errorf("build package: %w", err)
	}
	pkg := make([]byte, 0, len(envPrefix)+authLen+1+9+len(mb)+len(payloadKey)+9+len(payload))
	pkg = append(pkg, envPrefix[:]...)
	pkg = append(pkg, auth...)
	pkg = append(pkg, 0x03)
	pkg = appendBstrHead(pkg, uint64(len(mb)))
	pkg = append(pkg, mb...)
	pkg = append(pkg, payloadKey[:]...)
	pkg = appendBstrHead(pkg, uint64(len(payload)))
	if hl := len(pkg); hl > MaxEnvelope {
		// validate bounds every field, so this is a bug, not bad input.
		return nil, fmt.Errorf("build package: envelope header of %d bytes exceeds MaxEnvelope %d", hl, MaxEnvelope)
	}
	return append(pkg, payload...), nil
}

func appendBstrHead(b []byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(b, 0x40|byte(n))
	case n <= 0xFF:
		return append(b, 0x58, byte(n))
	case n <= 0xFFFF:
		return append(b, 0x59, byte(n>>8), byte(n))
	case n <= 0xFFFFFFFF:
		return append(b, 0x5A, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0x5B, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// Parse reads a whole package (server side: to list/inspect), verifying
// the signature with pub (nil pub: skip the signature check, for inspection
// only; the manifest must still match the digest the signature would
// cover) and the payload digest; returns the manifest and the payload
// slice (a sub-slice of pkg). It accepts exactly what a Verifier with
// maxEnvelope MaxEnvelope accepts, with the same errors.
func Parse(pkg []byte, pub *ecdsa.PublicKey) (Manifest, []byte, error) {
	l, complete, err := scanHeader(pkg[:min(len(pkg), MaxEnvelope)], MaxEnvelope)
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("parse package: %w", err)
	}
	if !complete {
		return Manifest{}, nil, fmt.Errorf("parse package: %w: envelope cut short after %d bytes: %w", ErrMalformed, len(pkg), io.ErrUnexpectedEOF)
	}
	m, err := verifyHeader(pkg[:l.headerLen], l, pub, pub != nil)
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("parse package: %w", err)
	}
	payload := pkg[l.headerLen:]
	if uint64(len(payload)) > m.PayloadSize {
		return Manifest{}, nil, fmt.Errorf("parse package: %w: %d bytes after the payload", ErrMalformed, uint64(len(payload))-m.PayloadSize)
	}
	if err := checkPayload(&m, uint64(len(payload)), sha256.Sum256(payload)); err != nil {
		return Manifest{}, nil, fmt.Errorf("parse package: %w", err)
	}
	return m, payload[:len(payload):len(payload)], nil
}

// checkPayload compares what arrived with the manifest.
func checkPayload(m *Manifest, n uint64, sum Digest) error {
	if n < m.PayloadSize {
		return fmt.Errorf("%w: payload cut short, %d of %d bytes: %w", ErrDigest, n, m.PayloadSize, io.ErrUnexpectedEOF)
	}
	if sum != m.PayloadDigest {
		return fmt.Errorf("%w: payload sha256 %s, manifest says %s", ErrDigest, sum, m.PayloadDigest)
	}
	return nil
}

package manifest

// The authentication wrapper: a SUIT_Authentication with the manifest's
// SUIT_Digest and one COSE_Sign1 (RFC 9052 §4.2) whose payload is detached:
// it is the encoded SUIT_Digest itself. With ES256 and an empty unprotected
// header every byte but the digest and the signature is fixed, so it is
// built and checked as a template, as a device would:
//
//	82                               array(2)
//	   58 24                         bstr(36): SUIT_Digest
//	      82 2F 58 20 <32 bytes>     [-16 (SHA-256), digest of the manifest bstr's content]
//	   58 4A                         bstr(74): COSE_Sign1_Tagged
//	      D2 84                      tag 18, array(4)
//	         43 A1 01 26             protected: bstr << {1: -7} >> (alg ES256)
//	         A0                      unprotected: {}
//	         F6                      payload: nil (detached)
//	         58 40 <64 bytes>        signature: r || s, 32 bytes each, big-endian

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

const (
	authLen = 3 + suitDigestLen + 12 + 64 // 115
	sigLen  = 64
)

var (
	authHead = [3]byte{0x82, 0x58, suitDigestLen}
	coseHead = [12]byte{0x58, 0x4A, 0xD2, 0x84, 0x43, 0xA1, 0x01, 0x26, 0xA0, 0xF6, 0x58, 0x40}
	// sigStructHead is the Sig_structure (RFC 9052 §4.4) up to its payload:
	// ["Signature1", << {1: -7} >>, h'' (external_aad), bstr(36) ...].
	sigStructHead = [19]byte{0x84, 0x6A, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1', 0x43, 0xA1, 0x01, 0x26, 0x40, 0x58, suitDigestLen}
)

// toBeSigned returns the SHA-256 of the Sig_structure over the encoded
// SUIT_Digest: what ES256 signs.
func toBeSigned(suitDigest []byte) []byte {
	h := sha256.New()
	h.Write(sigStructHead[:])
	h.Write(suitDigest)
	return h.Sum(nil)
}

// authWrapper signs the manifest digest and returns the wrapper's bytes.
func authWrapper(manifestDigest Digest, key *ecdsa.PrivateKey) ([]byte, error) {
	sd := encodeDigest(manifestDigest)
	// A nil random source makes the signature deterministic (RFC 6979).
	der, err := key.Sign(nil, toBeSigned(sd), crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign manifest: %w", err)
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("sign manifest: unexpected signature encoding")
	}
	b := make([]byte, 0, authLen)
	b = append(b, authHead[:]...)
	b = append(b, sd...)
	b = append(b, coseHead[:]...)
	b = append(b, make([]byte, sigLen)...)
	rs.R.FillBytes(b[len(b)-sigLen : len(b)-sigLen/2])
	rs.S.FillBytes(b[len(b)-sigLen/2:])
	return b, nil
}

// checkAuth checks the wrapper's shape, that it covers manifest, and (with
// a key) its signature.
func checkAuth(auth, manifest []byte, pub *ecdsa.PublicKey, checkSig bool) error {
	if len(auth) != authLen || !bytes.Equal(auth[:3], authHead[:]) ||
		!bytes.Equal(auth[3+suitDigestLen:3+suitDigestLen+12], coseHead[:]) {
		return malformed("authentication wrapper is not one ES256 COSE_Sign1 over a SHA-256 digest")
	}
	sd := auth[3 : 3+suitDigestLen]
	signed, err := decodeDigest("authentication wrapper digest", sd)
	if err != nil {
		return err
	}
	if Digest(sha256.Sum256(manifest)) != signed {
		return fmt.Errorf("%w: the manifest is not the one the signature covers", ErrSignature)
	}
	if !checkSig {
		return nil
	}
	if err := checkPublicKey(pub); err != nil {
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	sig := auth[authLen-sigLen:]
	der, err := asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(sig[:sigLen/2]),
		new(big.Int).SetBytes(sig[sigLen/2:]),
	})
	if err != nil || !ecdsa.VerifyASN1(pub, toBeSigned(sd), der) {
		return fmt.Errorf("%w: ES256 signature does not verify", ErrSignature)
	}
	return nil
}

// checkPublicKey accepts a valid P-256 public key.
func checkPublicKey(pub *ecdsa.PublicKey) (err error) {
	switch {
	case pub == nil:
		return errors.New("no public key")
	case pub.Curve != elliptic.P256():
		return errors.New("public key is not on P-256")
	}
	// crypto/ecdsa panics on a hand-made key without coordinates.
	defer func() {
		if recover() != nil {
			err = errors.New("public key has no point")
		}
	}()
	if _, err := pub.Bytes(); err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	return nil
}

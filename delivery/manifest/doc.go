// Package manifest builds, parses and verifies firmware update packages: a
// signed manifest with the payload (a full image or a delta patch)
// integrated after it, in the shape of an IETF SUIT envelope (CBOR, with a
// COSE_Sign1 ES256 signature over the manifest's SHA-256 digest).
//
// A package is laid out so that a device can check it as it streams in:
//
//	107({                           SUIT_Envelope_Tagged
//	  2:    << [digest, signature] >>,   authentication wrapper (115 bytes)
//	  3:    << manifest >>,              sequence, version, class, digests, sizes
//	  "#0": payload                      integrated payload, always last
//	})
//
// Everything before the first payload byte (the envelope header: 217-224
// bytes for a full image, 309-322 for a delta, never more than MaxEnvelope)
// is buffered and verified first: the signature over the manifest digest,
// the manifest digest, the manifest itself. Only then are payload bytes
// released, hashed as they pass; the payload digest is compared at the end.
// docs/package-format.md specifies the bytes for device vendors and lists
// where this profile departs from SUIT.
//
// The server side uses Build and Parse; a device (or the simulator) feeds a
// Verifier, whose state can be saved and restored to resume an interrupted
// download. Encoding is CBOR core deterministic, signatures are
// deterministic (RFC 6979), so Build gives the same bytes for the same
// input, and the decoder accepts exactly the encodings Build produces.
package manifest

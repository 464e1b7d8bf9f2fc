// Package model owns the LwM2M data model and its content-format codecs:
// paths (/o/i/r/ri), typed values, Leshan-style nodes (Object, ObjectInstance,
// Resource, ResourceInstance), the built-in object definitions of the OMA
// registry (Objects 0, 1, 3, 4, 5 and 9) and the TLV codec (content format
// 11542).
//
// It imports only the standard library and fxamacker/cbor, and knows nothing of CoAP: the
// transport binding lives in its own package and calls into this one.
//
// Decoders never trust a length from the wire: every allocation is bounded by
// the size of the input, and malformed input is reported with an error
// wrapping one of the Err* sentinels, never a panic.
package model

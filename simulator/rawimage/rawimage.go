package rawimage

import (
	"bytes"
	"crypto/sha256"
	"errors"
)

// Errors of both formats, for errors.Is. The parsers wrap them with what
// exactly was wrong.
var (
	// ErrFormat: the bytes are not an image of the format, or one whose
	// fields contradict each other or its length.
	ErrFormat = errors.New("malformed firmware image")
	// ErrDigest: a well-formed image whose content does not match the
	// SHA-256 it carries, as after corruption in transit or in flash.
	ErrDigest = errors.New("firmware image digest mismatch")
	// ErrShort: too few bytes to hold the header, though what is there may
	// begin one; a device reading its first block needs more.
	ErrShort = errors.New("too few bytes for a firmware image header")
)

// digestMatches reports whether sum is the SHA-256 of data. Both formats
// end their checks with it.
func digestMatches(data, sum []byte) bool {
	h := sha256.Sum256(data)
	return bytes.Equal(h[:], sum)
}

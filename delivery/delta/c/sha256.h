/*
 * sha256.h - small SHA-256 (FIPS 180-4) for the delta applier.
 *
 * Written for this project; no libc beyond <stdint.h>, <stddef.h>,
 * <string.h>. Released into the public domain (or, where that is not
 * possible, under the same terms as the rest of this repository).
 *
 * The context is plain data (no pointers): it may be copied to flash and
 * back together with the applier state.
 */
#ifndef FD_SHA256_H
#define FD_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define FD_SHA256_SIZE 32

typedef struct fd_sha256 {
	uint32_t h[8];    /* chaining value */
	uint32_t len_lo;  /* message length in bytes, low word */
	uint32_t len_hi;  /* high word */
	uint8_t buf[64];  /* pending block; len_lo % 64 bytes are valid */
} fd_sha256;

void fd_sha256_init(fd_sha256 *s);
void fd_sha256_update(fd_sha256 *s, const uint8_t *data, size_t len);
/* fd_sha256_final writes the digest; s must be re-initialised before reuse. */
void fd_sha256_final(fd_sha256 *s, uint8_t out[FD_SHA256_SIZE]);

#endif

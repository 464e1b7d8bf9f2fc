/*
 * fdelta.h - streaming applier for FDELTA version 1 patches
 * (docs/delta-format.md), for devices.
 *
 * C99, no heap, no libc beyond <stdint.h>, <stddef.h> and <string.h>
 * (memcpy, memmove, memset, memcmp). All state lives in one fd_applier of fixed
 * size (static-asserted to fit the format's 7,418-byte RAM bound); the
 * applier keeps no static variables. Both header flags of version 1 are
 * implemented: plain patches and the ARM Thumb-2 branch transform (§2.4).
 *
 * Use:
 *
 *     static fd_applier a;                       // or on a big enough stack
 *     fd_init(&a, old_size, read_old, write_new, ctx);
 *     for each received block of the patch:      // any size, in order
 *         if ((err = fd_write(&a, block, len)) != FD_OK) abort the update;
 *     if ((err = fd_finish(&a)) != FD_OK) abort the update;
 *     // the new image is complete and its SHA-256 matched
 *
 * Before the first byte of the new image is written, fd_write checks the
 * header (magic, CRC, version, flags, RAM bound, sizes) and the SHA-256 of
 * the whole old image, which it reads once through read_old in pieces of
 * at most FD_OLD_CACHE bytes (this happens inside the fd_write call that
 * completes the 92-byte header). The new image is then passed to write_new
 * strictly in order, in pieces of at most FD_OUT_BUF bytes, and never read
 * back. Every byte decoded during an fd_write call has been passed to
 * write_new when the call returns. Stack use on a Cortex-M4 (-Os) is
 * about 320 bytes plus the callbacks' own. A chunk must not lie inside the
 * fd_applier.
 *
 * Errors are sticky: once fd_write or fd_finish has returned an error, every
 * later call returns it again (except FD_E_INCOMPLETE from fd_finish, which
 * changes nothing and may be followed by more fd_write calls).
 *
 * Saving and resuming. Between two fd_write calls the whole state is the
 * fd_applier itself; it holds no pointers but the callbacks and ctx. A
 * device that wants to survive a power loss copies the first FD_SAVE_SIZE
 * bytes of the struct (or all of it) to flash at a point where the new
 * image written so far is committed, for example every flash page. To
 * resume it copies the saved bytes back into an fd_applier (a freshly
 * zeroed one is fine; the bytes past FD_SAVE_SIZE are scratch), calls
 * fd_rebind() to set the callbacks again, keeps the first fd_new_written()
 * bytes of the new image and feeds the patch from offset fd_patch_offset().
 * The saved bytes are only valid for the same build of this file (same
 * struct layout, checked by fd_rebind) and the same old image; protect them
 * with the device's own checksum. (They are the struct's own layout, not
 * the Go applier's serialisation of docs §4.)
 */
#ifndef FDELTA_H
#define FDELTA_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Results. FD_OK is 0; errors are negative. */
enum {
	FD_OK = 0,
	FD_E_NOT_PATCH = -1,   /* magic is not "FDELTA" */
	FD_E_VERSION = -2,     /* unsupported version, or a flag bit other
	                        * than bit 0 (Thumb-2 transform) set */
	FD_E_HEADER = -3,      /* header CRC mismatch, or sizes that contradict
	                        * each other (body_size < 4 for a non-empty new
	                        * image, or body_size > 0 for an empty one) */
	FD_E_RAM = -4,         /* ram_bound outside [FD_RAM_BOUND, FD_RAM_MAX] */
	FD_E_OLD_SIZE = -5,    /* old_size differs from the old image's size */
	FD_E_OLD_DIGEST = -6,  /* SHA-256 of the old image differs */
	FD_E_CORRUPT = -7,     /* corrupt coded stream (bad or out-of-range
	                        * operation, stream ends inside a symbol) */
	FD_E_TRAILING = -8,    /* more than 92 + body_size patch bytes */
	FD_E_INCOMPLETE = -9,  /* fd_finish before the whole patch arrived or
	                        * before the new image was complete */
	FD_E_NEW_DIGEST = -10, /* SHA-256 of the new image differs */
	FD_E_IO = -11,         /* read_old or write_new returned non-zero */
	FD_E_STATE = -12       /* fd_rebind: not a state saved by this build, or
	                        * inconsistent (corrupted) state */
};

/* Format constants. */
#define FD_HEADER_SIZE 92
#define FD_RAM_BOUND 7546u /* ram_bound of every version 1 patch */
#define FD_NPROBS 3345     /* adaptive probabilities (docs §2.2) */
#define FD_CARRY 160       /* carried input between chunks (docs §3) */

/* Largest ram_bound this device accepts (the RAM it has for the applier).
 * Patches declaring less than FD_RAM_BOUND are refused too, as the Go
 * reference applier does: every version 1 patch declares exactly 7,418. */
#ifndef FD_RAM_MAX
#define FD_RAM_MAX FD_RAM_BOUND
#endif

/* Old-image read cache: diff bytes walk the old image forward, so each
 * read_old call fetches up to this many bytes (from a few bytes before the
 * one needed, which the Thumb transform reads too). */
#ifndef FD_OLD_CACHE
#define FD_OLD_CACHE 256
#endif

/* New-image write buffer: write_new receives up to this many bytes. */
#ifndef FD_OUT_BUF
#define FD_OUT_BUF 128
#endif

/* read_old fills buf with the len old-image bytes at offset (offset + len
 * never exceeds the old size); write_new takes the next len bytes of the
 * new image. Both return 0 on success; anything else stops the apply with
 * FD_E_IO. */
typedef int (*fd_read_old)(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len);
typedef int (*fd_write_new)(void *ctx, const uint8_t *buf, uint32_t len);

/* The applier. Treat the fields as private. */
typedef struct fd_applier {
	/* Callbacks: the only pointers; re-set by fd_rebind after a restore. */
	fd_read_old rd;
	fd_write_new wr;
	void *ctx;

	uint32_t magic;      /* FD_STATE_MAGIC of this build (layout check) */
	int32_t err;         /* sticky error, FD_OK while none */
	uint32_t old_size;   /* from fd_init */
	uint32_t new_size;   /* from the header */
	uint32_t body_size;  /* from the header */
	uint32_t received;   /* body bytes taken so far */
	uint32_t range;      /* range decoder */
	uint32_t code;
	uint32_t new_pos;    /* new-image bytes decoded (docs §2.2 new_pos) */
	uint32_t released;   /* new-image bytes released to out (Thumb: new_pos
	                      * less the bytes held back in pend) */
	uint32_t old_pos;    /* next old byte a diff adds to */
	uint32_t diff_left;  /* of the current operation */
	uint32_t extra_left;
	uint32_t zeros_left; /* of a long zero run (docs §2.3) */
	uint32_t cache_pos;  /* old-image offset of cache[0] */
	uint16_t cache_len;  /* valid bytes in cache */
	uint16_t out_len;    /* bytes waiting in out (0 between calls) */
	uint8_t phase;       /* header, coder init, operation, bytes, done, finished */
	uint8_t flags;       /* header flags (bit 0: Thumb-2 branch transform) */
	uint8_t hdr_len;     /* header bytes received (0-92) */
	uint8_t carry_len;   /* bytes in carry (0-160) */
	uint8_t zero_run;    /* zero diff bytes just decoded, capped at 15 */
	uint8_t prev;        /* last decoded new-image byte */
	uint8_t pend_len;    /* Thumb: decoded bytes held back (0-3 between units) */
	uint8_t nonzero;     /* after a long zero run: the next diff byte is non-zero */
	uint8_t pend[4];     /* Thumb: the held-back bytes */
	uint8_t new_sha256[FD_SHA256_SIZE]; /* from the header */
	fd_sha256 sha;                      /* of the new image */
	/* Probabilities in the order of docs §2.2: zero[16], diff[4][256],
	 * extra[8][256], seek_len[64], diff_len[64], extra_len[64], seek_sign. */
	uint16_t prob[FD_NPROBS];
	/* The header while it arrives, then input carried between chunks. */
	uint8_t carry[FD_CARRY];

	/* Scratch, empty or re-readable between calls: not part of the saved
	 * state (FD_SAVE_SIZE ends here). */
	uint8_t out[FD_OUT_BUF];
	uint8_t cache[FD_OLD_CACHE];
} fd_applier;

/* Bytes of an fd_applier a device must save to resume (a prefix). */
#define FD_SAVE_SIZE (offsetof(fd_applier, out))

/* The whole applier must fit the RAM every version 1 patch declares. */
typedef char fd_applier_fits_ram_bound[(sizeof(fd_applier) <= FD_RAM_BOUND) ? 1 : -1];
typedef char fd_ram_max_at_least_bound[(FD_RAM_MAX >= FD_RAM_BOUND) ? 1 : -1];
typedef char fd_old_cache_in_range[(FD_OLD_CACHE >= 4 && FD_OLD_CACHE <= 65535) ? 1 : -1];
typedef char fd_out_buf_fits_u16[(FD_OUT_BUF >= 1 && FD_OUT_BUF <= 65535) ? 1 : -1];

/* fd_init starts applying a patch to an old image of old_size bytes. */
void fd_init(fd_applier *a, uint32_t old_size, fd_read_old rd, fd_write_new wr, void *ctx);

/* fd_write feeds the next len patch bytes (any len, including 0). */
int fd_write(fd_applier *a, const uint8_t *chunk, size_t len);

/* fd_finish checks that exactly 92 + body_size bytes arrived, that the new
 * image is complete, and that its SHA-256 is the header's. FD_OK means the
 * new image is good. */
int fd_finish(fd_applier *a);

/* fd_rebind re-sets the callbacks of an applier restored from saved bytes
 * and checks that the bytes are a consistent state of this build: FD_OK,
 * or FD_E_STATE (sticky) if not. */
int fd_rebind(fd_applier *a, fd_read_old rd, fd_write_new wr, void *ctx);

/* Patch bytes taken so far, header included: after a restore, feed the
 * patch from this offset. */
uint32_t fd_patch_offset(const fd_applier *a);

/* New-image bytes passed to write_new so far (between calls). */
uint32_t fd_new_written(const fd_applier *a);

/* fd_error_name returns "FD_OK", "FD_E_CORRUPT", ... for a result. */
const char *fd_error_name(int err);

#ifdef __cplusplus
}
#endif

#endif

/*
 * fdelta.c - streaming applier for FDELTA version 1 patches; see fdelta.h
 * and docs/delta-format.md. Mirrors the Go reference applier
 * (delivery/delta/apply.go) decision for decision, so that both accept and
 * refuse the same patches with the same error.
 */
#include "fdelta.h"

#include <string.h>

/* Layout check for saved state: changes with the struct's size and the
 * buffer sizes this build was compiled with. */
#define FD_STATE_MAGIC (0x46444131u ^ ((uint32_t)sizeof(fd_applier) << 8) ^ ((uint32_t)FD_OLD_CACHE << 20))

enum {
	PHASE_HEADER,   /* collecting the 92-byte header */
	PHASE_INIT,     /* waiting for the coder's first four bytes */
	PHASE_OP,       /* next: an operation */
	PHASE_BYTES,    /* next: a byte of the current operation */
	PHASE_DONE,     /* new image complete; flush bytes may follow */
	PHASE_FINISHED  /* fd_finish succeeded */
};

/* Offsets in prob[] (docs §2.2, in its table's order). */
#define P_ZERO 0
#define P_ZRUN (P_ZERO + 16)
#define P_DIFF (P_ZRUN + 64)
#define P_EXTRA (P_DIFF + 4 * 256)
#define P_SEEK_LEN (P_EXTRA + 8 * 256)
#define P_DIFF_LEN (P_SEEK_LEN + 64)
#define P_EXTRA_LEN (P_DIFF_LEN + 64)
#define P_SEEK_SIGN (P_EXTRA_LEN + 64)
typedef char fd_prob_count_matches[(P_SEEK_SIGN + 1 == FD_NPROBS) ? 1 : -1];

/* Most input one unit can read (docs §3): an operation is a sign bit and
 * three integers of 6 tree bits and up to 39 direct bits, a tree bit reads
 * at most 2 bytes, a direct bit 1; a byte is at most 9 tree bits. */
#define MAX_OP_INPUT (2 + 3 * (6 * 2 + 39))
#define MAX_BYTE_INPUT ((6 * 2 + 39) + 8 * 2)
#define MAX_OVERREAD 4
#define MAX_INT_BITS 40
typedef char fd_carry_holds_unit[(MAX_OP_INPUT < FD_CARRY && FD_HEADER_SIZE <= FD_CARRY) ? 1 : -1];

/* Range decoder over the carried bytes, then the current chunk. Lives on
 * the stack during one fd_write; range and code are stored back. */
typedef struct {
	uint32_t range, code;
	const uint8_t *p, *end;   /* current source */
	const uint8_t *p2, *end2; /* the next one (the chunk), then empty */
	uint32_t over;            /* reads past the end of the input */
} dec;

static uint32_t avail(const dec *d)
{
	return (uint32_t)(d->end - d->p) + (uint32_t)(d->end2 - d->p2);
}

static uint32_t next_byte(dec *d)
{
	if (d->p == d->end) {
		if (d->p2 == d->end2) {
			d->over++;
			return 0;
		}
		d->p = d->p2;
		d->end = d->end2;
		d->p2 = d->end2;
	}
	return *d->p++;
}

static void normalize(dec *d)
{
	while (d->range < (1u << 24)) {
		d->range <<= 8;
		d->code = d->code << 8 | next_byte(d);
	}
}

static uint32_t bit(dec *d, uint16_t *p)
{
	uint32_t bound = (d->range >> 11) * *p;
	uint32_t b;
	if (d->code < bound) {
		d->range = bound;
		*p = (uint16_t)(*p + ((2048u - *p) >> 5));
		b = 0;
	} else {
		d->code -= bound;
		d->range -= bound;
		*p = (uint16_t)(*p - (*p >> 5));
		b = 1;
	}
	normalize(d);
	return b;
}

/* tree decodes an nbits-bit value, most significant bit first, with the
 * probabilities t[1 .. 2^nbits - 1]. */
static uint32_t tree(dec *d, uint16_t *t, unsigned nbits)
{
	uint32_t m = 1;
	unsigned i;
	for (i = 0; i < nbits; i++)
		m = m << 1 | bit(d, &t[m]);
	return m - (1u << nbits);
}

/* get_uint decodes an integer (docs §2.1); 0 if its bit length is over 40. */
static int get_uint(dec *d, uint16_t *len_tree, uint64_t *v)
{
	uint32_t n = tree(d, len_tree, 6);
	uint64_t x = 1;
	uint32_t i;
	if (n > MAX_INT_BITS)
		return 0;
	if (n <= 1) {
		*v = n;
		return 1;
	}
	for (i = 1; i < n; i++) {
		uint32_t b = 0;
		d->range >>= 1;
		if (d->code >= d->range) {
			d->code -= d->range;
			b = 1;
		}
		x = x << 1 | b;
		normalize(d);
	}
	*v = x;
	return 1;
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	unsigned k;
	while (n--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int fail(fd_applier *a, int err)
{
	a->err = err;
	return err;
}

/* flush hashes and writes the buffered new-image bytes. */
static int flush(fd_applier *a)
{
	uint16_t n = a->out_len;
	if (n == 0)
		return FD_OK;
	a->out_len = 0;
	fd_sha256_update(&a->sha, a->out, n);
	if (a->wr(a->ctx, a->out, n) != 0)
		return FD_E_IO;
	return FD_OK;
}

/* release passes one byte of the new image on. */
static int release(fd_applier *a, uint8_t b)
{
	a->out[a->out_len++] = b;
	a->released++;
	if (a->out_len == FD_OUT_BUF)
		return flush(a);
	return FD_OK;
}

/* Thumb-2 branch transform (docs §2.4). */
static int thumb_candidate(const uint8_t *b)
{
	return (b[1] & 0xF8) == 0xF0 && ((b[3] & 0xF8) == 0xF8 || (b[3] & 0xF8) == 0xB8);
}

/* thumb_shift adds delta to the 22-bit field of the candidate b. */
static void thumb_shift(uint8_t *b, uint32_t delta)
{
	uint32_t f = (uint32_t)(b[1] & 7) << 19 | (uint32_t)b[0] << 11 | (uint32_t)(b[3] & 7) << 8 | b[2];
	f = (f + delta) & 0x3FFFFFu;
	b[1] = (uint8_t)((b[1] & 0xF8) | ((f >> 19) & 7));
	b[0] = (uint8_t)(f >> 11);
	b[3] = (uint8_t)((b[3] & 0xF8) | ((f >> 8) & 7));
	b[2] = (uint8_t)f;
}

/* emit passes a decoded byte on; with the Thumb transform, bytes wait in
 * pend until the 4-byte window at the next even offset is known to be a
 * branch (inverse-transformed, released whole) or not (2 bytes released). */
static int emit(fd_applier *a, uint8_t b)
{
	int err = FD_OK;
	unsigned i;

	a->prev = b;
	a->new_pos++;
	if ((a->flags & 1) == 0)
		return release(a, b);
	a->pend[a->pend_len++] = b;
	if (a->pend_len < 4)
		return FD_OK;
	if (thumb_candidate(a->pend)) {
		thumb_shift(a->pend, 0u - ((a->released + 4) >> 1));
		for (i = 0; i < 4 && err == FD_OK; i++)
			err = release(a, a->pend[i]);
		a->pend_len = 0;
		return err;
	}
	err = release(a, a->pend[0]);
	if (err == FD_OK)
		err = release(a, a->pend[1]);
	a->pend[0] = a->pend[2];
	a->pend[1] = a->pend[3];
	a->pend_len = 2;
	return err;
}

/* release_pending writes the bytes held back at the end of the image:
 * fewer than four cannot start a branch. */
static int release_pending(fd_applier *a)
{
	int err = FD_OK;
	unsigned i;
	for (i = 0; i < a->pend_len && err == FD_OK; i++)
		err = release(a, a->pend[i]);
	a->pend_len = 0;
	return err;
}

/* old_byte reads the old image through the cache. pos < old_size is
 * guaranteed by the operation checks. */
static int old_byte(fd_applier *a, uint32_t pos, uint8_t *b)
{
	if (pos < a->cache_pos || pos - a->cache_pos >= a->cache_len) {
		/* Start 3 bytes early: the Thumb transform looks back that far. */
		uint32_t from = pos < 3 ? 0 : pos - 3;
		uint32_t n = a->old_size - from;
		if (n > FD_OLD_CACHE)
			n = FD_OLD_CACHE;
		a->cache_len = 0;
		if (a->rd(a->ctx, from, a->cache, n) != 0)
			return FD_E_IO;
		a->cache_pos = from;
		a->cache_len = (uint16_t)n;
	}
	*b = a->cache[pos - a->cache_pos];
	return FD_OK;
}

/* old_byte_t reads an old byte as the generator saw it: through the Thumb
 * transform when the patch uses it. A byte belongs to at most one branch
 * candidate, which starts at its halfword or the one before. */
static int old_byte_t(fd_applier *a, uint32_t pos, uint8_t *b)
{
	uint32_t h = pos & ~1u;
	unsigned k, i;
	int err;

	if ((a->flags & 1) == 0)
		return old_byte(a, pos, b);
	for (k = 0; k < 2; k++) {
		uint8_t w[4];
		uint32_t c = h;
		if (k == 1) {
			if (h < 2)
				break;
			c = h - 2;
		}
		if (a->old_size < 4 || c > a->old_size - 4)
			continue;
		for (i = 0; i < 4; i++)
			if ((err = old_byte(a, c + i, &w[i])) != FD_OK)
				return err;
		if (thumb_candidate(w)) {
			thumb_shift(w, (c + 4) >> 1);
			*b = w[pos - c];
			return FD_OK;
		}
	}
	return old_byte(a, pos, b);
}

/* start checks the completed header and the old image (docs §1), in the
 * Go applier's order: magic, CRC, version and flags, body size, RAM bound,
 * old size, old digest. Nothing of the new image is written before. */
static int start(fd_applier *a)
{
	const uint8_t *h = a->carry;
	uint32_t ram_bound, off;
	uint8_t digest[FD_SHA256_SIZE];

	if (memcmp(h, "FDELTA", 6) != 0)
		return FD_E_NOT_PATCH;
	if (crc32_ieee(h, 88) != le32(h + 88))
		return FD_E_HEADER;
	if (h[6] != 1 || (h[7] & ~1u) != 0)
		return FD_E_VERSION;
	a->flags = h[7];
	a->new_size = le32(h + 12);
	a->body_size = le32(h + 16);
	ram_bound = le32(h + 20);
	if (a->new_size > 0 && a->body_size < 4)
		return FD_E_HEADER;
	/* docs §1 step 4: an empty new image has an empty body. (The Go
	 * reference applier accepts and ignores a body here.) */
	if (a->new_size == 0 && a->body_size != 0)
		return FD_E_HEADER;
	if (ram_bound > FD_RAM_MAX || ram_bound < FD_RAM_BOUND)
		return FD_E_RAM;
	if (le32(h + 8) != a->old_size)
		return FD_E_OLD_SIZE;

	fd_sha256_init(&a->sha);
	for (off = 0; off < a->old_size;) {
		uint32_t n = a->old_size - off;
		if (n > FD_OLD_CACHE)
			n = FD_OLD_CACHE;
		if (a->rd(a->ctx, off, a->cache, n) != 0)
			return FD_E_IO;
		fd_sha256_update(&a->sha, a->cache, n);
		off += n;
	}
	fd_sha256_final(&a->sha, digest);
	if (memcmp(digest, h + 24, FD_SHA256_SIZE) != 0)
		return FD_E_OLD_DIGEST;

	memcpy(a->new_sha256, h + 56, FD_SHA256_SIZE);
	fd_sha256_init(&a->sha);
	for (off = 0; off < FD_NPROBS; off++)
		a->prob[off] = 1024;
	a->cache_len = 0;
	a->carry_len = 0;
	a->phase = a->new_size == 0 ? PHASE_DONE : PHASE_INIT;
	return FD_OK;
}

/* next_op decodes an operation and checks it (docs §2.3). */
static int next_op(fd_applier *a, dec *d)
{
	uint32_t neg = bit(d, &a->prob[P_SEEK_SIGN]);
	uint64_t seek, diff, extra;
	int64_t pos;

	if (!get_uint(d, &a->prob[P_SEEK_LEN], &seek) ||
	    !get_uint(d, &a->prob[P_DIFF_LEN], &diff) ||
	    !get_uint(d, &a->prob[P_EXTRA_LEN], &extra))
		return FD_E_CORRUPT;
	/* Redundant with the checks below for 32-bit sizes; kept as in Go. */
	if (seek > (uint64_t)1 << 32 || diff > (uint64_t)1 << 32 || extra > (uint64_t)1 << 32)
		return FD_E_CORRUPT;
	if (diff + extra == 0)
		return FD_E_CORRUPT;
	pos = neg ? (int64_t)a->old_pos - (int64_t)seek : (int64_t)a->old_pos + (int64_t)seek;
	if (pos < 0 || pos + (int64_t)diff > (int64_t)a->old_size)
		return FD_E_CORRUPT;
	if ((uint64_t)a->new_pos + diff + extra > a->new_size)
		return FD_E_CORRUPT;
	a->old_pos = (uint32_t)pos;
	a->diff_left = (uint32_t)diff;
	a->extra_left = (uint32_t)extra;
	a->phase = PHASE_BYTES;
	return FD_OK;
}

/* next_byte_unit decodes and writes one byte of the current operation. */
static int next_byte_unit(fd_applier *a, dec *d)
{
	int err;
	uint8_t b;

	if (a->diff_left > 0) {
		uint8_t old, diff = 0;
		if ((err = old_byte_t(a, a->old_pos, &old)) != FD_OK)
			return err;
		if (!a->zeros_left && !a->nonzero && a->zero_run == 15) {
			/* A zero run that reached 15 goes on as one integer. */
			uint64_t k;
			if (!get_uint(d, &a->prob[P_ZRUN], &k) || k > a->diff_left)
				return FD_E_CORRUPT;
			a->zeros_left = (uint32_t)k;
			a->nonzero = k < a->diff_left;
		}
		if (a->zeros_left) {
			a->zeros_left--;
		} else if (a->nonzero || bit(d, &a->prob[P_ZERO + a->zero_run]) != 0) {
			/* A non-zero diff is 1 + 0..254; 255 would be 256. */
			uint32_t v = tree(d, &a->prob[P_DIFF + 256 * (a->new_pos & 3)], 8);
			a->nonzero = 0;
			if (v == 255)
				return FD_E_CORRUPT;
			diff = (uint8_t)(1 + v);
		}
		b = (uint8_t)(old + diff);
		if (diff == 0) {
			if (a->zero_run < 15)
				a->zero_run++;
		} else {
			a->zero_run = 0;
		}
		a->old_pos++;
		a->diff_left--;
	} else {
		uint32_t t = (a->new_pos & 1) << 2 | (uint32_t)(a->prev >> 6);
		b = (uint8_t)tree(d, &a->prob[P_EXTRA + 256 * t], 8);
		a->extra_left--;
	}
	err = emit(a, b);
	if (a->diff_left == 0 && a->extra_left == 0) {
		a->phase = PHASE_OP;
		if (a->new_pos == a->new_size) {
			a->phase = PHASE_DONE;
			if (err == FD_OK)
				err = release_pending(a);
		}
	}
	return err;
}

/* decode runs units while the input holds enough for one (or all the body
 * has arrived), then carries what is left to the next call. */
static int decode(fd_applier *a, const uint8_t *chunk, size_t len)
{
	dec d;
	int err = FD_OK;
	int final = a->received == a->body_size;

	d.range = a->range;
	d.code = a->code;
	d.p = a->carry;
	d.end = a->carry + a->carry_len;
	if (len > 0) {
		d.p2 = chunk;
		d.end2 = chunk + len;
	} else {
		d.p2 = d.end2 = d.end;
	}
	d.over = 0;

	while (a->phase != PHASE_DONE) {
		uint32_t need = MAX_BYTE_INPUT;
		if (a->phase == PHASE_INIT)
			need = 4;
		else if (a->phase == PHASE_OP)
			need = MAX_OP_INPUT;
		if (avail(&d) < need && !final)
			break;
		switch (a->phase) {
		case PHASE_INIT:
			d.range = 0xFFFFFFFFu;
			d.code = next_byte(&d) << 24;
			d.code |= next_byte(&d) << 16;
			d.code |= next_byte(&d) << 8;
			d.code |= next_byte(&d);
			a->phase = PHASE_OP;
			break;
		case PHASE_OP:
			err = next_op(a, &d);
			break;
		default:
			err = next_byte_unit(a, &d);
			break;
		}
		if (err != FD_OK)
			break;
		/* Past the body only in the unit that completes the image,
		 * and at most 4 bytes (docs §2.1). */
		if ((d.over > 0 && (!final || a->phase != PHASE_DONE)) || d.over > MAX_OVERREAD) {
			err = FD_E_CORRUPT;
			break;
		}
	}
	a->range = d.range;
	a->code = d.code;
	if (err != FD_OK)
		return err;

	/* Fewer bytes than one unit are left (or, when done, flush bytes). */
	a->carry_len = 0;
	if (a->phase != PHASE_DONE) {
		size_t n1 = (size_t)(d.end - d.p), n2 = (size_t)(d.end2 - d.p2);
		if (n1 + n2 > FD_CARRY) /* cannot happen: less than one unit */
			return FD_E_CORRUPT;
		if (n1 > 0)
			memmove(a->carry, d.p, n1);
		if (n2 > 0)
			memcpy(a->carry + n1, d.p2, n2);
		a->carry_len = (uint8_t)(n1 + n2);
	}
	return FD_OK;
}

void fd_init(fd_applier *a, uint32_t old_size, fd_read_old rd, fd_write_new wr, void *ctx)
{
	memset(a, 0, sizeof *a);
	a->rd = rd;
	a->wr = wr;
	a->ctx = ctx;
	a->magic = FD_STATE_MAGIC;
	a->old_size = old_size;
	a->phase = PHASE_HEADER;
}

int fd_write(fd_applier *a, const uint8_t *chunk, size_t len)
{
	int err, ferr;

	if (a->err != FD_OK)
		return a->err;
	if (a->phase == PHASE_HEADER) {
		size_t k = (size_t)(FD_HEADER_SIZE - a->hdr_len);
		if (k > len)
			k = len;
		if (k > 0)
			memcpy(a->carry + a->hdr_len, chunk, k);
		a->hdr_len = (uint8_t)(a->hdr_len + k);
		chunk += k;
		len -= k;
		if (a->hdr_len < FD_HEADER_SIZE)
			return FD_OK;
		if ((err = start(a)) != FD_OK)
			return fail(a, err);
	}
	if (len == 0 && a->phase != PHASE_INIT)
		return FD_OK;
	if (a->phase == PHASE_FINISHED || len > (size_t)(a->body_size - a->received))
		return fail(a, FD_E_TRAILING);
	a->received += (uint32_t)len;
	err = decode(a, chunk, len);
	ferr = flush(a);
	if (err == FD_OK)
		err = ferr;
	if (err != FD_OK)
		return fail(a, err);
	return FD_OK;
}

int fd_finish(fd_applier *a)
{
	uint8_t digest[FD_SHA256_SIZE];
	int err;

	if (a->err != FD_OK)
		return a->err;
	if (a->phase == PHASE_FINISHED)
		return FD_OK;
	if ((err = flush(a)) != FD_OK)
		return fail(a, err);
	if (a->phase != PHASE_DONE || a->received != a->body_size)
		return FD_E_INCOMPLETE;
	fd_sha256_final(&a->sha, digest);
	if (memcmp(digest, a->new_sha256, FD_SHA256_SIZE) != 0)
		return fail(a, FD_E_NEW_DIGEST);
	a->phase = PHASE_FINISHED;
	return FD_OK;
}

int fd_rebind(fd_applier *a, fd_read_old rd, fd_write_new wr, void *ctx)
{
	int ok;

	a->rd = rd;
	a->wr = wr;
	a->ctx = ctx;
	a->cache_len = 0; /* scratch: may not have been saved */
	a->cache_pos = 0;
	/* Everything an index or a length depends on, so that a corrupted
	 * restore cannot make the applier touch memory outside the struct. */
	ok = a->magic == FD_STATE_MAGIC &&
	     a->err <= 0 && a->err >= FD_E_STATE &&
	     a->phase <= PHASE_FINISHED &&
	     a->hdr_len <= FD_HEADER_SIZE &&
	     (a->phase == PHASE_HEADER || a->hdr_len == FD_HEADER_SIZE) &&
	     a->carry_len <= FD_CARRY && a->zero_run <= 15 && a->out_len == 0 &&
	     a->zeros_left <= a->diff_left && a->nonzero <= 1 &&
	     (!a->nonzero || a->zeros_left < a->diff_left) &&
	     a->flags <= 1 && a->pend_len <= 3 && a->released <= a->new_pos && a->released + a->pend_len == a->new_pos &&
	     (a->pend_len == 0 || (a->flags & 1) != 0) &&
	     a->received <= a->body_size && a->new_pos <= a->new_size &&
	     a->diff_left <= a->new_size - a->new_pos &&
	     a->extra_left <= a->new_size - a->new_pos - a->diff_left &&
	     a->old_pos <= a->old_size && a->diff_left <= a->old_size - a->old_pos &&
	     (a->phase != PHASE_BYTES || a->diff_left + a->extra_left > 0);
	if (ok && a->phase != PHASE_HEADER) {
		unsigned i;
		for (i = 0; i < FD_NPROBS && ok; i++)
			ok = a->prob[i] >= 1 && a->prob[i] <= 2047;
	}
	if (!ok) {
		a->out_len = 0;
		return fail(a, FD_E_STATE);
	}
	return FD_OK;
}

uint32_t fd_patch_offset(const fd_applier *a)
{
	return (uint32_t)a->hdr_len + a->received;
}

uint32_t fd_new_written(const fd_applier *a)
{
	return a->released - a->out_len;
}

const char *fd_error_name(int err)
{
	switch (err) {
	case FD_OK: return "FD_OK";
	case FD_E_NOT_PATCH: return "FD_E_NOT_PATCH";
	case FD_E_VERSION: return "FD_E_VERSION";
	case FD_E_HEADER: return "FD_E_HEADER";
	case FD_E_RAM: return "FD_E_RAM";
	case FD_E_OLD_SIZE: return "FD_E_OLD_SIZE";
	case FD_E_OLD_DIGEST: return "FD_E_OLD_DIGEST";
	case FD_E_CORRUPT: return "FD_E_CORRUPT";
	case FD_E_TRAILING: return "FD_E_TRAILING";
	case FD_E_INCOMPLETE: return "FD_E_INCOMPLETE";
	case FD_E_NEW_DIGEST: return "FD_E_NEW_DIGEST";
	case FD_E_IO: return "FD_E_IO";
	case FD_E_STATE: return "FD_E_STATE";
	}
	return "FD_E_UNKNOWN";
}

/*
 * sha256.c - small SHA-256 (FIPS 180-4) for the delta applier.
 * Public domain; see sha256.h.
 */
#include "sha256.h"

#include <string.h>

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

/* compress hashes one 64-byte block. The message schedule is kept as a
 * 16-word ring, so the stack use is 64 bytes plus the working variables. */
static void compress(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[16];
	uint32_t v[8];
	unsigned i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
	for (i = 0; i < 8; i++)
		v[i] = h[i];
	for (i = 0; i < 64; i++) {
		uint32_t a = v[0], e = v[4], t1, t2;
		if (i >= 16) {
			uint32_t w15 = w[(i + 1) & 15], w2 = w[(i + 14) & 15];
			uint32_t s0 = ROR(w15, 7) ^ ROR(w15, 18) ^ (w15 >> 3);
			uint32_t s1 = ROR(w2, 17) ^ ROR(w2, 19) ^ (w2 >> 10);
			w[i & 15] += s0 + w[(i + 9) & 15] + s1;
		}
		t1 = v[7] + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & v[5]) ^ (~e & v[6])) + K[i] + w[i & 15];
		t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & v[1]) ^ (a & v[2]) ^ (v[1] & v[2]));
		v[7] = v[6];
		v[6] = v[5];
		v[5] = v[4];
		v[4] = v[3] + t1;
		v[3] = v[2];
		v[2] = v[1];
		v[1] = v[0];
		v[0] = t1 + t2;
	}
	for (i = 0; i < 8; i++)
		h[i] += v[i];
}

void fd_sha256_init(fd_sha256 *s)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	memcpy(s->h, iv, sizeof iv);
	s->len_lo = 0;
	s->len_hi = 0;
	memset(s->buf, 0, sizeof s->buf);
}

void fd_sha256_update(fd_sha256 *s, const uint8_t *data, size_t len)
{
	while (len > 0) {
		size_t have = s->len_lo & 63;
		size_t k = 64 - have;
		if (k > len)
			k = len;
		memcpy(s->buf + have, data, k);
		data += k;
		len -= k;
		if (s->len_lo + (uint32_t)k < s->len_lo)
			s->len_hi++;
		s->len_lo += (uint32_t)k;
		if (have + k == 64)
			compress(s->h, s->buf);
	}
}

void fd_sha256_final(fd_sha256 *s, uint8_t out[FD_SHA256_SIZE])
{
	uint32_t hi = s->len_hi << 3 | s->len_lo >> 29, lo = s->len_lo << 3;
	size_t have = s->len_lo & 63;
	unsigned i;

	s->buf[have++] = 0x80;
	if (have > 56) {
		memset(s->buf + have, 0, 64 - have);
		compress(s->h, s->buf);
		have = 0;
	}
	memset(s->buf + have, 0, 56 - have);
	for (i = 0; i < 4; i++) {
		s->buf[56 + i] = (uint8_t)(hi >> (24 - 8 * i));
		s->buf[60 + i] = (uint8_t)(lo >> (24 - 8 * i));
	}
	compress(s->h, s->buf);
	for (i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(s->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)s->h[i];
	}
}

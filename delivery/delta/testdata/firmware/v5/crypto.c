/* Table-driven AES, SHA-256, HMAC, HKDF and AES-CCM for the DTLS record layer. */
#include <string.h>
#include "crypto.h"

#define GET32(p) (((uint32_t)(p)[0] << 24) | ((uint32_t)(p)[1] << 16) | ((uint32_t)(p)[2] << 8) | (p)[3])
#define PUT32(p, v)                    \
    do {                               \
        (p)[0] = (uint8_t)((v) >> 24); \
        (p)[1] = (uint8_t)((v) >> 16); \
        (p)[2] = (uint8_t)((v) >> 8);  \
        (p)[3] = (uint8_t)(v);         \
    } while (0)

static const uint8_t rcon[10] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36 };

static uint32_t sub_word(uint32_t w)
{
    return ((uint32_t)aes_sbox[w >> 24] << 24) | ((uint32_t)aes_sbox[(w >> 16) & 0xff] << 16) |
           ((uint32_t)aes_sbox[(w >> 8) & 0xff] << 8) | aes_sbox[w & 0xff];
}

int aes_setkey_enc(aes_ctx_t *c, const uint8_t *key, unsigned bits)
{
    unsigned nk, i;
    uint32_t *rk = c->rk;

    if (bits != 128 && bits != 192 && bits != 256)
        return -1;
    nk = bits / 32;
    c->rounds = (int)nk + 6;
    for (i = 0; i < nk; i++)
        rk[i] = GET32(key + 4 * i);
    for (i = nk; i < 4u * (unsigned)(c->rounds + 1); i++) {
        uint32_t t = rk[i - 1];
        if (i % nk == 0)
            t = sub_word((t << 8) | (t >> 24)) ^ ((uint32_t)rcon[i / nk - 1] << 24);
        else if (nk > 6 && i % nk == 4)
            t = sub_word(t);
        rk[i] = rk[i - nk] ^ t;
    }
    return 0;
}

int aes_setkey_dec(aes_ctx_t *c, const uint8_t *key, unsigned bits)
{
    aes_ctx_t e;
    int r, i, j;

    if (aes_setkey_enc(&e, key, bits) != 0)
        return -1;
    c->rounds = e.rounds;
    for (r = 0; r <= e.rounds; r++) {
        for (j = 0; j < 4; j++) {
            uint32_t w = e.rk[4 * (e.rounds - r) + j];
            if (r > 0 && r < e.rounds)
                w = aes_td0[aes_sbox[w >> 24]] ^ aes_td1[aes_sbox[(w >> 16) & 0xff]] ^
                    aes_td2[aes_sbox[(w >> 8) & 0xff]] ^ aes_td3[aes_sbox[w & 0xff]];
            c->rk[4 * r + j] = w;
        }
    }
    for (i = 0; i < (int)sizeof e.rk / 4; i++)
        e.rk[i] = 0;
    return 0;
}

void aes_encrypt(const aes_ctx_t *c, const uint8_t in[16], uint8_t out[16])
{
    const uint32_t *rk = c->rk;
    uint32_t s0 = GET32(in) ^ rk[0], s1 = GET32(in + 4) ^ rk[1];
    uint32_t s2 = GET32(in + 8) ^ rk[2], s3 = GET32(in + 12) ^ rk[3];
    uint32_t t0, t1, t2, t3;

    for (int r = 1; r < c->rounds; r++) {
        rk += 4;
        t0 = aes_te0[s0 >> 24] ^ aes_te1[(s1 >> 16) & 0xff] ^ aes_te2[(s2 >> 8) & 0xff] ^ aes_te3[s3 & 0xff] ^ rk[0];
        t1 = aes_te0[s1 >> 24] ^ aes_te1[(s2 >> 16) & 0xff] ^ aes_te2[(s3 >> 8) & 0xff] ^ aes_te3[s0 & 0xff] ^ rk[1];
        t2 = aes_te0[s2 >> 24] ^ aes_te1[(s3 >> 16) & 0xff] ^ aes_te2[(s0 >> 8) & 0xff] ^ aes_te3[s1 & 0xff] ^ rk[2];
        t3 = aes_te0[s3 >> 24] ^ aes_te1[(s0 >> 16) & 0xff] ^ aes_te2[(s1 >> 8) & 0xff] ^ aes_te3[s2 & 0xff] ^ rk[3];
        s0 = t0, s1 = t1, s2 = t2, s3 = t3;
    }
    rk += 4;
#define FINAL(a, b, c_, d)                                                                        \
    (((uint32_t)aes_sbox[(a) >> 24] << 24) | ((uint32_t)aes_sbox[((b) >> 16) & 0xff] << 16) | \
     ((uint32_t)aes_sbox[((c_) >> 8) & 0xff] << 8) | aes_sbox[(d) & 0xff])
    t0 = FINAL(s0, s1, s2, s3) ^ rk[0];
    t1 = FINAL(s1, s2, s3, s0) ^ rk[1];
    t2 = FINAL(s2, s3, s0, s1) ^ rk[2];
    t3 = FINAL(s3, s0, s1, s2) ^ rk[3];
    PUT32(out, t0);
    PUT32(out + 4, t1);
    PUT32(out + 8, t2);
    PUT32(out + 12, t3);
}

void aes_decrypt(const aes_ctx_t *c, const uint8_t in[16], uint8_t out[16])
{
    const uint32_t *rk = c->rk;
    uint32_t s0 = GET32(in) ^ rk[0], s1 = GET32(in + 4) ^ rk[1];
    uint32_t s2 = GET32(in + 8) ^ rk[2], s3 = GET32(in + 12) ^ rk[3];
    uint32_t t0, t1, t2, t3;

    for (int r = 1; r < c->rounds; r++) {
        rk += 4;
        t0 = aes_td0[s0 >> 24] ^ aes_td1[(s3 >> 16) & 0xff] ^ aes_td2[(s2 >> 8) & 0xff] ^ aes_td3[s1 & 0xff] ^ rk[0];
        t1 = aes_td0[s1 >> 24] ^ aes_td1[(s0 >> 16) & 0xff] ^ aes_td2[(s3 >> 8) & 0xff] ^ aes_td3[s2 & 0xff] ^ rk[1];
        t2 = aes_td0[s2 >> 24] ^ aes_td1[(s1 >> 16) & 0xff] ^ aes_td2[(s0 >> 8) & 0xff] ^ aes_td3[s3 & 0xff] ^ rk[2];
        t3 = aes_td0[s3 >> 24] ^ aes_td1[(s2 >> 16) & 0xff] ^ aes_td2[(s1 >> 8) & 0xff] ^ aes_td3[s0 & 0xff] ^ rk[3];
        s0 = t0, s1 = t1, s2 = t2, s3 = t3;
    }
    rk += 4;
#define IFINAL(a, b, c_, d)                                                                               \
    (((uint32_t)aes_inv_sbox[(a) >> 24] << 24) | ((uint32_t)aes_inv_sbox[((b) >> 16) & 0xff] << 16) | \
     ((uint32_t)aes_inv_sbox[((c_) >> 8) & 0xff] << 8) | aes_inv_sbox[(d) & 0xff])
    t0 = IFINAL(s0, s3, s2, s1) ^ rk[0];
    t1 = IFINAL(s1, s0, s3, s2) ^ rk[1];
    t2 = IFINAL(s2, s1, s0, s3) ^ rk[2];
    t3 = IFINAL(s3, s2, s1, s0) ^ rk[3];
    PUT32(out, t0);
    PUT32(out + 4, t1);
    PUT32(out + 8, t2);
    PUT32(out + 12, t3);
}

static const uint32_t sha_k[64] = {
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

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, k;
    int i;

    for (i = 0; i < 16; i++)
        w[i] = GET32(p + 4 * i);
    for (; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

void sha256_init(sha256_ctx_t *c)
{
    static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(c->h, iv, sizeof iv);
    c->len = 0;
    c->fill = 0;
}

void sha256_update(sha256_ctx_t *c, const void *data, size_t n)
{
    const uint8_t *p = data;

    c->len += n;
    while (n > 0) {
        size_t k = 64 - c->fill;
        if (k > n)
            k = n;
        memcpy(c->buf + c->fill, p, k);
        c->fill += k, p += k, n -= k;
        if (c->fill == 64) {
            sha256_block(c->h, c->buf);
            c->fill = 0;
        }
    }
}

void sha256_final(sha256_ctx_t *c, uint8_t out[32])
{
    uint64_t bits = c->len * 8;
    uint8_t pad = 0x80, len[8];

    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(c, &pad, 1);
    pad = 0;
    while (c->fill != 56)
        sha256_update(c, &pad, 1);
    sha256_update(c, len, 8);
    for (int i = 0; i < 8; i++)
        PUT32(out + 4 * i, c->h[i]);
}

void sha256(const void *data, size_t n, uint8_t out[32])
{
    sha256_ctx_t c;
    sha256_init(&c);
    sha256_update(&c, data, n);
    sha256_final(&c, out);
}

void hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen, uint8_t out[32])
{
    uint8_t k[64], ihash[32];
    sha256_ctx_t c;

    memset(k, 0, sizeof k);
    if (klen > 64)
        sha256(key, klen, k);
    else
        memcpy(k, key, klen);
    for (int i = 0; i < 64; i++)
        k[i] ^= 0x36;
    sha256_init(&c);
    sha256_update(&c, k, 64);
    sha256_update(&c, msg, mlen);
    sha256_final(&c, ihash);
    for (int i = 0; i < 64; i++)
        k[i] ^= 0x36 ^ 0x5c;
    sha256_init(&c);
    sha256_update(&c, k, 64);
    sha256_update(&c, ihash, 32);
    sha256_final(&c, out);
}

int hkdf_sha256(const uint8_t *salt, size_t slen, const uint8_t *ikm, size_t ilen,
                const uint8_t *info, size_t infolen, uint8_t *okm, size_t olen)
{
    uint8_t prk[32], t[32 + 64 + 1];
    size_t tlen = 0, done = 0;
    uint8_t ctr = 1;

    if (olen > 255 * 32 || infolen > 64)
        return -1;
    hmac_sha256(salt, slen, ikm, ilen, prk);
    while (done < olen) {
        uint8_t blk[32];
        memcpy(t + tlen, info, infolen);
        t[tlen + infolen] = ctr++;
        hmac_sha256(prk, 32, t, tlen + infolen + 1, blk);
        memcpy(t, blk, 32);
        tlen = 32;
        size_t k = olen - done < 32 ? olen - done : 32;
        memcpy(okm + done, blk, k);
        done += k;
    }
    return 0;
}

/* CBC-MAC over B0, the length-prefixed AAD and the payload (RFC 3610 section 2.2). */
static void ccm_mac(const aes_ctx_t *c, const uint8_t *nonce, size_t nlen, const uint8_t *aad, size_t alen,
                    const uint8_t *msg, size_t len, size_t tlen, uint8_t x[16])
{
    uint8_t b[16];
    size_t q = 15 - nlen, i, k;

    memset(b, 0, 16);
    b[0] = (uint8_t)((alen ? 0x40 : 0) | (((tlen - 2) / 2) << 3) | (q - 1));
    memcpy(b + 1, nonce, nlen);
    for (i = 0, k = len; i < q; i++, k >>= 8)
        b[15 - i] = (uint8_t)k;
    aes_encrypt(c, b, x);
    if (alen) {
        size_t off = 2;
        memset(b, 0, 16);
        b[0] = (uint8_t)(alen >> 8);
        b[1] = (uint8_t)alen;
        for (i = 0; i < alen;) {
            while (off < 16 && i < alen)
                b[off++] = aad[i++];
            for (k = 0; k < 16; k++)
                x[k] ^= b[k];
            aes_encrypt(c, x, x);
            memset(b, 0, 16);
            off = 0;
        }
    }
    for (i = 0; i < len; i += 16) {
        size_t n = len - i < 16 ? len - i : 16;
        for (k = 0; k < n; k++)
            x[k] ^= msg[i + k];
        aes_encrypt(c, x, x);
    }
}

static void ccm_ctr(const aes_ctx_t *c, const uint8_t *nonce, size_t nlen, uint32_t ctr, uint8_t s[16])
{
    uint8_t a[16];
    size_t q = 15 - nlen;

    memset(a, 0, 16);
    a[0] = (uint8_t)(q - 1);
    memcpy(a + 1, nonce, nlen);
    for (size_t i = 0; i < q && i < 4; i++)
        a[15 - i] = (uint8_t)(ctr >> (8 * i));
    aes_encrypt(c, a, s);
}

static int ccm_check(size_t nlen, size_t tlen, size_t alen)
{
    return (nlen < 7 || nlen > 13 || tlen < 4 || tlen > 16 || (tlen & 1) || alen >= 0xff00) ? -1 : 0;
}

int ccm_encrypt(const aes_ctx_t *c, const uint8_t *nonce, size_t nlen, const uint8_t *aad, size_t alen,
                const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag, size_t tlen)
{
    uint8_t x[16], s[16];

    if (ccm_check(nlen, tlen, alen))
        return -1;
    ccm_mac(c, nonce, nlen, aad, alen, in, len, tlen, x);
    for (size_t i = 0; i < len; i += 16) {
        ccm_ctr(c, nonce, nlen, (uint32_t)(i / 16 + 1), s);
        for (size_t k = 0; k < 16 && i + k < len; k++)
            out[i + k] = in[i + k] ^ s[k];
    }
    ccm_ctr(c, nonce, nlen, 0, s);
    for (size_t k = 0; k < tlen; k++)
        tag[k] = x[k] ^ s[k];
    return 0;
}

int ccm_decrypt(const aes_ctx_t *c, const uint8_t *nonce, size_t nlen, const uint8_t *aad, size_t alen,
                const uint8_t *in, size_t len, uint8_t *out, const uint8_t *tag, size_t tlen)
{
    uint8_t x[16], s[16], diff = 0;

    if (ccm_check(nlen, tlen, alen))
        return -1;
    for (size_t i = 0; i < len; i += 16) {
        ccm_ctr(c, nonce, nlen, (uint32_t)(i / 16 + 1), s);
        for (size_t k = 0; k < 16 && i + k < len; k++)
            out[i + k] = in[i + k] ^ s[k];
    }
    ccm_mac(c, nonce, nlen, aad, alen, out, len, tlen, x);
    ccm_ctr(c, nonce, nlen, 0, s);
    for (size_t k = 0; k < tlen; k++)
        diff |= (uint8_t)(tag[k] ^ x[k] ^ s[k]);
    if (diff) {
        memset(out, 0, len);
        return -1;
    }
    return 0;
}

/* FIPS-197 appendix C.1 and the SHA-256 "abc" vector. */
int crypto_selftest(void)
{
    static const uint8_t key[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
    static const uint8_t pt[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                    0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
    static const uint8_t ct[16] = { 0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30,
                                    0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4, 0xc5, 0x5a };
    static const uint8_t abc[4] = { 0xba, 0x78, 0x16, 0xbf };
    aes_ctx_t c;
    uint8_t out[32];

    aes_setkey_enc(&c, key, 128);
    aes_encrypt(&c, pt, out);
    if (memcmp(out, ct, 16) != 0)
        return -1;
    aes_setkey_dec(&c, key, 128);
    aes_decrypt(&c, ct, out);
    if (memcmp(out, pt, 16) != 0)
        return -2;
    sha256("abc", 3, out);
    if (memcmp(out, abc, 4) != 0)
        return -3;
    return 0;
}

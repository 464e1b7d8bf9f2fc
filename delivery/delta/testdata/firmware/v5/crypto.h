/* AES-128/256, SHA-256, HMAC-SHA256, HKDF, AES-CCM (RFC 3610) for the DTLS record layer. */
#ifndef CRYPTO_H
#define CRYPTO_H

#include <stddef.h>
#include <stdint.h>

extern const uint8_t aes_sbox[256], aes_inv_sbox[256];
extern const uint32_t aes_te0[256], aes_te1[256], aes_te2[256], aes_te3[256];
extern const uint32_t aes_td0[256], aes_td1[256], aes_td2[256], aes_td3[256];

typedef struct {
    int rounds;
    uint32_t rk[60];
} aes_ctx_t;

int aes_setkey_enc(aes_ctx_t *c, const uint8_t *key, unsigned bits);
int aes_setkey_dec(aes_ctx_t *c, const uint8_t *key, unsigned bits);
void aes_encrypt(const aes_ctx_t *c, const uint8_t in[16], uint8_t out[16]);
void aes_decrypt(const aes_ctx_t *c, const uint8_t in[16], uint8_t out[16]);

typedef struct {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t fill;
} sha256_ctx_t;

void sha256_init(sha256_ctx_t *c);
void sha256_update(sha256_ctx_t *c, const void *data, size_t n);
void sha256_final(sha256_ctx_t *c, uint8_t out[32]);
void sha256(const void *data, size_t n, uint8_t out[32]);

void hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen, uint8_t out[32]);
int hkdf_sha256(const uint8_t *salt, size_t slen, const uint8_t *ikm, size_t ilen,
                const uint8_t *info, size_t infolen, uint8_t *okm, size_t olen);

int ccm_encrypt(const aes_ctx_t *c, const uint8_t *nonce, size_t nlen, const uint8_t *aad, size_t alen,
                const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag, size_t tlen);
int ccm_decrypt(const aes_ctx_t *c, const uint8_t *nonce, size_t nlen, const uint8_t *aad, size_t alen,
                const uint8_t *in, size_t len, uint8_t *out, const uint8_t *tag, size_t tlen);

int crypto_selftest(void);

#endif

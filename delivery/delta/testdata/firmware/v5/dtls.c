/* DTLS 1.2 record protection for TLS_PSK_WITH_AES_128_CCM_8 (RFC 6655, RFC 6347). */
#include <string.h>
#include "crypto.h"
#include "net.h"

#define HDR 13
#define EXPLICIT_NONCE 8
#define TAG 8

/* Key block via the TLS 1.2 PRF (P_SHA256) over the PSK premaster secret. */
static void prf(const uint8_t *secret, size_t slen, const char *label, const uint8_t *seed, size_t seedlen,
                uint8_t *out, size_t olen)
{
    uint8_t a[32], buf[32 + 80], blk[32];
    size_t llen = strlen(label), done = 0;

    memcpy(buf, label, llen);
    memcpy(buf + llen, seed, seedlen);
    hmac_sha256(secret, slen, buf, llen + seedlen, a);
    while (done < olen) {
        memcpy(buf, a, 32);
        memcpy(buf + 32, label, llen);
        memcpy(buf + 32 + llen, seed, seedlen);
        hmac_sha256(secret, slen, buf, 32 + llen + seedlen, blk);
        size_t k = olen - done < 32 ? olen - done : 32;
        memcpy(out + done, blk, k);
        done += k;
        hmac_sha256(secret, slen, a, 32, a);
    }
}

int dtls_keys_from_psk(const uint8_t *psk, size_t psklen, const uint8_t crand[32], const uint8_t srand[32],
                       dtls_dir_t *client, dtls_dir_t *server)
{
    uint8_t pms[2 + 64 + 2 + 64], seed[64], master[48], kb[40];
    size_t n = 0;

    if (psklen > 64)
        return -1;
    pms[n++] = (uint8_t)(psklen >> 8);
    pms[n++] = (uint8_t)psklen;
    memset(pms + n, 0, psklen);
    n += psklen;
    pms[n++] = (uint8_t)(psklen >> 8);
    pms[n++] = (uint8_t)psklen;
    memcpy(pms + n, psk, psklen);
    n += psklen;
    memcpy(seed, crand, 32);
    memcpy(seed + 32, srand, 32);
    prf(pms, n, "master secret", seed, 64, master, sizeof master);
    memcpy(seed, srand, 32);
    memcpy(seed + 32, crand, 32);
    prf(master, sizeof master, "key expansion", seed, 64, kb, sizeof kb);
    memset(client, 0, sizeof *client);
    memset(server, 0, sizeof *server);
    memcpy(client->key, kb, 16);
    memcpy(server->key, kb + 16, 16);
    memcpy(client->iv, kb + 32, 4);
    memcpy(server->iv, kb + 36, 4);
    client->epoch = server->epoch = 1;
    memset(master, 0, sizeof master);
    return 0;
}

static void seq48(uint8_t *p, uint16_t epoch, uint64_t seq)
{
    p[0] = (uint8_t)(epoch >> 8);
    p[1] = (uint8_t)epoch;
    for (int i = 0; i < 6; i++)
        p[2 + i] = (uint8_t)(seq >> (40 - 8 * i));
}

int dtls_seal(dtls_dir_t *d, uint8_t type, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    uint8_t nonce[12], aad[13];
    aes_ctx_t aes;
    size_t total = HDR + EXPLICIT_NONCE + len + TAG;

    if (cap < total || len > 16384 || d->seq >= (1ull << 48))
        return -1;
    out[0] = type;
    out[1] = 0xfe;
    out[2] = 0xfd;
    seq48(out + 3, d->epoch, d->seq);
    out[11] = (uint8_t)((total - HDR) >> 8);
    out[12] = (uint8_t)(total - HDR);
    memcpy(nonce, d->iv, 4);
    memcpy(nonce + 4, out + 3, 8);
    memcpy(out + HDR, out + 3, 8);
    memcpy(aad, out + 3, 8);
    aad[8] = type;
    aad[9] = 0xfe;
    aad[10] = 0xfd;
    aad[11] = (uint8_t)(len >> 8);
    aad[12] = (uint8_t)len;
    aes_setkey_enc(&aes, d->key, 128);
    ccm_encrypt(&aes, nonce, 12, aad, 13, in, len, out + HDR + EXPLICIT_NONCE,
                out + HDR + EXPLICIT_NONCE + len, TAG);
    d->seq++;
    return (int)total;
}

int dtls_open(dtls_dir_t *d, const uint8_t *rec, size_t len, uint8_t *out, size_t cap, uint8_t *type)
{
    uint8_t nonce[12], aad[13];
    aes_ctx_t aes;
    size_t body, plen;

    if (len < HDR + EXPLICIT_NONCE + TAG || rec[1] != 0xfe || rec[2] != 0xfd)
        return -1;
    body = (size_t)(rec[11] << 8 | rec[12]);
    if (body + HDR != len)
        return -1;
    plen = body - EXPLICIT_NONCE - TAG;
    if (plen > cap || (uint16_t)(rec[3] << 8 | rec[4]) != d->epoch)
        return -1;
    memcpy(nonce, d->iv, 4);
    memcpy(nonce + 4, rec + HDR, 8);
    memcpy(aad, rec + 3, 8);
    aad[8] = rec[0];
    aad[9] = 0xfe;
    aad[10] = 0xfd;
    aad[11] = (uint8_t)(plen >> 8);
    aad[12] = (uint8_t)plen;
    aes_setkey_enc(&aes, d->key, 128);
    if (ccm_decrypt(&aes, nonce, 12, aad, 13, rec + HDR + EXPLICIT_NONCE, plen, out,
                    rec + HDR + EXPLICIT_NONCE + plen, TAG) != 0)
        return -1;
    *type = rec[0];
    d->seq++;
    return (int)plen;
}

/* Minimal DER walker for X.509 trust anchors: subject, validity and key lookup. */
#include <stdio.h>
#include <string.h>
#include "trust.h"

typedef struct {
    const uint8_t *p, *end;
} der_t;

static int der_next(der_t *d, uint8_t *tag, const uint8_t **val, size_t *len)
{
    size_t n;

    if (d->end - d->p < 2)
        return -1;
    *tag = *d->p++;
    n = *d->p++;
    if (n & 0x80) {
        unsigned k = n & 0x7f;
        if (k == 0 || k > 3 || (size_t)(d->end - d->p) < k)
            return -1;
        for (n = 0; k > 0; k--)
            n = (n << 8) | *d->p++;
    }
    if ((size_t)(d->end - d->p) < n)
        return -1;
    *val = d->p;
    *len = n;
    d->p += n;
    return 0;
}

static int der_enter(der_t *d, uint8_t want, der_t *inner)
{
    uint8_t tag;
    const uint8_t *v;
    size_t n;

    if (der_next(d, &tag, &v, &n) != 0 || tag != want)
        return -1;
    inner->p = v;
    inner->end = v + n;
    return 0;
}

int x509_parse(const uint8_t *der, size_t len, x509_view_t *out)
{
    der_t top = { der, der + len }, cert, tbs, validity;
    uint8_t tag;
    const uint8_t *v;
    size_t n;

    memset(out, 0, sizeof *out);
    if (der_enter(&top, 0x30, &cert) || der_enter(&cert, 0x30, &tbs))
        return -1;
    if (tbs.p < tbs.end && *tbs.p == 0xa0 && der_next(&tbs, &tag, &v, &n))
        return -1;
    if (der_next(&tbs, &tag, &v, &n) || tag != 0x02)
        return -1;
    out->serial_hash = 2166136261u;
    for (size_t i = 0; i < n; i++)
        out->serial_hash = (out->serial_hash ^ v[i]) * 16777619u;
    if (der_next(&tbs, &tag, &v, &n) || der_next(&tbs, &tag, &v, &n))   /* signature alg, issuer */
        return -1;
    if (der_enter(&tbs, 0x30, &validity) || der_next(&validity, &tag, &v, &n) ||
        der_next(&validity, &tag, &out->not_after, &out->not_after_len))
        return -1;
    if (der_next(&tbs, &tag, &out->subject, &out->subject_len) || tag != 0x30)
        return -1;
    if (der_next(&tbs, &tag, &out->spki, &out->spki_len) || tag != 0x30)
        return -1;
    return 0;
}

const trust_anchor_t *trust_find_subject(const uint8_t *subject, size_t len)
{
    x509_view_t x;

    for (unsigned i = 0; i < g_trust_anchor_count; i++) {
        if (x509_parse(g_trust_anchors[i].der, g_trust_anchors[i].len, &x) == 0 && x.subject_len == len &&
            memcmp(x.subject, subject, len) == 0)
            return &g_trust_anchors[i];
    }
    return NULL;
}

void trust_list(void)
{
    x509_view_t x;

    for (unsigned i = 0; i < g_trust_anchor_count; i++) {
        const trust_anchor_t *t = &g_trust_anchors[i];
        if (x509_parse(t->der, t->len, &x) != 0) {
            printf("%3u %-48s (unparsable)\n", i, t->name);
            continue;
        }
        printf("%3u %-48s %4u B, key %3u B, until %.*s, serial %08lx\n", i, t->name, (unsigned)t->len,
               (unsigned)x.spki_len, (int)x.not_after_len, (const char *)x.not_after,
               (unsigned long)x.serial_hash);
    }
}

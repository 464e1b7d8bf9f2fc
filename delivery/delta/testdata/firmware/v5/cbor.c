/* RFC 8949 CBOR encoder (definite lengths only) for SenML-CBOR reports. */
#include <string.h>
#include "net.h"

void cbor_init(cbor_t *c, uint8_t *buf, size_t cap)
{
    c->buf = buf;
    c->cap = cap;
    c->len = 0;
    c->overflow = false;
}

static void put(cbor_t *c, const void *p, size_t n)
{
    if (c->overflow || c->cap - c->len < n) {
        c->overflow = true;
        return;
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
}

static void head(cbor_t *c, uint8_t major, uint64_t v)
{
    uint8_t b[9];
    size_t n;

    if (v < 24) {
        b[0] = (uint8_t)(major << 5 | v);
        n = 1;
    } else if (v <= 0xff) {
        b[0] = (uint8_t)(major << 5 | 24);
        b[1] = (uint8_t)v;
        n = 2;
    } else if (v <= 0xffff) {
        b[0] = (uint8_t)(major << 5 | 25);
        b[1] = (uint8_t)(v >> 8);
        b[2] = (uint8_t)v;
        n = 3;
    } else if (v <= 0xffffffffu) {
        b[0] = (uint8_t)(major << 5 | 26);
        for (int i = 0; i < 4; i++)
            b[1 + i] = (uint8_t)(v >> (24 - 8 * i));
        n = 5;
    } else {
        b[0] = (uint8_t)(major << 5 | 27);
        for (int i = 0; i < 8; i++)
            b[1 + i] = (uint8_t)(v >> (56 - 8 * i));
        n = 9;
    }
    put(c, b, n);
}

void cbor_uint(cbor_t *c, uint64_t v) { head(c, 0, v); }
void cbor_int(cbor_t *c, int64_t v) { v < 0 ? head(c, 1, (uint64_t)(-1 - v)) : head(c, 0, (uint64_t)v); }
void cbor_array(cbor_t *c, size_t n) { head(c, 4, n); }
void cbor_map(cbor_t *c, size_t n) { head(c, 5, n); }
void cbor_bool(cbor_t *c, bool b) { head(c, 7, b ? 21 : 20); }

void cbor_text(cbor_t *c, const char *s)
{
    size_t n = strlen(s);
    head(c, 3, n);
    put(c, s, n);
}

void cbor_bytes(cbor_t *c, const uint8_t *b, size_t n)
{
    head(c, 2, n);
    put(c, b, n);
}

/* Shortest exact encoding: half, single or double precision (RFC 8949 section 4.2.2). */
static int half_of(float f, uint16_t *h)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000, exp = (u >> 23) & 0xff, man = u & 0x7fffff;
    if (exp == 0xff) {
        if (man & 0x1fff)
            return -1;
        *h = (uint16_t)(sign | 0x7c00 | (man >> 13));
        return 0;
    }
    if (exp == 0 && man == 0) {
        *h = (uint16_t)sign;
        return 0;
    }
    int e = (int)exp - 127 + 15;
    if (e >= 31 || e <= 0 || (man & 0x1fff))
        return -1;
    *h = (uint16_t)(sign | (uint32_t)e << 10 | man >> 13);
    return 0;
}

void cbor_float(cbor_t *c, float f)
{
    uint16_t h;
    uint8_t b[5];
    uint32_t u;

    if (half_of(f, &h) == 0) {
        b[0] = 0xf9;
        b[1] = (uint8_t)(h >> 8);
        b[2] = (uint8_t)h;
        put(c, b, 3);
        return;
    }
    memcpy(&u, &f, 4);
    b[0] = 0xfa;
    for (int i = 0; i < 4; i++)
        b[1 + i] = (uint8_t)(u >> (24 - 8 * i));
    put(c, b, 5);
}

void cbor_double(cbor_t *c, double d)
{
    float f = (float)d;
    uint64_t u;
    uint8_t b[9];

    if ((double)f == d) {
        cbor_float(c, f);
        return;
    }
    memcpy(&u, &d, 8);
    b[0] = 0xfb;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (uint8_t)(u >> (56 - 8 * i));
    put(c, b, 9);
}

/* RFC 7252 CoAP message encoder/parser and LwM2M register / SenML-CBOR helpers. */
#include <stdio.h>
#include <string.h>
#include "app.h"
#include "net.h"

void coap_init(coap_msg_t *m, uint8_t *buf, size_t cap, uint8_t type, uint8_t code, uint16_t mid)
{
    m->type = type;
    m->code = code;
    m->mid = mid;
    m->tkl = 0;
    m->last_opt = 0;
    m->buf = buf;
    m->cap = cap;
    m->len = cap >= 4 ? 4 : 0;
    if (cap >= 4) {
        buf[0] = (uint8_t)(0x40 | type << 4);
        buf[1] = code;
        buf[2] = (uint8_t)(mid >> 8);
        buf[3] = (uint8_t)mid;
    }
}

int coap_token(coap_msg_t *m, const uint8_t *tok, uint8_t n)
{
    if (n > 8 || m->len != 4 || m->cap < 4u + n)
        return -1;
    memcpy(m->buf + 4, tok, n);
    memcpy(m->token, tok, n);
    m->buf[0] = (uint8_t)((m->buf[0] & 0xf0) | n);
    m->tkl = n;
    m->len += n;
    return 0;
}

static size_t ext_len(uint16_t v, uint8_t *nib, uint8_t ext[2])
{
    if (v < 13) {
        *nib = (uint8_t)v;
        return 0;
    }
    if (v < 269) {
        *nib = 13;
        ext[0] = (uint8_t)(v - 13);
        return 1;
    }
    *nib = 14;
    ext[0] = (uint8_t)((v - 269) >> 8);
    ext[1] = (uint8_t)(v - 269);
    return 2;
}

int coap_opt(coap_msg_t *m, uint16_t num, const void *val, uint16_t len)
{
    uint8_t dn, ln, de[2], le[2];
    size_t nd, nl;

    if (num < m->last_opt)
        return -1;
    nd = ext_len((uint16_t)(num - m->last_opt), &dn, de);
    nl = ext_len(len, &ln, le);
    if (m->cap - m->len < 1 + nd + nl + len)
        return -1;
    m->buf[m->len++] = (uint8_t)(dn << 4 | ln);
    memcpy(m->buf + m->len, de, nd);
    m->len += nd;
    memcpy(m->buf + m->len, le, nl);
    m->len += nl;
    memcpy(m->buf + m->len, val, len);
    m->len += len;
    m->last_opt = num;
    return 0;
}

int coap_opt_uint(coap_msg_t *m, uint16_t num, uint32_t v)
{
    uint8_t b[4];
    uint16_t n = 0;

    for (int i = 3; i >= 0; i--) {
        uint8_t x = (uint8_t)(v >> (8 * i));
        if (n || x)
            b[n++] = x;
    }
    return coap_opt(m, num, b, n);
}

int coap_uri_path(coap_msg_t *m, const char *path)
{
    while (*path == '/')
        path++;
    while (*path) {
        const char *end = strchr(path, '/');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        if (coap_opt(m, OPT_URI_PATH, path, (uint16_t)n) != 0)
            return -1;
        path += n;
        while (*path == '/')
            path++;
    }
    return 0;
}

int coap_payload(coap_msg_t *m, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (m->cap - m->len < n + 1)
        return -1;
    m->buf[m->len++] = 0xff;
    memcpy(m->buf + m->len, p, n);
    m->len += n;
    return 0;
}

static int rd_ext(const uint8_t **p, const uint8_t *end, uint8_t nib, uint16_t *out)
{
    if (nib < 13) {
        *out = nib;
    } else if (nib == 13) {
        if (*p >= end)
            return -1;
        *out = (uint16_t)(13 + *(*p)++);
    } else if (nib == 14) {
        if (end - *p < 2)
            return -1;
        *out = (uint16_t)(269 + ((*p)[0] << 8 | (*p)[1]));
        *p += 2;
    } else {
        return -1;
    }
    return 0;
}

int coap_parse(const uint8_t *buf, size_t len, coap_msg_t *m, coap_opt_t *opts, size_t maxopts,
               size_t *nopts, const uint8_t **payload, size_t *plen)
{
    const uint8_t *p = buf + 4, *end = buf + len;
    uint16_t num = 0;

    *nopts = 0;
    *payload = NULL;
    *plen = 0;
    if (len < 4 || (buf[0] >> 6) != 1)
        return -1;
    m->type = (buf[0] >> 4) & 3;
    m->tkl = buf[0] & 15;
    m->code = buf[1];
    m->mid = (uint16_t)(buf[2] << 8 | buf[3]);
    if (m->tkl > 8 || (size_t)(end - p) < m->tkl)
        return -1;
    memcpy(m->token, p, m->tkl);
    p += m->tkl;
    while (p < end && *p != 0xff) {
        uint16_t d, l;
        uint8_t b = *p++;
        if (rd_ext(&p, end, b >> 4, &d) || rd_ext(&p, end, b & 15, &l) || (size_t)(end - p) < l)
            return -1;
        num = (uint16_t)(num + d);
        if (*nopts < maxopts) {
            opts[*nopts].num = num;
            opts[*nopts].val = p;
            opts[*nopts].len = l;
            (*nopts)++;
        }
        p += l;
    }
    if (p < end) {
        if (++p == end)
            return -1;
        *payload = p;
        *plen = (size_t)(end - p);
    }
    return 0;
}

size_t lwm2m_register(uint8_t *buf, size_t cap, const char *ep, uint32_t lifetime)
{
    static const char links[] = "</1/0>,</3/0>,</4/0>,</5/0>,</3303/0>,</3304/0>,</3316/0>";
    char q[64];
    coap_msg_t m;
    uint8_t tok[4] = { 0x5e, 0x17, 0x00, 0x01 };

    coap_init(&m, buf, cap, COAP_CON, COAP_POST, 0x1001);
    coap_token(&m, tok, sizeof tok);
    coap_uri_path(&m, "/rd");
    coap_opt_uint(&m, OPT_CONTENT_FORMAT, CF_LINK);
    snprintf(q, sizeof q, "ep=%s", ep);
    coap_opt(&m, OPT_URI_QUERY, q, (uint16_t)strlen(q));
    snprintf(q, sizeof q, "lt=%lu", (unsigned long)lifetime);
    coap_opt(&m, OPT_URI_QUERY, q, (uint16_t)strlen(q));
    coap_opt(&m, OPT_URI_QUERY, "lwm2m=1.1", 9);
    coap_opt(&m, OPT_URI_QUERY, "b=UQ", 4);
    if (coap_payload(&m, (const uint8_t *)links, sizeof links - 1) != 0)
        return 0;
    return m.len;
}

/* SenML-CBOR labels: bn = -2, n = 0, v = 2 (RFC 8428 section 6). */
size_t lwm2m_senml_cbor(uint8_t *buf, size_t cap, int16_t temp_cdeg, uint16_t rh_pmil, uint16_t batt_mv)
{
    cbor_t c;

    cbor_init(&c, buf, cap);
    cbor_array(&c, 3);
    cbor_map(&c, 3);
    cbor_int(&c, -2);
    cbor_text(&c, "/3303/0/");
    cbor_uint(&c, 0);
    cbor_text(&c, "5700");
    cbor_uint(&c, 2);
    cbor_double(&c, temp_cdeg / 100.0);
    cbor_map(&c, 3);
    cbor_int(&c, -2);
    cbor_text(&c, "/3304/0/");
    cbor_uint(&c, 0);
    cbor_text(&c, "5700");
    cbor_uint(&c, 2);
    cbor_double(&c, rh_pmil / 10.0);
    cbor_map(&c, 3);
    cbor_int(&c, -2);
    cbor_text(&c, "/3316/0/");
    cbor_uint(&c, 0);
    cbor_text(&c, "5700");
    cbor_uint(&c, 2);
    cbor_float(&c, batt_mv / 1000.0f);
    return c.overflow ? 0 : c.len;
}

/* Trust anchors for the DTLS/TLS client (generated in ca_bundle.c). */
#ifndef TRUST_H
#define TRUST_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;
    const uint8_t *der;
    size_t len;
} trust_anchor_t;

extern const trust_anchor_t g_trust_anchors[];
extern const unsigned g_trust_anchor_count;

/* x509.c */
typedef struct {
    const uint8_t *subject;
    size_t subject_len;
    const uint8_t *spki;
    size_t spki_len;
    const uint8_t *not_after;
    size_t not_after_len;
    uint32_t serial_hash;
} x509_view_t;

int x509_parse(const uint8_t *der, size_t len, x509_view_t *out);
const trust_anchor_t *trust_find_subject(const uint8_t *subject, size_t len);
void trust_list(void);

#endif

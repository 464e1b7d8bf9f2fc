/* CBOR encoder, CoAP messages and the DTLS 1.2 record layer (AES-128-CCM-8). */
#ifndef NET_H
#define NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    bool overflow;
} cbor_t;

void cbor_init(cbor_t *c, uint8_t *buf, size_t cap);
void cbor_uint(cbor_t *c, uint64_t v);
void cbor_int(cbor_t *c, int64_t v);
void cbor_text(cbor_t *c, const char *s);
void cbor_bytes(cbor_t *c, const uint8_t *b, size_t n);
void cbor_array(cbor_t *c, size_t n);
void cbor_map(cbor_t *c, size_t n);
void cbor_float(cbor_t *c, float f);
void cbor_double(cbor_t *c, double d);
void cbor_bool(cbor_t *c, bool b);

enum { COAP_CON = 0, COAP_NON = 1, COAP_ACK = 2, COAP_RST = 3 };
enum { COAP_GET = 1, COAP_POST = 2, COAP_PUT = 3, COAP_DELETE = 4 };
enum { OPT_OBSERVE = 6, OPT_URI_PATH = 11, OPT_CONTENT_FORMAT = 12, OPT_URI_QUERY = 15,
       OPT_BLOCK2 = 23, OPT_BLOCK1 = 27, OPT_SIZE1 = 60 };
enum { CF_TEXT = 0, CF_LINK = 40, CF_OPAQUE = 42, CF_CBOR = 60, CF_SENML_JSON = 110,
       CF_SENML_CBOR = 112, CF_LWM2M_TLV = 11542 };

typedef struct {
    uint8_t type, code, tkl;
    uint16_t mid;
    uint8_t token[8];
    uint16_t last_opt;
    uint8_t *buf;
    size_t len, cap;
} coap_msg_t;

typedef struct {
    uint16_t num;
    const uint8_t *val;
    uint16_t len;
} coap_opt_t;

void coap_init(coap_msg_t *m, uint8_t *buf, size_t cap, uint8_t type, uint8_t code, uint16_t mid);
int coap_token(coap_msg_t *m, const uint8_t *tok, uint8_t n);
int coap_opt(coap_msg_t *m, uint16_t num, const void *val, uint16_t len);
int coap_opt_uint(coap_msg_t *m, uint16_t num, uint32_t v);
int coap_uri_path(coap_msg_t *m, const char *path);
int coap_payload(coap_msg_t *m, const uint8_t *p, size_t n);
int coap_parse(const uint8_t *buf, size_t len, coap_msg_t *m, coap_opt_t *opts, size_t maxopts,
               size_t *nopts, const uint8_t **payload, size_t *plen);
size_t lwm2m_register(uint8_t *buf, size_t cap, const char *ep, uint32_t lifetime);
size_t lwm2m_senml_cbor(uint8_t *buf, size_t cap, int16_t temp_cdeg, uint16_t rh_pmil, uint16_t batt_mv);

typedef struct {
    uint16_t epoch;
    uint64_t seq;
    uint8_t key[16];
    uint8_t iv[4];
} dtls_dir_t;

int dtls_keys_from_psk(const uint8_t *psk, size_t psklen, const uint8_t crand[32], const uint8_t srand[32],
                       dtls_dir_t *client, dtls_dir_t *server);
int dtls_seal(dtls_dir_t *d, uint8_t type, const uint8_t *in, size_t len, uint8_t *out, size_t cap);
int dtls_open(dtls_dir_t *d, const uint8_t *rec, size_t len, uint8_t *out, size_t cap, uint8_t *type);

#endif

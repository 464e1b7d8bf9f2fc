/* Shared declarations for the sensor node application. */
#ifndef APP_H
#define APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FW_NAME        "fotahub-sensor-node"
#define FW_VERSION_STR "1.0.0"
#define HW_VERSION_STR "SN-F401-revC"

/* util.c */
typedef struct {
    uint8_t *buf;
    uint16_t size;
    volatile uint16_t head;
    volatile uint16_t tail;
} ringbuf_t;

void rb_init(ringbuf_t *rb, uint8_t *mem, uint16_t size);
bool rb_put(ringbuf_t *rb, uint8_t c);
int rb_get(ringbuf_t *rb);
uint16_t rb_count(const ringbuf_t *rb);
void rb_flush(ringbuf_t *rb);

enum { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };
extern int g_log_level;
void log_write(int level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define LOGE(tag, ...) log_write(LOG_ERR, tag, __VA_ARGS__)
#define LOGW(tag, ...) log_write(LOG_WARN, tag, __VA_ARGS__)
#define LOGI(tag, ...) log_write(LOG_INFO, tag, __VA_ARGS__)
#define LOGD(tag, ...) log_write(LOG_DEBUG, tag, __VA_ARGS__)

size_t hex_encode(char *dst, size_t dstlen, const uint8_t *src, size_t n);
bool parse_int(const char **p, int32_t *out);
bool str_starts(const char *s, const char *prefix);
void console_init(void);
uint32_t millis(void);
void delay_ms(uint32_t ms);
uint32_t heap_free(void);

/* sensor.c */
typedef struct {
    int16_t temp_cdeg;   /* 0.01 degC */
    uint16_t rh_pmil;    /* 0.1 %RH */
    uint8_t status;
} sensor_sample_t;

enum { SENSOR_OK = 0, SENSOR_ERR_BUS = -1, SENSOR_ERR_CRC = -2, SENSOR_ERR_RANGE = -3 };

int sensor_init(void);
int sensor_read(sensor_sample_t *s);
uint8_t crc8(const uint8_t *data, size_t n);
uint32_t sensor_serial(void);
void sensor_stats(int16_t *tmin, int16_t *tmax);
void sensor_reset_stats(void);

/* modem.c */
void modem_init(void);
void modem_poll(void);
bool modem_ready(void);
int modem_send(const uint8_t *data, size_t len);
int16_t modem_rssi(void);
uint32_t modem_cell_id(void);
const char *modem_state_name(void);

/* lwm2m_objects.c */
size_t lwm2m_encode_report(char *buf, size_t len, const sensor_sample_t *s);
void lwm2m_dump(void);

#endif

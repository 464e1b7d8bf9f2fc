/* Shared declarations for the sensor node application. */
#ifndef APP_H
#define APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define FW_NAME        "fotahub-sensor-node"
#define FW_VERSION_STR "3.0.0"
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

/* i2c_bus.c */
int i2c_bus_init(uint32_t hz);
int i2c_bus_write(uint8_t addr, const uint8_t *buf, size_t n);
int i2c_bus_read(uint8_t addr, uint8_t *buf, size_t n);
uint32_t i2c_bus_errors(void);

/* sht3x.c */
typedef struct {
    int16_t temp_cdeg;   /* 0.01 degC */
    uint16_t rh_pmil;    /* 0.1 %RH */
    uint8_t status;
} climate_sample_t;

enum { SHT_OK = 0, SHT_ERR_BUS = -1, SHT_ERR_CRC = -2, SHT_ERR_RANGE = -3 };

int sht3x_init(void);
int sht3x_measure(climate_sample_t *s);
uint8_t sht3x_crc8(const uint8_t *data, size_t n);
uint32_t sht3x_serial(void);
void climate_minmax(int16_t *tmin, int16_t *tmax);
void climate_minmax_reset(void);

/* battery.c */
typedef enum { BATT_UNKNOWN, BATT_NORMAL, BATT_LOW, BATT_CRITICAL, BATT_EXTERNAL } batt_status_t;
void battery_init(void);
uint16_t battery_millivolts(void);
uint8_t battery_percent(void);
batt_status_t battery_status(void);
const char *battery_status_name(batt_status_t s);

/* modem_fsm.c */
void nbiot_start(void);
void nbiot_process(void);
bool nbiot_can_send(void);
int nbiot_transmit(const uint8_t *data, size_t len);
const char *nbiot_state(void);

/* modem_at.c */
int16_t nbiot_rssi(void);
uint32_t nbiot_cell_id(void);

/* rtc.c */
void rtc_set(time_t t);
time_t rtc_now(void);

/* shell.c */
double formula_eval(const char *src, double x, const char **err);

/* lwm2m_objects.c */
size_t lwm2m_build_senml(char *buf, size_t len, const climate_sample_t *s);
void lwm2m_print_registry(void);

#endif

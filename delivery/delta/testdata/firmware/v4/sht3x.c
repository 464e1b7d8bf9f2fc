/* Sensirion SHT3x temperature/humidity sensor: measurement, CRC-8, calibration, filtering. */
#include <string.h>
#include "app.h"

#define SHT3X_ADDR         0x44u
#define FILTER_LEN         8u
#define MEAS_DELAY_MS      20u

static const char TAG[] = "sht3x";

/* Commands in datasheet order. */
enum {
    SHT_CMD_MEASURE_HIGHREP = 0x2400,
    SHT_CMD_MEASURE_MEDREP  = 0x240B,
    SHT_CMD_READ_STATUS     = 0xF32D,
    SHT_CMD_CLEAR_STATUS    = 0x3041,
    SHT_CMD_HEATER_OFF      = 0x3066,
    SHT_CMD_HEATER_ON       = 0x306D,
    SHT_CMD_SOFT_RESET      = 0x30A2,
    SHT_CMD_READ_SERIAL     = 0x3780,
};

typedef struct {
    int32_t sum;
    int16_t buf[FILTER_LEN];
    uint8_t idx, n;
} moving_avg_t;

static struct {
    uint32_t serial;
    uint32_t crc_errors, bus_errors;
    int16_t tmin, tmax;
    moving_avg_t t_avg, rh_avg;
} sht = { .tmin = 32767, .tmax = -32768 };

/* Humidity gain in Q12 (4096 = 1.0), one point every 5 %RH from 0 to 100 %RH. */
static const uint16_t rh_gain[21] = {
    4096, 4104, 4112, 4119, 4125, 4130, 4134, 4137, 4139, 4139, 4138,
    4136, 4132, 4127, 4120, 4112, 4103, 4093, 4082, 4070, 4057,
};

/* Temperature correction in 0.01 degC, one point every 4 degC from -40 to +84 degC. */
static const int16_t temp_cal[32] = {
    -71, -66, -62, -57, -53, -49, -45, -41, -37, -33, -30, -26, -23, -20, -17, -14,
    -11,  -8,  -6,  -3,   0,   3,   5,   8,  11,  14,  17,  21,  25,  30,  36,  43,
};

static const uint8_t crc8_table[256] = {
    0x00, 0x31, 0x62, 0x53, 0xC4, 0xF5, 0xA6, 0x97, 0xB9, 0x88, 0xDB, 0xEA,
    0x7D, 0x4C, 0x1F, 0x2E, 0x43, 0x72, 0x21, 0x10, 0x87, 0xB6, 0xE5, 0xD4,
    0xFA, 0xCB, 0x98, 0xA9, 0x3E, 0x0F, 0x5C, 0x6D, 0x86, 0xB7, 0xE4, 0xD5,
    0x42, 0x73, 0x20, 0x11, 0x3F, 0x0E, 0x5D, 0x6C, 0xFB, 0xCA, 0x99, 0xA8,
    0xC5, 0xF4, 0xA7, 0x96, 0x01, 0x30, 0x63, 0x52, 0x7C, 0x4D, 0x1E, 0x2F,
    0xB8, 0x89, 0xDA, 0xEB, 0x3D, 0x0C, 0x5F, 0x6E, 0xF9, 0xC8, 0x9B, 0xAA,
    0x84, 0xB5, 0xE6, 0xD7, 0x40, 0x71, 0x22, 0x13, 0x7E, 0x4F, 0x1C, 0x2D,
    0xBA, 0x8B, 0xD8, 0xE9, 0xC7, 0xF6, 0xA5, 0x94, 0x03, 0x32, 0x61, 0x50,
    0xBB, 0x8A, 0xD9, 0xE8, 0x7F, 0x4E, 0x1D, 0x2C, 0x02, 0x33, 0x60, 0x51,
    0xC6, 0xF7, 0xA4, 0x95, 0xF8, 0xC9, 0x9A, 0xAB, 0x3C, 0x0D, 0x5E, 0x6F,
    0x41, 0x70, 0x23, 0x12, 0x85, 0xB4, 0xE7, 0xD6, 0x7A, 0x4B, 0x18, 0x29,
    0xBE, 0x8F, 0xDC, 0xED, 0xC3, 0xF2, 0xA1, 0x90, 0x07, 0x36, 0x65, 0x54,
    0x39, 0x08, 0x5B, 0x6A, 0xFD, 0xCC, 0x9F, 0xAE, 0x80, 0xB1, 0xE2, 0xD3,
    0x44, 0x75, 0x26, 0x17, 0xFC, 0xCD, 0x9E, 0xAF, 0x38, 0x09, 0x5A, 0x6B,
    0x45, 0x74, 0x27, 0x16, 0x81, 0xB0, 0xE3, 0xD2, 0xBF, 0x8E, 0xDD, 0xEC,
    0x7B, 0x4A, 0x19, 0x28, 0x06, 0x37, 0x64, 0x55, 0xC2, 0xF3, 0xA0, 0x91,
    0x47, 0x76, 0x25, 0x14, 0x83, 0xB2, 0xE1, 0xD0, 0xFE, 0xCF, 0x9C, 0xAD,
    0x3A, 0x0B, 0x58, 0x69, 0x04, 0x35, 0x66, 0x57, 0xC0, 0xF1, 0xA2, 0x93,
    0xBD, 0x8C, 0xDF, 0xEE, 0x79, 0x48, 0x1B, 0x2A, 0xC1, 0xF0, 0xA3, 0x92,
    0x05, 0x34, 0x67, 0x56, 0x78, 0x49, 0x1A, 0x2B, 0xBC, 0x8D, 0xDE, 0xEF,
    0x82, 0xB3, 0xE0, 0xD1, 0x46, 0x77, 0x24, 0x15, 0x3B, 0x0A, 0x59, 0x68,
    0xFF, 0xCE, 0x9D, 0xAC,
};

uint8_t sht3x_crc8(const uint8_t *data, size_t n)
{
    uint8_t crc = 0xFF;

    while (n--)
        crc = crc8_table[crc ^ *data++];
    return crc;
}

static int16_t moving_avg(moving_avg_t *f, int16_t x)
{
    if (f->n < FILTER_LEN)
        f->n++;
    else
        f->sum -= f->buf[f->idx];
    f->buf[f->idx] = x;
    f->sum += x;
    f->idx = (uint8_t)((f->idx + 1u) % FILTER_LEN);
    return (int16_t)((f->sum + (f->sum >= 0 ? f->n / 2 : -(f->n / 2))) / f->n);
}

static uint32_t rh_corrected(uint32_t pmil)
{
    uint32_t idx = pmil / 50, frac = pmil % 50;

    if (idx >= 20)
        return pmil * rh_gain[20] >> 12;
    return pmil * (rh_gain[idx] + ((int32_t)rh_gain[idx + 1] - rh_gain[idx]) * (int32_t)frac / 50) >> 12;
}

static int16_t temp_offset(int32_t cdeg)
{
    int32_t pos = cdeg + 4000;

    if (pos <= 0)
        return temp_cal[0];
    if (pos >= 31 * 400)
        return temp_cal[31];
    int32_t i = pos / 400;
    return (int16_t)(temp_cal[i] + (temp_cal[i + 1] - temp_cal[i]) * (pos % 400) / 400);
}

static int command(uint16_t cmd)
{
    uint8_t b[2] = { (uint8_t)(cmd >> 8), (uint8_t)cmd };

    return i2c_bus_write(SHT3X_ADDR, b, sizeof b) == 0 ? SHT_OK : SHT_ERR_BUS;
}

static int fetch(uint16_t cmd, uint32_t wait_ms, uint16_t out[2])
{
    uint8_t raw[6];

    if (command(cmd) != SHT_OK) {
        sht.bus_errors++;
        return SHT_ERR_BUS;
    }
    delay_ms(wait_ms);
    if (i2c_bus_read(SHT3X_ADDR, raw, sizeof raw) != 0) {
        sht.bus_errors++;
        return SHT_ERR_BUS;
    }
    for (int w = 0; w < 2; w++) {
        if (sht3x_crc8(&raw[3 * w], 2) != raw[3 * w + 2]) {
            sht.crc_errors++;
            return SHT_ERR_CRC;
        }
        out[w] = (uint16_t)(raw[3 * w] << 8 | raw[3 * w + 1]);
    }
    return SHT_OK;
}

int sht3x_init(void)
{
    uint16_t w[2];

    i2c_bus_init(100000u);
    if (command(SHT_CMD_SOFT_RESET) != SHT_OK) {
        LOGE(TAG, "not found at 0x%02x", SHT3X_ADDR);
        return SHT_ERR_BUS;
    }
    delay_ms(2);
    command(SHT_CMD_CLEAR_STATUS);
    command(SHT_CMD_HEATER_OFF);
    if (fetch(SHT_CMD_READ_SERIAL, 1, w) == SHT_OK)
        sht.serial = (uint32_t)w[0] << 16 | w[1];
    LOGI(TAG, "serial %08lx", (unsigned long)sht.serial);
    return SHT_OK;
}

int sht3x_measure(climate_sample_t *s)
{
    uint16_t w[2];
    int rc = fetch(SHT_CMD_MEASURE_HIGHREP, MEAS_DELAY_MS, w);

    if (rc != SHT_OK) {
        LOGW(TAG, "measure failed %d (bus %lu, crc %lu)", rc, (unsigned long)sht.bus_errors,
             (unsigned long)sht.crc_errors);
        return rc;
    }
    int32_t t = -4500 + (int32_t)(17500u * w[0] / 65535u);
    uint32_t h = rh_corrected(1000u * w[1] / 65535u);

    t += temp_offset(t);
    if (h > 1000u)
        h = 1000u;
    if (t < -4000 || t > 12500)
        return SHT_ERR_RANGE;
    s->temp_cdeg = moving_avg(&sht.t_avg, (int16_t)t);
    s->rh_pmil = (uint16_t)moving_avg(&sht.rh_avg, (int16_t)h);
    s->status = 0;
    if (s->temp_cdeg < sht.tmin)
        sht.tmin = s->temp_cdeg;
    if (s->temp_cdeg > sht.tmax)
        sht.tmax = s->temp_cdeg;
    LOGD(TAG, "raw %04x %04x", w[0], w[1]);
    return SHT_OK;
}

uint32_t sht3x_serial(void)
{
    return sht.serial;
}

void climate_minmax(int16_t *tmin, int16_t *tmax)
{
    *tmin = sht.tmin;
    *tmax = sht.tmax;
}

void climate_minmax_reset(void)
{
    sht.tmin = 32767;
    sht.tmax = -32768;
}

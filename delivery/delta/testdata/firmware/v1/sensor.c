/* SHT3x-style temperature/humidity sensor on I2C1 with CRC-8 and calibration tables. */
#include <string.h>
#include "app.h"
#include "hw.h"

#define SENSOR_ADDR        0x44u
#define CMD_MEAS_HIGHREP   0x2400u
#define CMD_SOFT_RESET     0x30A2u
#define CMD_READ_SERIAL    0x3780u
#define CMD_HEATER_OFF     0x3066u
#define I2C_TIMEOUT        20000u
#define MEAS_DELAY_MS      16u

static const char TAG[] = "sensor";

/* CRC-8, polynomial 0x31, init 0xFF (Sensirion). */
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

/* Temperature correction in 0.01 degC, one point every 4 degC from -40 to +84 degC. */
static const int16_t temp_cal[32] = {
    -62, -58, -55, -51, -47, -44, -40, -37, -33, -30, -27, -24, -21, -18, -15, -12,
    -10,  -7,  -5,  -2,   0,   2,   4,   7,   9,  12,  15,  18,  22,  26,  31,  37,
};

/* Humidity gain in Q12 (4096 = 1.0), one point every 5 %RH from 0 to 100 %RH. */
static const uint16_t rh_gain[21] = {
    4096, 4102, 4109, 4115, 4120, 4124, 4127, 4129, 4130, 4130, 4129,
    4127, 4124, 4120, 4114, 4107, 4099, 4090, 4080, 4069, 4057,
};

static uint32_t s_serial;
static int16_t s_tmin = 32767, s_tmax = -32768;
static uint32_t s_errors;

uint8_t crc8(const uint8_t *data, size_t n)
{
    uint8_t crc = 0xFF;
    while (n--)
        crc = crc8_table[crc ^ *data++];
    return crc;
}

static bool i2c_wait(uint32_t flag)
{
    for (uint32_t i = 0; i < I2C_TIMEOUT; i++) {
        uint32_t sr = I2C1->SR1;
        if (sr & I2C_SR1_AF) {
            I2C1->SR1 = ~I2C_SR1_AF;
            return false;
        }
        if (sr & flag)
            return true;
    }
    return false;
}

static int i2c_start(uint8_t addr_rw)
{
    I2C1->CR1 |= I2C_CR1_START;
    if (!i2c_wait(I2C_SR1_SB))
        return SENSOR_ERR_BUS;
    I2C1->DR = addr_rw;
    if (!i2c_wait(I2C_SR1_ADDR))
        return SENSOR_ERR_BUS;
    (void)I2C1->SR2;
    return SENSOR_OK;
}

static int i2c_write_cmd(uint16_t cmd)
{
    int rc = i2c_start((uint8_t)(SENSOR_ADDR << 1));
    if (rc == SENSOR_OK) {
        I2C1->DR = cmd >> 8;
        if (!i2c_wait(I2C_SR1_TXE))
            rc = SENSOR_ERR_BUS;
        I2C1->DR = cmd & 0xFF;
        if (!i2c_wait(I2C_SR1_BTF))
            rc = SENSOR_ERR_BUS;
    }
    I2C1->CR1 |= I2C_CR1_STOP;
    return rc;
}

static int i2c_read(uint8_t *buf, size_t n)
{
    I2C1->CR1 |= I2C_CR1_ACK;
    int rc = i2c_start((uint8_t)((SENSOR_ADDR << 1) | 1u));
    for (size_t i = 0; rc == SENSOR_OK && i < n; i++) {
        if (i == n - 1) {
            I2C1->CR1 &= ~I2C_CR1_ACK;
            I2C1->CR1 |= I2C_CR1_STOP;
        }
        if (!i2c_wait(I2C_SR1_RXNE))
            rc = SENSOR_ERR_BUS;
        else
            buf[i] = (uint8_t)I2C1->DR;
    }
    if (rc != SENSOR_OK)
        I2C1->CR1 |= I2C_CR1_STOP;
    return rc;
}

static int read_words(uint16_t cmd, uint16_t *w0, uint16_t *w1, uint32_t wait)
{
    uint8_t raw[6];
    int rc = i2c_write_cmd(cmd);
    if (rc != SENSOR_OK)
        return rc;
    delay_ms(wait);
    rc = i2c_read(raw, sizeof raw);
    if (rc != SENSOR_OK)
        return rc;
    if (crc8(raw, 2) != raw[2] || crc8(raw + 3, 2) != raw[5])
        return SENSOR_ERR_CRC;
    *w0 = (uint16_t)(raw[0] << 8 | raw[1]);
    *w1 = (uint16_t)(raw[3] << 8 | raw[4]);
    return SENSOR_OK;
}

static int16_t interp_temp_cal(int32_t cdeg)
{
    int32_t pos = cdeg + 4000;            /* offset from -40.00 degC */
    if (pos <= 0)
        return temp_cal[0];
    int32_t idx = pos / 400, frac = pos % 400;
    if (idx >= 31)
        return temp_cal[31];
    return (int16_t)(temp_cal[idx] + (temp_cal[idx + 1] - temp_cal[idx]) * frac / 400);
}

static uint32_t apply_rh_gain(uint32_t pmil)
{
    uint32_t idx = pmil / 50, frac = pmil % 50;
    if (idx >= 20)
        return pmil * rh_gain[20] >> 12;
    uint32_t g = rh_gain[idx] + ((int32_t)rh_gain[idx + 1] - rh_gain[idx]) * (int32_t)frac / 50;
    return pmil * g >> 12;
}

int sensor_init(void)
{
    uint16_t hi, lo;

    RCC->APB1ENR |= (1u << 21);            /* I2C1 clock */
    RCC->AHB1ENR |= (1u << 1);             /* GPIOB clock */
    GPIOB->MODER = (GPIOB->MODER & ~(0xFu << 16)) | (0xAu << 16);   /* PB8/PB9 AF4 */
    GPIOB->OTYPER |= (3u << 8);
    GPIOB->AFR[1] = (GPIOB->AFR[1] & ~0xFFu) | 0x44u;
    I2C1->CR1 = 0;
    I2C1->CR2 = APB1_HZ / 1000000u;
    I2C1->CCR = APB1_HZ / (2u * 100000u);
    I2C1->TRISE = APB1_HZ / 1000000u + 1u;
    I2C1->CR1 = I2C_CR1_PE;

    if (i2c_write_cmd(CMD_SOFT_RESET) != SENSOR_OK) {
        LOGE(TAG, "no response at 0x%02x", SENSOR_ADDR);
        return SENSOR_ERR_BUS;
    }
    delay_ms(2);
    i2c_write_cmd(CMD_HEATER_OFF);
    if (read_words(CMD_READ_SERIAL, &hi, &lo, 1) == SENSOR_OK)
        s_serial = (uint32_t)hi << 16 | lo;
    LOGI(TAG, "SHT3x serial %08lx", (unsigned long)s_serial);
    return SENSOR_OK;
}

int sensor_read(sensor_sample_t *s)
{
    uint16_t rt, rh;
    int rc = read_words(CMD_MEAS_HIGHREP, &rt, &rh, MEAS_DELAY_MS);

    if (rc != SENSOR_OK) {
        s_errors++;
        LOGW(TAG, "read failed rc=%d (errors %lu)", rc, (unsigned long)s_errors);
        return rc;
    }
    int32_t t = -4500 + (int32_t)(17500u * rt / 65535u);
    uint32_t h = 1000u * rh / 65535u;

    t += interp_temp_cal(t);
    h = apply_rh_gain(h);
    if (h > 1000u)
        h = 1000u;
    if (t < -4000 || t > 12500)
        return SENSOR_ERR_RANGE;

    s->temp_cdeg = (int16_t)t;
    s->rh_pmil = (uint16_t)h;
    s->status = 0;
    if (t < s_tmin)
        s_tmin = (int16_t)t;
    if (t > s_tmax)
        s_tmax = (int16_t)t;
    LOGD(TAG, "raw t=%04x h=%04x", rt, rh);
    return SENSOR_OK;
}

uint32_t sensor_serial(void)
{
    return s_serial;
}

void sensor_stats(int16_t *tmin, int16_t *tmax)
{
    *tmin = s_tmin;
    *tmax = s_tmax;
}

void sensor_reset_stats(void)
{
    s_tmin = 32767;
    s_tmax = -32768;
}

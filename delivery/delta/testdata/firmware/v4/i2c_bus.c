/* Polled I2C master on I2C1 (PB8/PB9). */
#include "app.h"
#include "hw.h"

#define I2C_SPIN_LIMIT  50000u

enum { I2C_OK = 0, I2C_ERR_NACK = -1, I2C_ERR_TIMEOUT = -2 };

static uint32_t s_bus_errors;

static int wait_flag(uint32_t flag)
{
    uint32_t spins = I2C_SPIN_LIMIT;

    while (spins--) {
        uint32_t sr1 = I2C1->SR1;
        if (sr1 & I2C_SR1_AF) {
            I2C1->SR1 = ~I2C_SR1_AF;
            s_bus_errors++;
            return I2C_ERR_NACK;
        }
        if (sr1 & flag)
            return I2C_OK;
    }
    s_bus_errors++;
    return I2C_ERR_TIMEOUT;
}

static int address(uint8_t addr, bool read)
{
    int rc;

    I2C1->CR1 |= I2C_CR1_START;
    if ((rc = wait_flag(I2C_SR1_SB)) != I2C_OK)
        return rc;
    I2C1->DR = (uint32_t)(addr << 1) | (read ? 1u : 0u);
    if ((rc = wait_flag(I2C_SR1_ADDR)) != I2C_OK)
        return rc;
    (void)I2C1->SR2;
    return I2C_OK;
}

int i2c_bus_init(uint32_t hz)
{
    RCC->APB1ENR |= (1u << 21);
    RCC->AHB1ENR |= (1u << 1);
    GPIOB->MODER = (GPIOB->MODER & ~(0xFu << 16)) | (0xAu << 16);
    GPIOB->OTYPER |= (3u << 8);
    GPIOB->PUPDR = (GPIOB->PUPDR & ~(0xFu << 16)) | (0x5u << 16);
    GPIOB->AFR[1] = (GPIOB->AFR[1] & ~0xFFu) | 0x44u;
    I2C1->CR1 = 0;
    I2C1->CR2 = APB1_HZ / 1000000u;
    I2C1->CCR = APB1_HZ / (2u * hz);
    I2C1->TRISE = APB1_HZ / 1000000u + 1u;
    I2C1->CR1 = I2C_CR1_PE;
    return I2C_OK;
}

int i2c_bus_write(uint8_t addr, const uint8_t *buf, size_t n)
{
    int rc = address(addr, false);

    for (size_t i = 0; rc == I2C_OK && i < n; i++) {
        I2C1->DR = buf[i];
        rc = wait_flag(i + 1 == n ? I2C_SR1_BTF : I2C_SR1_TXE);
    }
    I2C1->CR1 |= I2C_CR1_STOP;
    return rc;
}

int i2c_bus_read(uint8_t addr, uint8_t *buf, size_t n)
{
    int rc;

    I2C1->CR1 |= I2C_CR1_ACK;
    rc = address(addr, true);
    for (size_t i = 0; rc == I2C_OK && i < n; i++) {
        if (i + 1 == n) {
            I2C1->CR1 &= ~I2C_CR1_ACK;
            I2C1->CR1 |= I2C_CR1_STOP;
        }
        if ((rc = wait_flag(I2C_SR1_RXNE)) == I2C_OK)
            buf[i] = (uint8_t)I2C1->DR;
    }
    if (rc != I2C_OK)
        I2C1->CR1 |= I2C_CR1_STOP;
    return rc;
}

uint32_t i2c_bus_errors(void)
{
    return s_bus_errors;
}

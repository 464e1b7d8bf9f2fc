/* Minimal register map for an STM32F401-class Cortex-M4. */
#ifndef HW_H
#define HW_H

#include <stdint.h>

typedef struct {
    volatile uint32_t SR, DR, BRR, CR1, CR2, CR3, GTPR;
} usart_t;

typedef struct {
    volatile uint32_t CR1, CR2, OAR1, OAR2, DR, SR1, SR2, CCR, TRISE, FLTR;
} i2c_t;

typedef struct {
    volatile uint32_t MODER, OTYPER, OSPEEDR, PUPDR, IDR, ODR, BSRR, LCKR, AFR[2];
} gpio_t;

typedef struct {
    volatile uint32_t CTRL, LOAD, VAL, CALIB;
} systick_t;

typedef struct {
    volatile uint32_t CR, PLLCFGR, CFGR, CIR, AHB1RSTR, AHB2RSTR, RES0[2];
    volatile uint32_t APB1RSTR, APB2RSTR, RES1[2], AHB1ENR, AHB2ENR, RES2[2];
    volatile uint32_t APB1ENR, APB2ENR;
} rcc_t;

#define USART1   ((usart_t *)0x40011000u)   /* debug console */
#define USART2   ((usart_t *)0x40004400u)   /* NB-IoT modem */
#define I2C1     ((i2c_t *)0x40005400u)
#define GPIOA    ((gpio_t *)0x40020000u)
#define GPIOB    ((gpio_t *)0x40020400u)
#define GPIOC    ((gpio_t *)0x40020800u)
#define RCC      ((rcc_t *)0x40023800u)
#define SYSTICK  ((systick_t *)0xE000E010u)
#define FLASH_ACR (*(volatile uint32_t *)0x40023C00u)
#define IWDG_KR  (*(volatile uint32_t *)0x40003000u)
#define IWDG_PR  (*(volatile uint32_t *)0x40003004u)
#define IWDG_RLR (*(volatile uint32_t *)0x40003008u)
#define NVIC_ISER ((volatile uint32_t *)0xE000E100u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define UID_BASE ((const uint32_t *)0x1FFF7A10u)

#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE  (1u << 7)
#define USART_SR_ORE  (1u << 3)
#define USART_CR1_UE  (1u << 13)
#define USART_CR1_TE  (1u << 3)
#define USART_CR1_RE  (1u << 2)
#define USART_CR1_RXNEIE (1u << 5)

#define I2C_CR1_PE    (1u << 0)
#define I2C_CR1_START (1u << 8)
#define I2C_CR1_STOP  (1u << 9)
#define I2C_CR1_ACK   (1u << 10)
#define I2C_SR1_SB    (1u << 0)
#define I2C_SR1_ADDR  (1u << 1)
#define I2C_SR1_BTF   (1u << 2)
#define I2C_SR1_RXNE  (1u << 6)
#define I2C_SR1_TXE   (1u << 7)
#define I2C_SR1_AF    (1u << 10)

#define SYSCLK_HZ 84000000u
#define APB1_HZ   42000000u
#define APB2_HZ   84000000u

#endif

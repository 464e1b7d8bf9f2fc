/* Sensor node: periodic temperature/humidity sampling reported over NB-IoT. */
#include <stdio.h>
#include <string.h>
#include "app.h"
#include "hw.h"

#define LED_PIN            5u
#define SAMPLE_PERIOD_MS   2000u
#define REPORT_PERIOD_MS   60000u
#define WATCHDOG_RELOAD    4000u

static const char TAG[] = "main";

volatile uint32_t g_ticks;

typedef struct {
    const char *name;
    uint32_t period_ms;
    void (*fn)(void);
} task_t;

static sensor_sample_t s_sample;
static bool s_sample_valid;
static uint32_t s_reports, s_report_failures;
static uint32_t s_task_last[4];

void SysTick_Handler(void)
{
    g_ticks++;
}

void SystemInit(void)
{
    RCC->CR |= (1u << 16);                       /* HSE on */
    while (!(RCC->CR & (1u << 17)))
        ;
    FLASH_ACR = (1u << 8) | (1u << 9) | (1u << 10) | 2u;   /* prefetch, caches, 2 WS */
    /* PLL: HSE 8 MHz / M=8 * N=336 / P=4 = 84 MHz, Q=7 */
    RCC->PLLCFGR = 8u | (336u << 6) | (1u << 16) | (1u << 22) | (7u << 24);
    RCC->CR |= (1u << 24);
    while (!(RCC->CR & (1u << 25)))
        ;
    RCC->CFGR = (4u << 10) | 2u;                 /* APB1 = HCLK/2, SYSCLK = PLL */
    while ((RCC->CFGR & 0xCu) != 0x8u)
        ;
}

static void watchdog_init(void)
{
    IWDG_KR = 0x5555u;
    IWDG_PR = 4u;                                /* /64: 0.5 kHz */
    IWDG_RLR = WATCHDOG_RELOAD / 2u;
    IWDG_KR = 0xCCCCu;
}

static void led_task(void)
{
    GPIOA->ODR ^= 1u << LED_PIN;
}

static void sensor_task(void)
{
    sensor_sample_t s;
    if (sensor_read(&s) == SENSOR_OK) {
        s_sample = s;
        s_sample_valid = true;
    }
}

static void report_task(void)
{
    char payload[200];

    if (!s_sample_valid) {
        LOGW(TAG, "no valid sample yet");
        return;
    }
    size_t n = lwm2m_encode_report(payload, sizeof payload, &s_sample);
    if (n == 0 || modem_send((const uint8_t *)payload, n) < 0) {
        s_report_failures++;
        LOGW(TAG, "report dropped (modem %s, %lu failures)", modem_state_name(),
             (unsigned long)s_report_failures);
        return;
    }
    s_reports++;
    LOGI(TAG, "report #%lu queued, %u bytes", (unsigned long)s_reports, (unsigned)n);
    sensor_reset_stats();
}

static void status_task(void)
{
    LOGI(TAG, "up %lus, modem %s, rssi %d dBm, heap free %lu",
         (unsigned long)(millis() / 1000u), modem_state_name(), modem_rssi(),
         (unsigned long)heap_free());
}

static const task_t tasks[] = {
    { "led", 500u, led_task },
    { "sensor", SAMPLE_PERIOD_MS, sensor_task },
    { "report", REPORT_PERIOD_MS, report_task },
    { "status", 300000u, status_task },
};

static void print_banner(void)
{
    const uint32_t *uid = UID_BASE;
    printf("\n%s %s (%s)\n", FW_NAME, FW_VERSION_STR, HW_VERSION_STR);
    printf("uid %08lx%08lx%08lx, sysclk %lu Hz\n", (unsigned long)uid[2],
           (unsigned long)uid[1], (unsigned long)uid[0], (unsigned long)SYSCLK_HZ);
}

int main(void)
{
    SYSTICK->LOAD = SYSCLK_HZ / 1000u - 1u;
    SYSTICK->VAL = 0;
    SYSTICK->CTRL = 7u;
    RCC->AHB1ENR |= 1u;
    GPIOA->MODER |= 1u << (LED_PIN * 2);

    console_init();
    print_banner();
    if (sensor_init() != SENSOR_OK)
        LOGE(TAG, "sensor init failed, continuing without sensor");
    modem_init();
    lwm2m_dump();
    watchdog_init();

    for (;;) {
        uint32_t now = millis();
        for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++) {
            if ((uint32_t)(now - s_task_last[i]) >= tasks[i].period_ms) {
                s_task_last[i] = now;
                tasks[i].fn();
            }
        }
        modem_poll();
        IWDG_KR = 0xAAAAu;
        __asm volatile("wfi");
    }
}

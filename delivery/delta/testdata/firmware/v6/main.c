/* Sensor node: climate sampling and battery monitoring reported over NB-IoT. */
#include <stdio.h>
#include <string.h>
#include "app.h"
#include "hw.h"
#include "shell.h"
#include "tzdb.h"

#define LED_PIN            5u
#define CLIMATE_PERIOD_MS  2000u
#define UPLINK_PERIOD_MS   60000u
#define BATTERY_PERIOD_MS  600000u
#define HEALTH_PERIOD_MS   300000u
#define WATCHDOG_RELOAD    4000u
#define HOME_ZONE          "Europe/Berlin"

static const char TAG[] = "app";

volatile uint32_t g_ticks;

typedef struct {
    const char *name;
    uint32_t period_ms;
    void (*run)(void);
} job_t;

static struct {
    climate_sample_t climate;
    bool have_climate;
    uint32_t uplinks, uplink_drops;
} app;

static void job_climate(void);
static void job_uplink(void);
static void job_battery(void);
static void job_health(void);
static void job_heartbeat(void);

static const job_t s_jobs[] = {
    { "climate", CLIMATE_PERIOD_MS, job_climate },
    { "uplink", UPLINK_PERIOD_MS, job_uplink },
    { "battery", BATTERY_PERIOD_MS, job_battery },
    { "health", HEALTH_PERIOD_MS, job_health },
    { "heartbeat", 500u, job_heartbeat },
};
#define JOB_COUNT (sizeof s_jobs / sizeof s_jobs[0])

static uint32_t s_job_due[JOB_COUNT];
static uint32_t s_job_runs[JOB_COUNT];

void SysTick_Handler(void)
{
    g_ticks++;
}

static void job_climate(void)
{
    climate_sample_t s;

    if (sht3x_measure(&s) != SHT_OK)
        return;
    app.climate = s;
    app.have_climate = true;
    printf("sample: %d cC, %u permille RH\n", s.temp_cdeg, s.rh_pmil);
}

static void job_uplink(void)
{
    char payload[300];
    size_t n;

    if (!app.have_climate) {
        LOGW(TAG, "nothing to send yet");
        return;
    }
    n = lwm2m_build_senml(payload, sizeof payload, &app.climate);
    if (n == 0 || nbiot_transmit((const uint8_t *)payload, n) < 0) {
        app.uplink_drops++;
        LOGW(TAG, "uplink dropped in state %s (%lu drops)", nbiot_state(),
             (unsigned long)app.uplink_drops);
        return;
    }
    app.uplinks++;
    LOGI(TAG, "uplink #%lu: %u bytes", (unsigned long)app.uplinks, (unsigned)n);
    climate_minmax_reset();
}

static void job_battery(void)
{
    uint16_t mv = battery_millivolts();
    batt_status_t st = battery_status();

    LOGI(TAG, "battery %u mV, %u%%, %s", mv, battery_percent(), battery_status_name(st));
    if (st == BATT_CRITICAL)
        LOGE(TAG, "battery critical, uplinks continue until brown-out");
}

static void job_health(void)
{
    LOGI(TAG, "uptime %lus, nbiot %s, rssi %d dBm, heap free %lu, i2c errors %lu",
         (unsigned long)(millis() / 1000u), nbiot_state(), nbiot_rssi(),
         (unsigned long)heap_free(), (unsigned long)i2c_bus_errors());
    printf("  clock %lld s, zone %s\n", (long long)rtc_now(), HOME_ZONE);
    for (size_t i = 0; i < JOB_COUNT; i++)
        printf("  job %-9s every %6lu ms, %lu runs\n", s_jobs[i].name,
               (unsigned long)s_jobs[i].period_ms, (unsigned long)s_job_runs[i]);
}

static void job_heartbeat(void)
{
    GPIOA->ODR ^= 1u << LED_PIN;
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

static void board_init(void)
{
    SYSTICK->LOAD = SYSCLK_HZ / 1000u - 1u;
    SYSTICK->VAL = 0;
    SYSTICK->CTRL = 7u;
    RCC->AHB1ENR |= 1u;
    GPIOA->MODER |= 1u << (LED_PIN * 2);
    console_init();
}

static void banner(void)
{
    const uint32_t *uid = UID_BASE;

    printf("\n%s %s (%s)\n", FW_NAME, FW_VERSION_STR, HW_VERSION_STR);
    printf("uid %08lx%08lx%08lx, sysclk %lu Hz\n", (unsigned long)uid[2],
           (unsigned long)uid[1], (unsigned long)uid[0], (unsigned long)SYSCLK_HZ);
}

static void watchdog_start(void)
{
    IWDG_KR = 0x5555u;
    IWDG_PR = 4u;                                /* /64: 0.5 kHz */
    IWDG_RLR = WATCHDOG_RELOAD / 2u;
    IWDG_KR = 0xCCCCu;
}

int main(void)
{
    board_init();
    banner();
    if (sht3x_init() != SHT_OK)
        LOGE(TAG, "climate sensor missing, continuing without it");
    battery_init();
    job_battery();
    nbiot_start();
    lwm2m_print_registry();
    if (tz_select(HOME_ZONE) != 0)
        LOGW(TAG, "zone %s not in the zone table", HOME_ZONE);
    shell_boot_script();
    watchdog_start();

    for (;;) {
        uint32_t now = millis();

        nbiot_process();
        for (size_t i = 0; i < JOB_COUNT; i++) {
            if ((int32_t)(now - s_job_due[i]) >= 0) {
                s_job_due[i] = now + s_jobs[i].period_ms;
                s_job_runs[i]++;
                s_jobs[i].run();
            }
        }
        IWDG_KR = 0xAAAAu;
        __asm volatile("wfi");
    }
}

/* Battery monitor: Li-SOCl2 primary cell on PA1 through a 1:2 divider, sampled by ADC1. */
#include "app.h"
#include "hw.h"

#define BATT_CHANNEL      1u
#define VREFINT_CHANNEL   17u
#define OVERSAMPLE        16u
#define DIVIDER_NUM       2u
#define EXTERNAL_MV       4500u
#define LOW_PERCENT       20u
#define CRITICAL_PERCENT  5u

typedef struct {
    uint16_t mv;
    uint8_t percent;
} discharge_point_t;

/* Li-SOCl2 (ER14505-class) discharge curve at 20 degC and ~10 uA average load: flat plateau, steep knee. */
static const discharge_point_t discharge_curve[] = {
    { 3050, 0 }, { 3150, 1 }, { 3230, 2 }, { 3300, 4 }, { 3350, 6 }, { 3390, 9 },
    { 3420, 13 }, { 3440, 18 }, { 3455, 24 }, { 3465, 31 }, { 3475, 39 }, { 3485, 48 },
    { 3495, 57 }, { 3505, 66 }, { 3515, 75 }, { 3530, 84 }, { 3550, 91 }, { 3580, 96 },
    { 3620, 99 }, { 3670, 100 },
};
#define CURVE_POINTS (sizeof discharge_curve / sizeof discharge_curve[0])

static const char *const status_names[] = {
    "unknown", "normal", "low", "critical", "external",
};

static uint16_t s_mv;

static uint16_t adc_sample(uint32_t channel)
{
    uint32_t acc = 0;

    ADC1->SQR3 = channel;
    for (uint32_t i = 0; i < OVERSAMPLE; i++) {
        ADC1->CR2 |= ADC_CR2_SWSTART;
        while (!(ADC1->SR & ADC_SR_EOC))
            ;
        acc += ADC1->DR & 0xFFFu;
    }
    return (uint16_t)(acc / OVERSAMPLE);
}

void battery_init(void)
{
    RCC->APB2ENR |= (1u << 8);                 /* ADC1 clock */
    RCC->AHB1ENR |= (1u << 0);
    GPIOA->MODER |= (3u << (BATT_CHANNEL * 2));  /* PA1 analog */
    ADC_CCR = (1u << 23) | (1u << 16);         /* TSVREFE, ADCPRE /4 */
    ADC1->SMPR1 = 7u << 21;                    /* 480 cycles on VREFINT */
    ADC1->SMPR2 = 7u << (BATT_CHANNEL * 3);
    ADC1->CR2 = ADC_CR2_ADON;
}

uint16_t battery_millivolts(void)
{
    uint16_t vref = adc_sample(VREFINT_CHANNEL);
    uint16_t raw = adc_sample(BATT_CHANNEL);

    if (vref == 0)
        return 0;
    /* VDDA = 3300 mV * VREFINT_CAL / vref; Vbatt = raw * VDDA / 4095 * divider */
    uint32_t vdda = 3300u * VREFINT_CAL / vref;
    s_mv = (uint16_t)(raw * vdda * DIVIDER_NUM / 4095u);
    return s_mv;
}

uint8_t battery_percent(void)
{
    uint16_t mv = s_mv ? s_mv : battery_millivolts();

    if (mv <= discharge_curve[0].mv)
        return 0;
    for (size_t i = 1; i < CURVE_POINTS; i++) {
        const discharge_point_t *a = &discharge_curve[i - 1], *b = &discharge_curve[i];
        if (mv <= b->mv)
            return (uint8_t)(a->percent + (b->percent - a->percent) * (mv - a->mv) / (b->mv - a->mv));
    }
    return 100;
}

batt_status_t battery_status(void)
{
    if (s_mv == 0)
        return BATT_UNKNOWN;
    if (s_mv >= EXTERNAL_MV)
        return BATT_EXTERNAL;
    uint8_t p = battery_percent();
    if (p <= CRITICAL_PERCENT)
        return BATT_CRITICAL;
    return p <= LOW_PERCENT ? BATT_LOW : BATT_NORMAL;
}

const char *battery_status_name(batt_status_t s)
{
    return (unsigned)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "?";
}

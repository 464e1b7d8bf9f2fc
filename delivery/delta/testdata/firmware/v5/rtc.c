/* Wall clock: network time from the modem (AT+CCLK) plus SysTick, exposed to newlib's time(). */
#include <errno.h>
#include <sys/time.h>
#include "app.h"

static time_t s_epoch_base = 1735689600;   /* 2025-01-01T00:00:00Z until the network sets it */
static uint32_t s_base_ms;

void rtc_set(time_t t)
{
    s_epoch_base = t;
    s_base_ms = millis();
}

time_t rtc_now(void)
{
    return s_epoch_base + (time_t)((millis() - s_base_ms) / 1000u);
}

int _gettimeofday(struct timeval *tv, void *tz)
{
    (void)tz;
    if (tv == NULL) {
        errno = EINVAL;
        return -1;
    }
    uint32_t ms = millis() - s_base_ms;
    tv->tv_sec = s_epoch_base + (time_t)(ms / 1000u);
    tv->tv_usec = (suseconds_t)(ms % 1000u) * 1000;
    return 0;
}

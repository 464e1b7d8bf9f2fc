/* Time zone selection from the built-in zone table, using newlib's POSIX TZ support. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tzdb.h"

static int zone_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const tz_zone_t *)elem)->zone);
}

const char *tzdb_rule(const char *zone)
{
    const tz_zone_t *z = bsearch(zone, g_tz_zones, g_tz_zone_count, sizeof g_tz_zones[0], zone_cmp);
    return z ? z->rule : NULL;
}

int tz_select(const char *zone)
{
    const char *rule = tzdb_rule(zone);
    char buf[64];
    struct tm tm;
    time_t t;

    if (rule == NULL)
        return -1;
    setenv("TZ", rule, 1);
    tzset();
    t = time(NULL);
    localtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z (%z)", &tm);
    printf("zone %s = %s, local time %s, dst %d\n", zone, rule, buf, tm.tm_isdst);
    return 0;
}

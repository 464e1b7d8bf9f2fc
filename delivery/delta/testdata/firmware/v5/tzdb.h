/* Zone name to POSIX TZ rule (generated in tzdb.c). */
#ifndef TZDB_H
#define TZDB_H

typedef struct {
    const char *zone;
    const char *rule;
} tz_zone_t;

extern const tz_zone_t g_tz_zones[];
extern const unsigned g_tz_zone_count;

const char *tzdb_rule(const char *zone);
int tz_select(const char *zone);

#endif

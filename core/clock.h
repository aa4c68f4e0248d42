/* core/clock.h — wall and monotonic time in the units the rest of the code names. */
#ifndef MAMORI_CORE_CLOCK_H
#define MAMORI_CORE_CLOCK_H

#include "base.h"

#include <time.h>

static inline int64_t clock_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t clock_mono_ms(void) { return clock_mono_us() / 1000; }

/* Parses an RFC 3339 / ISO 8601 timestamp ("2020-10-22T03:52:01.720Z", offsets, a space
 * instead of 'T', up to 9 fractional digits; also Sysmon's "2020-10-22 03:52:01.720"
 * taken as UTC) into microseconds since the epoch. Returns -EINVAL if it is not one. */
int clock_parse_rfc3339(const char *s, size_t len, int64_t *out_us) MAMORI_WUR;
/* Formats microseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.ffffffZ" into out (>= 28
 * bytes). Returns the length written (27). */
size_t clock_format_rfc3339(int64_t us, char *out);
/* Days since 1970-01-01 (UTC) of a time in microseconds; floor for negative times. */
static inline int64_t clock_day_of_us(int64_t us)
{
    int64_t day_us = 86400LL * 1000000;
    return us >= 0 ? us / day_us : -((-us + day_us - 1) / day_us);
}

#endif

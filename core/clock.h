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

/* CPU time the calling thread has used (per-core figures). */
static inline int64_t clock_thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Parses an RFC 3339 / ISO 8601 timestamp ("2020-10-22T03:52:01.720Z", offsets, a space
 * instead of 'T', up to 9 fractional digits; also Sysmon's "2020-10-22 03:52:01.720"
 * taken as UTC) into microseconds since the epoch. Returns -EINVAL if it is not one. */
int clock_parse_rfc3339(const char *s, size_t len, int64_t *out_us) MAMORI_WUR;
/* Formats microseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.ffffffZ" into out (>= 28
 * bytes). Returns the length written (27). */
size_t clock_format_rfc3339(int64_t us, char *out);
/* Consecutive events mostly share their timestamp's date and time of day and differ in the
 * fraction: a memo of the last seconds parsed (by the 19 bytes "YYYY-MM-DDTHH:MM:SS", compared
 * in full) and formatted (by the second) makes both nearly free. Per thread, in caller memory,
 * zero-initialized; results are exactly clock_parse_rfc3339's and clock_format_rfc3339's. */
typedef struct clock_rfc3339_memo {
    uint64_t parse_words[2]; /* bytes 0..15 of the last valid prefix */
    uint32_t parse_tail;     /* bytes 15..18 */
    bool parse_valid;
    bool format_valid;
    int64_t parse_secs;  /* the prefix's seconds since the epoch, no offset applied */
    int64_t format_secs; /* the second format_prefix shows (floor of us / 1e6) */
    char format_prefix[19];
} clock_rfc3339_memo;
int clock_parse_rfc3339_memo(clock_rfc3339_memo *m, const char *s, size_t len, int64_t *out_us) MAMORI_WUR;
size_t clock_format_rfc3339_memo(clock_rfc3339_memo *m, int64_t us, char *out);

/* Days since 1970-01-01 (UTC) of a time in microseconds; floor for negative times. */
static inline int64_t clock_day_of_us(int64_t us)
{
    int64_t day_us = 86400LL * 1000000;
    return us >= 0 ? us / day_us : -((-us + day_us - 1) / day_us);
}

#endif

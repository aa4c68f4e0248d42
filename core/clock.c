/* core/clock.c — RFC 3339 parsing and formatting without the locale- and TZ-dependent
 * libc functions (timegm is fine but slow; this runs once per event). */
#include "clock.h"

#include <errno.h>
#include <string.h>

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3u : 9u)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* The first 19 bytes, "YYYY-MM-DDTHH:MM:SS": seconds since the epoch before any offset, leap
 * second clamped. False if they are not a date and time. */
static bool parse_prefix(const char *s, int64_t *out_s)
{
    unsigned year, mon, day, hour, min, sec;
    if (!digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &mon) || s[7] != '-' ||
        !digits(s + 8, 2, &day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2, &hour) ||
        s[13] != ':' || !digits(s + 14, 2, &min) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) return false;
    if (sec == 60) sec = 59; /* leap second: clamp, ordering is what matters */
    *out_s = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec;
    return true;
}

/* What follows the first 19 bytes: fraction and zone. */
static bool parse_rest(const char *s, size_t len, int64_t *frac_us_out, int64_t *offset_s_out)
{
    size_t i = 19;
    int64_t frac_us = 0;
    if (i < len && (s[i] == '.' || s[i] == ',')) {
        i++;
        /* digits past the sixth count for nothing; more than nine are an error */
        static const int32_t scale[9] = {100000, 10000, 1000, 100, 10, 1, 0, 0, 0};
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (i - start == 9) return false;
            frac_us += (s[i] - '0') * scale[i - start];
            i++;
        }
        if (i == start) return false;
    }
    int64_t offset_s = 0;
    if (i < len) {
        if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
            i++;
        } else if ((s[i] == '+' || s[i] == '-') && len - i == 6 && s[i + 3] == ':') {
            unsigned oh, om;
            if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59) return false;
            offset_s = (int64_t)(oh * 3600 + om * 60);
            if (s[i] == '-') offset_s = -offset_s;
            i = len;
        } else {
            return false;
        }
    }
    if (i != len) return false;
    *frac_us_out = frac_us;
    *offset_s_out = offset_s;
    return true;
}

int clock_parse_rfc3339(const char *s, size_t len, int64_t *out_us)
{
    int64_t secs, frac_us, offset_s;
    if (len < 19 || !parse_prefix(s, &secs) || !parse_rest(s, len, &frac_us, &offset_s)) return -EINVAL;
    *out_us = (secs - offset_s) * 1000000 + frac_us;
    return 0;
}

int clock_parse_rfc3339_memo(clock_rfc3339_memo *m, const char *s, size_t len, int64_t *out_us)
{
    if (len < 19) return -EINVAL;
    uint64_t w0, w1;
    uint32_t w2;
    memcpy(&w0, s, 8);
    memcpy(&w1, s + 8, 8);
    memcpy(&w2, s + 15, 4); /* bytes 15..18, overlapping the second word */
    int64_t secs;
    if (m->parse_valid && w0 == m->parse_words[0] && w1 == m->parse_words[1] && w2 == m->parse_tail) {
        secs = m->parse_secs;
    } else {
        m->parse_valid = false;
        if (!parse_prefix(s, &secs)) return -EINVAL;
        m->parse_words[0] = w0;
        m->parse_words[1] = w1;
        m->parse_tail = w2;
        m->parse_secs = secs;
        m->parse_valid = true;
    }
    int64_t frac_us, offset_s;
    if (!parse_rest(s, len, &frac_us, &offset_s)) return -EINVAL;
    *out_us = (secs - offset_s) * 1000000 + frac_us;
    return 0;
}

static void put2(char *p, unsigned v) { p[0] = (char)('0' + v / 10); p[1] = (char)('0' + v % 10); }

/* ".ffffffZ" and the terminator at out[19..27] (frac < 1000000), two digits at a time. */
static void put_fraction(char *out, unsigned frac)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                   "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                   "8081828384858687888990919293949596979899";
    out[19] = '.';
    memcpy(out + 20, pairs + 2 * (frac / 10000), 2);
    memcpy(out + 22, pairs + 2 * (frac / 100 % 100), 2);
    memcpy(out + 24, pairs + 2 * (frac % 100), 2);
    out[26] = 'Z';
    out[27] = '\0';
}

size_t clock_format_rfc3339(int64_t us, char *out)
{
    int64_t day = clock_day_of_us(us);
    int64_t rem = us - day * 86400LL * 1000000; /* 0 <= rem < one day */
    int64_t y;
    unsigned m, d;
    civil_from_days(day, &y, &m, &d);
    unsigned secs = (unsigned)(rem / 1000000);
    unsigned frac = (unsigned)(rem % 1000000);
    if (y < 0) y = 0;
    if (y > 9999) y = 9999;
    out[0] = (char)('0' + y / 1000);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    put2(out + 5, m);
    out[7] = '-';
    put2(out + 8, d);
    out[10] = 'T';
    put2(out + 11, secs / 3600);
    out[13] = ':';
    put2(out + 14, secs / 60 % 60);
    out[16] = ':';
    put2(out + 17, secs % 60);
    put_fraction(out, frac);
    return 27;
}

size_t clock_format_rfc3339_memo(clock_rfc3339_memo *m, int64_t us, char *out)
{
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) { /* floor: the fraction counts up from the second before */
        secs--;
        frac += 1000000;
    }
    if (m->format_valid && secs == m->format_secs) {
        memcpy(out, m->format_prefix, 19);
        put_fraction(out, (unsigned)frac);
    } else {
        clock_format_rfc3339(us, out);
        memcpy(m->format_prefix, out, 19);
        m->format_secs = secs;
        m->format_valid = true;
    }
    return 27;
}

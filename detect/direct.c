/* detect/direct.c — the predicates Hyperscan does not evaluate: numeric comparison
 * (lt/lte/gt/gte on JSON numbers and numeric strings), cidr (IPv4 and IPv6), the time-part
 * modifiers, and field references; plus the scalar-to-text rule every scan uses. A field
 * holding an array matches when any of its elements does. */
#include "internal.h"

#include "core/clock.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool direct_parse_number(const char *s, size_t len, double *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp) return false;
    bool digit = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') digit = true;
        else if (c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E') return false;
    }
    if (!digit) return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    double d = strtod(tmp, &end);
    if (end != tmp + len) return false;
    *out = d;
    return true;
}

static bool parse_ip(const char *s, size_t len, uint8_t *family, uint8_t addr[16])
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp) return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, tmp, addr) == 1) {
        *family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, tmp, addr) == 1) {
        *family = 6;
        return true;
    }
    return false;
}

bool direct_parse_cidr(const char *s, size_t len, struct cidr *out)
{
    const char *slash = memchr(s, '/', len);
    size_t addr_len = slash ? (size_t)(slash - s) : len;
    if (!parse_ip(s, addr_len, &out->family, out->addr)) return false;
    unsigned max = out->family == 4 ? 32 : 128;
    unsigned prefix = max;
    if (slash) {
        size_t n = len - addr_len - 1;
        if (n == 0 || n > 3) return false;
        prefix = 0;
        for (size_t i = 0; i < n; i++) {
            char c = slash[1 + i];
            if (c < '0' || c > '9') return false;
            prefix = prefix * 10 + (unsigned)(c - '0');
        }
        if (prefix > max) return false;
    }
    out->prefix = (uint8_t)prefix;
    for (unsigned bit = prefix; bit < 128; bit++) out->addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
    return true;
}

bool direct_scalar_text(const json_value *v, char *tmp, const char **text, size_t *len)
{
    switch (v->type) {
    case JSON_STRING:
        *text = v->str;
        *len = v->len;
        return true;
    case JSON_NUMBER:
        if (v->str) {
            *text = v->str;
            *len = v->len;
        } else if (v->flags & JSON_FLAG_INT) {
            /* decimal text of an integer the normalizer made (pid, port…): on every scan */
            char digits[24];
            size_t n = 0;
            uint64_t mag = v->num.i < 0 ? (uint64_t)0 - (uint64_t)v->num.i : (uint64_t)v->num.i;
            do digits[n++] = (char)('0' + mag % 10);
            while ((mag /= 10) != 0);
            size_t o = 0;
            if (v->num.i < 0) tmp[o++] = '-';
            while (n) tmp[o++] = digits[--n];
            *text = tmp;
            *len = o;
        } else {
            int n = snprintf(tmp, 32, "%.17g", v->num.d);
            *text = tmp;
            *len = (size_t)n;
        }
        return true;
    case JSON_BOOL:
        *text = v->num.b ? "true" : "false";
        *len = v->num.b ? 4 : 5;
        return true;
    default: return false;
    }
}

static bool number_of(const json_value *v, double *out)
{
    if (v->type == JSON_NUMBER) {
        *out = (v->flags & JSON_FLAG_INT) ? (double)v->num.i : v->num.d;
        return true;
    }
    return v->type == JSON_STRING && direct_parse_number(v->str, v->len, out);
}

static bool compare_one(const struct rt_pred *p, const json_value *v)
{
    double x;
    if (!number_of(v, &x)) return false;
    switch (p->op) {
    case CMP_LT: return x < p->number;
    case CMP_LTE: return x <= p->number;
    case CMP_GT: return x > p->number;
    case CMP_GTE: return x >= p->number;
    default: return false;
    }
}

static bool cidr_one(const struct rt_pred *p, const json_value *v)
{
    if (v->type != JSON_STRING) return false;
    uint8_t family, addr[16];
    if (!parse_ip(v->str, v->len, &family, addr) || family != p->cidr.family) return false;
    unsigned full = p->cidr.prefix / 8, rest = p->cidr.prefix % 8;
    if (memcmp(addr, p->cidr.addr, full) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (addr[full] & mask) == p->cidr.addr[full];
}

static bool timepart_one(const struct rt_pred *p, const json_value *v)
{
    if (v->type != JSON_STRING) return false;
    int64_t us;
    if (clock_parse_rfc3339(v->str, v->len, &us) != 0) return false;
    time_t secs = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) return false;
    long part;
    switch (p->op) {
    case TIME_MINUTE: part = tm.tm_min; break;
    case TIME_HOUR: part = tm.tm_hour; break;
    case TIME_DAY: part = tm.tm_mday; break;
    case TIME_MONTH: part = tm.tm_mon + 1; break;
    case TIME_YEAR: part = tm.tm_year + 1900L; break;
    case TIME_WEEK: {
        char w[8];
        strftime(w, sizeof w, "%V", &tm); /* ISO 8601 week number */
        part = strtol(w, NULL, 10);
        break;
    }
    default: return false;
    }
    return (double)part == p->number;
}

/* Sigma compares case-insensitively unless `cased`; field references fold ASCII only. */
static bool bytes_equal(const char *a, const char *b, size_t n, bool cased)
{
    if (cased) return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        if (x != y) return false;
    }
    return true;
}

static bool fieldref_one(const struct rt_pred *p, const json_value *v, const json_value *ref)
{
    char tmp_v[32], tmp_r[32];
    const char *a, *r;
    size_t alen, rlen;
    if (!direct_scalar_text(v, tmp_v, &a, &alen) || !direct_scalar_text(ref, tmp_r, &r, &rlen)) return false;
    bool starts = p->op & REF_STARTS, ends = p->op & REF_ENDS;
    if (!starts && !ends) return alen == rlen && bytes_equal(a, r, alen, p->cased);
    if (rlen > alen) return false;
    if (starts && !ends) return bytes_equal(a, r, rlen, p->cased);
    if (ends && !starts) return bytes_equal(a + alen - rlen, r, rlen, p->cased);
    for (size_t i = 0; i + rlen <= alen; i++)
        if (bytes_equal(a + i, r, rlen, p->cased)) return true;
    return false;
}

static bool eval_one(const struct rt_pred *p, const json_value *v, const json_value *ref)
{
    switch (p->kind) {
    case PRED_COMPARE: return compare_one(p, v);
    case PRED_CIDR: return cidr_one(p, v);
    case PRED_TIMEPART: return timepart_one(p, v);
    case PRED_FIELDREF: {
        if (!ref) return false;
        if (ref->type != JSON_ARRAY) return fieldref_one(p, v, ref);
        for (uint32_t i = 0; i < ref->len; i++)
            if (fieldref_one(p, v, &ref->items[i])) return true;
        return false;
    }
    default: return false;
    }
}

bool direct_eval(const detect_ruleset *rs, const struct rt_pred *p, const json_value *v, const json_value *ref)
{
    (void)rs;
    if (!v) return false;
    if (v->type != JSON_ARRAY) return eval_one(p, v, ref);
    for (uint32_t i = 0; i < v->len; i++)
        if (eval_one(p, &v->items[i], ref)) return true;
    return false;
}

/* search/eval.c — evaluating a query tree on one parsed event: field lookup in the nested
 * canonical JSON, EQL comparison semantics (arrays match when any element does; a missing
 * field is null; numbers compare numerically, IP literals as addresses), wildcards,
 * regexes (PCRE2, bounded) and CIDR blocks. Also the raw-text prefilter: literals every
 * matching event must contain, checked before an event is parsed at all. */
#include "internal.h"

#include <arpa/inet.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#define REGEX_MATCH_LIMIT 100000u
#define REGEX_DEPTH_LIMIT 10000u

void eval_ctx_init(eval_ctx *e)
{
    e->md = pcre2_match_data_create(4, NULL);
    e->mctx = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(e->mctx, REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(e->mctx, REGEX_DEPTH_LIMIT);
}

void eval_ctx_fini(eval_ctx *e)
{
    pcre2_match_data_free(e->md);
    pcre2_match_context_free(e->mctx);
}

static const json_value *get_rec(const json_value *obj, const char *rem, size_t rem_len, int depth)
{
    if (obj->type != JSON_OBJECT || depth > 32) return NULL;
    for (uint32_t i = 0; i < obj->len; i++) {
        const json_member *m = &obj->members[i];
        if (m->key_len == rem_len && memcmp(m->key, rem, rem_len) == 0) return &m->value;
        if (m->key_len < rem_len && rem[m->key_len] == '.' && m->value.type == JSON_OBJECT &&
            memcmp(m->key, rem, m->key_len) == 0) {
            const json_value *r = get_rec(&m->value, rem + m->key_len + 1, rem_len - m->key_len - 1, depth + 1);
            if (r) return r;
        }
    }
    return NULL;
}

const json_value *field_get(const json_value *root, const field_ref *f)
{
    return get_rec(root, f->path, f->path_len, 0);
}

static inline unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

static bool bytes_eq(const char *a, size_t al, const char *b, size_t bl, bool caseless)
{
    if (al != bl) return false;
    if (!caseless) return memcmp(a, b, al) == 0;
    for (size_t i = 0; i < al; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return false;
    return true;
}

bool wildcard_match(const char *pat, size_t plen, const char *s, size_t slen, bool caseless)
{
    size_t p = 0, i = 0, star_p = SIZE_MAX, star_i = 0;
    while (i < slen) {
        if (p < plen && pat[p] == '*') {
            star_p = ++p;
            star_i = i;
        } else if (p < plen && (pat[p] == '?' ||
                                (caseless ? lower((unsigned char)pat[p]) == lower((unsigned char)s[i]) : pat[p] == s[i]))) {
            p++;
            i++;
        } else if (star_p != SIZE_MAX) {
            p = star_p;
            i = ++star_i;
        } else {
            return false;
        }
    }
    while (p < plen && pat[p] == '*') p++;
    return p == plen;
}

bool ip_parse(const char *s, size_t len, uint8_t out[16])
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp) return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (memchr(tmp, ':', len)) {
        char *pct = strchr(tmp, '%'); /* zone id */
        if (pct) *pct = '\0';
        return inet_pton(AF_INET6, tmp, out) == 1;
    }
    uint8_t v4[4];
    if (inet_pton(AF_INET, tmp, v4) != 1) return false;
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, v4, 4);
    return true;
}

static bool text_number(const char *s, size_t len, double *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp || s[0] == ' ') return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    *out = strtod(tmp, &end);
    return *end == '\0';
}

/* Text form of a scalar for string operators: strings and numbers (their JSON text). */
static bool scalar_text(const json_value *v, const char **s, size_t *len)
{
    if (v->type == JSON_STRING || v->type == JSON_NUMBER) {
        *s = v->str;
        *len = v->len;
        return true;
    }
    return false;
}

static int num_cmp(const json_value *v, const literal *l, bool *ok)
{
    *ok = true;
    if (v->type == JSON_NUMBER) {
        if ((v->flags & JSON_FLAG_INT) && l->is_int) return v->num.i < l->i ? -1 : v->num.i > l->i;
        double d = (v->flags & JSON_FLAG_INT) ? (double)v->num.i : v->num.d;
        return d < l->d ? -1 : d > l->d;
    }
    double d;
    if (v->type == JSON_STRING && text_number(v->str, v->len, &d)) return d < l->d ? -1 : d > l->d;
    *ok = false;
    return 0;
}

static bool eq_one(const json_value *v, const literal *l, bool caseless)
{
    switch (l->kind) {
    case LIT_NULL: return v->type == JSON_NULL;
    case LIT_BOOL: return v->type == JSON_BOOL && v->num.b == l->b;
    case LIT_NUMBER: {
        bool ok;
        int c = num_cmp(v, l, &ok);
        return ok && c == 0;
    }
    case LIT_STRING:
        if (v->type == JSON_STRING) {
            if (bytes_eq(v->str, v->len, l->s, l->len, caseless)) return true;
            uint8_t ip[16];
            return l->is_ip && ip_parse(v->str, v->len, ip) && memcmp(ip, l->ip, 16) == 0;
        }
        if (v->type == JSON_NUMBER) {
            double d;
            if (bytes_eq(v->str, v->len, l->s, l->len, false)) return true;
            return l->num_ok && text_number(v->str, v->len, &d) && d == l->num_from_str;
        }
        if (v->type == JSON_BOOL) return bytes_eq(v->num.b ? "true" : "false", v->num.b ? 4 : 5, l->s, l->len, caseless);
        return false;
    }
    return false;
}

static bool order_one(const json_value *v, const literal *l, enum cmp_op op)
{
    int c;
    if (l->kind == LIT_NUMBER) {
        bool ok;
        c = num_cmp(v, l, &ok);
        if (!ok) return false;
    } else if (l->kind == LIT_STRING) {
        uint8_t ip[16];
        if (v->type != JSON_STRING && v->type != JSON_NUMBER) return false;
        if (l->is_ip && v->type == JSON_STRING && ip_parse(v->str, v->len, ip)) {
            c = memcmp(ip, l->ip, 16);
        } else if (l->num_ok && v->type == JSON_NUMBER) {
            double d = (v->flags & JSON_FLAG_INT) ? (double)v->num.i : v->num.d;
            c = d < l->num_from_str ? -1 : d > l->num_from_str;
        } else {
            size_t n = MAMORI_MIN((size_t)v->len, (size_t)l->len);
            c = memcmp(v->str, l->s, n);
            if (c == 0) c = v->len < l->len ? -1 : v->len > l->len;
        }
    } else {
        return false;
    }
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    case OP_GE: return c >= 0;
    default: return false;
    }
}

static bool find_sub(const char *h, size_t hl, const char *n, size_t nl, bool caseless)
{
    if (nl == 0) return true;
    if (nl > hl) return false;
    if (!caseless) return memmem(h, hl, n, nl) != NULL;
    unsigned char f = lower((unsigned char)n[0]);
    for (size_t i = 0; i + nl <= hl; i++)
        if (lower((unsigned char)h[i]) == f && bytes_eq(h + i + 1, nl - 1, n + 1, nl - 1, true)) return true;
    return false;
}

static bool match_one(eval_ctx *e, const node *n, const json_value *v)
{
    const char *s;
    size_t len;
    for (uint32_t k = 0; k < n->lit_count; k++) {
        const literal *l = &n->lits[k];
        switch (n->op) {
        case OP_EQ:
        case OP_IN:
        case OP_NE:
            if (eq_one(v, l, n->caseless)) return true;
            break;
        case OP_LT:
        case OP_LE:
        case OP_GT:
        case OP_GE:
            if (order_one(v, l, n->op)) return true;
            break;
        case OP_WILDCARD:
        case OP_LIKE:
            if (!scalar_text(v, &s, &len)) break;
            if (l->kind == LIT_NUMBER ? bytes_eq(s, len, l->s, l->len, false)
                                      : wildcard_match(l->s, l->len, s, len, n->caseless))
                return true;
            break;
        case OP_REGEX:
            if (!scalar_text(v, &s, &len)) break;
            if (pcre2_match(l->re, (PCRE2_SPTR)s, len, 0, 0, e->md, e->mctx) >= 0) return true;
            break;
        case OP_CIDR: {
            uint8_t ip[16];
            if (v->type != JSON_STRING || !ip_parse(v->str, v->len, ip)) return false;
            unsigned bits = l->cidr_bits, full = bits / 8, rest = bits % 8;
            if (memcmp(ip, l->ip, full) == 0 &&
                (rest == 0 || ((ip[full] ^ l->ip[full]) & (uint8_t)(0xFF << (8 - rest))) == 0))
                return true;
            break;
        }
        case OP_STARTS:
            if (scalar_text(v, &s, &len) && len >= l->len && bytes_eq(s, l->len, l->s, l->len, n->caseless)) return true;
            break;
        case OP_ENDS:
            if (scalar_text(v, &s, &len) && len >= l->len && bytes_eq(s + len - l->len, l->len, l->s, l->len, n->caseless))
                return true;
            break;
        case OP_CONTAINS:
            if (scalar_text(v, &s, &len) && find_sub(s, len, l->s, l->len, n->caseless)) return true;
            break;
        }
    }
    return false;
}

static bool eval_cmp(eval_ctx *e, const node *n, const json_value *root)
{
    const json_value *v = field_get(root, &n->field);
    bool negate = n->op == OP_NE;
    bool any = false;
    if (!v || v->type == JSON_NULL) {
        /* null: only == null / in (null) hold */
        if (n->op == OP_EQ || n->op == OP_IN || n->op == OP_NE)
            for (uint32_t k = 0; k < n->lit_count; k++)
                if (n->lits[k].kind == LIT_NULL) any = true;
        return negate ? !any : any;
    }
    if (v->type == JSON_ARRAY) {
        for (uint32_t i = 0; i < v->len && !any; i++)
            if (v->items[i].type != JSON_ARRAY && v->items[i].type != JSON_OBJECT) any = match_one(e, n, &v->items[i]);
    } else if (v->type != JSON_OBJECT) {
        any = match_one(e, n, v);
    }
    return negate ? !any : any;
}

bool eval_node(eval_ctx *e, const node *n, const json_value *root)
{
    switch (n->kind) {
    case NODE_AND:
        for (uint32_t i = 0; i < n->kid_count; i++)
            if (!eval_node(e, n->kids[i], root)) return false;
        return true;
    case NODE_OR:
        for (uint32_t i = 0; i < n->kid_count; i++)
            if (eval_node(e, n->kids[i], root)) return true;
        return false;
    case NODE_NOT: return !eval_node(e, n->kid, root);
    case NODE_CONST: return n->value;
    case NODE_CMP: return eval_cmp(e, n, root);
    }
    return false;
}

bool eval_query(eval_ctx *e, const event_query *q, const json_value *root)
{
    if (q->category_node && !eval_node(e, q->category_node, root)) return false;
    return eval_node(e, q->cond, root);
}

/* ---- the raw-text prefilter ---- */

static void add_needle(arena *a, needle *out, size_t *count, size_t max, const char *s, size_t len, bool caseless)
{
    if (*count >= max || len < 3) return;
    buf tmp;
    buf_init(&tmp);
    json_write_string(&tmp, s, len);
    /* drop the quotes: the escaped text is what the stored JSON holds */
    out[*count].s = arena_memdup(a, tmp.data + 1, tmp.len - 2);
    out[*count].len = (uint32_t)(tmp.len - 2);
    out[*count].caseless = caseless;
    (*count)++;
    buf_fini(&tmp);
}

static void needles_of(const node *n, arena *a, needle *out, size_t *count, size_t max)
{
    if (n->kind == NODE_AND) {
        for (uint32_t i = 0; i < n->kid_count; i++) needles_of(n->kids[i], a, out, count, max);
        return;
    }
    if (n->kind != NODE_CMP || n->lit_count != 1) return;
    const literal *l = &n->lits[0];
    if (l->kind != LIT_STRING) return;
    switch (n->op) {
    case OP_EQ:
    case OP_IN:
        if (!l->is_ip && !l->num_ok) add_needle(a, out, count, max, l->s, l->len, n->caseless);
        break;
    case OP_WILDCARD:
    case OP_LIKE: {
        /* the longest run between wildcards */
        size_t best = 0, best_len = 0, start = 0;
        for (size_t i = 0; i <= l->len; i++) {
            if (i == l->len || l->s[i] == '*' || l->s[i] == '?') {
                if (i - start > best_len) {
                    best = start;
                    best_len = i - start;
                }
                start = i + 1;
            }
        }
        add_needle(a, out, count, max, l->s + best, best_len, n->caseless);
        break;
    }
    case OP_STARTS:
    case OP_ENDS:
    case OP_CONTAINS: add_needle(a, out, count, max, l->s, l->len, n->caseless); break;
    default: break;
    }
}

size_t collect_needles(const event_query *q, arena *a, needle *out, size_t max)
{
    size_t count = 0;
    needles_of(q->cond, a, out, &count, max);
    return count;
}

#if defined(__SSE2__)
/* Caseless search, 16 positions at a time: a position is a candidate when its byte and the
 * byte len-1 further equal the needle's first and last bytes (ASCII letters folded by
 * OR 0x20, which maps exactly 'A'..'Z' onto 'a'..'z' and nothing else onto them); the
 * candidates are then compared whole. */
static bool find_caseless_sse2(const char *h, size_t hl, const char *n, size_t nl)
{
    unsigned char f = lower((unsigned char)n[0]), l = lower((unsigned char)n[nl - 1]);
    unsigned char fm = (f >= 'a' && f <= 'z') ? 0x20 : 0, lm = (l >= 'a' && l <= 'z') ? 0x20 : 0;
    const __m128i vf = _mm_set1_epi8((char)f), vl = _mm_set1_epi8((char)l);
    const __m128i mf = _mm_set1_epi8((char)fm), ml = _mm_set1_epi8((char)lm);
    size_t i = 0;
    for (; i + nl - 1 + 16 <= hl; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(h + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(h + i + nl - 1));
        __m128i eq = _mm_and_si128(_mm_cmpeq_epi8(_mm_or_si128(a, mf), vf), _mm_cmpeq_epi8(_mm_or_si128(b, ml), vl));
        unsigned mask = (unsigned)_mm_movemask_epi8(eq);
        while (mask) {
            unsigned bit = (unsigned)__builtin_ctz(mask);
            if (nl <= 2 || bytes_eq(h + i + bit + 1, nl - 2, n + 1, nl - 2, true)) return true;
            mask &= mask - 1;
        }
    }
    for (; i + nl <= hl; i++)
        if (lower((unsigned char)h[i]) == f && bytes_eq(h + i + 1, nl - 1, n + 1, nl - 1, true)) return true;
    return false;
}
#endif

bool raw_contains(const char *hay, size_t hlen, const needle *n)
{
#if defined(__SSE2__)
    if (n->caseless && n->len > 0 && n->len <= hlen) return find_caseless_sse2(hay, hlen, n->s, n->len);
#endif
    return find_sub(hay, hlen, n->s, n->len, n->caseless);
}

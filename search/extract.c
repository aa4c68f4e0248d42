/* search/extract.c — the lazy field extractor: instead of parsing a whole stored event into
 * a DOM, walk its text once and parse only the members on the paths a query reads (its
 * fields, join keys, count-by fields). The result is a pruned DOM: every member whose key
 * equals a wanted path (or what remains of it) is parsed whole by the JSON parser, every
 * member whose key is a dotted prefix of a wanted path is descended into when it is an
 * object, and everything else is skipped. field_get walks members in input order and only
 * ever returns from such members, so it answers exactly as on the full DOM (duplicates and
 * dotted member names included). Keys with escapes fall back to the full parser. Stored
 * events were parsed at ingest, so the text skipped here is valid JSON. */
#include "internal.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define EXTRACT_DEPTH_MAX 32u
#define EXTRACT_MEMBERS_MAX 64u /* kept members per object before falling back */

void field_set_add(field_set *fs, const field_ref *f)
{
    if (fs->all) return;
    for (uint32_t i = 0; i < fs->n; i++)
        if (fs->v[i]->path_len == f->path_len && memcmp(fs->v[i]->path, f->path, f->path_len) == 0) return;
    if (fs->n == FIELD_SET_MAX) {
        fs->all = true;
        return;
    }
    fs->v[fs->n++] = f;
}

static void add_node(field_set *fs, const node *n)
{
    if (!n) return;
    switch (n->kind) {
    case NODE_AND:
    case NODE_OR:
        for (uint32_t i = 0; i < n->kid_count; i++) add_node(fs, n->kids[i]);
        break;
    case NODE_NOT: add_node(fs, n->kid); break;
    case NODE_CMP: field_set_add(fs, &n->field); break;
    case NODE_CONST: break;
    }
}

void field_set_add_query(field_set *fs, const event_query *q)
{
    add_node(fs, q->category_node);
    add_node(fs, q->cond);
    for (uint32_t i = 0; i < q->by_count; i++) field_set_add(fs, &q->by[i]);
}

typedef struct want {
    const char *rem;
    uint32_t len;
} want;

typedef struct extractor {
    json_parser *jp;
    arena *a;
    const char *s;
    size_t len;
    json_error *err;
} extractor;

static inline size_t skip_ws(const char *s, size_t len, size_t p)
{
    while (p < len && (s[p] == ' ' || s[p] == '\n' || s[p] == '\r' || s[p] == '\t')) p++;
    return p;
}

/* The closing quote of the string whose content starts at p (len if none). Stored strings
 * are short and escapes rare: 16 bytes at a time, stopping at a quote or a backslash. */
static inline size_t string_end(const char *s, size_t len, size_t p)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    while (p + 16 <= len) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + p));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
        if (!m) {
            p += 16;
            continue;
        }
        size_t at = p + (unsigned)__builtin_ctz(m);
        if (s[at] == '"') return at;
        p = at + 2; /* an escape: skip the escaped byte */
    }
#endif
    while (p < len) {
        if (s[p] == '\\') {
            p += 2;
            continue;
        }
        if (s[p] == '"') return p;
        p++;
    }
    return len;
}

/* p at the opening quote; returns the position after the closing quote (len if none). */
static inline size_t skip_string(const char *s, size_t len, size_t p)
{
    size_t q = string_end(s, len, p + 1);
    return q < len ? q + 1 : len;
}

/* Past the object or array at p (its closing bracket + 1; len if unterminated). With SSE2,
 * 16 bytes at a time: quotes give the in-string mask (prefix XOR, carried across blocks),
 * brackets outside strings update the depth. A quote preceded by an odd run of backslashes
 * is escaped (brackets are never escaped in JSON). */
static size_t skip_container(const char *s, size_t len, size_t p)
{
    size_t depth = 0;
    bool in_str = false, esc = false;
#if defined(__SSE2__)
    const __m128i vq = _mm_set1_epi8('"'), vb = _mm_set1_epi8('\\');
    const __m128i vo1 = _mm_set1_epi8('{'), vo2 = _mm_set1_epi8('['), vc1 = _mm_set1_epi8('}'), vc2 = _mm_set1_epi8(']');
    while (p + 16 <= len) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + p));
        unsigned q = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vq));
        if (q && _mm_movemask_epi8(_mm_cmpeq_epi8(v, vb))) {
            /* a quote after an odd run of backslashes is escaped: not a string boundary
             * (Windows paths make backslashes common, escaped quotes stay rare) */
            for (unsigned qq = q; qq; qq &= qq - 1) {
                unsigned bit = (unsigned)__builtin_ctz(qq);
                size_t i = p + bit, run = 0;
                while (run < i && s[i - 1 - run] == '\\') run++;
                if (run & 1u) q &= ~(1u << bit);
            }
        }
        unsigned x = q;
        x ^= x << 1;
        x ^= x << 2;
        x ^= x << 4;
        x ^= x << 8;
        x &= 0xFFFFu;
        if (in_str) x ^= 0xFFFFu; /* bit i: inside a string at byte i */
        unsigned o = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, vo1), _mm_cmpeq_epi8(v, vo2))) & ~x;
        unsigned c = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, vc1), _mm_cmpeq_epi8(v, vc2))) & ~x;
        for (unsigned oc = o | c; oc; oc &= oc - 1) {
            unsigned bit = (unsigned)__builtin_ctz(oc);
            if (o >> bit & 1u) depth++;
            else if (--depth == 0) return p + bit + 1;
        }
        in_str = (x >> 15) & 1u;
        p += 16;
    }
    if (in_str) { /* the byte loop starts inside a string: is its first byte escaped? */
        size_t run = 0;
        while (run < p && s[p - 1 - run] == '\\') run++;
        esc = run & 1u;
    }
#endif
    for (; p < len; p++) {
        char ch = s[p];
        if (in_str) {
            if (esc) esc = false;
            else if (ch == '\\') esc = true;
            else if (ch == '"') in_str = false;
            continue;
        }
        if (ch == '"') in_str = true;
        else if (ch == '{' || ch == '[') depth++;
        else if ((ch == '}' || ch == ']') && --depth == 0) return p + 1;
    }
    return len;
}

static size_t skip_value(const char *s, size_t len, size_t p)
{
    if (p >= len) return len;
    if (s[p] == '"') return skip_string(s, len, p);
    if (s[p] == '{' || s[p] == '[') return skip_container(s, len, p);
    while (p < len && s[p] != ',' && s[p] != '}' && s[p] != ']' && s[p] != ' ' && s[p] != '\n' && s[p] != '\r' &&
           s[p] != '\t')
        p++;
    return p;
}

/* The object at *pos ('{'), pruned to the wanted paths, into out; advances *pos past it.
 * 0, 1 to fall back to the full parser, or a parse error of a kept value. */
static int extract_object(extractor *x, size_t *pos, const want *w, uint32_t nw, json_value *out, uint32_t depth)
{
    const char *s = x->s;
    size_t len = x->len, p = *pos + 1;
    if (depth > EXTRACT_DEPTH_MAX) return 1;
    json_member kept[EXTRACT_MEMBERS_MAX];
    uint32_t nk = 0;
    want sub[FIELD_SET_MAX];
    p = skip_ws(s, len, p);
    if (p < len && s[p] == '}') p++;
    else {
        for (;;) {
            if (p >= len || s[p] != '"') return 1;
            size_t kstart = p + 1, kend_q = skip_string(s, len, p);
            if (kend_q >= len) return 1;
            size_t klen = kend_q - 1 - kstart;
            const char *k = s + kstart;
            if (memchr(k, '\\', klen)) return 1;
            p = skip_ws(s, len, kend_q);
            if (p >= len || s[p] != ':') return 1;
            p = skip_ws(s, len, p + 1);
            bool whole = false;
            uint32_t nsub = 0;
            for (uint32_t i = 0; i < nw && !whole; i++) {
                if (w[i].len == klen && memcmp(w[i].rem, k, klen) == 0) whole = true;
                else if (w[i].len > klen && w[i].rem[klen] == '.' && memcmp(w[i].rem, k, klen) == 0)
                    sub[nsub++] = (want){.rem = w[i].rem + klen + 1, .len = w[i].len - (uint32_t)klen - 1};
            }
            size_t vstart = p;
            if (whole || (nsub && p < len && s[p] == '{')) {
                if (nk == EXTRACT_MEMBERS_MAX) return 1;
                json_member *m = &kept[nk++];
                m->key = k;
                m->key_len = (uint32_t)klen;
                if (whole) {
                    p = skip_value(s, len, p);
                    int rc = json_parse(x->jp, x->a, s + vstart, p - vstart, &m->value, x->err);
                    if (rc) return rc;
                } else {
                    int rc = extract_object(x, &p, sub, nsub, &m->value, depth + 1);
                    if (rc) return rc;
                }
            } else {
                p = skip_value(s, len, p);
            }
            p = skip_ws(s, len, p);
            if (p < len && s[p] == ',') {
                p = skip_ws(s, len, p + 1);
                continue;
            }
            if (p < len && s[p] == '}') {
                p++;
                break;
            }
            return 1;
        }
    }
    memset(out, 0, sizeof *out);
    out->type = JSON_OBJECT;
    out->len = nk;
    if (nk) {
        out->members = arena_alloc(x->a, nk * sizeof *out->members);
        memcpy(out->members, kept, nk * sizeof *kept);
    }
    *pos = p;
    return 0;
}

int extract_event(json_parser *jp, arena *a, const field_set *fs, const char *json, size_t len, json_value *root,
                  json_error *err)
{
    if (!fs->all) {
        want w[FIELD_SET_MAX];
        for (uint32_t i = 0; i < fs->n; i++) w[i] = (want){.rem = fs->v[i]->path, .len = fs->v[i]->path_len};
        extractor x = {.jp = jp, .a = a, .s = json, .len = len, .err = err};
        size_t p = skip_ws(json, len, 0);
        if (p < len && json[p] == '{') {
            int rc = extract_object(&x, &p, w, fs->n, root, 0);
            if (rc == 0 && skip_ws(json, len, p) == len) return 0;
            if (rc < 0) return rc;
        }
    }
    return json_parse(jp, a, json, len, root, err);
}

/* detect/lazy.c — lazy predicates answered from the value itself. A lazy database holds the
 * non-trigger patterns of a path and class (compile.c); a candidate asking for one of them
 * used to scan the event's value with the whole database, which answers every rule's
 * patterns at once — thousands of them for process.command_line — when the candidate needs
 * one predicate's values, most often a short list of plain literals (`Image|endswith:
 * ['\a.exe', '\b.exe']`). So each lazy alternative also keeps what it takes to answer it
 * alone: its plain literals (literal_parse) and star-only wildcards, compared with the value
 * one by one while that costs less than a scan (LAZY_DIRECT_BUDGET); its literals in a
 * literal set of its own when it has many contains values; or, for anything else (a user
 * regular expression, a `?` wildcard, windash), a Hyperscan database of its own — compile.c
 * also keeps those alternatives' patterns out of the large lazy databases. The semantics
 * are literal.c's and Hyperscan's: byte mode, ASCII case folding when caseless. The answer
 * is the scan's for that alternative; the lazy databases stay unscanned, and are scanned
 * only for the values an answer here declines (long values, arrays). */
#include "internal.h"
#include "textcmp.h"

#include <stdlib.h>
#include <string.h>

#ifdef DETECT_HAVE_AVX2
#include <immintrin.h>
#endif

/* The work a direct answer may take, in byte comparisons, beyond the value's length (what a
 * lazy database's scan of it costs on top of its fixed cost): a contains literal costs the
 * value's length (an eighth of it where find compares 32 positions at a time), an anchored one its
 * own. Above it the databases are scanned. */
#ifndef LAZY_DIRECT_BUDGET
#define LAZY_DIRECT_BUDGET 512
#endif

/* A Sigma wildcard value without `?` as sigstr_expression writes it — plain literal bytes
 * (as literal_parse reads them) between `.*`, `^` first or `\z` last — into its segments:
 * their bytes one after another in out, each length in seg (at most strlen(expr) / 2 + 1 of
 * them). Returns the segment count (≥ 2), or 0 for any other expression. */
static uint32_t glob_parse(const char *expr, uint32_t flags, char *out, uint32_t *seg, bool *start, bool *end)
{
    const uint32_t allowed = HS_FLAG_CASELESS | HS_FLAG_DOTALL | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
    if ((flags & ~allowed) || !(flags & HS_FLAG_DOTALL)) return 0; /* `.` must take any byte */
    size_t n = strlen(expr);
    *start = n > 0 && expr[0] == '^';
    *end = n >= 2 && expr[n - 2] == '\\' && expr[n - 1] == 'z';
    size_t from = *start ? 1 : 0, to = *end ? n - 2 : n;
    uint32_t segs = 0, k = 0, len = 0;
    for (size_t i = from; i < to;) {
        uint8_t byte;
        size_t took = literal_byte(expr, i, to, &byte);
        if (took) {
            out[k++] = (char)byte;
            len++;
            i += took;
        } else if (expr[i] == '.' && i + 1 < to && expr[i + 1] == '*') {
            seg[segs++] = len;
            len = 0;
            i += 2;
        } else {
            return 0; /* `?`, windash, a class, a user regular expression */
        }
    }
    seg[segs++] = len;
    return segs >= 2 ? segs : 0;
}

static int lit_order(const void *a, const void *b)
{
    const struct alt_lit *x = a, *y = b;
    return x->kind != y->kind ? (x->kind < y->kind ? -1 : 1) : (x->len > y->len) - (x->len < y->len);
}

/* Whether expression expr (with its Hyperscan flags) is a plain literal or a star-only
 * wildcard lazy_direct compares itself. */
bool lazy_expr_answerable(const char *expr, uint32_t flags)
{
    size_t n = strlen(expr);
    char stackbuf[256];
    uint32_t stackseg[130];
    char *out = n < sizeof stackbuf ? stackbuf : mamori_xmalloc(n + 1);
    uint32_t *seg = n / 2 + 2 <= MAMORI_ARRAY_LEN(stackseg) ? stackseg : mamori_xmalloc((n / 2 + 2) * sizeof *seg);
    uint32_t len;
    bool start, end;
    bool ok = literal_parse(expr, flags, NULL, &len) >= 0 || glob_parse(expr, flags, out, seg, &start, &end) > 0;
    if (out != stackbuf) free(out);
    if (seg != stackseg) free(seg);
    return ok;
}

/* The alt_lit of expression id of d, its bytes (and segment lengths) in the rule memory. */
static struct alt_lit make_lit(detect_ruleset *rs, const struct db *d, uint32_t id)
{
    size_t n = strlen(d->exprs[id]);
    char *text = arena_alloc(&rs->mem, n + 1);
    bool cased = !(d->flags[id] & HS_FLAG_CASELESS);
    struct alt_lit lit = {.text = text, .cased = cased};
    uint32_t len;
    int kind = literal_parse(d->exprs[id], d->flags[id], text, &len);
    if (kind >= 0) {
        lit.kind = (uint8_t)kind;
        lit.len = len;
    } else {
        uint32_t *seg = arena_alloc(&rs->mem, (n / 2 + 2) * sizeof *seg);
        bool start, end;
        lit.seg_count = glob_parse(d->exprs[id], d->flags[id], text, seg, &start, &end);
        MAMORI_ASSERT(lit.seg_count >= 2);
        lit.kind = ALT_LIT_GLOB;
        lit.start = start;
        lit.end = end;
        lit.seg = seg;
        for (uint32_t k = 0; k < lit.seg_count; k++) lit.len += seg[k];
    }
    if (!cased)
        for (uint32_t c = 0; c < lit.len; c++) text[c] = (char)ascii_fold((uint8_t)text[c]);
    return lit;
}

/* An alternative with this many contains values or more has them (and its other plain
 * literals) in a literal set of its own: one substring filter pass instead of a search per value. */
#ifndef LAZY_SET_MIN
#define LAZY_SET_MIN 4
#endif

struct src {
    const char *expr;
    uint32_t flags;
    const struct db *db; /* and its id there, for make_lit */
    uint32_t id;
};

/* The entries of alternative a from its expressions src[0..n): one literal set for its plain
 * literals when it has LAZY_SET_MIN contains values or more and the set's filter holds them,
 * then each wildcard; else one entry per expression. Returns the entry count (out: NULL to
 * count only). */
static uint32_t alt_entries(detect_ruleset *rs, const struct src *src, uint32_t n, struct alt_lit *out)
{
    if (n > LAZY_DIRECT_MAX) return 0;
    const char *exprs[LAZY_DIRECT_MAX];
    uint32_t flags[LAZY_DIRECT_MAX], lits = 0, contains = 0, len;
    for (uint32_t i = 0; i < n; i++) {
        int kind = literal_parse(src[i].expr, src[i].flags, NULL, &len);
        if (kind < 0) continue;
        contains += kind == LIT_CONTAINS;
        exprs[lits] = src[i].expr;
        flags[lits++] = src[i].flags;
    }
    bool set = contains >= LAZY_SET_MIN && literal_contains_overflow(exprs, flags, lits) == UINT32_MAX;
    uint32_t k = 0;
    if (set) {
        if (out) {
            out[k] = (struct alt_lit){.kind = ALT_LIT_SET, .set = literal_set_build(exprs, flags, lits)};
            rs->alt_bytes += literal_set_bytes(out[k].set);
        }
        k++;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (set && literal_parse(src[i].expr, src[i].flags, NULL, &len) >= 0) continue;
        if (out) out[k] = make_lit(rs, src[i].db, src[i].id);
        k++;
    }
    return k;
}

/* The Hyperscan databases of the alternatives lazy.c cannot answer with literals (a user
 * regular expression, a `?` wildcard, windash…): one per distinct list of expressions (the
 * alternatives of one predicate on several paths share it), compiled on up to `threads`
 * threads like the rule set's (Hyperscan spends 3–5 ms on even the smallest). A database
 * Hyperscan will not have stays NULL: its alternatives are then answered by scanning their
 * lazy databases, which did compile. */
struct alt_pool {
    detect_ruleset *rs;
    const struct src *src;
    const uint32_t *first; /* alternative a: src[first[a] .. first[a + 1]) */
    const uint32_t *alts;  /* the alternatives to compile */
    hs_database_t **out;   /* by alternative */
};

static void alt_compile(uint32_t i, void *ctx)
{
    const struct alt_pool *p = ctx;
    uint32_t a = p->alts[i], n = p->first[a + 1] - p->first[a];
    const struct src *src = p->src + p->first[a];
    const char *exprs[LAZY_DIRECT_MAX];
    unsigned flags[LAZY_DIRECT_MAX], ids[LAZY_DIRECT_MAX];
    for (uint32_t k = 0; k < n; k++) {
        exprs[k] = src[k].expr;
        flags[k] = src[k].flags | HS_FLAG_SINGLEMATCH;
        ids[k] = 0;
    }
    hs_database_t *db = NULL;
    hs_compile_error_t *cerr = NULL;
    if (hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, &db, &cerr) != HS_SUCCESS) db = NULL;
    if (cerr) hs_free_compile_error(cerr);
    p->out[a] = db;
}

static void alt_databases(struct alt_pool *p, uint32_t count, unsigned threads)
{
    compile_parallel(count, threads, alt_compile, p);
    for (uint32_t i = 0; i < count; i++) { /* scratch: one thread at a time */
        hs_database_t **db = &p->out[p->alts[i]];
        size_t bytes;
        if (*db && hs_alloc_scratch(*db, &p->rs->scratch_proto) != HS_SUCCESS) {
            hs_free_database(*db);
            *db = NULL;
        }
        if (*db && hs_database_size(*db, &bytes) == HS_SUCCESS) p->rs->alt_bytes += bytes;
    }
}

static bool same_sources(const struct src *a, uint32_t na, const struct src *b, uint32_t nb)
{
    if (na != nb) return false;
    for (uint32_t i = 0; i < na; i++)
        if (a[i].flags != b[i].flags || (a[i].expr != b[i].expr && strcmp(a[i].expr, b[i].expr))) return false;
    return true;
}

void lazy_direct_build(detect_ruleset *rs, unsigned threads)
{
    uint32_t n = rs->alt_count;
    uint32_t *first = mamori_xcalloc((size_t)n + 1, sizeof *first);
    bool *plain = mamori_xmalloc(n ? n : 1);
    memset(plain, 1, n ? n : 1);
    for (uint32_t i = 0; i < rs->db_count; i++) {
        const struct db *d = &rs->dbs[i];
        if (!d->lazy) continue;
        for (uint32_t id = 0; id < d->id_count; id++) {
            bool ok = lazy_expr_answerable(d->exprs[id], d->flags[id]);
            for (uint32_t k = d->alt_first[id]; k < d->alt_first[id + 1]; k++) {
                first[d->alts[k] + 1]++;
                if (!ok) plain[d->alts[k]] = false;
            }
        }
    }
    for (uint32_t a = 0; a < n; a++) {
        if (first[a + 1] > LAZY_DIRECT_MAX) plain[a] = false;
        first[a + 1] += first[a];
    }
    /* (plain[a]: every expression of a is answered by literals or wildcards; the others get
     * a Hyperscan database of their own) */
    /* each alternative's expressions, gathered from its databases */
    struct src *src = mamori_xmalloc((first[n] ? first[n] : 1) * sizeof *src);
    uint32_t *fill = mamori_xcalloc(n ? n : 1, sizeof *fill);
    for (uint32_t i = 0; i < rs->db_count; i++) {
        const struct db *d = &rs->dbs[i];
        if (!d->lazy) continue;
        for (uint32_t id = 0; id < d->id_count; id++)
            for (uint32_t k = d->alt_first[id]; k < d->alt_first[id + 1]; k++) {
                uint32_t a = d->alts[k];
                src[first[a] + fill[a]++] = (struct src){.expr = d->exprs[id], .flags = d->flags[id], .db = d, .id = id};
            }
    }
    free(fill);
    /* the alternatives that need a database of their own; those of one predicate on several
     * paths have the same expressions, and share one (same_as: the one compiled) */
    hs_database_t **hs = mamori_xcalloc(n ? n : 1, sizeof *hs);
    uint32_t *hard = mamori_xmalloc((n ? n : 1) * sizeof *hard), hard_count = 0;
    uint32_t *same_as = mamori_xmalloc((n ? n : 1) * sizeof *same_as);
    for (uint32_t a = 0; a < n; a++) {
        same_as[a] = a;
        if (plain[a] || first[a + 1] == first[a] || first[a + 1] - first[a] > LAZY_DIRECT_MAX) continue;
        for (uint32_t j = 0; j < hard_count && same_as[a] == a; j++)
            if (same_sources(src + first[a], first[a + 1] - first[a], src + first[hard[j]], first[hard[j] + 1] - first[hard[j]]))
                same_as[a] = hard[j];
        if (same_as[a] == a) hard[hard_count++] = a;
    }
    struct alt_pool pool = {.rs = rs, .src = src, .first = first, .alts = hard, .out = hs};
    alt_databases(&pool, hard_count, threads);
    free(hard);
    rs->alt_lit_first = mamori_xcalloc((size_t)n + 1, sizeof *rs->alt_lit_first);
    for (uint32_t a = 0; a < n; a++) {
        uint32_t count = hs[same_as[a]] ? 1 : plain[a] ? alt_entries(rs, src + first[a], first[a + 1] - first[a], NULL) : 0;
        rs->alt_lit_first[a + 1] = rs->alt_lit_first[a] + count;
    }
    uint32_t total = rs->alt_lit_first[n];
    rs->alt_lits = mamori_xmalloc((total ? total : 1) * sizeof *rs->alt_lits);
    for (uint32_t a = 0; a < n; a++) {
        if (rs->alt_lit_first[a] == rs->alt_lit_first[a + 1]) continue;
        struct alt_lit *out = rs->alt_lits + rs->alt_lit_first[a];
        if (hs[same_as[a]]) {
            *out = (struct alt_lit){.kind = ALT_LIT_HS, .hs = hs[same_as[a]], .owner = same_as[a] == a};
            continue;
        }
        uint32_t count = alt_entries(rs, src + first[a], first[a + 1] - first[a], out);
        /* cheapest first: whole values, prefixes, suffixes, substrings, wildcards, the set */
        qsort(out, count, sizeof *out, lit_order);
    }
    free(same_as);
    free(hs);
    free(src);
    free(first);
    free(plain);
}

void lazy_direct_free(detect_ruleset *rs)
{
    for (uint32_t i = 0; rs->alt_lit_first && i < rs->alt_lit_first[rs->alt_count]; i++) {
        if (rs->alt_lits[i].kind == ALT_LIT_SET) literal_set_free(rs->alt_lits[i].set);
        else if (rs->alt_lits[i].kind == ALT_LIT_HS && rs->alt_lits[i].owner) hs_free_database(rs->alt_lits[i].hs);
    }
}

/* The first position in [from, last] where t[0..n) occurs in v, byte by byte. */
static size_t find_scalar(const char *v, size_t from, size_t last, const char *t, uint32_t n, bool cased)
{
    uint8_t c0 = (uint8_t)t[0];
    for (size_t i = from; i <= last; i++) {
        uint8_t c = (uint8_t)v[i];
        if ((cased ? c : ascii_fold(c)) == c0 && lit_equal(v + i, t, n, cased)) return i;
    }
    return SIZE_MAX;
}

#ifdef DETECT_HAVE_AVX2
/* find_scalar 32 positions at a time: the positions whose first and last bytes are t's (either
 * case of a letter when caseless) are compared in full. Reads v[from .. last + n), no more. */
__attribute__((target("avx2"))) static size_t find_avx2(const char *v, size_t from, size_t last, const char *t,
                                                         uint32_t n, bool cased)
{
    uint8_t f = (uint8_t)t[0], l = (uint8_t)t[n - 1];
    /* t is folded when caseless: a lowercase letter also matches its uppercase */
    uint8_t fu = cased ? f : ascii_upper(f), lu = cased ? l : ascii_upper(l);
    const __m256i vf = _mm256_set1_epi8((char)f), vfu = _mm256_set1_epi8((char)fu);
    const __m256i vl = _mm256_set1_epi8((char)l), vlu = _mm256_set1_epi8((char)lu);
    size_t i = from;
    for (; i + 31 <= last; i += 32) { /* the last byte's block ends at i + n + 30 <= last + n - 1 */
        __m256i a = _mm256_loadu_si256((const __m256i *)(v + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(v + i + n - 1));
        __m256i ma = _mm256_or_si256(_mm256_cmpeq_epi8(a, vf), _mm256_cmpeq_epi8(a, vfu));
        __m256i mb = _mm256_or_si256(_mm256_cmpeq_epi8(b, vl), _mm256_cmpeq_epi8(b, vlu));
        for (uint32_t m = (uint32_t)_mm256_movemask_epi8(_mm256_and_si256(ma, mb)); m; m &= m - 1) {
            uint32_t k = (uint32_t)__builtin_ctz(m);
            if (lit_equal(v + i + k, t, n, cased)) return i + k;
        }
    }
    return find_scalar(v, i, last, t, n, cased);
}
#endif

static inline bool find_simd(void)
{
#ifdef DETECT_HAVE_AVX2
    return __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

/* The first position at or after from where t[0..n) occurs in v[0..len), or SIZE_MAX. */
static size_t find(const char *v, size_t len, size_t from, const char *t, uint32_t n, bool cased)
{
    if (n == 0) return from <= len ? from : SIZE_MAX;
    if (n > len || from > len - n) return SIZE_MAX;
#ifdef DETECT_HAVE_AVX2
    if (len - n - from >= 31 && find_simd()) return find_avx2(v, from, len - n, t, n, cased);
#endif
    return find_scalar(v, from, len - n, t, n, cased);
}

/* A star-only wildcard: the first segment at the start when anchored, the last at the end
 * when anchored, the others each at its leftmost place after the previous one (taking the
 * leftmost never loses a match: a later segment only needs to start after it). */
static bool glob_matches(const char *v, size_t len, const struct alt_lit *l)
{
    const char *t = l->text;
    uint32_t first = 0, last = l->seg_count - 1;
    size_t pos = 0, tail = l->end ? l->seg[last] : 0;
    if (tail > len) return false;
    if (l->start) {
        if (l->seg[0] > len - tail || !lit_equal(v, t, l->seg[0], l->cased)) return false;
        pos = l->seg[0];
        t += l->seg[0];
        first = 1;
    }
    uint32_t stop = l->end ? last : last + 1;
    for (uint32_t k = first; k < stop; k++) {
        size_t at = find(v, len - tail, pos, t, l->seg[k], l->cased);
        if (at == SIZE_MAX) return false;
        pos = at + l->seg[k];
        t += l->seg[k];
    }
    return !l->end || (pos <= len - tail && lit_equal(v + len - tail, t, (uint32_t)tail, l->cased));
}

static int hs_hit(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *ctx)
{
    (void)id;
    (void)from;
    (void)to;
    (void)flags;
    *(bool *)ctx = true;
    return 1; /* one is enough */
}

static void set_hit(uint32_t id, void *ctx)
{
    (void)id;
    *(bool *)ctx = true;
}

static bool lit_matches(const char *v, size_t len, const struct alt_lit *l)
{
    switch (l->kind) {
    case LIT_EXACT: return len == l->len && lit_equal(v, l->text, l->len, l->cased);
    case LIT_PREFIX: return len >= l->len && lit_equal(v, l->text, l->len, l->cased);
    case LIT_SUFFIX: return len >= l->len && lit_equal(v + len - l->len, l->text, l->len, l->cased);
    case LIT_CONTAINS: return find(v, len, 0, l->text, l->len, l->cased) != SIZE_MAX;
    case ALT_LIT_GLOB: return glob_matches(v, len, l);
    default: {
        bool hit = false;
        literal_set_scan(l->set, v, len, set_hit, &hit);
        return hit;
    }
    }
}

int lazy_direct(detect_worker *w, uint32_t alt, uint32_t path)
{
    const detect_ruleset *rs = w->rs;
    const struct alt_lit *first = rs->alt_lits + rs->alt_lit_first[alt], *end = rs->alt_lits + rs->alt_lit_first[alt + 1];
    const event_field *f = path_field(w, path);
    if (!f) return 0; /* nothing to scan: no match */
    char tmp[32];
    const char *text;
    size_t len;
    if (f->path_hash && f->text) { /* the value's text, as the eager walk scans it (scan.c push_field) */
        text = f->text;
        len = f->text_len;
    } else {
        const json_value *v = f->value;
        if (v->type == JSON_ARRAY) return -1;
        if (!direct_scalar_text(v, tmp, &text, &len)) return 0; /* what scan_lazy skips too */
    }
    if (len > UINT32_MAX) return -1;
    if (first->kind == ALT_LIT_HS) { /* its own database: the only entry */
        bool hit = false;
        hs_error_t rc = hs_scan(first->hs, text, (unsigned)len, 0, w->scratch, hs_hit, &hit);
        if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) return -1; /* the database scan logs it */
        if (!hit) return 0;
        w->alt_bits[alt >> 6] |= (uint64_t)1 << (alt & 63);
        w->touched[w->touched_count++] = alt;
        return 1;
    }
    size_t cost = 0, search = find_simd() ? len / 8 : len;
    for (const struct alt_lit *l = first; l < end; l++)
        cost += l->kind == ALT_LIT_SET ? len / 4 : l->kind >= LIT_CONTAINS ? search : l->len;
    if (cost > LAZY_DIRECT_BUDGET + len) return -1;
    for (const struct alt_lit *l = first; l < end; l++) {
        if (!lit_matches(text, len, l)) continue;
        w->alt_bits[alt >> 6] |= (uint64_t)1 << (alt & 63);
        w->touched[w->touched_count++] = alt; /* cleared with the event's other bits */
        return 1;
    }
    return 0;
}

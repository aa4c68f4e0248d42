/* detect/compile_db.c — the rule set's databases: each path and class's expressions sorted and
 * deduplicated, compiled to a Hyperscan block-mode database (or a literal set, literal.c) on a
 * small thread pool; a database Hyperscan refuses is repaired by rejecting the rules of the
 * failing expression. */
#include "compile_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- databases -------------------------------------------------------------------------------- */

static int entry_key_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->flags != y->flags) return x->flags < y->flags ? -1 : 1;
    int c = strcmp(x->expr, y->expr);
    if (c) return c;
    return x->alt < y->alt ? -1 : x->alt > y->alt;
}

/* Sorts entries, gives each distinct (expression, flags) an id and lists its alternatives. */
void db_prepare(struct db_build *db)
{
    free(db->exprs);
    free(db->flags);
    free(db->alt_first);
    free(db->alts);
    qsort(db->entries, db->count, sizeof *db->entries, entry_key_cmp);
    db->exprs = mamori_xmalloc((db->count + 1) * sizeof *db->exprs);
    db->flags = mamori_xmalloc((db->count + 1) * sizeof *db->flags);
    db->alt_first = mamori_xmalloc((db->count + 1) * sizeof *db->alt_first);
    db->alts = mamori_xmalloc((db->count + 1) * sizeof *db->alts);
    uint32_t ids = 0, alts = 0;
    for (uint32_t i = 0; i < db->count; i++) {
        const struct entry *e = &db->entries[i];
        bool same = i > 0 && e->flags == db->entries[i - 1].flags && strcmp(e->expr, db->entries[i - 1].expr) == 0;
        if (!same) {
            db->exprs[ids] = e->expr;
            db->flags[ids] = e->flags;
            db->alt_first[ids] = alts;
            ids++;
        }
        if (alts == 0 || !same || db->alts[alts - 1] != e->alt) db->alts[alts++] = e->alt;
    }
    db->alt_first[ids] = alts;
    db->id_count = ids;
}

/* Compiles db's expressions whose in_line is want, ids as in db, into *out; with gates (want
 * true), also the gates (gate_flags), gate k as id id_count + k. */
static bool compile_subset(const struct db_build *db, const bool *in_line, bool want, const char *const *gates,
                           const uint32_t *gate_flags, hs_database_t **out)
{
    const char **exprs = mamori_xmalloc(db->id_count * sizeof *exprs);
    unsigned *flags = mamori_xmalloc(db->id_count * sizeof *flags), *ids = mamori_xmalloc(db->id_count * sizeof *ids);
    uint32_t n = 0, k = 0;
    for (uint32_t i = 0; i < db->id_count; i++) {
        if (in_line[i] == want) {
            exprs[n] = db->exprs[i];
            flags[n] = db->flags[i];
            ids[n++] = i;
        } else if (gates) {
            exprs[n] = gates[k];
            flags[n] = gate_flags[k];
            ids[n++] = db->id_count + k++;
        }
    }
    hs_compile_error_t *cerr = NULL;
    hs_error_t rc = hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, out, &cerr);
    if (cerr) hs_free_compile_error(cerr);
    if (rc != HS_SUCCESS) *out = NULL;
    free(exprs);
    free(flags);
    free(ids);
    return rc == HS_SUCCESS;
}

/* The gates of db's expressions not in_line: each one's required literal (strength.c
 * regex_factor) as a caseless contains expression, spelled as compile.c spells a trigger's
 * required literal (sigstr_expression), in a; false when one has none of FACTOR_MIN bytes or
 * more without '\n'. */
static bool rest_gates(arena *a, const struct db_build *db, const bool *in_line, const char **gates,
                       uint32_t *gate_flags)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < db->id_count; i++) {
        if (in_line[i]) continue;
        char lit[64];
        uint32_t n = regex_factor(db->exprs[i], db->flags[i], lit, sizeof lit);
        if (n < FACTOR_MIN || memchr(lit, '\n', n)) return false;
        sigstr contains = sigstr_wrap(a, sigstr_literal(a, lit, n), true, true);
        gates[k] = sigstr_expression(a, &contains, false, &gate_flags[k]);
        k++;
    }
    return true;
}

/* Whether a long value may be scanned line by line (scan.c scan_lines): when every expression
 * is a contains literal without '\n', all its matches lie within a line (line_local). In a
 * database large enough to be deferred where all but a few are (PowerShell `ContextInfo`: 264
 * of 265, the other a wildcard), those few go to rest_hs, scanned over the whole value, and
 * the others to lines_hs, ids as in the whole database (struct db_split). When each of the
 * few has a required literal (a match contains it, so it lies in a line), lines_hs holds those
 * literals too, as ids from id_count on, and rest_hs is scanned only when a line holds one
 * (rest_gated). */
static void split_lines(struct db_build *db)
{
    if (db->joined || !db->hs) return;
    bool *in_line = mamori_xmalloc(db->id_count * sizeof *in_line);
    uint32_t rest = 0;
    for (uint32_t i = 0; i < db->id_count; i++) {
        in_line[i] = literal_all_in_line(&db->exprs[i], &db->flags[i], 1);
        rest += !in_line[i];
    }
    size_t bytes = 0;
    if (rest == 0) {
        db->line_local = true;
    } else if (rest <= LINES_REST_MAX && rest < db->id_count && hs_database_size(db->hs, &bytes) == HS_SUCCESS &&
               bytes >= DETECT_DEFER_BYTES) {
        const char *gates[LINES_REST_MAX];
        uint32_t gate_flags[LINES_REST_MAX];
        arena a; /* this thread's own: the rule memory is not to be touched here */
        arena_init(&a, 4096);
        db->rest_gated = rest_gates(&a, db, in_line, gates, gate_flags);
        if (!compile_subset(db, in_line, true, db->rest_gated ? gates : NULL, gate_flags, &db->lines_hs) ||
            !compile_subset(db, in_line, false, NULL, NULL, &db->rest_hs)) {
            if (db->lines_hs) hs_free_database(db->lines_hs);
            db->lines_hs = NULL; /* a failure costs the split only: the whole database scans as before */
            db->rest_gated = false;
        }
        arena_fini(&a);
    }
    free(in_line);
}

static void compile_db(struct db_build *db)
{
    db->failed_expression = -1;
    if (db->id_count == 0) return;
    if (db->literal) {
        db->lit = literal_set_build(db->exprs, db->flags, db->id_count);
        return;
    }
    unsigned *ids = mamori_xmalloc(db->id_count * sizeof *ids);
    for (uint32_t i = 0; i < db->id_count; i++) ids[i] = i;
    hs_compile_error_t *cerr = NULL;
    hs_error_t rc = hs_compile_multi(db->exprs, db->flags, ids, db->id_count, HS_MODE_BLOCK, NULL, &db->hs, &cerr);
    free(ids);
    if (rc != HS_SUCCESS) {
        db->hs = NULL;
        db->failed_expression = cerr && cerr->expression >= 0 ? cerr->expression : -2;
        snprintf(db->error, sizeof db->error, "%s", cerr ? cerr->message : "compile failed");
    }
    if (cerr) hs_free_compile_error(cerr);
    split_lines(db);
}

struct pool {
    void (*fn)(uint32_t i, void *ctx);
    void *ctx;
    uint32_t count;
    atomic_uint next;
};

static void *pool_worker(void *arg)
{
    struct pool *p = arg;
    for (uint32_t i; (i = atomic_fetch_add(&p->next, 1)) < p->count;) p->fn(i, p->ctx);
    return NULL;
}

void compile_parallel(uint32_t count, unsigned threads, void (*fn)(uint32_t i, void *ctx), void *ctx)
{
    struct pool p = {.fn = fn, .ctx = ctx, .count = count};
    atomic_init(&p.next, 0);
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    if (threads > COMPILE_THREADS_MAX) threads = COMPILE_THREADS_MAX;
    if (threads > count) threads = count ? count : 1;
    pthread_t tids[COMPILE_THREADS_MAX];
    unsigned started = 0;
    for (unsigned i = 1; i < threads; i++)
        if (pthread_create(&tids[started], NULL, pool_worker, &p) == 0) started++;
    pool_worker(&p);
    for (unsigned i = 0; i < started; i++) pthread_join(tids[i], NULL);
}

static void compile_one(uint32_t i, void *ctx) { compile_db(&((struct db_build *)ctx)[i]); }

void db_compile_all(builder *b, unsigned threads) { compile_parallel(b->build_count, threads, compile_one, b->builds); }

/* A database refused expression `failed`: reject every rule using it, drop their entries,
 * recompile. Returns 0 when the database compiled in the end. */
int db_repair(builder *b, struct lrule **lrules, const uint32_t *rule_source, struct db_build *db)
{
    detect_ruleset *rs = b->rs;
    for (int attempt = 0; attempt < 64 && db->failed_expression != -1; attempt++) {
        if (db->failed_expression < 0) return -EIO;
        uint32_t id = (uint32_t)db->failed_expression;
        for (uint32_t k = db->alt_first[id]; k < db->alt_first[id + 1]; k++) {
            uint32_t rule = rs->preds[rs->alt_pred[db->alts[k]]].rule;
            if (rs->rules[rule].dead) continue;
            rs->rules[rule].dead = true;
            loader_reject_rule(b->loader, lrules[rule_source[rule]], DETECT_REASON_REGEX,
                               "expression '%.80s' not supported by Hyperscan: %s", db->exprs[id], db->error);
        }
        uint32_t kept = 0;
        for (uint32_t i = 0; i < db->count; i++) {
            uint32_t rule = rs->preds[rs->alt_pred[db->entries[i].alt]].rule;
            if (!rs->rules[rule].dead) db->entries[kept++] = db->entries[i];
        }
        db->count = kept;
        db_prepare(db);
        compile_db(db);
    }
    return db->failed_expression == -1 ? 0 : -EIO;
}

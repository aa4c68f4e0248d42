/* search/seqseed.c — the seeded sequence run: with maxspan, the matches of the most
 * selective stage (the seeds) bound the windows [t - D, t + D] that can hold a sequence.
 * Windows are read per join key through the key's index, lazily (candidates marked in
 * batches, events fetched only when they could change the state machine), or else as
 * merged time intervals scanned once. The run context and feeding live in seqexec.c. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_MAX_SEEDS 200000u

typedef struct window {
    uint64_t key_hash;
    char *key;     /* serialized key */
    uint32_t key_len;
    int64_t from, to;
} window;

/* A match of the seed stage, with what feeding it does (so it is never fetched again). */
typedef struct seed_rec {
    uint64_t key_hash;
    char *key;
    uint32_t key_len;
    uint32_t mask; /* stages it matches under its key */
    bool until;
    store_event_ref ref;
} seed_rec;

typedef struct seed_ctx {
    seq_run *r;
    const event_query *st;
    window *w;
    size_t n, cap;
    seed_rec *seeds; /* one per window before merging */
    size_t seed_count;
    int64_t from, to;
} seed_ctx;

/* The stages (and until) the event matches under join key `key` — what feed_event feeds
 * for that key. */
static void classify_for_key(seq_run *r, const json_value *root, const char *key, size_t key_len, uint32_t *mask,
                             bool *until)
{
    const search_query *q = r->q;
    uint32_t n = q->stage_count;
    *mask = 0;
    *until = false;
    for (uint32_t j = 0; j <= n; j++) {
        const event_query *sj = j < n ? &q->stages[j] : (q->has_until ? &q->until : NULL);
        if (!sj || !eval_query(&r->ev, sj, root)) continue;
        if (!key_build(root, q->seq_by, q->seq_by_count, sj->by, sj->by_count, &r->stage_key)) continue;
        if (r->stage_key.len != key_len || memcmp(r->stage_key.data, key, key_len) != 0) continue;
        if (j < n) *mask |= 1u << j;
        else *until = true;
    }
}

static int seed_emit(void *ctx, const store_event_ref *ref, const char *json, size_t len, const json_value *root)
{
    (void)json;
    (void)len;
    seed_ctx *sc = ctx;
    const search_query *q = sc->r->q;
    if (!key_build(root, q->seq_by, q->seq_by_count, sc->st->by, sc->st->by_count, &sc->r->key)) return 0;
    if (sc->n == SEQ_MAX_SEEDS) return 1;
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? sc->cap * 2 : 256;
        sc->w = mamori_xrealloc(sc->w, sc->cap * sizeof *sc->w);
        sc->seeds = mamori_xrealloc(sc->seeds, sc->cap * sizeof *sc->seeds);
    }
    seed_rec *sr = &sc->seeds[sc->seed_count++];
    window *w = &sc->w[sc->n++];
    w->key_len = (uint32_t)sc->r->key.len;
    w->key = mamori_xmalloc(w->key_len ? w->key_len : 1);
    memcpy(w->key, sc->r->key.data, w->key_len);
    w->key_hash = mamori_hash64(w->key, w->key_len);
    sr->key_hash = w->key_hash;
    sr->key_len = w->key_len;
    sr->key = mamori_xmalloc(w->key_len ? w->key_len : 1);
    memcpy(sr->key, w->key, w->key_len);
    sr->ref = *ref;
    classify_for_key(sc->r, root, w->key, w->key_len, &sr->mask, &sr->until);
    int64_t span = q->maxspan_us;
    w->from = ref->ts_us - span < sc->from ? sc->from : ref->ts_us - span;
    w->to = ref->ts_us > sc->to - span - 1 ? sc->to : ref->ts_us + span + 1;
    return 0;
}

static int window_order(const void *x, const void *y)
{
    const window *a = x, *b = y;
    if (a->key_hash != b->key_hash) return a->key_hash < b->key_hash ? -1 : 1;
    int c = memcmp(a->key, b->key, MAMORI_MIN(a->key_len, b->key_len));
    if (c) return c;
    if (a->key_len != b->key_len) return a->key_len < b->key_len ? -1 : 1;
    return a->from < b->from ? -1 : a->from > b->from;
}

static int time_order(const void *x, const void *y)
{
    const window *a = x, *b = y;
    return a->from < b->from ? -1 : a->from > b->from;
}

/* Reads one key's windows through the key's own index. */
static int run_key_windows(seq_run *r, const window *w, size_t n, const field_ref *kf)
{
    const char *v = w[0].key;
    size_t vlen = w[0].key_len;
    if (vlen >= 2 && v[0] == '"') { /* a JSON string without escapes: the value itself */
        v++;
        vlen -= 2;
        if (memchr(v, '\\', vlen)) return 1; /* caller falls back */
    }
    seq_machine_reset(r->m);
    /* the index is caseless: feed only this exact key */
    uint64_t only = w[0].key_hash;
    r->key_hashes = &only;
    r->key_hash_count = 1;
    ref_list l = {.env = r->env}; /* reused by every window of the key */
    for (size_t i = 0; i < n && !r->error && !r->env->deadline_hit; i++) {
        l.n = 0;
        int rc = store_index_lookup(r->env->s, r->env->tenant, (enum store_index_field)kf->index_field, v, vlen, false,
                                    w[i].from, w[i].to, seq_collect_ref, &l);
        if (rc < 0) {
            free(l.v);
            r->key_hashes = NULL;
            return r->error = set_error(r->env->err, SEARCH_ERR_INTERNAL, -1, "index lookup failed: %d", rc);
        }
        for (size_t k = 0; k < l.n && !r->error; k++)
            if (seq_fetch_feed(r, &l.v[k])) break;
    }
    free(l.v);
    r->key_hashes = NULL;
    r->key_hash_count = 0;
    return 0;
}

static int seed_order(const void *x, const void *y)
{
    const seed_rec *a = x, *b = y;
    if (a->key_hash != b->key_hash) return a->key_hash < b->key_hash ? -1 : 1;
    int c = memcmp(a->key, b->key, MAMORI_MIN(a->key_len, b->key_len));
    if (c) return c;
    if (a->key_len != b->key_len) return a->key_len < b->key_len ? -1 : 1;
    return search_ref_cmp(&a->ref, &b->ref);
}

static bool same_key(uint64_t ha, const char *a, uint32_t la, uint64_t hb, const char *b, uint32_t lb)
{
    return ha == hb && la == lb && memcmp(a, b, la) == 0;
}

/* The key's value as the index holds it: a JSON string without escapes, else the text. */
static bool key_index_value(const window *w, const char **v, size_t *len)
{
    *v = w->key;
    *len = w->key_len;
    if (*len >= 2 && (*v)[0] == '"') {
        (*v)++;
        *len -= 2;
        if (memchr(*v, '\\', *len)) return false;
    }
    return true;
}

#define SEQ_LAZY_BATCH_REFS (1u << 21) /* refs of several keys marked together */


/* Marks, for each ref of u[0..nu) (sorted, unique), the stages (bit s) and until (bit
 * stage_count) it may match per their index candidates; the seed stage is left out (its
 * matches are the seeds). */
static int mark_stages(seq_run *r, int seed_stage, int64_t from, int64_t to, const store_event_ref *u, size_t nu,
                       uint32_t *cand, bool *keep)
{
    const search_query *q = r->q;
    uint32_t n = q->stage_count;
    memset(cand, 0, nu * sizeof *cand);
    for (uint32_t st = 0; st <= n; st++) {
        const event_query *eq = st < n ? &q->stages[st] : (q->has_until ? &q->until : NULL);
        if (!eq || (int)st == seed_stage) continue;
        for (size_t k = 0; k < nu; k++) keep[k] = true;
        int rc = plan_mark_set(r->env, eq, from, to, u, nu, keep);
        if (rc) return rc;
        for (size_t k = 0; k < nu; k++)
            if (keep[k]) cand[k] |= 1u << st;
    }
    return 0;
}

/* The sorted union u of a batch's per-key lists v[gstart[g], gstart[g + 1]) (each sorted)
 * by a heap merge, and map[k] = the index in u of v[k]. Returns the size of u. */
static size_t merge_keys(const store_event_ref *v, const size_t *gstart, size_t ng, store_event_ref *u, uint32_t *map)
{
    size_t *pos = mamori_xmalloc((ng ? ng : 1) * sizeof *pos);
    size_t *heap = mamori_xmalloc((ng ? ng : 1) * sizeof *heap);
    size_t hn = 0;
    for (size_t g = 0; g < ng; g++) {
        pos[g] = gstart[g];
        if (pos[g] == gstart[g + 1]) continue;
        size_t i = hn++;
        while (i > 0 && search_ref_cmp(&v[pos[g]], &v[pos[heap[(i - 1) / 2]]]) < 0) {
            heap[i] = heap[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        heap[i] = g;
    }
    size_t nu = 0;
    while (hn) {
        size_t g = heap[0];
        const store_event_ref *x = &v[pos[g]];
        if (nu == 0 || search_ref_cmp(x, &u[nu - 1]) != 0) u[nu++] = *x;
        map[pos[g]] = (uint32_t)(nu - 1);
        pos[g]++;
        size_t top = g;
        if (pos[g] == gstart[g + 1]) top = heap[--hn];
        if (!hn) break;
        /* sift top down from the root */
        size_t i = 0;
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= hn) break;
            if (c + 1 < hn && search_ref_cmp(&v[pos[heap[c + 1]]], &v[pos[heap[c]]]) < 0) c++;
            if (search_ref_cmp(&v[pos[heap[c]]], &v[pos[top]]) >= 0) break;
            heap[i] = heap[c];
            i = c;
        }
        heap[i] = top;
    }
    free(pos);
    free(heap);
    return nu;
}

/* Walks one key's refs (time order) through the machine, fetching only what could matter. */
static void walk_key(seq_run *r, const window *kw, const store_event_ref *refs, const uint32_t *map, size_t nrefs,
                     const seed_rec *seeds, size_t ns, size_t *sp, const uint32_t *cand)
{
    exec_env *env = r->env;
    uint32_t n = r->q->stage_count;
    while (*sp < ns && seed_order(&seeds[*sp], &(seed_rec){.key_hash = kw->key_hash, .key = kw->key,
                                                            .key_len = kw->key_len, .ref = {.ts_us = INT64_MIN}}) < 0)
        (*sp)++;
    seq_machine_reset(r->m);
    uint64_t only = kw->key_hash;
    r->key_hashes = &only; /* the index is caseless: feed only this exact key */
    r->key_hash_count = 1;
    for (size_t k = 0; k < nrefs && !r->error && !env->deadline_hit; k++) {
        const store_event_ref *ref = &refs[k];
        while (*sp < ns && same_key(seeds[*sp].key_hash, seeds[*sp].key, seeds[*sp].key_len, kw->key_hash, kw->key,
                                    kw->key_len) &&
               search_ref_cmp(&seeds[*sp].ref, ref) < 0)
            (*sp)++;
        if (*sp < ns &&
            same_key(seeds[*sp].key_hash, seeds[*sp].key, seeds[*sp].key_len, kw->key_hash, kw->key, kw->key_len) &&
            search_ref_cmp(&seeds[*sp].ref, ref) == 0) {
            seq_event sev = {.ref = *ref, .ts_us = ref->ts_us};
            int frc = seq_machine_feed(r->m, seeds[*sp].mask, seeds[*sp].until, kw->key, kw->key_len, &sev);
            if (frc < 0) seq_feed_error(r, frc);
            if (frc) break;
            continue;
        }
        uint32_t c = cand[map[k]];
        if (!c) continue;
        uint32_t waiting = seq_machine_waiting(r->m, kw->key, kw->key_len, ref->ts_us);
        bool need = (c & 1u) || (c & waiting) || ((c >> n) & 1u && waiting);
        if (!need) continue;
        if (seq_fetch_feed(r, ref)) break;
    }
    r->key_hashes = NULL;
    r->key_hash_count = 0;
}

/* The seeded windows of every key through the key's index, fetching lazily: keys are taken
 * in batches; each key's refs in its windows are read from the key's index, the other
 * stages' (and until's) index candidates are marked on a batch's refs, and the state
 * machine is walked per key in time order, fetching an event only when feeding it could
 * change something — it may start a sequence (stage 0), a live partial waits for a stage it
 * may match, or it may match `until` while a live partial exists. Seeds are fed from their
 * recorded match without a fetch. A key with more refs than max_candidates is read whole
 * (run_key_windows). Returns 1 (with nothing fed) when a key cannot be looked up. */
static int run_key_lazy(seq_run *r, const window *w, size_t nw, seed_rec *seeds, size_t ns, const field_ref *kf,
                        int seed_stage, int64_t from, int64_t to)
{
    exec_env *env = r->env;
    for (size_t i = 0; i < nw; i++) {
        const char *v;
        size_t vlen;
        if (!key_index_value(&w[i], &v, &vlen)) return 1;
    }
    qsort(seeds, ns, sizeof *seeds, seed_order);
    size_t batch_cap = MAMORI_MIN((size_t)SEQ_LAZY_BATCH_REFS, (size_t)env->lim->max_candidates);
    ref_list all = {.env = env};
    size_t *gstart = NULL, *gwin = NULL, gcap = 0;
    store_event_ref *u = NULL;
    uint32_t *cand = NULL, *map = NULL;
    bool *keep = NULL;
    size_t ucap = 0, sp = 0;
    int rc = 0;
    for (size_t i = 0; i < nw && rc == 0 && !r->error && !env->deadline_hit;) {
        /* 1. a batch of keys: their refs inside their windows */
        all.n = 0;
        size_t ng = 0;
        while (i < nw && all.n < batch_cap && rc == 0 && !env->deadline_hit) {
            size_t j = i + 1;
            while (j < nw && same_key(w[j].key_hash, w[j].key, w[j].key_len, w[i].key_hash, w[i].key, w[i].key_len))
                j++;
            const char *v;
            size_t vlen;
            (void)key_index_value(&w[i], &v, &vlen);
            size_t before = all.n;
            /* one ref over max_candidates is enough to read the key whole: stop there */
            all.stop_at = before + env->lim->max_candidates + 1;
            for (size_t k = i; k < j && rc == 0; k++) {
                int lrc = store_index_lookup(env->s, env->tenant, (enum store_index_field)kf->index_field, v, vlen,
                                             false, w[k].from, w[k].to, seq_collect_ref, &all);
                if (lrc < 0) rc = set_error(env->err, SEARCH_ERR_INTERNAL, -1, "index lookup failed: %d", lrc);
            }
            all.stop_at = 0;
            if (rc == 0 && all.n - before > env->lim->max_candidates) {
                /* one key too large to mark: read its windows whole */
                all.n = before;
                rc = run_key_windows(r, &w[i], j - i, kf);
                if (rc == 1) rc = set_error(env->err, SEARCH_ERR_INTERNAL, -1, "sequence key lookup failed");
            } else if (rc == 0) {
                if (ng + 1 >= gcap) {
                    gcap = gcap ? gcap * 2 : 64;
                    gstart = mamori_xrealloc(gstart, gcap * sizeof *gstart);
                    gwin = mamori_xrealloc(gwin, gcap * sizeof *gwin);
                }
                gstart[ng] = before;
                gwin[ng] = i;
                ng++;
            }
            i = j;
        }
        if (rc || env->deadline_hit || ng == 0) break;
        gstart[ng] = all.n;
        /* 2. which stages each ref may match, from the other stages' indexes */
        if (all.n > ucap) {
            ucap = all.n;
            u = mamori_xrealloc(u, ucap * sizeof *u);
            cand = mamori_xrealloc(cand, ucap * sizeof *cand);
            map = mamori_xrealloc(map, ucap * sizeof *map);
            keep = mamori_xrealloc(keep, ucap * sizeof *keep);
        }
        size_t nu = merge_keys(all.v, gstart, ng, u, map);
        rc = mark_stages(r, seed_stage, from, to, u, nu, cand, keep);
        if (rc || env->deadline_hit) break;
        /* 3. the walk, key by key */
        for (size_t g = 0; g < ng && !r->error && !env->deadline_hit; g++)
            walk_key(r, &w[gwin[g]], all.v + gstart[g], map + gstart[g], gstart[g + 1] - gstart[g], seeds, ns, &sp,
                     cand);
    }
    free(gstart);
    free(gwin);
    free(all.v);
    free(u);
    free(cand);
    free(map);
    free(keep);
    return rc;
}

int seq_run_seeded(seq_run *r, int seed_stage, int64_t from, int64_t to)
{
    const search_query *q = r->q;
    exec_env *env = r->env;
    seed_ctx sc = {.r = r, .st = &q->stages[seed_stage], .from = from, .to = to};
    int rc = search_each_match(env, sc.st, from, to, &r->fs, seed_emit, &sc);
    if (!rc && sc.n == SEQ_MAX_SEEDS)
        rc = set_error(env->err, SEARCH_ERR_TOO_LARGE, (int32_t)sc.st->pos,
                       "sequence: over %u matches of the query at offset %u; make it more selective", SEQ_MAX_SEEDS,
                       sc.st->pos);
    if (rc || env->deadline_hit) goto out;
    /* merge each key's windows */
    qsort(sc.w, sc.n, sizeof *sc.w, window_order);
    size_t m = 0;
    for (size_t i = 0; i < sc.n; i++) {
        if (m > 0 && sc.w[m - 1].key_hash == sc.w[i].key_hash && sc.w[m - 1].key_len == sc.w[i].key_len &&
            memcmp(sc.w[m - 1].key, sc.w[i].key, sc.w[i].key_len) == 0 && sc.w[i].from <= sc.w[m - 1].to) {
            if (sc.w[i].to > sc.w[m - 1].to) sc.w[m - 1].to = sc.w[i].to;
            free(sc.w[i].key);
            continue;
        }
        sc.w[m++] = sc.w[i];
    }
    sc.n = m;
    const field_ref *kf = NULL;
    uint32_t key_fields = q->seq_by_count + q->stages[0].by_count;
    bool same_field = true;
    for (uint32_t i = 0; i < q->stage_count; i++)
        if (q->stages[i].by_count) same_field = false;
    if (q->has_until && q->until.by_count) same_field = false;
    if (key_fields == 1 && same_field && q->seq_by[0].index_field) kf = &q->seq_by[0];
    if (kf) {
        env->st->plan = "sequence_seeded_key_index";
        rc = run_key_lazy(r, sc.w, sc.n, sc.seeds, sc.seed_count, kf, seed_stage, from, to);
        if (rc != 1) goto out;
        rc = 0;
        for (size_t i = 0; i < sc.n && !r->error && !env->deadline_hit;) {
            size_t j = i + 1;
            while (j < sc.n && sc.w[j].key_hash == sc.w[i].key_hash && sc.w[j].key_len == sc.w[i].key_len &&
                   memcmp(sc.w[j].key, sc.w[i].key, sc.w[i].key_len) == 0)
                j++;
            if (run_key_windows(r, &sc.w[i], j - i, kf) == 1) {
                kf = NULL; /* a key value the index cannot look up: intervals for everything */
                break;
            }
            i = j;
        }
        if (kf) goto out;
        seq_machine_reset(r->m);
        r->total = 0;
        for (size_t i = 0; i < r->heap_n; i++) free(r->heap[i].key);
        r->heap_n = 0;
    }
    env->st->plan = "sequence_seeded_intervals";
    /* only the seed keys matter; merged time intervals are scanned once */
    r->key_hash_count = sc.n;
    r->key_hashes = mamori_xmalloc((sc.n ? sc.n : 1) * sizeof *r->key_hashes);
    for (size_t i = 0; i < sc.n; i++) r->key_hashes[i] = sc.w[i].key_hash;
    qsort(r->key_hashes, sc.n, sizeof *r->key_hashes, seq_hash_cmp);
    qsort(sc.w, sc.n, sizeof *sc.w, time_order);
    seq_machine_reset(r->m);
    int64_t cur_from = 0, cur_to = 0;
    bool open = false;
    for (size_t i = 0; i <= sc.n && !r->error && !env->deadline_hit; i++) {
        if (i < sc.n && open && sc.w[i].from <= cur_to) {
            if (sc.w[i].to > cur_to) cur_to = sc.w[i].to;
            continue;
        }
        if (open) {
            rc = store_scan_events(env->s, env->tenant, cur_from, cur_to, seq_scan_feed, r);
            if (rc < 0) {
                rc = set_error(env->err, SEARCH_ERR_INTERNAL, -1, "event scan failed: %d", rc);
                goto out;
            }
            rc = 0;
        }
        if (i < sc.n) {
            cur_from = sc.w[i].from;
            cur_to = sc.w[i].to;
            open = true;
        }
    }
out:
    for (size_t i = 0; i < sc.n; i++) free(sc.w[i].key);
    free(sc.w);
    for (size_t i = 0; i < sc.seed_count; i++) free(sc.seeds[i].key);
    free(sc.seeds);
    return rc;
}

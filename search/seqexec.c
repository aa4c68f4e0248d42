/* search/seqexec.c — running `sequence by … with maxspan=D [q1] [q2] … [until [q]]` over
 * stored events. With maxspan and one stage the index narrows to a small set (the seed),
 * only the windows [t - D, t + D] around that stage's matches can hold a sequence: those
 * windows are read per join key through the key's index when it has one (the other stages'
 * candidates marked on them, events fetched only when feeding them could change the
 * correlation engine's state), else as merged time intervals, and fed to the engine
 * (sequence.c). Otherwise every candidate of every stage (or the whole range) is fed in time
 * order. Completed sequences are ordered by their last event; pages continue after it (the
 * run starts over from the range's start: what a sequence consumed depends on all before
 * it). This file holds the run context, event feeding, the unseeded run and the answer; the
 * seeded windows are seqseed.c. */
#include "internal.h"

#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_SAMPLE_CAP 65536u

static int seq_cmp(const found_seq *a, const found_seq *b)
{
    return search_ref_cmp(&a->evs[a->n - 1].ref, &b->evs[b->n - 1].ref);
}

static void heap_sift_down(found_seq *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, big = i;
        if (l < n && seq_cmp(&h[l], &h[big]) > 0) big = l;
        if (r < n && seq_cmp(&h[r], &h[big]) > 0) big = r;
        if (big == i) return;
        found_seq t = h[i];
        h[i] = h[big];
        h[big] = t;
        i = big;
    }
}

static void heap_push(seq_run *r, const found_seq *f)
{
    found_seq *h = r->heap;
    size_t i = r->heap_n++;
    h[i] = *f;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (seq_cmp(&h[i], &h[parent]) <= 0) break;
        found_seq t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

static int on_done(void *ctx, const char *key, size_t key_len, const seq_event *events, uint32_t n)
{
    seq_run *r = ctx;
    if (r->has_after && search_ref_cmp(&events[n - 1].ref, &r->after) <= 0) return 0;
    r->total++;
    if (r->count_only || r->want == 0) return 0;
    found_seq f;
    f.n = n;
    memcpy(f.evs, events, n * sizeof *events);
    if (r->heap_n == r->want) {
        /* keep the earliest `want`: replace the latest if this one is earlier */
        if (seq_cmp(&f, &r->heap[0]) >= 0) return 0;
        free(r->heap[0].key);
        r->heap[0] = r->heap[--r->heap_n];
        heap_sift_down(r->heap, r->heap_n, 0);
    }
    f.key = mamori_xmalloc(key_len ? key_len : 1);
    memcpy(f.key, key, key_len);
    f.key_len = (uint32_t)key_len;
    heap_push(r, &f);
    return 0;
}

static int ref_order(const void *a, const void *b) { return search_ref_cmp(a, b); }

int seq_hash_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool key_wanted(const seq_run *r, const char *key, size_t len)
{
    if (!r->key_hashes) return true;
    uint64_t h = mamori_hash64(key, len);
    return bsearch(&h, r->key_hashes, r->key_hash_count, sizeof h, seq_hash_cmp) != NULL;
}

int seq_feed_error(seq_run *r, int rc)
{
    if (rc == -E2BIG)
        return r->error = set_error(r->env->err, SEARCH_ERR_TOO_LARGE, -1,
                                    "sequence: more than %u join keys, %u waiting events of one key or %u in all "
                                    "in progress; narrow the range, the queries or maxspan",
                                    r->env->lim->max_sequence_keys, SEQ_EVENTS_PER_KEY_MAX, SEQ_EVENTS_MAX);
    return r->error = set_error(r->env->err, SEARCH_ERR_INTERNAL, -1, "sequence: events fed out of time order (%d)", rc);
}

/* Evaluates every stage and until on one event and feeds the machine. */
static int feed_event(seq_run *r, const store_event_ref *ref, const char *json, size_t len)
{
    const search_query *q = r->q;
    arena_reset(&r->a);
    json_value root;
    json_error jerr;
    r->env->st->events_parsed++;
    if (extract_event(r->jp, &r->a, &r->fs, json, len, &root, &jerr) != 0) return 0;
    seq_event sev = {.ref = *ref, .ts_us = ref->ts_us};
    uint32_t n = q->stage_count;
    /* group the matching stages by their join key (per-stage `by` fields may differ) */
    uint32_t done_mask = 0;
    for (uint32_t i = 0; i <= n; i++) {
        const event_query *st = i < n ? &q->stages[i] : (q->has_until ? &q->until : NULL);
        if (!st || (done_mask & (1u << i))) continue;
        if (!eval_query(&r->ev, st, &root)) continue;
        if (!key_build(&root, q->seq_by, q->seq_by_count, st->by, st->by_count, &r->key)) continue;
        if (!key_wanted(r, r->key.data, r->key.len)) continue;
        uint32_t mask = i < n ? (1u << i) : 0;
        bool until = i == n;
        done_mask |= 1u << i;
        for (uint32_t j = i + 1; j <= n; j++) {
            const event_query *sj = j < n ? &q->stages[j] : (q->has_until ? &q->until : NULL);
            if (!sj || !eval_query(&r->ev, sj, &root)) continue;
            if (!key_build(&root, q->seq_by, q->seq_by_count, sj->by, sj->by_count, &r->stage_key)) continue;
            if (r->stage_key.len != r->key.len || memcmp(r->stage_key.data, r->key.data, r->key.len) != 0) continue;
            done_mask |= 1u << j;
            if (j < n) mask |= 1u << j;
            else until = true;
        }
        int rc = seq_machine_feed(r->m, mask, until, r->key.data, r->key.len, &sev);
        if (rc < 0) return seq_feed_error(r, rc);
        if (rc) return 1;
    }
    return 0;
}

int seq_scan_feed(void *ctx, const store_event_ref *ref, const char *json, size_t len)
{
    seq_run *r = ctx;
    r->env->st->events_scanned++;
    if (env_deadline(r->env)) return 1;
    return feed_event(r, ref, json, len);
}

int seq_fetch_feed(seq_run *r, const store_event_ref *ref)
{
    if (env_deadline(r->env)) return 1;
    int rc = store_get_event(r->env->s, r->env->tenant_hash, ref->ts_us, ref->agent_hash, ref->seq, ref->index,
                             &r->json);
    r->env->st->events_fetched++;
    if (rc == -ENOENT) return 0;
    if (rc) return r->error = set_error(r->env->err, SEARCH_ERR_INTERNAL, -1, "event read failed: %d", rc);
    return feed_event(r, ref, r->json.data, r->json.len);
}

int seq_collect_ref(void *ctx, const store_event_ref *ref)
{
    ref_list *l = ctx;
    l->env->st->refs_read++;
    if (env_deadline(l->env)) return 1;
    if (l->stop_at && l->n >= l->stop_at) return 1;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->v = mamori_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = *ref;
    return 0;
}

/* Every stage's candidates, or the whole range. */
static int run_full(seq_run *r, int64_t from, int64_t to)
{
    const search_query *q = r->q;
    exec_env *env = r->env;
    uint32_t n = q->stage_count + (q->has_until ? 1u : 0u);
    ref_list all = {.env = env};
    bool use_index = true;
    for (uint32_t i = 0; i < n && use_index; i++) {
        const event_query *st = i < q->stage_count ? &q->stages[i] : &q->until;
        plan p;
        int rc = plan_build(env, st, from, to, SEQ_SAMPLE_CAP, false, &p);
        if (rc) {
            plan_fini(&p);
            free(all.v);
            return rc;
        }
        if (p.kind == PLAN_INDEX_SET && all.n + p.set_count <= env->lim->max_candidates) {
            for (size_t k = 0; k < p.set_count; k++) seq_collect_ref(&all, &p.set[k]);
        } else if (p.kind == PLAN_INDEX_STREAM) {
            size_t before = all.n;
            /* one ref over the limit is enough to know the index is not used: stop there */
            all.stop_at = before + env->lim->max_candidates + 1;
            rc = cand_stream(env, &p.cands[p.stream_cand], from, to, seq_collect_ref, &all);
            all.stop_at = 0;
            if (rc) {
                plan_fini(&p);
                free(all.v);
                return rc;
            }
            if (all.n - before > env->lim->max_candidates) use_index = false;
        } else {
            use_index = false;
        }
        plan_fini(&p);
        if (env->deadline_hit) break;
    }
    int rc = 0;
    if (use_index && !env->deadline_hit) {
        env->st->plan = "sequence_index_union";
        qsort(all.v, all.n, sizeof *all.v, ref_order);
        for (size_t k = 0; k < all.n && !r->error; k++) {
            if (k && search_ref_cmp(&all.v[k], &all.v[k - 1]) == 0) continue;
            if (seq_fetch_feed(r, &all.v[k])) break;
        }
    } else if (!env->deadline_hit) {
        env->st->plan = "sequence_scan";
        rc = store_scan_events(env->s, env->tenant, from, to, seq_scan_feed, r);
        if (rc < 0) rc = set_error(env->err, SEARCH_ERR_INTERNAL, -1, "event scan failed: %d", rc);
        else rc = 0;
    }
    free(all.v);
    return rc;
}

static int pick_seed(exec_env *env, const search_query *q, int64_t from, int64_t to, int *seed)
{
    *seed = -1;
    size_t best = SIZE_MAX;
    for (uint32_t i = 0; i < q->stage_count; i++) {
        plan p;
        int rc = plan_build(env, &q->stages[i], from, to, SEQ_SAMPLE_CAP, false, &p);
        if (!rc && p.kind == PLAN_INDEX_SET && p.set_count < best) {
            best = p.set_count;
            *seed = (int)i;
        }
        plan_fini(&p);
        if (rc) return rc;
        if (env->deadline_hit) return 0;
    }
    return 0;
}

int exec_sequence(exec_env *env, const search_query *q, const search_request *req, const cursor_state *cur, buf *out)
{
    uint64_t qhash = request_hash(q, req->from_us, req->to_us);
    const pipe_op *head = NULL, *count = NULL;
    for (uint32_t i = 0; i < q->pipe_count; i++) {
        if (q->pipes[i].kind == PIPE_HEAD) head = &q->pipes[i];
        else if (q->pipes[i].kind == PIPE_COUNT) count = &q->pipes[i];
    }
    uint64_t cap = head ? head->n : UINT64_MAX;
    if (!count && cap != UINT64_MAX && cap > env->lim->max_result_rows)
        return set_error(env->err, SEARCH_ERR_TOO_LARGE, (int32_t)head->pos, "head %llu is over the limit of %u rows",
                         (unsigned long long)cap, env->lim->max_result_rows);
    uint64_t remaining = cur ? cur->remaining : cap;
    seq_run r;
    memset(&r, 0, sizeof r);
    r.env = env;
    r.q = q;
    r.count_only = count != NULL;
    r.want = (size_t)MAMORI_MIN((uint64_t)req->limit, remaining);
    r.heap = mamori_xcalloc(r.want + 1, sizeof *r.heap);
    r.m = seq_machine_create(q->stage_count, q->maxspan_us, env->lim->max_sequence_keys, on_done, &r);
    eval_ctx_init(&r.ev);
    r.jp = json_parser_create();
    arena_init(&r.a, 64 * 1024);
    buf_init(&r.json);
    buf_init(&r.key);
    buf_init(&r.stage_key);
    for (uint32_t i = 0; i < q->stage_count; i++) field_set_add_query(&r.fs, &q->stages[i]);
    if (q->has_until) field_set_add_query(&r.fs, &q->until);
    for (uint32_t i = 0; i < q->seq_by_count; i++) field_set_add(&r.fs, &q->seq_by[i]);
    int64_t from = req->from_us;
    if (cur) {
        r.after = cur->after;
        r.has_after = true;
        /* the run starts over from the range's start: which matches a sequence consumed
         * before the cursor depends on everything before it, so a later start could pair
         * the events after it differently */
    }
    int rc = 0;
    int seed = -1;
    if (q->maxspan_us) rc = pick_seed(env, q, from, req->to_us, &seed);
    if (!rc && !env->deadline_hit) {
        if (seed >= 0) rc = seq_run_seeded(&r, seed, from, req->to_us);
        else rc = run_full(&r, from, req->to_us);
    }
    if (!rc && r.error) rc = r.error;
    if (!rc && env->deadline_hit)
        rc = set_error(env->err, SEARCH_ERR_DEADLINE, -1,
                       "sequence deadline passed; narrow the time range or make one query selective through an index");
    if (!rc && count) {
        uint64_t n = r.total;
        if (cap != UINT64_MAX && n > cap) n = cap;
        buf_printf(out, "{\"count\":%llu}", (unsigned long long)n);
        env->st->rows = 1;
    } else if (!rc) {
        /* sort the kept completions by their last event */
        size_t n = r.heap_n;
        while (r.heap_n > 1) {
            found_seq t = r.heap[0];
            r.heap[0] = r.heap[--r.heap_n];
            r.heap[r.heap_n] = t;
            heap_sift_down(r.heap, r.heap_n, 0);
        }
        buf_puts(out, "{\"sequences\":[");
        for (size_t i = 0; i < n && !rc; i++) {
            found_seq *f = &r.heap[i];
            if (i) buf_putc(out, ',');
            buf_puts(out, "{\"by\":");
            key_write_by(out, f->key, f->key_len, q->seq_by, q->seq_by_count, q->stages[0].by, q->stages[0].by_count);
            buf_puts(out, ",\"events\":[");
            for (uint32_t k = 0; k < f->n; k++) {
                const store_event_ref *ref = &f->evs[k].ref;
                int grc = store_get_event(env->s, env->tenant_hash, ref->ts_us, ref->agent_hash, ref->seq, ref->index,
                                          &r.json);
                if (grc) {
                    rc = set_error(env->err, SEARCH_ERR_INTERNAL, -1, "event read failed: %d", grc);
                    break;
                }
                if (k) buf_putc(out, ',');
                search_render_event(out, r.json.data, r.json.len, ref);
            }
            buf_puts(out, "]}");
        }
        buf_putc(out, ']');
        uint64_t left = remaining == UINT64_MAX ? UINT64_MAX : remaining - n;
        if (!rc && n > 0 && r.total > n && left > 0) {
            cursor_state c = {.kind = 3, .after = r.heap[n - 1].evs[r.heap[n - 1].n - 1].ref, .remaining = left};
            char text[SEARCH_CURSOR_MAX_CHARS + 1];
            cursor_stamp(&c, req);
                cursor_encode(&c, qhash, text);
            buf_printf(out, ",\"cursor\":\"%s\"", text);
        }
        buf_putc(out, '}');
        env->st->rows = n;
        r.heap_n = n;
    }
    for (size_t i = 0; i < r.heap_n; i++) free(r.heap[i].key);
    free(r.heap);
    free(r.key_hashes);
    seq_machine_destroy(r.m);
    eval_ctx_fini(&r.ev);
    json_parser_destroy(r.jp);
    arena_fini(&r.a);
    buf_fini(&r.json);
    buf_fini(&r.key);
    buf_fini(&r.stage_key);
    return rc;
}

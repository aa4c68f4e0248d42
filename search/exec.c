/* search/exec.c — running a one-event query: the matcher walks the plan's events (an
 * intersected index set, one streamed posting list, or a range scan behind a raw-text
 * prefilter, on several threads for pages and counts), checks each against the whole
 * condition (parsing only the fields it reads), and hands matches to the pipe being
 * answered: a page of events, head, tail (searched backwards in growing windows), count, or
 * count by. Pages continue after a cursor holding the last position examined. */
#include "internal.h"

#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SAMPLE_CAP 65536u
#define MAX_NEEDLES 8u

static int count_emit(void *ctx, const store_event_ref *ref, const char *json, size_t len, const json_value *root);
static const match_fn count_emit_ptr = count_emit;

typedef struct matcher {
    exec_env *env;
    const event_query *eq;
    eval_ctx ev;
    json_parser *jp;
    arena a;
    arena needle_arena;
    buf json;
    needle needles[MAX_NEEDLES];
    size_t needle_count;
    field_set fs; /* what the condition and the consumer read: all an event is parsed for */
    store_event_ref after;
    bool has_after;
    match_fn fn;
    void *ctx;
    store_event_ref examined;
    bool has_examined;
    bool stopped; /* fn asked to stop */
    bool count_refs_only;
    uint64_t ref_count;
    int error;
    /* range scans on several threads: what the consumer allows (see scan_parallel) */
    enum { PAR_NONE = 0, PAR_PAGE, PAR_COUNT, PAR_GROUPS } parallel;
    size_t keep_max; /* PAR_PAGE: rows the page can still take */
    bool matched;    /* a worker's last event matched */
} matcher;

static void matcher_init(matcher *m, exec_env *env, const event_query *eq, match_fn fn, void *ctx)
{
    memset(m, 0, sizeof *m);
    m->env = env;
    m->eq = eq;
    m->fn = fn;
    m->ctx = ctx;
    eval_ctx_init(&m->ev);
    m->jp = json_parser_create();
    arena_init(&m->a, 64 * 1024);
    arena_init(&m->needle_arena, 4096);
    buf_init(&m->json);
    m->needle_count = collect_needles(eq, &m->needle_arena, m->needles, MAX_NEEDLES);
    field_set_add_query(&m->fs, eq);
}

static void matcher_fini(matcher *m)
{
    eval_ctx_fini(&m->ev);
    json_parser_destroy(m->jp);
    arena_fini(&m->a);
    arena_fini(&m->needle_arena);
    buf_fini(&m->json);
}

/* 1 to stop the walk, 0 to go on. */
static int check_event(matcher *m, const store_event_ref *ref, const char *json, size_t len)
{
    m->examined = *ref;
    m->has_examined = true;
    if (!m->eq->category_node && m->eq->cond->kind == NODE_CONST) { /* nothing to look at */
        if (!m->eq->cond->value) return 0;
        if (m->fn == count_emit_ptr) {
            (*(uint64_t *)m->ctx)++;
            return 0;
        }
    }
    for (size_t i = 0; i < m->needle_count; i++)
        if (!raw_contains(json, len, &m->needles[i])) return 0;
    arena_reset(&m->a);
    json_value root;
    json_error jerr;
    m->env->st->events_parsed++;
    if (extract_event(m->jp, &m->a, &m->fs, json, len, &root, &jerr) != 0) {
        LOG_RATELIMITED(LOG_LEVEL_WARN, "search", 1, "stored event does not parse: %s", jerr.msg);
        return 0;
    }
    if (!eval_query(&m->ev, m->eq, &root)) return 0;
    if (m->fn(m->ctx, ref, json, len, &root)) {
        m->stopped = true;
        return 1;
    }
    return 0;
}

static bool after_cursor(const matcher *m, const store_event_ref *ref)
{
    return !m->has_after || search_ref_cmp(ref, &m->after) > 0;
}

static int fetch_and_check(matcher *m, const store_event_ref *ref)
{
    if (env_deadline(m->env)) return 1;
    if (!after_cursor(m, ref)) return 0;
    if (m->count_refs_only) {
        m->ref_count++;
        m->examined = *ref;
        m->has_examined = true;
        return 0;
    }
    int rc = store_get_event(m->env->s, m->env->tenant_hash, ref->ts_us, ref->agent_hash, ref->seq, ref->index,
                             &m->json);
    m->env->st->events_fetched++;
    if (rc == -ENOENT) return 0; /* removed by retention meanwhile */
    if (rc) {
        m->error = set_error(m->env->err, SEARCH_ERR_INTERNAL, -1, "event read failed: %d", rc);
        return 1;
    }
    return check_event(m, ref, m->json.data, m->json.len);
}

static int stream_ref(void *ctx, const store_event_ref *ref)
{
    matcher *m = ctx;
    m->env->st->refs_read++;
    return fetch_and_check(m, ref);
}

static int scan_event(void *ctx, const store_event_ref *ref, const char *json, size_t len)
{
    matcher *m = ctx;
    m->env->st->events_scanned++;
    if (env_deadline(m->env)) return 1;
    if (!after_cursor(m, ref)) return 0;
    return check_event(m, ref, json, len);
}

static int scan_parallel(matcher *m, int64_t from_us, int64_t to_us);

/* Walks every match in [from, to) after m->after. Returns 0 (also when stopped or past
 * the deadline: see m->stopped, env->deadline_hit) or a negative errno. */
static int matcher_run(matcher *m, int64_t from_us, int64_t to_us, plan *p_out)
{
    exec_env *env = m->env;
    if (m->has_after && m->after.ts_us > from_us) from_us = m->after.ts_us;
    if (from_us >= to_us) return 0;
    plan p;
    int rc = plan_build(env, m->eq, from_us, to_us, SAMPLE_CAP, false, &p);
    if (rc) {
        plan_fini(&p);
        return rc;
    }
    if (env->deadline_hit) {
        plan_fini(&p);
        return 0;
    }
    static const char *const names[] = {"scan", "index_stream", "index_set"};
    env->st->plan = names[p.kind];
    switch (p.kind) {
    case PLAN_INDEX_SET:
        env->st->refs_read += 0;
        for (size_t i = 0; i < p.set_count; i++)
            if (fetch_and_check(m, &p.set[i])) break;
        break;
    case PLAN_INDEX_STREAM: rc = cand_stream(env, &p.cands[p.stream_cand], from_us, to_us, stream_ref, m); break;
    case PLAN_SCAN: {
        if (m->parallel && env->lim->scan_threads > 1) {
            rc = scan_parallel(m, from_us, to_us);
        } else {
            rc = store_scan_events(env->s, env->tenant, from_us, to_us, scan_event, m);
            if (rc < 0) rc = set_error(env->err, SEARCH_ERR_INTERNAL, -1, "event scan failed: %d", rc);
        }
        break;
    }
    }
    if (p_out) *p_out = p;
    else plan_fini(&p);
    if (!rc && m->error) rc = m->error;
    return rc;
}

/* ---- pages of events ---- */

typedef struct page_ctx {
    buf *out;
    uint64_t rows, want;
    store_event_ref last;
} page_ctx;

static int page_emit(void *ctx, const store_event_ref *ref, const char *json, size_t len, const json_value *root)
{
    (void)root;
    page_ctx *pc = ctx;
    if (pc->rows) buf_putc(pc->out, ',');
    search_render_event(pc->out, json, len, ref);
    pc->rows++;
    pc->last = *ref;
    return pc->rows >= pc->want;
}

/* ---- tail: kept events ---- */

typedef struct kept {
    store_event_ref ref;
    char *json;
    size_t len;
} kept;

typedef struct tail_ctx {
    kept *ring;
    uint64_t n, count, head; /* ring of the last n matches of the window */
} tail_ctx;

static int tail_emit(void *ctx, const store_event_ref *ref, const char *json, size_t len, const json_value *root)
{
    (void)root;
    tail_ctx *t = ctx;
    kept *k = &t->ring[(t->head + t->count) % t->n];
    if (t->count == t->n) {
        k = &t->ring[t->head];
        t->head = (t->head + 1) % t->n;
    } else {
        t->count++;
    }
    free(k->json);
    k->json = mamori_xmalloc(len);
    memcpy(k->json, json, len);
    k->len = len;
    k->ref = *ref;
    return 0;
}

/* ---- count by ---- */

typedef struct group {
    char *key;
    uint32_t key_len;
    uint64_t count;
} group;

typedef struct group_ctx {
    const pipe_op *po;
    group *groups;
    uint32_t count, cap;
    uint32_t *table; /* group + 1 */
    uint32_t mask;
    uint32_t max;
    bool over;
    buf key;
} group_ctx;

static void group_rehash(group_ctx *g)
{
    uint32_t size = (g->mask + 1) * 2;
    free(g->table);
    g->table = mamori_xcalloc(size, sizeof *g->table);
    g->mask = size - 1;
    for (uint32_t i = 0; i < g->count; i++) {
        uint32_t h = (uint32_t)mamori_hash64(g->groups[i].key, g->groups[i].key_len) & g->mask;
        while (g->table[h]) h = (h + 1) & g->mask;
        g->table[h] = i + 1;
    }
}

static void group_init(group_ctx *g, const pipe_op *po, uint32_t max)
{
    memset(g, 0, sizeof *g);
    g->po = po;
    g->max = max;
    g->mask = 255;
    g->table = mamori_xcalloc(256, sizeof *g->table);
    buf_init(&g->key);
}

static void group_fini(group_ctx *g)
{
    for (uint32_t i = 0; i < g->count; i++) free(g->groups[i].key);
    free(g->groups);
    free(g->table);
    buf_fini(&g->key);
}

/* Adds n to the group of key; 1 (and over) when a new group would pass the limit. */
static int group_add(group_ctx *g, const char *key, size_t key_len, uint64_t n)
{
    uint32_t h = (uint32_t)mamori_hash64(key, key_len) & g->mask;
    while (g->table[h]) {
        group *gr = &g->groups[g->table[h] - 1];
        if (gr->key_len == key_len && memcmp(gr->key, key, key_len) == 0) {
            gr->count += n;
            return 0;
        }
        h = (h + 1) & g->mask;
    }
    if (g->count >= g->max) {
        g->over = true;
        return 1;
    }
    if (g->count == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 256;
        g->groups = mamori_xrealloc(g->groups, g->cap * sizeof *g->groups);
    }
    group *gr = &g->groups[g->count];
    gr->key = mamori_xmalloc(key_len ? key_len : 1);
    memcpy(gr->key, key, key_len);
    gr->key_len = (uint32_t)key_len;
    gr->count = n;
    g->table[h] = ++g->count;
    if (g->count * 2 > g->mask) group_rehash(g);
    return 0;
}

static int group_emit(void *ctx, const store_event_ref *ref, const char *json, size_t len, const json_value *root)
{
    (void)ref;
    (void)json;
    (void)len;
    group_ctx *g = ctx;
    buf_clear(&g->key);
    for (uint32_t i = 0; i < g->po->by_count; i++) {
        const json_value *v = field_get(root, &g->po->by[i]);
        if (i) buf_putc(&g->key, '\x1f');
        if (v) json_write_value(&g->key, v);
        else buf_puts(&g->key, "null");
    }
    return group_add(g, g->key.data, g->key.len, 1);
}

static int group_order(const void *x, const void *y)
{
    const group *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    int c = memcmp(a->key, b->key, MAMORI_MIN(a->key_len, b->key_len));
    if (c) return c;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

static int count_emit(void *ctx, const store_event_ref *ref, const char *json, size_t len, const json_value *root)
{
    (void)ref;
    (void)json;
    (void)len;
    (void)root;
    uint64_t *c = ctx;
    (*c)++;
    return 0;
}

/* ---- range scans on several threads ---- */

static int keep_emit(void *ctx, const store_event_ref *ref, const char *json, size_t len, const json_value *root)
{
    (void)ref;
    (void)json;
    (void)len;
    (void)root;
    ((matcher *)ctx)->matched = true;
    return 0;
}

static int par_check(void *worker, const store_event_ref *ref, const char *json, size_t len)
{
    matcher *w = worker;
    w->env->st->events_scanned++;
    if (env_deadline(w->env)) return PSCAN_DEADLINE;
    if (!after_cursor(w, ref)) return PSCAN_NO;
    w->matched = false;
    if (check_event(w, ref, json, len)) return PSCAN_STOP;
    return w->matched ? PSCAN_MATCH : PSCAN_NO;
}

/* A worker's match, handed over in time order: checked again here (it matches) so the
 * consumer gets its parsed root on this thread. */
static int par_take(void *ctx, const store_event_ref *ref, const char *json, size_t len)
{
    matcher *m = ctx;
    return check_event(m, ref, json, len);
}

/* The PLAN_SCAN walk of matcher_run on lim->scan_threads threads: workers are matchers of
 * their own (parser, arena, environment copy); pages keep matches per part and are fed to
 * m's consumer in order, counts and groups are summed at the end. */
static int scan_parallel(matcher *m, int64_t from_us, int64_t to_us)
{
    exec_env *env = m->env;
    uint32_t n = env->lim->scan_threads;
    matcher *w = mamori_xcalloc(n, sizeof *w);
    exec_env *envs = mamori_xcalloc(n, sizeof *envs);
    search_stats *sts = mamori_xcalloc(n, sizeof *sts);
    uint64_t *counts = mamori_xcalloc(n, sizeof *counts);
    group_ctx *groups = m->parallel == PAR_GROUPS ? mamori_xcalloc(n, sizeof *groups) : NULL;
    void **workers = mamori_xcalloc(n, sizeof *workers);
    const group_ctx *mg = m->parallel == PAR_GROUPS ? m->ctx : NULL;
    for (uint32_t i = 0; i < n; i++) {
        envs[i] = *env;
        envs[i].st = &sts[i];
        envs[i].deadline_hit = false;
        envs[i].tick = 0;
        if (m->parallel == PAR_GROUPS) {
            group_init(&groups[i], mg->po, mg->max);
            matcher_init(&w[i], &envs[i], m->eq, group_emit, &groups[i]);
        } else if (m->parallel == PAR_COUNT) {
            matcher_init(&w[i], &envs[i], m->eq, count_emit, &counts[i]);
        } else {
            matcher_init(&w[i], &envs[i], m->eq, keep_emit, &w[i]);
        }
        w[i].fs = m->fs;
        w[i].after = m->after;
        w[i].has_after = m->has_after;
        workers[i] = &w[i];
    }
    pscan ps = {.s = env->s, .tenant = env->tenant, .from_us = from_us, .to_us = to_us, .workers = workers,
                .worker_count = n, .check = par_check};
    if (m->parallel == PAR_PAGE) {
        ps.take = par_take;
        ps.take_ctx = m;
        ps.keep_max = m->keep_max;
    }
    int rc = pscan_run(&ps);
    if (rc < 0) rc = set_error(env->err, SEARCH_ERR_INTERNAL, -1, "event scan failed: %d", rc);
    for (uint32_t i = 0; i < n; i++) {
        env->st->events_scanned += sts[i].events_scanned;
        env->st->events_parsed += sts[i].events_parsed;
        if (m->parallel == PAR_COUNT) *(uint64_t *)m->ctx += counts[i];
        if (m->parallel == PAR_GROUPS) {
            group_ctx *g = m->ctx;
            if (groups[i].over) g->over = true;
            for (uint32_t k = 0; k < groups[i].count && !g->over; k++)
                (void)group_add(g, groups[i].groups[k].key, groups[i].groups[k].key_len, groups[i].groups[k].count);
            group_fini(&groups[i]);
        }
        matcher_fini(&w[i]);
    }
    if (ps.deadline_hit) env->deadline_hit = true;
    if (ps.stopped && m->parallel == PAR_PAGE) m->stopped = true;
    if (ps.has_examined && !m->stopped) {
        m->examined = ps.examined;
        m->has_examined = true;
    }
    free(w);
    free(envs);
    free(sts);
    free(counts);
    free(groups);
    free(workers);
    return rc;
}

static int deadline_error(exec_env *env, const search_request *req, const matcher *m, uint64_t remaining,
                          uint64_t qhash)
{
    int rc = set_error(env->err, SEARCH_ERR_DEADLINE, -1,
                       "query deadline passed before a row was found; narrow the time range, add an indexed "
                       "predicate, or continue with the cursor");
    if (m && m->has_examined) {
        cursor_state c = {.kind = 1, .after = m->examined, .remaining = remaining};
        cursor_stamp(&c, req);
        cursor_encode(&c, qhash, env->err->cursor);
    }
    return rc;
}

int exec_filter(exec_env *env, const search_query *q, const search_request *req, const cursor_state *cur, buf *out)
{
    const event_query *eq = &q->filter;
    uint64_t qhash = request_hash(q, req->from_us, req->to_us);
    const pipe_op *head = NULL, *tail = NULL, *count = NULL;
    for (uint32_t i = 0; i < q->pipe_count; i++) {
        if (q->pipes[i].kind == PIPE_HEAD) head = &q->pipes[i];
        else if (q->pipes[i].kind == PIPE_TAIL) tail = &q->pipes[i];
        else count = &q->pipes[i];
    }
    uint64_t cap = head ? head->n : tail ? tail->n : UINT64_MAX;
    if (!count && cap != UINT64_MAX && cap > env->lim->max_result_rows)
        return set_error(env->err, SEARCH_ERR_TOO_LARGE, (int32_t)(head ? head->pos : tail->pos),
                         "head/tail %llu is over the limit of %u rows", (unsigned long long)cap,
                         env->lim->max_result_rows);
    matcher m;
    int rc = 0;

    if (count && count->by_count == 0) {
        /* total */
        uint64_t n = 0;
        matcher_init(&m, env, eq, count_emit, &n);
        if (tail || head) {
            /* the count of a head/tail is min(N, total) */
        }
        plan p;
        int64_t from = req->from_us, to = req->to_us;
        rc = plan_build(env, eq, from, to, SAMPLE_CAP, true, &p);
        if (!rc && !env->deadline_hit && p.all_exact &&
            ((p.kind == PLAN_INDEX_SET && p.all_applied) || (p.kind == PLAN_INDEX_STREAM && p.cand_count == 1))) {
            env->st->plan = "index_count";
            if (p.kind == PLAN_INDEX_SET) n = p.set_count;
            else {
                m.count_refs_only = true;
                rc = cand_stream(env, &p.cands[p.stream_cand], from, to, stream_ref, &m);
                n = m.ref_count;
            }
            plan_fini(&p);
        } else {
            plan_fini(&p);
            m.parallel = PAR_COUNT;
            if (!rc) rc = matcher_run(&m, from, to, NULL);
        }
        matcher_fini(&m);
        if (rc) return rc;
        if (env->deadline_hit) return deadline_error(env, req, NULL, 0, qhash);
        if (cap != UINT64_MAX && n > cap) n = cap;
        buf_printf(out, "{\"count\":%llu}", (unsigned long long)n);
        env->st->rows = 1;
        return 0;
    }

    if (count) {
        /* count by: every match of the range, grouped */
        if (head || tail)
            return set_error(env->err, SEARCH_ERR_BAD_QUERY, (int32_t)count->pos,
                             "'count by' after head/tail is not supported, at offset %u", count->pos);
        group_ctx g;
        group_init(&g, count, env->lim->max_groups);
        matcher_init(&m, env, eq, group_emit, &g);
        m.parallel = PAR_GROUPS;
        for (uint32_t i = 0; i < count->by_count; i++) field_set_add(&m.fs, &count->by[i]);
        rc = matcher_run(&m, req->from_us, req->to_us, NULL);
        matcher_fini(&m);
        if (!rc && g.over)
            rc = set_error(env->err, SEARCH_ERR_TOO_LARGE, (int32_t)count->pos,
                           "count by: more than %u groups; add a condition or narrow the range", g.max);
        if (!rc && env->deadline_hit) rc = deadline_error(env, req, NULL, 0, qhash);
        if (!rc) {
            qsort(g.groups, g.count, sizeof *g.groups, group_order);
            uint64_t offset = cur ? cur->offset : 0;
            buf_puts(out, "{\"counts\":[");
            uint64_t shown = 0;
            for (uint64_t i = offset; i < g.count && shown < req->limit; i++, shown++) {
                if (shown) buf_putc(out, ',');
                buf_puts(out, "{\"by\":");
                key_write_by(out, g.groups[i].key, g.groups[i].key_len, count->by, count->by_count, NULL, 0);
                buf_printf(out, ",\"count\":%llu}", (unsigned long long)g.groups[i].count);
            }
            buf_putc(out, ']');
            if (offset + shown < g.count) {
                cursor_state c = {.kind = 2, .offset = offset + shown};
                char text[SEARCH_CURSOR_MAX_CHARS + 1];
                cursor_stamp(&c, req);
                cursor_encode(&c, qhash, text);
                buf_printf(out, ",\"cursor\":\"%s\"", text);
            }
            buf_putc(out, '}');
            env->st->rows = shown;
        }
        group_fini(&g);
        return rc;
    }

    uint64_t remaining = cur ? cur->remaining : cap;
    if (tail && !cur) {
        /* the last N matches: windows growing backwards from `to` */
        tail_ctx t = {.n = tail->n};
        t.ring = mamori_xcalloc(t.n, sizeof *t.ring);
        kept *all = NULL;
        uint64_t all_count = 0;
        int64_t end = req->to_us;
        int64_t span = MAMORI_MAX((int64_t)60 * 1000000, (req->to_us - req->from_us) / 256);
        while (end > req->from_us && all_count < t.n && !rc) {
            int64_t start = end - span < req->from_us || end - span > end ? req->from_us : end - span;
            t.count = t.head = 0;
            matcher_init(&m, env, eq, tail_emit, &t);
            rc = matcher_run(&m, start, end, NULL);
            matcher_fini(&m);
            if (rc || env->deadline_hit) break;
            /* prepend the window's last matches, keep at most n */
            uint64_t take = MAMORI_MIN(t.count, t.n - all_count);
            kept *merged = mamori_xcalloc(all_count + take + 1, sizeof *merged);
            for (uint64_t i = 0; i < take; i++) {
                kept *k = &t.ring[(t.head + t.count - take + i) % t.n];
                merged[i] = *k;
                k->json = NULL;
            }
            if (all_count) memcpy(merged + take, all, all_count * sizeof *all);
            free(all);
            all = merged;
            all_count += take;
            end = start;
            span = span > INT64_MAX / 4 ? INT64_MAX : span * 4;
        }
        for (uint64_t i = 0; i < t.n; i++) free(t.ring[i].json);
        free(t.ring);
        if (!rc && env->deadline_hit) rc = deadline_error(env, req, NULL, 0, qhash);
        if (!rc) {
            uint64_t shown = MAMORI_MIN(all_count, (uint64_t)req->limit);
            buf_puts(out, "{\"events\":[");
            for (uint64_t i = 0; i < shown; i++) {
                if (i) buf_putc(out, ',');
                search_render_event(out, all[i].json, all[i].len, &all[i].ref);
            }
            buf_putc(out, ']');
            if (shown < all_count) {
                cursor_state c = {.kind = 1, .after = all[shown - 1].ref, .remaining = all_count - shown};
                char text[SEARCH_CURSOR_MAX_CHARS + 1];
                cursor_stamp(&c, req);
                cursor_encode(&c, qhash, text);
                buf_printf(out, ",\"cursor\":\"%s\"", text);
            }
            buf_putc(out, '}');
            env->st->rows = shown;
        }
        for (uint64_t i = 0; i < all_count; i++) free(all[i].json);
        free(all);
        return rc;
    }

    /* a page of events (also head N, and later pages of tail N) */
    page_ctx pc = {.out = out, .want = MAMORI_MIN((uint64_t)req->limit, remaining)};
    buf_puts(out, "{\"events\":[");
    if (pc.want > 0) {
        matcher_init(&m, env, eq, page_emit, &pc);
        m.parallel = PAR_PAGE;
        m.keep_max = pc.want;
        if (cur) {
            m.after = cur->after;
            m.has_after = true;
        }
        rc = matcher_run(&m, req->from_us, req->to_us, NULL);
        if (!rc && env->deadline_hit && pc.rows == 0) rc = deadline_error(env, req, &m, remaining, qhash);
        if (!rc) {
            buf_putc(out, ']');
            uint64_t left = remaining == UINT64_MAX ? UINT64_MAX : remaining - pc.rows;
            bool more = left > 0 && (m.stopped || env->deadline_hit);
            if (more) {
                cursor_state c = {.kind = 1, .after = m.stopped ? pc.last : m.examined, .remaining = left};
                char text[SEARCH_CURSOR_MAX_CHARS + 1];
                cursor_stamp(&c, req);
                cursor_encode(&c, qhash, text);
                buf_printf(out, ",\"cursor\":\"%s\"", text);
            }
            buf_putc(out, '}');
        }
        matcher_fini(&m);
    } else {
        buf_puts(out, "]}");
    }
    env->st->rows = pc.rows;
    return rc;
}

int search_each_match(exec_env *env, const event_query *eq, int64_t from_us, int64_t to_us, const field_set *reads,
                      match_fn fn, void *ctx)
{
    matcher m;
    matcher_init(&m, env, eq, fn, ctx);
    if (reads && reads->all) m.fs.all = true;
    for (uint32_t i = 0; reads && i < reads->n; i++) field_set_add(&m.fs, reads->v[i]);
    int rc = matcher_run(&m, from_us, to_us, NULL);
    matcher_fini(&m);
    return rc;
}

/* ---- entry points ---- */

const char *search_error_code_name(enum search_error_code code)
{
    switch (code) {
    case SEARCH_ERR_NONE: return "none";
    case SEARCH_ERR_BAD_QUERY: return "bad_query";
    case SEARCH_ERR_BAD_REQUEST: return "bad_request";
    case SEARCH_ERR_TOO_LARGE: return "too_large";
    case SEARCH_ERR_DEADLINE: return "deadline_exceeded";
    case SEARCH_ERR_INTERNAL: return "internal";
    }
    return "internal";
}

void search_limits_default(search_limits *lim)
{
    lim->max_result_rows = 10000;
    lim->max_groups = 100000;
    lim->max_sequence_keys = 1000000;
    lim->max_candidates = 4000000;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    lim->scan_threads = cpus < 1 ? 1u : cpus > 4 ? 4u : (uint32_t)cpus;
}

int search_compile(const char *text, size_t len, search_query **out, search_error *err)
{
    *out = NULL;
    if (len == 0) return set_error(err, SEARCH_ERR_BAD_QUERY, 0, "empty query");
    if (len > SEARCH_MAX_QUERY_BYTES)
        return set_error(err, SEARCH_ERR_BAD_QUERY, (int32_t)SEARCH_MAX_QUERY_BYTES,
                         "query of %zu bytes is over the %u-byte limit", len, SEARCH_MAX_QUERY_BYTES);
    if (memchr(text, '\0', len)) {
        const char *z = memchr(text, '\0', len);
        return set_error(err, SEARCH_ERR_BAD_QUERY, (int32_t)(z - text), "NUL byte in query at offset %zu",
                         (size_t)(z - text));
    }
    search_query *q = mamori_xcalloc(1, sizeof *q);
    arena_init(&q->a, 16 * 1024);
    q->text = arena_strndup(&q->a, text, len);
    q->text_len = len;
    q->text_hash = mamori_hash64(text, len);
    int rc = parse_query(q, err);
    if (!rc) {
        uint32_t windows = 0;
        for (uint32_t i = 0; i < q->pipe_count; i++) {
            if (q->pipes[i].kind != PIPE_COUNT && ++windows > 1) {
                rc = set_error(err, SEARCH_ERR_BAD_QUERY, (int32_t)q->pipes[i].pos,
                               "only one head or tail pipe is supported, at offset %u", q->pipes[i].pos);
                break;
            }
            if (q->is_sequence && q->pipes[i].kind == PIPE_TAIL) {
                rc = set_error(err, SEARCH_ERR_BAD_QUERY, (int32_t)q->pipes[i].pos,
                               "'tail' after a sequence is not supported, at offset %u", q->pipes[i].pos);
                break;
            }
        }
    }
    if (rc) {
        search_query_destroy(q);
        return rc;
    }
    *out = q;
    return 0;
}

void search_query_destroy(search_query *q)
{
    if (!q) return;
    query_free_patterns(q);
    arena_fini(&q->a);
    free(q);
}

static void explain_query(exec_env *env, const event_query *eq, const char *name, const search_request *req, buf *out)
{
    plan p;
    buf_printf(out, "{\"query\":\"%s\",\"offset\":%u,\"plan\":", name, eq->pos);
    if (plan_build(env, eq, req->from_us, req->to_us, SAMPLE_CAP, false, &p) == 0) plan_explain(&p, out);
    else buf_puts(out, "null");
    plan_fini(&p);
    buf_putc(out, '}');
}

int search_execute(store *s, const search_query *q, const search_request *req, const search_limits *lim, buf *out,
                   search_stats *st, search_error *err)
{
    MAMORI_ASSERT(s && q && req && lim && out && st && err);
    memset(st, 0, sizeof *st);
    memset(err, 0, sizeof *err);
    err->position = -1;
    if (req->from_us >= req->to_us) return set_error(err, SEARCH_ERR_BAD_REQUEST, -1, "'from' must be before 'to'");
    if (req->limit == 0 || req->limit > lim->max_result_rows)
        return set_error(err, SEARCH_ERR_TOO_LARGE, -1, "limit must be 1..%u", lim->max_result_rows);
    exec_env env = {.s = s, .tenant = req->tenant, .tenant_hash = event_tenant_hash(req->tenant), .lim = lim,
                    .deadline_mono_us = req->deadline_mono_us, .st = st, .err = err};
    st->plan = "none";
    if (req->explain) {
        buf_puts(out, "{\"plan\":{");
        if (!q->is_sequence) {
            buf_puts(out, "\"type\":\"filter\",\"queries\":[");
            explain_query(&env, &q->filter, "filter", req, out);
        } else {
            buf_printf(out, "\"type\":\"sequence\",\"maxspan_us\":%lld,\"queries\":[", (long long)q->maxspan_us);
            for (uint32_t i = 0; i < q->stage_count; i++) {
                if (i) buf_putc(out, ',');
                explain_query(&env, &q->stages[i], "stage", req, out);
            }
            if (q->has_until) {
                buf_putc(out, ',');
                explain_query(&env, &q->until, "until", req, out);
            }
        }
        buf_puts(out, "]}}");
        st->plan = "explain";
        return 0;
    }
    cursor_state cur;
    bool has_cursor = req->cursor && req->cursor[0];
    if (has_cursor && (cursor_decode(req->cursor, request_hash(q, req->from_us, req->to_us), &cur) != 0 ||
                       cur.from_us != req->from_us || cur.to_us != req->to_us))
        return set_error(err, SEARCH_ERR_BAD_REQUEST, -1,
                         "bad cursor: it must come from the previous page of the same query, from and to");
    if (q->is_sequence) return exec_sequence(&env, q, req, has_cursor ? &cur : NULL, out);
    return exec_filter(&env, q, req, has_cursor ? &cur : NULL, out);
}

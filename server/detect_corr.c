/* server/detect_corr.c — Sigma correlation rules on the live stream (docs/detection.md §11.6).
 * The detection threads record the base-rule matches correlations use while they evaluate a
 * batch, and feed them here once the batch is durable — the moment its watermark may move —
 * under one lock: one engine per tenant, shared by every detection thread (the embedded
 * "match sink": a direct call). A batch is fed at most once (per agent, only batches above
 * the "fed up to" seq); the state and those seqs are checkpointed together in the `state`
 * column family, in the same write as alerts whose matches the state has consumed, so a
 * restart restores the state and re-feeds exactly the batches after the checkpoint. */
#include "detect_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "detect"
#define CORR_MARKS_KEY "corr/marks"
#define CORR_STATE_PREFIX "corr/st/"
#define CORR_STATE_PREFIX_LEN 8u
#define CORR_MARKS_MAGIC 0x4d434b50u /* "MCKP" */
#define CORR_MARKS_VERSION 1u

struct corr_gen {
    uint64_t generation;
    correlate_set *set;
    _Atomic unsigned refs;
};

typedef struct corr_tenant {
    uint64_t tenant_hash;
    char *tenant;
    correlate_engine *engine;
    uint64_t *versions; /* per correlation: its change count at the last checkpoint */
} corr_tenant;

typedef struct corr_mark {
    uint64_t tenant_hash, agent_hash, seq;
} corr_mark;

struct corr_rt {
    const mamori_config *cfg;
    store *db;
    pthread_mutex_t mu;      /* engines, marks, checkpoints */
    pthread_mutex_t swap_mu; /* pairs the slot's rule set with current (never held long) */
    corr_gen *current;       /* written under both locks, read under either */
    correlate_options opt;
    corr_tenant *tenants;
    uint32_t tenant_count, tenant_cap;
    /* "fed up to" per agent: open addressing, index + 1 */
    corr_mark *marks;
    uint32_t mark_count, mark_cap;
    uint32_t *table;
    uint32_t mask;
    int64_t anchor_us; /* newest receive time of a fed batch */
    uint32_t inflight; /* threads holding correlation alerts not written yet */
    bool full_due;     /* the next checkpoint rewrites every state (after restore, reload) */
    bool dirty;        /* batches fed since the last checkpoint */
    bool have_checkpoint;
    int64_t checkpoint_anchor_us; /* the stored checkpoint's anchor (start-up) */
    int64_t last_checkpoint_ms;
    corr_mark *prepared; /* durable seqs at start-up, before ingest opened */
    size_t prepared_count;
    correlate_stats retired; /* counters of engines a reload replaced */
    uint64_t fed_batches, refed_batches, checkpoints, checkpoint_errors, checkpoint_bytes, checkpoint_us_sum;
    uint64_t checkpoint_us_last, checkpoint_keys, alerts_raised, restored_keys, restore_errors;
};

/* ---- generations ---------------------------------------------------------------------------- */

corr_gen *corr_gen_create(uint64_t generation, correlate_set *set)
{
    corr_gen *g = mamori_xcalloc(1, sizeof *g);
    g->generation = generation;
    g->set = set;
    atomic_init(&g->refs, 1);
    return g;
}

corr_gen *corr_gen_ref(corr_gen *g)
{
    if (g) atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    return g;
}

void corr_gen_unref(corr_gen *g)
{
    if (!g) return;
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1) return;
    correlate_set_destroy(g->set);
    free(g);
}

size_t corr_gen_count(const corr_gen *g) { return g && g->set ? correlate_set_count(g->set) : 0; }
const correlate_set *corr_gen_set(const corr_gen *g) { return g ? g->set : NULL; }

bool corr_gen_standalone(const corr_gen *g, const detect_rule *rule)
{
    return !corr_gen_count(g) || correlate_set_rule_standalone(g->set, rule);
}

bool corr_gen_uses(const corr_gen *g, const detect_rule *rule)
{
    return corr_gen_count(g) && correlate_set_uses_rule(g->set, rule);
}

/* ---- alerts out ------------------------------------------------------------------------------- */

void corr_alerts_init(corr_alerts *a)
{
    memset(a, 0, sizeof *a);
    buf_init(&a->bodies);
}

void corr_alerts_fini(corr_alerts *a)
{
    free(a->v);
    free(a->rules);
    free(a->offsets);
    free(a->received_us);
    buf_fini(&a->bodies);
}

void corr_alerts_clear(corr_alerts *a)
{
    a->count = 0;
    buf_clear(&a->bodies);
}

void corr_alerts_fix(corr_alerts *a)
{
    for (uint32_t i = 0; i < a->count; i++) a->v[i].body = a->bodies.data + a->offsets[i];
}

static void write_str_or_null(buf *out, const json_value *v)
{
    if (json_is_string(v)) json_write_string(out, v->str, v->len);
    else buf_puts(out, "null");
}

static uint64_t hash_of(const json_value *v)
{
    return json_is_string(v) && v->len ? store_alert_term_hash(v->str, v->len) : 0;
}

typedef struct feed_ctx {
    const alert_source *src; /* the triggering event */
    corr_alerts *out;
    uint64_t raised;
} feed_ctx;

/* One stored alert per emitted correlation alert: id from correlate_alert_id (correlation,
 * group values, first contributing event), time = the window's last match. */
static void on_alert(void *ctx, const correlate_alert *ca)
{
    feed_ctx *f = ctx;
    if (!ca->emit) return;
    corr_alerts *o = f->out;
    const alert_source *src = f->src;
    const detect_rule *rule = &ca->rule->info;
    if (o->count == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 16;
        o->v = mamori_xrealloc(o->v, o->cap * sizeof *o->v);
        o->rules = mamori_xrealloc((void *)o->rules, o->cap * sizeof *o->rules);
        o->offsets = mamori_xrealloc(o->offsets, o->cap * sizeof *o->offsets);
        o->received_us = mamori_xrealloc(o->received_us, o->cap * sizeof *o->received_us);
    }
    uint32_t i = o->count++;
    store_alert *a = &o->v[i];
    memset(a, 0, sizeof *a);
    char hex[33];
    correlate_alert_id(ca, hex);
    if (store_alert_id_parse(hex, 32, a->id) != 0) MAMORI_ASSERT(!"correlate_alert_id is 32 hex digits");
    const char *key = rule->id[0] ? rule->id : rule->title;
    a->tenant_hash = src->tenant_hash;
    a->tenant = src->tenant;
    a->ts_us = ca->last_us;
    a->created_us = a->updated_us = src->now_us;
    a->level = (uint8_t)rule->level;
    a->status = STORE_ALERT_NEW;
    a->rule_hash = store_alert_term_hash(key, strlen(key));
    const json_value *host_id = event_get_cstr(src->ev, "host.id"), *host_name = event_get_cstr(src->ev, "host.name");
    a->host_id_hash = hash_of(host_id);
    a->host_name_hash = hash_of(host_name);
    a->assignee = "";
    o->rules[i] = rule;
    o->received_us[i] = src->received_us;
    buf *b = &o->bodies;
    o->offsets[i] = (uint32_t)b->len;
    char t[32], r[32], eid[EVENT_ID_HEX_CHARS + 1];
    clock_format_rfc3339(ca->last_us, t);
    clock_format_rfc3339(src->received_us, r);
    event_id_format(src->ts_us, src->agent_hash, src->seq, src->ev->index, eid);
    buf_printf(b, "{\"time\":\"%s\",\"received\":\"%s\",\"tenant\":", t, r);
    json_write_string(b, src->tenant, strlen(src->tenant));
    buf_puts(b, ",\"agent_id\":");
    json_write_string(b, src->agent_id, strlen(src->agent_id));
    buf_puts(b, ",\"host\":{\"id\":");
    write_str_or_null(b, host_id);
    buf_puts(b, ",\"name\":");
    write_str_or_null(b, host_name);
    buf_puts(b, "},\"rule\":");
    detect_rule_write_json(b, rule);
    buf_puts(b, ",\"correlation\":");
    correlate_alert_write_json(b, ca);
    /* the event whose match completed the correlation */
    buf_printf(b, ",\"event\":{\"id\":\"%s\",\"seq\":%llu,\"index\":%u}}", eid, (unsigned long long)src->seq,
               src->ev->index);
    a->body_len = (uint32_t)(b->len - o->offsets[i]);
    f->raised++;
}

/* ---- tenants and marks ---------------------------------------------------------------------- */

static corr_tenant *tenant_find(corr_rt *c, uint64_t th)
{
    for (uint32_t i = 0; i < c->tenant_count; i++)
        if (c->tenants[i].tenant_hash == th) return &c->tenants[i];
    return NULL;
}

static corr_tenant *tenant_get(corr_rt *c, uint64_t th, const char *name)
{
    corr_tenant *t = tenant_find(c, th);
    if (t || !corr_gen_count(c->current)) return t;
    if (c->tenant_count == c->tenant_cap) {
        c->tenant_cap = c->tenant_cap ? c->tenant_cap * 2 : 4;
        c->tenants = mamori_xrealloc(c->tenants, c->tenant_cap * sizeof *c->tenants);
    }
    t = &c->tenants[c->tenant_count++];
    t->tenant_hash = th;
    t->tenant = mamori_xstrdup(name);
    t->engine = correlate_engine_create(c->current->set, &c->opt);
    t->versions = mamori_xcalloc(corr_gen_count(c->current) + 1, sizeof *t->versions);
    return t;
}

static uint32_t mark_slot(const corr_rt *c, uint64_t th, uint64_t ah)
{
    return (uint32_t)((ah ^ (th * 0x9E3779B97F4A7C15ull)) >> 17) & c->mask;
}

static corr_mark *mark_find(corr_rt *c, uint64_t th, uint64_t ah, bool create)
{
    if (!c->table) {
        c->mask = 255;
        c->table = mamori_xcalloc(c->mask + 1, sizeof *c->table);
    }
    uint32_t s = mark_slot(c, th, ah);
    for (; c->table[s]; s = (s + 1) & c->mask) {
        corr_mark *m = &c->marks[c->table[s] - 1];
        if (m->tenant_hash == th && m->agent_hash == ah) return m;
    }
    if (!create) return NULL;
    if (c->mark_count == c->mark_cap) {
        c->mark_cap = c->mark_cap ? c->mark_cap * 2 : 64;
        c->marks = mamori_xrealloc(c->marks, c->mark_cap * sizeof *c->marks);
    }
    c->marks[c->mark_count] = (corr_mark){th, ah, 0};
    c->table[s] = ++c->mark_count;
    if (c->mark_count * 2 > c->mask) {
        c->mask = c->mask * 2 + 1;
        c->table = mamori_xrealloc(c->table, (c->mask + 1) * sizeof *c->table);
        memset(c->table, 0, (c->mask + 1) * sizeof *c->table);
        for (uint32_t i = 0; i < c->mark_count; i++) {
            uint32_t x = mark_slot(c, c->marks[i].tenant_hash, c->marks[i].agent_hash);
            while (c->table[x]) x = (x + 1) & c->mask;
            c->table[x] = i + 1;
        }
    }
    return &c->marks[c->mark_count - 1];
}

/* ---- life cycle ------------------------------------------------------------------------------- */

static int read_marks(void *ctx, const void *key, size_t key_len, const void *value, size_t len)
{
    corr_rt *c = ctx;
    (void)key;
    if (key_len != strlen(CORR_MARKS_KEY)) return 0;
    const uint8_t *p = value;
    if (len < 20 || mamori_get_be64(p) >> 32 != CORR_MARKS_MAGIC || (uint32_t)mamori_get_be64(p) != CORR_MARKS_VERSION) {
        LOG_ERROR(MOD, "correlation checkpoint %s unreadable (%zu bytes): starting from the detection watermarks",
                  CORR_MARKS_KEY, len);
        return 1;
    }
    int64_t anchor = (int64_t)mamori_get_be64(p + 8);
    uint32_t n = (uint32_t)(mamori_get_be64(p + 12) & 0xffffffffu);
    if ((len - 20) / 24 < n || len != 20 + (size_t)n * 24) {
        LOG_ERROR(MOD, "correlation checkpoint %s truncated: starting from the detection watermarks", CORR_MARKS_KEY);
        return 1;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *m = p + 20 + (size_t)i * 24;
        corr_mark *x = mark_find(c, mamori_get_be64(m), mamori_get_be64(m + 8), true);
        x->seq = mamori_get_be64(m + 16);
    }
    c->have_checkpoint = true;
    c->checkpoint_anchor_us = anchor;
    c->anchor_us = anchor;
    return 1;
}

static int add_prepared(void *ctx, uint64_t th, uint64_t ah, uint64_t durable)
{
    corr_rt *c = ctx;
    size_t n = c->prepared_count;
    if ((n & (n - 1)) == 0) /* 0, 1, 2, 4…: doubling */
        c->prepared = mamori_xrealloc(c->prepared, (n ? n * 2 : 1) * sizeof *c->prepared);
    c->prepared[c->prepared_count++] = (corr_mark){th, ah, durable};
    return 0;
}

corr_rt *corr_rt_create(const mamori_config *cfg, store *db)
{
    corr_rt *c = mamori_xcalloc(1, sizeof *c);
    c->cfg = cfg;
    c->db = db;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->swap_mu, NULL);
    correlate_options_default(&c->opt);
    c->opt.keys_max = cfg->detect.correlation_max_keys;
    c->opt.events_per_key_max = cfg->detect.correlation_max_events_per_key;
    c->opt.lateness_us = (int64_t)cfg->detect.correlation_lateness_s * 1000000;
    c->last_checkpoint_ms = clock_mono_ms();
    /* before ingest opens: the checkpoint's fed-up-to seqs, and what is durable now (every
     * batch up to it is fed, live or by re-detection, before the threads take new ones) */
    if (store_state_scan(db, CORR_MARKS_KEY, strlen(CORR_MARKS_KEY), read_marks, c) < 0)
        LOG_ERROR(MOD, "cannot read the correlation checkpoint: starting from the detection watermarks");
    (void)store_list_all_agents(db, add_prepared, c);
    return c;
}

void corr_rt_destroy(corr_rt *c)
{
    if (!c) return;
    for (uint32_t i = 0; i < c->tenant_count; i++) {
        correlate_engine_destroy(c->tenants[i].engine);
        free(c->tenants[i].tenant);
        free(c->tenants[i].versions);
    }
    free(c->tenants);
    corr_gen_unref(c->current);
    free(c->marks);
    free(c->table);
    free(c->prepared);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->swap_mu);
    free(c);
}

bool corr_rt_checkpoint_mark(corr_rt *c, uint64_t th, uint64_t ah, uint64_t *seq, int64_t *anchor_us)
{
    if (!c->have_checkpoint) return false;
    corr_mark *m = mark_find(c, th, ah, false);
    *seq = m ? m->seq : 0; /* an agent the checkpoint does not know started after it */
    *anchor_us = c->checkpoint_anchor_us;
    return true;
}

static const char *corr_key(const correlate_rule *r) { return r->info.id[0] ? r->info.id : r->info.title; }

static void stats_add(correlate_stats *to, const correlate_stats *s)
{
    to->matches += s->matches;
    to->late += s->late;
    to->missing_field += s->missing_field;
    to->not_numeric += s->not_numeric;
    to->evicted_keys += s->evicted_keys;
    to->evicted_events += s->evicted_events;
    to->expired_events += s->expired_events;
    to->alerts += s->alerts;
}

/* Moves every tenant's state to the correlations of g with the same key and type (the
 * state format checks both); the others start empty. Called with mu held. */
static void migrate(corr_rt *c, corr_gen *g)
{
    buf tmp;
    buf_init(&tmp);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < c->tenant_count; i++) {
        corr_tenant *t = &c->tenants[i];
        correlate_stats st;
        correlate_engine_stats(t->engine, SIZE_MAX, &st);
        stats_add(&c->retired, &st);
        correlate_engine *ne = corr_gen_count(g) ? correlate_engine_create(g->set, &c->opt) : NULL;
        for (size_t n = 0; ne && n < correlate_set_count(g->set); n++) {
            const correlate_rule *nr = correlate_set_rule(g->set, n);
            for (size_t o = 0; o < correlate_set_count(c->current->set); o++) {
                const correlate_rule *or = correlate_set_rule(c->current->set, o);
                if (or->type != nr->type || strcmp(corr_key(or), corr_key(nr)) != 0) continue;
                buf_clear(&tmp);
                correlate_state_encode(t->engine, o, &tmp);
                if (correlate_state_decode(ne, n, tmp.data, tmp.len) == 0) kept++;
                break;
            }
        }
        correlate_engine_destroy(t->engine);
        t->engine = ne;
        free(t->versions);
        t->versions = mamori_xcalloc(corr_gen_count(g) + 1, sizeof *t->versions);
    }
    buf_fini(&tmp);
    if (!corr_gen_count(g)) { /* no correlations: no engines */
        for (uint32_t i = 0; i < c->tenant_count; i++) {
            free(c->tenants[i].tenant);
            free(c->tenants[i].versions);
        }
        c->tenant_count = 0;
    }
    if (c->tenant_count) LOG_INFO(MOD, "correlation state carried to the new rule set: %u (tenant, correlation) states", kept);
}

void corr_rt_swap(corr_rt *c, corr_gen *g, detect_slot *slot, detect_ruleset *rs)
{
    pthread_mutex_lock(&c->mu);
    if (c->current && c->tenant_count) migrate(c, g);
    corr_gen *old = c->current;
    pthread_mutex_lock(&c->swap_mu);
    c->current = g;
    detect_slot_set(slot, rs); /* a reader sees the set and its correlations together */
    pthread_mutex_unlock(&c->swap_mu);
    c->full_due = true; /* states of removed correlations go */
    pthread_mutex_unlock(&c->mu);
    corr_gen_unref(old);
}

detect_ruleset *corr_rt_acquire(corr_rt *c, detect_slot *slot, corr_gen **g)
{
    /* not mu: evaluation never waits for feeding or a checkpoint */
    pthread_mutex_lock(&c->swap_mu);
    detect_ruleset *rs = detect_slot_get(slot);
    *g = corr_gen_ref(c->current);
    pthread_mutex_unlock(&c->swap_mu);
    return rs;
}

void corr_rt_lock(corr_rt *c) { pthread_mutex_lock(&c->mu); }
void corr_rt_unlock(corr_rt *c) { pthread_mutex_unlock(&c->mu); }

bool corr_rt_batch_begin(corr_rt *c, uint64_t th, uint64_t ah, uint64_t seq)
{
    corr_mark *m = mark_find(c, th, ah, true);
    if (seq <= m->seq) {
        c->refed_batches++;
        return false; /* fed already (a redelivery): feeding it again would count it twice */
    }
    return true;
}

void corr_rt_batch_end(corr_rt *c, uint64_t th, uint64_t ah, uint64_t seq, int64_t received_us)
{
    corr_mark *m = mark_find(c, th, ah, true);
    if (seq > m->seq) m->seq = seq;
    if (received_us > c->anchor_us) c->anchor_us = received_us;
    c->fed_batches++;
    c->dirty = true;
}

/* Finds the rule of the current correlations' rule set that the hit's rule stands for (the
 * batch may have been evaluated with an older set), by id, else title. */
static const detect_rule *current_rule(const corr_gen *cur, const corr_gen *g, const detect_rule *rule)
{
    if (cur == g) return rule;
    const correlate_set *set = cur->set;
    /* the base rules correlations use are few: a linear look through the ones used */
    detect_ruleset *rs = correlate_set_ruleset(set);
    size_t n = detect_ruleset_rule_count(rs);
    for (size_t i = 0; i < n; i++) {
        const detect_rule *r = detect_ruleset_rule(rs, i);
        if (!correlate_set_uses_rule(set, r)) continue;
        if (rule->id[0] ? !strcmp(r->id, rule->id) : !strcmp(r->title, rule->title)) return r;
    }
    return NULL;
}

void corr_rt_feed(corr_rt *c, const corr_gen *g, const alert_source *src, corr_alerts *out)
{
    corr_gen *cur = c->current;
    if (!corr_gen_count(cur)) return;
    const detect_rule *rule = current_rule(cur, g, src->rule);
    if (!rule) return;
    corr_tenant *t = tenant_get(c, src->tenant_hash, src->tenant);
    char eid[EVENT_ID_HEX_CHARS + 1];
    event_id_format(src->ts_us, src->agent_hash, src->seq, src->ev->index, eid);
    feed_ctx f = {.src = src, .out = out};
    correlate_engine_feed_event(t->engine, rule, src->ev, src->ts_us, eid, on_alert, &f);
    c->alerts_raised += f.raised;
}

void corr_rt_inflight(corr_rt *c, int delta)
{
    c->inflight = (uint32_t)((int)c->inflight + delta);
}

/* ---- checkpoints ------------------------------------------------------------------------------- */

static uint64_t version_of(const correlate_engine *e, size_t i)
{
    correlate_stats st;
    correlate_engine_stats(e, i, &st);
    return st.matches + st.expired_events + st.evicted_events + st.evicted_keys + st.alerts + 1;
}

void corr_checkpoint_init(corr_checkpoint *k)
{
    memset(k, 0, sizeof *k);
    buf_init(&k->data);
    buf_init(&k->scratch);
}

void corr_checkpoint_fini(corr_checkpoint *k)
{
    buf_fini(&k->data);
    buf_fini(&k->scratch);
    free(k->ops);
    free(k->puts);
}

enum { CK_PUT, CK_DELETE, CK_RANGE };

/* One write operation; key and value are offsets in k->data (it moves while growing). */
static void ck_op(corr_checkpoint *k, uint8_t kind, size_t key_off, size_t key_len, size_t val_off, size_t val_len)
{
    if (k->count == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 64;
        k->ops = mamori_xrealloc(k->ops, k->cap * sizeof *k->ops);
    }
    k->ops[k->count++] = (corr_ck_op){kind, key_off, key_len, val_off, val_len};
}

/* Appends prefix + tail as a key; returns its offset. */
static size_t ck_key(corr_checkpoint *k, const char *prefix, size_t prefix_len, const char *tail, size_t tail_len)
{
    size_t off = k->data.len;
    buf_append(&k->data, prefix, prefix_len);
    buf_append(&k->data, tail, tail_len);
    return off;
}

typedef struct delta_ctx {
    corr_checkpoint *k;
    const char *prefix; /* corr/st/<tenant>/<correlation>\x01k */
    size_t prefix_len;
    uint64_t keys;
} delta_ctx;

static void on_delta(void *ctx, const char *key, size_t key_len, const void *value, size_t value_len)
{
    delta_ctx *d = ctx;
    size_t off = ck_key(d->k, d->prefix, d->prefix_len, key, key_len);
    if (!value) {
        ck_op(d->k, CK_DELETE, off, d->prefix_len + key_len, 0, 0);
        return;
    }
    size_t val_off = d->k->data.len;
    buf_append(&d->k->data, value, value_len);
    ck_op(d->k, CK_PUT, off, d->prefix_len + key_len, val_off, value_len);
    d->keys++;
}

bool corr_rt_checkpoint_take(corr_rt *c, bool force, bool self_inflight, corr_checkpoint *k)
{
    k->taken = false;
    if (!c->current) return false; /* no rule set yet, or the first build failed: keep what is stored */
    if (!corr_gen_count(c->current)) {
        /* no correlations, no state to keep: the stored checkpoint goes once, and the next
         * start re-detects from the detection watermarks alone */
        if (!c->full_due) return false;
        buf_clear(&k->data);
        k->count = 0;
        k->full = true;
        k->write = (store_state_write){.delete_prefix = "corr/"};
        k->taken = true;
        k->encode_us = 0;
        c->full_due = false;
        c->dirty = false;
        return true;
    }
    if (!force && !c->dirty && !c->full_due) return false;
    int64_t now_ms = clock_mono_ms();
    if (!force && now_ms - c->last_checkpoint_ms < (int64_t)c->cfg->detect.correlation_checkpoint_interval_ms)
        return false;
    /* every alert of a consumed match must be in this write or durable already */
    if (c->inflight > (self_inflight ? 1u : 0u)) return false;
    int64_t t0 = clock_mono_us();
    buf_clear(&k->data);
    k->count = 0;
    k->full = c->full_due;
    k->keys_written = 0;
    /* per changed (tenant, correlation): its header, and the keys changed or removed since the
     * last checkpoint (every key after a start or a reload: corr/st/ is cleared first) */
    char prefix[1200];
    for (uint32_t i = 0; i < c->tenant_count; i++) {
        corr_tenant *t = &c->tenants[i];
        for (size_t n = 0; n < corr_gen_count(c->current); n++) {
            uint64_t v = version_of(t->engine, n);
            if (!k->full && t->versions[n] == v) continue;
            const char *ck = corr_key(correlate_set_rule(c->current->set, n));
            int plen = snprintf(prefix, sizeof prefix, "%s%016llx/%.1000s\x01", CORR_STATE_PREFIX,
                                (unsigned long long)t->tenant_hash, ck);
            size_t pl = (size_t)plen;
            size_t off = ck_key(k, prefix, pl, "h", 1);
            size_t val_off = k->data.len;
            correlate_state_header_encode(t->engine, n, &k->data);
            ck_op(k, CK_PUT, off, pl + 1, val_off, k->data.len - val_off);
            prefix[pl] = 'k';
            delta_ctx d = {.k = k, .prefix = prefix, .prefix_len = pl + 1};
            bool full = correlate_state_delta(t->engine, n, k->full, &k->scratch, on_delta, &d);
            /* a full delta of this correlation alone: its stored keys go first (ranges apply
             * before puts in the write) */
            if (full && !k->full) ck_op(k, CK_RANGE, ck_key(k, prefix, pl + 1, "", 0), pl + 1, 0, 0);
            k->keys_written += d.keys;
            t->versions[n] = v;
        }
    }
    /* the fed-up-to seqs, one value */
    size_t key_off = ck_key(k, CORR_MARKS_KEY, strlen(CORR_MARKS_KEY), "", 0);
    size_t val_off = k->data.len;
    uint8_t h[20];
    mamori_put_be64(h, ((uint64_t)CORR_MARKS_MAGIC << 32) | CORR_MARKS_VERSION);
    mamori_put_be64(h + 8, (uint64_t)c->anchor_us);
    /* count in the low half of bytes 12..19 */
    uint8_t cnt[8];
    mamori_put_be64(cnt, c->mark_count);
    memcpy(h + 16, cnt + 4, 4);
    buf_append(&k->data, h, sizeof h);
    for (uint32_t i = 0; i < c->mark_count; i++) {
        uint8_t m[24];
        mamori_put_be64(m, c->marks[i].tenant_hash);
        mamori_put_be64(m + 8, c->marks[i].agent_hash);
        mamori_put_be64(m + 16, c->marks[i].seq);
        buf_append(&k->data, m, sizeof m);
    }
    ck_op(k, CK_PUT, key_off, strlen(CORR_MARKS_KEY), val_off, k->data.len - val_off);
    /* pointers, now that the data stopped moving: puts, then deletes, then ranges */
    free(k->puts);
    k->puts = mamori_xmalloc((k->count ? k->count : 1) * sizeof *k->puts);
    size_t np = 0, nd = 0, nr = 0;
    for (size_t i = 0; i < k->count; i++) np += k->ops[i].kind == CK_PUT, nd += k->ops[i].kind == CK_DELETE;
    size_t at_p = 0, at_d = np, at_r = np + nd;
    for (size_t i = 0; i < k->count; i++) {
        const corr_ck_op *o = &k->ops[i];
        store_state_put x = {.key = k->data.data + o->key_off, .key_len = o->key_len,
                             .value = k->data.data + o->val_off, .value_len = o->val_len};
        if (o->kind == CK_PUT) k->puts[at_p++] = x;
        else if (o->kind == CK_DELETE) k->puts[at_d++] = x;
        else k->puts[at_r++] = x, nr++;
    }
    k->write = (store_state_write){.delete_prefix = k->full ? CORR_STATE_PREFIX : NULL,
                                   .delete_ranges = k->puts + np + nd, .delete_range_count = nr,
                                   .deletes = k->puts + np, .delete_count = nd,
                                   .puts = k->puts, .put_count = np};
    k->taken = true;
    k->encode_us = clock_mono_us() - t0;
    /* assume success; a failed write sets full_due again (corr_rt_checkpoint_done) */
    c->full_due = false;
    c->dirty = false;
    c->last_checkpoint_ms = now_ms;
    return true;
}

void corr_rt_checkpoint_done(corr_rt *c, corr_checkpoint *k, bool ok, int64_t write_us)
{
    if (!k->taken) return;
    k->taken = false;
    pthread_mutex_lock(&c->mu);
    if (ok) {
        c->checkpoints++;
        c->checkpoint_keys += k->keys_written;
        c->checkpoint_bytes = k->data.len;
        c->checkpoint_us_last = (uint64_t)(k->encode_us + write_us);
        c->checkpoint_us_sum += c->checkpoint_us_last;
    } else {
        c->checkpoint_errors++;
        c->full_due = true; /* the next one rewrites everything */
    }
    pthread_mutex_unlock(&c->mu);
}

int corr_rt_checkpoint_now(corr_rt *c)
{
    corr_checkpoint k;
    corr_checkpoint_init(&k);
    pthread_mutex_lock(&c->mu);
    bool taken = corr_rt_checkpoint_take(c, true, false, &k);
    pthread_mutex_unlock(&c->mu);
    int rc = 0;
    if (taken) {
        int64_t t0 = clock_mono_us();
        rc = store_alerts_commit_state(c->db, NULL, 0, NULL, 0, &k.write, NULL, NULL);
        corr_rt_checkpoint_done(c, &k, rc == 0, clock_mono_us() - t0);
        if (rc) LOG_ERROR(MOD, "writing the correlation checkpoint failed: %s", strerror(-rc));
    }
    corr_checkpoint_fini(&k);
    return rc;
}

/* ---- start-up ---------------------------------------------------------------------------------- */

typedef struct restore_ctx {
    corr_rt *c;
    corr_tenant *t; /* of the last header read */
    size_t index;
    bool header_ok;
} restore_ctx;

/* corr/st/<16 hex tenant>/<correlation id or title>\x01h (header) and \x01k<group key> (one
 * key); the header sorts before its keys. */
static int restore_one(void *ctx, const void *key, size_t key_len, const void *value, size_t len)
{
    restore_ctx *r = ctx;
    corr_rt *c = r->c;
    const char *k = key;
    size_t head = CORR_STATE_PREFIX_LEN + 17;
    if (key_len < head + 2 || k[CORR_STATE_PREFIX_LEN + 16] != '/') return 0;
    const char *sep = memchr(k + head, '\x01', key_len - head);
    if (!sep || sep + 1 >= k + key_len) return 0; /* another layout: dropped by the next full checkpoint */
    const char *ck = k + head;
    size_t ck_len = (size_t)(sep - ck);
    if (sep[1] == 'k') {
        if (!r->header_ok) return 0;
        if (correlate_state_key_decode(r->t->engine, r->index, value, len) != 0) {
            c->restore_errors++;
            LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "correlation state of %.*s: a key unreadable, dropped",
                            (int)MAMORI_MIN(ck_len, 200u), ck);
        }
        return 0;
    }
    r->header_ok = false;
    if (sep[1] != 'h') return 0;
    char hex[17];
    memcpy(hex, k + CORR_STATE_PREFIX_LEN, 16);
    hex[16] = '\0';
    uint64_t th = strtoull(hex, NULL, 16);
    size_t idx = SIZE_MAX;
    for (size_t n = 0; n < corr_gen_count(c->current); n++) {
        const char *name = corr_key(correlate_set_rule(c->current->set, n));
        if (strlen(name) == ck_len && !memcmp(name, ck, ck_len)) idx = n;
    }
    if (idx == SIZE_MAX) return 0; /* a correlation no longer loaded: dropped at the next checkpoint */
    char tenant[260];
    if (store_tenant_name(c->db, th, tenant, sizeof tenant) != 0) return 0;
    corr_tenant *t = tenant_get(c, th, tenant);
    if (correlate_state_header_decode(t->engine, idx, value, len) != 0) {
        c->restore_errors++;
        LOG_ERROR(MOD, "correlation state of %.*s (tenant %s) of another rule version or unreadable: starting it empty",
                  (int)MAMORI_MIN(ck_len, 200u), ck, tenant);
        return 0;
    }
    r->t = t;
    r->index = idx;
    r->header_ok = true;
    return 0;
}

void corr_rt_restore(corr_rt *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->have_checkpoint && corr_gen_count(c->current)) {
        restore_ctx r = {.c = c};
        int64_t t0 = clock_mono_us();
        if (store_state_scan(c->db, CORR_STATE_PREFIX, CORR_STATE_PREFIX_LEN, restore_one, &r) < 0)
            LOG_ERROR(MOD, "reading the correlation state failed: correlations start empty");
        for (uint32_t i = 0; i < c->tenant_count; i++) {
            correlate_stats st;
            correlate_engine_stats(c->tenants[i].engine, SIZE_MAX, &st);
            c->restored_keys += st.keys;
        }
        LOG_INFO(MOD, "correlation state restored: keys=%llu errors=%llu ms=%.1f", (unsigned long long)c->restored_keys,
                 (unsigned long long)c->restore_errors, (double)(clock_mono_us() - t0) / 1000.0);
    }
    pthread_mutex_unlock(&c->mu);
}

void corr_rt_started(corr_rt *c, bool recovered)
{
    pthread_mutex_lock(&c->mu);
    if (!recovered) {
        /* re-detected alerts were not written: no checkpoint may cover the state that
         * consumed their matches; the next start replays from the stored one */
        c->inflight++;
        LOG_ERROR(MOD, "correlation checkpoints are off until the next start (re-detected alerts not written)");
    }
    /* everything durable before ingest opened has been fed (before the crash, or just now) */
    for (size_t i = 0; i < c->prepared_count; i++) {
        corr_mark *m = mark_find(c, c->prepared[i].tenant_hash, c->prepared[i].agent_hash, true);
        if (c->prepared[i].seq > m->seq) m->seq = c->prepared[i].seq;
    }
    free(c->prepared);
    c->prepared = NULL;
    c->prepared_count = 0;
    /* every batch fed from now on is received after now: where a replay would start */
    if (!c->anchor_us) c->anchor_us = clock_wall_us();
    c->full_due = true;
    pthread_mutex_unlock(&c->mu);
    int rc = corr_rt_checkpoint_now(c); /* logs a failure; the threads' checkpoints retry */
    (void)rc;
}

/* ---- metrics ------------------------------------------------------------------------------------ */

void corr_rt_write_metrics(corr_rt *c, buf *o)
{
    pthread_mutex_lock(&c->mu);
    correlate_stats t = c->retired, now = {0};
    for (uint32_t i = 0; i < c->tenant_count; i++) {
        correlate_stats st;
        correlate_engine_stats(c->tenants[i].engine, SIZE_MAX, &st);
        stats_add(&t, &st);
        now.keys += st.keys;
        now.events += st.events;
    }
    uint64_t loaded = corr_gen_count(c->current);
    uint64_t fed = c->fed_batches, refed = c->refed_batches, ck = c->checkpoints, ckerr = c->checkpoint_errors;
    uint64_t ckbytes = c->checkpoint_bytes, ckus = c->checkpoint_us_sum, cklast = c->checkpoint_us_last;
    uint64_t ckkeys = c->checkpoint_keys;
    uint64_t raised = c->alerts_raised;
    pthread_mutex_unlock(&c->mu);
#define M(name, type, help, v)                                                                                          \
    buf_printf(o, "# HELP " name " " help "\n# TYPE " name " " type "\n" name " %llu\n", (unsigned long long)(v))
    M("mamori_detect_correlations_loaded", "gauge", "correlation rules in the running rule set", loaded);
    M("mamori_detect_correlation_matches_total", "counter", "base-rule matches fed to correlations (per correlation)",
      t.matches);
    M("mamori_detect_correlation_late_total", "counter",
      "base-rule matches older than the newest match minus detect.correlation_lateness_s: ignored", t.late);
    M("mamori_detect_correlation_missing_field_total", "counter", "matches without a group-by or value field: ignored",
      t.missing_field);
    M("mamori_detect_correlation_not_numeric_total", "counter", "value_sum/value_avg matches with a non-numeric value",
      t.not_numeric);
    M("mamori_detect_correlation_evicted_keys_total", "counter", "group-by keys evicted by detect.correlation_max_keys",
      t.evicted_keys);
    M("mamori_detect_correlation_evicted_events_total", "counter",
      "matches evicted by detect.correlation_max_events_per_key or with an evicted key", t.evicted_events);
    M("mamori_detect_correlation_expired_events_total", "counter", "matches that left their window", t.expired_events);
    M("mamori_detect_correlation_alerts_total", "counter", "correlation alerts fired (before de-duplication)", raised);
    M("mamori_detect_correlation_keys", "gauge", "group-by keys held", now.keys);
    M("mamori_detect_correlation_events", "gauge", "matches held", now.events);
    M("mamori_detect_correlation_batches_total", "counter", "durable batches fed to correlations", fed);
    M("mamori_detect_correlation_batches_refed_total", "counter",
      "batches already fed (redelivered): not fed again", refed);
    M("mamori_detect_correlation_checkpoints_total", "counter", "correlation state checkpoints written", ck);
    M("mamori_detect_correlation_checkpoint_errors_total", "counter", "correlation checkpoint writes that failed", ckerr);
    M("mamori_detect_correlation_checkpoint_bytes", "gauge", "bytes of the last checkpoint write", ckbytes);
    M("mamori_detect_correlation_checkpoint_keys_total", "counter",
      "group-by keys written by checkpoints (only the keys changed since the previous one)", ckkeys);
    buf_printf(o,
               "# HELP mamori_detect_correlation_checkpoint_seconds time encoding and writing checkpoints\n"
               "# TYPE mamori_detect_correlation_checkpoint_seconds summary\n"
               "mamori_detect_correlation_checkpoint_seconds_sum %.6f\nmamori_detect_correlation_checkpoint_seconds_count "
               "%llu\n# HELP mamori_detect_correlation_checkpoint_last_seconds the last checkpoint\n"
               "# TYPE mamori_detect_correlation_checkpoint_last_seconds gauge\n"
               "mamori_detect_correlation_checkpoint_last_seconds %.6f\n",
               (double)ckus / 1e6, (unsigned long long)ck, (double)cklast / 1e6);
#undef M
}

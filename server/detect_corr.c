/* server/detect_corr.c — Sigma correlation rules on the live stream (docs/detection.md §11.6).
 * The detection threads record the base-rule matches correlations use while they evaluate a
 * batch, and feed them here once the batch is durable — the moment its watermark may move —
 * under one lock: one engine per tenant, shared by every detection thread (the embedded
 * "match sink": a direct call). A batch is fed at most once (per agent, only batches above
 * the "fed up to" seq); the state and those seqs are checkpointed together in the `state`
 * column family, in the same write as alerts whose matches the state has consumed, so a
 * restart restores the state and re-feeds exactly the batches after the checkpoint
 * (checkpoints and start-up: detect_corr_checkpoint.c). */
#include "detect_corr_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

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
    buf_init(&a->keys);
}

void corr_alerts_fini(corr_alerts *a)
{
    free(a->v);
    free(a->rules);
    free(a->offsets);
    free(a->received_us);
    free(a->key_offsets);
    free(a->pids);
    buf_fini(&a->bodies);
    buf_fini(&a->keys);
}

void corr_alerts_clear(corr_alerts *a)
{
    a->count = 0;
    buf_clear(&a->bodies);
    buf_clear(&a->keys);
}

void corr_alerts_fix(corr_alerts *a)
{
    for (uint32_t i = 0; i < a->count; i++) a->v[i].body = a->bodies.data + a->offsets[i];
}

typedef struct feed_ctx {
    const corr_origin_view *src; /* the triggering event */
    corr_alerts *out;
    uint64_t raised;
} feed_ctx;

static uint64_t view_hash(const char *s, size_t len) { return s && len ? store_alert_term_hash(s, len) : 0; }

void corr_origin_view_of(const alert_source *src, corr_origin_view *v)
{
    const json_value *host_id = event_get_cstr(src->ev, "host.id"), *host_name = event_get_cstr(src->ev, "host.name");
    *v = (corr_origin_view){.tenant = src->tenant, .tenant_hash = src->tenant_hash, .agent_id = src->agent_id,
                            .agent_hash = src->agent_hash, .seq = src->seq, .index = src->ev->index,
                            .ts_us = src->ts_us, .received_us = src->received_us, .now_us = src->now_us};
    if (json_is_string(host_id)) {
        v->host_id = host_id->str;
        v->host_id_len = host_id->len;
    }
    if (json_is_string(host_name)) {
        v->host_name = host_name->str;
        v->host_name_len = host_name->len;
    }
    const json_value *pid = event_get_cstr(src->ev, "process.pid"), *entity = event_get_cstr(src->ev, "process.entity_id");
    if (pid && pid->type == JSON_NUMBER && (pid->flags & JSON_FLAG_INT)) v->pid = pid->num.i;
    if (json_is_string(entity)) {
        v->entity_id = entity->str;
        v->entity_id_len = entity->len;
    }
}

static void put_cstr(buf *b, const char *s, size_t len)
{
    if (s) buf_append(b, s, len);
    buf_append(b, "", 1);
}

/* One stored alert per emitted correlation alert: id from correlate_alert_id (correlation,
 * group values, first contributing event), time = the window's last match. */
static void on_alert(void *ctx, const correlate_alert *ca)
{
    feed_ctx *f = ctx;
    if (!ca->emit) return;
    corr_alert_append(f->src, ca, f->out);
    f->raised++;
}

void corr_alert_append(const corr_origin_view *src, const correlate_alert *ca, corr_alerts *o)
{
    if (!ca->emit) return;
    const detect_rule *rule = &ca->rule->info;
    if (o->count == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 16;
        o->v = mamori_xrealloc(o->v, o->cap * sizeof *o->v);
        o->rules = mamori_xrealloc((void *)o->rules, o->cap * sizeof *o->rules);
        o->offsets = mamori_xrealloc(o->offsets, o->cap * sizeof *o->offsets);
        o->received_us = mamori_xrealloc(o->received_us, o->cap * sizeof *o->received_us);
        o->key_offsets = mamori_xrealloc(o->key_offsets, o->cap * sizeof *o->key_offsets);
        o->pids = mamori_xrealloc(o->pids, o->cap * sizeof *o->pids);
    }
    uint32_t i = o->count++;
    store_alert *a = &o->v[i];
    memset(a, 0, sizeof *a);
    char hex[33];
    correlate_alert_id(ca, hex);
    int id_rc = store_alert_id_parse(hex, 32, a->id);
    MAMORI_ASSERT(id_rc == 0); /* correlate_alert_id writes 32 hex digits */
    (void)id_rc;
    const char *key = rule->id[0] ? rule->id : rule->title;
    a->tenant_hash = src->tenant_hash;
    a->tenant = src->tenant;
    a->ts_us = ca->last_us;
    a->created_us = a->updated_us = src->now_us;
    a->level = (uint8_t)rule->level;
    a->status = STORE_ALERT_NEW;
    a->rule_hash = store_alert_term_hash(key, strlen(key));
    a->host_id_hash = view_hash(src->host_id, src->host_id_len);
    a->host_name_hash = view_hash(src->host_name, src->host_name_len);
    a->assignee = "";
    o->rules[i] = rule;
    o->received_us[i] = src->received_us;
    buf *b = &o->bodies;
    o->offsets[i] = (uint32_t)b->len;
    char eid[EVENT_ID_HEX_CHARS + 1];
    event_id_format(src->ts_us, src->agent_hash, src->seq, src->index, eid);
    alert_body_head(b, ca->last_us, src->received_us, src->tenant, src->agent_id, src->host_id, src->host_id_len,
                    src->host_name, src->host_name_len, rule);
    buf_puts(b, ",\"correlation\":");
    correlate_alert_write_json(b, ca);
    /* the event whose match completed the correlation */
    buf_printf(b, ",\"event\":{\"id\":\"%s\",\"seq\":%llu,\"index\":%u}}", eid, (unsigned long long)src->seq,
               src->index);
    a->body_len = (uint32_t)(b->len - o->offsets[i]);
    /* the records key of split roles: the completing event's agent, so the alert lands on
     * the store shard holding that event (alert_transport.c) */
    o->key_offsets[i] = (uint32_t)o->keys.len;
    buf_printf(&o->keys, "%s/%s", src->tenant, src->agent_id);
    buf_append(&o->keys, "", 1);
    put_cstr(&o->keys, src->tenant, strlen(src->tenant));
    put_cstr(&o->keys, src->agent_id, strlen(src->agent_id));
    put_cstr(&o->keys, src->entity_id, src->entity_id_len);
    put_cstr(&o->keys, src->host_name, src->host_name_len);
    o->pids[i] = src->pid;
}

/* ---- tenants and marks ---------------------------------------------------------------------- */

const char *corr_rule_key(const correlate_rule *r) { return r->info.id[0] ? r->info.id : r->info.title; }

static corr_tenant *tenant_find(corr_rt *c, uint64_t th)
{
    for (uint32_t i = 0; i < c->tenant_count; i++)
        if (c->tenants[i].tenant_hash == th) return &c->tenants[i];
    return NULL;
}

corr_tenant *corr_tenant_get(corr_rt *c, uint64_t th, const char *name)
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

corr_mark *corr_mark_find(corr_rt *c, uint64_t th, uint64_t ah, bool create)
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
    buf_init(&c->wire);
    buf_init(&c->origin);
    /* before ingest opens: the checkpoint's fed-up-to seqs, and what is durable now (every
     * batch up to it is fed, live or by re-detection, before the threads take new ones) */
    corr_rt_load_marks(c);
    corr_rt_prepare(c);
    return c;
}

void corr_rt_prepare(corr_rt *c)
{
    pthread_mutex_lock(&c->mu);
    free(c->prepared);
    c->prepared = NULL;
    c->prepared_count = 0;
    (void)store_list_all_agents(c->db, add_prepared, c);
    pthread_mutex_unlock(&c->mu);
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
    buf_fini(&c->wire);
    buf_fini(&c->origin);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->swap_mu);
    free(c);
}


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
    to->duplicates += s->duplicates;
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
                if (or->type != nr->type || strcmp(corr_rule_key(or), corr_rule_key(nr)) != 0) continue;
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
    corr_mark *m = corr_mark_find(c, th, ah, true);
    if (seq <= m->seq) {
        c->refed_batches++;
        return false; /* fed already (a redelivery): feeding it again would count it twice */
    }
    return true;
}

void corr_rt_batch_end(corr_rt *c, uint64_t th, uint64_t ah, uint64_t seq, int64_t received_us)
{
    corr_mark *m = corr_mark_find(c, th, ah, true);
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

void corr_records_init(corr_records *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->data);
}
void corr_records_fini(corr_records *r)
{
    free(r->v);
    buf_fini(&r->data);
}
void corr_records_clear(corr_records *r)
{
    r->count = 0;
    buf_clear(&r->data);
}

void corr_rt_set_rekey(corr_rt *c, int mode) { c->rekey = mode; }
int corr_rt_rekey(const corr_rt *c) { return c->rekey; }

corr_gen *corr_rt_current(corr_rt *c)
{
    pthread_mutex_lock(&c->swap_mu);
    corr_gen *g = corr_gen_ref(c->current);
    pthread_mutex_unlock(&c->swap_mu);
    return g;
}

/* Re-keying: each target of the match either fed here (host-grouped, in a process that keeps
 * them) or appended to records as (tenant + group key, the MCMT message, the MCMO origin). */
static void feed_split(corr_rt *c, const correlate_set *set, corr_tenant *t, const alert_source *src,
                       const detect_rule *rule, const char *eid, feed_ctx *f, corr_records *records)
{
    correlate_match *m = correlate_match_create(set, rule, src->ev, src->ts_us, eid);
    if (!m) return;
    const corr_origin_view *v = f->src;
    correlate_origin o = {.tenant = v->tenant, .tenant_len = strlen(v->tenant), .agent_id = v->agent_id,
                          .agent_id_len = strlen(v->agent_id), .host_id = v->host_id, .host_id_len = v->host_id_len,
                          .host_name = v->host_name, .host_name_len = v->host_name_len, .agent_hash = v->agent_hash,
                          .seq = v->seq, .index = v->index, .ts_us = v->ts_us, .received_us = v->received_us};
    bool origin_made = false;
    for (size_t i = 0; i < correlate_match_target_count(m); i++) {
        const char *gk;
        size_t gl;
        const correlate_rule *r = correlate_match_target(set, m, i, &gk, &gl);
        buf_clear(&c->wire);
        correlate_match_encode(set, m, i, &c->wire);
        if (c->rekey == CORR_REKEY_NON_HOST && correlate_rule_grouped_by_host(r)) {
            correlate_match *one = NULL;
            if (correlate_match_decode(set, c->wire.data, c->wire.len, &one) == 0) {
                if (src->received_us > 0) correlate_match_set_received(one, src->received_us);
                correlate_engine_feed(t->engine, one, on_alert, f);
                correlate_match_destroy(one);
            }
            continue;
        }
        if (!origin_made) {
            buf_clear(&c->origin);
            correlate_origin_encode(&o, &c->origin);
            origin_made = true;
        }
        if (records->count == records->cap) {
            records->cap = records->cap ? records->cap * 2 : 64;
            records->v = mamori_xrealloc(records->v, records->cap * sizeof *records->v);
        }
        struct corr_record_at *at = &records->v[records->count++];
        buf *d = &records->data;
        at->key_off = (uint32_t)d->len;
        correlate_match_record_key(v->tenant, gk, gl, d);
        at->key_len = (uint32_t)(d->len - at->key_off);
        at->val_off = (uint32_t)d->len;
        buf_append(d, c->wire.data, c->wire.len);
        at->val_len = (uint32_t)c->wire.len;
        at->meta_off = (uint32_t)d->len;
        buf_append(d, c->origin.data, c->origin.len);
        at->meta_len = (uint32_t)c->origin.len;
        c->rekeyed_matches++;
    }
    correlate_match_destroy(m);
}

void corr_rt_feed(corr_rt *c, const corr_gen *g, const alert_source *src, corr_alerts *out, corr_records *records)
{
    corr_gen *cur = c->current;
    if (!corr_gen_count(cur)) return;
    const detect_rule *rule = current_rule(cur, g, src->rule);
    if (!rule) return;
    corr_tenant *t = corr_tenant_get(c, src->tenant_hash, src->tenant);
    char eid[EVENT_ID_HEX_CHARS + 1];
    event_id_format(src->ts_us, src->agent_hash, src->seq, src->ev->index, eid);
    corr_origin_view view;
    corr_origin_view_of(src, &view);
    feed_ctx f = {.src = &view, .out = out};
    if (c->rekey != CORR_REKEY_OFF && records) feed_split(c, cur->set, t, src, rule, eid, &f, records);
    else {
        correlate_match *m = correlate_match_create(cur->set, rule, src->ev, src->ts_us, eid);
        if (m) {
            if (src->received_us > 0) correlate_match_set_received(m, src->received_us);
            correlate_engine_feed(t->engine, m, on_alert, &f);
            correlate_match_destroy(m);
        }
    }
    c->alerts_raised += f.raised;
}

void corr_rt_inflight(corr_rt *c, int delta)
{
    c->inflight = (uint32_t)((int)c->inflight + delta);
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
    uint64_t raised = c->alerts_raised, rekeyed = c->rekeyed_matches;
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
    M("mamori_detect_correlation_duplicates_total", "counter",
      "base matches of an event a group-by key holds already (at-least-once redelivery): ignored", t.duplicates);
    M("mamori_detect_correlation_alerts_total", "counter", "correlation alerts fired (before de-duplication)", raised);
    M("mamori_detect_correlation_rekeyed_matches_total", "counter",
      "match targets published to the matches topic (re-keyed by their group-by value, Kafka)", rekeyed);
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

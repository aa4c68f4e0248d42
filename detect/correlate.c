/* detect/correlate.c — the correlation engine: base-rule matches in, correlation alerts out.
 * A match is first made self-contained (correlate_match: the group-by key and value field of
 * every correlation using its rule, read from the event as the detect module places Sigma
 * fields). The engine keeps, per (correlation, group-by key), the matches of the window in
 * event-time order; at each match it checks the windows the match belongs to and fires at
 * most once, consuming the contributing matches. Alerts of a correlation referenced by
 * another are fed to it as matches (chains). Semantics: docs/detection.md "Correlation rules". */
#include "correlate_internal.h"

#include "core/clock.h"
#include "core/ecs_map.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void correlate_options_default(correlate_options *opt)
{
    opt->keys_max = 100000;
    opt->events_per_key_max = 1000;
    opt->lateness_us = 60 * (int64_t)1000000;
    opt->ordered = false;
}

/* ---- fields of events and alerts ------------------------------------------------------------------ */

typedef bool (*field_fn)(void *ctx, const char *field, const char **text, size_t *len, char *tmp);

struct event_src {
    const mamori_event *ev;
    struct logsource_set ls;
    bool classified;
};

/* The value of a Sigma (or ECS) field in a normalized event, found as detect/fields.c does. */
static const json_value *field_in_event(struct event_src *src, const char *field)
{
    size_t len = strlen(field);
    char path[320];
    if (len < sizeof path - 20) {
        int n = snprintf(path, sizeof path, "winlog.event_data.%s", field);
        const json_value *v = event_get(src->ev, path, (size_t)n);
        if (v) return v;
    }
    if (!memchr(field, '.', len)) {
        if (!src->classified) {
            logsource_classify(src->ev, &src->ls);
            src->classified = true;
        }
        const ecs_map_entry *row = ecs_map_lookup(field, len, &src->ls, NULL);
        const json_value *v = row ? event_get_cstr(src->ev, row->ecs_path) : NULL;
        if (v) return v;
        const char *alias = field_system_alias(field, len);
        v = alias ? event_get_cstr(src->ev, alias) : NULL;
        if (v) return v;
    }
    return event_get(src->ev, field, len);
}

static bool event_text(void *ctx, const char *field, const char **text, size_t *len, char *tmp)
{
    const json_value *v = field_in_event(ctx, field);
    if (v && v->type == JSON_ARRAY) v = v->len ? &v->items[0] : NULL; /* an array: its first element */
    return v && direct_scalar_text(v, tmp, text, len);
}

static bool alert_text(void *ctx, const char *field, const char **text, size_t *len, char *tmp)
{
    (void)tmp;
    const correlate_alert *a = ctx;
    for (uint32_t i = 0; i < a->rule->group_count; i++)
        if (!strcmp(a->rule->group_by[i], field)) {
            *text = a->group_values[i];
            *len = strlen(a->group_values[i]);
            return true;
        }
    return false;
}

static void put_u32(buf *b, uint32_t v) { buf_append(b, &v, sizeof v); }

static void add_target(correlate_match *m, const correlate_set *s, const struct consumer *c, field_fn get, void *ctx)
{
    const struct cdef *d = s->corrs[c->corr];
    struct mtarget *t = &m->targets[m->target_count++];
    memset(t, 0, sizeof *t);
    t->corr = c->corr;
    t->pos = c->pos;
    t->value_off = UINT32_MAX;
    t->key_off = (uint32_t)m->blob.len;
    char tmp[40];
    const char *text;
    size_t len;
    for (uint32_t g = 0; g < d->pub.group_count; g++) {
        if (!get(ctx, c->group_fields[g], &text, &len, tmp)) {
            t->missing = true;
            return;
        }
        put_u32(&m->blob, (uint32_t)len);
        buf_append(&m->blob, text, len);
    }
    t->key_len = (uint32_t)m->blob.len - t->key_off;
    if (!d->pub.field_count) return;
    t->value_off = (uint32_t)m->blob.len;
    for (uint32_t f = 0; f < d->pub.field_count; f++) {
        if (!get(ctx, c->value_fields[f], &text, &len, tmp)) {
            t->missing = true;
            return;
        }
        if (d->pub.field_count > 1) put_u32(&m->blob, (uint32_t)len);
        buf_append(&m->blob, text, len);
        if (d->pub.field_count == 1) t->numeric = direct_parse_number(text, len, &t->number) && isfinite(t->number);
    }
    t->value_len = (uint32_t)m->blob.len - t->value_off;
    t->value_hash = mamori_hash64(m->blob.data + t->value_off, t->value_len);
}

correlate_match *cmatch_new(int64_t time_us, uint32_t targets)
{
    correlate_match *m = mamori_xcalloc(1, sizeof *m);
    /* ±2^62 µs (±146,000 years): window arithmetic stays far from overflow */
    const int64_t bound = (int64_t)1 << 62;
    m->time_us = time_us < -bound ? -bound : time_us > bound ? bound : time_us;
    m->received_us = INT64_MAX;
    m->targets = mamori_xcalloc(targets ? targets : 1, sizeof *m->targets);
    buf_init(&m->blob);
    return m;
}

correlate_match *correlate_match_create(const correlate_set *s, const detect_rule *rule, const mamori_event *ev,
                                        int64_t time_us, const char *event_id)
{
    if (!correlate_set_uses_rule(s, rule)) return NULL;
    uint32_t first = s->rule_first[rule->index], end = s->rule_first[rule->index + 1];
    correlate_match *m = cmatch_new(time_us, end - first);
    buf_append(&m->blob, event_id, strlen(event_id) + 1);
    m->id_count = 1;
    struct event_src src = {.ev = ev};
    for (uint32_t i = first; i < end; i++) add_target(m, s, &s->rule_consumers[i], event_text, &src);
    return m;
}

void correlate_match_destroy(correlate_match *m)
{
    if (!m) return;
    buf_fini(&m->blob);
    free(m->targets);
    free(m);
}

int64_t correlate_match_time(const correlate_match *m) { return m->time_us; }
void correlate_match_set_received(correlate_match *m, int64_t received_us) { m->received_us = received_us; }

/* ---- state: keys, LRU, entries ---------------------------------------------------------------------- */

static void lru_unlink(struct cstate *st, struct ckey *k)
{
    if (k->newer) k->newer->older = k->older;
    else st->newest = k->older;
    if (k->older) k->older->newer = k->newer;
    else st->oldest = k->newer;
    k->newer = k->older = NULL;
}

static void lru_push(struct cstate *st, struct ckey *k)
{
    k->older = st->newest;
    k->newer = NULL;
    if (st->newest) st->newest->newer = k;
    st->newest = k;
    if (!st->oldest) st->oldest = k;
}

static void entry_free(struct centry *ent) { free(ent->data); }

/* Removed keys listed for the next incremental checkpoint, at most this many bytes; past it
 * the next checkpoint of the correlation is a full one. */
#define REMOVED_LIST_MAX (4u << 20)

/* Removes a key; its matches are counted as expired or evicted by the caller. */
static void key_remove(struct cstate *st, struct ckey *k)
{
    if (!st->delta_full) {
        if (st->removed.len + k->key_len + 4 > REMOVED_LIST_MAX) {
            st->delta_full = true;
            buf_clear(&st->removed);
        } else {
            uint32_t len = k->key_len;
            buf_append(&st->removed, &len, sizeof len);
            buf_append(&st->removed, k->key, k->key_len);
        }
    }
    struct ckey **p = &st->buckets[k->hash & (st->bucket_count - 1)];
    while (*p != k) p = &(*p)->hash_next;
    *p = k->hash_next;
    lru_unlink(st, k);
    for (uint32_t i = 0; i < k->count; i++) entry_free(&k->entries[i]);
    st->stats.events -= k->count;
    st->stats.keys--;
    free(k->entries);
    free(k->key);
    free(k);
}

static void grow_buckets(struct cstate *st)
{
    uint32_t n = st->bucket_count ? st->bucket_count * 2 : 64;
    struct ckey **b = mamori_xcalloc(n, sizeof *b);
    for (uint32_t i = 0; i < st->bucket_count; i++) {
        struct ckey *k = st->buckets[i];
        while (k) {
            struct ckey *next = k->hash_next;
            k->hash_next = b[k->hash & (n - 1)];
            b[k->hash & (n - 1)] = k;
            k = next;
        }
    }
    free(st->buckets);
    st->buckets = b;
    st->bucket_count = n;
}

struct ckey *cstate_key(correlate_engine *e, uint32_t corr, const char *key, uint32_t key_len, bool create)
{
    struct cstate *st = &e->states[corr];
    uint64_t h = mamori_hash64(key, key_len);
    if (st->bucket_count)
        for (struct ckey *k = st->buckets[h & (st->bucket_count - 1)]; k; k = k->hash_next)
            if (k->hash == h && k->key_len == key_len && !memcmp(k->key, key, key_len)) return k;
    if (!create) return NULL;
    if (st->stats.keys >= e->opt.keys_max && st->oldest) {
        st->stats.evicted_keys++;
        st->stats.evicted_events += st->oldest->count;
        key_remove(st, st->oldest);
    }
    if (st->stats.keys + 1 > (uint64_t)st->bucket_count * 3 / 4) grow_buckets(st);
    struct ckey *k = mamori_xcalloc(1, sizeof *k);
    k->key = mamori_xmalloc(key_len ? key_len : 1);
    memcpy(k->key, key, key_len);
    k->key_len = key_len;
    k->hash = h;
    k->newest_us = INT64_MIN;
    k->arrival_us = e->clock_us;
    k->hash_next = st->buckets[h & (st->bucket_count - 1)];
    st->buckets[h & (st->bucket_count - 1)] = k;
    lru_push(st, k);
    st->stats.keys++;
    return k;
}

void ckey_remove(correlate_engine *e, uint32_t corr, struct ckey *k) { key_remove(&e->states[corr], k); }

void cstate_clear(correlate_engine *e, uint32_t corr)
{
    struct cstate *st = &e->states[corr];
    st->delta_full = true; /* whatever was checkpointed is replaced */
    buf_clear(&st->removed);
    while (st->oldest) key_remove(st, st->oldest);
}

static bool entry_before(const struct centry *a, const struct centry *b)
{
    return a->time_us < b->time_us || (a->time_us == b->time_us && a->seq < b->seq);
}

uint32_t ckey_insert(correlate_engine *e, uint32_t corr, struct ckey *k, const struct centry *ent)
{
    struct cstate *st = &e->states[corr];
    if (k->count == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 4;
        k->entries = mamori_xrealloc(k->entries, k->cap * sizeof *k->entries);
    }
    if (ent->time_us > k->newest_us) k->newest_us = ent->time_us;
    uint32_t pos = k->count;
    while (pos > 0 && entry_before(ent, &k->entries[pos - 1])) pos--;
    memmove(&k->entries[pos + 1], &k->entries[pos], (k->count - pos) * sizeof *k->entries);
    k->entries[pos] = *ent;
    k->count++;
    st->stats.events++;
    if (k->count > e->opt.events_per_key_max) { /* evict the oldest, which may be the new one */
        entry_free(&k->entries[0]);
        memmove(&k->entries[0], &k->entries[1], (k->count - 1) * sizeof *k->entries);
        k->count--;
        st->stats.events--;
        st->stats.evicted_events++;
        if (pos == 0) return UINT32_MAX;
        pos--;
    }
    return pos;
}

/* A key's matches before its horizon can be in none of its future windows: drop them.
 * Lateness is per key (its own newest match), so one agent's delivery delay — a laptop
 * sending its spool after hours offline — does not make other keys' matches late, nor its
 * own host-grouped sequences. */
static int64_t key_horizon(const correlate_engine *e, const struct cdef *d, const struct ckey *k)
{
    if (k->newest_us == INT64_MIN) return INT64_MIN;
    return k->newest_us - e->opt.lateness_us - d->pub.timespan_us;
}

static void prune_key(struct cstate *st, struct ckey *k, int64_t h)
{
    uint32_t n = 0;
    while (n < k->count && k->entries[n].time_us < h) entry_free(&k->entries[n++]);
    if (!n) return;
    memmove(&k->entries[0], &k->entries[n], (k->count - n) * sizeof *k->entries);
    k->count -= n;
    st->stats.events -= n;
    st->stats.expired_events += n;
}

/* Lazy expiry: keys at the old end of the LRU (arrival order) not updated for a window and
 * the lateness allowance of arrival time. */
static void expire(correlate_engine *e, uint32_t corr)
{
    struct cstate *st = &e->states[corr];
    if (e->clock_us == INT64_MIN) return;
    int64_t h = e->clock_us - e->opt.lateness_us - e->set->corrs[corr]->pub.timespan_us;
    while (st->oldest && st->oldest->count && st->oldest->arrival_us < h) {
        st->stats.expired_events += st->oldest->count;
        key_remove(st, st->oldest);
    }
}

/* ---- windows ------------------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void scratch_fit(correlate_engine *e, uint32_t n)
{
    if (n <= e->scratch_cap) return;
    e->scratch_cap = n;
    e->sel = mamori_xrealloc(e->sel, n * sizeof *e->sel);
    e->hashes = mamori_xrealloc(e->hashes, n * sizeof *e->hashes);
}

/* Does the window entries[lo..j] hold the correlation (the new match p inside it)? Fills
 * the contributing entries into sc->sel. */
static bool window_holds(const struct cdef *d, const struct ckey *k, uint32_t lo, uint32_t j, uint32_t p,
                         correlate_engine *sc, uint32_t *nsel, double *value)
{
    const struct centry *E = k->entries;
    uint32_t n = j - lo + 1, s = 0;
    *nsel = 0;
    switch (d->pub.type) {
    case CORRELATE_EVENT_COUNT:
        *value = n;
        break;
    case CORRELATE_VALUE_COUNT: {
        for (uint32_t i = 0; i < n; i++) sc->hashes[i] = E[lo + i].value_hash;
        qsort(sc->hashes, n, sizeof *sc->hashes, cmp_u64);
        uint32_t distinct = n ? 1 : 0;
        for (uint32_t i = 1; i < n; i++) distinct += sc->hashes[i] != sc->hashes[i - 1];
        *value = distinct;
        break;
    }
    case CORRELATE_TEMPORAL: {
        uint64_t seen = 0;
        for (uint32_t i = lo; i <= j; i++) seen |= (uint64_t)1 << E[i].pos;
        *value = __builtin_popcountll(seen);
        if (!d->cond.has) {
            if (*value != d->pub.rule_count) return false;
        } else if (!ccond_holds(&d->cond, *value)) {
            return false;
        }
        for (uint32_t i = lo; i <= j; i++) sc->sel[s++] = i;
        *nsel = s;
        return true;
    }
    case CORRELATE_TEMPORAL_ORDERED: {
        uint32_t want = 0;
        for (uint32_t i = lo; i <= j && want < d->pub.rule_count; i++)
            if (E[i].pos == want && !(s && centry_same_event(&E[sc->sel[s - 1]], &E[i]))) sc->sel[s++] = i, want++;
        *value = want;
        if (!d->cond.has ? want != d->pub.rule_count : !ccond_holds(&d->cond, want)) return false;
        *nsel = s;
        return true;
    }
    case CORRELATE_VALUE_SUM:
    case CORRELATE_VALUE_AVG: {
        double sum = 0;
        for (uint32_t i = lo; i <= j; i++) sum += E[i].number;
        *value = d->pub.type == CORRELATE_VALUE_SUM ? sum : sum / n;
        break;
    }
    case CORRELATE_VALUE_PERCENTILE: {
        uint32_t same = 0;
        for (uint32_t i = lo; i <= j; i++) same += E[i].value_hash == E[p].value_hash;
        *value = 100.0 * same / n;
        if (!ccond_holds(&d->cond, *value)) return false;
        for (uint32_t i = lo; i <= j; i++)
            if (E[i].value_hash == E[p].value_hash) sc->sel[s++] = i;
        *nsel = s;
        return true;
    }
    default:
        return false;
    }
    if (!ccond_holds(&d->cond, *value)) return false;
    for (uint32_t i = lo; i <= j; i++) sc->sel[s++] = i;
    *nsel = s;
    return true;
}

/* ---- firing -------------------------------------------------------------------------------------- */

struct feed_ctx {
    correlate_engine *e;
    correlate_alert_fn fn;
    void *ctx;
    bool late; /* late for at least one correlation */
};

static void process_target(struct feed_ctx *f, const correlate_match *m, const struct mtarget *t, uint32_t depth);

static correlate_match *chain_match(const correlate_set *s, uint32_t corr, const correlate_alert *a)
{
    uint32_t first = s->corr_first[corr], end = s->corr_first[corr + 1];
    if (first == end) return NULL;
    correlate_match *m = cmatch_new(a->last_us, end - first);
    m->chained = true;
    for (size_t i = 0; i < a->event_count; i++) buf_append(&m->blob, a->event_ids[i], strlen(a->event_ids[i]) + 1);
    m->id_count = (uint32_t)a->event_count;
    for (uint32_t i = first; i < end; i++) add_target(m, s, &s->corr_consumers[i], alert_text, (void *)a);
    return m;
}

static void fire(struct feed_ctx *f, uint32_t corr, struct ckey *k, uint32_t nsel, double value, uint32_t depth)
{
    correlate_engine *e = f->e;
    const correlate_set *s = e->set;
    const struct cdef *d = s->corrs[corr];
    struct cstate *st = &e->states[corr];
    st->stats.alerts++;

    /* group values: the key is (u32 length, bytes) per group-by field */
    const char *values[CORRELATE_GROUP_BY_MAX];
    char *copy = mamori_xmalloc(k->key_len + d->pub.group_count + 1);
    size_t at = 0, o = 0;
    for (uint32_t g = 0; g < d->pub.group_count; g++) {
        uint32_t len;
        memcpy(&len, k->key + at, sizeof len);
        at += sizeof len;
        memcpy(copy + o, k->key + at, len);
        values[g] = copy + o;
        o += len;
        copy[o++] = '\0';
        at += len;
    }
    /* contributing event ids, in event-time order, each once in a row */
    size_t id_total = 0;
    for (uint32_t i = 0; i < nsel; i++) id_total += k->entries[e->sel[i]].id_count;
    const char **ids = mamori_xmalloc((id_total ? id_total : 1) * sizeof *ids);
    size_t nid = 0;
    for (uint32_t i = 0; i < nsel; i++) {
        const struct centry *ent = &k->entries[e->sel[i]];
        const char *p = ent->data;
        for (uint32_t x = 0; x < ent->id_count; x++) {
            bool dup = false;
            /* an event matching several referenced rules is listed once (exactly up to 256
             * ids, else against the last 8) */
            size_t back = id_total <= 256 ? nid : MAMORI_MIN(nid, (size_t)8);
            for (size_t y = nid; y > nid - back && !dup; y--) dup = !strcmp(ids[y - 1], p);
            if (!dup) ids[nid++] = p;
            p += strlen(p) + 1;
        }
    }
    correlate_alert a = {
        .rule = &d->pub,
        .group_values = values,
        .event_ids = ids,
        .event_count = nid,
        .first_us = k->entries[e->sel[0]].time_us,
        .last_us = k->entries[e->sel[nsel - 1]].time_us,
        .value = value,
        .group_key = k->key,
        .group_key_len = k->key_len,
        .emit = s->corr_emit[corr],
    };
    if (f->fn) f->fn(f->ctx, &a);
    correlate_match *next = depth < CORRELATE_CHAIN_DEPTH_MAX ? chain_match(s, corr, &a) : NULL;
    free(ids);
    free(copy);

    /* consume the contributing matches: the next alert needs fresh ones */
    uint32_t w = 0, x = 0;
    for (uint32_t i = 0; i < k->count; i++) {
        if (x < nsel && e->sel[x] == i) {
            entry_free(&k->entries[i]);
            x++;
            continue;
        }
        k->entries[w++] = k->entries[i];
    }
    k->count = w;
    st->stats.events -= nsel;

    if (next) {
        for (uint32_t i = 0; i < next->target_count; i++) process_target(f, next, &next->targets[i], depth + 1);
        correlate_match_destroy(next);
    }
}

/* Checks the windows containing the new entry p: the ones ending at p and at each later
 * match at most one timespan after it (those exist when p arrived out of order). Fires at
 * most once. */
static void evaluate(struct feed_ctx *f, uint32_t corr, struct ckey *k, uint32_t p, uint32_t depth)
{
    const struct cdef *d = f->e->set->corrs[corr];
    /* in order, the new match is the newest: a sequence completed without it would have fired
     * when it completed */
    if (f->e->opt.ordered && d->pub.type == CORRELATE_TEMPORAL_ORDERED && !d->cond.has &&
        k->entries[p].pos != d->pub.rule_count - 1)
        return;
    int64_t span = d->pub.timespan_us, tp = k->entries[p].time_us;
    scratch_fit(f->e, k->count);
    uint32_t last = d->pub.type == CORRELATE_VALUE_PERCENTILE ? p : k->count - 1;
    uint32_t lo = 0;
    for (uint32_t j = p; j <= last && k->entries[j].time_us - tp <= span; j++) {
        int64_t start = k->entries[j].time_us - span;
        while (k->entries[lo].time_us < start) lo++;
        uint32_t nsel;
        double value;
        if (window_holds(d, k, lo, j, p, f->e, &nsel, &value) && nsel) {
            fire(f, corr, k, nsel, value, depth);
            return;
        }
    }
}

static void process_target(struct feed_ctx *f, const correlate_match *m, const struct mtarget *t, uint32_t depth)
{
    correlate_engine *e = f->e;
    const struct cdef *d = e->set->corrs[t->corr];
    struct cstate *st = &e->states[t->corr];
    st->stats.matches++;
    if (t->missing) {
        st->stats.missing_field++;
        return;
    }
    if ((d->pub.type == CORRELATE_VALUE_SUM || d->pub.type == CORRELATE_VALUE_AVG) && !t->numeric) {
        st->stats.not_numeric++;
        return;
    }
    expire(e, t->corr);
    const char *key = m->blob.data + t->key_off;
    struct ckey *k = cstate_key(e, t->corr, key, t->key_len, false);
    /* late: older than its key's newest match minus the allowance (a key's own watermark) */
    if (k && !m->chained && m->time_us < k->newest_us - e->opt.lateness_us) {
        st->stats.late++;
        f->late = true;
        return;
    }
    if (!k) k = cstate_key(e, t->corr, key, t->key_len, true);
    k->arrival_us = e->clock_us;
    lru_unlink(st, k);
    lru_push(st, k);
    prune_key(st, k, key_horizon(e, d, k));

    /* at-least-once delivery (a batch evaluated again, its matches re-published: §11.8) must
     * not count an event twice: a base match whose event the key holds already, for the same
     * rule position and time, is ignored (entries are sorted by time: a binary search) */
    if (m->id_count == 1) {
        uint32_t lo = 0, hi = k->count;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (k->entries[mid].time_us < m->time_us) lo = mid + 1;
            else hi = mid;
        }
        for (uint32_t i = lo; i < k->count && k->entries[i].time_us == m->time_us; i++) {
            const struct centry *x = &k->entries[i];
            if (x->pos == t->pos && x->id_count == 1 && !strcmp(x->data, m->blob.data)) {
                st->stats.duplicates++;
                k->version = ++e->version; /* pushed to the newest end above: keep versions in LRU order */
                return;
            }
        }
    }
    size_t ids_len = 0;
    for (uint32_t i = 0; i < m->id_count; i++) ids_len += strlen(m->blob.data + ids_len) + 1;
    bool has_value = t->value_off != UINT32_MAX;
    size_t data_len = ids_len + (has_value ? t->value_len + 1 : 0);
    struct centry ent = {
        .time_us = m->time_us,
        .seq = ++e->seq,
        .pos = t->pos,
        .id_count = m->id_count,
        .number = t->number,
        .value_hash = t->value_hash,
        .data = mamori_xmalloc(data_len),
        .data_len = (uint32_t)data_len,
        .has_value = has_value,
    };
    memcpy(ent.data, m->blob.data, ids_len);
    if (has_value) {
        memcpy(ent.data + ids_len, m->blob.data + t->value_off, t->value_len);
        ent.data[ids_len + t->value_len] = '\0';
    }
    uint32_t p = ckey_insert(e, t->corr, k, &ent);
    if (p != UINT32_MAX) evaluate(f, t->corr, k, p, depth);
    /* k is the newest of its LRU list (pushed above; chained alerts touch other correlations
     * only), so versions decrease from the newest key: correlate_state_delta relies on it */
    if (!k->count) key_remove(st, k);
    else k->version = ++e->version;
}

/* ---- engine ------------------------------------------------------------------------------------------ */

correlate_engine *correlate_engine_create(const correlate_set *set, const correlate_options *opt)
{
    correlate_engine *e = mamori_xcalloc(1, sizeof *e);
    e->set = set;
    if (opt) e->opt = *opt;
    else correlate_options_default(&e->opt);
    if (!e->opt.keys_max) e->opt.keys_max = 1;
    if (!e->opt.events_per_key_max) e->opt.events_per_key_max = 1;
    if (e->opt.lateness_us < 0) e->opt.lateness_us = 0;
    if (e->opt.lateness_us > CORRELATE_LATENESS_MAX_US) e->opt.lateness_us = CORRELATE_LATENESS_MAX_US;
    e->states = mamori_xcalloc(set->count ? set->count : 1, sizeof *e->states);
    e->watermark_us = INT64_MIN;
    e->clock_us = INT64_MIN;
    return e;
}

void correlate_engine_destroy(correlate_engine *e)
{
    if (!e) return;
    for (uint32_t c = 0; c < e->set->count; c++) {
        cstate_clear(e, c);
        free(e->states[c].buckets);
        buf_fini(&e->states[c].removed);
    }
    free(e->states);
    free(e->sel);
    free(e->hashes);
    free(e);
}

/* Keys restored from a checkpoint (or carried over a reload) arrive now: their windows stay
 * open for a window and the allowance of arrival time from here, however long the process
 * was down (their event times decide what is late and what they pair with). Once. */
static void restored_arrive(correlate_engine *e)
{
    e->arrival_fix = false;
    for (uint32_t c = 0; c < e->set->count; c++)
        for (struct ckey *k = e->states[c].oldest; k; k = k->newer)
            if (k->arrival_us == INT64_MIN) k->arrival_us = e->clock_us;
}

void correlate_engine_feed(correlate_engine *e, const correlate_match *m, correlate_alert_fn fn, void *ctx)
{
    if (!m) return;
    if (!m->chained) {
        /* never ahead of the receive time: a clock ahead must not move the watermark */
        int64_t t = m->time_us < m->received_us ? m->time_us : m->received_us;
        if (t > e->watermark_us) e->watermark_us = t;
        /* arrival: the receive time when known (live), else the match time (time-ordered input) */
        int64_t a = m->received_us != INT64_MAX ? m->received_us : m->time_us;
        if (a > e->clock_us) e->clock_us = a;
        if (e->arrival_fix) restored_arrive(e);
    }
    struct feed_ctx f = {.e = e, .fn = fn, .ctx = ctx};
    for (uint32_t i = 0; i < m->target_count; i++) process_target(&f, m, &m->targets[i], 0);
    if (f.late) e->late++;
}

void correlate_engine_feed_event(correlate_engine *e, const detect_rule *rule, const mamori_event *ev, int64_t time_us,
                                 const char *event_id, correlate_alert_fn fn, void *ctx)
{
    correlate_match *m = correlate_match_create(e->set, rule, ev, time_us, event_id);
    correlate_engine_feed(e, m, fn, ctx);
    correlate_match_destroy(m);
}

int64_t correlate_engine_watermark(const correlate_engine *e) { return e->watermark_us; }

void correlate_engine_stats(const correlate_engine *e, size_t index, correlate_stats *out)
{
    memset(out, 0, sizeof *out);
    if (index != SIZE_MAX) {
        MAMORI_ASSERT(index < e->set->count);
        *out = e->states[index].stats;
        return;
    }
    for (uint32_t c = 0; c < e->set->count; c++) {
        const correlate_stats *s = &e->states[c].stats;
        out->matches += s->matches;
        out->missing_field += s->missing_field;
        out->not_numeric += s->not_numeric;
        out->evicted_keys += s->evicted_keys;
        out->evicted_events += s->evicted_events;
        out->expired_events += s->expired_events;
        out->alerts += s->alerts;
        out->duplicates += s->duplicates;
        out->keys += s->keys;
        out->events += s->events;
    }
    out->late = e->late;
}

/* ---- alerts ------------------------------------------------------------------------------------------- */

static const char *rule_key(const correlate_rule *r) { return r->info.id[0] ? r->info.id : r->info.title; }

void correlate_alert_id(const correlate_alert *a, char *out)
{
    buf b;
    buf_init(&b);
    buf_putc(&b, 0);
    const char *key = rule_key(a->rule);
    buf_append(&b, key, strlen(key) + 1);
    put_u32(&b, (uint32_t)a->group_key_len);
    buf_append(&b, a->group_key, a->group_key_len);
    const char *first = a->event_count ? a->event_ids[0] : "";
    buf_append(&b, first, strlen(first));
    uint64_t h1 = mamori_hash64(b.data, b.len);
    b.data[0] = 1;
    uint64_t h2 = mamori_hash64(b.data, b.len);
    buf_fini(&b);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
}

static void put_time(buf *out, int64_t us)
{
    char t[64];
    size_t n = clock_format_rfc3339(us, t);
    json_write_string(out, t, n);
}

void correlate_alert_write_json(buf *out, const correlate_alert *a)
{
    const correlate_rule *r = a->rule;
    char id[33];
    correlate_alert_id(a, id);
    buf_puts(out, "{\"id\":\"");
    buf_puts(out, id);
    buf_puts(out, "\",\"type\":\"");
    buf_puts(out, correlate_type_name(r->type));
    buf_puts(out, "\",\"timespan\":");
    json_write_string(out, r->timespan, strlen(r->timespan));
    buf_puts(out, ",\"group\":{");
    for (uint32_t g = 0; g < r->group_count; g++) {
        if (g) buf_putc(out, ',');
        json_write_string(out, r->group_by[g], strlen(r->group_by[g]));
        buf_putc(out, ':');
        json_write_string(out, a->group_values[g], strlen(a->group_values[g]));
    }
    buf_puts(out, "},\"window\":{\"first\":");
    put_time(out, a->first_us);
    buf_puts(out, ",\"last\":");
    put_time(out, a->last_us);
    buf_puts(out, "},\"value\":");
    if (a->value == floor(a->value) && fabs(a->value) < 1e15) buf_put_i64(out, (int64_t)a->value);
    else buf_printf(out, "%.17g", a->value);
    buf_puts(out, ",\"event_count\":");
    buf_put_u64(out, a->event_count);
    buf_puts(out, ",\"events\":[");
    for (size_t i = 0; i < a->event_count; i++) {
        if (i) buf_putc(out, ',');
        json_write_string(out, a->event_ids[i], strlen(a->event_ids[i]));
    }
    buf_puts(out, "]}");
}

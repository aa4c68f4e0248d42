/* detect/correlate_seq.c — the correlation engine as search's sequence machine: a set holding
 * one temporal_ordered correlation whose steps are matched by the caller (search evaluates its
 * EQL predicates itself), plus the two questions search asks of the state — how far a key's
 * in-order prefix reaches (so it fetches only events that can take part in a sequence) and
 * `until` (forget a key). Windows, ordering, consumption and alert contents are the engine's
 * own (correlate.c), so a search `sequence` lists exactly what a deployed temporal_ordered
 * correlation would alert on the same events. docs/search.md "Sequences". */
#include "correlate_internal.h"

#include <string.h>

/* "unbounded": far beyond any event time, far from overflowing window arithmetic (times are
 * clamped to ±2^62 µs) */
#define SEQ_SPAN_UNBOUNDED ((int64_t)1 << 61)

static const char *const seq_group_by[1] = {"by"};

correlate_set *correlate_sequence_set_create(uint32_t steps, int64_t span_us)
{
    MAMORI_ASSERT(steps >= 2 && steps <= CORRELATE_RULES_MAX);
    correlate_set *s = mamori_xcalloc(1, sizeof *s);
    s->defs = mamori_xcalloc(1, sizeof *s->defs);
    arena_init(&s->defs->mem, 1024);
    s->defs->taken = true;
    struct cdef *d = arena_alloc(&s->defs->mem, sizeof *d);
    memset(d, 0, sizeof *d);
    d->pub.info.id = "";
    d->pub.info.name = "";
    d->pub.info.title = "sequence";
    d->pub.info.status = "";
    d->pub.info.level_name = "";
    d->pub.info.file = "";
    d->pub.type = CORRELATE_TEMPORAL_ORDERED;
    d->pub.timespan_us = span_us > 0 && span_us < SEQ_SPAN_UNBOUNDED ? span_us : SEQ_SPAN_UNBOUNDED;
    d->pub.timespan = "";
    d->pub.group_by = seq_group_by;
    d->pub.group_count = 1;
    d->pub.rule_count = steps;
    d->done = true;
    s->corrs = mamori_xcalloc(1, sizeof *s->corrs);
    s->corrs[0] = d;
    s->count = 1;
    s->rule_count = steps;
    s->rule_first = mamori_xcalloc(steps + 1, sizeof *s->rule_first);
    s->rule_consumers = mamori_xcalloc(steps, sizeof *s->rule_consumers);
    for (uint32_t r = 0; r < steps; r++) {
        s->rule_first[r] = r;
        s->rule_consumers[r] = (struct consumer){.corr = 0, .pos = r, .group_fields = seq_group_by};
    }
    s->rule_first[steps] = steps;
    s->corr_first = mamori_xcalloc(2, sizeof *s->corr_first); /* nothing chains */
    s->rule_standalone = mamori_xcalloc(steps, sizeof *s->rule_standalone);
    s->corr_emit = mamori_xcalloc(1, sizeof *s->corr_emit);
    s->corr_emit[0] = true;
    return s;
}

/* The engine's key: the group-by values, each as u32 length + bytes (here one value). */
static void encode_key(buf *b, const char *key, size_t key_len)
{
    uint32_t len = (uint32_t)key_len;
    buf_append(b, &len, sizeof len);
    buf_append(b, key, key_len);
}

correlate_match *correlate_sequence_match(const correlate_set *set, uint32_t step, int64_t time_us,
                                          const char *event_id, const char *key, size_t key_len)
{
    MAMORI_ASSERT(set->count == 1 && step < set->rule_count && key_len <= UINT32_MAX);
    correlate_match *m = cmatch_new(time_us, 1);
    buf_append(&m->blob, event_id, strlen(event_id) + 1);
    m->id_count = 1;
    struct mtarget *t = &m->targets[m->target_count++];
    memset(t, 0, sizeof *t);
    t->corr = 0;
    t->pos = step;
    t->value_off = UINT32_MAX;
    t->key_off = (uint32_t)m->blob.len;
    encode_key(&m->blob, key, key_len);
    t->key_len = (uint32_t)m->blob.len - t->key_off;
    return m;
}

static struct ckey *find_key(correlate_engine *e, const char *key, size_t key_len)
{
    char small[256]; /* asked per event a search fetches: no allocation for ordinary keys */
    uint32_t len = (uint32_t)key_len;
    if (key_len + sizeof len <= sizeof small) {
        memcpy(small, &len, sizeof len);
        memcpy(small + sizeof len, key, key_len);
        return cstate_key(e, 0, small, (uint32_t)(key_len + sizeof len), false);
    }
    buf b;
    buf_init(&b);
    encode_key(&b, key, key_len);
    struct ckey *k = cstate_key(e, 0, b.data, (uint32_t)b.len, false);
    buf_fini(&b);
    return k;
}

uint32_t correlate_engine_sequence_prefix(correlate_engine *e, const char *key, size_t key_len, int64_t time_us)
{
    MAMORI_ASSERT(e->set->count == 1 && e->set->corrs[0]->pub.type == CORRELATE_TEMPORAL_ORDERED);
    struct ckey *k = find_key(e, key, key_len);
    if (!k) return 0;
    const struct cdef *d = e->set->corrs[0];
    int64_t start = time_us - d->pub.timespan_us;
    /* entries are sorted by time: the window's first one by binary search */
    uint32_t lo = 0, hi = k->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (k->entries[mid].time_us < start) lo = mid + 1;
        else hi = mid;
    }
    /* the greedy earliest-first walk the engine's window check makes (window_holds): it finds
     * the longest in-order prefix */
    uint32_t want = 0, last = 0;
    for (uint32_t i = lo; i < k->count && k->entries[i].time_us <= time_us && want < d->pub.rule_count; i++)
        if (k->entries[i].pos == want && !(want && centry_same_event(&k->entries[last], &k->entries[i]))) {
            want++;
            last = i;
        }
    return want;
}

void correlate_engine_sequence_drop(correlate_engine *e, const char *key, size_t key_len)
{
    struct ckey *k = find_key(e, key, key_len);
    if (!k) return;
    e->states[0].stats.expired_events += k->count;
    ckey_remove(e, 0, k);
}

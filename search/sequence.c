/* search/sequence.c — a search `sequence` is run by the correlation engine (detect/correlate*.c):
 * its stages are the steps of one temporal_ordered correlation grouped by the join key, with
 * timespan = maxspan (unbounded without one). The executor evaluates the stages' predicates
 * and feeds each (event, stage, key) here in time order; the engine keeps the matches of each
 * key inside the window and, when the stages are complete in order, fires and consumes them
 * — exactly as a live correlation alert or `POST /v1/rules/test` would (docs/search.md
 * "Sequences"). This file adapts: events become matches named by their event id, alerts become
 * completed sequences, `until` forgets the key, and matches that can never take part in a
 * sequence (a stage whose earlier stages are not held in order inside the window) are not fed,
 * so the seeded executor, which fetches only events that may matter, sees the same state as a
 * full pass. */
#include "internal.h"

#include "detect/correlate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct seq_machine {
    uint32_t stages;
    int64_t maxspan_us;
    uint32_t max_keys;
    seq_done_fn fn;
    void *ctx;
    correlate_set *set;
    correlate_engine *e;
    int stop; /* fn asked to stop */
};

static void engine_new(seq_machine *m)
{
    correlate_options opt = {
        .keys_max = m->max_keys,
        .events_per_key_max = SEQ_EVENTS_PER_KEY_MAX,
        .lateness_us = 0, /* fed in time order: nothing is late, windows expire at once */
        .ordered = true,
    };
    m->e = correlate_engine_create(m->set, &opt);
}

seq_machine *seq_machine_create(uint32_t stages, int64_t maxspan_us, uint32_t max_keys, seq_done_fn fn, void *ctx)
{
    MAMORI_ASSERT(stages >= 2 && stages <= SEARCH_MAX_STAGES && SEARCH_MAX_STAGES <= CORRELATE_RULES_MAX);
    seq_machine *m = mamori_xcalloc(1, sizeof *m);
    m->stages = stages;
    m->maxspan_us = maxspan_us;
    m->max_keys = max_keys ? max_keys : 1;
    m->fn = fn;
    m->ctx = ctx;
    m->set = correlate_sequence_set_create(stages, maxspan_us);
    engine_new(m);
    return m;
}

void seq_machine_reset(seq_machine *m)
{
    correlate_engine_destroy(m->e);
    engine_new(m);
    m->stop = 0;
}

void seq_machine_destroy(seq_machine *m)
{
    if (!m) return;
    correlate_engine_destroy(m->e);
    correlate_set_destroy(m->set);
    free(m);
}

uint32_t seq_machine_waiting(seq_machine *m, const char *key, size_t key_len, int64_t ts_us)
{
    uint32_t prefix = correlate_engine_sequence_prefix(m->e, key, key_len, ts_us);
    if (prefix >= m->stages) prefix = m->stages - 1;
    /* stages 1..prefix */
    return prefix ? (uint32_t)(((1ull << (prefix + 1)) - 1) & ~1ull) : 0;
}

static void on_alert(void *ctx, const correlate_alert *a)
{
    seq_machine *m = ctx;
    if (m->stop || !a->emit) return;
    /* the engine's group key is the join key behind a u32 length */
    MAMORI_ASSERT(a->group_key_len >= sizeof(uint32_t));
    const char *key = a->group_key + sizeof(uint32_t);
    size_t key_len = a->group_key_len - sizeof(uint32_t);
    /* one event per stage: stages of one event are fed last to first, so an event never
     * completes its own sequence */
    MAMORI_ASSERT(a->event_count == m->stages);
    seq_event done[SEARCH_MAX_STAGES];
    for (uint32_t i = 0; i < m->stages; i++) {
        store_event_ref *r = &done[i].ref;
        const char *id = a->event_ids[i];
        int rc = event_id_parse(id, strlen(id), &r->ts_us, &r->agent_hash, &r->seq, &r->index);
        MAMORI_ASSERT(rc == 0); /* ids are the ones seq_machine_feed formatted */
        done[i].ts_us = r->ts_us;
    }
    if (m->fn(m->ctx, key, key_len, done, m->stages)) m->stop = 1;
}

int seq_machine_feed(seq_machine *m, uint32_t stage_mask, bool until_match, const char *key, size_t key_len,
                     const seq_event *ev)
{
    int64_t wm = correlate_engine_watermark(m->e);
    if (wm != INT64_MIN && ev->ts_us < wm) return -EDOM; /* an executor bug: refused, never dropped */
    if (until_match) { /* ends the key's partial sequences; the event itself starts nothing */
        correlate_engine_sequence_drop(m->e, key, key_len);
        return 0;
    }
    char id[EVENT_ID_HEX_CHARS + 1];
    event_id_format(ev->ref.ts_us, ev->ref.agent_hash, ev->ref.seq, ev->ref.index, id);
    /* last stage first, so one event never serves two stages of one sequence */
    for (uint32_t s = m->stages; s-- > 0 && !m->stop;) {
        if (!(stage_mask & (1u << s))) continue;
        if (s && correlate_engine_sequence_prefix(m->e, key, key_len, ev->ts_us) < s) continue; /* can never count */
        correlate_match *cm = correlate_sequence_match(m->set, s, ev->ts_us, id, key, key_len);
        correlate_engine_feed(m->e, cm, on_alert, m);
        correlate_match_destroy(cm);
    }
    correlate_stats st;
    correlate_engine_stats(m->e, 0, &st);
    if (st.evicted_keys || st.evicted_events || st.late || st.events > SEQ_EVENTS_MAX) return -E2BIG;
    return m->stop;
}

/* search/sequence.c — the sequence state machine: per join key, the newest partial
 * sequence waiting at each stage. An event matching stage k advances the partial waiting
 * at k-1 (if still within maxspan of its first event); matching stage 0 starts a new one;
 * matching `until` drops the key's partials (and is used for nothing else). Stages are tried last to first so one event
 * never advances a partial it just created. Fed in time order by the executor; kept apart
 * from it so the correlation engine (issue 5) can replace it behind this interface. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct key_state {
    char *key;
    uint32_t key_len;
    int64_t last_ts;
    uint32_t *lens;  /* per waiting stage (stages-1): events held, 0 = none */
    seq_event *evs;  /* (stages-1) x stages */
} key_state;

struct seq_machine {
    uint32_t stages;
    int64_t maxspan_us;
    uint32_t max_keys;
    seq_done_fn fn;
    void *ctx;
    key_state *keys;
    uint32_t count, cap;
    uint32_t *table; /* key + 1 */
    uint32_t mask;
    int64_t now;
};

seq_machine *seq_machine_create(uint32_t stages, int64_t maxspan_us, uint32_t max_keys, seq_done_fn fn, void *ctx)
{
    MAMORI_ASSERT(stages >= 2 && stages <= SEARCH_MAX_STAGES);
    seq_machine *m = mamori_xcalloc(1, sizeof *m);
    m->stages = stages;
    m->maxspan_us = maxspan_us;
    m->max_keys = max_keys ? max_keys : 1;
    m->fn = fn;
    m->ctx = ctx;
    m->mask = 1023;
    m->table = mamori_xcalloc(m->mask + 1, sizeof *m->table);
    return m;
}

static void key_free(key_state *k)
{
    free(k->key);
    free(k->lens);
    free(k->evs);
}

void seq_machine_reset(seq_machine *m)
{
    for (uint32_t i = 0; i < m->count; i++) key_free(&m->keys[i]);
    m->count = 0;
    memset(m->table, 0, (m->mask + 1) * sizeof *m->table);
}

void seq_machine_destroy(seq_machine *m)
{
    if (!m) return;
    seq_machine_reset(m);
    free(m->keys);
    free(m->table);
    free(m);
}

static void rebuild(seq_machine *m, uint32_t size)
{
    free(m->table);
    m->table = mamori_xcalloc(size, sizeof *m->table);
    m->mask = size - 1;
    for (uint32_t i = 0; i < m->count; i++) {
        uint32_t h = (uint32_t)mamori_hash64(m->keys[i].key, m->keys[i].key_len) & m->mask;
        while (m->table[h]) h = (h + 1) & m->mask;
        m->table[h] = i + 1;
    }
}

/* Drops keys with nothing left inside maxspan. */
static void sweep(seq_machine *m)
{
    if (!m->maxspan_us) return;
    uint32_t w = 0;
    for (uint32_t i = 0; i < m->count; i++) {
        if (m->now - m->keys[i].last_ts > m->maxspan_us) key_free(&m->keys[i]);
        else m->keys[w++] = m->keys[i];
    }
    m->count = w;
    rebuild(m, m->mask + 1);
}

static key_state *find(seq_machine *m, const char *key, size_t len, bool create, int *err)
{
    uint32_t h = (uint32_t)mamori_hash64(key, len) & m->mask;
    while (m->table[h]) {
        key_state *k = &m->keys[m->table[h] - 1];
        if (k->key_len == len && memcmp(k->key, key, len) == 0) return k;
        h = (h + 1) & m->mask;
    }
    if (!create) return NULL;
    if (m->count >= m->max_keys) {
        sweep(m);
        if (m->count >= m->max_keys) {
            *err = -E2BIG;
            return NULL;
        }
        return find(m, key, len, create, err);
    }
    if (m->count == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->keys = mamori_xrealloc(m->keys, m->cap * sizeof *m->keys);
    }
    key_state *k = &m->keys[m->count];
    k->key = mamori_xmalloc(len ? len : 1);
    memcpy(k->key, key, len);
    k->key_len = (uint32_t)len;
    k->last_ts = m->now;
    k->lens = mamori_xcalloc(m->stages - 1, sizeof *k->lens);
    k->evs = mamori_xcalloc((size_t)(m->stages - 1) * m->stages, sizeof *k->evs);
    m->table[h] = ++m->count;
    if (m->count * 2 > m->mask) rebuild(m, (m->mask + 1) * 2);
    return &m->keys[m->count - 1];
}

uint32_t seq_machine_waiting(seq_machine *m, const char *key, size_t key_len, int64_t ts_us)
{
    int err = 0;
    key_state *k = find(m, key, key_len, false, &err);
    if (!k) return 0;
    uint32_t mask = 0;
    for (uint32_t s = 1; s < m->stages; s++) {
        if (!k->lens[s - 1]) continue;
        /* a partial older than maxspan at ts can never advance (feed drops it unused) */
        if (m->maxspan_us && ts_us - k->evs[(size_t)(s - 1) * m->stages].ts_us > m->maxspan_us) continue;
        mask |= 1u << s;
    }
    return mask;
}

int seq_machine_feed(seq_machine *m, uint32_t stage_mask, bool until_match, const char *key, size_t key_len,
                     const seq_event *ev)
{
    m->now = ev->ts_us;
    int err = 0;
    key_state *k = find(m, key, key_len, (stage_mask & 1u) != 0, &err);
    if (err) return err;
    if (!k) return 0;
    k->last_ts = ev->ts_us;
    uint32_t n = m->stages;
    if (until_match) { /* ends the key's partial sequences; the event itself starts nothing */
        memset(k->lens, 0, (n - 1) * sizeof *k->lens);
        return 0;
    }
    for (uint32_t s = n - 1; s >= 1; s--) {
        if (!(stage_mask & (1u << s)) || k->lens[s - 1] == 0) continue;
        seq_event *prev = &k->evs[(size_t)(s - 1) * n];
        uint32_t have = k->lens[s - 1];
        k->lens[s - 1] = 0;
        if (m->maxspan_us && ev->ts_us - prev[0].ts_us > m->maxspan_us) continue; /* expired */
        if (s == n - 1) {
            seq_event done[SEARCH_MAX_STAGES];
            memcpy(done, prev, have * sizeof *prev);
            done[have] = *ev;
            if (m->fn(m->ctx, k->key, k->key_len, done, have + 1)) return 1;
            /* fn may not touch the machine; k stays valid */
        } else {
            seq_event *next = &k->evs[(size_t)s * n];
            memmove(next, prev, have * sizeof *prev);
            next[have] = *ev;
            k->lens[s] = have + 1;
        }
    }
    if (stage_mask & 1u) {
        k->evs[0] = *ev;
        k->lens[0] = 1;
    }
    return 0;
}

/* store/posting.c — the compact posting list stored as an index value: the event refs of
 * one (tenant, day, field, value) in one time slice, ascending. Layout (docs/storage.md):
 *
 *   u8 format (1) | varint count | varint max_ts - min_ts | varint agents | agents x be64
 *   then per entry: varint ts delta | varint sel | [varint slot] | [varint zigzag seq delta]
 *
 * sel bit 0: the agent differs from the previous entry's (slot follows); bit 1: the seq
 * differs from that agent's previous entry (seq delta follows, sel >> 2 is the index);
 * otherwise sel >> 2 is the zigzag index delta against the agent's previous entry. A
 * dense per-host list costs 2-3 bytes per entry. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define POSTING_FORMAT 1u

void ix_encoder_init(ix_encoder *e)
{
    memset(e, 0, sizeof *e);
    buf_init(&e->body);
}

void ix_encoder_fini(ix_encoder *e)
{
    free(e->agent_keys);
    free(e->agent_slots);
    free(e->agent_gen);
    free(e->agents);
    free(e->last_seq);
    free(e->last_index);
    buf_fini(&e->body);
    memset(e, 0, sizeof *e);
}

static inline uint32_t agent_bucket(uint64_t h) { return (uint32_t)((h * 0x9E3779B97F4A7C15ull) >> 32); }

static void encoder_table_insert(ix_encoder *e, uint64_t agent, uint32_t slot)
{
    uint32_t i = agent_bucket(agent) & e->table_mask;
    while (e->agent_gen[i] == e->gen) i = (i + 1) & e->table_mask;
    e->agent_gen[i] = e->gen;
    e->agent_keys[i] = agent;
    e->agent_slots[i] = slot;
}

/* Makes room for one more agent in this posting (table load <= 1/2). */
static void encoder_grow(ix_encoder *e, uint32_t agents_used)
{
    if (agents_used + 1 > e->agent_cap) {
        uint32_t cap = e->agent_cap ? e->agent_cap * 2 : 64;
        e->agents = mamori_xrealloc(e->agents, cap * sizeof *e->agents);
        e->last_seq = mamori_xrealloc(e->last_seq, cap * sizeof *e->last_seq);
        e->last_index = mamori_xrealloc(e->last_index, cap * sizeof *e->last_index);
        e->agent_cap = cap;
    }
    uint32_t slots = e->table_mask ? e->table_mask + 1 : 0;
    if ((agents_used + 1) * 2 <= slots) return;
    uint32_t n = slots ? slots * 2 : 128;
    free(e->agent_keys);
    free(e->agent_slots);
    free(e->agent_gen);
    e->agent_keys = mamori_xmalloc(n * sizeof *e->agent_keys);
    e->agent_slots = mamori_xmalloc(n * sizeof *e->agent_slots);
    e->agent_gen = mamori_xcalloc(n, sizeof *e->agent_gen);
    e->table_mask = n - 1;
    e->gen = 1;
    for (uint32_t s = 0; s < agents_used; s++) encoder_table_insert(e, e->agents[s], s);
}

static uint32_t encoder_slot(ix_encoder *e, uint64_t agent, uint32_t *agents_used)
{
    if (e->table_mask) {
        uint32_t i = agent_bucket(agent) & e->table_mask;
        while (e->agent_gen[i] == e->gen) {
            if (e->agent_keys[i] == agent) return e->agent_slots[i];
            i = (i + 1) & e->table_mask;
        }
    }
    encoder_grow(e, *agents_used);
    uint32_t slot = (*agents_used)++;
    e->agents[slot] = agent;
    e->last_seq[slot] = 0;
    e->last_index[slot] = 0;
    encoder_table_insert(e, agent, slot);
    return slot;
}

void ix_posting_encode(ix_encoder *e, const store_event_ref *refs, size_t n, buf *out)
{
    MAMORI_ASSERT(n >= 1 && n <= UINT32_MAX);
    /* new generation: every table slot reads as empty */
    e->gen++;
    if (e->gen == 0) {
        if (e->agent_gen) memset(e->agent_gen, 0, (e->table_mask + 1) * sizeof *e->agent_gen);
        e->gen = 1;
    }
    buf_clear(&e->body);
    uint32_t agents_used = 0, prev_slot = 0;
    int64_t prev_ts = refs[0].ts_us;
    uint64_t prev_agent = 0;
    for (size_t i = 0; i < n; i++) {
        const store_event_ref *r = &refs[i];
        MAMORI_DEBUG_ASSERT(i == 0 || store_ref_cmp(&refs[i - 1], r) < 0);
        uint32_t slot = (i && r->agent_hash == prev_agent) ? prev_slot : encoder_slot(e, r->agent_hash, &agents_used);
        prev_agent = r->agent_hash;
        uint64_t flags = 0, payload;
        if (slot != prev_slot) flags |= 1;
        if (r->seq != e->last_seq[slot]) {
            flags |= 2;
            payload = r->index;
        } else {
            payload = zigzag_encode((int64_t)r->index - (int64_t)e->last_index[slot]);
        }
        buf_reserve(&e->body, 40);
        uint8_t *p = (uint8_t *)e->body.data + e->body.len;
        size_t w = varint_put(p, (uint64_t)(r->ts_us - prev_ts));
        w += varint_put(p + w, payload << 2 | flags);
        if (flags & 1) w += varint_put(p + w, slot);
        if (flags & 2) w += varint_put(p + w, zigzag_encode((int64_t)(r->seq - e->last_seq[slot])));
        e->body.len += w;
        e->last_seq[slot] = r->seq;
        e->last_index[slot] = r->index;
        prev_slot = slot;
        prev_ts = r->ts_us;
    }
    buf_reserve(out, 32 + (size_t)agents_used * 8 + e->body.len);
    buf_putc(out, (char)POSTING_FORMAT);
    buf_put_varint(out, n);
    buf_put_varint(out, (uint64_t)(refs[n - 1].ts_us - refs[0].ts_us));
    buf_put_varint(out, agents_used);
    for (uint32_t s = 0; s < agents_used; s++) {
        uint8_t be[8];
        mamori_put_be64(be, e->agents[s]);
        buf_append(out, be, 8);
    }
    buf_append(out, e->body.data, e->body.len);
}

static int read_header(const uint8_t **p, const uint8_t *end, uint64_t *count, uint64_t *span, uint64_t *agents)
{
    if (*p >= end || **p != POSTING_FORMAT) return -EBADMSG;
    (*p)++;
    if (varint_get(p, end, count) || varint_get(p, end, span) || varint_get(p, end, agents)) return -EBADMSG;
    if (*count == 0 || *count > UINT32_MAX || *agents == 0 || *agents > *count) return -EBADMSG;
    if (*agents > (uint64_t)(end - *p) / 8) return -EBADMSG;
    return 0;
}

int ix_posting_max_ts(const uint8_t *value, size_t len, int64_t min_ts, int64_t *max_ts)
{
    const uint8_t *p = value;
    uint64_t count, span, agents;
    if (read_header(&p, value + len, &count, &span, &agents)) return -EBADMSG;
    *max_ts = (int64_t)((uint64_t)min_ts + span);
    return 0;
}

int ix_posting_header(const uint8_t *value, size_t len, int64_t min_ts, ix_posting_info *out)
{
    const uint8_t *p = value;
    uint64_t count, span, agents;
    if (read_header(&p, value + len, &count, &span, &agents)) return -EBADMSG;
    out->count = (uint32_t)count;
    out->max_ts = (int64_t)((uint64_t)min_ts + span);
    out->agents = p;
    out->agent_count = (uint32_t)agents;
    return 0;
}

int ix_cursor_open(ix_cursor *c, const uint8_t *value, size_t len, int64_t min_ts)
{
    memset(c, 0, sizeof *c);
    const uint8_t *p = value, *end = value + len;
    uint64_t count, span, agents;
    if (read_header(&p, end, &count, &span, &agents)) return -EBADMSG;
    c->agents = p;
    c->agent_count = (uint32_t)agents;
    c->p = p + agents * 8;
    c->end = end;
    c->remaining = (uint32_t)count;
    c->max_ts = (int64_t)((uint64_t)min_ts + span);
    c->cur.ts_us = min_ts;
    if (agents <= MAMORI_ARRAY_LEN(c->inline_seq)) {
        c->last_seq = c->inline_seq;
        c->last_index = c->inline_index;
    } else {
        c->heap_state = mamori_xcalloc(agents, sizeof(uint64_t) + sizeof(uint32_t));
        c->last_seq = c->heap_state;
        c->last_index = (uint32_t *)(c->last_seq + agents);
    }
    return 0;
}

/* varint_get with the one- and two-byte cases inline: dense postings are mostly those */
static inline int varint_fast(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    if (q < end && q[0] < 0x80) {
        *v = q[0];
        *p = q + 1;
        return 0;
    }
    if (end - q >= 2 && q[1] < 0x80) {
        *v = (uint64_t)(q[0] & 0x7f) | (uint64_t)q[1] << 7;
        *p = q + 2;
        return 0;
    }
    return varint_get(p, end, v);
}

int ix_cursor_next(ix_cursor *c)
{
    if (c->remaining == 0) return 0;
    uint64_t ts_delta, sel, slot = c->prev_slot, seq_delta = 0;
    if (varint_fast(&c->p, c->end, &ts_delta) || varint_fast(&c->p, c->end, &sel)) return -EBADMSG;
    if ((sel & 1) && varint_fast(&c->p, c->end, &slot)) return -EBADMSG;
    if ((sel & 2) && varint_fast(&c->p, c->end, &seq_delta)) return -EBADMSG;
    if (slot >= c->agent_count) return -EBADMSG;
    uint32_t s = (uint32_t)slot;
    store_event_ref *r = &c->cur;
    r->ts_us = (int64_t)((uint64_t)r->ts_us + ts_delta);
    r->agent_hash = mamori_get_be64(c->agents + (size_t)s * 8);
    if (sel & 2) {
        r->seq = c->last_seq[s] + (uint64_t)zigzag_decode(seq_delta);
        uint64_t index = sel >> 2;
        if (index > UINT32_MAX) return -EBADMSG;
        r->index = (uint32_t)index;
    } else {
        r->seq = c->last_seq[s];
        int64_t index = (int64_t)c->last_index[s] + zigzag_decode(sel >> 2);
        if (index < 0 || index > (int64_t)UINT32_MAX) return -EBADMSG;
        r->index = (uint32_t)index;
    }
    c->last_seq[s] = r->seq;
    c->last_index[s] = r->index;
    c->prev_slot = s;
    c->remaining--;
    if (r->ts_us > c->max_ts) return -EBADMSG;
    return 1;
}

void ix_cursor_close(ix_cursor *c)
{
    free(c->heap_state);
    c->heap_state = NULL;
}

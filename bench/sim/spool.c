/* bench/sim/spool.c — an agent's spool: the batches it sent and the server has not yet
 * made durable, oldest first, kept compressed exactly as they go on the wire so a resend
 * after a reconnect costs a write, not a re-render (docs/protocol.md §5). A ring of slots
 * whose frame buffers are reused, so the steady state allocates nothing. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

void spool_init(sim_spool *s)
{
    s->slots = NULL;
    s->cap = 0;
    s->head = 0;
    s->count = 0;
}

void spool_fini(sim_spool *s)
{
    for (uint32_t i = 0; i < s->cap; i++) buf_fini(&s->slots[i].frame);
    free(s->slots);
    spool_init(s);
}

/* Doubles the ring, keeping order (slots move; their buffers go with them). */
static void grow(sim_spool *s)
{
    uint32_t cap = s->cap ? s->cap * 2 : 16;
    sim_batch *slots = mamori_xcalloc(cap, sizeof *slots);
    for (uint32_t i = 0; i < s->count; i++) slots[i] = *spool_at(s, i);
    /* Buffers of free slots are kept too, so their memory is reused later. */
    uint32_t next = s->count;
    for (uint32_t i = s->count; i < s->cap; i++) slots[next++] = *spool_at(s, i);
    for (uint32_t i = next; i < cap; i++) buf_init(&slots[i].frame);
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    s->head = 0;
}

sim_batch *spool_push(sim_spool *s, uint64_t seq)
{
    MAMORI_ASSERT(!s->count || spool_back(s)->seq + 1 == seq);
    if (s->count == s->cap) grow(s);
    sim_batch *b = spool_at(s, s->count);
    s->count++;
    b->seq = seq;
    b->events = 0;
    b->malformed = 0;
    b->sent_us = 0;
    buf_clear(&b->frame);
    return b;
}

void spool_pop_front(sim_spool *s)
{
    MAMORI_ASSERT(s->count > 0);
    s->head = (s->head + 1) & (s->cap - 1);
    s->count--;
}

sim_batch *spool_find(sim_spool *s, uint64_t seq)
{
    sim_batch *front = spool_front(s);
    if (!front || seq < front->seq || seq - front->seq >= s->count) return NULL;
    sim_batch *b = spool_at(s, (uint32_t)(seq - front->seq));
    MAMORI_DEBUG_ASSERT(b->seq == seq);
    return b;
}

void spool_trim(sim_spool *s)
{
    for (uint32_t i = s->count; i < s->cap; i++) buf_fini(&spool_at(s, i)->frame);
}

/* ingest/registry.c — who each agent is talking through, and how far its batches got:
 * accepted (published to the bus) and durable (the bus said so). One mutex guards it; it
 * is touched per connection and per batch, never per event.
 *
 * The invariants behind "nothing acked is lost, nothing stored twice":
 *  - a batch is published only by the agent's current owner connection, only with
 *    seq == accepted + 1 (or > accepted for the first batch after WELCOME), and under the
 *    lock, so WELCOME's resume point (accepted) never runs ahead of the bus;
 *  - the durable callback raises durable and routes the ACK to the current owner. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

void registry_init(registry *r)
{
    pthread_mutex_init(&r->lock, NULL);
    r->bucket_count = 4096;
    r->buckets = mamori_xcalloc(r->bucket_count, sizeof *r->buckets);
    r->count = 0;
}

void registry_fini(registry *r)
{
    for (size_t i = 0; i < r->bucket_count; i++) {
        agent_entry *e = r->buckets[i];
        while (e) {
            agent_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(r->buckets);
    pthread_mutex_destroy(&r->lock);
}

static void grow(registry *r)
{
    size_t n = r->bucket_count * 2;
    agent_entry **b = mamori_xcalloc(n, sizeof *b);
    for (size_t i = 0; i < r->bucket_count; i++) {
        agent_entry *e = r->buckets[i];
        while (e) {
            agent_entry *next = e->next;
            size_t k = (size_t)(e->agent_hash & (n - 1));
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->bucket_count = n;
}

static agent_entry *find(registry *r, uint64_t agent_hash)
{
    agent_entry *e = r->buckets[agent_hash & (r->bucket_count - 1)];
    while (e && e->agent_hash != agent_hash) e = e->next;
    return e;
}

int registry_claim(ingest *in, conn *c, uint32_t thread, uint32_t slot, const char *version, size_t version_len,
                   uint64_t *resume_seq, uint64_t *acked_seq, bool *had_owner, uint32_t *prev_thread,
                   uint32_t *prev_slot, uint32_t *prev_gen)
{
    registry *r = &in->reg;
    pthread_mutex_lock(&r->lock);
    agent_entry *e = find(r, c->agent_hash);
    if (!e) {
        /* First time since start-up: the store knows how far this agent got before. */
        uint64_t durable = 0;
        if (in->durable_seq) {
            int rc = in->durable_seq(in->durable_seq_ctx, c->tenant_hash, c->agent_hash, &durable);
            if (rc) {
                pthread_mutex_unlock(&r->lock);
                return rc;
            }
        }
        if (r->count + 1 > r->bucket_count) grow(r);
        e = mamori_xcalloc(1, sizeof *e);
        e->tenant_hash = c->tenant_hash;
        e->agent_hash = c->agent_hash;
        snprintf(e->tenant, sizeof e->tenant, "%s", c->tenant);
        snprintf(e->agent_id, sizeof e->agent_id, "%s", c->agent_id);
        e->durable_seq = e->accepted_seq = durable;
        size_t k = (size_t)(e->agent_hash & (r->bucket_count - 1));
        e->next = r->buckets[k];
        r->buckets[k] = e;
        r->count++;
    }
    *had_owner = e->owned;
    *prev_thread = e->owner_thread;
    *prev_slot = e->owner_slot;
    *prev_gen = e->owner_gen;
    e->connected_since_us = e->last_seen_us = clock_wall_us();
    snprintf(e->address, sizeof e->address, "%s", c->peer);
    if (version_len >= sizeof e->version) version_len = sizeof e->version - 1;
    memcpy(e->version, version, version_len);
    e->version[version_len] = '\0';
    e->owned = true;
    e->owner_thread = thread;
    e->owner_slot = slot;
    e->owner_gen = c->gen;
    *resume_seq = e->accepted_seq;
    *acked_seq = e->durable_seq;
    c->agent = e;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static bool owns(const agent_entry *e, uint32_t thread, uint32_t slot, uint32_t gen)
{
    return e->owned && e->owner_thread == thread && e->owner_slot == slot && e->owner_gen == gen;
}

int registry_publish(ingest *in, conn *c, uint32_t thread, uint32_t slot, bus_batch *b, bool first_after_welcome,
                     bool *gap, char *reason, size_t reason_len)
{
    registry *r = &in->reg;
    agent_entry *e = c->agent;
    *gap = false;
    pthread_mutex_lock(&r->lock);
    if (!owns(e, thread, slot, c->gen)) {
        pthread_mutex_unlock(&r->lock);
        return -ESTALE;
    }
    uint64_t want = e->accepted_seq + 1;
    if (b->seq < want) {
        snprintf(reason, reason_len, "batch seq %llu at or below resume point %llu", (unsigned long long)b->seq,
                 (unsigned long long)e->accepted_seq);
        pthread_mutex_unlock(&r->lock);
        return -EPROTO;
    }
    if (b->seq > want && !first_after_welcome) {
        snprintf(reason, reason_len, "batch seq %llu out of order: expected %llu", (unsigned long long)b->seq,
                 (unsigned long long)want);
        pthread_mutex_unlock(&r->lock);
        return -EPROTO;
    }
    b->published_mono_us = clock_mono_us();
    int rc = bus_publish(in->bus, b);
    if (rc == 0) {
        *gap = b->seq > want;
        /* Numbers skipped by a gap will never come; if nothing else is in flight, count
         * them as done so the unacked count stays exact. */
        if (*gap && e->durable_seq == e->accepted_seq) e->durable_seq = b->seq - 1;
        e->accepted_seq = b->seq;
        e->events_received += b->event_count;
        e->batches_received++;
        e->last_seen_us = b->received_us;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void registry_seen(ingest *in, conn *c)
{
    if (!c->agent) return;
    pthread_mutex_lock(&in->reg.lock);
    c->agent->last_seen_us = clock_wall_us();
    pthread_mutex_unlock(&in->reg.lock);
}

static void fill_info(const agent_entry *e, ingest_agent_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->tenant, sizeof out->tenant, "%s", e->tenant);
    snprintf(out->agent_id, sizeof out->agent_id, "%s", e->agent_id);
    out->online = e->owned;
    out->connected_since_us = e->connected_since_us;
    out->last_seen_us = e->last_seen_us;
    snprintf(out->address, sizeof out->address, "%s", e->address);
    snprintf(out->version, sizeof out->version, "%s", e->version);
    out->events_received = e->events_received;
    out->batches_received = e->batches_received;
    out->durable_seq = e->durable_seq;
    out->accepted_seq = e->accepted_seq;
}

void ingest_list_agents(ingest *in, const char *tenant, ingest_agent_fn fn, void *ctx)
{
    registry *r = &in->reg;
    ingest_agent_info info;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->bucket_count; i++)
        for (agent_entry *e = r->buckets[i]; e; e = e->next) {
            if (tenant && strcmp(tenant, e->tenant) != 0) continue;
            fill_info(e, &info);
            if (fn(ctx, &info)) goto done;
        }
done:
    pthread_mutex_unlock(&r->lock);
}

int ingest_get_agent(ingest *in, const char *tenant, const char *agent_id, ingest_agent_info *out)
{
    registry *r = &in->reg;
    uint64_t h = event_agent_hash(tenant, agent_id);
    pthread_mutex_lock(&r->lock);
    agent_entry *e = find(r, h);
    int rc = -ENOENT;
    if (e && !strcmp(e->tenant, tenant) && !strcmp(e->agent_id, agent_id)) {
        fill_info(e, out);
        rc = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void registry_release(ingest *in, conn *c, uint32_t thread, uint32_t slot)
{
    if (!c->agent) return;
    registry *r = &in->reg;
    pthread_mutex_lock(&r->lock);
    if (owns(c->agent, thread, slot, c->gen)) c->agent->owned = false;
    pthread_mutex_unlock(&r->lock);
    c->agent = NULL;
}

uint64_t registry_unacked(ingest *in, const conn *c)
{
    registry *r = &in->reg;
    pthread_mutex_lock(&r->lock);
    uint64_t n = c->agent ? c->agent->accepted_seq - c->agent->durable_seq : 0;
    pthread_mutex_unlock(&r->lock);
    return n;
}

void registry_on_durable(bus_batch *b, int status, void *ctx)
{
    ingest *in = ctx;
    registry *r = &in->reg;
    pthread_mutex_lock(&r->lock);
    agent_entry *e = find(r, b->agent_hash);
    MAMORI_ASSERT(e);
    inbox_msg m = {0};
    bool post = false;
    uint32_t thread = 0;
    if (status == 0) {
        if (b->seq > e->durable_seq) e->durable_seq = b->seq;
        if (e->owned) {
            m.kind = INBOX_ACK;
            m.seq = b->seq;
            m.payload = mamori_xstrndup(b->ack_payload, b->ack_payload_len);
            m.payload_len = b->ack_payload_len;
            m.latency_us = clock_mono_us() - b->published_mono_us;
            post = true;
        }
    } else {
        /* Never durable (shutdown): forget it was accepted, so the next WELCOME asks the
         * agent to resend it, and drop the current connection to force that resync. */
        if (e->accepted_seq >= b->seq) e->accepted_seq = b->seq - 1 > e->durable_seq ? b->seq - 1 : e->durable_seq;
        if (e->owned) {
            m.kind = INBOX_CLOSE;
            m.payload = (char *)"batch could not be stored; reconnect and resend";
            post = true;
        }
    }
    if (post) {
        thread = e->owner_thread;
        m.slot = e->owner_slot;
        m.gen = e->owner_gen;
    }
    pthread_mutex_unlock(&r->lock);
    if (post) loop_post(in, thread, &m);
}

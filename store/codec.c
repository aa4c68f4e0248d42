/* store/codec.c — byte layouts of the store's keys: event keys, index keys (with their
 * order-preserving value escaping), agent and pending-log keys, and varints. Every layout
 * here is an on-disk format: docs/storage.md draws them; change them only with a
 * migration. */
#include "internal.h"

#include <errno.h>
#include <string.h>

size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

void buf_put_varint(buf *b, uint64_t v)
{
    buf_reserve(b, 10);
    b->len += varint_put((uint8_t *)b->data + b->len, v);
}

int varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    uint64_t out = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (q >= end) return -EBADMSG;
        uint8_t byte = *q++;
        out |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *v = out;
            *p = q;
            return 0;
        }
    }
    return -EBADMSG;
}

uint32_t store_day_of_us(int64_t ts_us)
{
    if (ts_us <= 0) return 0;
    int64_t day = ts_us / (86400LL * 1000000LL);
    return day > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)day;
}

/* Event key: tenant_hash u64 | day u32 | ts_us u64 | agent_hash u64 | seq u64 | index u32. */
void store_event_key_full(uint8_t out[STORE_EVENT_KEY_BYTES], uint64_t tenant_hash, const store_event_ref *ref)
{
    mamori_put_be64(out, tenant_hash);
    mamori_put_be32(out + 8, store_day_of_us(ref->ts_us));
    mamori_put_be64(out + 12, (uint64_t)ref->ts_us);
    mamori_put_be64(out + 20, ref->agent_hash);
    mamori_put_be64(out + 28, ref->seq);
    mamori_put_be32(out + 36, ref->index);
}

void store_event_key(uint8_t out[STORE_EVENT_KEY_BYTES], uint64_t tenant_hash, int64_t ts_us, uint64_t agent_hash,
                     uint64_t seq, uint32_t index)
{
    store_event_ref ref = {.ts_us = ts_us, .agent_hash = agent_hash, .seq = seq, .index = index};
    store_event_key_full(out, tenant_hash, &ref);
}

void store_event_key_decode(const uint8_t key[STORE_EVENT_KEY_BYTES], uint64_t *tenant_hash, uint32_t *day,
                            store_event_ref *ref)
{
    if (tenant_hash) *tenant_hash = mamori_get_be64(key);
    if (day) *day = mamori_get_be32(key + 8);
    ref->ts_us = (int64_t)mamori_get_be64(key + 12);
    ref->agent_hash = mamori_get_be64(key + 20);
    ref->seq = mamori_get_be64(key + 28);
    ref->index = mamori_get_be32(key + 36);
}

void store_agent_key(uint8_t out[STORE_AGENT_KEY_BYTES], uint64_t tenant_hash, uint64_t agent_hash)
{
    mamori_put_be64(out, tenant_hash);
    mamori_put_be64(out + 8, agent_hash);
    out[16] = STORE_AGENT_TAG_DURABLE_SEQ;
}

void store_agent_key_tag(uint8_t out[STORE_AGENT_KEY_BYTES], uint64_t tenant_hash, uint64_t agent_hash, uint8_t tag)
{
    store_agent_key(out, tenant_hash, agent_hash);
    out[16] = tag;
}

void store_ixlog_key(uint8_t out[STORE_IXLOG_KEY_BYTES], uint64_t group_no)
{
    memcpy(out, STORE_IXLOG_PREFIX, STORE_IXLOG_PREFIX_LEN);
    mamori_put_be64(out + STORE_IXLOG_PREFIX_LEN, group_no);
}

int store_ref_cmp(const store_event_ref *a, const store_event_ref *b)
{
    if (a->ts_us != b->ts_us) return a->ts_us < b->ts_us ? -1 : 1;
    if (a->agent_hash != b->agent_hash) return a->agent_hash < b->agent_hash ? -1 : 1;
    if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
    if (a->index != b->index) return a->index < b->index ? -1 : 1;
    return 0;
}

void ix_term_make(buf *scratch, const char *value, size_t len, ix_term *out)
{
    buf_clear(scratch);
    buf_reserve(scratch, len + 1);
    uint8_t *d = (uint8_t *)scratch->data;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)value[i];
        d[i] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
    }
    scratch->len = len;
    out->value = d;
    if (len > IX_VALUE_MAX) {
        out->len = (uint16_t)IX_VALUE_MAX;
        out->truncated = true;
        out->full_hash = mamori_hash64(d, len);
    } else {
        out->len = (uint16_t)len;
        out->truncated = false;
        out->full_hash = 0;
    }
}

size_t ix_escape(uint8_t *out, const uint8_t *value, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        out[n++] = value[i];
        if (value[i] == 0x00) out[n++] = 0xFF;
    }
    return n;
}

size_t ix_term_encode(uint8_t *out, const ix_term *t)
{
    size_t n = ix_escape(out, t->value, t->len);
    out[n++] = 0x00;
    if (t->truncated) {
        out[n++] = 0x02;
        mamori_put_be64(out + n, t->full_hash);
        n += 8;
    } else {
        out[n++] = 0x01;
    }
    MAMORI_DEBUG_ASSERT(n <= IX_TERM_MAX);
    return n;
}

void ix_key_prefix(uint8_t out[IX_KEY_PREFIX_BYTES], uint64_t tenant_hash, uint32_t day, uint8_t field)
{
    mamori_put_be64(out, tenant_hash);
    mamori_put_be32(out + 8, day);
    out[12] = field;
}

size_t ix_key_encode(uint8_t *out, uint64_t tenant_hash, uint32_t day, uint8_t field, const ix_term *t,
                     int64_t min_ts, uint64_t slice_id)
{
    ix_key_prefix(out, tenant_hash, day, field);
    size_t n = IX_KEY_PREFIX_BYTES;
    n += ix_term_encode(out + n, t);
    mamori_put_be64(out + n, (uint64_t)min_ts);
    mamori_put_be64(out + n + 8, slice_id);
    return n + IX_KEY_SUFFIX_BYTES;
}

uint64_t ix_term_hash(uint64_t tenant_hash, uint32_t day, uint8_t field, const ix_term *t)
{
    uint64_t h = mamori_hash64(t->value, t->len);
    /* mix the rest in cheaply; the full key is compared on every hit anyway */
    h ^= tenant_hash * 0x9E3779B97F4A7C15ull;
    h ^= ((uint64_t)day << 8 | field | (uint64_t)t->truncated << 40) * 0xC2B2AE3D27D4EB4Full;
    h ^= t->full_hash;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return h;
}

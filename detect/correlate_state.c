/* detect/correlate_state.c — one correlation's state as bytes, for checkpoints (the server
 * will keep them in the `state` column family). Little-endian, versioned, self-delimiting:
 *
 *   "MCST" u32 version  str rule-key  u32 type  u32 rule-count  i64 watermark  u64 seq
 *   u32 key-count, keys from least to most recently updated:
 *     str key  u32 entry-count, entries in event-time order:
 *       i64 time  u64 seq  u32 pos  u32 id-count  f64 number  u64 value-hash  u8 has-value
 *       str data (the ids, each NUL-terminated, then the value NUL-terminated)
 *   where str = u32 length + bytes.
 *
 * Decoding checks every length and invariant; anything off rejects the whole state. */
#include "correlate_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char MAGIC[4] = {'M', 'C', 'S', 'T'};

/* Event times a state may hold: ±2^62 µs (±146,000 years) keeps every window computation
 * (time - timespan - lateness) far from overflow. */
#define TIME_ABS_MAX ((int64_t)1 << 62)
static bool time_ok(int64_t t) { return t >= -TIME_ABS_MAX && t <= TIME_ABS_MAX; }


/* One key: str key  u32 entry-count  entries (the state's key record, also a record alone in
 * incremental checkpoints). */
static void put_key(buf *out, const struct ckey *k)
{
    corr_put_str(out, k->key, k->key_len);
    corr_put_u32(out, k->count);
    for (uint32_t i = 0; i < k->count; i++) {
        const struct centry *ent = &k->entries[i];
        uint64_t bits;
        memcpy(&bits, &ent->number, sizeof bits);
        corr_put_u64(out, (uint64_t)ent->time_us);
        corr_put_u64(out, ent->seq);
        corr_put_u32(out, ent->pos);
        corr_put_u32(out, ent->id_count);
        corr_put_u64(out, bits);
        corr_put_u64(out, ent->value_hash);
        corr_put_u8(out, ent->has_value);
        corr_put_str(out, ent->data, ent->data_len);
    }
}

/* magic, version, the correlation's key, type and rule count, watermark, arrival counter: the
 * start of a whole state and the header of an incremental one */
static void put_header(const correlate_engine *e, size_t index, const char magic[4], buf *out)
{
    const correlate_rule *r = &e->set->corrs[index]->pub;
    buf_append(out, magic, 4);
    corr_put_u32(out, CORRELATE_STATE_VERSION);
    corr_put_str(out, corr_rule_key(r), strlen(corr_rule_key(r)));
    corr_put_u32(out, (uint32_t)r->type);
    corr_put_u32(out, r->rule_count);
    corr_put_u64(out, (uint64_t)e->watermark_us);
    corr_put_u64(out, e->seq);
}

/* Reads what put_header wrote, for the same correlation; false when it is not that. */
static bool read_header(const correlate_engine *e, size_t index, const char magic[4], struct corr_reader *r,
                        int64_t *watermark, uint64_t *seq)
{
    const correlate_rule *rule = &e->set->corrs[index]->pub;
    if (r->end - r->p < 8 || memcmp(r->p, magic, 4) != 0) return false;
    r->p += 4;
    if (corr_get_n(r, 4) != CORRELATE_STATE_VERSION) return false;
    uint32_t klen;
    const char *key = corr_get_str(r, &klen, UINT32_MAX);
    if (!key || klen != strlen(corr_rule_key(rule)) || memcmp(key, corr_rule_key(rule), klen) != 0) return false;
    if (corr_get_n(r, 4) != (uint64_t)rule->type || corr_get_n(r, 4) != rule->rule_count) return false;
    *watermark = (int64_t)corr_get_n(r, 8);
    *seq = corr_get_n(r, 8);
    return !r->bad && (*watermark == INT64_MIN || time_ok(*watermark));
}

void correlate_state_encode(const correlate_engine *e, size_t index, buf *out)
{
    MAMORI_ASSERT(index < e->set->count);
    const struct cstate *st = &e->states[index];
    put_header(e, index, MAGIC, out);
    corr_put_u32(out, (uint32_t)st->stats.keys);
    for (const struct ckey *k = st->oldest; k; k = k->newer) put_key(out, k);
}

/* Reads one key record into correlation index (a key already held is malformed). Returns
 * the key it created (half filled when r->bad), or NULL. */
static struct ckey *read_key(correlate_engine *e, uint32_t index, struct corr_reader *r, uint64_t seq)
{
    const correlate_rule *rule = &e->set->corrs[index]->pub;
    uint32_t klen;
    const char *kb = corr_get_str(r, &klen, UINT32_MAX);
    uint32_t count = (uint32_t)corr_get_n(r, 4);
    if (r->bad) return NULL;
    if (cstate_key(e, index, kb, klen, false)) { /* a key twice */
        r->bad = true;
        return NULL;
    }
    struct ckey *k = cstate_key(e, index, kb, klen, true);
    int64_t prev = INT64_MIN;
    for (uint32_t n = 0; n < count && !r->bad; n++) {
        struct centry ent = {0};
        ent.time_us = (int64_t)corr_get_n(r, 8);
        ent.seq = corr_get_n(r, 8);
        ent.pos = (uint32_t)corr_get_n(r, 4);
        ent.id_count = (uint32_t)corr_get_n(r, 4);
        uint64_t bits = corr_get_n(r, 8);
        memcpy(&ent.number, &bits, sizeof bits);
        ent.value_hash = corr_get_n(r, 8);
        uint64_t has_value = corr_get_n(r, 1);
        uint32_t dlen;
        const char *d = corr_get_str(r, &dlen, UINT32_MAX);
        if (r->bad || has_value > 1 || ent.pos >= rule->rule_count || ent.time_us < prev || !time_ok(ent.time_us) ||
            ent.seq > seq || !dlen || d[dlen - 1] != '\0' || !ent.id_count) {
            r->bad = true;
            break;
        }
        uint32_t nuls = 0;
        for (uint32_t x = 0; x < dlen; x++) nuls += d[x] == '\0';
        if (nuls != ent.id_count + (uint32_t)has_value) {
            r->bad = true;
            break;
        }
        prev = ent.time_us;
        ent.has_value = has_value == 1;
        ent.data_len = dlen;
        ent.data = mamori_xmalloc(dlen);
        memcpy(ent.data, d, dlen);
        ckey_insert(e, index, k, &ent);
    }
    if (!r->bad && !k->count) r->bad = true; /* encoders never write empty keys */
    k->arrival_us = INT64_MIN; /* restored: arrives with the next match fed (correlate_engine_feed) */
    e->arrival_fix = true;
    return k;
}

int correlate_state_decode(correlate_engine *e, size_t index, const void *data, size_t len)
{
    MAMORI_ASSERT(index < e->set->count);
    struct corr_reader r = {.p = data, .end = (const uint8_t *)data + len};
    cstate_clear(e, (uint32_t)index);
    int64_t watermark;
    uint64_t seq;
    if (!read_header(e, index, MAGIC, &r, &watermark, &seq)) return -EINVAL;
    uint32_t keys = (uint32_t)corr_get_n(&r, 4);
    for (uint32_t i = 0; i < keys && !r.bad; i++) (void)read_key(e, (uint32_t)index, &r, seq);
    if (r.bad || r.p != r.end) {
        cstate_clear(e, (uint32_t)index);
        return -EINVAL;
    }
    if (watermark > e->watermark_us) e->watermark_us = watermark;
    if (seq > e->seq) e->seq = seq;
    return 0;
}

/* ---- incremental checkpoints ---------------------------------------------------------------- */

static const char HEADER_MAGIC[4] = {'M', 'C', 'S', 'H'};

void correlate_state_header_encode(const correlate_engine *e, size_t index, buf *out)
{
    MAMORI_ASSERT(index < e->set->count);
    put_header(e, index, HEADER_MAGIC, out);
}

int correlate_state_header_decode(correlate_engine *e, size_t index, const void *data, size_t len)
{
    MAMORI_ASSERT(index < e->set->count);
    struct corr_reader r = {.p = data, .end = (const uint8_t *)data + len};
    int64_t watermark;
    uint64_t seq;
    if (!read_header(e, index, HEADER_MAGIC, &r, &watermark, &seq) || r.p != r.end) return -EINVAL;
    if (watermark > e->watermark_us) e->watermark_us = watermark;
    if (seq > e->seq) e->seq = seq;
    return 0;
}

int correlate_state_key_decode(correlate_engine *e, size_t index, const void *data, size_t len)
{
    MAMORI_ASSERT(index < e->set->count);
    struct corr_reader r = {.p = data, .end = (const uint8_t *)data + len};
    struct ckey *k = read_key(e, (uint32_t)index, &r, e->seq);
    if (r.bad || r.p != r.end) {
        if (k) ckey_remove(e, (uint32_t)index, k);
        return -EINVAL;
    }
    k->version = ++e->version;
    return 0;
}

bool correlate_state_delta(correlate_engine *e, size_t index, bool all, buf *scratch, correlate_key_fn fn, void *ctx)
{
    MAMORI_ASSERT(index < e->set->count);
    struct cstate *st = &e->states[index];
    bool full = all || st->delta_full;
    if (!full) /* removals first: a key removed then made again is put after its delete */
        for (size_t at = 0; at + 4 <= st->removed.len;) {
            uint32_t len;
            memcpy(&len, st->removed.data + at, sizeof len);
            fn(ctx, st->removed.data + at + 4, len, NULL, 0);
            at += 4 + len;
        }
    /* a change moves its key to the newest end of the LRU list (process_target), so the keys
     * changed since the last delta are the newest ones: stop at the first older version */
    for (const struct ckey *k = st->newest; k; k = k->older) {
        if (!full && k->version <= st->delta_version) break;
        buf_clear(scratch);
        put_key(scratch, k);
        fn(ctx, k->key, k->key_len, scratch->data, scratch->len);
    }
    st->delta_version = e->version;
    buf_clear(&st->removed);
    st->delta_full = false;
    return full;
}

/* server/detect_corr_checkpoint.c — the correlation checkpoints of live detection
 * (docs/detection.md §11.6): taken under the correlation lock when no thread holds unwritten
 * correlation alerts, written in a detection thread's alert write (incremental: per (tenant,
 * correlation) a header and the group-by keys changed since the last one), read back at
 * start-up (the fed-up-to seqs before ingest opens, the state with the first rule set). */
#include "detect_corr_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

/* ---- the fed-up-to seqs ---------------------------------------------------------------------- */

static int read_marks(void *ctx, const void *key, size_t key_len, const void *value, size_t len)
{
    corr_rt *c = ctx;
    (void)key;
    if (key_len != strlen(CORR_MARKS_KEY)) return 0;
    const uint8_t *p = value;
    if (len < 20 || mamori_get_be64(p) >> 32 != CORR_MARKS_MAGIC || (uint32_t)mamori_get_be64(p) != CORR_MARKS_VERSION) {
        LOG_ERROR(MOD, "correlation checkpoint %s unreadable (%zu bytes): starting from the detection watermarks",
                  CORR_MARKS_KEY, len);
        return 1;
    }
    int64_t anchor = (int64_t)mamori_get_be64(p + 8);
    uint32_t n = (uint32_t)(mamori_get_be64(p + 12) & 0xffffffffu);
    if ((len - 20) / 24 < n || len != 20 + (size_t)n * 24) {
        LOG_ERROR(MOD, "correlation checkpoint %s truncated: starting from the detection watermarks", CORR_MARKS_KEY);
        return 1;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *m = p + 20 + (size_t)i * 24;
        corr_mark *x = corr_mark_find(c, mamori_get_be64(m), mamori_get_be64(m + 8), true);
        x->seq = mamori_get_be64(m + 16);
    }
    c->have_checkpoint = true;
    c->checkpoint_anchor_us = anchor;
    c->anchor_us = anchor;
    return 1;
}

void corr_rt_load_marks(corr_rt *c)
{
    if (store_state_scan(c->db, CORR_MARKS_KEY, strlen(CORR_MARKS_KEY), read_marks, c) < 0)
        LOG_ERROR(MOD, "cannot read the correlation checkpoint: starting from the detection watermarks");
}

bool corr_rt_checkpoint_mark(corr_rt *c, uint64_t th, uint64_t ah, uint64_t *seq, int64_t *anchor_us)
{
    if (!c->have_checkpoint) return false;
    corr_mark *m = corr_mark_find(c, th, ah, false);
    *seq = m ? m->seq : 0; /* an agent the checkpoint does not know started after it */
    *anchor_us = c->checkpoint_anchor_us;
    return true;
}

/* ---- checkpoints ------------------------------------------------------------------------------- */

static uint64_t version_of(const correlate_engine *e, size_t i)
{
    correlate_stats st;
    correlate_engine_stats(e, i, &st);
    return st.matches + st.expired_events + st.evicted_events + st.evicted_keys + st.alerts + 1;
}

void corr_checkpoint_init(corr_checkpoint *k)
{
    memset(k, 0, sizeof *k);
    buf_init(&k->data);
    buf_init(&k->scratch);
}

void corr_checkpoint_fini(corr_checkpoint *k)
{
    buf_fini(&k->data);
    buf_fini(&k->scratch);
    free(k->ops);
    free(k->puts);
}

enum { CK_PUT, CK_DELETE, CK_RANGE };

/* One write operation; key and value are offsets in k->data (it moves while growing). */
static void ck_op(corr_checkpoint *k, uint8_t kind, size_t key_off, size_t key_len, size_t val_off, size_t val_len)
{
    if (k->count == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 64;
        k->ops = mamori_xrealloc(k->ops, k->cap * sizeof *k->ops);
    }
    k->ops[k->count++] = (corr_ck_op){kind, key_off, key_len, val_off, val_len};
}

/* Appends prefix + tail as a key; returns its offset. */
static size_t ck_key(corr_checkpoint *k, const char *prefix, size_t prefix_len, const char *tail, size_t tail_len)
{
    size_t off = k->data.len;
    buf_append(&k->data, prefix, prefix_len);
    buf_append(&k->data, tail, tail_len);
    return off;
}

typedef struct delta_ctx {
    corr_checkpoint *k;
    const char *prefix; /* corr/st/<tenant>/<correlation>\x01k */
    size_t prefix_len;
    uint64_t keys;
} delta_ctx;

static void on_delta(void *ctx, const char *key, size_t key_len, const void *value, size_t value_len)
{
    delta_ctx *d = ctx;
    size_t off = ck_key(d->k, d->prefix, d->prefix_len, key, key_len);
    if (!value) {
        ck_op(d->k, CK_DELETE, off, d->prefix_len + key_len, 0, 0);
        return;
    }
    size_t val_off = d->k->data.len;
    buf_append(&d->k->data, value, value_len);
    ck_op(d->k, CK_PUT, off, d->prefix_len + key_len, val_off, value_len);
    d->keys++;
}

bool corr_rt_checkpoint_take(corr_rt *c, bool force, bool self_inflight, corr_checkpoint *k)
{
    k->taken = false;
    if (c->rekey == CORR_REKEY_ALL) return false; /* nothing is held here: no state to keep */
    if (!c->current) return false; /* no rule set yet, or the first build failed: keep what is stored */
    if (!corr_gen_count(c->current)) {
        /* no correlations, no state to keep: the stored checkpoint goes once, and the next
         * start re-detects from the detection watermarks alone */
        if (!c->full_due) return false;
        buf_clear(&k->data);
        k->count = 0;
        k->full = true;
        k->write = (store_state_write){.delete_prefix = "corr/"};
        k->taken = true;
        k->encode_us = 0;
        c->full_due = false;
        c->dirty = false;
        return true;
    }
    if (!force && !c->dirty && !c->full_due) return false;
    int64_t now_ms = clock_mono_ms();
    if (!force && now_ms - c->last_checkpoint_ms < (int64_t)c->cfg->detect.correlation_checkpoint_interval_ms)
        return false;
    /* every alert of a consumed match must be in this write or durable already */
    if (c->inflight > (self_inflight ? 1u : 0u)) return false;
    int64_t t0 = clock_mono_us();
    buf_clear(&k->data);
    k->count = 0;
    k->full = c->full_due;
    k->keys_written = 0;
    /* per changed (tenant, correlation): its header, and the keys changed or removed since the
     * last checkpoint (every key after a start or a reload: corr/st/ is cleared first) */
    char prefix[1200];
    for (uint32_t i = 0; i < c->tenant_count; i++) {
        corr_tenant *t = &c->tenants[i];
        for (size_t n = 0; n < corr_gen_count(c->current); n++) {
            uint64_t v = version_of(t->engine, n);
            if (!k->full && t->versions[n] == v) continue;
            const char *ck = corr_rule_key(correlate_set_rule(c->current->set, n));
            int plen = snprintf(prefix, sizeof prefix, "%s%016llx/%.1000s\x01", CORR_STATE_PREFIX,
                                (unsigned long long)t->tenant_hash, ck);
            size_t pl = (size_t)plen;
            size_t off = ck_key(k, prefix, pl, "h", 1);
            size_t val_off = k->data.len;
            correlate_state_header_encode(t->engine, n, &k->data);
            ck_op(k, CK_PUT, off, pl + 1, val_off, k->data.len - val_off);
            prefix[pl] = 'k';
            delta_ctx d = {.k = k, .prefix = prefix, .prefix_len = pl + 1};
            bool full = correlate_state_delta(t->engine, n, k->full, &k->scratch, on_delta, &d);
            /* a full delta of this correlation alone: its stored keys go first (ranges apply
             * before puts in the write) */
            if (full && !k->full) ck_op(k, CK_RANGE, ck_key(k, prefix, pl + 1, "", 0), pl + 1, 0, 0);
            k->keys_written += d.keys;
            t->versions[n] = v;
        }
    }
    /* the fed-up-to seqs, one value */
    size_t key_off = ck_key(k, CORR_MARKS_KEY, strlen(CORR_MARKS_KEY), "", 0);
    size_t val_off = k->data.len;
    uint8_t h[20];
    mamori_put_be64(h, ((uint64_t)CORR_MARKS_MAGIC << 32) | CORR_MARKS_VERSION);
    mamori_put_be64(h + 8, (uint64_t)c->anchor_us);
    /* count in the low half of bytes 12..19 */
    uint8_t cnt[8];
    mamori_put_be64(cnt, c->mark_count);
    memcpy(h + 16, cnt + 4, 4);
    buf_append(&k->data, h, sizeof h);
    for (uint32_t i = 0; i < c->mark_count; i++) {
        uint8_t m[24];
        mamori_put_be64(m, c->marks[i].tenant_hash);
        mamori_put_be64(m + 8, c->marks[i].agent_hash);
        mamori_put_be64(m + 16, c->marks[i].seq);
        buf_append(&k->data, m, sizeof m);
    }
    ck_op(k, CK_PUT, key_off, strlen(CORR_MARKS_KEY), val_off, k->data.len - val_off);
    /* pointers, now that the data stopped moving: puts, then deletes, then ranges */
    free(k->puts);
    k->puts = mamori_xmalloc((k->count ? k->count : 1) * sizeof *k->puts);
    size_t np = 0, nd = 0, nr = 0;
    for (size_t i = 0; i < k->count; i++) np += k->ops[i].kind == CK_PUT, nd += k->ops[i].kind == CK_DELETE;
    size_t at_p = 0, at_d = np, at_r = np + nd;
    for (size_t i = 0; i < k->count; i++) {
        const corr_ck_op *o = &k->ops[i];
        store_state_put x = {.key = k->data.data + o->key_off, .key_len = o->key_len,
                             .value = k->data.data + o->val_off, .value_len = o->val_len};
        if (o->kind == CK_PUT) k->puts[at_p++] = x;
        else if (o->kind == CK_DELETE) k->puts[at_d++] = x;
        else k->puts[at_r++] = x, nr++;
    }
    k->write = (store_state_write){.delete_prefix = k->full ? CORR_STATE_PREFIX : NULL,
                                   .delete_ranges = k->puts + np + nd, .delete_range_count = nr,
                                   .deletes = k->puts + np, .delete_count = nd,
                                   .puts = k->puts, .put_count = np};
    k->taken = true;
    k->encode_us = clock_mono_us() - t0;
    /* assume success; a failed write sets full_due again (corr_rt_checkpoint_done) */
    c->full_due = false;
    c->dirty = false;
    c->last_checkpoint_ms = now_ms;
    return true;
}

void corr_rt_checkpoint_done(corr_rt *c, corr_checkpoint *k, bool ok, int64_t write_us)
{
    if (!k->taken) return;
    k->taken = false;
    pthread_mutex_lock(&c->mu);
    if (ok) {
        c->checkpoints++;
        c->checkpoint_keys += k->keys_written;
        c->checkpoint_bytes = k->data.len;
        c->checkpoint_us_last = (uint64_t)(k->encode_us + write_us);
        c->checkpoint_us_sum += c->checkpoint_us_last;
    } else {
        c->checkpoint_errors++;
        c->full_due = true; /* the next one rewrites everything */
    }
    pthread_mutex_unlock(&c->mu);
}

int corr_rt_checkpoint_now(corr_rt *c)
{
    corr_checkpoint k;
    corr_checkpoint_init(&k);
    pthread_mutex_lock(&c->mu);
    bool taken = corr_rt_checkpoint_take(c, true, false, &k);
    pthread_mutex_unlock(&c->mu);
    int rc = 0;
    if (taken) {
        int64_t t0 = clock_mono_us();
        rc = store_alerts_commit_state(c->db, NULL, 0, NULL, 0, &k.write, NULL, NULL);
        corr_rt_checkpoint_done(c, &k, rc == 0, clock_mono_us() - t0);
        if (rc) LOG_ERROR(MOD, "writing the correlation checkpoint failed: %s", strerror(-rc));
    }
    corr_checkpoint_fini(&k);
    return rc;
}

/* ---- start-up ---------------------------------------------------------------------------------- */

typedef struct restore_ctx {
    corr_rt *c;
    corr_tenant *t; /* of the last header read */
    size_t index;
    bool header_ok;
} restore_ctx;

/* corr/st/<16 hex tenant>/<correlation id or title>\x01h (header) and \x01k<group key> (one
 * key); the header sorts before its keys. */
static int restore_one(void *ctx, const void *key, size_t key_len, const void *value, size_t len)
{
    restore_ctx *r = ctx;
    corr_rt *c = r->c;
    const char *k = key;
    size_t head = CORR_STATE_PREFIX_LEN + 17;
    if (key_len < head + 2 || k[CORR_STATE_PREFIX_LEN + 16] != '/') return 0;
    const char *sep = memchr(k + head, '\x01', key_len - head);
    if (!sep || sep + 1 >= k + key_len) return 0; /* another layout: dropped by the next full checkpoint */
    const char *ck = k + head;
    size_t ck_len = (size_t)(sep - ck);
    if (sep[1] == 'k') {
        if (!r->header_ok) return 0;
        if (correlate_state_key_decode(r->t->engine, r->index, value, len) != 0) {
            c->restore_errors++;
            LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "correlation state of %.*s: a key unreadable, dropped",
                            (int)MAMORI_MIN(ck_len, 200u), ck);
        }
        return 0;
    }
    r->header_ok = false;
    if (sep[1] != 'h') return 0;
    char hex[17];
    memcpy(hex, k + CORR_STATE_PREFIX_LEN, 16);
    hex[16] = '\0';
    uint64_t th = strtoull(hex, NULL, 16);
    size_t idx = SIZE_MAX;
    for (size_t n = 0; n < corr_gen_count(c->current); n++) {
        const char *name = corr_rule_key(correlate_set_rule(c->current->set, n));
        if (strlen(name) == ck_len && !memcmp(name, ck, ck_len)) idx = n;
    }
    if (idx == SIZE_MAX) return 0; /* a correlation no longer loaded: dropped at the next checkpoint */
    char tenant[260];
    if (store_tenant_name(c->db, th, tenant, sizeof tenant) != 0) return 0;
    corr_tenant *t = corr_tenant_get(c, th, tenant);
    if (correlate_state_header_decode(t->engine, idx, value, len) != 0) {
        c->restore_errors++;
        LOG_ERROR(MOD, "correlation state of %.*s (tenant %s) of another rule version or unreadable: starting it empty",
                  (int)MAMORI_MIN(ck_len, 200u), ck, tenant);
        return 0;
    }
    r->t = t;
    r->index = idx;
    r->header_ok = true;
    return 0;
}

void corr_rt_restore(corr_rt *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->have_checkpoint && corr_gen_count(c->current)) {
        restore_ctx r = {.c = c};
        int64_t t0 = clock_mono_us();
        if (store_state_scan(c->db, CORR_STATE_PREFIX, CORR_STATE_PREFIX_LEN, restore_one, &r) < 0)
            LOG_ERROR(MOD, "reading the correlation state failed: correlations start empty");
        for (uint32_t i = 0; i < c->tenant_count; i++) {
            correlate_stats st;
            correlate_engine_stats(c->tenants[i].engine, SIZE_MAX, &st);
            c->restored_keys += st.keys;
        }
        LOG_INFO(MOD, "correlation state restored: keys=%llu errors=%llu ms=%.1f", (unsigned long long)c->restored_keys,
                 (unsigned long long)c->restore_errors, (double)(clock_mono_us() - t0) / 1000.0);
    }
    pthread_mutex_unlock(&c->mu);
}

void corr_rt_started(corr_rt *c, bool recovered)
{
    pthread_mutex_lock(&c->mu);
    if (!recovered) {
        /* re-detected alerts were not written: no checkpoint may cover the state that
         * consumed their matches; the next start replays from the stored one */
        c->inflight++;
        LOG_ERROR(MOD, "correlation checkpoints are off until the next start (the re-detection did not complete)");
    }
    /* everything durable before ingest opened has been fed (before the crash, or just now) */
    for (size_t i = 0; i < c->prepared_count; i++) {
        corr_mark *m = corr_mark_find(c, c->prepared[i].tenant_hash, c->prepared[i].agent_hash, true);
        if (c->prepared[i].seq > m->seq) m->seq = c->prepared[i].seq;
    }
    free(c->prepared);
    c->prepared = NULL;
    c->prepared_count = 0;
    /* every batch fed from now on is received after now: where a replay would start */
    if (!c->anchor_us) c->anchor_us = clock_wall_us();
    c->full_due = true;
    pthread_mutex_unlock(&c->mu);
    int rc = corr_rt_checkpoint_now(c); /* logs a failure; the threads' checkpoints retry */
    (void)rc;
}

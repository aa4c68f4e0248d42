/* store/alerts.c — alert records in the alerts column family: deterministic ids, the
 * record (a small binary header with the mutable fields, then the immutable JSON body),
 * index entries that sort newest first, one outbox entry per new alert, and the detection
 * watermarks in the state column family, all written in one RocksDB write per detection
 * commit. Listing lives in alerts_list.c. Layouts: docs/storage.md "alerts". */
#include "internal.h"

#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3 state on the stack */
#include <xxhash.h>

#include "alerts_codec.h"

/* Updates are read-modify-write of a record and its index entries; one lock keeps two
 * concurrent updates of the same alert from leaving a stale status entry behind. Updates
 * are rare (analysts), so a process-wide lock costs nothing. New alerts never take it:
 * only the detection thread owning an agent creates that agent's alerts. */
static pthread_mutex_t update_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const status_names[STORE_ALERT_STATUS_COUNT] = {"new", "acknowledged", "closed"};

const char *store_alert_status_name(enum store_alert_status st)
{
    return (unsigned)st < STORE_ALERT_STATUS_COUNT ? status_names[st] : "unknown";
}

int store_alert_status_parse(const char *s, size_t len, enum store_alert_status *out)
{
    for (int i = 0; i < STORE_ALERT_STATUS_COUNT; i++)
        if (s && strlen(status_names[i]) == len && memcmp(status_names[i], s, len) == 0) {
            *out = (enum store_alert_status)i;
            return 0;
        }
    return -EINVAL;
}

void store_alert_id(uint8_t out[STORE_ALERT_ID_BYTES], uint64_t tenant_hash, uint64_t agent_hash, uint64_t seq,
                    uint32_t index, const char *rule_key, size_t rule_key_len)
{
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    uint8_t head[28];
    mamori_put_be64(head, tenant_hash);
    mamori_put_be64(head + 8, agent_hash);
    mamori_put_be64(head + 16, seq);
    mamori_put_be32(head + 24, index);
    XXH3_128bits_update(&st, head, sizeof head);
    XXH3_128bits_update(&st, rule_key, rule_key_len);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
    memcpy(out, c.digest, STORE_ALERT_ID_BYTES);
}

void store_alert_id_format(const uint8_t id[STORE_ALERT_ID_BYTES], char out[STORE_ALERT_ID_HEX_CHARS + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < STORE_ALERT_ID_BYTES; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 15];
    }
    out[STORE_ALERT_ID_HEX_CHARS] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int store_alert_id_parse(const char *s, size_t len, uint8_t out[STORE_ALERT_ID_BYTES])
{
    if (!s || len != STORE_ALERT_ID_HEX_CHARS) return -EINVAL;
    for (unsigned i = 0; i < STORE_ALERT_ID_BYTES; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

uint64_t store_alert_term_hash(const char *s, size_t len)
{
    uint8_t lower[256];
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    for (size_t off = 0; off < len; off += sizeof lower) {
        size_t n = MAMORI_MIN(sizeof lower, len - off);
        for (size_t i = 0; i < n; i++) {
            uint8_t c = (uint8_t)s[off + i];
            lower[i] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
        }
        XXH3_64bits_update(&st, lower, n);
    }
    uint64_t h = XXH3_64bits_digest(&st);
    return h ? h : 1;
}

/* ---- codecs (alerts_codec.h) ---- */

uint64_t alert_inv_ts(int64_t ts_us) { return ~((uint64_t)ts_us ^ (1ULL << 63)); }
int64_t alert_ts_from_inv(uint64_t inv) { return (int64_t)(~inv ^ (1ULL << 63)); }

size_t store_alert_index_key(uint8_t out[STORE_ALERT_INDEX_KEY_MAX], char kind, uint64_t tenant_hash, uint64_t term,
                             int64_t ts_us, const uint8_t id[STORE_ALERT_ID_BYTES])
{
    size_t n = alert_index_prefix(out, kind, tenant_hash, term);
    mamori_put_be64(out + n, alert_inv_ts(ts_us));
    memcpy(out + n + 8, id, STORE_ALERT_ID_BYTES);
    return n + 8 + STORE_ALERT_ID_BYTES;
}

size_t alert_index_prefix(uint8_t *out, char kind, uint64_t tenant_hash, uint64_t term)
{
    out[0] = (uint8_t)kind;
    mamori_put_be64(out + 1, tenant_hash);
    switch (kind) {
    case ALERT_KIND_HOST:
    case ALERT_KIND_RULE: mamori_put_be64(out + 9, term); return 17;
    case ALERT_KIND_LEVEL:
    case ALERT_KIND_STATUS: out[9] = (uint8_t)term; return 10;
    default: MAMORI_ASSERT(kind == ALERT_KIND_TIME); return 9;
    }
}

void alert_record_key(uint8_t out[ALERT_RECORD_KEY_BYTES], uint64_t tenant_hash, const uint8_t id[STORE_ALERT_ID_BYTES])
{
    out[0] = ALERT_KIND_RECORD;
    mamori_put_be64(out + 1, tenant_hash);
    memcpy(out + 9, id, STORE_ALERT_ID_BYTES);
}

void alert_summary_encode(uint8_t out[ALERT_SUMMARY_BYTES], const store_alert *a)
{
    out[0] = a->status;
    out[1] = a->level;
    mamori_put_be64(out + 2, a->rule_hash);
    mamori_put_be64(out + 10, a->host_id_hash);
    mamori_put_be64(out + 18, a->host_name_hash);
}

int alert_summary_decode(const uint8_t *p, size_t len, alert_summary *out)
{
    if (len != ALERT_SUMMARY_BYTES) return -EBADMSG;
    out->status = p[0];
    out->level = p[1];
    out->rule_hash = mamori_get_be64(p + 2);
    out->host_id_hash = mamori_get_be64(p + 10);
    out->host_name_hash = mamori_get_be64(p + 18);
    return 0;
}

/* Record value: version u8 | status u8 | level u8 | 0 | ts i64 | created i64 | updated i64 |
 * rule_hash | host_id_hash | host_name_hash | assignee_len u16 | assignee | body. */
#define RECORD_VERSION 1u
#define RECORD_HEADER_BYTES 54u

static void record_encode(buf *out, const store_alert *a)
{
    uint8_t h[RECORD_HEADER_BYTES];
    h[0] = RECORD_VERSION;
    h[1] = a->status;
    h[2] = a->level;
    h[3] = 0;
    mamori_put_be64(h + 4, (uint64_t)a->ts_us);
    mamori_put_be64(h + 12, (uint64_t)a->created_us);
    mamori_put_be64(h + 20, (uint64_t)a->updated_us);
    mamori_put_be64(h + 28, a->rule_hash);
    mamori_put_be64(h + 36, a->host_id_hash);
    mamori_put_be64(h + 44, a->host_name_hash);
    mamori_put_be16(h + 52, (uint16_t)a->assignee_len);
    buf_clear(out);
    buf_append(out, h, sizeof h);
    buf_append(out, a->assignee, a->assignee_len);
    buf_append(out, a->body, a->body_len);
}

/* Decodes a record that lives in storage; the strings of *out point into it. */
int alert_record_decode(const uint8_t *p, size_t len, uint64_t tenant_hash, const uint8_t id[STORE_ALERT_ID_BYTES],
                        store_alert *out)
{
    if (len < RECORD_HEADER_BYTES || p[0] != RECORD_VERSION) return -EBADMSG;
    uint32_t alen = mamori_get_be16(p + 52);
    if (len < RECORD_HEADER_BYTES + alen + 2) return -EBADMSG; /* the body is at least "{}" */
    memset(out, 0, sizeof *out);
    out->tenant_hash = tenant_hash;
    memcpy(out->id, id, STORE_ALERT_ID_BYTES);
    out->status = p[1];
    out->level = p[2];
    out->ts_us = (int64_t)mamori_get_be64(p + 4);
    out->created_us = (int64_t)mamori_get_be64(p + 12);
    out->updated_us = (int64_t)mamori_get_be64(p + 20);
    out->rule_hash = mamori_get_be64(p + 28);
    out->host_id_hash = mamori_get_be64(p + 36);
    out->host_name_hash = mamori_get_be64(p + 44);
    out->assignee = (const char *)p + RECORD_HEADER_BYTES;
    out->assignee_len = alen;
    out->body = (const char *)p + RECORD_HEADER_BYTES + alen;
    out->body_len = (uint32_t)(len - RECORD_HEADER_BYTES - alen);
    return out->status < STORE_ALERT_STATUS_COUNT ? 0 : -EBADMSG;
}

/* Every index entry of an alert: (kind, term), the host ones only when present and the
 * name entry only when it differs from the id entry. */
typedef struct index_ref {
    char kind;
    uint64_t term;
} index_ref;

static size_t index_refs(const store_alert *a, index_ref out[6])
{
    size_t n = 0;
    out[n++] = (index_ref){ALERT_KIND_TIME, 0};
    if (a->host_id_hash) out[n++] = (index_ref){ALERT_KIND_HOST, a->host_id_hash};
    if (a->host_name_hash && a->host_name_hash != a->host_id_hash) out[n++] = (index_ref){ALERT_KIND_HOST, a->host_name_hash};
    out[n++] = (index_ref){ALERT_KIND_RULE, a->rule_hash};
    out[n++] = (index_ref){ALERT_KIND_LEVEL, a->level};
    out[n++] = (index_ref){ALERT_KIND_STATUS, a->status};
    return n;
}

static void put_index_entries(store *s, rocksdb_writebatch_t *wb, const store_alert *a)
{
    index_ref refs[6];
    size_t n = index_refs(a, refs);
    uint8_t summary[ALERT_SUMMARY_BYTES], key[STORE_ALERT_INDEX_KEY_MAX];
    alert_summary_encode(summary, a);
    for (size_t i = 0; i < n; i++) {
        size_t klen = store_alert_index_key(key, refs[i].kind, a->tenant_hash, refs[i].term, a->ts_us, a->id);
        rocksdb_writebatch_put_cf(wb, s->cf[CF_ALERTS], (const char *)key, klen, (const char *)summary, sizeof summary);
    }
}

/* Outbox: 'A' | created (be64) | tenant | id → {"kind":"alert","tenant":…,"id":…}: the
 * webhook worker walks it in creation order and reads the alert by id. */
#define OUTBOX_KEY_BYTES (1u + 8u + 8u + STORE_ALERT_ID_BYTES)

static void put_outbox(store *s, rocksdb_writebatch_t *wb, const store_alert *a, buf *scratch)
{
    uint8_t key[OUTBOX_KEY_BYTES];
    key[0] = 'A';
    mamori_put_be64(key + 1, (uint64_t)a->created_us);
    mamori_put_be64(key + 9, a->tenant_hash);
    memcpy(key + 17, a->id, STORE_ALERT_ID_BYTES);
    char hex[STORE_ALERT_ID_HEX_CHARS + 1];
    store_alert_id_format(a->id, hex);
    buf_clear(scratch);
    buf_puts(scratch, "{\"kind\":\"alert\",\"tenant\":");
    json_write_string(scratch, a->tenant ? a->tenant : "", a->tenant ? strlen(a->tenant) : 0);
    buf_printf(scratch, ",\"id\":\"%s\"}", hex);
    rocksdb_writebatch_put_cf(wb, s->cf[CF_OUTBOX], (const char *)key, sizeof key, scratch->data, scratch->len);
}

/* ---- watermarks (state CF) ---- */

#define MARK_PREFIX "detect/wm/"
#define MARK_PREFIX_LEN 10u
#define MARK_KEY_BYTES (MARK_PREFIX_LEN + 16u)
#define SINCE_KEY "detect/since"
#define CHECKPOINT_KEY "detect/checkpoint"

static void mark_key(uint8_t out[MARK_KEY_BYTES], uint64_t tenant_hash, uint64_t agent_hash)
{
    memcpy(out, MARK_PREFIX, MARK_PREFIX_LEN);
    mamori_put_be64(out + MARK_PREFIX_LEN, tenant_hash);
    mamori_put_be64(out + MARK_PREFIX_LEN + 8, agent_hash);
}

/* 1 and the stored mark's seq, 0 when none, negative on error. */
static int mark_get(store *s, const uint8_t key[MARK_KEY_BYTES], uint64_t *seq)
{
    char *err = NULL;
    rocksdb_pinnableslice_t *v =
        rocksdb_get_pinned_cf(s->db, s->read_options, s->cf[CF_STATE], (const char *)key, MARK_KEY_BYTES, &err);
    if (err) return store_rocks_error(err, "reading a detection watermark");
    if (!v) return 0;
    size_t len;
    const uint8_t *p = (const uint8_t *)rocksdb_pinnableslice_value(v, &len);
    int rc = 0;
    if (len == 16) {
        *seq = mamori_get_be64(p);
        rc = 1;
    }
    rocksdb_pinnableslice_destroy(v);
    return rc;
}

static void put_i64(rocksdb_writebatch_t *wb, rocksdb_column_family_handle_t *cf, const char *key, int64_t v)
{
    uint8_t b[8];
    mamori_put_be64(b, (uint64_t)v);
    rocksdb_writebatch_put_cf(wb, cf, key, strlen(key), (const char *)b, sizeof b);
}

static int put_marks(store *s, rocksdb_writebatch_t *wb, const store_detect_mark *marks, size_t n, bool only_raise)
{
    int64_t checkpoint = 0;
    for (size_t i = 0; i < n; i++) {
        const store_detect_mark *m = &marks[i];
        uint8_t key[MARK_KEY_BYTES], val[16];
        mark_key(key, m->tenant_hash, m->agent_hash);
        if (only_raise) {
            uint64_t have = 0;
            int rc = mark_get(s, key, &have);
            if (rc < 0) return rc;
            if (rc == 1 && have >= m->seq) continue;
        }
        mamori_put_be64(val, m->seq);
        mamori_put_be64(val + 8, (uint64_t)m->received_us);
        rocksdb_writebatch_put_cf(wb, s->cf[CF_STATE], (const char *)key, sizeof key, (const char *)val, sizeof val);
        checkpoint = MAMORI_MAX(checkpoint, m->received_us);
    }
    if (checkpoint) put_i64(wb, s->cf[CF_STATE], CHECKPOINT_KEY, checkpoint);
    return 0;
}

/* ---- commit ---- */

/* Open-addressing set of the ids written by one commit (a batch can hold the same event
 * twice only through a bug upstream, but a duplicate must never become two index entries). */
typedef struct id_set {
    const uint8_t **slots;
    size_t mask;
} id_set;

static bool id_set_add(id_set *set, const uint8_t *id)
{
    size_t i = (size_t)mamori_get_be64(id) & set->mask;
    while (set->slots[i]) {
        if (memcmp(set->slots[i], id, STORE_ALERT_ID_BYTES) == 0) return false;
        i = (i + 1) & set->mask;
    }
    set->slots[i] = id;
    return true;
}

static int alert_exists(store *s, const store_alert *a, bool *exists)
{
    uint8_t key[ALERT_RECORD_KEY_BYTES];
    alert_record_key(key, a->tenant_hash, a->id);
    char *err = NULL;
    rocksdb_pinnableslice_t *v =
        rocksdb_get_pinned_cf(s->db, s->read_options, s->cf[CF_ALERTS], (const char *)key, sizeof key, &err);
    if (err) return store_rocks_error(err, "reading an alert");
    *exists = v != NULL;
    rocksdb_pinnableslice_destroy(v);
    return 0;
}

int store_alerts_commit(store *s, const store_alert *alerts, size_t count, const store_detect_mark *marks,
                        size_t mark_count, bool *written, uint32_t *written_count)
{
    return store_alerts_commit_state(s, alerts, count, marks, mark_count, NULL, written, written_count);
}

/* Removes every key starting with prefix: [prefix, prefix with its last byte + 1). State
 * prefixes end in an ASCII byte. */
static void delete_prefix(store *s, rocksdb_writebatch_t *wb, const char *prefix, size_t n)
{
    MAMORI_ASSERT(n > 0 && (unsigned char)prefix[n - 1] < 0x7f);
    char local[256];
    char *end = n <= sizeof local ? local : mamori_xmalloc(n);
    memcpy(end, prefix, n);
    end[n - 1] = (char)(end[n - 1] + 1);
    rocksdb_writebatch_delete_range_cf(wb, s->cf[CF_STATE], prefix, n, end, n);
    if (end != local) free(end);
}

static void put_state(store *s, rocksdb_writebatch_t *wb, const store_state_write *st)
{
    if (st->delete_prefix) delete_prefix(s, wb, st->delete_prefix, strlen(st->delete_prefix));
    for (size_t i = 0; i < st->delete_range_count; i++)
        delete_prefix(s, wb, st->delete_ranges[i].key, st->delete_ranges[i].key_len);
    for (size_t i = 0; i < st->delete_count; i++)
        rocksdb_writebatch_delete_cf(wb, s->cf[CF_STATE], st->deletes[i].key, st->deletes[i].key_len);
    for (size_t i = 0; i < st->put_count; i++)
        rocksdb_writebatch_put_cf(wb, s->cf[CF_STATE], st->puts[i].key, st->puts[i].key_len, st->puts[i].value,
                                  st->puts[i].value_len);
}

int store_alerts_commit_state(store *s, const store_alert *alerts, size_t count, const store_detect_mark *marks,
                              size_t mark_count, const store_state_write *state, bool *written,
                              uint32_t *written_count)
{
    MAMORI_ASSERT(s && (alerts || count == 0) && (marks || mark_count == 0));
    uint32_t n_written = 0;
    if (written_count) *written_count = 0;
    bool has_state = state && (state->delete_prefix || state->delete_range_count || state->delete_count ||
                               state->put_count);
    if (count == 0 && mark_count == 0 && !has_state) return 0;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    buf value, scratch;
    buf_init(&value);
    buf_init(&scratch);
    size_t slots = 16;
    while (slots < count * 2) slots *= 2;
    id_set set = {.slots = mamori_xcalloc(slots, sizeof *set.slots), .mask = slots - 1};
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        const store_alert *a = &alerts[i];
        MAMORI_ASSERT(a->body && a->body_len >= 2 && a->body[0] == '{');
        MAMORI_ASSERT(a->status < STORE_ALERT_STATUS_COUNT && a->assignee_len <= STORE_ALERT_ASSIGNEE_MAX);
        bool exists = false;
        if (written) written[i] = false;
        if ((rc = alert_exists(s, a, &exists))) goto out;
        if (exists || !id_set_add(&set, a->id)) continue;
        uint8_t key[ALERT_RECORD_KEY_BYTES];
        alert_record_key(key, a->tenant_hash, a->id);
        record_encode(&value, a);
        rocksdb_writebatch_put_cf(wb, s->cf[CF_ALERTS], (const char *)key, sizeof key, value.data, value.len);
        put_index_entries(s, wb, a);
        put_outbox(s, wb, a, &scratch);
        if (written) written[i] = true;
        n_written++;
    }
    if ((rc = put_marks(s, wb, marks, mark_count, true))) goto out;
    if (has_state) put_state(s, wb, state);
    if (rocksdb_writebatch_count(wb) > 0) {
        char *err = NULL;
        /* new alerts are as durable as events (store.sync); a marks-only write need not be;
         * a checkpoint is: it consumed matches whose alerts are written */
        rocksdb_write(s->db, n_written || has_state ? s->write_options : s->ix_write_options, wb, &err);
        if (err) rc = store_rocks_error(err, "alert commit");
    }
    if (rc == 0 && written_count) *written_count = n_written;
out:
    if (rc && written)
        for (size_t i = 0; i < count; i++) written[i] = false;
    free(set.slots);
    buf_fini(&value);
    buf_fini(&scratch);
    rocksdb_writebatch_destroy(wb);
    return rc;
}

/* ---- reading and updating one alert ---- */

static int read_record(store *s, uint64_t tenant_hash, const uint8_t id[STORE_ALERT_ID_BYTES], buf *storage)
{
    uint8_t key[ALERT_RECORD_KEY_BYTES];
    alert_record_key(key, tenant_hash, id);
    char *err = NULL;
    rocksdb_pinnableslice_t *v =
        rocksdb_get_pinned_cf(s->db, s->read_options, s->cf[CF_ALERTS], (const char *)key, sizeof key, &err);
    if (err) return store_rocks_error(err, "reading an alert");
    if (!v) return -ENOENT;
    size_t len;
    const char *p = rocksdb_pinnableslice_value(v, &len);
    buf_clear(storage);
    buf_append(storage, p, len);
    rocksdb_pinnableslice_destroy(v);
    return 0;
}

int store_alert_get(store *s, uint64_t tenant_hash, const uint8_t id[STORE_ALERT_ID_BYTES], store_alert *out,
                    buf *storage)
{
    MAMORI_ASSERT(s && id && out && storage);
    int rc = read_record(s, tenant_hash, id, storage);
    if (rc) return rc;
    rc = alert_record_decode((const uint8_t *)storage->data, storage->len, tenant_hash, id, out);
    if (rc) LOG_RATELIMITED(LOG_LEVEL_ERROR, "store", 1, "alert record of %zu bytes is damaged", storage->len);
    return rc;
}

int store_alert_update(store *s, uint64_t tenant_hash, const uint8_t id[STORE_ALERT_ID_BYTES], bool set_status,
                       enum store_alert_status status, bool set_assignee, const char *assignee, size_t assignee_len,
                       int64_t updated_us, store_alert *out, buf *storage)
{
    MAMORI_ASSERT(s && id && out && storage);
    if (set_status && (unsigned)status >= STORE_ALERT_STATUS_COUNT) return -EINVAL;
    if (set_assignee && (assignee_len > STORE_ALERT_ASSIGNEE_MAX || (assignee_len && !assignee))) return -EINVAL;
    pthread_mutex_lock(&update_mu);
    buf old, value;
    buf_init(&old);
    buf_init(&value);
    rocksdb_writebatch_t *wb = NULL;
    store_alert a;
    int rc = read_record(s, tenant_hash, id, &old);
    if (rc == 0) rc = alert_record_decode((const uint8_t *)old.data, old.len, tenant_hash, id, &a);
    if (rc) goto out;
    uint8_t old_status = a.status;
    if (set_status) a.status = (uint8_t)status;
    if (set_assignee) {
        a.assignee = assignee ? assignee : "";
        a.assignee_len = (uint32_t)assignee_len;
    }
    a.updated_us = updated_us;
    wb = rocksdb_writebatch_create();
    uint8_t key[STORE_ALERT_INDEX_KEY_MAX];
    alert_record_key(key, tenant_hash, id);
    record_encode(&value, &a);
    rocksdb_writebatch_put_cf(wb, s->cf[CF_ALERTS], (const char *)key, ALERT_RECORD_KEY_BYTES, value.data, value.len);
    if (old_status != a.status) {
        size_t klen = store_alert_index_key(key, ALERT_KIND_STATUS, tenant_hash, old_status, a.ts_us, id);
        rocksdb_writebatch_delete_cf(wb, s->cf[CF_ALERTS], (const char *)key, klen);
    }
    put_index_entries(s, wb, &a);
    char *err = NULL;
    rocksdb_write(s->db, s->write_options, wb, &err);
    if (err) {
        rc = store_rocks_error(err, "alert update");
        goto out;
    }
    /* hand the new record back from the caller's storage */
    buf_clear(storage);
    buf_append(storage, value.data, value.len);
    rc = alert_record_decode((const uint8_t *)storage->data, storage->len, tenant_hash, id, out);
out:
    pthread_mutex_unlock(&update_mu);
    if (wb) rocksdb_writebatch_destroy(wb);
    buf_fini(&old);
    buf_fini(&value);
    return rc;
}

/* ---- watermarks and registries ---- */

int store_detect_marks_scan(store *s, store_detect_mark_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && fn);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_STATE]);
    int rc = 0;
    for (rocksdb_iter_seek(it, MARK_PREFIX, MARK_PREFIX_LEN); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen < MARK_PREFIX_LEN || memcmp(k, MARK_PREFIX, MARK_PREFIX_LEN) != 0) break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        if (klen != MARK_KEY_BYTES || vlen != 16) continue;
        store_detect_mark m = {.tenant_hash = mamori_get_be64(k + MARK_PREFIX_LEN),
                               .agent_hash = mamori_get_be64(k + MARK_PREFIX_LEN + 8),
                               .seq = mamori_get_be64(v),
                               .received_us = (int64_t)mamori_get_be64(v + 8)};
        if (fn(ctx, &m)) break;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) rc = store_rocks_error(err, "scanning detection watermarks");
    return rc;
}

int store_state_scan(store *s, const void *prefix, size_t prefix_len, store_state_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && prefix && fn);
    return store_cf_scan(s, CF_STATE, prefix, prefix_len, fn, ctx, "scanning state");
}

static int get_i64(store *s, const char *key, int64_t *out)
{
    char *err = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(s->db, s->read_options, s->cf[CF_STATE], key, strlen(key), &len, &err);
    if (err) return store_rocks_error(err, "reading detection state");
    *out = (v && len == 8) ? (int64_t)mamori_get_be64((const uint8_t *)v) : 0;
    rocksdb_free(v);
    return 0;
}

int store_detect_state_get(store *s, int64_t *since_us, int64_t *checkpoint_us)
{
    MAMORI_ASSERT(s && since_us && checkpoint_us);
    int rc = get_i64(s, SINCE_KEY, since_us);
    return rc ? rc : get_i64(s, CHECKPOINT_KEY, checkpoint_us);
}

int store_detect_start(store *s, int64_t since_us, const store_detect_mark *marks, size_t mark_count)
{
    MAMORI_ASSERT(s && (marks || mark_count == 0));
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    int rc = put_marks(s, wb, marks, mark_count, false);
    if (rc == 0) {
        put_i64(wb, s->cf[CF_STATE], SINCE_KEY, since_us);
        char *err = NULL;
        rocksdb_write(s->db, s->write_options, wb, &err);
        if (err) rc = store_rocks_error(err, "recording the detection start");
    }
    rocksdb_writebatch_destroy(wb);
    return rc;
}

int store_list_all_agents(store *s, store_any_agent_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && fn);
    pthread_mutex_lock(&s->agents_mu);
    uint32_t n = s->agent_count;
    agent_entry *copy = mamori_xmalloc((n ? n : 1) * sizeof *copy);
    if (n) memcpy(copy, s->agents, n * sizeof *copy); /* s->agents is NULL on a fresh store */
    pthread_mutex_unlock(&s->agents_mu);
    int rc = 0;
    for (uint32_t i = 0; i < n; i++)
        if (fn(ctx, copy[i].tenant_hash, copy[i].agent_hash, copy[i].durable_seq)) {
            rc = 1;
            break;
        }
    free(copy);
    return rc;
}

int store_tenant_name(store *s, uint64_t tenant_hash, char *out, size_t out_len)
{
    MAMORI_ASSERT(s && out && out_len);
    int rc = -ENOENT;
    pthread_mutex_lock(&s->tenants_mu);
    for (uint32_t i = 0; i < s->tenant_count; i++) {
        if (s->tenants[i].hash != tenant_hash) continue;
        size_t n = strlen(s->tenants[i].name);
        if (n < out_len) {
            memcpy(out, s->tenants[i].name, n + 1);
            rc = 0;
        } else {
            rc = -ENOSPC;
        }
        break;
    }
    pthread_mutex_unlock(&s->tenants_mu);
    return rc;
}

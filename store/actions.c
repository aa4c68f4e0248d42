/* store/actions.c — response actions in the commands column family: the record, the
 * pending-delivery index (what a (re)connecting agent is sent), the expiry index (what the
 * response service expires), a per-agent listing index (newest first) and each agent's next
 * command number. A new action and every transition are single RocksDB writes that also
 * carry their audit entry, so "persisted" and "audited" can never disagree.
 * Layouts: docs/storage.md "commands". */
#include "internal.h"

#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define KIND_RECORD 'A'
#define KIND_PENDING 'Q'
#define KIND_EXPIRY 'X'
#define KIND_LIST 'G'
#define KIND_NEXT 'N'
#define RECORD_VERSION 1u
#define RECORD_KEY_BYTES (1u + 8u + STORE_ACTION_ID_BYTES)
#define AGENT_PREFIX_BYTES (1u + 8u + 8u)
#define PENDING_KEY_BYTES (AGENT_PREFIX_BYTES + 8u)
#define EXPIRY_KEY_BYTES (1u + 8u + 8u + STORE_ACTION_ID_BYTES)
#define RECORD_STRINGS 7u

/* Command numbers, pending counts and read-modify-write of records: one lock. */
static pthread_mutex_t actions_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const status_names[STORE_ACTION_STATUS_COUNT] = {"queued",    "sent",   "running",
                                                                     "succeeded", "failed", "expired"};

const char *store_action_status_name(enum store_action_status st)
{
    return (unsigned)st < STORE_ACTION_STATUS_COUNT ? status_names[st] : "unknown";
}

int store_action_status_parse(const char *s, size_t len, enum store_action_status *out)
{
    for (int i = 0; i < STORE_ACTION_STATUS_COUNT; i++)
        if (s && strlen(status_names[i]) == len && memcmp(status_names[i], s, len) == 0) {
            *out = (enum store_action_status)i;
            return 0;
        }
    return -EINVAL;
}

const char *store_isolation_name(int iso)
{
    return iso == STORE_ISOLATION_NONE ? "none" : iso == STORE_ISOLATION_ISOLATED ? "isolated" : NULL;
}

void store_action_id_new(uint8_t out[STORE_ACTION_ID_BYTES])
{
    size_t got = 0;
    while (got < STORE_ACTION_ID_BYTES) {
        ssize_t n = getrandom(out + got, STORE_ACTION_ID_BYTES - got, 0);
        if (n < 0) {
            MAMORI_ASSERT(errno == EINTR);
            continue;
        }
        got += (size_t)n;
    }
}

void store_action_id_format(const uint8_t id[STORE_ACTION_ID_BYTES], char out[STORE_ACTION_ID_HEX_CHARS + 1])
{
    store_alert_id_format(id, out); /* same size and spelling */
}

int store_action_id_parse(const char *s, size_t len, uint8_t out[STORE_ACTION_ID_BYTES])
{
    return store_alert_id_parse(s, len, out);
}

/* ---- keys ---- */

static void record_key(uint8_t out[RECORD_KEY_BYTES], uint64_t tenant_hash, const uint8_t id[STORE_ACTION_ID_BYTES])
{
    out[0] = KIND_RECORD;
    mamori_put_be64(out + 1, tenant_hash);
    memcpy(out + 9, id, STORE_ACTION_ID_BYTES);
}

static void agent_prefix(uint8_t out[AGENT_PREFIX_BYTES], char kind, uint64_t tenant_hash, uint64_t agent_hash)
{
    out[0] = (uint8_t)kind;
    mamori_put_be64(out + 1, tenant_hash);
    mamori_put_be64(out + 9, agent_hash);
}

static void pending_key(uint8_t out[PENDING_KEY_BYTES], uint64_t tenant_hash, uint64_t agent_hash, uint64_t cmd_no)
{
    agent_prefix(out, KIND_PENDING, tenant_hash, agent_hash);
    mamori_put_be64(out + AGENT_PREFIX_BYTES, cmd_no);
}

static void list_key(uint8_t out[PENDING_KEY_BYTES], uint64_t tenant_hash, uint64_t agent_hash, uint64_t cmd_no)
{
    agent_prefix(out, KIND_LIST, tenant_hash, agent_hash);
    mamori_put_be64(out + AGENT_PREFIX_BYTES, ~cmd_no); /* newest first */
}

static void expiry_key(uint8_t out[EXPIRY_KEY_BYTES], int64_t expires_us, uint64_t tenant_hash,
                       const uint8_t id[STORE_ACTION_ID_BYTES])
{
    out[0] = KIND_EXPIRY;
    mamori_put_be64(out + 1, (uint64_t)expires_us ^ (1ULL << 63));
    mamori_put_be64(out + 9, tenant_hash);
    memcpy(out + 17, id, STORE_ACTION_ID_BYTES);
}

/* ---- the record codec ---- */

static void put_str(buf *b, const char *s, size_t n)
{
    uint8_t len[4];
    mamori_put_be32(len, (uint32_t)n);
    buf_append(b, len, 4);
    if (n) buf_append(b, s, n);
    buf_putc(b, '\0');
}

static void record_encode(buf *b, const store_action *a)
{
    uint8_t head[4 + 5 * 8];
    head[0] = RECORD_VERSION;
    head[1] = a->status;
    head[2] = a->history_count;
    head[3] = 0;
    mamori_put_be64(head + 4, a->cmd_no);
    mamori_put_be64(head + 12, a->agent_hash);
    mamori_put_be64(head + 20, (uint64_t)a->created_us);
    mamori_put_be64(head + 28, (uint64_t)a->updated_us);
    mamori_put_be64(head + 36, (uint64_t)a->expires_us);
    buf_clear(b);
    buf_append(b, head, sizeof head);
    for (uint32_t i = 0; i < a->history_count; i++) {
        uint8_t step[9];
        step[0] = a->history[i].status;
        mamori_put_be64(step + 1, (uint64_t)a->history[i].at_us);
        buf_append(b, step, sizeof step);
    }
    put_str(b, a->tenant, strlen(a->tenant));
    put_str(b, a->agent_id, strlen(a->agent_id));
    put_str(b, a->action, strlen(a->action));
    put_str(b, a->actor, strlen(a->actor));
    put_str(b, a->args, a->args_len);
    put_str(b, a->output, a->output_len);
    put_str(b, a->error, a->error_len);
}

/* Decodes storage (which holds the value) into *a; strings point into storage. */
static int record_decode(const buf *storage, uint64_t tenant_hash, const uint8_t id[STORE_ACTION_ID_BYTES],
                         store_action *a)
{
    const uint8_t *p = (const uint8_t *)storage->data, *end = p + storage->len;
    memset(a, 0, sizeof *a);
    if (storage->len < 44 || p[0] != RECORD_VERSION || p[2] > STORE_ACTION_HISTORY_MAX) return -EBADMSG;
    a->tenant_hash = tenant_hash;
    memcpy(a->id, id, STORE_ACTION_ID_BYTES);
    a->status = p[1];
    a->history_count = p[2];
    a->cmd_no = mamori_get_be64(p + 4);
    a->agent_hash = mamori_get_be64(p + 12);
    a->created_us = (int64_t)mamori_get_be64(p + 20);
    a->updated_us = (int64_t)mamori_get_be64(p + 28);
    a->expires_us = (int64_t)mamori_get_be64(p + 36);
    p += 44;
    if ((size_t)(end - p) < (size_t)a->history_count * 9) return -EBADMSG;
    for (uint32_t i = 0; i < a->history_count; i++, p += 9)
        a->history[i] = (store_action_step){p[0], (int64_t)mamori_get_be64(p + 1)};
    const char *strs[RECORD_STRINGS];
    uint32_t lens[RECORD_STRINGS];
    for (uint32_t i = 0; i < RECORD_STRINGS; i++) {
        if (end - p < 4) return -EBADMSG;
        uint32_t n = mamori_get_be32(p);
        p += 4;
        if ((size_t)(end - p) < (size_t)n + 1 || p[n] != '\0') return -EBADMSG;
        strs[i] = (const char *)p;
        lens[i] = n;
        p += n + 1;
    }
    a->tenant = strs[0];
    a->agent_id = strs[1];
    a->action = strs[2];
    a->actor = strs[3];
    a->args = strs[4];
    a->args_len = lens[4];
    a->output = lens[5] ? strs[5] : NULL;
    a->output_len = lens[5];
    a->error = lens[6] ? strs[6] : NULL;
    a->error_len = lens[6];
    return 0;
}

static int read_record(store *s, uint64_t tenant_hash, const uint8_t id[STORE_ACTION_ID_BYTES], store_action *out,
                       buf *storage)
{
    uint8_t key[RECORD_KEY_BYTES];
    record_key(key, tenant_hash, id);
    char *err = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf(s->db, s->read_options, s->cf[CF_COMMANDS], (const char *)key, sizeof key, &vlen, &err);
    if (err) return store_rocks_error(err, "action get");
    if (!v) return -ENOENT;
    buf_clear(storage);
    buf_append(storage, v, vlen);
    rocksdb_free(v);
    int rc = record_decode(storage, tenant_hash, id, out);
    if (rc) LOG_RATELIMITED(LOG_LEVEL_ERROR, "store", 5, "commands: unreadable action record (%zu bytes)", vlen);
    return rc;
}

static int write_batch(store *s, rocksdb_writebatch_t *wb, const char *what)
{
    char *err = NULL;
    rocksdb_write(s->db, s->write_options, wb, &err);
    return err ? store_rocks_error(err, what) : 0;
}

/* Transitions are written to the WAL without an fsync of their own: the response service
 * calls store_sync_wal once per batch of messages (group commit), and a sent/running step
 * lost to a power loss only means the action is sent again, which agents deduplicate by id.
 * Creation is synced per the store options (the API answers 201 only then). */
static int write_batch_unsynced(store *s, rocksdb_writebatch_t *wb, const char *what)
{
    char *err = NULL;
    rocksdb_write(s->db, s->ix_write_options, wb, &err);
    return err ? store_rocks_error(err, what) : 0;
}

/* ---- create ---- */

static int count_pending(store *s, uint64_t tenant_hash, uint64_t agent_hash, uint32_t stop_at, uint32_t *count)
{
    uint8_t prefix[AGENT_PREFIX_BYTES];
    agent_prefix(prefix, KIND_PENDING, tenant_hash, agent_hash);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_COMMANDS]);
    *count = 0;
    for (rocksdb_iter_seek(it, (const char *)prefix, sizeof prefix); rocksdb_iter_valid(it) && *count < stop_at;
         rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != PENDING_KEY_BYTES || memcmp(k, prefix, sizeof prefix) != 0) break;
        (*count)++;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return err ? store_rocks_error(err, "counting pending actions") : 0;
}

static int next_cmd_no(store *s, uint64_t tenant_hash, uint64_t agent_hash, uint64_t *out)
{
    uint8_t key[AGENT_PREFIX_BYTES];
    agent_prefix(key, KIND_NEXT, tenant_hash, agent_hash);
    char *err = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf(s->db, s->read_options, s->cf[CF_COMMANDS], (const char *)key, sizeof key, &vlen, &err);
    if (err) return store_rocks_error(err, "reading the next command number");
    *out = (v && vlen == 8) ? mamori_get_be64((const uint8_t *)v) : 1;
    rocksdb_free(v);
    return 0;
}

int store_action_create(store *s, store_action *a, uint32_t max_pending, int desired_isolation,
                        const store_audit *audit)
{
    MAMORI_ASSERT(s && a && a->tenant && a->agent_id && a->action && a->actor && a->args);
    MAMORI_ASSERT(a->args_len > 0 && strlen(a->action) <= STORE_ACTION_NAME_MAX);
    pthread_mutex_lock(&actions_mu);
    uint32_t pending = 0;
    uint64_t cmd_no = 0;
    int rc = count_pending(s, a->tenant_hash, a->agent_hash, max_pending, &pending);
    if (rc == 0 && pending >= max_pending) rc = -EDQUOT;
    if (rc == 0) rc = next_cmd_no(s, a->tenant_hash, a->agent_hash, &cmd_no);
    if (rc) {
        pthread_mutex_unlock(&actions_mu);
        return rc;
    }
    a->cmd_no = cmd_no;
    a->status = STORE_ACTION_QUEUED;
    a->updated_us = a->created_us;
    a->history_count = 1;
    a->history[0] = (store_action_step){STORE_ACTION_QUEUED, a->created_us};
    buf v;
    buf_init(&v);
    record_encode(&v, a);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_column_family_handle_t *cf = s->cf[CF_COMMANDS];
    uint8_t rk[RECORD_KEY_BYTES], qk[PENDING_KEY_BYTES], gk[PENDING_KEY_BYTES], xk[EXPIRY_KEY_BYTES],
        nk[AGENT_PREFIX_BYTES], next[8];
    record_key(rk, a->tenant_hash, a->id);
    pending_key(qk, a->tenant_hash, a->agent_hash, cmd_no);
    list_key(gk, a->tenant_hash, a->agent_hash, cmd_no);
    expiry_key(xk, a->expires_us, a->tenant_hash, a->id);
    agent_prefix(nk, KIND_NEXT, a->tenant_hash, a->agent_hash);
    mamori_put_be64(next, cmd_no + 1);
    rocksdb_writebatch_put_cf(wb, cf, (const char *)rk, sizeof rk, v.data, v.len);
    rocksdb_writebatch_put_cf(wb, cf, (const char *)qk, sizeof qk, (const char *)a->id, STORE_ACTION_ID_BYTES);
    rocksdb_writebatch_put_cf(wb, cf, (const char *)gk, sizeof gk, (const char *)a->id, STORE_ACTION_ID_BYTES);
    rocksdb_writebatch_put_cf(wb, cf, (const char *)xk, sizeof xk, "", 0);
    rocksdb_writebatch_put_cf(wb, cf, (const char *)nk, sizeof nk, (const char *)next, sizeof next);
    if (desired_isolation != STORE_ISOLATION_UNKNOWN) {
        uint8_t ik[STORE_AGENT_KEY_BYTES], iv[9];
        store_agent_key_tag(ik, a->tenant_hash, a->agent_hash, STORE_AGENT_TAG_ISOLATION);
        iv[0] = (uint8_t)desired_isolation;
        mamori_put_be64(iv + 1, (uint64_t)a->created_us);
        rocksdb_writebatch_put_cf(wb, s->cf[CF_AGENTS], (const char *)ik, sizeof ik, (const char *)iv, sizeof iv);
    }
    if (audit) store_audit_put(s, wb, audit);
    rc = write_batch(s, wb, "action create");
    rocksdb_writebatch_destroy(wb);
    pthread_mutex_unlock(&actions_mu);
    buf_fini(&v);
    return rc;
}

int store_action_get(store *s, uint64_t tenant_hash, const uint8_t id[STORE_ACTION_ID_BYTES], store_action *out,
                     buf *storage)
{
    MAMORI_ASSERT(s && id && out && storage);
    return read_record(s, tenant_hash, id, out, storage);
}

/* ---- transitions ---- */

/* Reads the record and, when the move changes something, appends the new record (and the
 * index deletions of a final status, and the audit entry) to wb; *a is the record after the
 * move (its strings in st, or the caller's output/error). Caller holds actions_mu.
 * Returns 0 with *staged false for a no-op, -EALREADY for a final action. */
static int stage_update(store *s, rocksdb_writebatch_t *wb, uint64_t tenant_hash,
                        const uint8_t id[STORE_ACTION_ID_BYTES], enum store_action_status status, int64_t at_us,
                        const char *output, size_t output_len, const char *error, size_t error_len,
                        const store_audit *audit, store_action *a, buf *st, buf *v, bool *staged)
{
    *staged = false;
    int rc = read_record(s, tenant_hash, id, a, st);
    if (rc) return rc;
    if (store_action_status_final(a->status)) return -EALREADY;
    if (status <= a->status) return 0; /* e.g. sent again after a reconnect: nothing new */
    a->status = (uint8_t)status;
    a->updated_us = at_us;
    if (a->history_count == STORE_ACTION_HISTORY_MAX) { /* keep the first step and the latest ones */
        memmove(&a->history[1], &a->history[2], (STORE_ACTION_HISTORY_MAX - 2) * sizeof a->history[0]);
        a->history_count--;
    }
    a->history[a->history_count++] = (store_action_step){(uint8_t)status, at_us};
    if (output) {
        a->output = output;
        a->output_len = (uint32_t)output_len;
    }
    if (error) {
        a->error = error;
        a->error_len = (uint32_t)error_len;
    }
    record_encode(v, a);
    rocksdb_column_family_handle_t *cf = s->cf[CF_COMMANDS];
    uint8_t rk[RECORD_KEY_BYTES];
    record_key(rk, tenant_hash, id);
    rocksdb_writebatch_put_cf(wb, cf, (const char *)rk, sizeof rk, v->data, v->len);
    if (store_action_status_final(status)) {
        uint8_t qk[PENDING_KEY_BYTES], xk[EXPIRY_KEY_BYTES];
        pending_key(qk, tenant_hash, a->agent_hash, a->cmd_no);
        expiry_key(xk, a->expires_us, tenant_hash, id);
        rocksdb_writebatch_delete_cf(wb, cf, (const char *)qk, sizeof qk);
        rocksdb_writebatch_delete_cf(wb, cf, (const char *)xk, sizeof xk);
    }
    if (audit) store_audit_put(s, wb, audit);
    *staged = true;
    return 0;
}

int store_action_update(store *s, uint64_t tenant_hash, const uint8_t id[STORE_ACTION_ID_BYTES],
                        enum store_action_status status, int64_t at_us, const char *output, size_t output_len,
                        const char *error, size_t error_len, const store_audit *audit, store_action *out,
                        buf *storage)
{
    MAMORI_ASSERT(s && id && (unsigned)status < STORE_ACTION_STATUS_COUNT);
    store_action a;
    buf own, v;
    buf_init(&own);
    buf_init(&v);
    buf *st = storage ? storage : &own;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    bool staged = false;
    pthread_mutex_lock(&actions_mu);
    int rc = stage_update(s, wb, tenant_hash, id, status, at_us, output, output_len, error, error_len, audit, &a, st,
                          &v, &staged);
    if (rc == 0 && staged) {
        rc = write_batch_unsynced(s, wb, "action update");
        if (rc == 0) {
            /* decode the stored copy so *out does not point at the caller's output/error */
            buf_clear(st);
            buf_append(st, v.data, v.len);
            rc = record_decode(st, tenant_hash, id, &a);
        }
    }
    pthread_mutex_unlock(&actions_mu);
    rocksdb_writebatch_destroy(wb);
    if (rc == 0 && out) *out = a;
    buf_fini(&own);
    buf_fini(&v);
    return rc;
}

int store_actions_update_batch(store *s, uint64_t tenant_hash, const uint8_t (*ids)[STORE_ACTION_ID_BYTES], size_t n,
                               enum store_action_status status, int64_t at_us, const store_audit *audits,
                               bool *changed)
{
    MAMORI_ASSERT(s && (ids || n == 0) && changed && (unsigned)status < STORE_ACTION_STATUS_COUNT);
    MAMORI_ASSERT(!store_action_status_final(status)); /* final moves carry outputs: one at a time */
    buf st, v;
    buf_init(&st);
    buf_init(&v);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    int rc = 0;
    size_t staged_count = 0;
    pthread_mutex_lock(&actions_mu);
    for (size_t i = 0; i < n && rc == 0; i++) {
        store_action a;
        int r = stage_update(s, wb, tenant_hash, ids[i], status, at_us, NULL, 0, NULL, 0, audits ? &audits[i] : NULL,
                             &a, &st, &v, &changed[i]);
        if (r == -EALREADY || r == -ENOENT || r == -EBADMSG) changed[i] = false;
        else rc = r;
        if (changed[i]) staged_count++;
    }
    if (rc == 0 && staged_count) rc = write_batch_unsynced(s, wb, "action batch update");
    pthread_mutex_unlock(&actions_mu);
    rocksdb_writebatch_destroy(wb);
    if (rc)
        for (size_t i = 0; i < n; i++) changed[i] = false;
    buf_fini(&st);
    buf_fini(&v);
    return rc;
}

int store_sync_wal(store *s)
{
    MAMORI_ASSERT(s);
    if (!s->opt.sync) return 0;
    char *err = NULL;
    rocksdb_flush_wal(s->db, 1, &err);
    return err ? store_rocks_error(err, "WAL sync") : 0;
}

/* ---- scans ---- */

int store_actions_pending(store *s, uint64_t tenant_hash, uint64_t agent_hash, store_pending_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && fn);
    uint8_t prefix[AGENT_PREFIX_BYTES];
    agent_prefix(prefix, KIND_PENDING, tenant_hash, agent_hash);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_COMMANDS]);
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)prefix, sizeof prefix); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != PENDING_KEY_BYTES || memcmp(k, prefix, sizeof prefix) != 0) break;
        const char *v = rocksdb_iter_value(it, &vlen);
        if (vlen != STORE_ACTION_ID_BYTES) continue;
        if (fn(ctx, mamori_get_be64((const uint8_t *)k + AGENT_PREFIX_BYTES), (const uint8_t *)v)) {
            rc = 1;
            break;
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return err ? store_rocks_error(err, "pending actions scan") : rc;
}

int store_actions_expired(store *s, int64_t now_us, store_expired_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && fn);
    uint8_t start[1] = {KIND_EXPIRY};
    uint64_t bound = (uint64_t)now_us ^ (1ULL << 63);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_COMMANDS]);
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)start, 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen != EXPIRY_KEY_BYTES || k[0] != KIND_EXPIRY) break;
        if (mamori_get_be64(k + 1) > bound) break;
        if (fn(ctx, mamori_get_be64(k + 9), k + 17)) {
            rc = 1;
            break;
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return err ? store_rocks_error(err, "expiry scan") : rc;
}

int store_actions_list(store *s, uint64_t tenant_hash, uint64_t agent_hash, int status, uint64_t before_cmd_no,
                       uint32_t limit, uint64_t max_examined, store_action_fn fn, void *ctx, uint64_t *next_cmd_no)
{
    MAMORI_ASSERT(s && fn && next_cmd_no && limit > 0);
    *next_cmd_no = 0;
    uint8_t prefix[AGENT_PREFIX_BYTES], seek[PENDING_KEY_BYTES];
    agent_prefix(prefix, KIND_LIST, tenant_hash, agent_hash);
    if (before_cmd_no) list_key(seek, tenant_hash, agent_hash, before_cmd_no - 1);
    else memcpy(seek, prefix, sizeof prefix);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_COMMANDS]);
    buf storage;
    buf_init(&storage);
    uint32_t returned = 0;
    uint64_t examined = 0;
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)seek, before_cmd_no ? sizeof seek : sizeof prefix); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != PENDING_KEY_BYTES || memcmp(k, prefix, sizeof prefix) != 0) break;
        uint64_t cmd_no = ~mamori_get_be64((const uint8_t *)k + AGENT_PREFIX_BYTES);
        if (returned == limit || (max_examined && examined == max_examined)) {
            *next_cmd_no = cmd_no + 1;
            break;
        }
        examined++;
        const char *v = rocksdb_iter_value(it, &vlen);
        if (vlen != STORE_ACTION_ID_BYTES) continue;
        uint8_t id[STORE_ACTION_ID_BYTES];
        memcpy(id, v, sizeof id);
        store_action a;
        int r = read_record(s, tenant_hash, id, &a, &storage);
        if (r == -ENOENT || r == -EBADMSG) continue;
        if (r) {
            rc = r;
            break;
        }
        if (status >= 0 && a.status != status) continue;
        returned++;
        if (fn(ctx, &a)) {
            *next_cmd_no = cmd_no; /* the caller stopped: continue below this one */
            break;
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    buf_fini(&storage);
    if (err) return store_rocks_error(err, "actions listing");
    return rc;
}

/* ---- files ---- */

#define FILE_KEY_BYTES (8u + STORE_SHA256_BYTES)

int store_file_put(store *s, uint64_t tenant_hash, const uint8_t sha256[STORE_SHA256_BYTES], const void *data,
                   size_t len)
{
    MAMORI_ASSERT(s && sha256 && (data || len == 0));
    uint8_t key[FILE_KEY_BYTES];
    mamori_put_be64(key, tenant_hash);
    memcpy(key + 8, sha256, STORE_SHA256_BYTES);
    char *err = NULL;
    /* not synced: written before the action's final record, both covered by the caller's
     * store_sync_wal (the WAL keeps their order) */
    rocksdb_put_cf(s->db, s->ix_write_options, s->cf[CF_FILES], (const char *)key, sizeof key, data, len, &err);
    return err ? store_rocks_error(err, "file put") : 0;
}

int store_file_get(store *s, uint64_t tenant_hash, const uint8_t sha256[STORE_SHA256_BYTES], buf *out)
{
    MAMORI_ASSERT(s && sha256 && out);
    uint8_t key[FILE_KEY_BYTES];
    mamori_put_be64(key, tenant_hash);
    memcpy(key + 8, sha256, STORE_SHA256_BYTES);
    return store_cf_get(s, CF_FILES, key, sizeof key, out, "file get");
}

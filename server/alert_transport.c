/* server/alert_transport.c — alerts between processes (Kafka, split roles): a detect worker
 * without the store role sends each alert as a record on the alerts topic, keyed by its
 * agent like the agent's events, so it lands on the partition — and the store shard — that
 * holds the triggering event; that shard's intake thread writes it with store_alerts_commit,
 * which skips ids it has (a batch detected twice, by a restarted or a new owner, raises the
 * same ids). The record: key "tenant/agent", value the alert's JSON body, header
 * mamori.meta = the fixed fields below (big-endian). */
#include "detect_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

#define MOD "store"
#define META_VERSION 1u
#define META_BYTES (1u + STORE_ALERT_ID_BYTES + 8u * 3 + 2u + 8u * 3)
#define INTAKE_POLL_MAX 512u

size_t alert_meta_encode(const store_alert *a, uint8_t out[ALERT_META_BYTES])
{
    _Static_assert(META_BYTES == ALERT_META_BYTES, "one size for the alert meta header");
    uint8_t *p = out;
    *p++ = META_VERSION;
    memcpy(p, a->id, STORE_ALERT_ID_BYTES);
    p += STORE_ALERT_ID_BYTES;
    mamori_put_be64(p, a->tenant_hash), p += 8;
    mamori_put_be64(p, (uint64_t)a->ts_us), p += 8;
    mamori_put_be64(p, (uint64_t)a->created_us), p += 8;
    *p++ = a->level;
    *p++ = a->status;
    mamori_put_be64(p, a->rule_hash), p += 8;
    mamori_put_be64(p, a->host_id_hash), p += 8;
    mamori_put_be64(p, a->host_name_hash), p += 8;
    return (size_t)(p - out);
}

/* A record back to an alert (borrowing the record's memory); false when it is not one. */
static bool alert_decode(const bus_record *r, store_alert *a, char *tenant, size_t tenant_cap)
{
    if (!r->meta || r->meta_len != META_BYTES || !r->key || !r->value || r->value_len < 2 ||
        ((const char *)r->value)[0] != '{' || r->value_len > UINT32_MAX)
        return false;
    const uint8_t *p = r->meta;
    if (*p++ != META_VERSION) return false;
    const char *slash = memchr(r->key, '/', r->key_len);
    size_t tl = slash ? (size_t)(slash - r->key) : 0;
    if (!tl || tl >= tenant_cap) return false;
    memcpy(tenant, r->key, tl);
    tenant[tl] = '\0';
    memset(a, 0, sizeof *a);
    memcpy(a->id, p, STORE_ALERT_ID_BYTES);
    p += STORE_ALERT_ID_BYTES;
    a->tenant_hash = mamori_get_be64(p), p += 8;
    if (a->tenant_hash != event_tenant_hash(tenant)) return false;
    a->ts_us = (int64_t)mamori_get_be64(p), p += 8;
    a->created_us = a->updated_us = (int64_t)mamori_get_be64(p), p += 8;
    a->level = *p++;
    a->status = *p++;
    if (a->status >= STORE_ALERT_STATUS_COUNT) return false;
    a->rule_hash = mamori_get_be64(p), p += 8;
    a->host_id_hash = mamori_get_be64(p), p += 8;
    a->host_name_hash = mamori_get_be64(p);
    a->tenant = tenant;
    a->assignee = "";
    a->body = r->value;
    a->body_len = (uint32_t)r->value_len;
    return true;
}

/* ---- the intake: one thread per store process ---- */

struct alert_intake {
    store *db;
    bus_records *records;
    pthread_t thread;
    atomic_bool stop;
};

static void *intake_main(void *arg)
{
    alert_intake *in = arg;
    pthread_setname_np(pthread_self(), "alert-intake");
    bus_record *recs = mamori_xcalloc(INTAKE_POLL_MAX, sizeof *recs);
    store_alert *alerts = mamori_xcalloc(INTAKE_POLL_MAX, sizeof *alerts);
    char(*tenants)[72] = mamori_xcalloc(INTAKE_POLL_MAX, sizeof *tenants);
    uint64_t invalid = 0;
    while (!atomic_load(&in->stop)) {
        int n = bus_records_poll(in->records, recs, INTAKE_POLL_MAX, 100);
        if (n <= 0) continue;
        size_t count = 0;
        for (int i = 0; i < n; i++) {
            if (alert_decode(&recs[i], &alerts[count], tenants[count], sizeof tenants[count])) count++;
            else LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "alert intake: record %llu is not an alert, skipped",
                                 (unsigned long long)++invalid);
        }
        uint32_t backoff_ms = 50;
        bool ok = count == 0;
        while (!ok && !atomic_load(&in->stop)) {
            uint32_t written = 0;
            int rc = store_alerts_commit(in->db, alerts, count, NULL, 0, NULL, &written);
            if (rc == 0) {
                ok = true;
                break;
            }
            LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "alert intake: writing %zu alerts failed, retrying: %s", count,
                            strerror(-rc));
            struct timespec ts = {backoff_ms / 1000, (long)(backoff_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            if (backoff_ms < 5000) backoff_ms *= 2;
        }
        if (ok) bus_records_done(in->records); /* else (stopping): read again after the restart */
    }
    free(tenants);
    free(alerts);
    free(recs);
    return NULL;
}

int alert_intake_start(bus *b, store *db, const mamori_config *cfg, alert_intake **out)
{
    *out = NULL;
    alert_intake *in = mamori_xcalloc(1, sizeof *in);
    in->db = db;
    int rc = bus_records_open(b, "store-alerts", cfg->bus.kafka.store_shard, cfg->bus.kafka.store_shards, &in->records);
    if (rc) {
        free(in);
        return rc;
    }
    rc = -pthread_create(&in->thread, NULL, intake_main, in);
    if (rc) {
        bus_records_close(in->records);
        free(in);
        return rc;
    }
    *out = in;
    return 0;
}

void alert_intake_stop(alert_intake *in)
{
    if (!in) return;
    atomic_store(&in->stop, true);
    pthread_join(in->thread, NULL);
    bus_records_close(in->records);
    free(in);
}

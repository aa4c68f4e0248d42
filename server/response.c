/* server/response.c — the response service thread (docs/response.md): a mailbox fed by
 * ingest (agent online/offline, isolation reports, RESULTs and fetched files), the API
 * (action created) and detection (automatic response); per message it persists first, then
 * acts: an action is marked sent before its COMMAND goes to ingest, a result is stored
 * before anything else learns of it. Once a second it expires overdue actions and checks
 * isolation drift. The agent registry records and drift alerts live in response_agents.c. */
#include "response_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "response"

/* ---- agents (response thread only, except desired which the map lock guards) ---- */

static uint32_t agent_slot(uint64_t th, uint64_t ah, uint32_t mask)
{
    return (uint32_t)((ah ^ (th * 0x9E3779B97F4A7C15ull)) >> 20) & mask;
}

resp_agent *resp_agent_find(response_svc *r, uint64_t th, uint64_t ah, bool create)
{
    uint32_t s = agent_slot(th, ah, r->agent_mask);
    for (; r->agent_table[s]; s = (s + 1) & r->agent_mask) {
        resp_agent *a = r->agents[r->agent_table[s] - 1];
        if (a->tenant_hash == th && a->agent_hash == ah) return a;
    }
    if (!create) return NULL;
    resp_agent *a = mamori_xcalloc(1, sizeof *a);
    a->tenant_hash = th;
    a->agent_hash = ah;
    a->desired = STORE_ISOLATION_NONE;
    a->reported = STORE_ISOLATION_UNKNOWN;
    if (r->agent_count == r->agent_cap) {
        r->agent_cap = r->agent_cap ? r->agent_cap * 2 : 256;
        r->agents = mamori_xrealloc(r->agents, r->agent_cap * sizeof *r->agents);
    }
    r->agents[r->agent_count++] = a;
    r->agent_table[s] = r->agent_count;
    if (r->agent_count * 2 > r->agent_mask) {
        r->agent_mask = r->agent_mask * 2 + 1;
        free(r->agent_table);
        r->agent_table = mamori_xcalloc(r->agent_mask + 1, sizeof *r->agent_table);
        for (uint32_t i = 0; i < r->agent_count; i++) {
            uint32_t k = agent_slot(r->agents[i]->tenant_hash, r->agents[i]->agent_hash, r->agent_mask);
            while (r->agent_table[k]) k = (k + 1) & r->agent_mask;
            r->agent_table[k] = i + 1;
        }
    }
    return a;
}

int response_desired_isolation(void *ctx, uint64_t tenant_hash, uint64_t agent_hash)
{
    response_svc *r = ctx;
    pthread_mutex_lock(&r->map_mu);
    resp_agent *a = resp_agent_find(r, tenant_hash, agent_hash, false);
    int d = a ? a->desired : STORE_ISOLATION_NONE;
    pthread_mutex_unlock(&r->map_mu);
    return d == STORE_ISOLATION_ISOLATED ? 1 : 0;
}

static int load_desired(void *ctx, uint64_t th, uint64_t ah, int desired, int64_t at_us)
{
    response_svc *r = ctx;
    pthread_mutex_lock(&r->map_mu);
    resp_agent *a = resp_agent_find(r, th, ah, true);
    a->desired = desired;
    pthread_mutex_unlock(&r->map_mu);
    a->desired_at_us = at_us;
    return 0;
}

/* ---- the mailbox ---- */

void resp_enqueue_locked(response_svc *r, resp_msg *m)
{
    if (r->tail) r->tail->next = m;
    else r->head = m;
    r->tail = m;
    r->queued++;
    pthread_cond_signal(&r->cv);
}

static void post(response_svc *r, resp_msg *m)
{
    pthread_mutex_lock(&r->mu);
    resp_enqueue_locked(r, m);
    pthread_mutex_unlock(&r->mu);
}

static char *dup_or_null(const char *s, size_t n) { return s ? mamori_xstrndup(s, n) : NULL; }

void response_on_agent_event(void *ctx, ingest_agent_event *ev)
{
    response_svc *r = ctx;
    resp_msg *m = mamori_xcalloc(1, sizeof *m);
    m->kind = (int)ev->kind;
    m->tenant_hash = ev->tenant_hash;
    m->agent_hash = ev->agent_hash;
    snprintf(m->tenant, sizeof m->tenant, "%s", ev->tenant);
    snprintf(m->agent_id, sizeof m->agent_id, "%s", ev->agent_id);
    m->route = ev->route;
    m->at_us = ev->at_us;
    m->isolation = ev->isolation;
    m->caps = ev->caps;
    if (ev->kind == INGEST_AGENT_ONLINE) {
        m->text = dup_or_null(ev->hello, ev->hello_len);
        m->text_len = ev->hello_len;
        snprintf(m->peer, sizeof m->peer, "%s", ev->peer ? ev->peer : "");
        snprintf(m->server_address, sizeof m->server_address, "%s", ev->server_address ? ev->server_address : "");
    } else if (ev->kind == INGEST_AGENT_RESULT) {
        m->cmd_no = ev->cmd_no;
        memcpy(m->action_id, ev->action_id, STORE_ACTION_ID_BYTES);
        m->status = (int)ev->status;
        m->text = dup_or_null(ev->output, ev->output_len);
        m->text_len = ev->output ? ev->output_len : 0;
        m->error = dup_or_null(ev->error, ev->error_len);
        m->error_len = ev->error ? ev->error_len : 0;
        m->file = ev->file;
        m->file_len = ev->file_len;
        memcpy(m->file_sha256, ev->file_sha256, sizeof m->file_sha256);
        ev->file = NULL; /* taken */
    }
    post(r, m);
}

void response_action_created(void *ctx, const store_action *a, int desired_isolation)
{
    response_svc *r = ctx;
    if (desired_isolation != STORE_ISOLATION_UNKNOWN) {
        /* at once, so a WELCOME from now on carries it */
        pthread_mutex_lock(&r->map_mu);
        resp_agent *ag = resp_agent_find(r, a->tenant_hash, a->agent_hash, true);
        ag->desired = desired_isolation;
        ag->desired_at_us = a->created_us;
        if (!ag->agent_id[0]) snprintf(ag->agent_id, sizeof ag->agent_id, "%s", a->agent_id);
        if (!ag->tenant[0]) snprintf(ag->tenant, sizeof ag->tenant, "%s", a->tenant);
        pthread_mutex_unlock(&r->map_mu);
    }
    resp_msg *m = mamori_xcalloc(1, sizeof *m);
    m->kind = RESP_MSG_CREATED;
    m->tenant_hash = a->tenant_hash;
    m->agent_hash = a->agent_hash;
    post(r, m);
}

static void msg_free(resp_msg *m)
{
    free(m->text);
    free(m->error);
    free(m->file);
    free(m);
}

/* ---- audit helper ---- */

void resp_audit(store_audit *au, const store_action *a, const char *what, const char *result, int64_t at_us,
                const char *actor)
{
    memset(au, 0, sizeof *au);
    au->at_us = at_us;
    au->tenant_hash = a->tenant_hash;
    au->tenant = a->tenant;
    au->actor = actor ? actor : a->actor;
    au->what = what;
    au->target = a->agent_id;
    au->result = result;
}

/* Writes a transition with its audit entry; logs and counts a failure. */
static int transition(response_svc *r, const store_action *a, enum store_action_status st, const char *output,
                      size_t output_len, const char *error, size_t error_len, int64_t now_us, const char *actor,
                      store_action *out, buf *storage)
{
    store_audit au;
    char idhex[STORE_ACTION_ID_HEX_CHARS + 1];
    store_action_id_format(a->id, idhex);
    buf detail;
    buf_init(&detail);
    buf_printf(&detail, "{\"action_id\":\"%s\",\"action\":", idhex);
    json_write_string(&detail, a->action, strlen(a->action));
    if (error) {
        buf_puts(&detail, ",\"error\":");
        json_write_string(&detail, error, MAMORI_MIN(error_len, (size_t)512));
    }
    buf_putc(&detail, '}');
    resp_audit(&au, a, "action.status", store_action_status_name(st), now_us, actor ? actor : "mamori");
    au.detail = detail.data;
    au.detail_len = detail.len;
    int rc = store_action_update(r->db, a->tenant_hash, a->id, st, now_us, output, output_len, error, error_len, &au,
                                 out, storage);
    if (rc == 0) r->wal_dirty = true;
    buf_fini(&detail);
    if (rc && rc != -EALREADY) {
        atomic_fetch_add(&r->stats.store_errors, 1);
        LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 5, "action %s: persisting %s failed: %s", idhex,
                        store_action_status_name(st), strerror(-rc));
    }
    return rc;
}

/* ---- delivery ---- */

typedef struct pending_ids {
    uint8_t (*ids)[STORE_ACTION_ID_BYTES];
    uint32_t n, cap;
} pending_ids;

static int collect_pending(void *ctx, uint64_t cmd_no, const uint8_t id[STORE_ACTION_ID_BYTES])
{
    (void)cmd_no;
    pending_ids *p = ctx;
    if (p->n == p->cap) return 1; /* bounded: more than max_pending waits for the next pass */
    memcpy(p->ids[p->n++], id, STORE_ACTION_ID_BYTES);
    return 0;
}

/* The COMMAND payload: id, action, args (isolate: the endpoints that stay reachable), expiry. */
static void command_payload(response_svc *r, const resp_agent *ag, const store_action *a, buf *out)
{
    char idhex[STORE_ACTION_ID_HEX_CHARS + 1], exp[40];
    store_action_id_format(a->id, idhex);
    clock_format_rfc3339(a->expires_us, exp);
    buf_clear(out);
    buf_printf(out, "{\"id\":\"%s\",\"action\":", idhex);
    json_write_string(out, a->action, strlen(a->action));
    buf_puts(out, ",\"args\":");
    if (!strcmp(a->action, "isolate")) {
        buf_puts(out, "{\"allow\":[");
        uint32_t n = 0;
        if (ag->server_address[0]) {
            json_write_string(out, ag->server_address, strlen(ag->server_address));
            n++;
        }
        const config_list *extra = &r->cfg->response.isolation_allow;
        for (uint32_t i = 0; i < extra->count; i++) {
            if (n++) buf_putc(out, ',');
            json_write_string(out, extra->items[i], strlen(extra->items[i]));
        }
        buf_puts(out, "]}");
    } else {
        buf_append(out, a->args, a->args_len);
    }
    buf_printf(out, ",\"expires_at\":\"%s\"}", exp);
}

static uint64_t fetch_max_bytes(response_svc *r, const store_action *a)
{
    uint64_t max = config_response_max_file_bytes(r->cfg, a->tenant);
    arena_reset(&r->scratch);
    json_value v;
    json_error jerr;
    if (json_parse(r->parser, &r->scratch, a->args, a->args_len, &v, &jerr) == 0) {
        const json_value *m = json_object_get(&v, "max_bytes", 9);
        if (m && m->type == JSON_NUMBER && (m->flags & JSON_FLAG_INT) && m->num.i > 0 && (uint64_t)m->num.i < max)
            max = (uint64_t)m->num.i;
    }
    return max;
}

/* Sends the agent's pending actions (only those still queued unless all). */
/* One COMMAND to go out: what the delivery pass keeps of each action. */
typedef struct outgoing {
    uint8_t id[STORE_ACTION_ID_BYTES];
    uint64_t cmd_no;
    uint64_t max_bytes;
    bool fetch, mark; /* mark: queued, must be persisted as sent first */
    uint32_t payload_off, payload_len;
} outgoing;

/* Sends the agent's pending actions (only those still queued unless all). Every queued one
 * is marked sent in ONE write (with its audit entry) before any COMMAND goes out: a
 * reconnecting agent with many queued actions costs one WAL append, not one per action. */
static void deliver(response_svc *r, resp_agent *ag, bool all)
{
    if (!ag->online || !(ag->caps & INGEST_CAP_RESPONSE) || !r->ingest) return;
    uint8_t ids[256][STORE_ACTION_ID_BYTES];
    pending_ids p = {ids, 0, MAMORI_MIN(r->cfg->response.max_pending_per_agent, 256u)};
    if (store_actions_pending(r->db, ag->tenant_hash, ag->agent_hash, collect_pending, &p) < 0) {
        atomic_fetch_add(&r->stats.store_errors, 1);
        return;
    }
    if (p.n == 0) return;
    outgoing *out = mamori_xcalloc(p.n, sizeof *out);
    uint8_t (*mark_ids)[STORE_ACTION_ID_BYTES] = mamori_xcalloc(p.n, STORE_ACTION_ID_BYTES);
    store_audit *audits = mamori_xcalloc(p.n, sizeof *audits);
    bool *changed = mamori_xcalloc(p.n, sizeof *changed);
    uint32_t *details = mamori_xcalloc(p.n, sizeof *details);
    buf storage, payloads, detail;
    buf_init(&storage);
    buf_init(&payloads);
    buf_init(&detail);
    int64_t now = clock_wall_us();
    uint32_t n = 0, marks = 0;
    char tenant[65] = "";
    for (uint32_t i = 0; i < p.n; i++) {
        store_action a;
        if (store_action_get(r->db, ag->tenant_hash, ids[i], &a, &storage) != 0) continue;
        if (store_action_status_final(a.status)) continue;
        if (a.expires_us <= now) continue; /* the expiry pass takes it */
        if (!all && a.status != STORE_ACTION_QUEUED) continue;
        bool iso = !strcmp(a.action, "isolate") || !strcmp(a.action, "release");
        if (iso && !(ag->caps & INGEST_CAP_ISOLATION)) continue; /* stays queued until it expires */
        outgoing *o = &out[n++];
        memcpy(o->id, a.id, sizeof o->id);
        o->cmd_no = a.cmd_no;
        o->fetch = !strcmp(a.action, "fetch_file");
        o->max_bytes = o->fetch ? fetch_max_bytes(r, &a) : 0;
        buf one;
        buf_init(&one);
        command_payload(r, ag, &a, &one);
        o->payload_off = (uint32_t)payloads.len;
        o->payload_len = (uint32_t)one.len;
        buf_append(&payloads, one.data, one.len);
        buf_fini(&one);
        if (a.status == STORE_ACTION_QUEUED) {
            o->mark = true;
            memcpy(mark_ids[marks], a.id, STORE_ACTION_ID_BYTES);
            char idhex[STORE_ACTION_ID_HEX_CHARS + 1];
            store_action_id_format(a.id, idhex);
            details[marks] = (uint32_t)detail.len;
            buf_printf(&detail, "{\"action_id\":\"%s\",\"action\":\"%s\"}", idhex, a.action);
            snprintf(tenant, sizeof tenant, "%s", a.tenant);
            audits[marks] = (store_audit){.at_us = now, .tenant_hash = ag->tenant_hash, .actor = "mamori",
                                          .what = "action.status", .result = "sent"};
            marks++;
        }
    }
    /* the strings of the audit entries, now that the detail buffer stopped moving */
    for (uint32_t i = 0; i < marks; i++) {
        audits[i].tenant = tenant;
        audits[i].target = ag->agent_id;
        audits[i].detail = detail.data + details[i];
        audits[i].detail_len = (i + 1 < marks ? details[i + 1] : (uint32_t)detail.len) - details[i];
    }
    bool write_ok = true;
    if (marks) {
        int rc = store_actions_update_batch(r->db, ag->tenant_hash, (const uint8_t(*)[STORE_ACTION_ID_BYTES])mark_ids,
                                            marks, STORE_ACTION_SENT, now, audits, changed);
        if (rc) {
            write_ok = false; /* not persisted: not sent (retried at the next connect or creation) */
        } else {
            r->wal_dirty = true;
            atomic_fetch_add(&r->stats.store_errors, 1);
            LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 5, "agent %s: marking %u actions sent failed: %s", ag->agent_id,
                            marks, strerror(-rc));
        }
    }
    for (uint32_t i = 0, m = 0; i < n; i++) {
        outgoing *o = &out[i];
        if (o->mark && (!write_ok || !changed[m++])) continue;
        ingest_send_command(r->ingest, &ag->route, o->cmd_no, o->id, o->fetch, o->max_bytes,
                            payloads.data + o->payload_off, o->payload_len);
        atomic_fetch_add(&r->stats.actions_delivered, 1);
    }
    buf_fini(&storage);
    buf_fini(&payloads);
    buf_fini(&detail);
    free(out);
    free(mark_ids);
    free(audits);
    free(changed);
    free(details);
}

void resp_deliver_new(response_svc *r, resp_agent *ag) { deliver(r, ag, false); }

/* ---- results ---- */

static void on_result(response_svc *r, resp_msg *m)
{
    buf storage;
    buf_init(&storage);
    store_action a;
    atomic_fetch_add(&r->stats.results, 1);
    int rc = store_action_get(r->db, m->tenant_hash, m->action_id, &a, &storage);
    if (rc) {
        atomic_fetch_add(&r->stats.results_late, 1);
        buf_fini(&storage);
        return;
    }
    if (store_action_status_final(a.status)) {
        atomic_fetch_add(&r->stats.results_late, 1); /* e.g. expired meanwhile */
        buf_fini(&storage);
        return;
    }
    int64_t now = clock_wall_us();
    if (m->status == INGEST_RESULT_RUNNING) {
        (void)transition(r, &a, STORE_ACTION_RUNNING, NULL, 0, NULL, 0, now, NULL, NULL, NULL);
        buf_fini(&storage);
        return;
    }
    enum store_action_status st = m->status == INGEST_RESULT_SUCCEEDED ? STORE_ACTION_SUCCEEDED : STORE_ACTION_FAILED;
    const char *err = m->error;
    size_t err_len = m->error_len;
    char msg[200];
    if (st == STORE_ACTION_SUCCEEDED && m->file) {
        /* the bytes first: a succeeded fetch always has its file */
        uint64_t limit = config_response_max_file_bytes(r->cfg, a.tenant);
        if (m->file_len > limit) {
            st = STORE_ACTION_FAILED;
            snprintf(msg, sizeof msg, "file over limit: %zu bytes, the tenant's max_file_bytes is %llu", m->file_len,
                     (unsigned long long)limit);
            err = msg;
            err_len = strlen(msg);
        } else if ((rc = store_file_put(r->db, m->tenant_hash, m->file_sha256, m->file, m->file_len)) != 0) {
            atomic_fetch_add(&r->stats.store_errors, 1);
            st = STORE_ACTION_FAILED;
            snprintf(msg, sizeof msg, "storing the file failed: %s", strerror(-rc));
            err = msg;
            err_len = strlen(msg);
        } else {
            atomic_fetch_add(&r->stats.files_stored, 1);
            r->wal_dirty = true;
        }
    }
    if (st == STORE_ACTION_FAILED && !err) {
        err = "the agent gave no reason";
        err_len = strlen(err);
    }
    const char *out = st == STORE_ACTION_SUCCEEDED || m->text ? m->text : NULL;
    (void)transition(r, &a, st, out, out ? m->text_len : 0, st == STORE_ACTION_FAILED ? err : NULL,
                     st == STORE_ACTION_FAILED ? err_len : 0, now, NULL, NULL, NULL);
    /* isolate/release report the state they enforce */
    if (st == STORE_ACTION_SUCCEEDED && m->text && (!strcmp(a.action, "isolate") || !strcmp(a.action, "release"))) {
        arena_reset(&r->scratch);
        json_value v;
        json_error jerr;
        if (json_parse(r->parser, &r->scratch, m->text, m->text_len, &v, &jerr) == 0 && v.type == JSON_OBJECT) {
            const json_value *iso = json_object_get(&v, "isolation", 9);
            int rep = !json_is_string(iso) ? STORE_ISOLATION_UNKNOWN
                      : (iso->len == 8 && !memcmp(iso->str, "isolated", 8)) ? STORE_ISOLATION_ISOLATED
                      : (iso->len == 4 && !memcmp(iso->str, "none", 4))     ? STORE_ISOLATION_NONE
                                                                            : STORE_ISOLATION_UNKNOWN;
            pthread_mutex_lock(&r->map_mu);
            resp_agent *ag = resp_agent_find(r, m->tenant_hash, m->agent_hash, false);
            pthread_mutex_unlock(&r->map_mu);
            if (ag && rep != STORE_ISOLATION_UNKNOWN) resp_agent_reported(r, ag, rep, now);
        }
    }
    buf_fini(&storage);
}

/* ---- expiry ---- */

typedef struct expired_list {
    uint64_t th[256];
    uint8_t id[256][STORE_ACTION_ID_BYTES];
    uint32_t n;
} expired_list;

static int collect_expired(void *ctx, uint64_t th, const uint8_t id[STORE_ACTION_ID_BYTES])
{
    expired_list *l = ctx;
    l->th[l->n] = th;
    memcpy(l->id[l->n], id, STORE_ACTION_ID_BYTES);
    return ++l->n == 256; /* the rest on the next pass */
}

/* Expires what is due, 256 at a time, for at most ~200 ms per pass (the mailbox waits
 * meanwhile; the rest goes on at the next tick). */
static void expire(response_svc *r)
{
    expired_list *l = r->expired;
    int64_t start_ms = clock_mono_ms();
    buf storage;
    buf_init(&storage);
    do {
        l->n = 0;
        int64_t now = clock_wall_us();
        if (store_actions_expired(r->db, now, collect_expired, l) < 0) {
            atomic_fetch_add(&r->stats.store_errors, 1);
            break;
        }
        uint32_t done = 0;
        for (uint32_t i = 0; i < l->n; i++) {
            store_action a;
            if (store_action_get(r->db, l->th[i], l->id[i], &a, &storage) != 0) continue;
            const char *why = "expired before a final result";
            if (transition(r, &a, STORE_ACTION_EXPIRED, NULL, 0, why, strlen(why), now, NULL, NULL, NULL) == 0) {
                atomic_fetch_add(&r->stats.expired, 1);
                done++;
            }
        }
        if (l->n < 256 || done == 0) break;
    } while (clock_mono_ms() - start_ms < 200);
    buf_fini(&storage);
}

/* ---- the thread ---- */

static resp_agent *find_locked(response_svc *r, uint64_t th, uint64_t ah, bool create)
{
    pthread_mutex_lock(&r->map_mu);
    resp_agent *a = resp_agent_find(r, th, ah, create);
    pthread_mutex_unlock(&r->map_mu);
    return a; /* agents are never freed while the service lives */
}

static void handle(response_svc *r, resp_msg *m)
{
    switch (m->kind) {
    case INGEST_AGENT_ONLINE: {
        resp_agent *ag = find_locked(r, m->tenant_hash, m->agent_hash, true);
        resp_agent_online(r, ag, m);
        deliver(r, ag, true);
        return;
    }
    case INGEST_AGENT_OFFLINE: {
        resp_agent *ag = find_locked(r, m->tenant_hash, m->agent_hash, false);
        if (ag && ag->online && ag->route.thread == m->route.thread && ag->route.slot == m->route.slot &&
            ag->route.gen == m->route.gen)
            resp_agent_offline(r, ag, m->at_us);
        return;
    }
    case INGEST_AGENT_ISOLATION: {
        resp_agent *ag = find_locked(r, m->tenant_hash, m->agent_hash, false);
        if (ag && m->isolation >= 0) resp_agent_reported(r, ag, m->isolation, m->at_us);
        return;
    }
    case INGEST_AGENT_RESULT: on_result(r, m); return;
    case RESP_MSG_CREATED: {
        resp_agent *ag = find_locked(r, m->tenant_hash, m->agent_hash, false);
        if (ag) deliver(r, ag, false);
        return;
    }
    case RESP_MSG_AUTO: resp_auto_handle(r, m); return;
    default: return;
    }
}

static void *thread_main(void *arg)
{
    response_svc *r = arg;
    pthread_setname_np(pthread_self(), "response");
    int64_t next_tick_ms = clock_mono_ms() + 1000;
    pthread_mutex_lock(&r->mu);
    while (!r->stopping) {
        if (!r->head) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait_ms = next_tick_ms - clock_mono_ms();
            if (wait_ms > 0) {
                ts.tv_sec += wait_ms / 1000;
                ts.tv_nsec += (wait_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&r->cv, &r->mu, &ts);
            }
        }
        resp_msg *batch = r->head;
        r->head = r->tail = NULL;
        r->queued = 0;
        pthread_mutex_unlock(&r->mu);
        while (batch) {
            resp_msg *next = batch->next;
            handle(r, batch);
            msg_free(batch);
            batch = next;
        }
        if (clock_mono_ms() >= next_tick_ms) {
            expire(r);
            resp_drift_check(r, clock_wall_us());
            next_tick_ms = clock_mono_ms() + 1000;
        }
        /* group commit: one fsync for everything this pass wrote */
        if (r->wal_dirty) {
            int rc = store_sync_wal(r->db);
            if (rc) {
                atomic_fetch_add(&r->stats.store_errors, 1);
                LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 5, "WAL sync failed: %s", strerror(-rc));
            }
            r->wal_dirty = false;
        }
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int response_create(const mamori_config *cfg, store *db, response_svc **out, char *err, size_t err_len)
{
    response_svc *r = mamori_xcalloc(1, sizeof *r);
    r->cfg = cfg;
    r->db = db;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->map_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    r->agent_mask = 1023;
    r->agent_table = mamori_xcalloc(r->agent_mask + 1, sizeof *r->agent_table);
    r->parser = json_parser_create();
    arena_init(&r->scratch, 64 * 1024);
    r->expired = mamori_xmalloc(sizeof *r->expired);
    pthread_mutex_init(&r->auto_mu, NULL);
    int rc = store_agent_isolation_scan(db, load_desired, r);
    if (rc >= 0) rc = resp_registry_start(r);
    if (rc < 0) {
        snprintf(err, err_len, "response: loading desired isolation and the agent registry: %s", strerror(-rc));
        response_destroy(r);
        return rc;
    }
    *out = r;
    return 0;
}

void response_set_ingest(response_svc *r, ingest *in) { r->ingest = in; }

int response_start(response_svc *r)
{
    int rc = pthread_create(&r->thread, NULL, thread_main, r);
    if (rc) return -rc;
    r->started = true;
    return 0;
}

void response_stop(response_svc *r)
{
    if (!r || !r->started) return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    r->started = false;
}

void response_destroy(response_svc *r)
{
    if (!r) return;
    response_stop(r);
    for (resp_msg *m = r->head; m;) {
        resp_msg *next = m->next;
        msg_free(m);
        m = next;
    }
    for (uint32_t i = 0; i < r->agent_count; i++) {
        free(r->agents[i]->host_json);
        free(r->agents[i]->caps_json);
        free(r->agents[i]);
    }
    free(r->agents);
    free(r->agent_table);
    free(r->expired);
    free(r->auto_rates);
    json_parser_destroy(r->parser);
    arena_fini(&r->scratch);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->map_mu);
    pthread_mutex_destroy(&r->auto_mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

void response_get_stats(response_svc *r, response_stats *out)
{
    memset(out, 0, sizeof *out);
#define S(f) out->f = atomic_load(&r->stats.f)
    S(actions_delivered);
    S(results);
    S(files_stored);
    S(expired);
    S(drift_alerts);
    S(auto_created);
    S(auto_suppressed);
    S(store_errors);
    S(results_late);
#undef S
}

void response_write_metrics(void *ctx, buf *out)
{
    response_svc *r = ctx;
    response_stats s;
    response_get_stats(r, &s);
    buf_printf(out,
               "# TYPE mamori_response_actions_delivered_total counter\nmamori_response_actions_delivered_total %llu\n"
               "# TYPE mamori_response_results_total counter\nmamori_response_results_total %llu\n"
               "# TYPE mamori_response_late_results_total counter\nmamori_response_late_results_total %llu\n"
               "# TYPE mamori_response_files_stored_total counter\nmamori_response_files_stored_total %llu\n"
               "# TYPE mamori_response_expired_total counter\nmamori_response_expired_total %llu\n"
               "# TYPE mamori_response_drift_alerts_total counter\nmamori_response_drift_alerts_total %llu\n"
               "# TYPE mamori_response_auto_created_total counter\nmamori_response_auto_created_total %llu\n"
               "# TYPE mamori_response_auto_suppressed_total counter\nmamori_response_auto_suppressed_total %llu\n"
               "# TYPE mamori_response_store_errors_total counter\nmamori_response_store_errors_total %llu\n",
               (unsigned long long)s.actions_delivered, (unsigned long long)s.results,
               (unsigned long long)s.results_late, (unsigned long long)s.files_stored, (unsigned long long)s.expired,
               (unsigned long long)s.drift_alerts, (unsigned long long)s.auto_created,
               (unsigned long long)s.auto_suppressed, (unsigned long long)s.store_errors);
}

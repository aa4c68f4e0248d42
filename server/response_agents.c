/* server/response_agents.c — what the response service knows per agent and keeps in the
 * registry record (agents column family): first/last seen, address, versions, host facts
 * and capabilities from HELLO, online, the isolation it reports; isolation drift (desired ≠
 * reported longer than response.drift_grace_s while online → one alert per episode); and
 * automatic response requested by rules, under the tenant's policy and rate. */
#include "response_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "detect/detect.h"

#define MOD "response"
#define DRIFT_RULE_ID "mamori-isolation-drift"
#define SUPPRESSED_RULE_ID "mamori-response-suppressed"

static void time_or_null(buf *b, int64_t us)
{
    if (us <= 0) {
        buf_puts(b, "null");
        return;
    }
    char t[40];
    clock_format_rfc3339(us, t);
    buf_printf(b, "\"%s\"", t);
}

static void str_or_null(buf *b, const char *s)
{
    if (s && s[0]) json_write_string(b, s, strlen(s));
    else buf_puts(b, "null");
}

/* first_seen of an agent not seen since start-up: from its stored record */
static int64_t stored_first_seen(response_svc *r, const resp_agent *ag)
{
    buf v;
    buf_init(&v);
    int64_t first = 0;
    if (store_agent_info_get(r->db, ag->tenant_hash, ag->agent_hash, &v) == 0) {
        arena_reset(&r->scratch);
        json_value root;
        json_error jerr;
        if (json_parse(r->parser, &r->scratch, v.data, v.len, &root, &jerr) == 0 && root.type == JSON_OBJECT) {
            const json_value *f = json_object_get(&root, "first_seen", 10);
            if (json_is_string(f) && clock_parse_rfc3339(f->str, f->len, &first) != 0) first = 0;
        }
    }
    buf_fini(&v);
    return first;
}

static void write_record(response_svc *r, resp_agent *ag)
{
    buf b;
    buf_init(&b);
    buf_puts(&b, "{\"id\":");
    str_or_null(&b, ag->agent_id);
    buf_puts(&b, ",\"tenant\":");
    str_or_null(&b, ag->tenant);
    buf_puts(&b, ",\"first_seen\":");
    time_or_null(&b, ag->first_seen_us);
    buf_puts(&b, ",\"last_seen\":");
    time_or_null(&b, ag->last_seen_us);
    buf_puts(&b, ",\"address\":");
    str_or_null(&b, ag->peer);
    buf_puts(&b, ",\"agent_version\":");
    str_or_null(&b, ag->version);
    buf_puts(&b, ",\"host\":");
    buf_puts(&b, ag->host_json ? ag->host_json : "null");
    buf_puts(&b, ",\"capabilities\":");
    buf_puts(&b, ag->caps_json ? ag->caps_json : "null");
    buf_printf(&b, ",\"online\":%s,\"isolation_reported\":", ag->online ? "true" : "false");
    str_or_null(&b, store_isolation_name(ag->reported));
    buf_puts(&b, ",\"reported_at\":");
    time_or_null(&b, ag->reported_at_us);
    buf_putc(&b, '}');
    int rc = store_agent_info_put(r->db, ag->tenant_hash, ag->agent_hash, b.data, b.len);
    if (rc) {
        atomic_fetch_add(&r->stats.store_errors, 1);
        LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 5, "agent %s: writing the registry record failed: %s", ag->agent_id,
                        strerror(-rc));
    }
    buf_fini(&b);
}

static void drift_reset(resp_agent *ag)
{
    ag->drift_since_us = 0;
    ag->drift_alerted = false;
}

void resp_agent_online(response_svc *r, resp_agent *ag, const resp_msg *m)
{
    snprintf(ag->tenant, sizeof ag->tenant, "%s", m->tenant);
    snprintf(ag->agent_id, sizeof ag->agent_id, "%s", m->agent_id);
    ag->online = true;
    ag->route = m->route;
    ag->caps = m->caps;
    snprintf(ag->peer, sizeof ag->peer, "%s", m->peer);
    snprintf(ag->server_address, sizeof ag->server_address, "%s", m->server_address);
    ag->last_seen_us = m->at_us;
    if (!ag->first_seen_us) ag->first_seen_us = stored_first_seen(r, ag);
    if (!ag->first_seen_us) ag->first_seen_us = m->at_us;
    if (m->isolation >= 0) {
        ag->reported = m->isolation;
        ag->reported_at_us = m->at_us;
    }
    drift_reset(ag);
    free(ag->host_json);
    free(ag->caps_json);
    ag->host_json = ag->caps_json = NULL;
    ag->version[0] = ag->host_name[0] = '\0';
    arena_reset(&r->scratch);
    json_value v;
    json_error jerr;
    if (m->text && json_parse(r->parser, &r->scratch, m->text, m->text_len, &v, &jerr) == 0 && v.type == JSON_OBJECT) {
        const json_value *ver = json_object_get(&v, "agent_version", 13);
        if (json_is_string(ver)) snprintf(ag->version, sizeof ag->version, "%.*s", (int)MAMORI_MIN(ver->len, 64u), ver->str);
        buf b;
        buf_init(&b);
        const json_value *host = json_object_get(&v, "host", 4);
        if (host && host->type == JSON_OBJECT) {
            json_write_value(&b, host);
            ag->host_json = mamori_xstrndup(b.data, b.len);
            const json_value *name = json_object_get(host, "name", 4);
            if (json_is_string(name))
                snprintf(ag->host_name, sizeof ag->host_name, "%.*s", (int)MAMORI_MIN(name->len, 159u), name->str);
        }
        const json_value *caps = json_object_get(&v, "capabilities", 12);
        if (caps && caps->type == JSON_ARRAY) {
            buf_clear(&b);
            json_write_value(&b, caps);
            ag->caps_json = mamori_xstrndup(b.data, b.len);
        }
        buf_fini(&b);
    }
    write_record(r, ag);
}

void resp_agent_offline(response_svc *r, resp_agent *ag, int64_t at_us)
{
    ag->online = false;
    ag->last_seen_us = at_us;
    drift_reset(ag);
    write_record(r, ag);
}

void resp_agent_reported(response_svc *r, resp_agent *ag, int reported, int64_t at_us)
{
    if (ag->reported == reported) return;
    ag->reported = reported;
    ag->reported_at_us = at_us;
    ag->last_seen_us = at_us;
    write_record(r, ag);
}

/* ---- start-up: nobody is connected yet ---- */

typedef struct online_fix {
    response_svc *r;
    uint32_t fixed;
} online_fix;

static int clear_online(void *ctx, uint64_t th, uint64_t ah, const char *json, size_t len)
{
    online_fix *f = ctx;
    response_svc *r = f->r;
    arena_reset(&r->scratch);
    json_value v;
    json_error jerr;
    if (json_parse(r->parser, &r->scratch, json, len, &v, &jerr) != 0 || v.type != JSON_OBJECT) return 0;
    const json_value *on = json_object_get(&v, "online", 6);
    if (!on || on->type != JSON_BOOL || !on->num.b) return 0;
    buf b;
    buf_init(&b);
    buf_putc(&b, '{');
    for (uint32_t i = 0; i < v.len; i++) {
        const json_member *m = &v.members[i];
        if (i) buf_putc(&b, ',');
        json_write_string(&b, m->key, m->key_len);
        buf_putc(&b, ':');
        if (m->key_len == 6 && !memcmp(m->key, "online", 6)) buf_puts(&b, "false");
        else json_write_value(&b, &m->value);
    }
    buf_putc(&b, '}');
    if (store_agent_info_put(r->db, th, ah, b.data, b.len) == 0) f->fixed++;
    buf_fini(&b);
    return 0;
}

int resp_registry_start(response_svc *r)
{
    online_fix f = {r, 0};
    int rc = store_agent_info_scan_all(r->db, clear_online, &f);
    if (rc < 0) return rc;
    if (f.fixed) LOG_INFO(MOD, "registry: %u agents recorded online by the previous run marked offline", f.fixed);
    return 0;
}

/* ---- alerts of the service (drift, suppressed automatic response) ---- */

static int write_alert(response_svc *r, uint64_t th, const char *tenant, uint64_t ah, const char *agent_id,
                       const char *host_name, const char *rule_id, const char *title, int level, uint64_t episode,
                       int64_t now_us, const char *extra_json)
{
    store_alert a = {0};
    a.tenant_hash = th;
    a.tenant = tenant;
    store_alert_id(a.id, th, ah, episode, 0, rule_id, strlen(rule_id));
    a.ts_us = a.created_us = a.updated_us = now_us;
    a.level = (uint8_t)level;
    a.status = STORE_ALERT_NEW;
    a.rule_hash = store_alert_term_hash(rule_id, strlen(rule_id));
    a.host_name_hash = host_name && host_name[0] ? store_alert_term_hash(host_name, strlen(host_name)) : 0;
    a.assignee = "";
    buf body;
    buf_init(&body);
    char t[40];
    clock_format_rfc3339(now_us, t);
    buf_printf(&body, "{\"time\":\"%s\",\"received\":\"%s\",\"tenant\":", t, t);
    json_write_string(&body, tenant, strlen(tenant));
    buf_puts(&body, ",\"agent_id\":");
    json_write_string(&body, agent_id, strlen(agent_id));
    buf_puts(&body, ",\"host\":{\"id\":null,\"name\":");
    str_or_null(&body, host_name);
    buf_puts(&body, "},\"rule\":{\"id\":");
    json_write_string(&body, rule_id, strlen(rule_id));
    buf_puts(&body, ",\"title\":");
    json_write_string(&body, title, strlen(title));
    buf_printf(&body, ",\"level\":\"%s\"}", level == DETECT_LEVEL_HIGH ? "high" : "medium");
    if (extra_json) {
        buf_putc(&body, ',');
        buf_puts(&body, extra_json);
    }
    buf_putc(&body, '}');
    a.body = body.data;
    a.body_len = (uint32_t)body.len;
    bool written = false;
    uint32_t count = 0;
    int rc = store_alerts_commit(r->db, &a, 1, NULL, 0, &written, &count);
    if (rc) {
        atomic_fetch_add(&r->stats.store_errors, 1);
        LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 5, "agent %s: writing alert %s failed: %s", agent_id, rule_id,
                        strerror(-rc));
    }
    buf_fini(&body);
    return rc;
}

typedef struct drift_due {
    resp_agent *ag;
    int desired;
} drift_due;

void resp_drift_check(response_svc *r, int64_t now_us)
{
    int64_t grace_us = (int64_t)r->cfg->response.drift_grace_s * 1000000;
    drift_due due[64];
    uint32_t n = 0;
    pthread_mutex_lock(&r->map_mu);
    for (uint32_t i = 0; i < r->agent_count && n < MAMORI_ARRAY_LEN(due); i++) {
        resp_agent *ag = r->agents[i];
        if (!ag->online || ag->reported == STORE_ISOLATION_UNKNOWN) continue;
        if (ag->desired == ag->reported) {
            ag->drift_since_us = 0;
            ag->drift_alerted = false;
            continue;
        }
        if (!ag->drift_since_us) ag->drift_since_us = now_us;
        if (!ag->drift_alerted && now_us - ag->drift_since_us >= grace_us) due[n++] = (drift_due){ag, ag->desired};
    }
    pthread_mutex_unlock(&r->map_mu);
    for (uint32_t i = 0; i < n; i++) {
        resp_agent *ag = due[i].ag;
        char since[40], extra[256];
        clock_format_rfc3339(ag->drift_since_us, since);
        snprintf(extra, sizeof extra, "\"isolation\":{\"desired\":\"%s\",\"reported\":\"%s\",\"since\":\"%s\"}",
                 store_isolation_name(due[i].desired), store_isolation_name(ag->reported), since);
        if (write_alert(r, ag->tenant_hash, ag->tenant, ag->agent_hash, ag->agent_id, ag->host_name, DRIFT_RULE_ID,
                        "Isolation state differs from the desired state", DETECT_LEVEL_HIGH,
                        (uint64_t)ag->drift_since_us, now_us, extra) == 0) {
            ag->drift_alerted = true;
            atomic_fetch_add(&r->stats.drift_alerts, 1);
            LOG_WARN(MOD, "isolation drift agent=%s tenant=%s desired=%s reported=%s since=%s", ag->agent_id,
                     ag->tenant, store_isolation_name(due[i].desired), store_isolation_name(ag->reported), since);
        }
    }
}

/* ---- automatic response ---- */

void response_auto_request(response_svc *r, const char *tenant, const char *agent_id, const char *rule_id,
                           const char *action, int64_t pid, const char *entity_id, const char *host_name)
{
    resp_msg *m = mamori_xcalloc(1, sizeof *m);
    m->kind = RESP_MSG_AUTO;
    snprintf(m->tenant, sizeof m->tenant, "%s", tenant);
    snprintf(m->agent_id, sizeof m->agent_id, "%s", agent_id);
    m->tenant_hash = event_tenant_hash(tenant);
    m->agent_hash = event_agent_hash(tenant, agent_id);
    snprintf(m->rule_id, sizeof m->rule_id, "%s", rule_id);
    snprintf(m->action, sizeof m->action, "%s", action);
    snprintf(m->entity_id, sizeof m->entity_id, "%s", entity_id ? entity_id : "");
    snprintf(m->host_name, sizeof m->host_name, "%s", host_name ? host_name : "");
    m->pid = pid;
    m->at_us = clock_wall_us();
    pthread_mutex_lock(&r->mu);
    if (r->queued >= RESP_AUTO_QUEUE_MAX) {
        /* an alert storm faster than the service: the rate would stop these anyway */
        pthread_mutex_unlock(&r->mu);
        atomic_fetch_add(&r->stats.auto_suppressed, 1);
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "automatic %s by rule %s dropped: %u requests waiting", action,
                        rule_id, RESP_AUTO_QUEUE_MAX);
        free(m);
        return;
    }
    resp_enqueue_locked(r, m);
    pthread_mutex_unlock(&r->mu);
}

static resp_rate *rate_of(response_svc *r, uint64_t th, int64_t now_us)
{
    for (uint32_t i = 0; i < r->auto_rate_count; i++)
        if (r->auto_rates[i].tenant_hash == th) {
            resp_rate *rt = &r->auto_rates[i];
            if (now_us - rt->window_start_us >= 60 * 1000000LL) {
                rt->window_start_us = now_us;
                rt->count = 0;
                rt->suppressed_rule_hash = 0;
            }
            return rt;
        }
    r->auto_rates = mamori_xrealloc(r->auto_rates, (r->auto_rate_count + 1) * sizeof *r->auto_rates);
    resp_rate *rt = &r->auto_rates[r->auto_rate_count++];
    *rt = (resp_rate){.tenant_hash = th, .window_start_us = now_us};
    return rt;
}

static void suppressed(response_svc *r, const resp_msg *m, resp_rate *rt, const char *why)
{
    atomic_fetch_add(&r->stats.auto_suppressed, 1);
    uint64_t rule_hash = store_alert_term_hash(m->rule_id, strlen(m->rule_id));
    LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "automatic %s on agent %s by rule %s suppressed: %s", m->action,
                    m->agent_id, m->rule_id, why);
    if (rt->suppressed_rule_hash == rule_hash) return; /* one alert per rule and minute */
    rt->suppressed_rule_hash = rule_hash;
    buf extra;
    buf_init(&extra);
    buf_puts(&extra, "\"suppressed\":{\"action\":");
    json_write_string(&extra, m->action, strlen(m->action));
    buf_puts(&extra, ",\"requested_by\":");
    json_write_string(&extra, m->rule_id, strlen(m->rule_id));
    buf_puts(&extra, ",\"reason\":");
    json_write_string(&extra, why, strlen(why));
    buf_putc(&extra, '}');
    (void)write_alert(r, m->tenant_hash, m->tenant, m->agent_hash, m->agent_id, m->host_name, SUPPRESSED_RULE_ID,
                      "Automatic response suppressed", DETECT_LEVEL_MEDIUM,
                      (uint64_t)rt->window_start_us ^ rule_hash, m->at_us, buf_cstr(&extra));
    buf_fini(&extra);
}

void resp_auto_handle(response_svc *r, const resp_msg *m)
{
    resp_rate *rt = rate_of(r, m->tenant_hash, m->at_us);
    bool allowed = false;
    const config_list *allow = config_response_auto_allowed(r->cfg, m->tenant);
    for (uint32_t i = 0; i < allow->count; i++) allowed = allowed || !strcmp(allow->items[i], m->action);
    if (!allowed) {
        suppressed(r, m, rt, "action not allowed by the tenant's policy (response.auto_allowed)");
        return;
    }
    if (rt->count >= config_response_auto_max_per_minute(r->cfg, m->tenant)) {
        suppressed(r, m, rt, "over the tenant's rate (response.auto_max_per_minute)");
        return;
    }
    char args[256];
    int desired = STORE_ISOLATION_UNKNOWN;
    if (!strcmp(m->action, "isolate") || !strcmp(m->action, "release")) {
        snprintf(args, sizeof args, "{}");
        desired = !strcmp(m->action, "isolate") ? STORE_ISOLATION_ISOLATED : STORE_ISOLATION_NONE;
    } else if (!strcmp(m->action, "kill_process")) {
        if (m->pid > 0) snprintf(args, sizeof args, "{\"pid\":%lld}", (long long)m->pid);
        else if (m->entity_id[0]) {
            buf b;
            buf_init(&b);
            buf_puts(&b, "{\"entity_id\":");
            json_write_string(&b, m->entity_id, strlen(m->entity_id));
            buf_putc(&b, '}');
            snprintf(args, sizeof args, "%s", buf_cstr(&b));
            buf_fini(&b);
        } else {
            suppressed(r, m, rt, "the event names no process.pid or process.entity_id");
            return;
        }
    } else if (!strcmp(m->action, "list_processes")) {
        snprintf(args, sizeof args, "{}");
    } else {
        suppressed(r, m, rt, "this action needs arguments a rule cannot give");
        return;
    }
    char actor[STORE_ACTION_ACTOR_MAX];
    snprintf(actor, sizeof actor, "rule:%s", m->rule_id);
    store_action a = {0};
    a.tenant_hash = m->tenant_hash;
    a.agent_hash = m->agent_hash;
    store_action_id_new(a.id);
    a.tenant = m->tenant;
    a.agent_id = m->agent_id;
    a.action = m->action;
    a.actor = actor;
    a.args = args;
    a.args_len = (uint32_t)strlen(args);
    a.created_us = m->at_us;
    a.expires_us = m->at_us + (int64_t)r->cfg->response.default_expires_s * 1000000;
    store_audit au;
    resp_audit(&au, &a, "action.create", "queued", m->at_us, actor);
    au.detail = args;
    au.detail_len = strlen(args);
    int rc = store_action_create(r->db, &a, r->cfg->response.max_pending_per_agent, desired, &au);
    if (rc == -EDQUOT) {
        suppressed(r, m, rt, "the agent has response.max_pending_per_agent actions waiting");
        return;
    }
    if (rc) {
        atomic_fetch_add(&r->stats.store_errors, 1);
        return;
    }
    rt->count++;
    atomic_fetch_add(&r->stats.auto_created, 1);
    pthread_mutex_lock(&r->map_mu);
    resp_agent *ag = resp_agent_find(r, m->tenant_hash, m->agent_hash, true);
    if (desired != STORE_ISOLATION_UNKNOWN) {
        ag->desired = desired;
        ag->desired_at_us = m->at_us;
    }
    pthread_mutex_unlock(&r->map_mu);
    resp_deliver_new(r, ag);
}

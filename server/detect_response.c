/* server/detect_response.c — the hook from live detection to automatic response: when a
 * NEW alert is written (never on a re-detection of an alert already stored), a rule whose
 * `x-mamori` extension asks for actions (`response: [isolate, kill_process]`) has them
 * requested for the alert's agent, with the triggering process for kill_process. For a
 * correlation alert that is the agent and process of the event that completed it. The
 * response service applies the tenant policy and rate. */
#include "detect_internal.h"
#include "response.h"

#include <string.h>

void detect_rt_set_response(detect_rt *rt, struct response_svc *resp)
{
    if (rt) atomic_store(&rt->response, resp);
}

static void request(response_svc *resp, const char *tenant, const char *agent_id, const detect_rule *rule,
                    const json_value *action, int64_t pid, const char *entity, const char *host)
{
    if (!json_is_string(action) || action->len == 0 || action->len > STORE_ACTION_NAME_MAX) return;
    char name[STORE_ACTION_NAME_MAX + 1];
    memcpy(name, action->str, action->len);
    name[action->len] = '\0';
    const char *rule_key = rule->id && rule->id[0] ? rule->id : rule->title;
    response_auto_request(resp, tenant, agent_id, rule_key, name, pid, entity, host);
}

/* Every action of the rule's `x-mamori: {response: …}` (one name or a list of up to 8). */
static void request_all(detect_rt *rt, const char *tenant, const char *agent_id, const detect_rule *rule, int64_t pid,
                        const char *entity, const char *host)
{
    response_svc *resp = atomic_load(&rt->response);
    if (!resp || !rule->x_mamori || rule->x_mamori->type != JSON_OBJECT) return;
    const json_value *list = json_object_get(rule->x_mamori, "response", 8);
    if (!list) return;
    if (list->type == JSON_ARRAY)
        for (uint32_t i = 0; i < list->len && i < 8; i++)
            request(resp, tenant, agent_id, rule, &list->items[i], pid, entity, host);
    else request(resp, tenant, agent_id, rule, list, pid, entity, host);
}

static void copy_text(const json_value *v, char *out, size_t cap)
{
    if (json_is_string(v)) snprintf(out, cap, "%.*s", (int)MAMORI_MIN(v->len, cap - 1), v->str);
}

void detect_response_hook(detect_rt *rt, const bus_batch *b, const mamori_event *ev, const detect_rule *rule)
{
    if (!rule->x_mamori || !atomic_load(&rt->response)) return;
    char entity[160] = "", host[160] = "";
    int64_t pid = 0;
    const json_value *p = event_get_cstr(ev, "process.pid");
    if (p && p->type == JSON_NUMBER && (p->flags & JSON_FLAG_INT)) pid = p->num.i;
    copy_text(event_get_cstr(ev, "process.entity_id"), entity, sizeof entity);
    copy_text(event_get_cstr(ev, "host.name"), host, sizeof host);
    request_all(rt, b->tenant, b->agent_id, rule, pid, entity, host);
}

void detect_response_corr(detect_rt *rt, const corr_alerts *o, uint32_t i)
{
    const detect_rule *rule = o->rules[i];
    if (!rule->x_mamori || !atomic_load(&rt->response)) return;
    const char *at = o->keys.data + o->key_offsets[i];
    at += strlen(at) + 1; /* the record key */
    const char *tenant = at;
    const char *agent_id = tenant + strlen(tenant) + 1;
    const char *entity = agent_id + strlen(agent_id) + 1;
    const char *host = entity + strlen(entity) + 1;
    char e[160], h[160];
    snprintf(e, sizeof e, "%s", entity);
    snprintf(h, sizeof h, "%s", host);
    request_all(rt, tenant, agent_id, rule, o->pids[i], e, h);
}

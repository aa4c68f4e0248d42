/* server/detect_response.c — the hook from live detection to automatic response: when a
 * NEW alert is written (never on a re-detection of an alert already stored), a rule whose
 * `x-mamori` extension asks for actions (`response: [isolate, kill_process]`) has them
 * requested for the alert's agent, with the triggering process for kill_process. The
 * response service applies the tenant policy and rate. */
#include "detect_internal.h"
#include "response.h"

#include <string.h>

void detect_rt_set_response(detect_rt *rt, struct response_svc *resp)
{
    if (rt) atomic_store(&rt->response, resp);
}

static void request(response_svc *resp, const bus_batch *b, const mamori_event *ev, const detect_rule *rule,
                    const json_value *action)
{
    if (!json_is_string(action) || action->len == 0 || action->len > STORE_ACTION_NAME_MAX) return;
    char name[STORE_ACTION_NAME_MAX + 1], entity[160] = "", host[160] = "";
    memcpy(name, action->str, action->len);
    name[action->len] = '\0';
    int64_t pid = 0;
    const json_value *p = event_get_cstr(ev, "process.pid");
    if (p && p->type == JSON_NUMBER && (p->flags & JSON_FLAG_INT)) pid = p->num.i;
    const json_value *e = event_get_cstr(ev, "process.entity_id");
    if (json_is_string(e)) snprintf(entity, sizeof entity, "%.*s", (int)MAMORI_MIN(e->len, 159u), e->str);
    const json_value *h = event_get_cstr(ev, "host.name");
    if (json_is_string(h)) snprintf(host, sizeof host, "%.*s", (int)MAMORI_MIN(h->len, 159u), h->str);
    const char *rule_key = rule->id && rule->id[0] ? rule->id : rule->title;
    response_auto_request(resp, b->tenant, b->agent_id, rule_key, name, pid, entity, host);
}

void detect_response_hook(detect_rt *rt, const bus_batch *b, const mamori_event *ev, const detect_rule *rule)
{
    response_svc *resp = atomic_load(&rt->response);
    if (!resp || !rule->x_mamori || rule->x_mamori->type != JSON_OBJECT) return;
    const json_value *list = json_object_get(rule->x_mamori, "response", 8);
    if (!list) return;
    if (list->type == JSON_ARRAY)
        for (uint32_t i = 0; i < list->len && i < 8; i++) request(resp, b, ev, rule, &list->items[i]);
    else request(resp, b, ev, rule, list);
}

/* api/actions.c — remote response over the API (docs/response.md §3): POST
 * /v1/agents/{id}/actions validates and persists an action (with its audit entry) and tells
 * the response service; GET /v1/actions/{id} and /v1/agents/{id}/actions read records;
 * GET /v1/files/{sha256} serves fetched files; GET /v1/audit lists the audit log. The
 * tenant is always the key's: another tenant's agent, action or file is "not found". */
#include "internal.h"

#include "core/clock.h"
#include "core/event.h"
#include "core/log.h"
#include "core/pki.h"
#include "ingest/ingest.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_BYTES 4096u
#define ENTITY_ID_MAX_BYTES 256u
#define EXPIRES_MAX_S 604800 /* 7 days */
#define LIST_DEFAULT_LIMIT 100u

static const char *const action_names[] = {"isolate",     "release",        "kill_process", "delete_file",
                                           "fetch_file",  "list_processes", "list_dir"};

/* ---- rendering ---- */

static void time_json(buf *o, int64_t us)
{
    char t[40];
    clock_format_rfc3339(us, t);
    buf_printf(o, "\"%s\"", t);
}

void api_render_action(buf *o, const store_action *a)
{
    char id[STORE_ACTION_ID_HEX_CHARS + 1];
    store_action_id_format(a->id, id);
    buf_printf(o, "{\"id\":\"%s\",\"agent\":", id);
    json_write_string(o, a->agent_id, strlen(a->agent_id));
    buf_puts(o, ",\"tenant\":");
    json_write_string(o, a->tenant, strlen(a->tenant));
    buf_puts(o, ",\"action\":");
    json_write_string(o, a->action, strlen(a->action));
    buf_puts(o, ",\"args\":");
    buf_append(o, a->args, a->args_len);
    buf_puts(o, ",\"actor\":");
    json_write_string(o, a->actor, strlen(a->actor));
    buf_printf(o, ",\"status\":\"%s\",\"command\":%llu,\"created\":",
               store_action_status_name((enum store_action_status)a->status), (unsigned long long)a->cmd_no);
    time_json(o, a->created_us);
    buf_puts(o, ",\"updated\":");
    time_json(o, a->updated_us);
    buf_puts(o, ",\"expires_at\":");
    time_json(o, a->expires_us);
    buf_puts(o, ",\"history\":[");
    for (uint32_t i = 0; i < a->history_count; i++) {
        if (i) buf_putc(o, ',');
        buf_printf(o, "{\"status\":\"%s\",\"at\":", store_action_status_name((enum store_action_status)a->history[i].status));
        time_json(o, a->history[i].at_us);
        buf_putc(o, '}');
    }
    buf_puts(o, "],\"output\":");
    if (a->output_len) buf_append(o, a->output, a->output_len);
    else buf_puts(o, "null");
    buf_puts(o, ",\"error\":");
    if (a->error_len) json_write_string(o, a->error, a->error_len);
    else buf_puts(o, "null");
    buf_putc(o, '}');
}

/* ---- validation ---- */

static bool key_is(const json_member *m, const char *k) { return m->key_len == strlen(k) && !memcmp(m->key, k, m->key_len); }

/* Absolute, no '..' component, no NUL, bounded. Windows drive paths (C:\…) count as absolute. */
static bool check_path(api_req *r, const json_value *v, const char *field)
{
    if (!json_is_string(v) || v->len == 0) {
        reply_error(r, 400, "bad_request", "'args.%s' (a string) is required", field);
        return false;
    }
    if (v->len > PATH_MAX_BYTES) {
        reply_error(r, 400, "bad_request", "'args.%s' is over %u bytes", field, PATH_MAX_BYTES);
        return false;
    }
    if (memchr(v->str, '\0', v->len)) {
        reply_error(r, 400, "bad_request", "'args.%s' contains a NUL byte", field);
        return false;
    }
    bool drive = v->len >= 3 && ((v->str[0] | 32) >= 'a' && (v->str[0] | 32) <= 'z') && v->str[1] == ':' &&
                 (v->str[2] == '\\' || v->str[2] == '/');
    if (v->str[0] != '/' && !drive) {
        reply_error(r, 400, "bad_request", "'args.%s' must be an absolute path", field);
        return false;
    }
    for (uint32_t i = 0; i < v->len;) {
        uint32_t j = i;
        while (j < v->len && v->str[j] != '/' && v->str[j] != '\\') j++;
        if (j - i == 2 && v->str[i] == '.' && v->str[i + 1] == '.') {
            reply_error(r, 400, "bad_request", "'args.%s' must not contain '..' components", field);
            return false;
        }
        i = j + 1;
    }
    return true;
}

static bool int_arg(api_req *r, const json_value *v, const char *field, int64_t min, int64_t max, int64_t *out)
{
    if (!v || v->type != JSON_NUMBER || !(v->flags & JSON_FLAG_INT)) {
        reply_error(r, 400, "bad_request", "'%s' must be an integer", field);
        return false;
    }
    if (v->num.i < min || v->num.i > max) {
        reply_error(r, 400, "bad_request", "'%s' must be in [%lld, %lld], not %lld", field, (long long)min,
                    (long long)max, (long long)v->num.i);
        return false;
    }
    *out = v->num.i;
    return true;
}

/* Checks args for the action and writes the stored form (compact, normalized) to out. */
static bool check_args(api_req *r, const char *action, const json_value *args, buf *out)
{
    static const char *const none[] = {NULL};
    static const char *const kill[] = {"pid", "entity_id", NULL};
    static const char *const del[] = {"path", "sha256", NULL};
    static const char *const fetch[] = {"path", "max_bytes", NULL};
    static const char *const ls[] = {"path", "depth", NULL};
    const char *const *allowed = none;
    if (!strcmp(action, "kill_process")) allowed = kill;
    else if (!strcmp(action, "delete_file")) allowed = del;
    else if (!strcmp(action, "fetch_file")) allowed = fetch;
    else if (!strcmp(action, "list_dir")) allowed = ls;
    for (uint32_t i = 0; args && i < args->len; i++) {
        bool ok = false;
        for (const char *const *k = allowed; *k; k++) ok = ok || key_is(&args->members[i], *k);
        if (!ok) {
            reply_error(r, 400, "bad_request", "'args.%.*s' is not an argument of %s", (int)MAMORI_MIN(args->members[i].key_len, 64u),
                        args->members[i].key, action);
            return false;
        }
    }
    const json_value *empty = NULL;
    buf_clear(out);
    if (!strcmp(action, "kill_process")) {
        const json_value *pid = args ? json_object_get(args, "pid", 3) : empty;
        const json_value *ent = args ? json_object_get(args, "entity_id", 9) : empty;
        if ((pid != NULL) == (ent != NULL)) {
            reply_error(r, 400, "bad_request", "kill_process needs exactly one of 'args.pid' and 'args.entity_id'");
            return false;
        }
        if (pid) {
            int64_t v;
            if (!int_arg(r, pid, "args.pid", 1, 4294967295LL, &v)) return false; /* Windows pids are u32 */
            buf_printf(out, "{\"pid\":%lld}", (long long)v);
        } else {
            if (!json_is_string(ent) || ent->len == 0 || ent->len > ENTITY_ID_MAX_BYTES || memchr(ent->str, '\0', ent->len)) {
                reply_error(r, 400, "bad_request", "'args.entity_id' must be a string of 1-%u bytes", ENTITY_ID_MAX_BYTES);
                return false;
            }
            buf_puts(out, "{\"entity_id\":");
            json_write_string(out, ent->str, ent->len);
            buf_putc(out, '}');
        }
        return true;
    }
    if (!strcmp(action, "delete_file") || !strcmp(action, "fetch_file") || !strcmp(action, "list_dir")) {
        const json_value *path = args ? json_object_get(args, "path", 4) : empty;
        if (!check_path(r, path, "path")) return false;
        buf_puts(out, "{\"path\":");
        json_write_string(out, path->str, path->len);
        if (!strcmp(action, "delete_file")) {
            const json_value *sha = json_object_get(args, "sha256", 6);
            if (sha) {
                bool ok = json_is_string(sha) && sha->len == 64 && strspn(sha->str, "0123456789abcdefABCDEF") >= 64;
                if (!ok) {
                    reply_error(r, 400, "bad_request", "'args.sha256' must be 64 hex digits");
                    return false;
                }
                buf_puts(out, ",\"sha256\":\"");
                for (uint32_t i = 0; i < 64; i++) buf_putc(out, (char)(sha->str[i] | (sha->str[i] >= 'A' ? 32 : 0)));
                buf_putc(out, '"');
            }
        } else if (!strcmp(action, "fetch_file")) {
            uint64_t limit = config_response_max_file_bytes(r->a->cfg, r->tenant);
            int64_t max = (int64_t)limit;
            const json_value *mb = json_object_get(args, "max_bytes", 9);
            if (mb) {
                if (!mb || mb->type != JSON_NUMBER || !(mb->flags & JSON_FLAG_INT) || mb->num.i < 1) {
                    reply_error(r, 400, "bad_request", "'args.max_bytes' must be a positive integer");
                    return false;
                }
                if ((uint64_t)mb->num.i > limit) {
                    reply_error(r, 400, "too_large", "'args.max_bytes' %lld is over the tenant's file limit of %llu bytes",
                                (long long)mb->num.i, (unsigned long long)limit);
                    return false;
                }
                max = mb->num.i;
            }
            buf_printf(out, ",\"max_bytes\":%lld", (long long)max);
        } else {
            int64_t depth = 1;
            const json_value *d = json_object_get(args, "depth", 5);
            if (d && !int_arg(r, d, "args.depth", 1, 8, &depth)) return false;
            buf_printf(out, ",\"depth\":%lld", (long long)depth);
        }
        buf_putc(out, '}');
        return true;
    }
    buf_puts(out, "{}"); /* isolate, release, list_processes: the server fills in what isolate needs */
    return true;
}

/* Known in this tenant: it stored a batch, has a registry record, or is connected now. */
static bool agent_known(api_req *r, const char *agent_id, uint64_t th, uint64_t ah)
{
    uint64_t seq = 0;
    if (store_agent_durable_seq(r->a->db, th, ah, &seq) == 0 && seq > 0) return true;
    buf v;
    buf_init(&v);
    bool found = store_agent_info_get(r->a->db, th, ah, &v) == 0;
    buf_fini(&v);
    if (found) return true;
    ingest_agent_info info;
    return r->a->ingest && ingest_get_agent(r->a->ingest, r->tenant, agent_id, &info) == 0;
}

static void audit_call(api_req *r, const char *what, const char *target, const char *detail, size_t detail_len,
                       const char *result)
{
    char actor[40];
    snprintf(actor, sizeof actor, "key:%s", r->key_id);
    store_audit au = {.at_us = clock_wall_us(), .tenant_hash = event_tenant_hash(r->tenant), .tenant = r->tenant,
                      .actor = actor, .what = what, .target = target, .detail = detail, .detail_len = detail_len,
                      .result = result};
    if (store_audit_append(r->a->db, &au) != 0)
        LOG_RATELIMITED(LOG_LEVEL_ERROR, "api", 5, "audit entry %s for %s could not be written", what, target);
}

void api_audit(api_req *r, const char *what, const char *target, const char *detail, size_t detail_len,
               const char *result)
{
    audit_call(r, what, target, detail, detail_len, result);
}

void handle_action_create(api_req *r, const char *agent_id)
{
    if (!api_agent_id_ok(r, agent_id)) return;
    json_parser *p = json_parser_create();
    arena ar;
    arena_init(&ar, 8192);
    buf text, args, storage;
    buf_init(&text);
    buf_init(&args);
    buf_init(&storage);
    const json_value *body = read_json_body(r, p, &ar, &text);
    if (!body) goto out;
    for (uint32_t i = 0; i < body->len; i++) {
        const json_member *m = &body->members[i];
        if (!key_is(m, "action") && !key_is(m, "args") && !key_is(m, "expires_in")) {
            reply_error(r, 400, "bad_request", "unknown field '%.*s' (action, args, expires_in)",
                        (int)MAMORI_MIN(m->key_len, 64u), m->key);
            goto out;
        }
    }
    const json_value *av = json_object_get(body, "action", 6);
    if (!json_is_string(av)) {
        reply_error(r, 400, "bad_request", "'action' (a string) is required: isolate, release, kill_process, "
                                           "delete_file, fetch_file, list_processes or list_dir");
        goto out;
    }
    const char *action = NULL;
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(action_names); i++)
        if (av->len == strlen(action_names[i]) && !memcmp(av->str, action_names[i], av->len)) action = action_names[i];
    if (!action) {
        reply_error(r, 400, "bad_request", "'action': unknown action '%.*s' (isolate, release, kill_process, "
                                           "delete_file, fetch_file, list_processes, list_dir)",
                    (int)MAMORI_MIN(av->len, 64u), av->str);
        goto out;
    }
    const json_value *argv = json_object_get(body, "args", 4);
    if (argv && argv->type != JSON_OBJECT && argv->type != JSON_NULL) {
        reply_error(r, 400, "bad_request", "'args' must be an object");
        goto out;
    }
    if (argv && argv->type == JSON_NULL) argv = NULL;
    if (!check_args(r, action, argv, &args)) goto out;
    int64_t expires_in = r->a->cfg->response.default_expires_s;
    const json_value *ev = json_object_get(body, "expires_in", 10);
    if (ev && !int_arg(r, ev, "expires_in", 1, EXPIRES_MAX_S, &expires_in)) goto out;
    uint64_t th = event_tenant_hash(r->tenant), ah = event_agent_hash(r->tenant, agent_id);
    if (!agent_known(r, agent_id, th, ah)) {
        reply_error(r, 404, "not_found", "no agent '%s' in this tenant", agent_id);
        goto out;
    }
    char actor[40];
    snprintf(actor, sizeof actor, "key:%s", r->key_id);
    int64_t now = clock_wall_us();
    store_action a = {0};
    a.tenant_hash = th;
    a.agent_hash = ah;
    store_action_id_new(a.id);
    a.tenant = r->tenant;
    a.agent_id = agent_id;
    a.action = action;
    a.actor = actor;
    a.args = args.data;
    a.args_len = (uint32_t)args.len;
    a.created_us = now;
    a.expires_us = now + expires_in * 1000000;
    int desired = !strcmp(action, "isolate")   ? STORE_ISOLATION_ISOLATED
                  : !strcmp(action, "release") ? STORE_ISOLATION_NONE
                                               : STORE_ISOLATION_UNKNOWN;
    char idhex[STORE_ACTION_ID_HEX_CHARS + 1];
    store_action_id_format(a.id, idhex);
    buf detail;
    buf_init(&detail);
    buf_printf(&detail, "{\"action_id\":\"%s\",\"action\":\"%s\",\"args\":", idhex, action);
    buf_append(&detail, args.data, args.len);
    buf_printf(&detail, ",\"expires_in\":%lld}", (long long)expires_in);
    store_audit au = {.at_us = now, .tenant_hash = th, .tenant = r->tenant, .actor = actor, .what = "action.create",
                      .target = agent_id, .detail = detail.data, .detail_len = detail.len, .result = "queued"};
    int rc = store_action_create(r->a->db, &a, r->a->cfg->response.max_pending_per_agent, desired, &au);
    if (rc == -EDQUOT) {
        audit_call(r, "action.create", agent_id, detail.data, detail.len, "refused: too many pending actions");
        reply_error(r, 409, "too_many_actions",
                    "agent '%s' already has %u actions waiting (response.max_pending_per_agent)", agent_id,
                    r->a->cfg->response.max_pending_per_agent);
        buf_fini(&detail);
        goto out;
    }
    buf_fini(&detail);
    if (rc) {
        reply_error(r, 500, "internal", "storing the action failed (%d)", rc);
        goto out;
    }
    if (r->a->action_created) r->a->action_created(r->a->action_ctx, &a, desired);
    api_render_action(&r->body, &a);
    r->rows = 1;
    reply_json(r, 201);
out:
    buf_fini(&storage);
    buf_fini(&args);
    buf_fini(&text);
    arena_fini(&ar);
    json_parser_destroy(p);
}

void handle_action_get(api_req *r, const char *id_s)
{
    uint8_t id[STORE_ACTION_ID_BYTES];
    if (!id_s || store_action_id_parse(id_s, strlen(id_s), id) != 0) {
        reply_error(r, 400, "bad_request", "'%.80s' is not an action id (%u hex digits)", id_s ? id_s : "",
                    STORE_ACTION_ID_HEX_CHARS);
        return;
    }
    buf storage;
    buf_init(&storage);
    store_action a;
    int rc = store_action_get(r->a->db, event_tenant_hash(r->tenant), id, &a, &storage);
    if (rc == -ENOENT) reply_error(r, 404, "not_found", "no action %s", id_s);
    else if (rc) reply_error(r, 500, "internal", "reading the action failed (%d)", rc);
    else {
        api_render_action(&r->body, &a);
        r->rows = 1;
        reply_json(r, 200);
    }
    buf_fini(&storage);
}

typedef struct list_ctx {
    api_req *r;
    uint32_t n;
} list_ctx;

static int list_one(void *ctx, const store_action *a)
{
    list_ctx *l = ctx;
    if (l->n++) buf_putc(&l->r->body, ',');
    api_render_action(&l->r->body, a);
    return 0;
}

static bool parse_query(api_req *r, struct evkeyvalq *params, const char *const *allowed, size_t n_allowed,
                        const char *names)
{
    params->tqh_first = NULL;
    params->tqh_last = &params->tqh_first;
    const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    if (qs && evhttp_parse_query_str(qs, params) != 0) {
        reply_error(r, 400, "bad_request", "malformed query string");
        return false;
    }
    for (struct evkeyval *kv = params->tqh_first; kv; kv = kv->next.tqe_next) {
        bool known = false;
        for (size_t i = 0; i < n_allowed; i++) known = known || !strcmp(kv->key, allowed[i]);
        if (!known) {
            reply_error(r, 400, "bad_request", "unknown parameter '%.64s' (%s)", kv->key, names);
            return false;
        }
    }
    return true;
}

static bool limit_param(api_req *r, struct evkeyvalq *params, uint32_t *limit)
{
    const char *v = query_param(r, params, "limit");
    if (!v) return true;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || !v[0] || n < 1 || n > (long)r->a->cfg->api.max_result_rows) {
        reply_error(r, 400, "bad_request", "'limit' must be an integer in [1, %u]", r->a->cfg->api.max_result_rows);
        return false;
    }
    *limit = (uint32_t)n;
    return true;
}

void handle_agent_actions(api_req *r, const char *agent_id)
{
    static const char *const allowed[] = {"status", "limit", "cursor"};
    if (!api_agent_id_ok(r, agent_id)) return;
    struct evkeyvalq params;
    if (!parse_query(r, &params, allowed, MAMORI_ARRAY_LEN(allowed), "status, limit, cursor")) goto out;
    uint64_t th = event_tenant_hash(r->tenant), ah = event_agent_hash(r->tenant, agent_id);
    int status = -1;
    uint32_t limit = LIST_DEFAULT_LIMIT;
    uint64_t cursor = 0;
    const char *v;
    if ((v = query_param(r, &params, "status"))) {
        enum store_action_status st;
        if (store_action_status_parse(v, strlen(v), &st) != 0) {
            reply_error(r, 400, "bad_request", "'status' must be queued, sent, running, succeeded, failed or expired");
            goto out;
        }
        status = (int)st;
    }
    if (!limit_param(r, &params, &limit)) goto out;
    if ((v = query_param(r, &params, "cursor"))) {
        char *end;
        unsigned long long c = strtoull(v, &end, 10);
        if (*end || !v[0] || c == 0) {
            reply_error(r, 400, "bad_request", "'cursor' must be the string a previous page returned");
            goto out;
        }
        cursor = c;
    }
    if (!agent_known(r, agent_id, th, ah)) {
        reply_error(r, 404, "not_found", "no agent '%s' in this tenant", agent_id);
        goto out;
    }
    buf_puts(&r->body, "{\"actions\":[");
    list_ctx l = {.r = r};
    uint64_t next = 0;
    int rc = store_actions_list(r->a->db, th, ah, status, cursor, limit, r->a->cfg->api.max_candidates, list_one, &l,
                                &next);
    if (rc < 0) {
        reply_error(r, 500, "internal", "listing actions failed (%d)", rc);
        goto out;
    }
    buf_putc(&r->body, ']');
    if (next) buf_printf(&r->body, ",\"cursor\":\"%llu\"", (unsigned long long)next);
    buf_putc(&r->body, '}');
    r->rows = l.n;
    reply_json(r, 200);
out:
    evhttp_clear_headers(&params);
}

void handle_file_get(api_req *r, const char *sha_s)
{
    uint8_t sha[STORE_SHA256_BYTES];
    bool ok = sha_s && strlen(sha_s) == 64;
    for (unsigned i = 0; ok && i < 32; i++) {
        unsigned hi, lo;
        char pair[3] = {sha_s[2 * i], sha_s[2 * i + 1], 0};
        ok = strspn(pair, "0123456789abcdefABCDEF") == 2 && sscanf(pair, "%1x%1x", &hi, &lo) == 2;
        if (ok) sha[i] = (uint8_t)(hi << 4 | lo);
    }
    if (!ok) {
        reply_error(r, 400, "bad_request", "'%.80s' is not a sha256 (64 hex digits)", sha_s ? sha_s : "");
        return;
    }
    buf content;
    buf_init(&content);
    int rc = store_file_get(r->a->db, event_tenant_hash(r->tenant), sha, &content);
    if (rc == -ENOENT) reply_error(r, 404, "not_found", "no file %s", sha_s);
    else if (rc) reply_error(r, 500, "internal", "reading the file failed (%d)", rc);
    else {
        r->rows = 1;
        reply_bytes(r, 200, "application/octet-stream", content.data, content.len);
    }
    buf_fini(&content);
}

/* ---- audit ---- */

typedef struct audit_ctx {
    json_parser *p;
    arena a;
    buf *out;
    const char *actor, *agent, *action;
    uint32_t limit, n;
    uint64_t examined, max_examined;
    store_audit_pos last;
    bool more;
} audit_ctx;

static bool field_eq(const json_value *obj, const char *k, const char *want)
{
    const json_value *v = json_object_get(obj, k, strlen(k));
    return json_is_string(v) && v->len == strlen(want) && !memcmp(v->str, want, v->len);
}

static int audit_one(void *ctx, const char *json, size_t len, const store_audit_pos *pos)
{
    audit_ctx *c = ctx;
    if (c->n == c->limit || c->examined == c->max_examined) {
        c->more = true;
        return 1;
    }
    c->examined++;
    c->last = *pos;
    if (c->actor || c->agent || c->action) {
        arena_reset(&c->a);
        json_value v;
        json_error jerr;
        if (json_parse(c->p, &c->a, json, len, &v, &jerr) != 0 || v.type != JSON_OBJECT) return 0;
        if (c->actor && !field_eq(&v, "actor", c->actor)) return 0;
        if (c->agent && !field_eq(&v, "target", c->agent)) return 0;
        if (c->action) {
            const json_value *d = json_object_get(&v, "detail", 6);
            bool hit = field_eq(&v, "what", c->action) || (d && d->type == JSON_OBJECT && field_eq(d, "action", c->action));
            if (!hit) return 0;
        }
    }
    if (c->n++) buf_putc(c->out, ',');
    buf_append(c->out, json, len);
    return 0;
}

bool audit_query_parse(api_req *r, struct evkeyvalq *params, audit_query *q)
{
    static const char *const allowed[] = {"actor", "agent", "action", "from", "to", "limit", "cursor"};
    memset(q, 0, sizeof *q);
    q->limit = LIST_DEFAULT_LIMIT;
    q->from = INT64_MIN;
    q->to = INT64_MAX;
    if (!parse_query(r, params, allowed, MAMORI_ARRAY_LEN(allowed), "actor, agent, action, from, to, limit, cursor"))
        return false;
    const char *v;
    if (((v = query_param(r, params, "from")) && clock_parse_rfc3339(v, strlen(v), &q->from) != 0) ||
        ((v = query_param(r, params, "to")) && clock_parse_rfc3339(v, strlen(v), &q->to) != 0)) {
        reply_error(r, 400, "bad_request", "'from' and 'to' must be RFC 3339 times such as 2024-03-01T00:00:00Z");
        return false;
    }
    if (!limit_param(r, params, &q->limit)) return false;
    q->actor = query_param(r, params, "actor");
    q->agent = query_param(r, params, "agent");
    q->action = query_param(r, params, "action");
    q->cursor = query_param(r, params, "cursor");
    return true;
}

bool audit_cursor_parse(const char *v, store_audit_pos *pos)
{
    unsigned long long at, seq;
    char tail;
    if (!v || strlen(v) != 33 || sscanf(v, "%16llx.%16llx%c", &at, &seq, &tail) != 2) return false;
    *pos = (store_audit_pos){(int64_t)(at ^ (1ULL << 63)), seq};
    return true;
}

int audit_page(api_req *r, const audit_query *q, const store_audit_pos *after, uint32_t limit, buf *out)
{
    audit_ctx c = {.out = out, .limit = limit, .max_examined = r->a->cfg->api.max_candidates,
                   .actor = q->actor, .agent = q->agent, .action = q->action};
    arena_init(&c.a, 4096);
    c.p = json_parser_create();
    buf_puts(out, "{\"entries\":[");
    int rc = store_audit_list(r->a->db, event_tenant_hash(r->tenant), q->from, q->to, after, audit_one, &c);
    buf_putc(out, ']');
    if (rc >= 0 && c.more)
        buf_printf(out, ",\"cursor\":\"%016llx.%016llx\"", (unsigned long long)((uint64_t)c.last.at_us ^ (1ULL << 63)),
                   (unsigned long long)c.last.seq);
    buf_putc(out, '}');
    arena_fini(&c.a);
    json_parser_destroy(c.p);
    return rc < 0 ? rc : (int)c.n;
}

void handle_audit(api_req *r)
{
    struct evkeyvalq params;
    audit_query q;
    store_audit_pos after;
    if (!audit_query_parse(r, &params, &q)) goto out;
    if (q.cursor && !audit_cursor_parse(q.cursor, &after)) {
        reply_error(r, 400, "bad_request", "'cursor' must be the string a previous page returned");
        goto out;
    }
    int n = audit_page(r, &q, q.cursor ? &after : NULL, q.limit, &r->body);
    if (n < 0) {
        buf_clear(&r->body);
        reply_error(r, 500, "internal", "reading the audit log failed (%d)", n);
        goto out;
    }
    r->rows = (uint64_t)n;
    reply_json(r, 200);
out:
    evhttp_clear_headers(&params);
}

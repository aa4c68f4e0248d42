/* api/tree.c — GET /v1/process-tree?entity_id=…&depth=…: the process, its ancestors through
 * process.parent.entity_id (process.entity_id index) and its descendants through the
 * process.parent.entity_id index, each with its key fields. Bounded by depth and a node
 * count; lookups are caseless in the index, so every match is re-checked exactly. */
#include "internal.h"

#include "core/clock.h"
#include "core/event.h"

#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

#define TREE_MAX_DEPTH 10u
#define TREE_MAX_NODES 1000u
#define TREE_MAX_REFS 20000u
#define ENTITY_MAX 256u

typedef struct tree_ctx {
    api_req *r;
    uint64_t tenant_hash;
    int64_t from, to;
    json_parser *p;
    arena a;
    buf json;
    uint32_t nodes;
    bool truncated;
} tree_ctx;

typedef struct refs {
    store_event_ref *v;
    size_t n, cap;
} refs;

static int collect(void *ctx, const store_event_ref *ref)
{
    refs *l = ctx;
    if (l->n == TREE_MAX_REFS) return 1;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = mamori_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = *ref;
    return 0;
}

static const json_value *path_get(const json_value *root, const char *path)
{
    const json_value *v = root;
    const char *p = path;
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        v = v->type == JSON_OBJECT ? json_object_get(v, p, n) : NULL;
        p += n + (dot ? 1 : 0);
    }
    return v;
}

static bool str_is(const json_value *v, const char *s, size_t len)
{
    return json_is_string(v) && v->len == len && memcmp(v->str, s, len) == 0;
}

static bool is_start(const json_value *root)
{
    const json_value *t = path_get(root, "event.type");
    if (json_is_string(t)) return t->len == 5 && !memcmp(t->str, "start", 5);
    if (t && t->type == JSON_ARRAY)
        for (uint32_t i = 0; i < t->len; i++)
            if (str_is(&t->items[i], "start", 5)) return true;
    return false;
}

/* Writes the key fields of the event as a node (without closing brace). */
static void write_node(buf *out, const json_value *root, const store_event_ref *ref)
{
    static const char *const fields[] = {"process.entity_id", "process.pid", "process.name", "process.executable",
                                         "process.command_line", "process.parent.entity_id", "process.parent.name",
                                         "process.parent.pid", "user.name", "host.id", "host.name", "@timestamp"};
    char id[EVENT_ID_HEX_CHARS + 1];
    event_id_format(ref->ts_us, ref->agent_hash, ref->seq, ref->index, id);
    buf_printf(out, "{\"event_id\":\"%s\"", id);
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(fields); i++) {
        const json_value *v = path_get(root, fields[i]);
        if (!v || v->type == JSON_OBJECT) continue;
        buf_putc(out, ',');
        json_write_string(out, fields[i], strlen(fields[i]));
        buf_putc(out, ':');
        json_write_value(out, v);
    }
}

/* The best event describing entity (its start if stored, else its earliest); false if none.
 * root is allocated in t->a (reset by the caller between uses). */
static int find_process(tree_ctx *t, const char *entity, size_t len, json_value *root, store_event_ref *ref)
{
    refs l = {0};
    int rc = store_index_lookup(t->r->a->db, t->r->tenant, STORE_IX_PROCESS_ENTITY_ID, entity, len, false, t->from,
                                t->to, collect, &l);
    bool found = false;
    for (size_t i = 0; i < l.n && rc >= 0; i++) {
        if (store_get_event(t->r->a->db, t->tenant_hash, l.v[i].ts_us, l.v[i].agent_hash, l.v[i].seq, l.v[i].index,
                            &t->json) != 0)
            continue;
        char *copy = arena_memdup(&t->a, t->json.data, t->json.len);
        json_value v;
        json_error jerr;
        if (json_parse(t->p, &t->a, copy, t->json.len, &v, &jerr) != 0) continue;
        if (!str_is(path_get(&v, "process.entity_id"), entity, len)) continue;
        if (!found || is_start(&v)) {
            *root = v;
            *ref = l.v[i];
            found = true;
            if (is_start(&v)) break;
        }
    }
    free(l.v);
    if (rc < 0) return rc;
    return found ? 1 : 0;
}

/* Appends "children":[…] for entity, depth levels down. */
static int write_children(tree_ctx *t, buf *out, const char *entity, size_t len, uint32_t depth)
{
    buf_puts(out, ",\"children\":[");
    if (depth == 0) {
        buf_putc(out, ']');
        return 0;
    }
    refs l = {0};
    int rc = store_index_lookup(t->r->a->db, t->r->tenant, STORE_IX_PROCESS_PARENT_ENTITY_ID, entity, len, false,
                                t->from, t->to, collect, &l);
    if (l.n == TREE_MAX_REFS) t->truncated = true;
    /* distinct children, in order of their first event */
    char **seen = NULL;
    size_t seen_n = 0;
    bool first = true;
    for (size_t i = 0; i < l.n && rc >= 0; i++) {
        if (store_get_event(t->r->a->db, t->tenant_hash, l.v[i].ts_us, l.v[i].agent_hash, l.v[i].seq, l.v[i].index,
                            &t->json) != 0)
            continue;
        arena_reset(&t->a);
        json_value v;
        json_error jerr;
        if (json_parse(t->p, &t->a, t->json.data, t->json.len, &v, &jerr) != 0) continue;
        if (!str_is(path_get(&v, "process.parent.entity_id"), entity, len)) continue;
        const json_value *child = path_get(&v, "process.entity_id");
        if (!json_is_string(child) || child->len == 0 || child->len > ENTITY_MAX) continue;
        bool dup = false;
        for (size_t k = 0; k < seen_n && !dup; k++) dup = strlen(seen[k]) == child->len && !memcmp(seen[k], child->str, child->len);
        if (dup) continue;
        if (t->nodes >= TREE_MAX_NODES) {
            t->truncated = true;
            break;
        }
        t->nodes++;
        seen = mamori_xrealloc(seen, (seen_n + 1) * sizeof *seen);
        seen[seen_n++] = mamori_xstrndup(child->str, child->len);
        if (!first) buf_putc(out, ',');
        first = false;
        write_node(out, &v, &l.v[i]);
        char *cid = seen[seen_n - 1];
        rc = write_children(t, out, cid, strlen(cid), depth - 1);
        buf_putc(out, '}');
    }
    for (size_t k = 0; k < seen_n; k++) free(seen[k]);
    free(seen);
    free(l.v);
    buf_putc(out, ']');
    return rc < 0 ? rc : 0;
}

void handle_tree(api_req *r)
{
    struct evkeyvalq params;
    params.tqh_first = NULL;
    params.tqh_last = &params.tqh_first;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *qs = evhttp_uri_get_query(uri);
    if (qs && evhttp_parse_query_str(qs, &params) != 0) {
        reply_error(r, 400, "bad_request", "malformed query string");
        return;
    }
    tree_ctx t = {.r = r, .tenant_hash = event_tenant_hash(r->tenant)};
    const char *entity = query_param(r, &params, "entity_id");
    const char *depth_s = query_param(r, &params, "depth");
    const char *from_s = query_param(r, &params, "from");
    const char *to_s = query_param(r, &params, "to");
    for (struct evkeyval *kv = params.tqh_first; kv; kv = kv->next.tqe_next) {
        if (strcmp(kv->key, "entity_id") && strcmp(kv->key, "depth") && strcmp(kv->key, "from") && strcmp(kv->key, "to")) {
            reply_error(r, 400, "bad_request", "unknown parameter '%.64s' (entity_id, depth, from, to)", kv->key);
            goto out_params;
        }
    }
    uint32_t depth = 3;
    if (!entity || !entity[0] || strlen(entity) > ENTITY_MAX) {
        reply_error(r, 400, "bad_request", "'entity_id' (1..%u bytes) is required", ENTITY_MAX);
        goto out_params;
    }
    if (depth_s) {
        char *end;
        long d = strtol(depth_s, &end, 10);
        if (*end || d < 1 || d > (long)TREE_MAX_DEPTH) {
            reply_error(r, 400, "bad_request", "'depth' must be 1..%u", TREE_MAX_DEPTH);
            goto out_params;
        }
        depth = (uint32_t)d;
    }
    int64_t now = clock_wall_us();
    t.to = now + 86400LL * 1000000;
    t.from = now - 30LL * 86400 * 1000000;
    if ((from_s && clock_parse_rfc3339(from_s, strlen(from_s), &t.from) != 0) ||
        (to_s && clock_parse_rfc3339(to_s, strlen(to_s), &t.to) != 0) || t.from >= t.to) {
        reply_error(r, 400, "bad_request", "'from' and 'to' must be RFC 3339 times, from before to");
        goto out_params;
    }
    t.p = json_parser_create();
    arena_init(&t.a, 64 * 1024);
    buf_init(&t.json);
    json_value root;
    store_event_ref ref;
    int rc = find_process(&t, entity, strlen(entity), &root, &ref);
    if (rc == 0) {
        reply_error(r, 404, "not_found", "no process with entity_id '%.100s' in this tenant and time range", entity);
        goto out;
    }
    if (rc < 0) {
        reply_error(r, 500, "internal", "index lookup failed (%d)", rc);
        goto out;
    }
    buf_puts(&r->body, "{\"process\":");
    write_node(&r->body, &root, &ref);
    t.nodes = 1;
    /* ancestors, nearest first (before descendants reuse the arena) */
    buf anc;
    buf_init(&anc);
    const json_value *parent = path_get(&root, "process.parent.entity_id");
    char pid[ENTITY_MAX + 1];
    uint32_t up = 0;
    while (json_is_string(parent) && parent->len > 0 && parent->len <= ENTITY_MAX && up < depth) {
        memcpy(pid, parent->str, parent->len);
        pid[parent->len] = '\0';
        json_value proot;
        store_event_ref pref;
        if (find_process(&t, pid, strlen(pid), &proot, &pref) <= 0) {
            /* not stored: name it from the child's parent fields */
            if (anc.len) buf_putc(&anc, ',');
            buf_puts(&anc, "{\"process.entity_id\":");
            json_write_string(&anc, pid, strlen(pid));
            buf_puts(&anc, ",\"stored\":false}");
            break;
        }
        if (anc.len) buf_putc(&anc, ',');
        write_node(&anc, &proot, &pref);
        buf_putc(&anc, '}');
        parent = path_get(&proot, "process.parent.entity_id");
        up++;
    }
    char self[ENTITY_MAX + 1];
    snprintf(self, sizeof self, "%s", entity);
    rc = write_children(&t, &r->body, self, strlen(self), depth);
    buf_printf(&r->body, "},\"ancestors\":[%.*s],\"truncated\":%s}", (int)anc.len, anc.data ? anc.data : "",
               t.truncated ? "true" : "false");
    buf_fini(&anc);
    r->rows = t.nodes;
    if (rc < 0) reply_error(r, 500, "internal", "index lookup failed (%d)", rc);
    else reply_json(r, 200);
out:
    buf_fini(&t.json);
    arena_fini(&t.a);
    json_parser_destroy(t.p);
out_params:
    evhttp_clear_headers(&params);
}

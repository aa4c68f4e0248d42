/* bench/sim/render_ecs.c — one model activity as an Elastic Common Schema event (nested
 * objects): @timestamp, event.{kind,category,type,action}, host, process (with parent on
 * process starts), user, and file / source+destination+network / dns / registry / dll
 * by kind. 300-700 bytes per event; strings come pre-escaped from the tables. */
#include "model.h"

#include "core/clock.h"

#include <string.h>

typedef struct ecs_kind {
    const char *event; /* the "event" object */
} ecs_kind;

static const ecs_kind kinds[ACT_KINDS] = {
    [ACT_PROCESS_START] = {"{\"kind\":\"event\",\"category\":[\"process\"],\"type\":[\"start\"],\"action\":\"start\"}"},
    [ACT_PROCESS_END] = {"{\"kind\":\"event\",\"category\":[\"process\"],\"type\":[\"end\"],\"action\":\"end\"}"},
    [ACT_FILE_CREATE] = {"{\"kind\":\"event\",\"category\":[\"file\"],\"type\":[\"creation\"],\"action\":\"creation\"}"},
    [ACT_FILE_DELETE] = {"{\"kind\":\"event\",\"category\":[\"file\"],\"type\":[\"deletion\"],\"action\":\"deletion\"}"},
    [ACT_NETWORK] = {"{\"kind\":\"event\",\"category\":[\"network\"],\"type\":[\"connection\",\"start\"],"
                     "\"action\":\"connection_attempted\"}"},
    [ACT_DNS] = {"{\"kind\":\"event\",\"category\":[\"network\"],\"type\":[\"protocol\",\"info\"],"
                 "\"action\":\"lookup_requested\"}"},
    [ACT_REGISTRY] = {"{\"kind\":\"event\",\"category\":[\"registry\"],\"type\":[\"change\"],"
                      "\"action\":\"modification\"}"},
    [ACT_LIBRARY] = {"{\"kind\":\"event\",\"category\":[\"library\"],\"type\":[\"start\"],\"action\":\"load\"}"},
};

static void put_timestamp(buf *out, int64_t us)
{
    char ts[32];
    size_t n = clock_format_rfc3339(us, ts);
    buf_putc(out, '"');
    buf_append(out, ts, n);
    buf_putc(out, '"');
}

/* process.{entity_id,pid,name,executable} (+ command line, directory, hash, parent). */
static void put_process(const sim_model *m, buf *out, const model_proc *p, bool full)
{
    const proc_template *t = &model_templates[p->tmpl];
    char guid[40];
    model_guid(m, p->serial, guid);
    buf_puts(out, ",\"process\":{\"entity_id\":\"");
    buf_puts(out, guid);
    buf_puts(out, "\",\"pid\":");
    buf_put_u64(out, p->pid);
    put_member(out, ",\"name\":\"", t->name_json);
    put_expanded(out, m, ",\"executable\":\"", t->exe_json, p->serial);
    if (full) {
        put_expanded(out, m, ",\"command_line\":\"", t->cmdlines_json[p->cmdline], p->serial);
        put_expanded(out, m, ",\"working_directory\":\"", t->cwd_json, p->serial);
        put_member(out, ",\"hash\":{\"sha256\":\"", t->sha256);
        buf_putc(out, '}');
        if (!t->linux_host) {
            put_member(out, ",\"pe\":{\"original_file_name\":\"", t->original_file_name_json);
            buf_putc(out, '}');
        }
        if (p->parent_serial) {
            const proc_template *pt = &model_templates[p->parent_tmpl];
            model_guid(m, p->parent_serial, guid);
            buf_puts(out, ",\"parent\":{\"entity_id\":\"");
            buf_puts(out, guid);
            buf_puts(out, "\",\"pid\":");
            buf_put_u64(out, p->parent_pid);
            put_member(out, ",\"name\":\"", pt->name_json);
            put_expanded(out, m, ",\"executable\":\"", pt->exe_json, p->parent_serial);
            put_expanded(out, m, ",\"command_line\":\"", pt->cmdlines_json[p->parent_cmdline], p->parent_serial);
            buf_putc(out, '}');
        }
    }
    buf_putc(out, '}');
}

static void put_user(const sim_model *m, buf *out, uint8_t user)
{
    buf_puts(out, ",\"user\":{\"name\":");
    const char *name = model_user_name(m, user);
    json_write_string(out, name, strlen(name));
    const char *domain = model_user_domain(m, user);
    if (domain) {
        buf_puts(out, ",\"domain\":\"");
        buf_puts(out, domain);
        buf_putc(out, '"');
    }
    buf_putc(out, '}');
}

/* The path just expanded at out->data[start..]: appends `,"directory":…` (optional),
 * `,"name":…` and `,"extension":…` (optional). A Windows separator is "\\" in JSON. */
static void put_path_parts(buf *out, size_t start, bool directory, bool extension)
{
    char path[512];
    size_t n = MAMORI_MIN(out->len - start, sizeof path - 1);
    memcpy(path, out->data + start, n);
    path[n] = '\0';
    const char *name = path;
    size_t dir_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (path[i] == '/') {
            dir_len = i;
            name = path + i + 1;
        } else if (path[i] == '\\' && path[i + 1] == '\\') {
            dir_len = i;
            name = path + i + 2;
            i++;
        }
    }
    buf_putc(out, '"');
    if (directory && dir_len) {
        buf_puts(out, ",\"directory\":\"");
        buf_append(out, path, dir_len);
        buf_putc(out, '"');
    }
    buf_puts(out, ",\"name\":\"");
    buf_puts(out, name);
    buf_putc(out, '"');
    const char *dot = strrchr(name, '.');
    if (extension && dot && dot[1]) {
        buf_puts(out, ",\"extension\":\"");
        buf_puts(out, dot + 1);
        buf_putc(out, '"');
    }
}

static void put_file(const sim_model *m, buf *out, const model_activity *act)
{
    buf_puts(out, ",\"file\":{\"path\":\"");
    size_t start = out->len;
    model_expand(m, act->choice->text_json, act->choice_seed, out);
    put_path_parts(out, start, true, true);
    buf_putc(out, '}');
}

static void put_str_member(buf *out, const char *key_json, const char *value)
{
    buf_puts(out, key_json);
    buf_puts(out, value);
    buf_putc(out, '"');
}

static void put_network(const sim_model *m, buf *out, const model_activity *act)
{
    const net_dest *d = act->dest;
    put_str_member(out, ",\"source\":{\"ip\":\"", m->host->ip);
    buf_puts(out, ",\"port\":");
    buf_put_u64(out, act->source_port);
    put_str_member(out, "},\"destination\":{\"ip\":\"", d->ip);
    buf_puts(out, ",\"port\":");
    buf_put_u64(out, d->port);
    put_str_member(out, ",\"domain\":\"", d->domain);
    buf_puts(out, d->udp ? "},\"network\":{\"transport\":\"udp\"" : "},\"network\":{\"transport\":\"tcp\"");
    put_str_member(out, ",\"type\":\"ipv4\",\"direction\":\"egress\",\"protocol\":\"", d->protocol);
    buf_putc(out, '}');
}

static void put_dns(buf *out, const model_activity *act)
{
    const net_dest *d = act->dest;
    put_str_member(out, ",\"dns\":{\"type\":\"query\",\"question\":{\"name\":\"", d->domain);
    put_str_member(out, ",\"type\":\"A\"},\"resolved_ip\":[\"", d->ip);
    buf_puts(out, "]},\"network\":{\"protocol\":\"dns\",\"transport\":\"udp\"}");
}

static void put_registry(const sim_model *m, buf *out, const model_activity *act)
{
    buf_puts(out, ",\"registry\":{\"path\":\"");
    size_t start = out->len;
    model_expand(m, act->choice->text_json, act->choice_seed, out);
    size_t end = out->len;
    buf_putc(out, '"');
    /* hive = up to the first "\\" (escaped backslash), value = after the last one. */
    char path[512];
    size_t n = MAMORI_MIN(end - start, sizeof path - 1);
    memcpy(path, out->data + start, n);
    path[n] = '\0';
    char *first = strstr(path, "\\\\");
    char *last = NULL;
    for (char *p = path; (p = strstr(p, "\\\\")); p += 2) last = p;
    if (first && last && last > first) {
        buf_puts(out, ",\"hive\":\"");
        buf_append(out, path, (size_t)(first - path));
        buf_puts(out, "\",\"key\":\"");
        buf_append(out, first + 2, (size_t)(last - first - 2));
        buf_puts(out, "\",\"value\":\"");
        buf_puts(out, last + 2);
        buf_putc(out, '"');
    }
    put_expanded(out, m, ",\"data\":{\"strings\":[\"", act->choice->data_json, act->choice_seed);
    buf_puts(out, "]}}");
}

static void put_dll(const sim_model *m, buf *out, const model_activity *act)
{
    buf_puts(out, ",\"dll\":{\"path\":\"");
    size_t start = out->len;
    model_expand(m, act->choice->text_json, act->choice_seed, out);
    put_path_parts(out, start, false, false);
    put_member(out, ",\"hash\":{\"sha256\":\"", act->choice->sha256);
    buf_puts(out, "}}");
}

void render_ecs(sim_model *m, const model_activity *act, int64_t now_us, buf *out)
{
    buf_puts(out, "{\"@timestamp\":");
    put_timestamp(out, now_us);
    buf_puts(out, ",\"event\":");
    buf_puts(out, kinds[act->kind].event);
    buf_puts(out, ",\"host\":");
    buf_append(out, m->host_json, m->host_json_len);
    put_process(m, out, act->proc, act->kind == ACT_PROCESS_START);
    put_user(m, out, act->proc->user);
    switch (act->kind) {
    case ACT_FILE_CREATE:
    case ACT_FILE_DELETE: put_file(m, out, act); break;
    case ACT_NETWORK: put_network(m, out, act); break;
    case ACT_DNS: put_dns(out, act); break;
    case ACT_REGISTRY: put_registry(m, out, act); break;
    case ACT_LIBRARY: put_dll(m, out, act); break;
    default: break;
    }
    buf_putc(out, '}');
}

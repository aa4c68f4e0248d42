/* cli/cmd_respond.c — remote response from the command line (docs/response.md): isolate,
 * release, kill, rm, fetch, ps, ls post an action (POST /v1/agents/{id}/actions) and wait
 * for its final status, polling GET /v1/actions/{id} with a progress line on a terminal;
 * `actions` lists an agent's actions or shows one. Exit 0 when the action succeeded, 1 when
 * it failed, expired, or the wait ran out, 2 on usage errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "core/arena.h"
#include "core/json.h"

typedef struct respond_opts {
    cli_client c;
    bool json, no_wait;
    long wait_s, expires_s, depth, pid;
    long long max_bytes;
    const char *entity_id, *sha256, *out_file, *status;
    long limit;
} respond_opts;

static void usage(FILE *out)
{
    fprintf(out, "usage: mamorictl isolate AGENT          isolate the host (only Mamori stays reachable)\n"
                 "       mamorictl release AGENT          end the isolation\n"
                 "       mamorictl kill AGENT --pid N | --entity-id ID\n"
                 "       mamorictl rm AGENT PATH [--sha256 HEX]\n"
                 "       mamorictl fetch AGENT PATH [-o FILE] [--max-bytes N]\n"
                 "       mamorictl ps AGENT\n"
                 "       mamorictl ls AGENT PATH [--depth N]\n"
                 "       mamorictl actions AGENT [--status S] [--limit N] | actions get ACTION_ID\n"
                 "  --wait S         wait at most S seconds for the final status (default 120)\n"
                 "  --no-wait        print the queued action and return\n"
                 "  --expires S      the action expires after S seconds (default: the server's)\n"
                 "  --json           print the action record as JSON\n" CLIENT_OPTIONS_HELP);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const json_value *get(const json_value *o, const char *k) { return json_object_get(o, k, strlen(k)); }

static void print_str(const json_value *v, int width)
{
    if (json_is_string(v)) printf("%-*.*s", width, (int)v->len, v->str);
    else if (v && v->type == JSON_NUMBER) printf("%-*.*s", width, (int)v->len, v->str);
    else printf("%-*s", width, "-");
}

/* Human output of a final action. */
static void print_result(const respond_opts *o, const json_value *a, const char *action)
{
    const json_value *st = get(a, "status"), *out = get(a, "output"), *err = get(a, "error");
    if (json_is_string(err)) fprintf(stderr, "%.*s: %.*s\n", (int)st->len, st->str, (int)err->len, err->str);
    if (!out || out->type != JSON_OBJECT) return;
    if (!strcmp(action, "list_processes")) {
        const json_value *ps = get(out, "processes");
        printf("%-8s %-8s %-16s %-24s %s\n", "PID", "PPID", "USER", "NAME", "COMMAND");
        for (uint32_t i = 0; ps && ps->type == JSON_ARRAY && i < ps->len; i++) {
            const json_value *p = &ps->items[i];
            print_str(get(p, "pid"), 8);
            putchar(' ');
            print_str(get(p, "ppid"), 8);
            putchar(' ');
            print_str(get(p, "user"), 16);
            putchar(' ');
            print_str(get(p, "name"), 24);
            putchar(' ');
            print_str(get(p, "command_line"), 0);
            putchar('\n');
        }
        return;
    }
    if (!strcmp(action, "list_dir")) {
        const json_value *es = get(out, "entries");
        printf("%-8s %12s %-27s %s\n", "TYPE", "SIZE", "MTIME", "PATH");
        for (uint32_t i = 0; es && es->type == JSON_ARRAY && i < es->len; i++) {
            const json_value *e = &es->items[i];
            print_str(get(e, "type"), 8);
            putchar(' ');
            const json_value *size = get(e, "size");
            printf("%12.*s ", size && size->type == JSON_NUMBER ? (int)size->len : 1,
                   size && size->type == JSON_NUMBER ? size->str : "-");
            print_str(get(e, "mtime"), 27);
            putchar(' ');
            print_str(get(e, "path"), 0);
            putchar('\n');
        }
        const json_value *tr = get(out, "truncated");
        if (tr && tr->type == JSON_BOOL && tr->num.b) fprintf(stderr, "(listing truncated by the agent)\n");
        return;
    }
    (void)o;
    buf b;
    buf_init(&b);
    json_write_value(&b, out);
    printf("%s\n", buf_cstr(&b));
    buf_fini(&b);
}

/* Downloads the fetched file to o->out_file (or the path's last component). */
static int save_file(const respond_opts *o, const json_value *a, const char *path)
{
    const json_value *out = get(a, "output");
    const json_value *sha = out && out->type == JSON_OBJECT ? get(out, "sha256") : NULL;
    if (!json_is_string(sha) || sha->len != 64) {
        fprintf(stderr, "fetch: the action output has no sha256\n");
        return 1;
    }
    char url[128];
    snprintf(url, sizeof url, "/v1/files/%.64s", sha->str);
    buf body;
    buf_init(&body);
    long status = 0;
    int rc = 0;
    if (client_request(&o->c, "GET", url, NULL, &body, &status)) rc = 1;
    else if (status != 200) rc = client_report_error("fetch", status, &body);
    else {
        const char *dest = o->out_file;
        if (!dest) {
            const char *slash = strrchr(path, '/'), *bslash = strrchr(path, '\\');
            if (bslash && (!slash || bslash > slash)) slash = bslash;
            dest = slash && slash[1] ? slash + 1 : "fetched.bin";
        }
        FILE *f = strcmp(dest, "-") ? fopen(dest, "wbx") : stdout;
        if (!f) {
            fprintf(stderr, "fetch: cannot create %s: %s\n", dest, strerror(errno));
            rc = 1;
        } else {
            if (fwrite(body.data, 1, body.len, f) != body.len) rc = 1;
            if (f != stdout && fclose(f) != 0) rc = 1;
            if (rc) fprintf(stderr, "fetch: writing %s failed\n", dest);
            else if (f != stdout)
                fprintf(stderr, "fetch: %zu bytes, sha256 %.64s, saved to %s\n", body.len, sha->str, dest);
        }
    }
    buf_fini(&body);
    return rc;
}

static int run_action(respond_opts *o, const char *agent, const char *action, const char *args_json,
                      const char *path_arg)
{
    if (client_resolve(&o->c)) return 2;
    buf req, out, enc;
    buf_init(&req);
    buf_init(&out);
    buf_init(&enc);
    buf_printf(&req, "{\"action\":\"%s\",\"args\":%s", action, args_json);
    if (o->expires_s > 0) buf_printf(&req, ",\"expires_in\":%ld", o->expires_s);
    buf_putc(&req, '}');
    client_url_encode(&enc, agent);
    char path[600];
    snprintf(path, sizeof path, "/v1/agents/%.500s/actions", buf_cstr(&enc));
    long status = 0;
    int rc = 0;
    json_parser *p = json_parser_create();
    arena a;
    arena_init(&a, 64 * 1024);
    char id[40] = "";
    if (client_request(&o->c, "POST", path, buf_cstr(&req), &out, &status)) {
        rc = 1;
        goto done;
    }
    if (status != 201) {
        rc = client_report_error(action, status, &out);
        goto done;
    }
    json_value v;
    json_error jerr;
    if (json_parse(p, &a, out.data, out.len, &v, &jerr) != 0 || !json_is_string(get(&v, "id"))) {
        fprintf(stderr, "%s: unexpected answer from the server\n", action);
        rc = 1;
        goto done;
    }
    snprintf(id, sizeof id, "%.*s", (int)get(&v, "id")->len, get(&v, "id")->str);
    if (o->no_wait) {
        fwrite(out.data, 1, out.len, stdout);
        putchar('\n');
        goto done;
    }
    bool tty = isatty(STDERR_FILENO);
    static const char spin[] = "|/-\\";
    double start = now_s();
    unsigned tick = 0;
    snprintf(path, sizeof path, "/v1/actions/%s", id);
    for (;;) {
        const json_value *st = get(&v, "status");
        bool final = json_is_string(st) && (!strncmp(st->str, "succeeded", st->len) ||
                                            !strncmp(st->str, "failed", st->len) || !strncmp(st->str, "expired", st->len));
        if (tty)
            fprintf(stderr, "\r%c %s %s: %-9.*s %5.1fs", spin[tick++ % 4], action, agent,
                    json_is_string(st) ? (int)st->len : 1, json_is_string(st) ? st->str : "?", now_s() - start);
        if (final) break;
        if (now_s() - start > (double)o->wait_s) {
            if (tty) fputc('\n', stderr);
            fprintf(stderr, "%s: still %.*s after %ld s; follow it with: mamorictl actions get %s\n", action,
                    json_is_string(st) ? (int)st->len : 1, json_is_string(st) ? st->str : "?", o->wait_s, id);
            rc = 1;
            goto done;
        }
        sleep_ms(200);
        if (client_request(&o->c, "GET", path, NULL, &out, &status)) {
            rc = 1;
            goto done;
        }
        if (status != 200) {
            rc = client_report_error(action, status, &out);
            goto done;
        }
        arena_reset(&a);
        if (json_parse(p, &a, out.data, out.len, &v, &jerr) != 0) {
            fprintf(stderr, "%s: unexpected answer from the server\n", action);
            rc = 1;
            goto done;
        }
    }
    if (tty) fputc('\n', stderr);
    const json_value *st = get(&v, "status");
    bool ok = json_is_string(st) && st->len == 9 && !memcmp(st->str, "succeeded", 9);
    if (o->json) {
        fwrite(out.data, 1, out.len, stdout);
        putchar('\n');
    }
    if (!ok) {
        if (!o->json) print_result(o, &v, action);
        rc = 1;
    } else if (!strcmp(action, "fetch_file")) {
        rc = save_file(o, &v, path_arg);
    } else if (!o->json) {
        print_result(o, &v, action);
    }
done:
    arena_fini(&a);
    json_parser_destroy(p);
    buf_fini(&req);
    buf_fini(&out);
    buf_fini(&enc);
    return rc;
}

static int list_actions(respond_opts *o, int argc, char **argv)
{
    if (client_resolve(&o->c)) return 2;
    buf out, enc, path;
    buf_init(&out);
    buf_init(&enc);
    buf_init(&path);
    bool one = argc == 2 && !strcmp(argv[0], "get");
    client_url_encode(&enc, argv[one ? 1 : 0]);
    if (one) buf_printf(&path, "/v1/actions/%s", buf_cstr(&enc));
    else {
        buf_printf(&path, "/v1/agents/%s/actions?limit=%ld", buf_cstr(&enc), o->limit);
        if (o->status) {
            buf_clear(&enc);
            client_url_encode(&enc, o->status);
            buf_printf(&path, "&status=%s", buf_cstr(&enc));
        }
    }
    long status = 0;
    int rc = 0;
    if (client_request(&o->c, "GET", buf_cstr(&path), NULL, &out, &status)) rc = 1;
    else if (status != 200) rc = client_report_error("actions", status, &out);
    else if (o->json || one) {
        fwrite(out.data, 1, out.len, stdout);
        putchar('\n');
    } else {
        json_parser *p = json_parser_create();
        arena a;
        arena_init(&a, 64 * 1024);
        json_value v;
        json_error jerr;
        buf tmp;
        buf_init(&tmp);
        if (json_parse(p, &a, out.data, out.len, &v, &jerr) == 0) {
            const json_value *list = get(&v, "actions");
            printf("%-27s %-32s %-14s %-9s %s\n", "CREATED", "ID", "ACTION", "STATUS", "ACTOR");
            for (uint32_t i = 0; list && list->type == JSON_ARRAY && i < list->len; i++) {
                const json_value *x = &list->items[i];
                client_print_cell(&tmp, x, "created", 27);
                client_print_cell(&tmp, x, "id", 32);
                client_print_cell(&tmp, x, "action", 14);
                client_print_cell(&tmp, x, "status", 9);
                client_print_cell(&tmp, x, "actor", 0);
                putchar('\n');
            }
        }
        buf_fini(&tmp);
        arena_fini(&a);
        json_parser_destroy(p);
    }
    buf_fini(&out);
    buf_fini(&enc);
    buf_fini(&path);
    return rc;
}

int cmd_respond(const char *verb, int argc, char **argv)
{
    enum { O_WAIT = 1, O_NOWAIT, O_EXPIRES, O_PID, O_ENTITY, O_SHA, O_MAXB, O_DEPTH, O_STATUS, O_LIMIT };
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},          {"help", no_argument, NULL, 'h'},
        {"wait", required_argument, NULL, O_WAIT}, {"no-wait", no_argument, NULL, O_NOWAIT},
        {"expires", required_argument, NULL, O_EXPIRES}, {"pid", required_argument, NULL, O_PID},
        {"entity-id", required_argument, NULL, O_ENTITY}, {"sha256", required_argument, NULL, O_SHA},
        {"max-bytes", required_argument, NULL, O_MAXB}, {"depth", required_argument, NULL, O_DEPTH},
        {"status", required_argument, NULL, O_STATUS}, {"limit", required_argument, NULL, O_LIMIT},
        {"output", required_argument, NULL, 'o'},  CLIENT_LONG_OPTIONS,
        {NULL, 0, NULL, 0}};
    respond_opts o = {.wait_s = 120, .limit = 100};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'j': o.json = true; break;
        case 'h': usage(stdout); return 0;
        case 'o': o.out_file = optarg; break;
        case O_WAIT: o.wait_s = strtol(optarg, &end, 10); break;
        case O_NOWAIT: o.no_wait = true; break;
        case O_EXPIRES: o.expires_s = strtol(optarg, &end, 10); break;
        case O_PID: o.pid = strtol(optarg, &end, 10); break;
        case O_ENTITY: o.entity_id = optarg; break;
        case O_SHA: o.sha256 = optarg; break;
        case O_MAXB: o.max_bytes = strtoll(optarg, &end, 10); break;
        case O_DEPTH: o.depth = strtol(optarg, &end, 10); break;
        case O_STATUS: o.status = optarg; break;
        case O_LIMIT: o.limit = strtol(optarg, &end, 10); break;
        default:
            if (!client_option(&o.c, c, optarg)) {
                usage(stderr);
                return 2;
            }
        }
        if (end && (*end || end == optarg)) {
            fprintf(stderr, "mamorictl %s: '%s' is not a number\n", verb, optarg);
            return 2;
        }
    }
    int n = argc - optind;
    char **pos = argv + optind;
    if (!strcmp(verb, "actions")) {
        if (n < 1 || n > 2 || (n == 2 && strcmp(pos[0], "get"))) {
            usage(stderr);
            return 2;
        }
        return list_actions(&o, n, pos);
    }
    bool needs_path = !strcmp(verb, "rm") || !strcmp(verb, "fetch") || !strcmp(verb, "ls");
    if (n != (needs_path ? 2 : 1)) {
        usage(stderr);
        return 2;
    }
    buf args;
    buf_init(&args);
    const char *action = verb;
    if (needs_path) {
        buf_puts(&args, "{\"path\":");
        json_write_string(&args, pos[1], strlen(pos[1]));
    }
    if (!strcmp(verb, "kill")) {
        action = "kill_process";
        if ((o.pid > 0) == (o.entity_id != NULL)) {
            fprintf(stderr, "mamorictl kill: give exactly one of --pid and --entity-id\n");
            buf_fini(&args);
            return 2;
        }
        if (o.pid > 0) buf_printf(&args, "{\"pid\":%ld}", o.pid);
        else {
            buf_puts(&args, "{\"entity_id\":");
            json_write_string(&args, o.entity_id, strlen(o.entity_id));
            buf_putc(&args, '}');
        }
    } else if (!strcmp(verb, "rm")) {
        action = "delete_file";
        if (o.sha256) {
            buf_puts(&args, ",\"sha256\":");
            json_write_string(&args, o.sha256, strlen(o.sha256));
        }
        buf_putc(&args, '}');
    } else if (!strcmp(verb, "fetch")) {
        action = "fetch_file";
        if (o.max_bytes > 0) buf_printf(&args, ",\"max_bytes\":%lld", o.max_bytes);
        buf_putc(&args, '}');
    } else if (!strcmp(verb, "ls")) {
        action = "list_dir";
        if (o.depth > 0) buf_printf(&args, ",\"depth\":%ld", o.depth);
        buf_putc(&args, '}');
    } else if (!strcmp(verb, "ps")) {
        action = "list_processes";
        buf_puts(&args, "{}");
    } else {
        buf_puts(&args, "{}"); /* isolate, release */
    }
    int rc = run_action(&o, pos[0], action, buf_cstr(&args), needs_path ? pos[1] : NULL);
    buf_fini(&args);
    return rc;
}

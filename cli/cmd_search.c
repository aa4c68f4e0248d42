/* cli/cmd_search.c — `mamorictl search 'QUERY' [--from T] [--to T] [--limit N] [--json]`:
 * POST /v1/search, following cursors until N rows; a table by default, NDJSON (one event,
 * sequence or group per line) with --json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "core/arena.h"
#include "core/json.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: mamorictl search 'QUERY' [--from TIME] [--to TIME] [--limit N] [--json] [--explain]\n"
                 "  QUERY        EQL subset (docs/search.md), e.g. 'process where process.name == \"cmd.exe\"'\n"
                 "  --from/--to  RFC 3339 times (default: the last 24 hours)\n"
                 "  --limit N    rows to print in all (default 100; pages are followed)\n"
                 "  --json       NDJSON: one event, sequence or group per line\n"
                 "  --explain    print the plan instead of running the query\n" CLIENT_OPTIONS_HELP);
}



static void print_event_row(const json_value *ev, buf *tmp)
{
    client_print_cell(tmp, ev, "@timestamp", 27);
    client_print_cell(tmp, ev, "host.name", 16);
    client_print_cell(tmp, ev, "event.category", 9);
    client_print_cell(tmp, ev, "process.name", 20);
    const char *detail = client_json_path(ev, "process.command_line") ? "process.command_line"
                         : client_json_path(ev, "destination.ip")     ? "destination.ip"
                         : client_json_path(ev, "dns.question.name")  ? "dns.question.name"
                         : client_json_path(ev, "file.path")          ? "file.path"
                         : client_json_path(ev, "registry.path")      ? "registry.path"
                                                              : "event.action";
    client_print_cell(tmp, ev, detail, 0);
    putchar('\n');
}

int cmd_search(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'}, {"to", required_argument, NULL, 't'},
        {"limit", required_argument, NULL, 'l'}, {"json", no_argument, NULL, 'j'},
        {"explain", no_argument, NULL, 'e'}, {"help", no_argument, NULL, 'h'}, CLIENT_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    cli_client c = {0};
    const char *from = NULL, *to = NULL;
    long limit = 100;
    bool as_json = false, explain = false;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'l': limit = strtol(optarg, NULL, 10); break;
        case 'j': as_json = true; break;
        case 'e': explain = true; break;
        case 'h': usage(stdout); return 0;
        default:
            if (!client_option(&c, o, optarg)) {
                usage(stderr);
                return 2;
            }
        }
    }
    if (optind + 1 != argc || limit < 1) {
        usage(stderr);
        return 2;
    }
    if (client_resolve(&c)) return 2;
    const char *query = argv[optind];
    buf body, out, tmp;
    buf_init(&body);
    buf_init(&out);
    buf_init(&tmp);
    json_parser *p = json_parser_create();
    arena a;
    arena_init(&a, 64 * 1024);
    char cursor[400] = "";
    long printed = 0;
    int rc = 0;
    bool header = false;
    for (;;) {
        buf_clear(&body);
        buf_puts(&body, "{\"query\":");
        json_write_string(&body, query, strlen(query));
        if (from) {
            buf_puts(&body, ",\"from\":");
            json_write_string(&body, from, strlen(from));
        }
        if (to) {
            buf_puts(&body, ",\"to\":");
            json_write_string(&body, to, strlen(to));
        }
        buf_printf(&body, ",\"limit\":%ld", MAMORI_MIN(limit - printed, 1000L));
        if (cursor[0]) buf_printf(&body, ",\"cursor\":\"%s\"", cursor);
        if (explain) buf_puts(&body, ",\"explain\":true");
        buf_putc(&body, '}');
        long status = 0;
        if (client_request(&c, "POST", "/v1/search", buf_cstr(&body), &out, &status)) {
            rc = 1;
            break;
        }
        if (status != 200) {
            rc = client_report_error("search", status, &out);
            break;
        }
        arena_reset(&a);
        json_value v;
        json_error jerr;
        if (json_parse(p, &a, out.data, out.len, &v, &jerr) != 0 || v.type != JSON_OBJECT) {
            fprintf(stderr, "mamorictl: the server answered something that is not JSON\n");
            rc = 1;
            break;
        }
        const json_value *events = json_object_get(&v, "events", 6);
        const json_value *seqs = json_object_get(&v, "sequences", 9);
        const json_value *counts = json_object_get(&v, "counts", 6);
        const json_value *items = events ? events : seqs ? seqs : counts;
        if (!items || items->type != JSON_ARRAY) { /* count, plan */
            fwrite(out.data, 1, out.len, stdout);
            putchar('\n');
            break;
        }
        for (uint32_t i = 0; i < items->len; i++) {
            const json_value *it = &items->items[i];
            if (as_json) {
                buf_clear(&tmp);
                json_write_value(&tmp, it);
                puts(buf_cstr(&tmp));
            } else if (events) {
                if (!header) printf("%-27s %-16s %-9s %-20s %s\n", "@timestamp", "host.name", "category", "process.name",
                                    "detail");
                header = true;
                print_event_row(it, &tmp);
            } else if (seqs) {
                const json_value *by = json_object_get(it, "by", 2);
                const json_value *evs = json_object_get(it, "events", 6);
                buf_clear(&tmp);
                if (by) json_write_value(&tmp, by);
                printf("sequence %ld by %s\n", printed + 1, buf_cstr(&tmp));
                for (uint32_t k = 0; evs && evs->type == JSON_ARRAY && k < evs->len; k++) {
                    printf("  ");
                    print_event_row(&evs->items[k], &tmp);
                }
            } else {
                const json_value *by = json_object_get(it, "by", 2);
                const json_value *n = json_object_get(it, "count", 5);
                buf_clear(&tmp);
                if (by) json_write_value(&tmp, by);
                printf("%12lld  %s\n", n && n->type == JSON_NUMBER ? (long long)n->num.i : 0LL, buf_cstr(&tmp));
            }
            printed++;
        }
        const json_value *cur = json_object_get(&v, "cursor", 6);
        if (!json_is_string(cur) || printed >= limit || cur->len >= sizeof cursor) {
            if (json_is_string(cur) && !as_json) fprintf(stderr, "(more rows: raise --limit)\n");
            break;
        }
        snprintf(cursor, sizeof cursor, "%.*s", (int)cur->len, cur->str);
    }
    arena_fini(&a);
    json_parser_destroy(p);
    buf_fini(&body);
    buf_fini(&out);
    buf_fini(&tmp);
    return rc;
}

/* cli/cmd_alerts.c — `mamorictl alerts [filters] [--json]` lists alerts newest first
 * (GET /v1/alerts, following cursors up to --limit); `alerts get ID`, and `alerts ack|close|
 * reopen ID [--assignee NAME]` / `alerts assign ID NAME` change one (PATCH /v1/alerts/{id}). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "core/arena.h"
#include "core/json.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mamorictl alerts [--status S] [--rule ID] [--host H] [--level L] [--from T] [--to T]\n"
            "                        [--limit N] [--json]\n"
            "       mamorictl alerts get ID\n"
            "       mamorictl alerts ack|close|reopen ID [--assignee NAME]\n"
            "       mamorictl alerts assign ID NAME\n"
            "  --status S    new, acknowledged or closed\n"
            "  --rule ID     a Sigma rule id (its title for a rule without id)\n"
            "  --host H      host.id or host.name (caseless)\n"
            "  --level L     informational, low, medium, high, critical or none (no level)\n"
            "  --from/--to   RFC 3339 times (the triggering event's time)\n"
            "  --limit N     alerts to print in all (default 100; pages are followed)\n"
            "  --json        NDJSON: one alert per line\n" CLIENT_OPTIONS_HELP);
}


static void add_param(buf *path, const char *name, const char *value)
{
    if (!value) return;
    buf_putc(path, strchr(buf_cstr(path), '?') ? '&' : '?');
    buf_puts(path, name);
    buf_putc(path, '=');
    client_url_encode(path, value);
}



static int list(cli_client *c, const char *filters[][2], size_t nfilters, long limit, bool as_json)
{
    buf path, out, tmp;
    buf_init(&path);
    buf_init(&out);
    buf_init(&tmp);
    json_parser *p = json_parser_create();
    arena a;
    arena_init(&a, 64 * 1024);
    char cursor[128] = "";
    long printed = 0;
    int rc = 0;
    bool header = !as_json; /* printed with the first answer, so an error is not under it */
    while (printed < limit) {
        buf_clear(&path);
        buf_puts(&path, "/v1/alerts");
        for (size_t i = 0; i < nfilters; i++) add_param(&path, filters[i][0], filters[i][1]);
        char lim[24];
        snprintf(lim, sizeof lim, "%ld", MAMORI_MIN(limit - printed, 1000L));
        add_param(&path, "limit", lim);
        if (cursor[0]) add_param(&path, "cursor", cursor);
        long status = 0;
        if (client_request(c, "GET", buf_cstr(&path), NULL, &out, &status)) {
            rc = 1;
            break;
        }
        if (status != 200) {
            rc = client_report_error("alerts", status, &out);
            break;
        }
        arena_reset(&a);
        json_value v;
        json_error jerr;
        if (json_parse(p, &a, out.data, out.len, &v, &jerr) != 0 || v.type != JSON_OBJECT) {
            fprintf(stderr, "mamorictl alerts: the server's answer is not JSON\n");
            rc = 1;
            break;
        }
        const json_value *alerts = json_object_get(&v, "alerts", 6);
        if (header) {
            printf("%-27s %-13s %-12s %-20s %-32s %s\n", "time", "level", "status", "host", "id", "rule");
            header = false;
        }
        for (uint32_t i = 0; alerts && alerts->type == JSON_ARRAY && i < alerts->len && printed < limit; i++) {
            const json_value *al = &alerts->items[i];
            if (as_json) {
                buf_clear(&tmp);
                json_write_value(&tmp, al);
                printf("%s\n", buf_cstr(&tmp));
            } else {
                client_print_cell(&tmp, al, "time", 27);
                client_print_cell(&tmp, al, "rule.level", 13);
                client_print_cell(&tmp, al, "status", 12);
                client_print_cell(&tmp, al, client_json_path(al, "host.name") && client_json_path(al, "host.name")->type == JSON_STRING ? "host.name"
                                                                                                       : "host.id",
                     20);
                client_print_cell(&tmp, al, "id", 32);
                client_print_cell(&tmp, al, "rule.title", 0);
                putchar('\n');
            }
            printed++;
        }
        const json_value *cur = json_object_get(&v, "cursor", 6);
        if (!json_is_string(cur) || cur->len >= sizeof cursor) break;
        memcpy(cursor, cur->str, cur->len);
        cursor[cur->len] = '\0';
    }
    arena_fini(&a);
    json_parser_destroy(p);
    buf_fini(&path);
    buf_fini(&out);
    buf_fini(&tmp);
    return rc;
}

static int one(cli_client *c, const char *method, const char *id, const char *body)
{
    buf path, out;
    buf_init(&path);
    buf_init(&out);
    buf_puts(&path, "/v1/alerts/");
    client_url_encode(&path, id);
    long status = 0;
    int rc = 0;
    if (client_request(c, method, buf_cstr(&path), body, &out, &status)) rc = 1;
    else if (status != 200) rc = client_report_error("alerts", status, &out);
    else printf("%.*s\n", (int)out.len, out.data);
    buf_fini(&path);
    buf_fini(&out);
    return rc;
}

int cmd_alerts(int argc, char **argv)
{
    static const struct option opts[] = {
        {"status", required_argument, NULL, 's'}, {"rule", required_argument, NULL, 'r'},
        {"host", required_argument, NULL, 'H'},   {"level", required_argument, NULL, 'L'},
        {"from", required_argument, NULL, 'f'},   {"to", required_argument, NULL, 't'},
        {"limit", required_argument, NULL, 'l'},  {"json", no_argument, NULL, 'j'},
        {"assignee", required_argument, NULL, 'a'}, {"help", no_argument, NULL, 'h'},
        CLIENT_LONG_OPTIONS,                      {NULL, 0, NULL, 0},
    };
    cli_client c = {0};
    const char *filters[6][2] = {{"status", NULL}, {"rule", NULL}, {"host", NULL},
                                 {"level", NULL},  {"from", NULL}, {"to", NULL}};
    const char *assignee = NULL;
    long limit = 100;
    bool as_json = false;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 's': filters[0][1] = optarg; break;
        case 'r': filters[1][1] = optarg; break;
        case 'H': filters[2][1] = optarg; break;
        case 'L': filters[3][1] = optarg; break;
        case 'f': filters[4][1] = optarg; break;
        case 't': filters[5][1] = optarg; break;
        case 'a': assignee = optarg; break;
        case 'j': as_json = true; break;
        case 'l': {
            char *end;
            limit = strtol(optarg, &end, 10);
            if (*end || limit < 1) {
                fprintf(stderr, "mamorictl alerts: --limit wants a positive integer\n");
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        default:
            if (!client_option(&c, o, optarg)) {
                usage(stderr);
                return 2;
            }
        }
    }
    int rest = argc - optind;
    const char *verb = rest > 0 ? argv[optind] : NULL;
    if (!verb && assignee) {
        fprintf(stderr, "mamorictl alerts: --assignee is for ack, close and reopen, not for listing\n");
        return 2;
    }
    if (client_resolve(&c)) return 2;
    if (!verb) return list(&c, filters, MAMORI_ARRAY_LEN(filters), limit, as_json);
    const char *id = rest > 1 ? argv[optind + 1] : NULL;
    if (!id) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(verb, "get") && rest == 2) return one(&c, "GET", id, NULL);
    const char *status = !strcmp(verb, "ack") ? "acknowledged" : !strcmp(verb, "close") ? "closed"
                         : !strcmp(verb, "reopen")                                 ? "new"
                                                                                    : NULL;
    if (!strcmp(verb, "assign") && rest == 3) {
        assignee = argv[optind + 2];
    } else if (!status || rest != 2) {
        fprintf(stderr, "mamorictl alerts: unknown command or arguments ('%s')\n", verb);
        usage(stderr);
        return 2;
    }
    buf body;
    buf_init(&body);
    buf_putc(&body, '{');
    if (status) buf_printf(&body, "\"status\":\"%s\"", status);
    if (assignee) {
        if (status) buf_putc(&body, ',');
        buf_puts(&body, "\"assignee\":");
        json_write_string(&body, assignee, strlen(assignee));
    }
    buf_putc(&body, '}');
    int rc = one(&c, "PATCH", id, buf_cstr(&body));
    buf_fini(&body);
    return rc;
}

/* cli/cmd_rules_test.c — `mamorictl rules test FILE… --from T --to T [--limit N] [--json]`:
 * a retro-hunt through POST /v1/rules/test (docs/api.md "Rules test"): the Sigma files (rules
 * and correlations, joined as one multi-document YAML) run over the key's tenant's stored
 * events; what would have fired is printed, nothing is alerted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "core/arena.h"
#include "core/json.h"

#define RULES_TEST_FILE_MAX (16u << 20)

static void usage(FILE *out)
{
    fprintf(out, "usage: mamorictl rules test FILE… --from TIME --to TIME [--limit N] [--json]\n"
                 "  FILE         Sigma YAML: rules and correlations (a correlation's rules must be given too)\n"
                 "  --from/--to  RFC 3339 times of the stored events to run over\n"
                 "  --limit N    matches and correlation alerts listed, each (default 100)\n"
                 "  --json       the API's answer as is\n"
                 "Exit 0 whatever fired, 1 on an API error (a rejected rule names its line), 2 on usage errors.\n"
                 CLIENT_OPTIONS_HELP);
}

/* Appends a file's bytes; false after printing why. */
static bool append_file(buf *out, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "mamorictl rules test: %s: %s\n", path, strerror(errno));
        return false;
    }
    char chunk[65536];
    size_t n;
    bool ok = true;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (out->len + n > RULES_TEST_FILE_MAX) {
            fprintf(stderr, "mamorictl rules test: %s: the rules are over %u MiB\n", path, RULES_TEST_FILE_MAX >> 20);
            ok = false;
            break;
        }
        buf_append(out, chunk, n);
    }
    if (ok && ferror(f)) {
        fprintf(stderr, "mamorictl rules test: %s: read error\n", path);
        ok = false;
    }
    fclose(f);
    return ok;
}

int cmd_rules_test(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'}, {"to", required_argument, NULL, 't'},
        {"limit", required_argument, NULL, 'l'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},       CLIENT_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    cli_client c = {0};
    const char *from = NULL, *to = NULL;
    long limit = 100;
    bool as_json = false;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'l': limit = strtol(optarg, NULL, 10); break;
        case 'j': as_json = true; break;
        case 'h': usage(stdout); return 0;
        default:
            if (!client_option(&c, o, optarg)) {
                usage(stderr);
                return 2;
            }
        }
    }
    if (optind >= argc || !from || !to || limit < 1) {
        usage(stderr);
        return 2;
    }
    if (client_resolve(&c)) return 2;
    buf yaml, body, out, tmp;
    buf_init(&yaml);
    buf_init(&body);
    buf_init(&out);
    buf_init(&tmp);
    int rc = 0;
    for (int i = optind; i < argc && rc == 0; i++) {
        if (yaml.len) buf_puts(&yaml, "\n---\n");
        if (!append_file(&yaml, argv[i])) rc = 2;
    }
    json_parser *p = json_parser_create();
    arena a;
    arena_init(&a, 64 * 1024);
    if (rc) goto out;
    buf_puts(&body, "{\"rule\":");
    json_write_string(&body, yaml.data, yaml.len);
    buf_puts(&body, ",\"from\":");
    json_write_string(&body, from, strlen(from));
    buf_puts(&body, ",\"to\":");
    json_write_string(&body, to, strlen(to));
    buf_printf(&body, ",\"limit\":%ld}", limit);
    long status = 0;
    if (client_request(&c, "POST", "/v1/rules/test", buf_cstr(&body), &out, &status)) {
        rc = 1;
        goto out;
    }
    if (status != 200) {
        rc = client_report_error("rules test", status, &out);
        goto out;
    }
    if (as_json) {
        fwrite(out.data, 1, out.len, stdout);
        putchar('\n');
        goto out;
    }
    json_value v;
    json_error jerr;
    if (json_parse(p, &a, out.data, out.len, &v, &jerr) != 0 || v.type != JSON_OBJECT) {
        fprintf(stderr, "mamorictl: the server answered something that is not JSON\n");
        rc = 1;
        goto out;
    }
    const json_value *corr = json_object_get(&v, "correlation_alerts", 18);
    for (uint32_t i = 0; corr && corr->type == JSON_ARRAY && i < corr->len; i++) {
        const json_value *it = &corr->items[i];
        fputs("correlation ", stdout);
        client_print_cell(&tmp, it, "correlation.window.last", 27);
        client_print_cell(&tmp, it, "rule.level", 8);
        client_print_cell(&tmp, it, "rule.title", 40);
        buf_clear(&tmp);
        const json_value *group = client_json_path(it, "correlation.group");
        if (group) json_write_value(&tmp, group);
        const json_value *n = client_json_path(it, "correlation.event_count");
        printf("%s events=%lld\n", buf_cstr(&tmp), n && n->type == JSON_NUMBER ? (long long)n->num.i : -1LL);
    }
    const json_value *matches = json_object_get(&v, "matches", 7);
    for (uint32_t i = 0; matches && matches->type == JSON_ARRAY && i < matches->len; i++) {
        const json_value *it = &matches->items[i];
        fputs("match       ", stdout);
        client_print_cell(&tmp, it, "time", 27);
        client_print_cell(&tmp, it, "rule.level", 8);
        client_print_cell(&tmp, it, "rule.title", 40);
        client_print_cell(&tmp, it, "agent_id", 16);
        client_print_cell(&tmp, it, "event.id", 0);
        putchar('\n');
    }
    const json_value *scanned = json_object_get(&v, "events_scanned", 14);
    const json_value *mt = json_object_get(&v, "matches_total", 13);
    const json_value *ct = json_object_get(&v, "correlation_alerts_total", 24);
    const json_value *complete = json_object_get(&v, "complete", 8);
    fprintf(stderr, "rules test: %lld events scanned, %lld matches, %lld correlation alerts%s\n",
            scanned ? (long long)scanned->num.i : 0, mt ? (long long)mt->num.i : 0, ct ? (long long)ct->num.i : 0,
            complete && complete->type == JSON_BOOL && !complete->num.b ? " (stopped at the query deadline)" : "");
out:
    arena_fini(&a);
    json_parser_destroy(p);
    buf_fini(&tmp);
    buf_fini(&out);
    buf_fini(&body);
    buf_fini(&yaml);
    return rc;
}

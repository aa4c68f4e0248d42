/* cli/cmd_agents.c — `mamorictl agents [ID] [--json]`: GET /v1/agents or /v1/agents/{id}. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "core/arena.h"
#include "core/json.h"

static void usage(FILE *out) { fprintf(out, "usage: mamorictl agents [AGENT_ID] [--json]\n" CLIENT_OPTIONS_HELP); }

static void field(buf *tmp, const json_value *o, const char *k, int width)
{
    const json_value *v = json_object_get(o, k, strlen(k));
    buf_clear(tmp);
    if (v && v->type == JSON_STRING) buf_append(tmp, v->str, v->len);
    else if (v && v->type != JSON_NULL) json_write_value(tmp, v);
    else buf_puts(tmp, "-");
    printf("%-*s ", width, buf_cstr(tmp));
}

int cmd_agents(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, CLIENT_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    cli_client c = {0};
    bool as_json = false;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'j') as_json = true;
        else if (o == 'h') {
            usage(stdout);
            return 0;
        } else if (!client_option(&c, o, optarg)) {
            usage(stderr);
            return 2;
        }
    }
    if (optind + 1 < argc) {
        usage(stderr);
        return 2;
    }
    if (client_resolve(&c)) return 2;
    char path[512];
    buf id_enc;
    buf_init(&id_enc);
    if (optind < argc) {
        client_url_encode(&id_enc, argv[optind]);
        snprintf(path, sizeof path, "/v1/agents/%.400s", buf_cstr(&id_enc));
    } else {
        snprintf(path, sizeof path, "/v1/agents");
    }
    buf_fini(&id_enc);
    buf out, tmp;
    buf_init(&out);
    buf_init(&tmp);
    long status = 0;
    int rc = 0;
    if (client_request(&c, "GET", path, NULL, &out, &status)) rc = 1;
    else if (status != 200) rc = client_report_error("agents", status, &out);
    else if (as_json) {
        fwrite(out.data, 1, out.len, stdout);
        putchar('\n');
    } else {
        json_parser *p = json_parser_create();
        arena a;
        arena_init(&a, 64 * 1024);
        json_value v;
        json_error jerr;
        if (json_parse(p, &a, out.data, out.len, &v, &jerr) == 0 && v.type == JSON_OBJECT) {
            const json_value *list = json_object_get(&v, "agents", 6);
            printf("%-24s %-18s %-14s %-7s %-27s %s\n", "id", "agent_hash", "last_acked_seq", "online", "last_seen",
                   "address");
            uint32_t n = list && list->type == JSON_ARRAY ? list->len : 1;
            for (uint32_t i = 0; i < n; i++) {
                const json_value *ag = list ? &list->items[i] : &v;
                field(&tmp, ag, "id", 24);
                field(&tmp, ag, "agent_hash", 18);
                field(&tmp, ag, "last_acked_seq", 14);
                field(&tmp, ag, "online", 7);
                field(&tmp, ag, "last_seen", 27);
                field(&tmp, ag, "address", 0);
                putchar('\n');
            }
        }
        arena_fini(&a);
        json_parser_destroy(p);
    }
    buf_fini(&out);
    buf_fini(&tmp);
    return rc;
}

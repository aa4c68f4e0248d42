/* cli/cmd_tree.c — `mamorictl tree ENTITY_ID [--depth N] [--json]`: GET /v1/process-tree,
 * printed as an indented tree (ancestors above the process, descendants below). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "core/arena.h"
#include "core/json.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: mamorictl tree ENTITY_ID [--depth N] [--from TIME] [--to TIME] [--json]\n" CLIENT_OPTIONS_HELP);
}

static void line(const json_value *n, int indent, const char *mark, buf *tmp)
{
    const char *keys[] = {"process.name", "process.pid", "process.entity_id", "process.command_line"};
    printf("%*s%s", indent * 2, "", mark);
    for (size_t i = 0; i < 4; i++) {
        const json_value *v = json_object_get(n, keys[i], strlen(keys[i]));
        if (!v) continue;
        buf_clear(tmp);
        if (v->type == JSON_STRING) buf_append(tmp, v->str, v->len);
        else json_write_value(tmp, v);
        printf(i == 0 ? "%s" : i == 1 ? " [%s]" : "  %s", buf_cstr(tmp));
    }
    putchar('\n');
}

static void children(const json_value *n, int indent, buf *tmp)
{
    const json_value *ch = json_object_get(n, "children", 8);
    for (uint32_t i = 0; ch && ch->type == JSON_ARRAY && i < ch->len; i++) {
        line(&ch->items[i], indent, "└─ ", tmp);
        children(&ch->items[i], indent + 1, tmp);
    }
}

int cmd_tree(int argc, char **argv)
{
    static const struct option opts[] = {{"depth", required_argument, NULL, 'd'}, {"from", required_argument, NULL, 'f'},
                                         {"to", required_argument, NULL, 't'},    {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},        CLIENT_LONG_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    cli_client c = {0};
    const char *depth = NULL, *from = NULL, *to = NULL;
    bool as_json = false;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'd': depth = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'j': as_json = true; break;
        case 'h': usage(stdout); return 0;
        default:
            if (!client_option(&c, o, optarg)) {
                usage(stderr);
                return 2;
            }
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return 2;
    }
    if (client_resolve(&c)) return 2;
    buf path, out, tmp;
    buf_init(&path);
    buf_init(&out);
    buf_init(&tmp);
    buf_puts(&path, "/v1/process-tree?entity_id=");
    client_url_encode(&path, argv[optind]);
    if (depth) buf_puts(&path, "&depth="), client_url_encode(&path, depth);
    if (from) buf_puts(&path, "&from="), client_url_encode(&path, from);
    if (to) buf_puts(&path, "&to="), client_url_encode(&path, to);
    long status = 0;
    int rc = 0;
    if (client_request(&c, "GET", buf_cstr(&path), NULL, &out, &status)) rc = 1;
    else if (status != 200) rc = client_report_error("tree", status, &out);
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
            const json_value *anc = json_object_get(&v, "ancestors", 9);
            int indent = 0;
            for (int i = anc && anc->type == JSON_ARRAY ? (int)anc->len - 1 : -1; i >= 0; i--)
                line(&anc->items[i], indent++, "", &tmp);
            const json_value *proc = json_object_get(&v, "process", 7);
            if (proc) {
                line(proc, indent, "▶ ", &tmp);
                children(proc, indent + 1, &tmp);
            }
        }
        arena_fini(&a);
        json_parser_destroy(p);
    }
    buf_fini(&path);
    buf_fini(&out);
    buf_fini(&tmp);
    return rc;
}

/* cli/cmd_store.c — `mamorictl store …`: offline inspection of a data directory (counts,
 * index lookups, single events, storage figures). Used by operators and by the
 * integration tests to check "every event stored exactly once". */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/clock.h"
#include "core/event.h"
#include "core/json.h"
#include "store/store.h"

typedef struct store_args {
    char data[1200];
    const char *tenant;
    const char *field;
    const char *values[4096];
    size_t value_count;
    const char *id;
    int64_t from_us, to_us;
    bool prefix, list, compact;
} store_args;

static void store_usage(FILE *out)
{
    fprintf(out,
            "usage: mamorictl store count  (--data DIR | --dev DIR) [--tenant T] [--from TIME] [--to TIME]\n"
            "       mamorictl store lookup (--data DIR | --dev DIR) --tenant T --field F --value V [--prefix] [--list]\n"
            "       mamorictl store get    (--data DIR | --dev DIR) --tenant T --id EVENT_ID\n"
            "       mamorictl store stats  (--data DIR | --dev DIR) [--compact]\n"
            "TIME is RFC 3339. Indexed fields: host.id host.name user.name process.entity_id\n"
            "process.parent.entity_id process.name process.executable process.hash.* source.ip\n"
            "destination.ip dns.question.name file.path event.category\n");
}

static int parse_time(const char *s, int64_t *out)
{
    if (clock_parse_rfc3339(s, strlen(s), out) != 0) {
        fprintf(stderr, "mamorictl: '%s' is not an RFC 3339 time\n", s);
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, store_args *a)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},  {"dev", required_argument, NULL, 'D'},
        {"tenant", required_argument, NULL, 't'}, {"field", required_argument, NULL, 'f'},
        {"value", required_argument, NULL, 'v'},  {"id", required_argument, NULL, 'i'},
        {"from", required_argument, NULL, 'F'},   {"to", required_argument, NULL, 'T'},
        {"prefix", no_argument, NULL, 'p'},       {"list", no_argument, NULL, 'l'},
        {"compact", no_argument, NULL, 'c'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    a->from_us = INT64_MIN;
    a->to_us = INT64_MAX;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'd': snprintf(a->data, sizeof a->data, "%s", optarg); break;
        case 'D': snprintf(a->data, sizeof a->data, "%s/data", optarg); break;
        case 't': a->tenant = optarg; break;
        case 'f': a->field = optarg; break;
        case 'v':
            if (a->value_count == sizeof a->values / sizeof a->values[0]) {
                fprintf(stderr, "mamorictl: too many --value options\n");
                return 2;
            }
            a->values[a->value_count++] = optarg;
            break;
        case 'i': a->id = optarg; break;
        case 'F':
            if (parse_time(optarg, &a->from_us)) return 2;
            break;
        case 'T':
            if (parse_time(optarg, &a->to_us)) return 2;
            break;
        case 'p': a->prefix = true; break;
        case 'l': a->list = true; break;
        case 'c': a->compact = true; break;
        case 'h': store_usage(stdout); return 1;
        default: store_usage(stderr); return 2;
        }
    }
    if (!a->data[0]) {
        fprintf(stderr, "mamorictl: --data DIR or --dev DIR is required\n");
        return 2;
    }
    return 0;
}

static int open_store(const store_args *a, store **db)
{
    store_options so;
    store_options_default(&so);
    so.path = a->data;
    char err[512];
    if (store_open(&so, db, err, sizeof err) != 0) {
        fprintf(stderr, "mamorictl: cannot open %s: %s\n", a->data, err);
        return 1;
    }
    return 0;
}

static int print_ref(void *ctx, const store_event_ref *ref)
{
    uint64_t *n = ctx;
    char id[EVENT_ID_HEX_CHARS + 1];
    event_id_format(ref->ts_us, ref->agent_hash, ref->seq, ref->index, id);
    printf("%s\n", id);
    (*n)++;
    return 0;
}

static int count_ref(void *ctx, const store_event_ref *ref)
{
    (void)ref;
    (*(uint64_t *)ctx)++;
    return 0;
}

int cmd_store(int argc, char **argv)
{
    if (argc < 2) {
        store_usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    store_args a;
    int rc = parse_args(argc - 1, argv + 1, &a);
    if (rc) return rc == 1 ? 0 : rc;
    store *db;
    if (open_store(&a, &db)) return 1;
    int exit_code = 0;
    if (!strcmp(sub, "count")) {
        uint64_t n = 0;
        rc = store_count_events(db, a.tenant, a.from_us, a.to_us, &n);
        if (rc) {
            fprintf(stderr, "mamorictl: count failed: %s\n", strerror(-rc));
            exit_code = 1;
        } else {
            printf("{\"events\":%llu}\n", (unsigned long long)n);
        }
    } else if (!strcmp(sub, "lookup")) {
        enum store_index_field f = a.field ? store_index_field_for_path(a.field, strlen(a.field)) : 0;
        if (!a.tenant || !a.value_count || !f) {
            fprintf(stderr, "mamorictl: lookup needs --tenant, --value and an indexed --field\n");
            exit_code = 2;
        } else {
            /* One value: {"events":N}. Several: also "by_value" with each count. */
            uint64_t total = 0;
            buf by;
            buf_init(&by);
            for (size_t i = 0; i < a.value_count && !exit_code; i++) {
                uint64_t n = 0;
                const char *v = a.values[i];
                rc = store_index_lookup(db, a.tenant, f, v, strlen(v), a.prefix, a.from_us, a.to_us,
                                        a.list ? print_ref : count_ref, &n);
                if (rc) {
                    fprintf(stderr, "mamorictl: lookup %s failed: %s\n", v, strerror(-rc));
                    exit_code = 1;
                }
                total += n;
                buf_puts(&by, i ? "," : "");
                json_write_string(&by, v, strlen(v));
                buf_printf(&by, ":%llu", (unsigned long long)n);
            }
            if (!exit_code && !a.list) {
                if (a.value_count == 1) printf("{\"events\":%llu}\n", (unsigned long long)total);
                else printf("{\"events\":%llu,\"by_value\":{%.*s}}\n", (unsigned long long)total, (int)by.len, by.data);
            }
            buf_fini(&by);
        }
    } else if (!strcmp(sub, "get")) {
        int64_t ts;
        uint64_t agent, seq;
        uint32_t index;
        if (!a.tenant || !a.id || event_id_parse(a.id, strlen(a.id), &ts, &agent, &seq, &index) != 0) {
            fprintf(stderr, "mamorictl: get needs --tenant and a valid --id (56 hex characters)\n");
            exit_code = 2;
        } else {
            buf json;
            buf_init(&json);
            rc = store_get_event(db, event_tenant_hash(a.tenant), ts, agent, seq, index, &json);
            if (rc == -ENOENT) {
                fprintf(stderr, "mamorictl: no event %s in tenant %s\n", a.id, a.tenant);
                exit_code = 1;
            } else if (rc) {
                fprintf(stderr, "mamorictl: get failed: %s\n", strerror(-rc));
                exit_code = 1;
            } else {
                printf("%.*s\n", (int)json.len, json.data);
            }
            buf_fini(&json);
        }
    } else if (!strcmp(sub, "stats")) {
        if (a.compact && (rc = store_compact_all(db)) != 0) {
            fprintf(stderr, "mamorictl: compaction failed: %s\n", strerror(-rc));
            exit_code = 1;
        }
        uint64_t n = 0;
        if (!exit_code && (rc = store_count_events(db, NULL, INT64_MIN, INT64_MAX, &n)) != 0) exit_code = 1;
        store_stats st;
        store_get_stats(db, &st);
        printf("{\"events\":%llu,\"events_sst_bytes\":%llu,\"index_sst_bytes\":%llu,\"total_sst_bytes\":%llu,"
               "\"bytes_per_event\":%.1f,\"event_bytes_per_event\":%.1f,\"index_bytes_per_event\":%.1f}\n",
               (unsigned long long)n, (unsigned long long)st.events_sst_bytes, (unsigned long long)st.index_sst_bytes,
               (unsigned long long)st.total_sst_bytes, n ? (double)st.total_sst_bytes / (double)n : 0.0,
               n ? (double)st.events_sst_bytes / (double)n : 0.0, n ? (double)st.index_sst_bytes / (double)n : 0.0);
    } else {
        fprintf(stderr, "mamorictl: unknown store command '%s'\n", sub);
        store_usage(stderr);
        exit_code = 2;
    }
    store_close(db);
    return exit_code;
}

/* api/fanout_rules.c — POST /v1/rules/test behind `api.shards`: the request is checked and its
 * rules compiled here (so a bad rule is answered with every problem, as on one node), then sent
 * to every store shard in parallel and the answers merged into what one store holding all the
 * data answers: totals summed, matches ordered by event id (time, agent, seq, index — the
 * single node's scan order), correlation alerts by the event that completed them, each list cut
 * at `limit`. A correlation not grouped by the host is refused: its matches span shards and
 * each shard would see only its own hosts' part (docs/scaling.md §6). */
#include "fanout_internal.h"

#include "detect/correlate.h"

#include <stdlib.h>
#include <string.h>

typedef struct row {
    const json_value *v;
    const char *key; /* event id (matches) or the completing event's id (correlation alerts) */
    size_t key_len;
    uint32_t shard, pos;
} row;

static int row_cmp(const void *x, const void *y)
{
    const row *a = x, *b = y;
    int c = memcmp(a->key, b->key, MAMORI_MIN(a->key_len, b->key_len));
    if (c) return c;
    if (a->key_len != b->key_len) return a->key_len < b->key_len ? -1 : 1;
    if (a->shard != b->shard) return a->shard < b->shard ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static const json_value *path2(const json_value *v, const char *a, const char *b)
{
    const json_value *x = json_object_get(v, a, strlen(a));
    return x && b ? json_object_get(x, b, strlen(b)) : x;
}

static bool match_key(const json_value *m, row *r)
{
    const json_value *id = path2(m, "event", "id");
    if (!json_is_string(id)) return false;
    r->key = id->str;
    r->key_len = id->len;
    return true;
}

static bool corr_key(const json_value *m, row *r)
{
    const json_value *ids = path2(m, "correlation", "events");
    if (!ids || ids->type != JSON_ARRAY || !ids->len || !json_is_string(&ids->items[ids->len - 1])) return false;
    r->key = ids->items[ids->len - 1].str;
    r->key_len = ids->items[ids->len - 1].len;
    return true;
}

static uint64_t u64_of(const json_value *v)
{
    return v && v->type == JSON_NUMBER && (v->flags & JSON_FLAG_INT) && v->num.i > 0 ? (uint64_t)v->num.i : 0;
}

/* The rows named `name` of every answer, ordered and cut at limit, as a JSON array. */
static bool merge_rows(buf *o, const json_value *roots, uint32_t n, const char *name,
                       bool (*key)(const json_value *, row *), uint32_t limit)
{
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        const json_value *l = json_object_get(&roots[i], name, strlen(name));
        if (!l || l->type != JSON_ARRAY) return false;
        total += l->len;
    }
    row *rows = mamori_xcalloc(total ? total : 1, sizeof *rows);
    size_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        const json_value *l = json_object_get(&roots[i], name, strlen(name));
        for (uint32_t j = 0; j < l->len; j++) {
            rows[k] = (row){.v = &l->items[j], .shard = i, .pos = j};
            if (!key(&l->items[j], &rows[k])) {
                free(rows);
                return false;
            }
            k++;
        }
    }
    qsort(rows, total, sizeof *rows, row_cmp);
    buf_putc(o, '[');
    for (size_t i = 0; i < total && i < limit; i++) {
        if (i) buf_putc(o, ',');
        json_write_value(o, rows[i].v);
    }
    buf_putc(o, ']');
    free(rows);
    return true;
}

void fanout_rules_test(api_req *r)
{
    rules_req q;
    if (!rules_test_prepare(r, &q)) {
        rules_test_release(&q);
        return;
    }
    for (size_t i = 0; i < correlate_set_count(q.corr); i++) {
        const correlate_rule *c = correlate_set_rule(q.corr, i);
        if (correlate_rule_grouped_by_host(c)) continue;
        reply_error(r, 400, "bad_rule",
                    "correlation '%s' (line %u) is not grouped by the host (host.id, host.name, mamori.agent_id, "
                    "Computer): its matches span the store shards, each of which would see only its own hosts' "
                    "part; group it by the host, or test it on a single node",
                    c->info.title, c->info.line);
        rules_test_release(&q);
        return;
    }
    uint32_t n = r->a->cfg->api.shards.count;
    shard_call *calls = fanout_calls_new(r->a);
    for (uint32_t i = 0; i < n; i++) {
        fanout_call_url(&calls[i], "/v1/rules/test");
        buf_append(&calls[i].req, q.text.data, q.text.len);
    }
    fanout_calls_run(r, "POST", calls, n);
    json_parser *p = json_parser_create();
    arena *ars = mamori_xcalloc(n, sizeof *ars);
    json_value *roots = mamori_xcalloc(n, sizeof *roots);
    for (uint32_t i = 0; i < n; i++) arena_init(&ars[i], 16 * 1024);
    bool complete = true;
    uint64_t scanned = 0, unreadable = 0, matches = 0, corr = 0;
    uint64_t st[6] = {0};
    static const char *const st_names[6] = {"matches", "missing_field", "not_numeric", "evicted_keys", "evicted_events",
                                            "keys"};
    double elapsed = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (fanout_call_failed(r, &calls[i], p, &ars[i])) goto out;
        json_error jerr;
        char *t = arena_alloc(&ars[i], calls[i].out.len + 1);
        memcpy(t, calls[i].out.data ? calls[i].out.data : "", calls[i].out.len);
        t[calls[i].out.len] = '\0';
        if (json_parse(p, &ars[i], t, calls[i].out.len, &roots[i], &jerr) != 0 || roots[i].type != JSON_OBJECT) {
            reply_error(r, 502, "shard_error", "store shard %u (%s): its answer is not a JSON object", i,
                        calls[i].base);
            goto out;
        }
        const json_value *c = json_object_get(&roots[i], "complete", 8);
        complete = complete && c && c->type == JSON_BOOL && c->num.b;
        scanned += u64_of(json_object_get(&roots[i], "events_scanned", 14));
        unreadable += u64_of(json_object_get(&roots[i], "events_unreadable", 17));
        matches += u64_of(json_object_get(&roots[i], "matches_total", 13));
        corr += u64_of(json_object_get(&roots[i], "correlation_alerts_total", 24));
        const json_value *e = json_object_get(&roots[i], "elapsed_ms", 10);
        if (e && e->type == JSON_NUMBER)
            elapsed = MAMORI_MAX(elapsed, (e->flags & JSON_FLAG_INT) ? (double)e->num.i : e->num.d);
        for (int k = 0; k < 6; k++) st[k] += u64_of(path2(&roots[i], "correlation_stats", st_names[k]));
    }
    buf *o = &r->body;
    buf_clear(o);
    buf_printf(o, "{\"complete\":%s,\"events_scanned\":%llu,\"events_unreadable\":%llu,\"elapsed_ms\":%.1f,",
               complete ? "true" : "false", (unsigned long long)scanned, (unsigned long long)unreadable, elapsed);
    buf_printf(o, "\"rules\":{\"loaded\":%u,\"correlations\":%u,\"skipped\":%u},", q.report->loaded,
               q.report->correlations, q.report->skipped);
    buf_printf(o, "\"matches_total\":%llu,\"matches\":", (unsigned long long)matches);
    bool ok = merge_rows(o, roots, n, "matches", match_key, q.limit);
    buf_printf(o, ",\"correlation_alerts_total\":%llu,\"correlation_alerts\":", (unsigned long long)corr);
    ok = ok && merge_rows(o, roots, n, "correlation_alerts", corr_key, q.limit);
    if (!ok) {
        buf_clear(o);
        reply_error(r, 502, "shard_error", "a store shard's retro-hunt answer lacks its matches or alerts");
        goto out;
    }
    buf_puts(o, ",\"correlation_stats\":{");
    for (int k = 0; k < 6; k++) buf_printf(o, "%s\"%s\":%llu", k ? "," : "", st_names[k], (unsigned long long)st[k]);
    buf_printf(o, "},\"shards\":%u}", n);
    r->rows = matches + corr;
    reply_json(r, 200);
out:
    for (uint32_t i = 0; i < n; i++) arena_fini(&ars[i]);
    free(ars);
    free(roots);
    json_parser_destroy(p);
    fanout_calls_free(calls, n);
    rules_test_release(&q);
}

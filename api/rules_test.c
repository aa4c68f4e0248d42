/* api/rules_test.c — POST /v1/rules/test: a retro-hunt. The request's Sigma YAML (single-event
 * rules and correlations, multi-document) is loaded and compiled like the server's rule set,
 * then run over the key's tenant's stored events in [from, to) in time order with the same
 * engines as live detection (detect_eval, then the correlation engine fed in event-time
 * order); what would have fired is returned, nothing is alerted or stored. */
#include "internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "detect/correlate.h"
#include "detect/detect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULES_TEST_DEFAULT_LIMIT 100u
#define RULES_TEST_PROBLEMS_MAX 100u

typedef struct hunt {
    api_req *r;
    const correlate_set *corr;
    correlate_engine *engine;
    detect_worker *worker;
    json_parser *parser;
    normalizer *norm;
    arena arena;
    char tenant[80];
    uint32_t limit;
    int64_t deadline_us;
    bool timed_out;
    uint64_t events, unreadable, matches_total, corr_total;
    buf matches; /* JSON array members */
    uint32_t matches_listed;
    buf corr_alerts;
    uint32_t corr_listed;
} hunt;

static void on_correlation(void *ctx, const correlate_alert *a)
{
    hunt *h = ctx;
    if (!a->emit) return;
    h->corr_total++;
    if (h->corr_listed >= h->limit) return;
    if (h->corr_listed++) buf_putc(&h->corr_alerts, ',');
    buf_puts(&h->corr_alerts, "{\"rule\":");
    detect_rule_write_json(&h->corr_alerts, &a->rule->info);
    buf_puts(&h->corr_alerts, ",\"correlation\":");
    correlate_alert_write_json(&h->corr_alerts, a);
    buf_putc(&h->corr_alerts, '}');
}

static void list_match(hunt *h, const detect_rule *rule, const mamori_event *ev, const char *agent_id,
                       const char *event_id)
{
    h->matches_total++;
    if (h->matches_listed >= h->limit) return;
    if (h->matches_listed++) buf_putc(&h->matches, ',');
    char t[32];
    clock_format_rfc3339(ev->ts_us, t);
    buf_printf(&h->matches, "{\"time\":\"%s\",\"agent_id\":", t);
    json_write_string(&h->matches, agent_id, strlen(agent_id));
    buf_printf(&h->matches, ",\"event\":{\"id\":\"%s\"},\"rule\":", event_id);
    detect_rule_write_json(&h->matches, rule);
    buf_putc(&h->matches, '}');
}

static int visit(void *ctx, const store_event_ref *ref, const char *json, size_t len)
{
    hunt *h = ctx;
    if ((h->events & 1023) == 0 && clock_wall_us() > h->deadline_us) {
        h->timed_out = true;
        return 1;
    }
    h->events++;
    arena_reset(&h->arena);
    json_value root;
    json_error jerr;
    if (json_parse(h->parser, &h->arena, json, len, &root, &jerr) != 0 || root.type != JSON_OBJECT) {
        h->unreadable++;
        return 0;
    }
    const json_value *m = json_object_get(&root, "mamori", 6);
    const json_value *agent = m ? json_object_get(m, "agent_id", 8) : NULL;
    const json_value *received = m ? json_object_get(m, "received", 8) : NULL;
    int64_t received_us = 0;
    if (!json_is_string(agent) || !json_is_string(received) ||
        clock_parse_rfc3339(received->str, received->len, &received_us) != 0) {
        h->unreadable++;
        return 0;
    }
    char *agent_id = arena_strndup(&h->arena, agent->str, agent->len);
    /* the stored JSON is the normalized event: read back as ECS it gives the same fields */
    event_stamp stamp = {.tenant = h->tenant, .agent_id = agent_id, .agent_hash = ref->agent_hash, .seq = ref->seq,
                         .received_us = received_us};
    mamori_event ev;
    char err[128];
    if (normalize_event(h->norm, &h->arena, EVENT_FORMAT_ECS, &root, &stamp, ref->index, &ev, err, sizeof err) != 0) {
        h->unreadable++;
        return 0;
    }
    ev.ts_us = ref->ts_us;
    const detect_match *matches;
    size_t n = detect_eval(h->worker, &ev, &matches);
    if (!n) return 0;
    char eid[EVENT_ID_HEX_CHARS + 1];
    event_id_format(ref->ts_us, ref->agent_hash, ref->seq, ref->index, eid);
    for (size_t i = 0; i < n; i++) {
        const detect_rule *rule = matches[i].rule;
        if (correlate_set_uses_rule(h->corr, rule))
            correlate_engine_feed_event(h->engine, rule, &ev, ref->ts_us, eid, on_correlation, h);
        if (correlate_set_rule_standalone(h->corr, rule)) list_match(h, rule, &ev, agent_id, eid);
    }
    return 0;
}

static void write_problems(buf *out, const detect_report *rep)
{
    buf_putc(out, '[');
    uint32_t listed = 0;
    for (size_t i = 0; i < rep->problem_count && listed < RULES_TEST_PROBLEMS_MAX; i++) {
        const detect_problem *p = &rep->problems[i];
        if (listed++) buf_putc(out, ',');
        buf_printf(out, "{\"line\":%u,\"reason\":", p->line);
        const char *reason = detect_reason_name(p->reason);
        json_write_string(out, reason, strlen(reason));
        buf_puts(out, ",\"message\":");
        json_write_string(out, p->message, strlen(p->message));
        buf_putc(out, '}');
    }
    buf_putc(out, ']');
}

bool rules_test_prepare(api_req *r, rules_req *q)
{
    api *a = r->a;
    memset(q, 0, sizeof *q);
    q->p = json_parser_create();
    arena_init(&q->ar, 16 * 1024);
    buf_init(&q->text);
    const json_value *body = q->body = read_json_body(r, q->p, &q->ar, &q->text);
    if (!body) return false;
    static const char *const allowed[] = {"rule", "from", "to", "limit"};
    for (uint32_t i = 0; i < body->len; i++) {
        const json_member *m = &body->members[i];
        bool ok = false;
        for (size_t k = 0; k < MAMORI_ARRAY_LEN(allowed) && !ok; k++)
            ok = m->key_len == strlen(allowed[k]) && !memcmp(m->key, allowed[k], m->key_len);
        if (!ok) {
            reply_error(r, 400, "bad_request", "unknown field '%.*s' (rule, from, to, limit)", (int)MAMORI_MIN(m->key_len, 64u),
                        m->key);
            return false;
        }
    }
    const json_value *rule = json_object_get(body, "rule", 4);
    if (!json_is_string(rule) || rule->len == 0) {
        reply_error(r, 400, "bad_request", "'rule' must be the Sigma YAML of one or more rules (a non-empty string)");
        return false;
    }
    const json_value *from = json_object_get(body, "from", 4), *to = json_object_get(body, "to", 2);
    if (!json_is_string(from) || clock_parse_rfc3339(from->str, from->len, &q->from_us) != 0 || !json_is_string(to) ||
        clock_parse_rfc3339(to->str, to->len, &q->to_us) != 0) {
        reply_error(r, 400, "bad_request", "'from' and 'to' must be RFC 3339 times such as 2024-03-01T00:00:00Z");
        return false;
    }
    if (q->from_us >= q->to_us) {
        reply_error(r, 400, "bad_request", "'from' must be before 'to'");
        return false;
    }
    q->limit = RULES_TEST_DEFAULT_LIMIT;
    const json_value *limit = json_object_get(body, "limit", 5);
    if (limit) {
        int64_t v = limit->type == JSON_NUMBER && (limit->flags & JSON_FLAG_INT) ? limit->num.i : -1;
        if (v < 1 || v > (int64_t)a->cfg->api.max_result_rows) {
            reply_error(r, 400, "bad_request", "'limit' must be an integer from 1 to %u", a->cfg->api.max_result_rows);
            return false;
        }
        q->limit = (uint32_t)v;
    }

    /* load and compile, as the server's rule set (correlations on) */
    detect_options opt;
    detect_options_default(&opt);
    opt.correlations = true;
    opt.compile_threads = 1;
    opt.rules_max = a->cfg->detect.max_rules;
    q->loader = detect_loader_create(&opt);
    detect_loader_add_text(q->loader, "rule", rule->str, rule->len);
    char err[512];
    if (detect_loader_build(q->loader, &q->rs, err, sizeof err) != 0) {
        reply_error(r, 400, "bad_rule", "the rules cannot be built: %s", err);
        return false;
    }
    if (correlate_set_build(q->loader, q->rs, &q->corr) != 0) {
        reply_error(r, 400, "bad_rule", "the correlations cannot be built");
        return false;
    }
    const detect_report *rep = q->report = detect_loader_report(q->loader);
    if (rep->rejected || (rep->loaded == 0 && rep->correlations == 0)) {
        buf_printf(&r->body, "{\"error\":{\"code\":\"bad_rule\",\"message\":\"%s\",\"problems\":",
                   rep->rejected ? "rules rejected (each problem names its line in the request's YAML)"
                                 : "no rule or correlation to run");
        write_problems(&r->body, rep);
        buf_puts(&r->body, "}}");
        reply_json(r, 400);
        return false;
    }
    return true;
}

void rules_test_release(rules_req *q)
{
    correlate_set_destroy(q->corr);
    detect_ruleset_unref(q->rs);
    detect_loader_destroy(q->loader);
    buf_fini(&q->text);
    arena_fini(&q->ar);
    json_parser_destroy(q->p);
    memset(q, 0, sizeof *q);
}

void handle_rules_test(api_req *r)
{
    api *a = r->a;
    rules_req q;
    hunt h = {.r = r};
    buf_init(&h.matches);
    buf_init(&h.corr_alerts);
    if (!rules_test_prepare(r, &q)) goto out;
    h.limit = q.limit;
    h.corr = q.corr;
    h.worker = detect_worker_create();
    if (detect_worker_bind(h.worker, q.rs) != 0) {
        reply_error(r, 503, "overloaded", "cannot allocate matching memory; retry shortly");
        goto out;
    }
    correlate_options copt;
    correlate_options_default(&copt);
    copt.keys_max = a->cfg->detect.correlation_max_keys;
    copt.events_per_key_max = a->cfg->detect.correlation_max_events_per_key;
    copt.lateness_us = (int64_t)a->cfg->detect.correlation_lateness_s * 1000000; /* time order: never late */
    h.engine = correlate_engine_create(q.corr, &copt);
    h.parser = json_parser_create();
    h.norm = normalizer_create();
    arena_init(&h.arena, 64 * 1024);
    snprintf(h.tenant, sizeof h.tenant, "%s", r->tenant);
    int64_t t0 = clock_mono_us();
    h.deadline_us = clock_wall_us() + (int64_t)a->cfg->api.query_deadline_ms * 1000;
    int rc = store_scan_events(a->db, r->tenant, q.from_us, q.to_us, visit, &h);
    if (rc < 0) {
        reply_error(r, 500, "internal", "reading the events failed: %s", strerror(-rc));
        goto out;
    }
    const detect_report *rep = q.report;
    correlate_stats st;
    correlate_engine_stats(h.engine, SIZE_MAX, &st);
    buf *o = &r->body;
    buf_printf(o, "{\"complete\":%s,\"events_scanned\":%llu,\"events_unreadable\":%llu,\"elapsed_ms\":%.1f,",
               h.timed_out ? "false" : "true", (unsigned long long)h.events, (unsigned long long)h.unreadable,
               (double)(clock_mono_us() - t0) / 1000.0);
    buf_printf(o, "\"rules\":{\"loaded\":%u,\"correlations\":%u,\"skipped\":%u},", rep->loaded, rep->correlations,
               rep->skipped);
    buf_printf(o, "\"matches_total\":%llu,\"matches\":[", (unsigned long long)h.matches_total);
    buf_append(o, h.matches.data, h.matches.len);
    buf_printf(o, "],\"correlation_alerts_total\":%llu,\"correlation_alerts\":[", (unsigned long long)h.corr_total);
    buf_append(o, h.corr_alerts.data, h.corr_alerts.len);
    buf_printf(o,
               "],\"correlation_stats\":{\"matches\":%llu,\"missing_field\":%llu,\"not_numeric\":%llu,"
               "\"evicted_keys\":%llu,\"evicted_events\":%llu,\"keys\":%llu}}",
               (unsigned long long)st.matches, (unsigned long long)st.missing_field,
               (unsigned long long)st.not_numeric, (unsigned long long)st.evicted_keys,
               (unsigned long long)st.evicted_events, (unsigned long long)st.keys);
    r->rows = h.matches_total + h.corr_total;
    reply_json(r, 200);
out:
    if (h.parser) {
        arena_fini(&h.arena);
        json_parser_destroy(h.parser);
        normalizer_destroy(h.norm);
    }
    correlate_engine_destroy(h.engine);
    detect_worker_destroy(h.worker);
    rules_test_release(&q);
    buf_fini(&h.matches);
    buf_fini(&h.corr_alerts);
}

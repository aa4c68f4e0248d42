/* tests/fuzz/fuzz_normalize.c — agents choose every byte of an event: parse the input (one
 * or more concatenated JSON values) and normalize each value as auto, ecs and winlog,
 * checking the contract's invariants on every accepted event. Fresh arena per input; the
 * parser and normalizer are per-thread objects reused across inputs, as in ingest. */
#include "core/arena.h"
#include "core/event.h"
#include "core/json.h"
#include "core/logsource.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define VALUES_PER_INPUT_MAX 8

static void check(const mamori_event *ev, json_parser *p, arena *a)
{
    if (ev->field_count > EVENT_MAX_FIELDS || ev->ts_us < 0) abort();
    for (uint32_t i = 0; i < ev->field_count; i++) {
        const event_field *f = &ev->fields[i];
        if (f->path[f->path_len] != '\0' || !f->value) abort();
        if (event_get(ev, f->path, f->path_len) != f->value) abort(); /* sorted and unique */
        if (i) {
            const event_field *prev = &ev->fields[i - 1];
            size_t n = prev->path_len < f->path_len ? prev->path_len : f->path_len;
            int c = memcmp(prev->path, f->path, n);
            if (c > 0 || (c == 0 && prev->path_len >= f->path_len)) abort();
        }
    }
    if (!event_get_cstr(ev, "mamori.tenant") || event_get_cstr(ev, "mamori.event_id")) abort();
    json_value back;
    json_error err;
    if (ev->json[ev->json_len] != '\0' || json_parse(p, a, ev->json, ev->json_len, &back, &err) != 0) abort();
    if (back.type != JSON_OBJECT) abort();
    struct logsource_set ls;
    logsource_classify(ev, &ls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_parser *parser;
    static normalizer *norm;
    if (!parser) {
        parser = json_parser_create();
        norm = normalizer_create();
    }
    arena a;
    arena_init(&a, 16 * 1024);
    const char *text = (const char *)data;
    event_stamp stamp = {.tenant = "fuzz", .agent_id = "agent-f", .agent_hash = 1, .seq = 1,
                         .received_us = 1714566896000000LL, .max_past_us = 30LL * 86400 * 1000000,
                         .max_future_us = 300LL * 1000000};
    size_t pos = 0;
    for (int k = 0; k < VALUES_PER_INPUT_MAX; k++) {
        json_value v;
        json_error err;
        if (json_parse_next(parser, &a, text, size, &pos, &v, &err) != 0) break;
        static const enum event_format formats[] = {EVENT_FORMAT_AUTO, EVENT_FORMAT_ECS, EVENT_FORMAT_WINLOG};
        for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
            mamori_event ev;
            char reason[128];
            int rc = normalize_event(norm, &a, formats[i], &v, &stamp, (uint32_t)k, &ev, reason, sizeof reason);
            if (rc == 0) check(&ev, parser, &a);
            else if (rc != -EINVAL || reason[0] == '\0') abort();
        }
    }
    arena_fini(&a);
    return 0;
}

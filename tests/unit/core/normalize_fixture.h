/* tests/unit/core/normalize_fixture.h — the fixture and assertions shared by the
 * normalizer tests (test_normalize.c: formats and shapes; test_normalize_data.c: real data). */
#ifndef MAMORI_TEST_NORMALIZE_FIXTURE_H
#define MAMORI_TEST_NORMALIZE_FIXTURE_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/ecs_map.h"
#include "core/event.h"
#include "core/json.h"
#include "core/logsource.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RECEIVED_US 1714566896000000LL /* 2024-05-01T12:34:56Z */

struct fixture {
    json_parser *parser;
    normalizer *norm;
    arena arena;
    event_stamp stamp;
    char err[160];
};

static inline int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->parser = json_parser_create();
    f->norm = normalizer_create();
    arena_init(&f->arena, 1u << 20);
    f->stamp = (event_stamp){.tenant = "acme", .agent_id = "agent-7", .agent_hash = 7, .seq = 1,
                             .received_us = RECEIVED_US};
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    struct fixture *f = *state;
    arena_fini(&f->arena);
    normalizer_destroy(f->norm);
    json_parser_destroy(f->parser);
    free(f);
    return 0;
}

/* Parses text (copied into the arena so it outlives the call) and normalizes it. */
static inline int norm_text(struct fixture *f, enum event_format format, const char *text, mamori_event *ev)
{
    size_t len = strlen(text);
    char *copy = arena_strndup(&f->arena, text, len);
    json_value *v = arena_alloc(&f->arena, sizeof *v);
    json_error jerr;
    int rc = json_parse(f->parser, &f->arena, copy, len, v, &jerr);
    if (rc) fail_msg("test JSON does not parse: %s at %zu: %s", jerr.msg, jerr.offset, text);
    f->err[0] = '\0';
    rc = normalize_event(f->norm, &f->arena, format, v, &f->stamp, 3, ev, f->err, sizeof f->err);
    if (rc == 0) { /* every accepted event: the deferred JSON (normalize_event_json) is the same bytes */
        char err[160];
        mamori_event dv;
        normalizer_set_defer_json(f->norm, true);
        int drc = normalize_event(f->norm, &f->arena, format, v, &f->stamp, 3, &dv, err, sizeof err);
        normalizer_set_defer_json(f->norm, false);
        if (drc || dv.json || dv.field_count != ev->field_count) fail_msg("deferred normalization differs: %s", text);
        if (normalize_event_json(f->norm, &f->arena, &dv, err, sizeof err) || dv.json_len != ev->json_len ||
            memcmp(dv.json, ev->json, ev->json_len) != 0)
            fail_msg("deferred JSON differs: %s\n%.*s\n%.*s", text, (int)ev->json_len, ev->json, (int)dv.json_len,
                     dv.json ? dv.json : "");
    }
    return rc;
}

static inline mamori_event must_norm(struct fixture *f, enum event_format format, const char *text)
{
    mamori_event ev;
    int rc = norm_text(f, format, text, &ev);
    if (rc) fail_msg("rejected (%s): %s", f->err, text);
    return ev;
}

static inline void expect_reject(struct fixture *f, enum event_format format, const char *text, const char *reason)
{
    mamori_event ev;
    int rc = norm_text(f, format, text, &ev);
    if (rc != -EINVAL) fail_msg("expected rejection '%s', got rc %d for %s", reason, rc, text);
    if (!strstr(f->err, reason)) fail_msg("reason '%s' does not contain '%s'", f->err, reason);
}

static inline const json_value *get(const mamori_event *ev, const char *path) { return event_get_cstr(ev, path); }

static inline void assert_str(const mamori_event *ev, const char *path, const char *want)
{
    const json_value *v = get(ev, path);
    if (!v) fail_msg("%s missing in %s", path, ev->json);
    if (v->type != JSON_STRING || v->len != strlen(want) || memcmp(v->str, want, v->len) != 0)
        fail_msg("%s: want \"%s\" in %s", path, want, ev->json);
}

static inline void assert_int(const mamori_event *ev, const char *path, int64_t want)
{
    const json_value *v = get(ev, path);
    if (!v) fail_msg("%s missing in %s", path, ev->json);
    if (v->type != JSON_NUMBER || !(v->flags & JSON_FLAG_INT) || v->num.i != want)
        fail_msg("%s: want %" PRId64 " in %s", path, want, ev->json);
}

static inline void assert_absent(const mamori_event *ev, const char *path)
{
    if (get(ev, path)) fail_msg("%s should be absent in %s", path, ev->json);
}

static inline void assert_same_event(const mamori_event *a, const mamori_event *b)
{
    if (a->json_len != b->json_len || memcmp(a->json, b->json, a->json_len) != 0)
        fail_msg("events differ:\n  %s\n  %s", a->json, b->json);
    assert_int_equal(a->field_count, b->field_count);
    for (uint32_t i = 0; i < a->field_count; i++) {
        assert_int_equal(a->fields[i].path_len, b->fields[i].path_len);
        assert_memory_equal(a->fields[i].path, b->fields[i].path, a->fields[i].path_len);
    }
    assert_true(a->ts_us == b->ts_us);
}

/* Invariants of every normalized event: fields bytewise sorted and unique, NUL-terminated
 * paths, JSON that parses back into exactly these fields. */
static inline void check_invariants(struct fixture *f, const mamori_event *ev);

static inline void flatten_into(const json_value *v, char *path, size_t len, const char **paths, size_t *count, size_t cap)
{
    if (v->type != JSON_OBJECT) {
        assert_true(*count < cap);
        paths[(*count)++] = strndup(path, len);
        return;
    }
    for (uint32_t i = 0; i < v->len; i++) {
        const json_member *m = &v->members[i];
        size_t n = len;
        if (n) path[n++] = '.';
        memcpy(path + n, m->key, m->key_len);
        flatten_into(&m->value, path, n + m->key_len, paths, count, cap);
    }
}

static inline int cmp_cstr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static inline void check_invariants(struct fixture *f, const mamori_event *ev)
{
    assert_true(ev->field_count <= EVENT_MAX_FIELDS);
    assert_true(ev->ts_us >= 0);
    for (uint32_t i = 0; i < ev->field_count; i++) {
        const event_field *x = &ev->fields[i];
        assert_int_equal(x->path[x->path_len], '\0');
        assert_non_null(x->value);
        assert_true(event_get(ev, x->path, x->path_len) == x->value);
        /* what detection reads instead of the value and the path bytes */
        assert_int_equal(x->path_hash, event_path_hash(x->path, x->path_len));
        assert_int_equal(x->type, x->value->type);
        assert_int_equal((x->flags & EVENT_FIELD_SERVER) != 0, x->path_len >= 7 && memcmp(x->path, "mamori.", 7) == 0);
        const json_value *v = x->value;
        char digits[32];
        const char *text = NULL;
        size_t text_len = 0;
        if ((v->type == JSON_STRING || v->type == JSON_NUMBER) && v->str) {
            text = v->str;
            text_len = v->len;
        } else if (v->type == JSON_NUMBER && (v->flags & JSON_FLAG_INT)) {
            text_len = (size_t)snprintf(digits, sizeof digits, "%lld", (long long)v->num.i);
            text = digits;
        } else if (v->type == JSON_BOOL) {
            text = v->num.b ? "true" : "false";
            text_len = strlen(text);
        }
        if (!text) {
            assert_null(x->text);
        } else {
            assert_non_null(x->text);
            assert_int_equal(x->text_len, text_len);
            assert_memory_equal(x->text, text, text_len);
        }
        if (i) {
            const event_field *w = &ev->fields[i - 1];
            int c = memcmp(w->path, x->path, w->path_len < x->path_len ? w->path_len : x->path_len);
            assert_true(c < 0 || (c == 0 && w->path_len < x->path_len));
        }
    }
    assert_int_equal(ev->json[ev->json_len], '\0');
    json_value back;
    json_error jerr;
    if (json_parse(f->parser, &f->arena, ev->json, ev->json_len, &back, &jerr) != 0)
        fail_msg("output does not parse (%s): %s", jerr.msg, ev->json);
    static const char *paths[EVENT_MAX_FIELDS + 1];
    static char path[4096];
    size_t count = 0;
    flatten_into(&back, path, 0, paths, &count, EVENT_MAX_FIELDS + 1);
    assert_int_equal(count, ev->field_count);
    /* no path in these tests holds NUL, so strcmp order is bytewise order */
    qsort(paths, count, sizeof *paths, cmp_cstr);
    for (size_t i = 0; i < count; i++) {
        assert_string_equal(paths[i], ev->fields[i].path);
        free((void *)paths[i]);
    }
}

#endif

/* tests/unit/store/test_helpers.h — shared by the store unit tests: a scratch data
 * directory under /tmp, store options sized for tests, and mamori_event objects built by
 * hand from JSON text (fields flattened and sorted by path, as the normalizer does), so
 * the store tests do not depend on core/normalize.c. */
#ifndef MAMORI_TESTS_STORE_HELPERS_H
#define MAMORI_TESTS_STORE_HELPERS_H

#include "core/arena.h"
#include "core/event.h"
#include "core/json.h"
#include "store/store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 2024-03-01T00:00:00Z: a fixed base so day buckets are predictable. */
#define T_BASE_US 1709251200000000LL
#define T_DAY_US (86400LL * 1000000LL)

static int th_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Creates a fresh directory; returns an owned path. */
static inline char *th_tmpdir(void)
{
    char *dir = strdup("/tmp/mamori-store-test-XXXXXX");
    if (!dir || !mkdtemp(dir)) abort();
    return dir;
}

static inline void th_rmdir(char *dir)
{
    if (!dir) return;
    nftw(dir, th_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static inline void th_options(store_options *o, const char *dir)
{
    store_options_default(o);
    o->path = dir;
    o->sync = false;
    o->block_cache_bytes = 8u << 20;
    o->write_buffer_bytes = 4u << 20;
    o->index_slice_ms = 60000; /* tests flush explicitly */
    o->index_slice_max_bytes = 64u << 20;
}

static inline store *th_open(const store_options *o)
{
    store *s = NULL;
    char err[256] = "";
    int rc = store_open(o, &s, err, sizeof err);
    if (rc) {
        fprintf(stderr, "store_open: %d %s\n", rc, err);
        abort();
    }
    return s;
}

/* ---- events from JSON ---- */

typedef struct th_fields {
    event_field *v;
    uint32_t n, cap;
} th_fields;

static void th_flatten(arena *a, th_fields *out, const char *prefix, size_t plen, const json_value *v)
{
    if (v->type == JSON_OBJECT) {
        for (uint32_t i = 0; i < v->len; i++) {
            const json_member *m = &v->members[i];
            size_t n = plen ? plen + 1 + m->key_len : m->key_len;
            char *path = arena_alloc(a, n + 1);
            if (plen) {
                memcpy(path, prefix, plen);
                path[plen] = '.';
                memcpy(path + plen + 1, m->key, m->key_len);
            } else {
                memcpy(path, m->key, m->key_len);
            }
            path[n] = '\0';
            th_flatten(a, out, path, n, &m->value);
        }
        return;
    }
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 32;
        out->v = realloc(out->v, out->cap * sizeof *out->v);
    }
    out->v[out->n++] = (event_field){.path = prefix, .path_len = (uint32_t)plen, .value = v};
}

static int th_field_cmp(const void *a, const void *b)
{
    return strcmp(((const event_field *)a)->path, ((const event_field *)b)->path);
}

/* Builds an event from JSON text (copied into a). */
static inline void th_event(arena *a, json_parser *p, const char *json, int64_t ts_us, uint32_t index,
                            mamori_event *out)
{
    size_t len = strlen(json);
    char *text = arena_strndup(a, json, len);
    json_value *root = arena_alloc(a, sizeof *root);
    json_error err;
    if (json_parse(p, a, text, len, root, &err)) {
        fprintf(stderr, "bad test JSON at %zu: %s\n%s\n", err.offset, err.msg, json);
        abort();
    }
    th_fields f = {0};
    th_flatten(a, &f, "", 0, root);
    qsort(f.v, f.n, sizeof *f.v, th_field_cmp);
    event_field *fields = arena_memdup(a, f.v, (f.n ? f.n : 1) * sizeof *f.v);
    free(f.v);
    *out = (mamori_event){.ts_us = ts_us, .index = index, .field_count = f.n, .fields = fields, .json = text,
                          .json_len = (uint32_t)len};
}

static inline store_batch th_batch(const char *tenant, const char *agent, uint64_t seq, const mamori_event *events,
                                   uint32_t n)
{
    return (store_batch){.tenant = tenant,
                         .tenant_hash = event_tenant_hash(tenant),
                         .agent_id = agent,
                         .agent_hash = event_agent_hash(tenant, agent),
                         .seq = seq,
                         .events = events,
                         .event_count = n};
}

/* ---- collecting lookup results ---- */

typedef struct th_refs {
    store_event_ref v[4096];
    size_t n;
    size_t stop_after; /* 0: never */
} th_refs;

static inline int th_collect(void *ctx, const store_event_ref *ref)
{
    th_refs *r = ctx;
    if (r->n < sizeof r->v / sizeof r->v[0]) r->v[r->n] = *ref;
    r->n++;
    return r->stop_after && r->n >= r->stop_after;
}

#endif

/* api/fanout_search.c — POST /v1/search over the store shards (docs/scaling.md §6), merged
 * exactly as one store holding all the data would answer (see fanout.c for the whole picture). */
#include "fanout_internal.h"

#include "core/clock.h"
#include "core/event.h"
#include "core/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FANOUT_CURSOR_MAX (64u * 1024u)
#define FANOUT_CURSOR_PREFIX "m1"

/* ---- search ---- */


int fanout_key_cmp(const fanout_key *a, const fanout_key *b)
{
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    if (a->agent != b->agent) return a->agent < b->agent ? -1 : 1;
    if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
    if (a->index != b->index) return a->index < b->index ? -1 : 1;
    return 0;
}

/* The storage key of an event row, or of a sequence row's last event. */
bool fanout_event_key(const json_value *row, bool sequence, fanout_key *k)
{
    const json_value *ev = row;
    if (sequence) {
        const json_value *evs = json_object_get(row, "events", 6);
        if (!evs || evs->type != JSON_ARRAY || evs->len == 0) return false;
        ev = &evs->items[evs->len - 1];
    }
    const json_value *mm = ev && ev->type == JSON_OBJECT ? json_object_get(ev, "mamori", 6) : NULL;
    const json_value *id = mm && mm->type == JSON_OBJECT ? json_object_get(mm, "event_id", 8) : NULL;
    if (!json_is_string(id)) return false;
    return event_id_parse(id->str, id->len, &k->ts, &k->agent, &k->seq, &k->index) == 0;
}


typedef struct fan_req {
    const char *query;
    size_t query_len;
    int64_t from_us, to_us;
    uint32_t limit;
    uint64_t hash;
} fan_req;

static uint64_t fan_hash(const fan_req *f, uint32_t shards)
{
    buf b;
    buf_init(&b);
    buf_append(&b, f->query, f->query_len);
    buf_printf(&b, "\x1f%" PRId64 "\x1f%" PRId64 "\x1f%u", f->from_us, f->to_us, shards);
    uint64_t h = mamori_hash64(b.data, b.len);
    buf_fini(&b);
    return h;
}

static void shard_body(buf *out, const fan_req *f, uint64_t limit, const char *cursor, bool explain)
{
    char from[32], to[32];
    clock_format_rfc3339(f->from_us, from);
    clock_format_rfc3339(f->to_us, to);
    buf_clear(out);
    buf_puts(out, "{\"query\":");
    json_write_string(out, f->query, f->query_len);
    buf_printf(out, ",\"from\":\"%s\",\"to\":\"%s\",\"limit\":%" PRIu64, from, to, limit);
    if (cursor && cursor[0]) buf_printf(out, ",\"cursor\":\"%s\"", cursor);
    if (explain) buf_puts(out, ",\"explain\":true");
    buf_putc(out, '}');
}

/* Merged cursor: m1:HASH:FROM:TO:MODE:N then per shard :SKIP,STATE (STATE "-" start, "x"
 * done, else the shard's cursor; shard cursors are hex). MODE s = merge (N = rows still
 * allowed by head), o = offset (N = rows already returned). */

void fanout_cursor_write(buf *out, const fanout_cursor *c, const fanout_shard *st, uint32_t shards)
{
    buf_printf(out, FANOUT_CURSOR_PREFIX ":%016" PRIx64 ":%" PRId64 ":%" PRId64 ":%c:%" PRIu64, c->hash, c->from_us,
               c->to_us, c->mode, c->n);
    if (c->mode != 's') return;
    for (uint32_t i = 0; i < shards; i++) {
        const fanout_shard *s = &st[i];
        if (s->done) buf_puts(out, ":0,x");
        else buf_printf(out, ":%" PRIu64 ",%s", s->skip, s->cursor && s->cursor[0] ? s->cursor : "-");
    }
}

int fanout_cursor_read(const char *text, fanout_cursor *c, fanout_shard *st, uint32_t shards)
{
    if (strncmp(text, FANOUT_CURSOR_PREFIX ":", 3) != 0) return -EINVAL;
    const char *p = text + 3;
    char *end;
    errno = 0;
    c->hash = strtoull(p, &end, 16);
    if (end != p + 16 || *end != ':') return -EINVAL;
    p = end + 1;
    c->from_us = strtoll(p, &end, 10);
    if (end == p || *end != ':') return -EINVAL;
    p = end + 1;
    c->to_us = strtoll(p, &end, 10);
    if (end == p || *end != ':') return -EINVAL;
    p = end + 1;
    if ((*p != 's' && *p != 'o') || p[1] != ':') return -EINVAL;
    c->mode = *p;
    p += 2;
    c->n = strtoull(p, &end, 10);
    if (end == p || errno) return -EINVAL;
    p = end;
    if (c->mode == 'o') return *p ? -EINVAL : 0;
    for (uint32_t i = 0; i < shards; i++) {
        if (*p != ':') return -EINVAL;
        p++;
        st[i].skip = strtoull(p, &end, 10);
        if (end == p || *end != ',') return -EINVAL;
        p = end + 1;
        size_t len = strcspn(p, ":");
        if (len == 0 || len > SEARCH_CURSOR_MAX_CHARS) return -EINVAL;
        if (len == 1 && *p == 'x') st[i].done = true;
        else if (!(len == 1 && *p == '-')) {
            for (size_t k = 0; k < len; k++)
                if (!((p[k] >= '0' && p[k] <= '9') || (p[k] >= 'a' && p[k] <= 'z'))) return -EINVAL;
            st[i].cursor = mamori_xcalloc(1, len + 1);
            memcpy(st[i].cursor, p, len);
        }
        p += len;
    }
    return *p ? -EINVAL : 0;
}

typedef struct fan {
    api_req *r;
    uint32_t n;
    shard_call *calls;
    fanout_shard *st;
    json_parser *p;
    arena ear; /* errors */
    fan_req f;
    search_shape shape;
    int64_t deadline_us;
} fan;

/* Fetches the page of every shard in need (active), parsed into st; false after replying. */
static bool fetch_pages(fan *F, const char *rows_name)
{
    uint32_t any = 0;
    for (uint32_t i = 0; i < F->n; i++)
        if (F->calls[i].active) any++;
    if (!any) return true;
    fanout_calls_run(F->r, "POST", F->calls, F->n);
    for (uint32_t i = 0; i < F->n; i++) {
        shard_call *c = &F->calls[i];
        if (!c->active) continue;
        c->active = false;
        arena_reset(&F->ear);
        if (fanout_call_failed(F->r, c, F->p, &F->ear)) return false;
        fanout_shard *s = &F->st[i];
        arena_reset(&s->ar);
        json_error jerr;
        /* keep the text alive as long as the parsed page: copy into the arena */
        char *text = arena_alloc(&s->ar, c->out.len + 1);
        memcpy(text, c->out.data ? c->out.data : "", c->out.len);
        text[c->out.len] = '\0';
        if (json_parse(F->p, &s->ar, text, c->out.len, &s->root, &jerr) != 0 || s->root.type != JSON_OBJECT) {
            reply_error(F->r, 502, "shard_error", "store shard %u (%s): its answer is not JSON (%s at byte %zu)", c->no,
                        c->base, jerr.msg, jerr.offset);
            return false;
        }
        s->rows = rows_name ? json_object_get(&s->root, rows_name, strlen(rows_name)) : NULL;
        if (rows_name && (!s->rows || s->rows->type != JSON_ARRAY)) {
            reply_error(F->r, 502, "shard_error", "store shard %u (%s): its answer has no '%s' array", c->no, c->base,
                        rows_name);
            return false;
        }
        const json_value *cv = json_object_get(&s->root, "cursor", 6);
        s->next = NULL;
        if (json_is_string(cv)) {
            char *t = arena_alloc(&s->ar, cv->len + 1);
            memcpy(t, cv->str, cv->len);
            t[cv->len] = '\0';
            s->next = t;
        }
        s->fetched = true;
        s->pos = 0;
    }
    return true;
}

static void state_set_cursor(fanout_shard *s, const char *c)
{
    char *copy = NULL;
    if (c) {
        copy = mamori_xcalloc(1, strlen(c) + 1);
        memcpy(copy, c, strlen(c));
    }
    free(s->cursor);
    s->cursor = copy;
}

/* Events or sequences (no tail, no count): the k-way merge. */
static void search_merge(fan *F, const fanout_cursor *in)
{
    api_req *r = F->r;
    const char *rows_name = F->shape.sequence ? "sequences" : "events";
    uint64_t left = in ? in->n : F->shape.head ? F->shape.head : UINT64_MAX;
    uint64_t want = MAMORI_MIN((uint64_t)F->f.limit, left);
    uint64_t emitted = 0;
    bool out_of_time = false;
    buf rows;
    buf_init(&rows);
    for (;;) {
        /* shards whose page is used up: the next page (or the end) */
        for (uint32_t i = 0; i < F->n; i++) {
            fanout_shard *s = &F->st[i];
            if (s->done) continue;
            if (s->fetched) {
                if (s->pos < s->rows->len) continue;
                if (!s->next) {
                    s->done = true;
                    continue;
                }
                uint64_t had = s->rows->len;
                state_set_cursor(s, s->next);
                s->skip = s->skip > had ? s->skip - had : 0; /* a page cut short before the rows to skip */
                s->fetched = false;
            }
            uint64_t lim = MAMORI_MIN((uint64_t)r->a->cfg->api.max_result_rows, s->skip + (want - emitted));
            shard_body(&F->calls[i].req, &F->f, lim ? lim : 1, s->cursor, false);
            fanout_call_url(&F->calls[i], "/v1/search");
            F->calls[i].active = true;
        }
        bool need = false;
        for (uint32_t i = 0; i < F->n; i++) need |= F->calls[i].active;
        if (need) {
            if (clock_mono_us() > F->deadline_us && emitted > 0) {
                for (uint32_t i = 0; i < F->n; i++) F->calls[i].active = false;
                out_of_time = true;
                break;
            }
            if (!fetch_pages(F, rows_name)) goto out;
            for (uint32_t i = 0; i < F->n; i++) {
                fanout_shard *s = &F->st[i];
                if (s->fetched && s->pos == 0) s->pos = MAMORI_MIN(s->skip, (uint64_t)s->rows->len);
            }
            continue; /* re-check the pages just fetched */
        }
        if (emitted >= want) break;
        int best = -1;
        fanout_key bk = {0};
        for (uint32_t i = 0; i < F->n; i++) {
            fanout_shard *s = &F->st[i];
            if (s->done || !s->fetched || s->pos >= s->rows->len) continue;
            fanout_key k;
            if (!fanout_event_key(&s->rows->items[s->pos], F->shape.sequence, &k)) {
                reply_error(r, 502, "shard_error", "store shard %u (%s): a row without mamori.event_id", i,
                            F->calls[i].base);
                goto out;
            }
            if (best < 0 || fanout_key_cmp(&k, &bk) < 0) best = (int)i, bk = k;
        }
        if (best < 0) break; /* every shard is done */
        fanout_shard *s = &F->st[best];
        if (emitted) buf_putc(&rows, ',');
        json_write_value(&rows, &s->rows->items[s->pos]);
        s->pos++;
        s->skip = s->pos;
        emitted++;
        /* a shard whose page ended is refetched above only if more rows are wanted */
        if (emitted >= want) break;
    }
    {
        bool more = false;
        for (uint32_t i = 0; i < F->n; i++) {
            fanout_shard *s = &F->st[i];
            if (s->done) continue;
            if (s->fetched && s->pos >= s->rows->len) {
                if (!s->next) {
                    s->done = true;
                    continue;
                }
                state_set_cursor(s, s->next);
                s->skip = 0;
            }
            more = true;
        }
        (void)out_of_time;
        buf_printf(&r->body, "{\"%s\":[", rows_name);
        buf_append(&r->body, rows.data, rows.len);
        buf_putc(&r->body, ']');
        uint64_t rest = left == UINT64_MAX ? UINT64_MAX : left - emitted;
        if (more && rest > 0) {
            fanout_cursor c = {.hash = F->f.hash, .from_us = F->f.from_us, .to_us = F->f.to_us, .mode = 's', .n = rest};
            buf_puts(&r->body, ",\"cursor\":\"");
            fanout_cursor_write(&r->body, &c, F->st, F->n);
            buf_putc(&r->body, '"');
        }
        buf_putc(&r->body, '}');
        r->rows = emitted;
        reply_json(r, 200);
    }
out:
    buf_fini(&rows);
}

/* Every shard's whole answer, page after page (tail N, count by); fn sees each page. */
typedef int (*page_fn)(fan *F, uint32_t shard, const json_value *rows, void *ctx);

static bool collect_all(fan *F, const char *rows_name, page_fn fn, void *ctx)
{
    for (uint32_t i = 0; i < F->n; i++) {
        F->st[i].done = false;
        F->st[i].fetched = false;
        state_set_cursor(&F->st[i], NULL);
    }
    uint64_t lim = F->r->a->cfg->api.max_result_rows;
    if (F->shape.tail) lim = MAMORI_MIN(lim, F->shape.tail);
    for (;;) {
        bool any = false;
        for (uint32_t i = 0; i < F->n; i++) {
            fanout_shard *s = &F->st[i];
            if (s->done) continue;
            shard_body(&F->calls[i].req, &F->f, lim, s->cursor, false);
            fanout_call_url(&F->calls[i], "/v1/search");
            F->calls[i].active = any = true;
        }
        if (!any) return true;
        if (!fetch_pages(F, rows_name)) return false;
        for (uint32_t i = 0; i < F->n; i++) {
            fanout_shard *s = &F->st[i];
            if (s->done || !s->fetched) continue;
            if (fn(F, i, s->rows, ctx) != 0) return false;
            if (s->next) state_set_cursor(s, s->next);
            else s->done = true;
            s->fetched = false;
        }
    }
}

/* tail N */
typedef struct kept_row {
    fanout_key k;
    char *json;
    size_t len;
} kept_row;

typedef struct tail_acc {
    kept_row *v;
    size_t n, cap;
} tail_acc;

static int tail_page(fan *F, uint32_t shard, const json_value *rows, void *ctx)
{
    tail_acc *t = ctx;
    for (uint32_t i = 0; i < rows->len; i++) {
        kept_row k;
        if (!fanout_event_key(&rows->items[i], false, &k.k)) {
            reply_error(F->r, 502, "shard_error", "store shard %u (%s): a row without mamori.event_id", shard,
                        F->calls[shard].base);
            return -1;
        }
        buf b;
        buf_init(&b);
        json_write_value(&b, &rows->items[i]);
        k.json = b.data;
        k.len = b.len;
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 256;
            t->v = mamori_xrealloc(t->v, t->cap * sizeof *t->v);
        }
        t->v[t->n++] = k;
    }
    return 0;
}

static int kept_cmp(const void *a, const void *b) { return fanout_key_cmp(&((const kept_row *)a)->k, &((const kept_row *)b)->k); }

/* count by */
typedef struct group {
    char *key; /* values joined by 0x1f, as the single node orders them */
    size_t key_len;
    char *by; /* the "by" object's JSON */
    size_t by_len;
    uint64_t count;
} group;

typedef struct group_acc {
    group *v;
    size_t n, cap;
    uint32_t *slots; /* index + 1 */
    size_t mask;
    uint32_t max;
    bool over;
} group_acc;

static void group_rehash(group_acc *g)
{
    size_t cap = g->mask ? (g->mask + 1) * 2 : 1024;
    free(g->slots);
    g->slots = mamori_xcalloc(cap, sizeof *g->slots);
    g->mask = cap - 1;
    for (size_t i = 0; i < g->n; i++) {
        size_t h = mamori_hash64(g->v[i].key, g->v[i].key_len) & g->mask;
        while (g->slots[h]) h = (h + 1) & g->mask;
        g->slots[h] = (uint32_t)i + 1;
    }
}

static int groups_page(fan *F, uint32_t shard, const json_value *rows, void *ctx)
{
    group_acc *g = ctx;
    buf key, by;
    buf_init(&key);
    buf_init(&by);
    int rc = 0;
    for (uint32_t i = 0; i < rows->len && !rc; i++) {
        const json_value *row = &rows->items[i];
        const json_value *b = row->type == JSON_OBJECT ? json_object_get(row, "by", 2) : NULL;
        const json_value *c = row->type == JSON_OBJECT ? json_object_get(row, "count", 5) : NULL;
        if (!b || b->type != JSON_OBJECT || !c || c->type != JSON_NUMBER || !(c->flags & JSON_FLAG_INT)) {
            reply_error(F->r, 502, "shard_error", "store shard %u (%s): a count-by row without by and count", shard,
                        F->calls[shard].base);
            rc = -1;
            break;
        }
        buf_clear(&key);
        for (uint32_t m = 0; m < b->len; m++) {
            if (m) buf_putc(&key, '\x1f');
            json_write_value(&key, &b->members[m].value);
        }
        if (!g->mask || (g->n + 1) * 2 > g->mask + 1) group_rehash(g);
        size_t h = mamori_hash64(key.data, key.len) & g->mask;
        while (g->slots[h]) {
            group *x = &g->v[g->slots[h] - 1];
            if (x->key_len == key.len && !memcmp(x->key, key.data, key.len)) break;
            h = (h + 1) & g->mask;
        }
        if (g->slots[h]) {
            g->v[g->slots[h] - 1].count += (uint64_t)c->num.i;
            continue;
        }
        if (g->n >= g->max) {
            g->over = true;
            continue;
        }
        if (g->n == g->cap) {
            g->cap = g->cap ? g->cap * 2 : 256;
            g->v = mamori_xrealloc(g->v, g->cap * sizeof *g->v);
        }
        buf_clear(&by);
        json_write_value(&by, b);
        group *x = &g->v[g->n];
        x->key = mamori_xcalloc(1, key.len + 1);
        memcpy(x->key, key.data, key.len);
        x->key_len = key.len;
        x->by = mamori_xcalloc(1, by.len + 1);
        memcpy(x->by, by.data, by.len);
        x->by_len = by.len;
        x->count = (uint64_t)c->num.i;
        g->slots[h] = (uint32_t)++g->n;
    }
    buf_fini(&key);
    buf_fini(&by);
    return rc;
}

static int group_cmp(const void *x, const void *y)
{
    const group *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    int c = memcmp(a->key, b->key, MAMORI_MIN(a->key_len, b->key_len));
    if (c) return c;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

static void offset_cursor(fan *F, uint64_t next)
{
    fanout_cursor c = {.hash = F->f.hash, .from_us = F->f.from_us, .to_us = F->f.to_us, .mode = 'o', .n = next};
    buf_puts(&F->r->body, ",\"cursor\":\"");
    fanout_cursor_write(&F->r->body, &c, NULL, 0);
    buf_putc(&F->r->body, '"');
}

static void search_tail(fan *F, uint64_t offset)
{
    tail_acc t = {0};
    if (collect_all(F, "events", tail_page, &t)) {
        qsort(t.v, t.n, sizeof *t.v, kept_cmp);
        size_t first = t.n > F->shape.tail ? t.n - F->shape.tail : 0;
        size_t i = first + (size_t)MAMORI_MIN(offset, (uint64_t)(t.n - first)), shown = 0;
        buf_puts(&F->r->body, "{\"events\":[");
        for (; i < t.n && shown < F->f.limit; i++, shown++) {
            if (shown) buf_putc(&F->r->body, ',');
            buf_append(&F->r->body, t.v[i].json, t.v[i].len);
        }
        buf_putc(&F->r->body, ']');
        if (i < t.n) offset_cursor(F, offset + shown);
        buf_putc(&F->r->body, '}');
        F->r->rows = shown;
        reply_json(F->r, 200);
    }
    for (size_t i = 0; i < t.n; i++) free(t.v[i].json);
    free(t.v);
}

static void search_groups(fan *F, uint64_t offset)
{
    group_acc g = {.max = F->r->a->cfg->api.max_groups};
    if (collect_all(F, "counts", groups_page, &g)) {
        if (g.over) {
            reply_error(F->r, 400, "too_large", "count by: more than %u groups over the %u shards; add a condition or "
                                                "narrow the range", g.max, F->n);
        } else {
            qsort(g.v, g.n, sizeof *g.v, group_cmp);
            buf_puts(&F->r->body, "{\"counts\":[");
            size_t i = (size_t)MAMORI_MIN(offset, (uint64_t)g.n), shown = 0;
            for (; i < g.n && shown < F->f.limit; i++, shown++) {
                if (shown) buf_putc(&F->r->body, ',');
                buf_puts(&F->r->body, "{\"by\":");
                buf_append(&F->r->body, g.v[i].by, g.v[i].by_len);
                buf_printf(&F->r->body, ",\"count\":%" PRIu64 "}", g.v[i].count);
            }
            buf_putc(&F->r->body, ']');
            if (i < g.n) offset_cursor(F, offset + shown);
            buf_putc(&F->r->body, '}');
            F->r->rows = shown;
            reply_json(F->r, 200);
        }
    }
    for (size_t i = 0; i < g.n; i++) {
        free(g.v[i].key);
        free(g.v[i].by);
    }
    free(g.v);
    free(g.slots);
}

static void search_count(fan *F)
{
    for (uint32_t i = 0; i < F->n; i++) {
        shard_body(&F->calls[i].req, &F->f, 1, NULL, false);
        fanout_call_url(&F->calls[i], "/v1/search");
        F->calls[i].active = true;
    }
    if (!fetch_pages(F, NULL)) return;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < F->n; i++) {
        const json_value *c = json_object_get(&F->st[i].root, "count", 5);
        if (!c || c->type != JSON_NUMBER || !(c->flags & JSON_FLAG_INT) || c->num.i < 0) {
            reply_error(F->r, 502, "shard_error", "store shard %u (%s): its answer has no count", i, F->calls[i].base);
            return;
        }
        sum += (uint64_t)c->num.i;
    }
    uint64_t cap = F->shape.head ? F->shape.head : F->shape.tail ? F->shape.tail : UINT64_MAX;
    if (sum > cap) sum = cap;
    buf_printf(&F->r->body, "{\"count\":%" PRIu64 "}", sum);
    F->r->rows = 1;
    reply_json(F->r, 200);
}

static void search_explain(fan *F)
{
    for (uint32_t i = 0; i < F->n; i++) {
        shard_body(&F->calls[i].req, &F->f, F->f.limit, NULL, true);
        fanout_call_url(&F->calls[i], "/v1/search");
        F->calls[i].active = true;
    }
    if (!fetch_pages(F, NULL)) return;
    buf_puts(&F->r->body, "{\"plan\":{\"shards\":[");
    for (uint32_t i = 0; i < F->n; i++) {
        if (i) buf_putc(&F->r->body, ',');
        buf_puts(&F->r->body, "{\"shard\":");
        json_write_string(&F->r->body, F->calls[i].base, strlen(F->calls[i].base));
        const json_value *pl = json_object_get(&F->st[i].root, "plan", 4);
        buf_puts(&F->r->body, ",\"plan\":");
        if (pl) json_write_value(&F->r->body, pl);
        else buf_puts(&F->r->body, "null");
        buf_putc(&F->r->body, '}');
    }
    buf_puts(&F->r->body, "]}}");
    reply_json(F->r, 200);
}

void fanout_search(api_req *r)
{
    api *a = r->a;
    fan F = {.r = r, .n = a->cfg->api.shards.count};
    F.p = json_parser_create();
    arena_init(&F.ear, 4096);
    arena ar;
    arena_init(&ar, 16 * 1024);
    buf text;
    buf_init(&text);
    search_query *q = NULL;
    F.calls = fanout_calls_new(a);
    F.st = mamori_xcalloc(F.n, sizeof *F.st);
    for (uint32_t i = 0; i < F.n; i++) arena_init(&F.st[i].ar, 16 * 1024);
    fanout_cursor cur = {0};
    bool has_cursor = false;

    const json_value *body = read_json_body(r, F.p, &ar, &text);
    if (!body) goto out;
    const json_value *qv = search_body_query(r, body);
    if (!qv) goto out;
    F.f.query = qv->str;
    F.f.query_len = qv->len;
    F.f.limit = 100;
    bool has_from, has_to;
    F.f.to_us = api_default_to(a);
    if (!api_get_time(r, body, "from", &F.f.from_us, &has_from) || !api_get_time(r, body, "to", &F.f.to_us, &has_to))
        goto out;
    if (!has_from) F.f.from_us = F.f.to_us - (int64_t)a->cfg->api.default_range_hours * 3600 * 1000000;
    const json_value *cv = json_object_get(body, "cursor", 6);
    if (cv && cv->type != JSON_NULL) {
        char *t = NULL;
        if (cv->type == JSON_STRING && cv->len <= FANOUT_CURSOR_MAX && !memchr(cv->str, '\0', cv->len)) {
            t = mamori_xcalloc(1, cv->len + 1);
            memcpy(t, cv->str, cv->len);
        }
        int rc = t ? fanout_cursor_read(t, &cur, F.st, F.n) : -EINVAL;
        free(t);
        if (rc) {
            reply_error(r, 400, "bad_request",
                        "bad cursor: it must be the 'cursor' of a previous page from this API (its %u shards)", F.n);
            goto out;
        }
        has_cursor = true;
        if (!has_from) F.f.from_us = cur.from_us;
        if (!has_to) F.f.to_us = cur.to_us;
    }
    if (!api_body_limit(r, body, &F.f.limit)) goto out;
    if (F.f.limit > a->cfg->api.max_result_rows) F.f.limit = a->cfg->api.max_result_rows;
    bool explain = false;
    const json_value *ev = json_object_get(body, "explain", 7);
    if (ev && ev->type != JSON_NULL) {
        if (ev->type != JSON_BOOL) {
            reply_error(r, 400, "bad_request", "'explain' must be true or false");
            goto out;
        }
        explain = ev->num.b;
    }
    if (F.f.from_us >= F.f.to_us) {
        reply_error(r, 400, "bad_request", "'from' must be before 'to'");
        goto out;
    }
    search_error serr;
    if (search_compile(qv->str, qv->len, &q, &serr) != 0) {
        reply_error_at(r, 400, search_error_code_name(serr.code), serr.position, NULL, serr.message);
        goto out;
    }
    search_query_shape(q, &F.shape);
    if (F.shape.sequence && !F.shape.host_bound) {
        /* each shard would find only the sequences of its own hosts: refuse, never a
         * silently partial answer */
        reply_error(r, 400, "bad_request",
                    "a sequence over several store shards must be joined by the host (sequence by host.id, "
                    "mamori.agent_id or agent.id): a host's events are on one shard, other keys span shards");
        goto out;
    }
    F.f.hash = fan_hash(&F.f, F.n);
    if (has_cursor && cur.hash != F.f.hash) {
        reply_error(r, 400, "bad_request", "bad cursor: it must come from the previous page of the same query, from and to");
        goto out;
    }
    bool offset_mode = F.shape.count_by > 0 || (F.shape.tail && !F.shape.count && !F.shape.sequence);
    bool count_mode = F.shape.count && F.shape.count_by == 0;
    if (has_cursor && (cur.mode == 'o') != offset_mode) {
        reply_error(r, 400, "bad_request", "bad cursor: it was issued for another kind of query");
        goto out;
    }
    F.deadline_us = clock_mono_us() + (int64_t)a->cfg->api.query_deadline_ms * 1000;
    buf_clear(&r->body);
    r->plan = "fanout";
    if (explain) search_explain(&F);
    else if (count_mode) search_count(&F);
    else if (F.shape.count_by) search_groups(&F, has_cursor ? cur.n : 0);
    else if (offset_mode) search_tail(&F, has_cursor ? cur.n : 0);
    else search_merge(&F, has_cursor ? &cur : NULL);
out:
    for (uint32_t i = 0; i < F.n; i++) {
        free(F.st[i].cursor);
        arena_fini(&F.st[i].ar);
    }
    free(F.st);
    fanout_calls_free(F.calls, F.n);
    search_query_destroy(q);
    buf_fini(&text);
    arena_fini(&ar);
    arena_fini(&F.ear);
    json_parser_destroy(F.p);
}

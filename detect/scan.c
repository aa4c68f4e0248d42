/* detect/scan.c — scanning a batch of events. Each event's fields are walked once; a value
 * is scanned at once (while it is in cache) by the literal sets and small Hyperscan databases
 * of its path, while for the large databases (`defer`: scanning them event by event would
 * walk a dozen multi-hundred-KiB databases per event and miss cache on every one) the
 * (database, event, value) is listed, the list counting-sorted by database and scanned in that
 * order. Every match is recorded as an (event, pattern alternative) hit; eval.c then evaluates
 * the events one by one from their hits. Keyword values of an event are joined by 0xFF and
 * scanned right away, one call per keyword database. The lists grow to their high-water mark
 * once and are reused: the steady state allocates nothing. */
#include "internal.h"

#include "core/log.h"

#include <string.h>

#ifdef DETECT_PROFILE /* per-database cost, for tuning (see docs/detection.md §9) */
#include <stdio.h>
#include <stdlib.h>
#define PROFILE_DBS 4096
static uint64_t profile_scans[PROFILE_DBS], profile_bytes[PROFILE_DBS], profile_cycles[PROFILE_DBS],
    profile_memo[PROFILE_DBS];
#define PROFILE_MEMO(db) (profile_memo[(db) % PROFILE_DBS]++)
#define PROFILE_BEGIN() uint64_t profile_c0_ = __builtin_ia32_rdtsc()
#define PROFILE_END(db, len)                                                                  \
    do {                                                                                      \
        profile_scans[(db) % PROFILE_DBS]++;                                                  \
        profile_bytes[(db) % PROFILE_DBS] += (len);                                           \
        profile_cycles[(db) % PROFILE_DBS] += __builtin_ia32_rdtsc() - profile_c0_;           \
    } while (0)

static int profile_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return profile_cycles[x] < profile_cycles[y] ? 1 : profile_cycles[x] > profile_cycles[y] ? -1 : 0;
}

void detect_profile_print(const detect_ruleset *rs, FILE *out)
{
    uint32_t n = MAMORI_MIN(rs->db_count, (uint32_t)PROFILE_DBS);
    uint32_t *order = mamori_xmalloc((n ? n : 1) * sizeof *order);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) order[i] = i, total += profile_cycles[i];
    qsort(order, n, sizeof *order, profile_cmp);
    fprintf(out, "profile: %.3g Gcycles in scans\n", (double)total / 1e9);
    for (uint32_t k = 0; k < n && k < 40; k++) {
        uint32_t i = order[k];
        const struct db *d = &rs->dbs[i];
        if (!profile_scans[i]) break;
        fprintf(out, "%5.1f%% %10.3g cyc %9llu scans %3.0f%% memo %7.0f cyc/scan %6.0f B/scan ids %5u %6zu KiB cat %2u svc %3u os %u %s%s%s%s%s%s\n",
                100.0 * (double)profile_cycles[i] / (double)(total ? total : 1), (double)profile_cycles[i],
                (unsigned long long)profile_scans[i], 100.0 * (double)profile_memo[i] / (double)profile_scans[i],
                (double)profile_cycles[i] / (double)profile_scans[i],
                (double)profile_bytes[i] / (double)profile_scans[i], d->id_count, d->bytes / 1024, d->cls.category, d->cls.service, d->cls.product,
                d->path == DETECT_NONE ? "(keywords)" : rs->paths[d->path].str, d->regex ? " regex" : "",
                d->lazy ? " lazy" : "", d->joined ? " joined" : "", d->lit ? " literal" : "", d->defer ? " deferred" : "");
        if (k < 8 && getenv("DETECT_PROFILE_EXPRS"))
            for (uint32_t x = 0; x < d->id_count && x < 400; x++) fprintf(out, "        %s\n", d->exprs[x]);
    }
    free(order);
    memset(profile_scans, 0, sizeof profile_scans);
    memset(profile_bytes, 0, sizeof profile_bytes);
    memset(profile_cycles, 0, sizeof profile_cycles);
    memset(profile_memo, 0, sizeof profile_memo);
}
#else
#define PROFILE_BEGIN() ((void)0)
#define PROFILE_END(db, len) ((void)0)
#define PROFILE_MEMO(db) ((void)0)
#endif

/* The walk's per-field steps: once per field of every event, so inlined into it whatever the
 * compiler's size heuristics say (outlined, the calls cost ~25 instructions per field). */
#define ALWAYS_INLINE inline __attribute__((always_inline))

#define GROW(arr, cap, need)                                                                  \
    do {                                                                                      \
        if ((need) > (cap)) {                                                                 \
            size_t new_cap_ = (cap) ? (size_t)(cap) * 2 : 1024;                               \
            while (new_cap_ < (need)) new_cap_ *= 2;                                          \
            (arr) = mamori_xrealloc((arr), new_cap_ * sizeof *(arr));                         \
            (cap) = new_cap_;                                                                 \
        }                                                                                     \
    } while (0)

static void push_item(detect_worker *w, uint32_t db, uint32_t path, uint32_t event, const char *text, size_t len,
                      size_t off, uint64_t text_hash)
{
    if (len > UINT32_MAX || off > UINT32_MAX) return; /* beyond Hyperscan's block length */
    GROW(w->items, w->item_cap, (size_t)w->item_count + 1);
    struct scan_item *it = &w->items[w->item_count++];
    it->db = db;
    it->path = path;
    it->event = event;
    it->text = text;
    it->len = (uint32_t)len;
    it->off = (uint32_t)off;
    it->text_hash = text_hash;
}

static void text_append(detect_worker *w, const char *s, size_t len)
{
    GROW(w->text, w->text_cap, w->text_len + len + 1);
    memcpy(w->text + w->text_len, s, len);
    w->text_len += len;
}

static void scan_text(detect_worker *w, uint32_t db, const char *text, size_t len, literal_match_fn fn,
                      uint64_t *text_hash);
static void hit(uint32_t id, void *ctx);

/* If the memo holds (db, text), replays its ids to fn and counts the hit. *text_hash:
 * memo_text_hash(text), 0 until computed (here). */
static bool memo_answer(detect_worker *w, uint32_t db, const char *text, size_t len, literal_match_fn fn,
                        uint64_t *text_hash)
{
    if (!*text_hash) *text_hash = memo_text_hash(text, len);
    if (!memo_replay(&w->memo, memo_key(*text_hash, db), db, text, len, fn, w)) return false;
    w->stats.memo_hits++;
    PROFILE_MEMO(db);
    return true;
}

/* The deferred side of push_text: answered by the memo, or listed for the batch-wise scan. */
static void push_deferred(detect_worker *w, const struct db *d, uint32_t db, uint32_t path, uint32_t event,
                          const char *text, size_t len, const char *tmp, uint64_t *text_hash)
{
    if (d->memo && len <= MEMO_TEXT_MAX) {
        PROFILE_BEGIN();
        if (memo_answer(w, db, text, len, hit, text_hash)) {
            w->stats.scans++;
            PROFILE_END(db, len);
            return;
        }
    }
    if (text != tmp || !tmp) { /* a field's own text, or no rendering buffer: nothing to copy */
        push_item(w, db, path, event, text, len, 0, *text_hash);
        return;
    }
    size_t off = w->text_len;
    text_append(w, tmp, len);
    push_item(w, db, path, event, NULL, len, off, *text_hash);
}

/* One scalar's text: scanned now, or (unless the memo knows it) listed for its deferred
 * database (text in tmp — a rendered number — is copied into the batch text). *text_hash:
 * the value's memo_text_hash, 0 until some memoized database computed it. Inline in the walk
 * with push_field: a call per scanned value cost ~1.5% of warm detection (docs §10.22). */
static ALWAYS_INLINE void push_text(detect_worker *w, uint32_t db, uint32_t path, uint32_t event, const char *text,
                                    size_t len, const char *tmp, uint64_t *text_hash)
{
    if (len > UINT32_MAX) return;
    const struct db *d = &w->rs->dbs[db];
    w->scan_db = d;
    w->scan_path = path;
    w->scan_event = event;
    if (MAMORI_LIKELY(!d->defer)) scan_text(w, db, text, len, hit, text_hash);
    else push_deferred(w, d, db, path, event, text, len, tmp, text_hash);
}

static void push_scalar(detect_worker *w, uint32_t db, uint32_t path, uint32_t event, const json_value *v)
{
    char tmp[32];
    const char *text;
    size_t len;
    uint64_t text_hash = 0;
    if (direct_scalar_text(v, tmp, &text, &len)) push_text(w, db, path, event, text, len, tmp, &text_hash);
}

/* A field's value: its text when the normalizer copied it into the field (no load of the
 * value; its hash shared by the field's databases), else the value's scalar(s). */
static ALWAYS_INLINE void push_field(detect_worker *w, uint32_t db, uint32_t path, uint32_t event,
                                     const event_field *f, uint64_t *text_hash)
{
    if (MAMORI_LIKELY(f->text)) {
        push_text(w, db, path, event, f->text, f->text_len, NULL, text_hash);
        return;
    }
    const json_value *v = f->value;
    if (v->type != JSON_ARRAY) {
        push_scalar(w, db, path, event, v);
        return;
    }
    for (uint32_t i = 0; i < v->len; i++) push_scalar(w, db, path, event, &v->items[i]);
}

/* Texts of at most this many bytes are copied into the join as one block of this size when
 * the block stays inside the text's page (the bytes past the text are overwritten by the
 * next value or lie past join_len). Not under AddressSanitizer, which would see the read
 * past the text. */
#define JOIN_BLOCK 32
#if defined(__SANITIZE_ADDRESS__)
#define JOIN_BLOCKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JOIN_BLOCKS 0
#endif
#endif
#ifndef JOIN_BLOCKS
#define JOIN_BLOCKS 1
#endif

/* Puts a value at base[used], after a separator unless it is the first, in a buffer with
 * room for len + 1 + JOIN_BLOCK more bytes; returns the joined length. */
static ALWAYS_INLINE size_t join_put(char *base, size_t used, const char *text, size_t len)
{
    char *out = base + used;
    if (used) *out++ = (char)DETECT_KEYWORD_SEPARATOR;
    if (JOIN_BLOCKS && len <= JOIN_BLOCK && ((uintptr_t)text & 4095) <= 4096 - JOIN_BLOCK)
        memcpy(out, text, JOIN_BLOCK);
    else
        memcpy(out, text, len);
    return (size_t)(out - base) + len;
}

/* Appends a value to the event's joined keyword text (its own buffer: nothing else may land
 * between two values). Callers skip values shorter than plan_join_min: no joined expression
 * can match inside them. */
static inline void join_text(detect_worker *w, const char *text, size_t len)
{
    GROW(w->join, w->join_cap, w->join_len + len + 1 + JOIN_BLOCK);
    w->join_len = join_put(w->join, w->join_len, text, len);
}

static void join_scalar(detect_worker *w, const json_value *v)
{
    char tmp[32];
    const char *text;
    size_t len;
    if (direct_scalar_text(v, tmp, &text, &len) && len >= w->plan_join_min) join_text(w, text, len);
}

/* A value of plan_join_direct bytes or more, scanned where it lies by each joined database
 * (all literal sets) instead of copied into the join. */
static void join_direct(detect_worker *w, uint32_t e, const char *text, size_t len)
{
    const detect_ruleset *rs = w->rs;
    for (uint32_t k = 0; k < w->plan_njoined; k++) {
        uint32_t db = w->plan_joined[k];
        const struct db *d = &rs->dbs[db];
        w->scan_db = d;
        w->scan_path = DETECT_NONE;
        w->scan_event = e;
        w->stats.scans++;
        PROFILE_BEGIN();
        literal_set_scan(d->lit, text, len, hit, w);
        PROFILE_END(db, len);
    }
}

static ALWAYS_INLINE void join_field(detect_worker *w, uint32_t e, const event_field *f)
{
    if (f->text) {
        if (f->text_len >= w->plan_join_direct) join_direct(w, e, f->text, f->text_len);
        else if (f->text_len >= w->plan_join_min) join_text(w, f->text, f->text_len);
        return;
    }
    const json_value *v = f->value;
    if (v->type != JSON_ARRAY) join_scalar(w, v);
    else
        for (uint32_t k = 0; k < v->len; k++) join_scalar(w, &v->items[k]);
}


/* Events usually come cold from memory (a consumer's batch is larger than the caches). The
 * normalizer copies each field's text into the field array and hashes its path, so walking
 * an event reads its field array and the texts; a field without them (an event built by
 * hand) is a chain field → value → string. Prefetching a few events ahead, one link per
 * event, overlaps those misses instead of taking them in turn.
 *
 * The fetches are spread over the walk: while it lists an event's fields, each field listed
 * prefetches one line of the field array PREFETCH_FIELDS_AHEAD events on and the values of
 * PREFETCH_STEP_FIELDS fields PREFETCH_VALUES_AHEAD events on (prefetch_step); what is left
 * when the event is done goes at once. Issued all at once per event (as before), they filled
 * the miss queue: the prefetch instructions themselves stalled, the core idle on the memory
 * and then the memory idle on the core (docs/detection.md §10.14). */
#ifndef PREFETCH_FIELDS_AHEAD
#define PREFETCH_FIELDS_AHEAD 3
#define PREFETCH_VALUES_AHEAD 2
#define PREFETCH_STRINGS_AHEAD 1
#define PREFETCH_STEP_FIELDS 1
#endif
/* Into L2, not L1 (prefetcht1): an event's lines wait there for the walk without pushing out
 * of L1 the rule set's lines that the walk of the events before needs; and a text whole (the
 * keyword join reads all of it), up to PREFETCH_TEXT_BYTES. Cold OTRF, in one process: 9% faster
 * than prefetcht0 and 512 bytes of each text; prefetchnta was slower than prefetcht0. */
#define PREFETCH_EVENT(p) __builtin_prefetch((p), 0, 2)
#ifndef PREFETCH_TEXT_BYTES
#define PREFETCH_TEXT_BYTES 65536u
#endif
/* The cache lines of ev's field array: the first in *first, their count returned. */
static ALWAYS_INLINE uint32_t field_lines(const mamori_event *ev, const char **first)
{
    uintptr_t start = (uintptr_t)ev->fields & ~(uintptr_t)63;
    uintptr_t end = (uintptr_t)ev->fields + (size_t)ev->field_count * sizeof *ev->fields;
    *first = (const char *)start;
    return (uint32_t)((end - start + 63) / 64);
}

static void prefetch_fields(const mamori_event *ev)
{
    const char *p;
    for (uint32_t n = field_lines(ev, &p); n; n--, p += 64) PREFETCH_EVENT(p);
}

/* The first PREFETCH_TEXT_BYTES of a field's text (the keyword join reads them all), or its
 * value and path when it has no text. */
static ALWAYS_INLINE void prefetch_value(const event_field *f)
{
    if (f->text) {
        uintptr_t p = (uintptr_t)f->text & ~(uintptr_t)63, end = (uintptr_t)f->text + f->text_len;
        if (end - p > PREFETCH_TEXT_BYTES) end = p + PREFETCH_TEXT_BYTES;
        for (; p < end; p += 64) PREFETCH_EVENT((const void *)p);
    } else {
        PREFETCH_EVENT(f->value);
        if (!f->path_hash) PREFETCH_EVENT(f->path);
    }
}

static void prefetch_values(const mamori_event *ev)
{
    for (uint32_t i = 0; i < ev->field_count; i++) prefetch_value(&ev->fields[i]);
}

/* The walk's share of the fetches ahead, once per field it lists (count = PREFETCH_STEP_FIELDS)
 * and once more when an event is done (count = UINT32_MAX: the rest): a line of w->pf_line's
 * field array, the values of `count` more fields of w->pf_ev. Both are set by scan_batch,
 * in cold batches only. */
static ALWAYS_INLINE void prefetch_step(detect_worker *w, uint32_t count)
{
    if (w->pf_lines) {
        PREFETCH_EVENT(w->pf_line);
        w->pf_line += 64;
        w->pf_lines--;
    }
    const mamori_event *ev = w->pf_ev;
    if (!ev) return;
    uint32_t i = w->pf_field, end = count >= ev->field_count - i ? ev->field_count : i + count;
    for (; i < end; i++) prefetch_value(&ev->fields[i]);
    w->pf_field = i;
    if (i == ev->field_count) w->pf_ev = NULL;
}

/* The strings of fields without text whose values were prefetched: only events built by
 * hand (the normalizer gives every string its text). */
static void prefetch_strings(const mamori_event *ev)
{
    if (ev->field_count && ev->fields[0].path_hash) return; /* normalized: every field has one */
    for (uint32_t i = 0; i < ev->field_count; i++) {
        const event_field *f = &ev->fields[i];
        if (f->path_hash || f->value->type != JSON_STRING) continue;
        PREFETCH_EVENT(f->value->str);
    }
}

/* The shape's join-only fields (shape_build): each text at least plan_join_min long, as
 * join_text puts it; a field without text (a number rendered, an array) as join_field. */
static ALWAYS_INLINE void join_fields(detect_worker *w, uint32_t e, const event_field *fields, const uint32_t *idx,
                                      uint32_t n, bool cold)
{
    /* in locals: the stores through char pointers would otherwise reload w's members */
    uint32_t min = w->plan_join_min;
    size_t direct = w->plan_join_direct;
    char *base = w->join;
    size_t used = w->join_len, cap = w->join_cap;
    for (uint32_t k = 0; k < n; k++) {
        const event_field *f = &fields[idx[k]];
        const char *text = f->text;
        size_t len = f->text_len;
        if (cold) prefetch_step(w, PREFETCH_STEP_FIELDS);
        if (MAMORI_UNLIKELY(!text)) {
            w->join_len = used;
            join_field(w, e, f);
            base = w->join, used = w->join_len, cap = w->join_cap;
            continue;
        }
        if (len < min) continue;
        if (len >= direct) {
            join_direct(w, e, text, len);
            continue;
        }
        if (MAMORI_UNLIKELY(used + len + 1 + JOIN_BLOCK > cap)) {
            GROW(w->join, w->join_cap, used + len + 1 + JOIN_BLOCK);
            base = w->join, cap = w->join_cap;
        }
        used = join_put(base, used, text, len);
    }
    w->join_len = used;
}

/* The scans of one field: its path's databases (pid, dbs[0..count)), and when keyword
 * searches read it, the per-value keyword databases and the joined text. text_hash: its
 * text's memo_text_hash when known (memo_fetch_ops), else 0. */
static ALWAYS_INLINE void list_field(detect_worker *w, uint32_t e, const event_field *f, uint32_t pid,
                                     const uint32_t *dbs, uint32_t count, bool keyword, bool join, uint64_t text_hash)
{
    for (uint32_t k = 0; k < count; k++) push_field(w, dbs[k], pid, e, f, &text_hash);
    if (!keyword) return;
    for (uint32_t k = 0; k < w->plan_nper_value; k++) push_field(w, w->plan_per_value[k], DETECT_NONE, e, f, &text_hash);
    if (w->plan_njoined && join) join_field(w, e, f);
}

/* The memo slots the walk of ev's shape will read, fetched before it starts: the text hash of
 * each op's field (hashes[o], 0 where no memoized database of the op reads its text) and the
 * slot of each (text, memoized database). The walk then finds them in the cache instead of
 * waiting on each in turn. */
static ALWAYS_INLINE void memo_fetch_ops(detect_worker *w, const struct shape *s, const mamori_event *ev,
                                         uint64_t *hashes)
{
    const struct db *dbs = w->rs->dbs;
    for (uint32_t o = 0; o < s->op_count; o++) {
        const struct shape_op *op = &s->ops[o];
        const event_field *f = &ev->fields[op->field];
        uint64_t h = 0;
        if (f->text && f->text_len <= MEMO_TEXT_MAX)
            for (uint32_t k = 0; k < op->db_count; k++) {
                uint32_t db = s->dbs[op->db_first + k];
                if (!dbs[db].memo) continue;
                if (!h) h = memo_text_hash(f->text, f->text_len);
                memo_prefetch(&w->memo, memo_key(h, db));
            }
        hashes[o] = h;
    }
}

/* Lists what one event needs scanned: by its shape's walk plan (plan.c), or field by field
 * (an event whose shape has none). Cold: with the prefetch steps between fields (inlined
 * twice, so that warm batches pay no test per field). */
static ALWAYS_INLINE void list_event(detect_worker *w, const mamori_event *ev, uint32_t e, bool cold)
{
    const detect_ruleset *rs = w->rs;
    plan_for(w, &w->batch_ls[e]);
    const uint32_t *joined = w->plan_joined;
    uint32_t njoined = w->plan_njoined;
    bool keywords = njoined || w->plan_nper_value;
    /* keyword searches cover the record, not what the normalizer adds to winlog events */
    bool winlog = keywords && w->batch_winlog[e];
    w->join_len = 0;
    const struct shape *s = shape_get(w, ev, e);
    if (s) {
        uint64_t hashes[SHAPE_FIELDS_MAX];
        memo_fetch_ops(w, s, ev, hashes);
        for (uint32_t o = 0; o < s->op_count; o++) {
            const struct shape_op *op = &s->ops[o];
            const event_field *f = &ev->fields[op->field];
            bool join = !(op->suffix && text_ends(&ev->fields[s->container], f));
            w->stats.join_suffixes += !join;
            list_field(w, e, f, op->pid, s->dbs + op->db_first, op->db_count, op->keyword, join, hashes[o]);
            if (cold) prefetch_step(w, PREFETCH_STEP_FIELDS);
        }
        join_fields(w, e, ev->fields, s->joins, s->join_count, cold);
    } else {
        for (uint32_t i = 0; i < ev->field_count; i++) {
            const event_field *f = &ev->fields[i];
            uint32_t hash = f->path_hash;
            if (hash) {
                if (f->flags & EVENT_FIELD_SERVER) continue;
            } else {
                if (f->path_len >= 7 && memcmp(f->path, "mamori.", 7) == 0) continue;
                hash = event_path_hash(f->path, f->path_len);
            }
            uint32_t ref = path_lookup(rs, f->path, f->path_len, hash);
            if (ref == DETECT_NONE) ref = PATH_SLOT_EXTRA; /* not in the table: nothing to scan, no flag */
            uint32_t pid = DETECT_NONE, count = 0;
            const uint32_t *dbs = NULL;
            if (!(ref & PATH_SLOT_EXTRA)) {
                pid = ref & PATH_SLOT_ID;
                dbs = plan_path(w, pid, &count);
            }
            list_field(w, e, f, pid, dbs, count, keywords && !(winlog && (ref & PATH_SLOT_SYNTHESIZED)), true, 0);
            if (cold) prefetch_step(w, PREFETCH_STEP_FIELDS);
        }
    }
    if (w->join_len && w->join_len <= UINT32_MAX)
        for (uint32_t k = 0; k < njoined; k++) {
            uint64_t text_hash = 0;
            w->scan_db = &rs->dbs[joined[k]];
            w->scan_path = DETECT_NONE;
            w->scan_event = e;
            scan_text(w, joined[k], w->join, w->join_len, hit, &text_hash);
        }
}

/* A match of expression `id` of the database being scanned: one hit per alternative of the
 * path being scanned. */
static void hit(uint32_t id, void *ctx)
{
    detect_worker *w = ctx;
    const struct db *db = w->scan_db;
    const uint32_t *alt_path = w->rs->alt_path;
    for (uint32_t k = db->alt_first[id]; k < db->alt_first[id + 1]; k++) {
        uint32_t alt = db->alts[k];
        if (alt_path[alt] != w->scan_path) continue; /* another path sharing this database */
        GROW(w->hits, w->hit_cap, (size_t)w->hit_count + 1);
        w->hits[w->hit_count++] = (struct hit){w->scan_event, alt};
    }
}

static int on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *ctx)
{
    (void)from;
    (void)to;
    (void)flags;
    detect_worker *w = ctx;
    w->scan_fn(id, w);
    return 0;
}

/* Hyperscan refusing a scan is a programmer error (wrong scratch, corrupt database) or an
 * exhausted resource; either way the event is evaluated without those matches, counted and
 * logged rate-limited, never crashing the consumer. */
static void scan_failed(detect_worker *w, hs_error_t rc)
{
    w->stats.scan_errors++;
    LOG_RATELIMITED(LOG_LEVEL_ERROR, "detect", 1, "hs_scan failed rc=%d (%llu so far)", (int)rc,
                    (unsigned long long)w->stats.scan_errors);
}

/* Scans text with Hyperscan database hs, every matching expression id to fn (Hyperscan may
 * report one more than once). False when Hyperscan failed (what it reported so far went to fn). */
static bool hs_scan_ids(detect_worker *w, const hs_database_t *hs, const char *text, size_t len, literal_match_fn fn)
{
    w->scan_fn = fn;
    hs_error_t rc = hs_scan(hs, len ? text : "", (unsigned int)len, 0, w->scratch, on_match, w);
    if (MAMORI_LIKELY(rc == HS_SUCCESS)) return true;
    scan_failed(w, rc);
    return false;
}

/* Scans text with database d (its literal set or Hyperscan database), as hs_scan_ids. */
static bool raw_scan(detect_worker *w, const struct db *d, const char *text, size_t len, literal_match_fn fn)
{
    if (d->lit) {
        literal_set_scan(d->lit, text, len, fn, w);
        return true;
    }
    return hs_scan_ids(w, d->hs, text, len, fn);
}

static void memo_hit(uint32_t id, void *ctx)
{
    detect_worker *w = ctx;
    memo_record(&w->memo, id);
    w->memo_fn(id, w);
}

/* A match reported by scan_lines' database: a gate's id (compile_db.c split_lines) asks for
 * the whole-value scan of the split's rest, any other goes on to line_fn. */
static void line_hit(uint32_t id, void *ctx)
{
    detect_worker *w = ctx;
    if (id >= w->scan_db->id_count) w->rest_wanted = true;
    else w->line_fn(id, w);
}

/* Scans a value too long for the memo whose database's expressions (hs: line-local ones)
 * match within one line (compile_db.c split_lines): in pieces that end after a '\n', each
 * line of MEMO_LINE_MIN..MEMO_LINE_MAX bytes through the memo, each run of other lines between
 * them as it lies, one scan each. Every match lies within one line and every line within one
 * piece, so the ids are those of a scan of the whole value. The memo keeps lines apart from
 * whole values (MEMO_LINE_DB): a line is scanned by hs, which may hold fewer expressions.
 * PowerShell's `ContextInfo` (5 KB on average on OTRF) repeats its host application line, the
 * bulk of it, event after event, while its sequence number line changes. */
static void scan_lines(detect_worker *w, const hs_database_t *hs, uint32_t db, const char *text, size_t len,
                       literal_match_fn fn)
{
    w->line_fn = fn;
    fn = line_hit;
    const char *p = text, *end = text + len, *run = text; /* run: the first byte not scanned yet */
    const uint32_t key_db = db | MEMO_LINE_DB;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        size_t n = (size_t)(next - p);
        if (n >= MEMO_LINE_MIN && n <= MEMO_LINE_MAX) {
            if (p > run) hs_scan_ids(w, hs, run, (size_t)(p - run), fn);
            uint64_t key = memo_key(memo_line_hash(p, n), key_db);
            if (memo_replay(&w->memo, key, key_db, p, n, fn, w)) {
                w->stats.line_hits++;
            } else {
                w->memo_fn = fn;
                w->memo.rec_count = 0;
                if (hs_scan_ids(w, hs, p, n, memo_hit)) memo_store(&w->memo, key, key_db, p, n);
            }
            run = next;
        }
        p = next;
    }
    if (end > run) hs_scan_ids(w, hs, run, (size_t)(end - run), fn);
}

/* Scans text with database number db (w->scan_db), through the memo when the database is
 * memoized: a value seen before replays its ids, a new one is scanned and remembered.
 * *text_hash: memo_text_hash(text), 0 until computed (here, if needed). */
static void scan_text(detect_worker *w, uint32_t db, const char *text, size_t len, literal_match_fn fn,
                      uint64_t *text_hash)
{
    const struct db *d = w->scan_db;
    w->stats.scans++;
    PROFILE_BEGIN();
    if (!d->memo || len > MEMO_TEXT_MAX) {
        if ((d->line_local || d->split) && len > MEMO_TEXT_MAX) {
            const struct db_split *sp = d->split ? &w->rs->db_splits[db] : NULL;
            w->rest_wanted = !d->rest_gated;
            scan_lines(w, sp ? sp->lines : d->hs, db, text, len, fn);
            if (sp && w->rest_wanted) hs_scan_ids(w, sp->rest, text, len, fn);
        } else {
            raw_scan(w, d, text, len, fn);
        }
    } else if (!memo_answer(w, db, text, len, fn, text_hash)) {
        w->memo_fn = fn;
        w->memo.rec_count = 0; /* what a failed scan recorded is dropped here, next time */
        if (raw_scan(w, d, text, len, memo_hit)) memo_store(&w->memo, memo_key(*text_hash, db), db, text, len);
    }
    PROFILE_END(db, len);
}

/* Sorts the batch's deferred items by database into items_sorted (stable: in listing order
 * within a database), databases in ascending order, touching only the databases met: most
 * databases scan as the walk lists (scan_text), and a warm batch of 64 OTRF events defers to
 * 1 database on average, 9 at most, of 697. db_start holds a count per database, then a bit
 * per database met; both are zero between batches. */
static void sort_items(detect_worker *w)
{
    uint32_t *count = w->db_start, *met = w->db_start + w->db_cap;
    for (uint32_t i = 0; i < w->item_count; i++) {
        uint32_t d = w->items[i].db;
        if (count[d]++ == 0) met[d >> 5] |= 1u << (d & 31);
    }
    uint32_t at = 0;
    for (uint32_t k = 0; k < (w->rs->db_count + 31) / 32; k++) {
        for (uint32_t m = met[k]; m; m &= m - 1) {
            uint32_t d = k * 32 + (uint32_t)__builtin_ctz(m), c = count[d];
            count[d] = at;
            at += c;
        }
        met[k] = 0;
    }
    for (uint32_t i = 0; i < w->item_count; i++) w->items_sorted[count[w->items[i].db]++] = w->items[i];
    for (uint32_t i = 0; i < w->item_count; i++) count[w->items[i].db] = 0;
}

void scan_batch(detect_worker *w, const mamori_event *events, uint32_t n)
{
    const detect_ruleset *rs = w->rs;
    MAMORI_ASSERT(n <= DETECT_BATCH_MAX);
    w->item_count = 0;
    w->hit_count = 0;
    w->text_len = 0;
    const bool cold = !w->warm; /* a warm caller just wrote these events: nothing to fetch */
    if (cold) {
        for (uint32_t e = 0; e < n && e < PREFETCH_FIELDS_AHEAD; e++) prefetch_fields(&events[e]);
        for (uint32_t e = 0; e < n && e < PREFETCH_VALUES_AHEAD; e++) prefetch_values(&events[e]);
        for (uint32_t e = 0; e < n && e < PREFETCH_STRINGS_AHEAD; e++) prefetch_strings(&events[e]);
    }
    w->pf_ev = NULL;
    w->pf_lines = 0;
    for (uint32_t e = 0; e < n; e++) {
        if (cold) {
            for (; w->pf_lines; w->pf_lines--, w->pf_line += 64) PREFETCH_EVENT(w->pf_line);
            if (e + PREFETCH_FIELDS_AHEAD < n) /* its field array, a line per field listed */
                w->pf_lines = field_lines(&events[e + PREFETCH_FIELDS_AHEAD], &w->pf_line);
            prefetch_step(w, UINT32_MAX); /* what the walk of the last event left */
            if (e + PREFETCH_VALUES_AHEAD < n) {
                w->pf_ev = &events[e + PREFETCH_VALUES_AHEAD];
                w->pf_field = 0;
            }
            if (e + PREFETCH_STRINGS_AHEAD < n) prefetch_strings(&events[e + PREFETCH_STRINGS_AHEAD]);
        }
        classify(w, &events[e], e);
        if (cold) list_event(w, &events[e], e, true); /* two copies: warm ones without the prefetch steps */
        else list_event(w, &events[e], e, false);
    }
    w->pf_ev = NULL; /* the caller's events: not to be read after this call */
    w->pf_lines = 0;

    /* counting sort by database: each database scanned back to back while it is in cache */
    GROW(w->items_sorted, w->items_sorted_cap, (size_t)w->item_count);
    sort_items(w);

    for (uint32_t i = 0; i < w->item_count; i++) {
        const struct scan_item *it = &w->items_sorted[i];
        w->scan_db = &rs->dbs[it->db];
        w->scan_path = it->path;
        w->scan_event = it->event;
        uint64_t text_hash = it->text_hash;
        scan_text(w, it->db, it->text ? it->text : w->text + it->off, it->len, hit, &text_hash);
    }

    /* hits by event */
    memset(w->event_start, 0, ((size_t)n + 1) * sizeof *w->event_start);
    for (uint32_t i = 0; i < w->hit_count; i++) w->event_start[w->hits[i].event + 1]++;
    for (uint32_t e = 0; e < n; e++) w->event_start[e + 1] += w->event_start[e];
    GROW(w->hits_sorted, w->hits_sorted_cap, (size_t)w->hit_count);
    uint32_t fill[DETECT_BATCH_MAX];
    memcpy(fill, w->event_start, (size_t)n * sizeof *fill);
    for (uint32_t i = 0; i < w->hit_count; i++) w->hits_sorted[fill[w->hits[i].event]++] = w->hits[i].alt;
}

/* ---- lazy scans, during evaluation ---------------------------------------------------------- */

static void hit_now(uint32_t id, void *ctx)
{
    detect_worker *w = ctx;
    const struct db *db = w->scan_db;
    for (uint32_t k = db->alt_first[id]; k < db->alt_first[id + 1]; k++) {
        uint32_t alt = db->alts[k];
        if (w->rs->alt_path[alt] != w->scan_path) continue;
        uint64_t bit = (uint64_t)1 << (alt & 63);
        if (w->alt_bits[alt >> 6] & bit) continue;
        w->alt_bits[alt >> 6] |= bit;
        w->touched[w->touched_count++] = alt; /* cleared with the event's other bits */
    }
}

static void lazy_scalar(detect_worker *w, const json_value *v)
{
    char tmp[32];
    const char *text;
    size_t len;
    if (!direct_scalar_text(v, tmp, &text, &len) || len > UINT32_MAX) return;
    uint64_t text_hash = 0;
    scan_text(w, (uint32_t)(w->scan_db - w->rs->dbs), text, len, hit_now, &text_hash);
}

void scan_lazy(detect_worker *w, uint32_t db, uint32_t path)
{
    const detect_ruleset *rs = w->rs;
    const json_value *v = path_get(w, path);
    if (!v) return;
    w->scan_db = &rs->dbs[db];
    w->scan_path = path;
    if (v->type != JSON_ARRAY) {
        lazy_scalar(w, v);
        return;
    }
    for (uint32_t i = 0; i < v->len; i++) lazy_scalar(w, &v->items[i]);
}

/* detect/scan.c — Hyperscan scanning for a batch of events. Instead of scanning each event's
 * fields against their databases event by event (which walks a dozen multi-hundred-KiB
 * databases per event and misses cache on every one), the batch is scanned database by
 * database: first every (database, event, value) to scan is listed, then the list is
 * counting-sorted by database and scanned in that order, and every match is recorded as an
 * (event, pattern alternative) hit. eval.c then evaluates the events one by one from their
 * hits. Keyword values of an event are joined by 0xFF and scanned in one call per keyword
 * database. The lists grow to their high-water mark once and are reused: the steady state
 * allocates nothing. */
#include "internal.h"

#include "core/log.h"

#include <string.h>

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
                      size_t off)
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
}

static void text_append(detect_worker *w, const char *s, size_t len)
{
    GROW(w->text, w->text_cap, w->text_len + len + 1);
    memcpy(w->text + w->text_len, s, len);
    w->text_len += len;
}

/* One scalar (text as it is; numbers rendered into the batch text). */
static void push_scalar(detect_worker *w, uint32_t db, uint32_t path, uint32_t event, const json_value *v)
{
    char tmp[32];
    const char *text;
    size_t len;
    if (!direct_scalar_text(v, tmp, &text, &len)) return;
    if (text != tmp) {
        push_item(w, db, path, event, text, len, 0);
        return;
    }
    size_t off = w->text_len;
    text_append(w, tmp, len);
    push_item(w, db, path, event, NULL, len, off);
}

static void push_value(detect_worker *w, uint32_t db, uint32_t path, uint32_t event, const json_value *v)
{
    if (v->type != JSON_ARRAY) {
        push_scalar(w, db, path, event, v);
        return;
    }
    for (uint32_t i = 0; i < v->len; i++) push_scalar(w, db, path, event, &v->items[i]);
}

static void join_scalar(detect_worker *w, const json_value *v, size_t start)
{
    char tmp[32];
    const char *text;
    size_t len;
    if (!direct_scalar_text(v, tmp, &text, &len)) return;
    if (w->text_len > start) {
        char sep = (char)DETECT_KEYWORD_SEPARATOR;
        text_append(w, &sep, 1);
    }
    text_append(w, text, len);
}

#define KEYWORD_DBS_MAX 64

/* Lists what one event needs scanned. */
static void list_event(detect_worker *w, const mamori_event *ev, uint32_t e)
{
    const detect_ruleset *rs = w->rs;
    const struct logsource_set *ls = &w->batch_ls[e];
    uint32_t joined[KEYWORD_DBS_MAX], per_value[KEYWORD_DBS_MAX];
    uint32_t njoined = 0, nper_value = 0;
    for (uint32_t i = 0; i < rs->keyword_db_count && njoined < KEYWORD_DBS_MAX; i++)
        if (db_class_applies(&rs->dbs[rs->keyword_dbs[i]].cls, ls)) joined[njoined++] = rs->keyword_dbs[i];
    for (uint32_t i = 0; i < rs->keyword_value_db_count && nper_value < KEYWORD_DBS_MAX; i++)
        if (db_class_applies(&rs->dbs[rs->keyword_value_dbs[i]].cls, ls)) per_value[nper_value++] = rs->keyword_value_dbs[i];
    bool keywords = njoined || nper_value;
    /* keyword searches cover the record, not what the normalizer adds to winlog events */
    bool winlog = keywords && event_get(ev, "winlog.channel", 14) != NULL;
    size_t join_start = w->text_len;
    for (uint32_t i = 0; i < ev->field_count; i++) {
        const event_field *f = &ev->fields[i];
        if (f->path[0] == 'm' && f->path_len >= 7 && memcmp(f->path, "mamori.", 7) == 0) continue;
        uint32_t pid = strmap_get(&rs->path_index, f->path, f->path_len);
        if (pid != DETECT_NONE) {
            const struct path *p = &rs->paths[pid];
            for (uint32_t k = 0; k < p->db_count; k++) {
                uint32_t db = rs->path_dbs[p->db_first + k];
                if (db_class_applies(&rs->dbs[db].cls, ls)) push_value(w, db, pid, e, f->value);
            }
        }
        if (!keywords || (winlog && field_is_synthesized(f->path, f->path_len))) continue;
        for (uint32_t k = 0; k < nper_value; k++) push_value(w, per_value[k], DETECT_NONE, e, f->value);
        if (!njoined) continue;
        const json_value *v = f->value;
        if (v->type != JSON_ARRAY) join_scalar(w, v, join_start);
        else
            for (uint32_t k = 0; k < v->len; k++) join_scalar(w, &v->items[k], join_start);
    }
    if (w->text_len > join_start)
        for (uint32_t k = 0; k < njoined; k++)
            push_item(w, joined[k], DETECT_NONE, e, NULL, w->text_len - join_start, join_start);
}

static int on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *ctx)
{
    (void)from;
    (void)to;
    (void)flags;
    detect_worker *w = ctx;
    const struct db *db = w->scan_db;
    const uint32_t *alt_path = w->rs->alt_path;
    for (uint32_t k = db->alt_first[id]; k < db->alt_first[id + 1]; k++) {
        uint32_t alt = db->alts[k];
        if (alt_path[alt] != w->scan_path) continue; /* another path sharing this database */
        GROW(w->hits, w->hit_cap, (size_t)w->hit_count + 1);
        w->hits[w->hit_count++] = (struct hit){w->scan_event, alt};
    }
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

void scan_batch(detect_worker *w, const mamori_event *events, uint32_t n)
{
    const detect_ruleset *rs = w->rs;
    MAMORI_ASSERT(n <= DETECT_BATCH_MAX);
    w->item_count = 0;
    w->hit_count = 0;
    w->text_len = 0;
    for (uint32_t e = 0; e < n; e++) list_event(w, &events[e], e);

    /* counting sort by database: each database scanned back to back while it is in cache */
    uint32_t *start = w->db_start;
    memset(start, 0, ((size_t)rs->db_count + 1) * sizeof *start);
    for (uint32_t i = 0; i < w->item_count; i++) start[w->items[i].db + 1]++;
    for (uint32_t d = 0; d < rs->db_count; d++) start[d + 1] += start[d];
    GROW(w->items_sorted, w->items_sorted_cap, (size_t)w->item_count);
    for (uint32_t i = 0; i < w->item_count; i++) w->items_sorted[start[w->items[i].db]++] = w->items[i];

    for (uint32_t i = 0; i < w->item_count; i++) {
        const struct scan_item *it = &w->items_sorted[i];
        w->scan_db = &rs->dbs[it->db];
        w->scan_path = it->path;
        w->scan_event = it->event;
        const char *text = it->text ? it->text : w->text + it->off;
#ifdef DETECT_PROFILE /* per-database cost, for tuning (see docs/detection.md) */
        uint64_t c0 = __builtin_ia32_rdtsc();
#endif
        hs_error_t rc = hs_scan(w->scan_db->hs, it->len ? text : "", it->len, 0, w->scratch, on_match, w);
        if (MAMORI_UNLIKELY(rc != HS_SUCCESS)) scan_failed(w, rc);
#ifdef DETECT_PROFILE
        extern uint64_t detect_profile_scans[4096], detect_profile_bytes[4096], detect_profile_cycles[4096];
        detect_profile_scans[it->db & 4095]++;
        detect_profile_bytes[it->db & 4095] += it->len;
        detect_profile_cycles[it->db & 4095] += __builtin_ia32_rdtsc() - c0;
#endif
    }
    w->stats.scans += w->item_count;

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

static int on_match_now(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *ctx)
{
    (void)from;
    (void)to;
    (void)flags;
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
    return 0;
}

static void lazy_scalar(detect_worker *w, const json_value *v)
{
    char tmp[32];
    const char *text;
    size_t len;
    if (!direct_scalar_text(v, tmp, &text, &len) || len > UINT32_MAX) return;
    hs_error_t rc = hs_scan(w->scan_db->hs, len ? text : "", (unsigned int)len, 0, w->scratch, on_match_now, w);
    w->stats.scans++;
    if (MAMORI_UNLIKELY(rc != HS_SUCCESS)) scan_failed(w, rc);
}

void scan_lazy(detect_worker *w, uint32_t db, uint32_t path)
{
    const detect_ruleset *rs = w->rs;
    const struct path *p = &rs->paths[path];
    const json_value *v = event_get(w->ev, p->str, p->len);
    if (!v) return;
    w->scan_db = &rs->dbs[db];
    w->scan_path = path;
    if (v->type != JSON_ARRAY) {
        lazy_scalar(w, v);
        return;
    }
    for (uint32_t i = 0; i < v->len; i++) lazy_scalar(w, &v->items[i]);
}

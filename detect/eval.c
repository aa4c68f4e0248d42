/* detect/eval.c — the worker and the per-event evaluation. A worker (one per thread) holds
 * Hyperscan scratch and the bitsets for one rule set. A batch of events is classified
 * (logsource), scanned database by database (scan.c), and then evaluated event by event:
 * the event's matched pattern alternatives set their bits; rules owning a set bit, plus the
 * rules that can hold without any match, are the candidates; only their conditions run.
 * Nothing here allocates once the worker's buffers reached their high-water mark. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

detect_worker *detect_worker_create(void) { return mamori_xcalloc(1, sizeof(detect_worker)); }

#ifdef DETECT_AB
int detect_ab_variant;
#endif

void detect_worker_set_warm(detect_worker *w, bool warm) { w->warm = warm; }

void detect_worker_destroy(detect_worker *w)
{
    if (!w) return;
    if (w->scratch) hs_free_scratch(w->scratch);
    detect_ruleset_unref(w->rs);
    free(w->alt_bits);
    free(w->touched);
    free(w->rule_mark);
    free(w->cands);
    free(w->field_mark);
    free(w->field_path);
    free(w->matches);
    free(w->items);
    free(w->items_sorted);
    free(w->hits);
    free(w->hits_sorted);
    free(w->db_start);
    free(w->lazy_mark);
    free(w->lazy_path);
    free(w->text);
    free(w->join);
    free(w->plan_mark);
    free(w->plan_first);
    free(w->plan_count);
    free(w->plan_dbs);
    free(w->path_at);
    free(w->mapped_gen);
    free(w->mapped_path);
    memo_fini(&w->memo);
    shapes_free(w);
    free(w);
}

int detect_worker_bind(detect_worker *w, detect_ruleset *rs)
{
    MAMORI_ASSERT(rs);
    if (w->rs == rs) return 0;
    hs_scratch_t *scratch = NULL;
    if (rs->scratch_proto && hs_clone_scratch(rs->scratch_proto, &scratch) != HS_SUCCESS) return -EIO;
    if (w->scratch) hs_free_scratch(w->scratch);
    w->scratch = scratch;
    memo_init(&w->memo); /* database numbers are the old rule set's */
    size_t alts = rs->alt_count ? rs->alt_count : 1;
    if (alts > w->alt_cap) {
        free(w->alt_bits);
        free(w->touched);
        w->alt_bits = mamori_xcalloc((alts + 63) / 64, sizeof *w->alt_bits);
        w->touched = mamori_xmalloc(alts * sizeof *w->touched);
        w->alt_cap = alts;
    }
    size_t rules = rs->rule_count ? rs->rule_count : 1;
    if (rules > w->rule_cap) {
        free(w->rule_mark);
        free(w->cands);
        free(w->matches);
        w->rule_mark = mamori_xcalloc(rules, sizeof *w->rule_mark);
        w->cands = mamori_xmalloc(rules * sizeof *w->cands);
        w->matches = mamori_xmalloc(rules * sizeof *w->matches);
        w->rule_cap = rules;
    }
    size_t fields = rs->field_count ? rs->field_count : 1;
    if (fields > w->field_cap) {
        free(w->field_mark);
        free(w->field_path);
        free(w->mapped_gen);
        free(w->mapped_path);
        w->field_mark = mamori_xcalloc(fields, sizeof *w->field_mark);
        w->field_path = mamori_xmalloc(fields * sizeof *w->field_path);
        w->mapped_gen = mamori_xcalloc(fields, sizeof *w->mapped_gen);
        w->mapped_path = mamori_xmalloc(fields * sizeof *w->mapped_path);
        w->field_cap = fields;
    }
    if ((size_t)rs->db_count + 1 > w->db_cap) {
        free(w->db_start);
        free(w->lazy_mark);
        free(w->lazy_path);
        w->db_cap = (size_t)rs->db_count + 1;
        w->db_start = mamori_xcalloc(w->db_cap + w->db_cap / 32 + 1, sizeof *w->db_start); /* scan.c sort_items */
        w->lazy_mark = mamori_xcalloc(w->db_cap, sizeof *w->lazy_mark);
        w->lazy_path = mamori_xmalloc(w->db_cap * sizeof *w->lazy_path);
    }
    size_t paths = rs->path_count ? rs->path_count : 1, plan_dbs = 1;
    for (uint32_t p = 0; p < rs->path_count; p++) plan_dbs += rs->paths[p].db_count;
    if (paths > w->plan_path_cap) {
        free(w->plan_mark);
        free(w->plan_first);
        free(w->plan_count);
        free(w->path_at);
        w->plan_mark = mamori_xcalloc(paths, sizeof *w->plan_mark);
        w->plan_first = mamori_xmalloc(paths * sizeof *w->plan_first);
        w->plan_count = mamori_xmalloc(paths * sizeof *w->plan_count);
        w->path_at = mamori_xmalloc(paths * sizeof *w->path_at);
        w->plan_path_cap = paths;
    }
    memset(w->path_at, 0xFF, w->plan_path_cap * sizeof *w->path_at); /* nowhere yet */
    memset(w->mapped_gen, 0, w->field_cap * sizeof *w->mapped_gen);
    w->ls_gen = 0;
    w->gen_valid = false; /* the first event starts generation 1 */
    if (plan_dbs > w->plan_db_cap) {
        free(w->plan_dbs);
        w->plan_dbs = mamori_xmalloc(plan_dbs * sizeof *w->plan_dbs);
        w->plan_db_cap = plan_dbs;
    }
    w->plan_valid = false;
    shapes_forget(w); /* their path ids and databases are the old rule set's */
    memset(w->lazy_mark, 0, w->db_cap * sizeof *w->lazy_mark);
    memset(w->rule_mark, 0, w->rule_cap * sizeof *w->rule_mark);
    memset(w->field_mark, 0, w->field_cap * sizeof *w->field_mark);
    w->mark = 0;
    w->touched_count = 0;
    detect_ruleset *old = w->rs;
    w->rs = detect_ruleset_ref(rs);
    detect_ruleset_unref(old);
    return 0;
}

void detect_worker_stats_get(const detect_worker *w, detect_worker_stats *out) { *out = w->stats; }

/* ---- evaluation ----------------------------------------------------------------------------------- */

/* A field's path in the current event: its winlog.event_data.<Field> when the event has
 * it, else what field_resolve_mapped says for the event's logsource (remembered per field
 * while consecutive events share a logsource). */
static uint32_t resolve(detect_worker *w, uint32_t field)
{
    if (w->field_mark[field] == w->mark) return w->field_path[field];
    const struct sfield *f = &w->rs->fields[field];
    uint32_t path = f->event_data_path;
    if (!path_get(w, path)) {
        if (w->mapped_gen[field] != w->ls_gen) {
            w->mapped_gen[field] = w->ls_gen;
            w->mapped_path[field] = field_resolve_mapped(w->rs, field, &w->ls);
        }
        path = w->mapped_path[field];
    }
    w->field_mark[field] = w->mark;
    w->field_path[field] = path;
    return path;
}

/* Bytewise order of a field's path against a rule path (as core/event.c sorts fields). */
static inline int path_order(const event_field *f, const struct path *p)
{
    return event_path_cmp(f->path, f->path_len, p->str, p->len);
}

/* event_get for a rule path, as its field, without the binary search when the event is shaped
 * like the last one asked: events of one kind hold a path at the same index, or lack it
 * between the same two neighbours. path_at remembers that index (or the insertion position);
 * a hit there is verified in full, an absence by the neighbours' order — exact either way,
 * since the fields are sorted by path and each path is unique (core/event.h). */
const event_field *path_field(detect_worker *w, uint32_t pid)
{
    const struct path *p = &w->rs->paths[pid];
    const event_field *fields = w->ev->fields;
    uint32_t n = w->ev->field_count, at = w->path_at[pid];
    if (at <= n) {
        if (at < n) {
            const event_field *f = &fields[at];
            if ((!f->path_hash || f->path_hash == p->hash) && f->path_len == p->len &&
                path_equal(f->path, p->str, p->len))
                return f;
        }
        if ((at == n || path_order(&fields[at], p) > 0) && (at == 0 || path_order(&fields[at - 1], p) < 0)) return NULL;
    }
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = path_order(&fields[mid], p);
        if (c == 0) {
            w->path_at[pid] = mid;
            return &fields[mid];
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    w->path_at[pid] = lo;
    return NULL;
}

const json_value *path_get(detect_worker *w, uint32_t pid)
{
    const event_field *f = path_field(w, pid);
    return f ? f->value : NULL;
}

static const json_value *field_value(detect_worker *w, uint32_t field) { return path_get(w, resolve(w, field)); }

static inline bool alt_set(const detect_worker *w, uint32_t alt)
{
    return (w->alt_bits[alt >> 6] >> (alt & 63)) & 1;
}

static bool eval_pred(detect_worker *w, const struct rt_pred *p)
{
    const detect_ruleset *rs = w->rs;
    switch (p->kind) {
    case PRED_PATTERN: {
        if (p->field == DETECT_NONE) return alt_set(w, p->alt_first);
        uint32_t path = resolve(w, p->field);
        for (uint32_t k = 0; k < p->alt_count; k++) {
            uint32_t alt = p->alt_first + k;
            if (rs->alt_path[alt] != path) continue;
            if (alt_set(w, alt)) return true;
            if (rs->alt_lit_first[alt] != rs->alt_lit_first[alt + 1]) {
                int direct = lazy_direct(w, alt, path);
                if (direct >= 0) {
                    w->stats.lazy_direct++;
                    return direct;
                }
            }
            for (uint32_t i = rs->alt_lazy_first[alt]; i < rs->alt_lazy_first[alt + 1] && !alt_set(w, alt); i++) {
                uint32_t lazy = rs->alt_lazy_dbs[i];
                if (w->lazy_mark[lazy] != w->mark || w->lazy_path[lazy] != path) {
                    w->lazy_mark[lazy] = w->mark;
                    w->lazy_path[lazy] = path;
                    w->stats.lazy_scans++;
                    scan_lazy(w, lazy, path);
                }
            }
            return alt_set(w, alt);
        }
        return false;
    }
    case PRED_NULL: {
        const json_value *v = field_value(w, p->field);
        return !v || v->type == JSON_NULL;
    }
    case PRED_EXISTS: return (field_value(w, p->field) != NULL) == (p->op != 0);
    case PRED_ANY: {
        if (p->field == DETECT_NONE) return w->ev->field_count > 0;
        const json_value *v = field_value(w, p->field);
        return v && v->type != JSON_NULL;
    }
    case PRED_FIELDREF:
        return direct_eval(rs, p, field_value(w, p->field), field_value(w, p->ref_field));
    default: return direct_eval(rs, p, field_value(w, p->field), NULL);
    }
}

static bool eval_node(detect_worker *w, uint32_t node)
{
    const detect_ruleset *rs = w->rs;
    const struct enode *n = &rs->nodes[node];
    switch (n->kind) {
    case EN_PRED: return eval_pred(w, &rs->preds[n->arg]);
    case EN_NOT: return !eval_node(w, n->arg);
    case EN_AND:
        for (uint32_t i = 0; i < n->count; i++)
            if (!eval_node(w, rs->kids[n->arg + i])) return false;
        return true;
    case EN_OR:
        for (uint32_t i = 0; i < n->count; i++)
            if (eval_node(w, rs->kids[n->arg + i])) return true;
        return false;
    case EN_TRUE: return true;
    default: return false;
    }
}

static void sort_u32(uint32_t *v, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        uint32_t x = v[i], j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* Evaluates event e of the scanned batch; leaves its matches in w->matches. */
static size_t eval_event(detect_worker *w, const mamori_event *ev, uint32_t e)
{
    const detect_ruleset *rs = w->rs;
    if (++w->mark == 0) { /* wrapped: forget every old mark */
        memset(w->rule_mark, 0, w->rule_cap * sizeof *w->rule_mark);
        memset(w->field_mark, 0, w->field_cap * sizeof *w->field_mark);
        memset(w->lazy_mark, 0, w->db_cap * sizeof *w->lazy_mark);
        w->mark = 1;
    }
    w->ev = ev;
    w->ls = w->batch_ls[e];
    w->stats.events++;
    if (!w->gen_valid || w->ls.categories != w->gen_ls.categories || w->ls.service != w->gen_ls.service ||
        w->ls.product != w->gen_ls.product) {
        w->gen_ls = w->ls;
        w->gen_valid = true;
        if (++w->ls_gen == 0) { /* wrapped: every remembered mapping could look current */
            memset(w->mapped_gen, 0, w->field_cap * sizeof *w->mapped_gen);
            w->ls_gen = 1;
        }
    }

    /* this event's hits → bits (an alternative may have been hit more than once) */
    w->touched_count = 0;
    for (uint32_t h = w->event_start[e]; h < w->event_start[e + 1]; h++) {
        uint32_t alt = w->hits_sorted[h];
        uint64_t bit = (uint64_t)1 << (alt & 63);
        if (w->alt_bits[alt >> 6] & bit) continue;
        w->alt_bits[alt >> 6] |= bit;
        w->touched[w->touched_count++] = alt;
    }

    uint32_t cand_count = 0;
    for (uint32_t t = 0; t < w->touched_count; t++) {
        uint32_t rule = rs->alt_trigger[w->touched[t]];
        if (rule == DETECT_NONE || w->rule_mark[rule] == w->mark) continue;
        w->rule_mark[rule] = w->mark;
        if (route_applies(&rs->rules[rule].route, &w->ls)) w->cands[cand_count++] = rule;
    }
    for (uint32_t i = 0; i < rs->always_count; i++) {
        uint32_t rule = rs->always[i];
        if (w->rule_mark[rule] == w->mark) continue;
        w->rule_mark[rule] = w->mark;
        if (route_applies(&rs->rules[rule].route, &w->ls)) w->cands[cand_count++] = rule;
    }
    w->stats.candidates += cand_count;

    uint32_t *hits = w->cands; /* reused in place: hits never outrun the candidates read */
    uint32_t hit_count = 0;
    for (uint32_t i = 0; i < cand_count; i++) {
        uint32_t rule = w->cands[i];
        if (eval_node(w, rs->rules[rule].root)) hits[hit_count++] = rule;
    }
    sort_u32(hits, hit_count);
    for (uint32_t i = 0; i < hit_count; i++) w->matches[i].rule = rs->infos[hits[i]];
    w->stats.matches += hit_count;

    for (uint32_t t = 0; t < w->touched_count; t++) {
        uint32_t alt = w->touched[t];
        w->alt_bits[alt >> 6] &= ~((uint64_t)1 << (alt & 63));
    }
    w->touched_count = 0;
    w->ev = NULL;
    w->match_count = hit_count;
    return hit_count;
}

static void classify_and_scan(detect_worker *w, const mamori_event *events, uint32_t n)
{
    scan_batch(w, events, n); /* classifies each event into w->batch_ls as it goes */
}

size_t detect_eval(detect_worker *w, const mamori_event *ev, const detect_match **matches)
{
    MAMORI_ASSERT(w->rs);
    classify_and_scan(w, ev, 1);
    size_t n = eval_event(w, ev, 0);
    *matches = w->matches;
    return n;
}

size_t detect_eval_batch(detect_worker *w, const mamori_event *events, size_t count, detect_match_fn fn, void *ctx)
{
    MAMORI_ASSERT(w->rs);
    size_t total = 0;
    for (size_t base = 0; base < count; base += DETECT_BATCH_MAX) {
        uint32_t n = (uint32_t)MAMORI_MIN(count - base, (size_t)DETECT_BATCH_MAX);
        classify_and_scan(w, events + base, n);
        for (uint32_t e = 0; e < n; e++) {
            size_t k = eval_event(w, &events[base + e], e);
            for (size_t i = 0; i < k; i++) fn(ctx, base + e, w->matches[i].rule);
            total += k;
        }
    }
    return total;
}

/* detect/plan.c — what the batch walk (scan.c) does with an event's fields, worked out
 * ahead: per logsource, the databases that apply (plan_for, plan_path); per event shape,
 * the walk itself (shape_get: which fields are scanned by which databases, which fields
 * keyword searches read). internal.h defines a shape; shape_build says why a cached one
 * gives exactly what the field-by-field walk gives. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Makes the plan the current event's logsource's: the keyword databases that apply, and no
 * path's list yet (plan_path computes them as fields ask). */
void plan_for(detect_worker *w, const struct logsource_set *ls)
{
    if (w->plan_valid && ls->categories == w->plan_ls.categories && ls->service == w->plan_ls.service &&
        ls->product == w->plan_ls.product)
        return;
    const detect_ruleset *rs = w->rs;
    w->plan_valid = true;
    w->plan_ls = *ls;
    if (++w->plan_gen == 0) { /* wrapped: every mark could look current */
        memset(w->plan_mark, 0, w->plan_path_cap * sizeof *w->plan_mark);
        w->plan_gen = 1;
    }
    w->plan_len = 0;
    w->plan_njoined = w->plan_nper_value = 0;
    w->plan_join_min = UINT32_MAX;
    for (uint32_t i = 0; i < rs->keyword_db_count && w->plan_njoined < KEYWORD_DBS_MAX; i++)
        if (db_class_applies(&rs->keyword_db_cls[i], ls)) {
            w->plan_joined[w->plan_njoined++] = rs->keyword_dbs[i];
            w->plan_join_min = MAMORI_MIN(w->plan_join_min, rs->dbs[rs->keyword_dbs[i]].join_min);
        }
    bool lit = w->plan_njoined > 0;
    for (uint32_t k = 0; k < w->plan_njoined; k++) lit = lit && rs->dbs[w->plan_joined[k]].lit;
    w->plan_join_direct = lit ? JOIN_DIRECT_MIN : SIZE_MAX;
    for (uint32_t i = 0; i < rs->keyword_value_db_count && w->plan_nper_value < KEYWORD_DBS_MAX; i++)
        if (db_class_applies(&rs->keyword_value_db_cls[i], ls))
            w->plan_per_value[w->plan_nper_value++] = rs->keyword_value_dbs[i];
}

/* The databases of path pid that apply to the plan's logsource (*count of them). */
const uint32_t *plan_path(detect_worker *w, uint32_t pid, uint32_t *count)
{
    if (w->plan_mark[pid] != w->plan_gen) {
        const detect_ruleset *rs = w->rs;
        const struct path *p = &rs->paths[pid];
        uint32_t first = w->plan_len; /* each path once per plan: the lists fit plan_db_cap */
        for (uint32_t k = 0; k < p->db_count; k++)
            if (db_class_applies(&rs->path_db_cls[p->db_first + k], &w->plan_ls))
                w->plan_dbs[w->plan_len++] = rs->path_dbs[p->db_first + k];
        w->plan_first[pid] = first;
        w->plan_count[pid] = w->plan_len - first;
        w->plan_mark[pid] = w->plan_gen;
    }
    *count = w->plan_count[pid];
    return w->plan_dbs + w->plan_first[pid];
}

/* ---- walk plans by shape ------------------------------------------------------------------- */

/* Whether what the walk does with a field of path hash `hash` and length len can depend on
 * which path it is: some table path of that hash and length is scanned under the current
 * plan, or is flagged synthesized where that flag counts (keyword searches of a winlog
 * event). Otherwise any path of that hash and length is walked alike (not scanned, read by
 * keyword searches when there are any), table path or not. */
static bool hash_matters(detect_worker *w, uint32_t hash, uint32_t len, bool synthesized_counts)
{
    const detect_ruleset *rs = w->rs;
    for (uint32_t s = hash & rs->path_slot_mask;; s = (s + 1) & rs->path_slot_mask) {
        const struct path_slot *slot = &rs->path_slots[s];
        if (!slot->hash) return false;
        if (slot->hash != hash) continue;
        uint32_t id = slot->ref & PATH_SLOT_ID, count = 0;
        if (slot->ref & PATH_SLOT_EXTRA) {
            if (rs->extra_paths[id].len != len) continue;
        } else {
            if (rs->paths[id].len != len) continue;
            plan_path(w, id, &count);
        }
        if (count || (synthesized_counts && (slot->ref & PATH_SLOT_SYNTHESIZED))) return true;
    }
}

static bool ls_equal(const struct logsource_set *a, const struct logsource_set *b)
{
    return a->categories == b->categories && a->service == b->service && a->product == b->product;
}

static uint64_t shape_tag(const mamori_event *ev, const struct logsource_set *ls, bool winlog)
{
    uint32_t n = ev->field_count;
    const event_field *f = ev->fields;
    uint64_t h = ((uint64_t)n << 1 | winlog) * 0x9E3779B97F4A7C15ull;
    h ^= ls->categories * 0xff51afd7ed558ccdull ^ ((uint64_t)ls->service << 8 | ls->product);
    h ^= shape_field_key(&f[0]) ^ shape_field_key(&f[n / 2]) * 0xc4ceb9fe1a85ec53ull;
    uint64_t last = shape_field_key(&f[n - 1]);
    h ^= last << 17 | last >> 47;
    h = (h ^ h >> 31) * 0xbf58476d1ce4e5b9ull;
    return (h ^ h >> 29) | 1;
}

/* Whether ev has exactly the shape s holds (tag, count, logsource and winlog flag already
 * compared): every field's path length, hash and flags, then the checks. */
static bool shape_matches(const detect_worker *w, const struct shape *s, const mamori_event *ev)
{
    const event_field *f = ev->fields;
    uint64_t diff = 0;
    for (uint32_t i = 0; i < s->field_count; i++)
        diff |= (shape_field_key(&f[i]) ^ s->keys[i]) | (uint8_t)(f[i].flags ^ s->flags[i]);
    if (diff) return false;
    for (uint32_t c = 0; c < s->check_count; c++) {
        const struct shape_check *k = &s->checks[c];
        const event_field *x = &f[k->field];
        if (k->str ? !path_equal(x->path, k->str, x->path_len)
                   : path_lookup(w->rs, x->path, x->path_len, x->path_hash) != DETECT_NONE)
            return false;
    }
    return true;
}

/* The keyword texts shorter than this are joined whatever: comparing costs about what joining
 * and filtering them does. */
#define SUFFIX_MIN 128

bool text_ends(const event_field *c, const event_field *f)
{
    return c->text && f->text && c->text_len >= f->text_len &&
           memcmp(c->text + c->text_len - f->text_len, f->text, f->text_len) == 0;
}

/* Sets s->container, the field with the longest keyword text, and marks the keyword ops (of
 * SUFFIX_MIN bytes or more) whose text ends the container's in ev: a hint, which the walk
 * checks on each event (scan.c list_event). Such a value is not joined: joined expressions are
 * unanchored and within one value, so they match its copy in the container (NXLog's Sysmon
 * `Message` ends with `CallTrace`). Not with an anchored joined expression (join_anchored).
 * The ops are shape_build's, their suffix flags clear. */
static void shape_suffixes(const detect_ruleset *rs, struct shape *s, const mamori_event *ev)
{
    const event_field *f = ev->fields;
    s->container = UINT32_MAX;
    if (rs->join_anchored) return;
    uint32_t longest = 0;
    for (uint32_t o = 0; o < s->op_count; o++) {
        const event_field *x = &f[s->ops[o].field];
        if (s->ops[o].keyword && x->text && x->text_len > longest) {
            longest = x->text_len;
            s->container = s->ops[o].field;
        }
    }
    if (s->container == UINT32_MAX) return;
    for (uint32_t o = 0; o < s->op_count; o++) {
        struct shape_op *op = &s->ops[o];
        const event_field *x = &f[op->field];
        op->suffix = op->keyword && op->field != s->container && x->text_len >= SUFFIX_MIN &&
                     text_ends(&f[s->container], x);
    }
}

/* Works out ev's walk into s, as list_event's field-by-field walk would do it (under the
 * current plan, which is ev's logsource's). False (s left empty) when the shape cannot be
 * cached (a field without path hash).
 *
 * Why a matching event is walked exactly as ev: its fields have ev's path lengths, hashes
 * and flags. The table's answer for a path depends on its bytes only where some slot holds
 * its hash; where none does, the answer is "not in the table" whatever the bytes. Where one
 * does and the walk's outcome could differ between such paths (hash_matters), the shape
 * checks the field: for a path the table held, its bytes equal that table path's; for one it
 * did not, a full lookup still finds none. */
static bool shape_build(detect_worker *w, struct shape *s, const mamori_event *ev, const struct logsource_set *ls,
                        bool winlog, uint64_t tag)
{
    const detect_ruleset *rs = w->rs;
    uint32_t n = ev->field_count;
    s->tag = 0;
    if (n > s->cap) {
        s->keys = mamori_xrealloc(s->keys, n * sizeof *s->keys);
        s->flags = mamori_xrealloc(s->flags, n * sizeof *s->flags);
        s->ops = mamori_xrealloc(s->ops, n * sizeof *s->ops);
        s->joins = mamori_xrealloc(s->joins, n * sizeof *s->joins);
        s->checks = mamori_xrealloc(s->checks, n * sizeof *s->checks);
        s->cap = n;
    }
    if (!s->dbs) { /* never NULL: the walk adds db_first to it */
        s->db_cap = 16;
        s->dbs = mamori_xmalloc(s->db_cap * sizeof *s->dbs);
    }
    s->op_count = s->check_count = s->db_count = 0;
    bool keywords = w->plan_njoined || w->plan_nper_value;
    for (uint32_t i = 0; i < n; i++) {
        const event_field *f = &ev->fields[i];
        if (!f->path_hash) return false;
        s->keys[i] = shape_field_key(f);
        s->flags[i] = f->flags;
        if (f->flags & EVENT_FIELD_SERVER) continue;
        uint32_t ref = path_lookup(rs, f->path, f->path_len, f->path_hash);
        /* its own hash or another path's (SourceProcessId and TargetProcessId share theirs) */
        if (hash_matters(w, f->path_hash, f->path_len, keywords && winlog)) {
            const char *str = NULL;
            if (ref != DETECT_NONE)
                str = ref & PATH_SLOT_EXTRA ? rs->extra_paths[ref & PATH_SLOT_ID].str : rs->paths[ref & PATH_SLOT_ID].str;
            s->checks[s->check_count++] = (struct shape_check){.field = i, .str = str};
        }
        if (ref == DETECT_NONE) ref = PATH_SLOT_EXTRA; /* not in the table: nothing to scan, no flag */
        struct shape_op op = {.field = (uint16_t)i, .keyword = keywords && !(winlog && (ref & PATH_SLOT_SYNTHESIZED)),
                              .pid = DETECT_NONE, .db_first = s->db_count};
        uint32_t count = 0;
        const uint32_t *dbs = ref & PATH_SLOT_EXTRA ? NULL : plan_path(w, ref & PATH_SLOT_ID, &count);
        if (count) {
            if (s->db_count + count > s->db_cap) {
                s->db_cap = MAMORI_MAX(s->db_count + count, s->db_cap * 2);
                s->dbs = mamori_xrealloc(s->dbs, s->db_cap * sizeof *s->dbs);
            }
            memcpy(s->dbs + s->db_count, dbs, count * sizeof *dbs);
            s->db_count += count;
            op.pid = ref & PATH_SLOT_ID;
            op.db_count = count;
        }
        if (op.db_count || op.keyword) s->ops[s->op_count++] = op;
    }
    shape_suffixes(rs, s, ev);
    /* Fields only the joined keyword text reads (no database of their own, no per-value
     * keyword database, not a candidate for the suffix skip) leave the ops: list_event joins
     * them in a loop of their own, without an op's dispatch per field. The joined text's
     * order of values changes nothing: no joined expression crosses a separator. */
    s->join_count = 0;
    if (w->plan_njoined && !w->plan_nper_value) {
        uint32_t k = 0;
        for (uint32_t o = 0; o < s->op_count; o++) {
            const struct shape_op *op = &s->ops[o];
            if (!op->db_count && op->keyword && !op->suffix) s->joins[s->join_count++] = op->field;
            else s->ops[k++] = *op;
        }
        s->op_count = k;
    }
    s->field_count = n;
    s->ls = *ls;
    s->winlog = winlog;
    s->tag = tag;
    return true;
}

const struct shape *shape_get(detect_worker *w, const mamori_event *ev, uint32_t e)
{
    uint32_t n = ev->field_count;
    if (n == 0 || n > SHAPE_FIELDS_MAX || !ev->fields[0].path_hash) return NULL;
    const struct logsource_set *ls = &w->batch_ls[e];
    bool winlog = w->batch_winlog[e];
    uint64_t tag = shape_tag(ev, ls, winlog);
    if (!w->shapes) w->shapes = mamori_xcalloc(SHAPE_SLOTS, sizeof *w->shapes);
    struct shape *s = &w->shapes[(tag >> 32) % SHAPE_SLOTS];
    if (s->tag == tag && s->field_count == n && s->winlog == winlog && ls_equal(&s->ls, ls) && shape_matches(w, s, ev)) {
        w->stats.shape_hits++;
        return s;
    }
    if (!shape_build(w, s, ev, ls, winlog, tag)) return NULL;
    w->stats.shape_builds++;
    return s;
}

void shapes_forget(detect_worker *w)
{
    if (!w->shapes) return;
    for (uint32_t i = 0; i < SHAPE_SLOTS; i++) w->shapes[i].tag = 0;
}

void shapes_free(detect_worker *w)
{
    if (!w->shapes) return;
    for (uint32_t i = 0; i < SHAPE_SLOTS; i++) {
        free(w->shapes[i].keys);
        free(w->shapes[i].flags);
        free(w->shapes[i].ops);
        free(w->shapes[i].joins);
        free(w->shapes[i].checks);
        free(w->shapes[i].dbs);
    }
    free(w->shapes);
    w->shapes = NULL;
}

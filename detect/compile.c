/* detect/compile.c — loaded rules → an immutable rule set. Each rule's condition tree
 * becomes a small evaluation program (enodes) over predicates; every string predicate gets
 * one "alternative" per ECS path its field may live at (fields.c) and each alternative's
 * expressions go into the Hyperscan database of that path — one block-mode database per
 * path and routing class holding every rule's expressions, identical expressions shared;
 * anchored plain literals go to a literal set of the path instead (literal.c). Databases compile (compile_db.c)
 * on a small thread pool; an expression Hyperscan still refuses there rejects the rules
 * using it (named in the report) and its database is rebuilt without them. */
#include "compile_internal.h"

#include "core/clock.h"
#include "core/ecs_map.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_uint_fast64_t next_generation = 1;

/* ---- interning ---------------------------------------------------------------------------------- */

/* A path's id in the table, added on first sight. A static string (an ecs_map row's path,
 * which is the very pointer the normalizer gives its mapped fields) is kept as it is, not
 * copied: then an event field's path is often the table's own pointer, and the walk's checks
 * (shape_matches) stop at comparing pointers. */
static uint32_t intern_path_as(builder *b, const char *s, size_t len, bool is_static)
{
    detect_ruleset *rs = b->rs;
    uint32_t id = strmap_get(&rs->path_index, s, len);
    if (id != DETECT_NONE) return id;
    const char *copy = is_static ? s : arena_strndup(&rs->mem, s, len);
    struct path p = {.str = copy, .len = (uint32_t)len, .hash = event_path_hash(copy, len), .db_first = 0, .db_count = 0};
    id = rs->path_count;
    VEC_PUSH(rs->paths, rs->path_count, b->path_cap, p);
    strmap_put(&rs->path_index, copy, len, id);
    return id;
}

static uint32_t intern_path(builder *b, const char *s, size_t len) { return intern_path_as(b, s, len, false); }

static uint32_t intern_field(builder *b, const char *name, size_t len)
{
    detect_ruleset *rs = b->rs;
    uint32_t id = strmap_get(&b->field_index, name, len);
    if (id != DETECT_NONE) return id;
    struct sfield f;
    f.name = arena_strndup(&rs->mem, name, len);
    f.len = (uint32_t)len;
    size_t ed_len = sizeof "winlog.event_data." - 1 + len;
    char *ed = arena_alloc(&rs->mem, ed_len + 1);
    memcpy(ed, "winlog.event_data.", sizeof "winlog.event_data." - 1);
    memcpy(ed + ed_len - len, name, len);
    ed[ed_len] = '\0';
    f.event_data_path = intern_path(b, ed, ed_len);
    const char *alias = field_system_alias(name, len);
    f.alias_path = alias ? intern_path(b, alias, strlen(alias)) : DETECT_NONE;
    id = rs->field_count;
    VEC_PUSH(rs->fields, rs->field_count, b->field_cap, f);
    strmap_put(&b->field_index, f.name, len, id);
    return id;
}

static struct db_class class_of(const struct route *r)
{
    struct db_class c = {0, r->product, 0};
    if (r->categories) c.category = (uint8_t)__builtin_ctzll(r->categories);
    else c.service = r->service;
    return c;
}

static uint64_t build_key(uint32_t path, struct db_class c, bool joined, bool regex, bool lazy, bool literal)
{
    _Static_assert(LOGSOURCE_CATEGORY_COUNT <= 256 && LOGSOURCE_PRODUCT_COUNT <= 16 && LOGSOURCE_SERVICE_COUNT <= 4096,
                   "build keys pack the class in 24 bits");
    return ((uint64_t)path << 32) | ((uint64_t)c.category << 24) | ((uint64_t)c.product << 20) |
           ((uint64_t)c.service << 8) | (joined ? 1u : 0u) | (regex ? 2u : 0u) | (lazy ? 4u : 0u) | (literal ? 8u : 0u);
}

static struct db_build *build_for(builder *b, uint32_t path, struct db_class cls, bool joined, bool regex, bool lazy,
                                  bool literal)
{
    uint64_t key = build_key(path, cls, joined, regex, lazy, literal);
    if ((b->build_count + 1) * 2 > b->build_slot_cap) { /* grow and rehash */
        uint32_t cap = b->build_slot_cap ? b->build_slot_cap * 2 : 1024;
        free(b->build_keys);
        free(b->build_slots);
        b->build_keys = mamori_xmalloc(cap * sizeof *b->build_keys);
        b->build_slots = mamori_xcalloc(cap, sizeof *b->build_slots);
        b->build_slot_cap = cap;
        for (uint32_t i = 0; i < b->build_count; i++) {
            const struct db_build *d = &b->builds[i];
            uint64_t k = build_key(d->path, d->cls, d->joined, d->regex, d->lazy, d->literal);
            uint32_t slot = (uint32_t)(mamori_hash64(&k, sizeof k) & (cap - 1));
            while (b->build_slots[slot]) slot = (slot + 1) & (cap - 1);
            b->build_keys[slot] = k;
            b->build_slots[slot] = i + 1;
        }
    }
    uint32_t mask = b->build_slot_cap - 1;
    uint32_t slot = (uint32_t)(mamori_hash64(&key, sizeof key) & mask);
    while (b->build_slots[slot]) {
        if (b->build_keys[slot] == key) return &b->builds[b->build_slots[slot] - 1];
        slot = (slot + 1) & mask;
    }
    struct db_build nb = {.path = path, .joined = joined, .regex = regex, .lazy = lazy, .literal = literal,
                          .cls = cls, .failed_expression = -1};
    VEC_PUSH(b->builds, b->build_count, b->build_cap, nb);
    b->build_keys[slot] = key;
    b->build_slots[slot] = b->build_count;
    return &b->builds[b->build_count - 1];
}


/* A literal set takes the contains values of its path and class that it can hold
 * (literal_contains_overflow: all when its substring filter can hold those of two bytes or
 * more, else the one- and two-byte ones); the others go to the path's Hyperscan database,
 * whose literal matcher is built for large sets but spends dozens of cycles per byte
 * confirming one- and two-byte literals. */
static void split_contains(builder *b)
{
    uint32_t n = b->build_count;
    for (uint32_t i = 0; i < n; i++) {
        struct db_build *db = &b->builds[i];
        if (!db->literal) continue;
        db_prepare(db);
        uint32_t from = literal_contains_overflow(db->exprs, db->flags, db->id_count);
        if (from == UINT32_MAX) continue;
        struct entry *moved = NULL;
        uint32_t moved_count = 0, moved_cap = 0, kept = 0;
        for (uint32_t k = 0; k < db->count; k++) {
            uint32_t len;
            if (literal_parse(db->entries[k].expr, db->entries[k].flags, NULL, &len) == LIT_CONTAINS && len >= from)
                VEC_PUSH(moved, moved_count, moved_cap, db->entries[k]);
            else db->entries[kept++] = db->entries[k];
        }
        db->count = kept;
        uint32_t path = db->path;
        struct db_class cls = db->cls;
        bool joined = db->joined, lazy = db->lazy;
        struct db_build *hs = build_for(b, path, cls, joined, false, lazy, false); /* may move b->builds */
        for (uint32_t k = 0; k < moved_count; k++) VEC_PUSH(hs->entries, hs->count, hs->cap, moved[k]);
        free(moved);
    }
}

/* ---- rules → program -------------------------------------------------------------------------- */

static uint32_t add_node(builder *b, enum enode_kind kind, uint32_t count, uint32_t arg)
{
    struct enode n = {.kind = (uint8_t)kind, .count = count, .arg = arg};
    uint32_t id = b->rs->node_count;
    VEC_PUSH(b->rs->nodes, b->rs->node_count, b->node_cap, n);
    return id;
}

static void push_alt(builder *b, uint32_t pred, uint32_t path, uint32_t primary)
{
    detect_ruleset *rs = b->rs;
    if (rs->alt_count == b->alt_cap) {
        b->alt_cap = b->alt_cap ? b->alt_cap * 2 : 1024;
        rs->alt_pred = mamori_xrealloc(rs->alt_pred, b->alt_cap * sizeof *rs->alt_pred);
        rs->alt_path = mamori_xrealloc(rs->alt_path, b->alt_cap * sizeof *rs->alt_path);
        b->alt_primary = mamori_xrealloc(b->alt_primary, b->alt_cap * sizeof *b->alt_primary);
    }
    rs->alt_pred[rs->alt_count] = pred;
    rs->alt_path[rs->alt_count] = path;
    b->alt_primary[rs->alt_count] = primary;
    rs->alt_count++;
}

/* Which database each path's values are scanned with: its own, or — for a path that is
 * only ever a displacement fallback of one primary path — the primary's, where its
 * expressions are the primary's own (identical, so shared) and the match callback keeps
 * alternatives apart by the path being scanned. */
static void distribute_entries(builder *b)
{
    detect_ruleset *rs = b->rs;
    uint32_t *target = mamori_xmalloc((rs->path_count ? rs->path_count : 1) * sizeof *target);
    bool *own = mamori_xcalloc(rs->path_count ? rs->path_count : 1, sizeof *own);
    for (uint32_t p = 0; p < rs->path_count; p++) target[p] = DETECT_NONE;
    for (uint32_t a = 0; a < rs->alt_count; a++) {
        uint32_t path = rs->alt_path[a], primary = b->alt_primary[a];
        if (path == DETECT_NONE) continue;
        if (primary == DETECT_NONE) own[path] = true;
        else if (target[path] == DETECT_NONE) target[path] = primary;
        else if (target[path] != primary) own[path] = true;
    }
    for (uint32_t p = 0; p < rs->path_count; p++)
        if (own[p] || target[p] == DETECT_NONE) target[p] = p;
    /* lazy alternatives lazy.c cannot answer without a scan (a user regular expression, a `?`
     * wildcard, windash, more than LAZY_DIRECT_MAX values) get a database of their own per path
     * and class: asking for one of them does not scan the thousands of patterns lazy.c answers */
    uint32_t *exprs = mamori_xcalloc(rs->alt_count ? rs->alt_count : 1, sizeof *exprs);
    bool *hard = mamori_xcalloc(rs->alt_count ? rs->alt_count : 1, sizeof *hard);
    for (uint32_t i = 0; i < b->pending_count; i++) {
        const struct entry *e = &b->pending[i];
        exprs[e->alt]++;
        if (!lazy_expr_answerable(e->expr, e->flags)) hard[e->alt] = true;
    }
    for (uint32_t a = 0; a < rs->alt_count; a++) hard[a] = hard[a] || exprs[a] > LAZY_DIRECT_MAX;
    free(exprs);
    for (uint32_t i = 0; i < b->pending_count; i++) {
        const struct entry *e = &b->pending[i];
        uint32_t path = rs->alt_path[e->alt];
        const struct rt_pred *p = &rs->preds[rs->alt_pred[e->alt]];
        const struct rt_rule *r = &rs->rules[p->rule];
        /* only trigger patterns are scanned for every event; the others wait for a candidate
         * rule to need them (keywords are always scanned: their text is joined once) */
        bool lazy = path != DETECT_NONE && !p->trigger && !r->always;
        /* plain literals (most endswith/startswith/exact values, and small sets of contains
         * values) are looked up or filtered, not scanned by Hyperscan: a literal set of their
         * own (literal.c); split_contains sends contains values back to Hyperscan when the
         * set's filter cannot hold them */
        uint32_t lit_len;
        bool apart = lazy && hard[e->alt];
        bool literal = (path != DETECT_NONE || e->joined) && !e->regex && !apart &&
                       literal_parse(e->expr, e->flags, NULL, &lit_len) >= 0;
        struct db_build *db = build_for(b, path == DETECT_NONE ? DETECT_NONE : target[path], class_of(&r->route),
                                        path == DETECT_NONE && e->joined,
                                        (e->regex && path != DETECT_NONE && !lazy) || apart, lazy, literal);
        VEC_PUSH(db->entries, db->count, db->cap, *e);
    }
    free(b->pending);
    b->pending = NULL;
    free(hard);
    free(own);
    b->path_target = target;
}

static uint32_t make_pred(builder *b, const struct pspec *ps, uint32_t rule, const struct lrule *lr)
{
    detect_ruleset *rs = b->rs;
    struct rt_pred p;
    memset(&p, 0, sizeof p);
    p.kind = ps->kind;
    p.op = ps->op;
    p.cased = ps->cased;
    p.rule = rule;
    p.number = ps->number;
    p.cidr = ps->cidr;
    p.field = ps->field ? intern_field(b, ps->field, ps->field_len) : DETECT_NONE;
    p.ref_field = ps->kind == PRED_FIELDREF ? intern_field(b, ps->ref_field, ps->ref_len) : DETECT_NONE;
    uint32_t pred_id = rs->pred_count;
    if (ps->kind == PRED_PATTERN) {
        uint32_t first_alt = rs->alt_count;
        if (!ps->field) {
            push_alt(b, pred_id, DETECT_NONE, DETECT_NONE);
        } else {
            struct field_place places[PATHS_PER_FIELD_MAX];
            const struct path *ed = &rs->paths[rs->fields[p.field].event_data_path];
            uint32_t n = field_places(ps->field, ps->field_len, &lr->ls, ed->str, places, PATHS_PER_FIELD_MAX);
            for (uint32_t i = 0; i < n; i++) {
                uint32_t path = intern_path(b, places[i].path, strlen(places[i].path));
                uint32_t primary = places[i].primary && places[i].shared
                                       ? intern_path(b, places[i].primary, strlen(places[i].primary))
                                       : DETECT_NONE;
                push_alt(b, pred_id, path, primary);
            }
        }
        p.alt_first = first_alt;
        p.alt_count = rs->alt_count - first_alt;
        if (!lr->route.unroutable) {
            for (uint32_t i = 0; i < p.alt_count; i++)
                for (uint32_t k = 0; k < ps->pattern_count; k++) {
                    struct entry e = {ps->patterns[k].expr, ps->patterns[k].flags, first_alt + i,
                                      ps->patterns[k].joined, ps->patterns[k].regex};
                    VEC_PUSH(b->pending, b->pending_count, b->pending_cap, e);
                }
        }
    }
    VEC_PUSH(rs->preds, rs->pred_count, b->pred_cap, p);
    if (b->strength_cap < rs->pred_count) {
        b->strength_cap = b->strength_cap ? b->strength_cap * 2 : 1024;
        b->strength = mamori_xrealloc(b->strength, b->strength_cap * sizeof *b->strength);
        b->pspec = mamori_xrealloc(b->pspec, b->strength_cap * sizeof *b->pspec);
    }
    b->strength[pred_id] = ps->kind == PRED_PATTERN ? pred_strength(ps) : -1;
    b->pspec[pred_id] = ps;
    return pred_id;
}

/* A trigger made of user regular expressions waits behind their required literals: a
 * predicate of those literals on the same field (caseless contains, in the literal sets with
 * the thousands of others) becomes the trigger, and the expressions become lazy, asked only
 * of the candidates it makes (by a database of their own, lazy.c). Exact: every match of an
 * expression contains its literal (regex_factor), so a rule the literals leave out could not
 * hold. Scanning every command line with process_creation's ~20 trigger expressions took
 * ~490 ns (Hyperscan, all together); their literals cost next to nothing there. */
static void factor_triggers(builder *b, uint32_t first_pred, uint32_t rule, const struct lrule *lr)
{
    detect_ruleset *rs = b->rs;
    for (uint32_t p = first_pred, end = rs->pred_count; p < end; p++) {
        const struct pspec *ps = b->pspec[p];
        if (!rs->preds[p].trigger || ps->kind != PRED_PATTERN || !ps->field || !ps->pattern_count) continue;
        struct pattern *factors = arena_alloc(&rs->mem, ps->pattern_count * sizeof *factors);
        uint32_t k = 0;
        for (; k < ps->pattern_count; k++) {
            const struct pattern *pt = &ps->patterns[k];
            char lit[64];
            uint32_t n = pt->regex ? regex_factor(pt->expr, pt->flags, lit, sizeof lit) : 0;
            if (n < FACTOR_MIN) break;
            /* `*lit*`, caseless, as a rule's contains value compiles */
            sigstr contains = sigstr_wrap(&rs->mem, sigstr_literal(&rs->mem, lit, n), true, true);
            uint32_t flags;
            const char *expr = sigstr_expression(&rs->mem, &contains, false, &flags);
            factors[k] = (struct pattern){.expr = expr, .flags = flags};
        }
        if (k < ps->pattern_count) continue;
        struct pspec *f = arena_alloc(&rs->mem, sizeof *f);
        *f = *ps;
        f->patterns = factors;
        uint32_t fid = make_pred(b, f, rule, lr);
        rs->preds[fid].trigger = true;
        rs->preds[p].trigger = false;
    }
}

static uint32_t compile_node(builder *b, struct cnode *n, uint32_t rule, const struct lrule *lr)
{
    if (n->memo_rule == rule + 1) return n->memo_node;
    uint32_t id;
    switch (n->kind) {
    case CN_PRED: id = add_node(b, EN_PRED, 0, make_pred(b, n->pred, rule, lr)); break;
    case CN_NOT: {
        uint32_t kid = compile_node(b, n->kids[0], rule, lr);
        id = add_node(b, EN_NOT, 1, kid);
        break;
    }
    case CN_AND:
    case CN_OR: {
        uint32_t *kids = mamori_xmalloc(n->count * sizeof *kids);
        for (uint32_t i = 0; i < n->count; i++) kids[i] = compile_node(b, n->kids[i], rule, lr);
        uint32_t first = b->rs->kid_count;
        for (uint32_t i = 0; i < n->count; i++) VEC_PUSH(b->rs->kids, b->rs->kid_count, b->kid_cap, kids[i]);
        free(kids);
        id = add_node(b, n->kind == CN_AND ? EN_AND : EN_OR, n->count, first);
        break;
    }
    default: id = add_node(b, EN_FALSE, 0, 0); break;
    }
    n->memo_rule = rule + 1;
    n->memo_node = id;
    return id;
}

/* Three-valued evaluation with every Hyperscan predicate false and the others unknown: a
 * rule that is false here can only match when one of its patterns matched. */
enum tv { TV_FALSE = 0, TV_TRUE, TV_UNKNOWN };

__attribute__((unused)) static enum tv static_eval(const detect_ruleset *rs, uint32_t node)
{
    const struct enode *n = &rs->nodes[node];
    switch (n->kind) {
    case EN_FALSE: return TV_FALSE;
    case EN_TRUE: return TV_TRUE;
    case EN_PRED: return rs->preds[n->arg].kind == PRED_PATTERN ? TV_FALSE : TV_UNKNOWN;
    case EN_NOT: {
        enum tv v = static_eval(rs, n->arg);
        return v == TV_UNKNOWN ? TV_UNKNOWN : v == TV_TRUE ? TV_FALSE : TV_TRUE;
    }
    case EN_AND:
    case EN_OR: {
        bool and = n->kind == EN_AND;
        enum tv acc = and ? TV_TRUE : TV_FALSE;
        for (uint32_t i = 0; i < n->count; i++) {
            enum tv v = static_eval(rs, rs->kids[n->arg + i]);
            if (and && v == TV_FALSE) return TV_FALSE;
            if (!and && v == TV_TRUE) return TV_TRUE;
            if (v == TV_UNKNOWN) acc = TV_UNKNOWN;
        }
        return acc;
    }
    default: return TV_UNKNOWN;
    }
}

/* Trigger predicates: a set of Hyperscan predicates one of which must match for the rule to
 * hold — an AND needs only one triggerable side (the strongest), an OR needs all of its
 * sides, a NOT or a direct predicate (null, exists, numbers…) cannot trigger. A rule with no
 * trigger set is evaluated on every event it routes to. Returns the set's strength (its
 * weakest predicate), < 0 when the node cannot be triggered. */
static double trigger_score(const builder *b, uint32_t node)
{
    const detect_ruleset *rs = b->rs;
    const struct enode *n = &rs->nodes[node];
    switch (n->kind) {
    case EN_PRED: return b->strength[n->arg];
    case EN_AND: {
        double best = -1;
        for (uint32_t i = 0; i < n->count; i++) best = MAMORI_MAX(best, trigger_score(b, rs->kids[n->arg + i]));
        return best;
    }
    case EN_OR: {
        double worst = 1e18;
        for (uint32_t i = 0; i < n->count; i++) {
            double s = trigger_score(b, rs->kids[n->arg + i]);
            if (s < 0) return -1;
            worst = MAMORI_MIN(worst, s);
        }
        return n->count ? worst : -1;
    }
    default: return -1;
    }
}

static void mark_triggers(builder *b, uint32_t node)
{
    detect_ruleset *rs = b->rs;
    const struct enode *n = &rs->nodes[node];
    switch (n->kind) {
    case EN_PRED: rs->preds[n->arg].trigger = true; break;
    case EN_OR:
        for (uint32_t i = 0; i < n->count; i++) mark_triggers(b, rs->kids[n->arg + i]);
        break;
    case EN_AND: {
        uint32_t best = DETECT_NONE;
        double best_score = -1;
        for (uint32_t i = 0; i < n->count; i++) {
            double s = trigger_score(b, rs->kids[n->arg + i]);
            if (s > best_score) best_score = s, best = rs->kids[n->arg + i];
        }
        if (best != DETECT_NONE) mark_triggers(b, best);
        break;
    }
    default: break;
    }
}

/* ---- the rule set ------------------------------------------------------------------------------ */

void ruleset_free(detect_ruleset *rs)
{
    if (!rs) return;
    for (uint32_t i = 0; i < rs->db_count; i++) {
        literal_set_free(rs->dbs[i].lit);
        if (rs->dbs[i].split) {
            hs_free_database(rs->db_splits[i].lines);
            hs_free_database(rs->db_splits[i].rest);
        }
        free(rs->dbs[i].exprs);
        free(rs->dbs[i].flags);
    }
    if (rs->scratch_proto) hs_free_scratch(rs->scratch_proto);
    lazy_direct_free(rs);
    ruleset_hot_release(rs); /* the arrays hot.c lists and the databases, on its mapping or not */
    free(rs->db_splits);
    free(rs->infos);
    free(rs->row_path);
    strmap_fini(&rs->path_index);
    arena_fini(&rs->mem);
    free(rs);
}

static void parse_extensions(detect_ruleset *rs)
{
    json_parser *jp = NULL;
    for (uint32_t i = 0; i < rs->rule_count; i++) {
        detect_rule *info = rs->infos[i];
        if (!info->x_mamori_json) continue;
        if (!jp) jp = json_parser_create();
        json_value *v = arena_alloc(&rs->mem, sizeof *v);
        json_error jerr;
        if (json_parse(jp, &rs->mem, info->x_mamori_json, strlen(info->x_mamori_json), v, &jerr) == 0) info->x_mamori = v;
    }
    json_parser_destroy(jp);
}

/* The fewest bytes of one value any of a joined database's expressions can match: Hyperscan's
 * minimum match width (the value-boundary anchors `(?:^|\xff)` and `(?:\xff|$)` count for
 * nothing there, and their \xff alternative only adds the separator around the same value
 * bytes). 0 when an expression cannot be analysed. */
static uint32_t join_min(const char *const *exprs, const uint32_t *flags, uint32_t count)
{
    uint32_t min = UINT32_MAX;
    for (uint32_t k = 0; k < count && min; k++) {
        hs_expr_info_t *info = NULL;
        hs_compile_error_t *cerr = NULL;
        if (hs_expression_info(exprs[k], flags[k], &info, &cerr) == HS_SUCCESS && info)
            min = MAMORI_MIN(min, info->min_width);
        else
            min = 0;
        if (cerr) hs_free_compile_error(cerr);
        free(info);
    }
    return min == UINT32_MAX ? 0 : min;
}

/* Each alternative's lazy databases (alt_lazy_first/alt_lazy_dbs), each listed once. */
static void lazy_lists(detect_ruleset *rs)
{
    uint32_t n = rs->alt_count;
    uint32_t *last = mamori_xcalloc(n ? n : 1, sizeof *last); /* last database counted + 1 */
    rs->alt_lazy_first = mamori_xcalloc((size_t)n + 1, sizeof *rs->alt_lazy_first);
    for (int pass = 0; pass < 2; pass++) {
        uint32_t *fill = pass ? mamori_xcalloc(n ? n : 1, sizeof *fill) : NULL;
        for (uint32_t i = 0; i < rs->db_count; i++) {
            const struct db *d = &rs->dbs[i];
            if (!d->lazy) continue;
            for (uint32_t k = 0; k < d->alt_first[d->id_count]; k++) {
                uint32_t a = d->alts[k];
                if (last[a] == i + 1) continue; /* another pattern of it in this database */
                last[a] = i + 1;
                if (pass == 0) rs->alt_lazy_first[a + 1]++;
                else rs->alt_lazy_dbs[rs->alt_lazy_first[a] + fill[a]++] = i;
            }
        }
        if (pass == 0) {
            for (uint32_t a = 0; a < n; a++) rs->alt_lazy_first[a + 1] += rs->alt_lazy_first[a];
            uint32_t total = rs->alt_lazy_first[n];
            rs->alt_lazy_dbs = mamori_xmalloc((total ? total : 1) * sizeof *rs->alt_lazy_dbs);
            memset(last, 0, (n ? n : 1) * sizeof *last);
        }
        free(fill);
    }
    free(last);
}

int ruleset_build(detect_loader *l, struct lrule **lrules, uint32_t count, detect_ruleset **out, detect_report *report,
                  char *err, size_t err_len)
{
    detect_ruleset *rs = mamori_xcalloc(1, sizeof *rs);
    atomic_init(&rs->refs, 1);
    rs->generation = atomic_fetch_add(&next_generation, 1);
    arena *mem = loader_take_memory(l);
    rs->mem = *mem;
    free(mem);
    strmap_init(&rs->path_index);
    builder b = {.rs = rs, .loader = l};
    int rc = 0;

    strmap_init(&b.field_index);
    int64_t t0 = clock_mono_us();

    /* every ecs_map row's path, so runtime resolution never misses an interned path */
    rs->row_path = mamori_xmalloc(ecs_map_count() * sizeof *rs->row_path);
    for (size_t i = 0; i < ecs_map_count(); i++) {
        const char *p = ecs_map_at(i)->ecs_path;
        rs->row_path[i] = intern_path_as(&b, p, strlen(p), true);
    }

    uint32_t live = 0;
    for (uint32_t i = 0; i < count; i++) live += !lrules[i]->dead;
    rs->infos = mamori_xmalloc((live ? live : 1) * sizeof *rs->infos);
    rs->rules = mamori_xcalloc(live ? live : 1, sizeof *rs->rules);
    uint32_t *rule_source = mamori_xmalloc((live ? live : 1) * sizeof *rule_source);
    for (uint32_t i = 0; i < count; i++) {
        struct lrule *lr = lrules[i];
        if (lr->dead) continue;
        uint32_t idx = rs->rule_count++;
        rule_source[idx] = i;
        lr->info.index = idx;
        rs->infos[idx] = &lr->info;
        rs->rules[idx].route = lr->route;
        uint32_t first_pred = rs->pred_count;
        rs->rules[idx].root = compile_node(&b, lr->cond, idx, lr);
        uint32_t root = rs->rules[idx].root;
        bool triggerable = trigger_score(&b, root) >= 0;
        MAMORI_DEBUG_ASSERT(!triggerable || static_eval(rs, root) == TV_FALSE); /* sound, maybe not tight */
        if (triggerable) mark_triggers(&b, root);
        if (triggerable) factor_triggers(&b, first_pred, idx, lr);
        rs->rules[idx].always = !triggerable;
    }

    order_kids(rs);
    distribute_entries(&b);
    split_contains(&b);
    for (uint32_t i = 0; i < b.build_count; i++) db_prepare(&b.builds[i]);
    int64_t t1 = clock_mono_us();
    db_compile_all(&b, l ? loader_options(l)->compile_threads : 0);
    for (uint32_t i = 0; i < b.build_count && rc == 0; i++) {
        struct db_build *db = &b.builds[i];
        if (db->failed_expression == -1) continue;
        if (db_repair(&b, lrules, rule_source, db)) {
            snprintf(err, err_len, "Hyperscan could not compile the database of %s: %s",
                     db->path == DETECT_NONE ? "keywords" : rs->paths[db->path].str, db->error);
            rc = -EIO;
        }
    }
    int64_t t2 = clock_mono_us();
    /* final databases, in build order */
    rs->dbs = mamori_xcalloc(b.build_count ? b.build_count : 1, sizeof *rs->dbs);
    uint64_t db_bytes = 0, patterns = 0;
    for (uint32_t i = 0; i < b.build_count; i++) {
        struct db_build *bd = &b.builds[i];
        if (rc == 0 && (bd->hs || bd->lit)) {
            struct db *d = &rs->dbs[rs->db_count++];
            d->hs = bd->hs;
            d->lit = bd->lit;
            bd->hs = NULL;
            bd->lit = NULL;
            d->path = bd->path;
            d->cls = bd->cls;
            d->joined = bd->joined;
            d->regex = bd->regex;
            d->lazy = bd->lazy;
            d->id_count = bd->id_count;
            d->alt_first = bd->alt_first;
            d->alts = bd->alts;
            d->exprs = bd->exprs;
            d->flags = bd->flags;
            bd->exprs = NULL;
            bd->flags = NULL;
            bd->alt_first = NULL;
            bd->alts = NULL;
            if (d->hs) hs_database_size(d->hs, &d->bytes);
            else d->bytes = literal_set_bytes(d->lit);
            d->defer = d->hs && !d->joined && d->bytes >= DETECT_DEFER_BYTES;
            d->memo = !d->joined && (d->hs || literal_set_worth_memo(d->lit));
            d->line_local = bd->line_local;
            d->rest_gated = bd->rest_gated;
            if (bd->lines_hs && bd->rest_hs) {
                if (!rs->db_splits) rs->db_splits = mamori_xcalloc(b.build_count, sizeof *rs->db_splits);
                rs->db_splits[rs->db_count - 1] = (struct db_split){.lines = bd->lines_hs, .rest = bd->rest_hs};
                d->split = true;
                bd->lines_hs = bd->rest_hs = NULL;
            }
            if (d->joined) {
                d->join_min = join_min(d->exprs, d->flags, d->id_count);
                const size_t start = sizeof KEYWORD_VALUE_START - 1, end = sizeof KEYWORD_VALUE_END - 1;
                for (uint32_t k = 0; k < d->id_count; k++) {
                    size_t n = strlen(d->exprs[k]);
                    rs->join_anchored |= !strncmp(d->exprs[k], KEYWORD_VALUE_START, start) ||
                                         (n >= end && !strcmp(d->exprs[k] + n - end, KEYWORD_VALUE_END));
                }
            }
            db_bytes += d->bytes;
            patterns += d->id_count;
        }
        if (bd->hs) hs_free_database(bd->hs);
        if (bd->lines_hs) hs_free_database(bd->lines_hs);
        if (bd->rest_hs) hs_free_database(bd->rest_hs);
        literal_set_free(bd->lit);
        free(bd->entries);
        free(bd->exprs);
        free(bd->flags);
        free(bd->alt_first);
        free(bd->alts);
    }
    /* per target path, the list of its databases; every path scans its target's list */
    uint32_t *first = mamori_xcalloc((size_t)rs->path_count + 1, sizeof *first);
    for (uint32_t i = 0; i < rs->db_count; i++) {
        const struct db *d = &rs->dbs[i];
        if (d->path != DETECT_NONE && !d->lazy) first[d->path + 1]++;
    }
    for (uint32_t p = 0; p < rs->path_count; p++) first[p + 1] += first[p];
    rs->path_dbs = mamori_xmalloc((first[rs->path_count] ? first[rs->path_count] : 1) * sizeof *rs->path_dbs);
    rs->path_db_cls = mamori_xmalloc((first[rs->path_count] ? first[rs->path_count] : 1) * sizeof *rs->path_db_cls);
    uint32_t *fill = mamori_xcalloc(rs->path_count ? rs->path_count : 1, sizeof *fill);
    rs->keyword_dbs = mamori_xmalloc((rs->db_count ? rs->db_count : 1) * sizeof *rs->keyword_dbs);
    rs->keyword_value_dbs = mamori_xmalloc((rs->db_count ? rs->db_count : 1) * sizeof *rs->keyword_value_dbs);
    rs->keyword_db_cls = mamori_xmalloc((rs->db_count ? rs->db_count : 1) * sizeof *rs->keyword_db_cls);
    rs->keyword_value_db_cls = mamori_xmalloc((rs->db_count ? rs->db_count : 1) * sizeof *rs->keyword_value_db_cls);
    lazy_lists(rs);
    rs->alt_trigger = mamori_xmalloc((rs->alt_count ? rs->alt_count : 1) * sizeof *rs->alt_trigger);
    for (uint32_t a = 0; a < rs->alt_count; a++) {
        const struct rt_pred *p = &rs->preds[rs->alt_pred[a]];
        rs->alt_trigger[a] = p->trigger && !rs->rules[p->rule].dead ? p->rule : DETECT_NONE;
    }
    int64_t t3 = clock_mono_us();
    lazy_direct_build(rs, l ? loader_options(l)->compile_threads : 0); /* its Hyperscan databases count as compile time, its bytes as databases' */
    t2 += clock_mono_us() - t3;
    db_bytes += rs->alt_bytes;
    for (uint32_t i = 0; i < rs->db_count; i++) {
        const struct db *d = &rs->dbs[i];
        if (d->lazy) continue;
        if (d->path != DETECT_NONE) {
            rs->path_db_cls[first[d->path] + fill[d->path]] = d->cls;
            rs->path_dbs[first[d->path] + fill[d->path]++] = i;
        } else if (d->joined) {
            rs->keyword_db_cls[rs->keyword_db_count] = d->cls;
            rs->keyword_dbs[rs->keyword_db_count++] = i;
        } else {
            rs->keyword_value_db_cls[rs->keyword_value_db_count] = d->cls;
            rs->keyword_value_dbs[rs->keyword_value_db_count++] = i;
        }
    }
    for (uint32_t p = 0; p < rs->path_count; p++) {
        uint32_t t = b.path_target ? b.path_target[p] : p;
        rs->paths[p].db_first = first[t];
        rs->paths[p].db_count = first[t + 1] - first[t];
    }
    free(fill);
    free(first);
    /* the per-event path table: paths with eager databases and the synthesized winlog
     * paths keyword searches skip, at most a quarter full (a field no database scans — most of
     * them — stops after ~1.4 probes instead of ~2.5 at half; 8-byte slots: it stays in L1) */
    const char *synth[PATH_EXTRA_MAX];
    uint32_t synth_len[PATH_EXTRA_MAX];
    uint32_t synth_count = field_synthesized_paths(synth, synth_len, PATH_EXTRA_MAX);
    MAMORI_ASSERT(synth_count <= PATH_EXTRA_MAX && rs->path_count <= PATH_SLOT_ID);
    uint32_t scanned = synth_count;
    for (uint32_t p = 0; p < rs->path_count; p++) scanned += rs->paths[p].db_count > 0;
    uint32_t slots = 64;
    while (slots < scanned * 4) slots *= 2;
    rs->path_slots = mamori_xcalloc(slots, sizeof *rs->path_slots);
    rs->path_slot_mask = slots - 1;
    for (uint32_t p = 0; p < rs->path_count; p++) {
        const struct path *pp = &rs->paths[p];
        if (!pp->db_count) continue;
        uint32_t hash = event_path_hash(pp->str, pp->len);
        uint32_t s = hash & rs->path_slot_mask;
        while (rs->path_slots[s].hash) s = (s + 1) & rs->path_slot_mask;
        rs->path_slots[s] = (struct path_slot){.hash = hash, .ref = p};
    }
    for (uint32_t i = 0; i < synth_count; i++) {
        uint32_t hash = event_path_hash(synth[i], synth_len[i]);
        uint32_t s = hash & rs->path_slot_mask;
        for (; rs->path_slots[s].hash; s = (s + 1) & rs->path_slot_mask) {
            const struct path_slot *slot = &rs->path_slots[s];
            if (slot->hash != hash || (slot->ref & PATH_SLOT_EXTRA)) continue;
            const struct path *pp = &rs->paths[slot->ref & PATH_SLOT_ID];
            if (pp->len == synth_len[i] && memcmp(pp->str, synth[i], synth_len[i]) == 0) break;
        }
        struct path_slot *slot = &rs->path_slots[s];
        if (!slot->hash) {
            rs->extra_paths[rs->extra_path_count].str = synth[i];
            rs->extra_paths[rs->extra_path_count].len = synth_len[i];
            *slot = (struct path_slot){.hash = hash, .ref = PATH_SLOT_EXTRA | rs->extra_path_count++};
        }
        slot->ref |= PATH_SLOT_SYNTHESIZED;
    }
    free(b.builds);
    free(b.build_keys);
    free(b.build_slots);
    free(b.path_target);
    free(b.alt_primary);
    free(b.strength);
    free(b.pspec);
    strmap_fini(&b.field_index);

    uint32_t always = 0;
    for (uint32_t i = 0; i < rs->rule_count; i++)
        always += rs->rules[i].always && !rs->rules[i].dead && !rs->rules[i].route.unroutable;
    rs->always = mamori_xmalloc((always ? always : 1) * sizeof *rs->always);
    for (uint32_t i = 0; i < rs->rule_count; i++)
        if (rs->rules[i].always && !rs->rules[i].dead && !rs->rules[i].route.unroutable)
            rs->always[rs->always_count++] = i;
    parse_extensions(rs);
    if (rc == 0) ruleset_hot_move(rs); /* complete: onto huge pages (hot.c), then scratch for the placed databases */
    if (rc == 0) {
        for (uint32_t i = 0; i < rs->db_count && rc == 0; i++) {
            const struct db *d = &rs->dbs[i];
            if ((d->hs && hs_alloc_scratch(d->hs, &rs->scratch_proto) != HS_SUCCESS) ||
                (d->split && (hs_alloc_scratch(rs->db_splits[i].lines, &rs->scratch_proto) != HS_SUCCESS ||
                              hs_alloc_scratch(rs->db_splits[i].rest, &rs->scratch_proto) != HS_SUCCESS))) {
                snprintf(err, err_len, "Hyperscan could not allocate scratch space");
                rc = -EIO;
            }
        }
        if (rs->scratch_proto) hs_scratch_size(rs->scratch_proto, &rs->scratch_bytes);
    }

    uint32_t loaded = 0, unroutable = 0;
    for (uint32_t i = 0; i < rs->rule_count; i++) {
        if (rs->rules[i].dead) continue;
        loaded++;
        unroutable += rs->rules[i].route.unroutable;
    }
    free(rule_source);
    report->loaded = loaded;
    report->unroutable = unroutable;
    report->load_ms += (double)(t1 - t0) / 1000.0;
    report->compile_ms = (double)(t2 - t1) / 1000.0;
    report->databases = rs->db_count;
    report->patterns = (uint32_t)patterns;
    report->predicates = rs->pred_count;
    report->database_bytes = db_bytes;
    report->scratch_bytes = rs->scratch_bytes;
    report->hot_bytes = rs->hot_bytes;
    if (rc) {
        ruleset_free(rs);
        return rc;
    }
    *out = rs;
    return 0;
}

/* detect/correlate_load.c — Sigma correlation documents: load.c hands every document with a
 * `correlation:` key here (when detect_options.correlations is set); this reads the
 * attributes and the correlation section (type, rules, group-by, aliases, timespan,
 * condition, generate), rejecting what it cannot run with file, line and reason. After the
 * rule set is built, correlate_set_build resolves `rules` against it (ids and names of
 * rules and correlations), rejects loops, and indexes who consumes what. */
#include "correlate_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[CORRELATE_TYPE_COUNT] = {
    [CORRELATE_EVENT_COUNT] = "event_count",       [CORRELATE_VALUE_COUNT] = "value_count",
    [CORRELATE_TEMPORAL] = "temporal",             [CORRELATE_TEMPORAL_ORDERED] = "temporal_ordered",
    [CORRELATE_VALUE_SUM] = "value_sum",           [CORRELATE_VALUE_AVG] = "value_avg",
    [CORRELATE_VALUE_PERCENTILE] = "value_percentile",
};

const char *correlate_type_name(enum correlate_type type)
{
    return (unsigned)type < CORRELATE_TYPE_COUNT ? type_names[type] : "unknown";
}

static const char *const op_names[CC_OP_COUNT] = {"gt", "gte", "lt", "lte", "eq", "neq"};

bool ccond_holds(const struct ccond *c, double v)
{
    if ((c->has >> CC_GT & 1) && !(v > c->value[CC_GT])) return false;
    if ((c->has >> CC_GTE & 1) && !(v >= c->value[CC_GTE])) return false;
    if ((c->has >> CC_LT & 1) && !(v < c->value[CC_LT])) return false;
    if ((c->has >> CC_LTE & 1) && !(v <= c->value[CC_LTE])) return false;
    if ((c->has >> CC_EQ & 1) && !(v == c->value[CC_EQ])) return false;
    if ((c->has >> CC_NEQ & 1) && !(v != c->value[CC_NEQ])) return false;
    return true;
}

/* ---- YAML helpers ------------------------------------------------------------------------------- */

struct cload {
    struct detect_loader *l;
    struct correlate_defs *d;
    const char *file;
    const char *id, *title;
    uint32_t doc_line;
    bool failed;
};

static struct fy_node *get(struct fy_node *map, const char *key)
{
    if (!map || !fy_node_is_mapping(map)) return NULL;
    void *it = NULL;
    struct fy_node_pair *pair;
    size_t n = strlen(key);
    while ((pair = fy_node_mapping_iterate(map, &it))) {
        size_t len;
        const char *k = node_scalar(fy_node_pair_key(pair), &len);
        if (k && len == n && memcmp(k, key, n) == 0) return fy_node_pair_value(pair);
    }
    return NULL;
}

static int fail(struct cload *c, struct fy_node *at, const char *fmt, ...) MAMORI_PRINTF(3, 4);
static int fail(struct cload *c, struct fy_node *at, const char *fmt, ...)
{
    if (c->failed) return -EINVAL;
    c->failed = true;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint32_t line = at ? node_line(at) : 0;
    loader_add_problem(c->l, c->file, line ? line : c->doc_line, DETECT_REASON_CORRELATION, msg, c->id, c->title);
    return -EINVAL;
}

/* A scalar copied into the set's memory; NULL when absent. -EINVAL when not a scalar. */
static int scalar(struct cload *c, struct fy_node *n, const char *what, const char **out)
{
    *out = NULL;
    if (!n) return 0;
    size_t len;
    const char *s = node_scalar(n, &len);
    if (!s) return fail(c, n, "'%s' must be a string", what);
    *out = arena_strndup(&c->d->mem, s, len);
    return 0;
}

static int attr(struct cload *c, struct fy_node *root, const char *key, const char **out)
{
    if (scalar(c, get(root, key), key, out)) return -EINVAL;
    if (!*out) *out = "";
    return 0;
}

/* A list of strings (or, when one_ok, a single string as a list of one). */
static int string_list(struct cload *c, struct fy_node *n, const char *what, bool one_ok, uint32_t max,
                       const char ***out, uint32_t *count)
{
    *out = NULL;
    *count = 0;
    if (!n) return 0;
    if (!fy_node_is_sequence(n)) {
        if (!one_ok || !fy_node_is_scalar(n)) return fail(c, n, "'%s' must be a list of strings", what);
        const char **one = arena_alloc(&c->d->mem, sizeof *one);
        if (scalar(c, n, what, &one[0])) return -EINVAL;
        *out = one;
        *count = 1;
        return 0;
    }
    int items = fy_node_sequence_item_count(n);
    if (items < 0 || (uint32_t)items > max) return fail(c, n, "'%s' has more than %u entries", what, max);
    const char **list = arena_alloc(&c->d->mem, (size_t)(items ? items : 1) * sizeof *list);
    void *it = NULL;
    struct fy_node *item;
    uint32_t k = 0;
    while ((item = fy_node_sequence_iterate(n, &it)) && k < (uint32_t)items) {
        if (!fy_node_is_scalar(item) || fy_node_is_alias(item))
            return fail(c, item, "'%s' must be a list of strings", what);
        if (scalar(c, item, what, &list[k])) return -EINVAL;
        for (uint32_t j = 0; j < k; j++)
            if (!strcmp(list[j], list[k])) return fail(c, item, "'%s' lists '%s' twice", what, list[k]);
        k++;
    }
    *out = list;
    *count = k;
    return 0;
}

static int parse_tags(struct cload *c, struct fy_node *root, detect_rule *info)
{
    const char **tags;
    uint32_t count;
    if (string_list(c, get(root, "tags"), "tags", false, 4096, &tags, &count)) return -EINVAL;
    const char **attack = arena_alloc(&c->d->mem, (count ? count : 1) * sizeof *attack);
    uint32_t k = 0;
    for (uint32_t i = 0; i < count; i++) {
        const char *s = tags[i];
        size_t len = strlen(s);
        if (len < 12 || memcmp(s, "attack.t", 8) != 0) continue;
        bool ok = true;
        for (size_t j = 8; j < 12; j++) ok &= s[j] >= '0' && s[j] <= '9';
        if (len != 12) {
            ok &= len == 16 && s[12] == '.';
            for (size_t j = 13; ok && j < 16; j++) ok &= s[j] >= '0' && s[j] <= '9';
        }
        if (!ok) continue;
        char *id = arena_strndup(&c->d->mem, s + 7, len - 7);
        id[0] = 'T';
        attack[k++] = id;
    }
    info->tags = tags;
    info->tag_count = count;
    info->attack_ids = attack;
    info->attack_count = k;
    return 0;
}

static enum detect_level level_of(const char *s)
{
    static const char *const names[] = {"", "informational", "low", "medium", "high", "critical"};
    for (size_t i = 1; i < MAMORI_ARRAY_LEN(names); i++)
        if (strcmp(s, names[i]) == 0) return (enum detect_level)i;
    return DETECT_LEVEL_NONE;
}

/* `number + letter (in lowercase)`: s, m, h, d. At most 366 days. */
static int parse_timespan(struct cload *c, struct fy_node *n, correlate_rule *r)
{
    if (!n) return fail(c, NULL, "correlation has no 'timespan'");
    size_t len;
    const char *s = node_scalar(n, &len);
    if (!s) return fail(c, n, "'timespan' must be a number and a unit (s, m, h, d)");
    uint64_t v = 0;
    size_t i = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9' && v < 100000000) v = v * 10 + (uint64_t)(s[i++] - '0');
    int64_t unit = 0;
    if (i + 1 == len) {
        switch (s[i]) {
        case 's': unit = 1000000; break;
        case 'm': unit = 60 * (int64_t)1000000; break;
        case 'h': unit = 3600 * (int64_t)1000000; break;
        case 'd': unit = 86400 * (int64_t)1000000; break;
        default: break;
        }
    }
    if (i == 0 || !unit || v == 0)
        return fail(c, n, "timespan '%.*s' is not a number and a unit (s, m, h, d), e.g. 10m", (int)MAMORI_MIN(len, 32),
                    s);
    if (v * (uint64_t)unit > (uint64_t)366 * 86400 * 1000000)
        return fail(c, n, "timespan '%.*s' is longer than 366 days", (int)MAMORI_MIN(len, 32), s);
    r->timespan_us = (int64_t)v * unit;
    r->timespan = arena_strndup(&c->d->mem, s, len);
    return 0;
}

static bool parse_number(struct fy_node *n, double *out)
{
    size_t len;
    const char *s = node_scalar(n, &len);
    if (!s || fy_node_get_style(n) != FYNS_PLAIN) return false;
    int64_t i;
    if (yaml_plain_int(s, len, &i)) {
        *out = (double)i;
        return true;
    }
    return yaml_plain_float(s, len, out) && isfinite(*out);
}

static bool is_value_type(enum correlate_type t)
{
    return t == CORRELATE_VALUE_COUNT || t == CORRELATE_VALUE_SUM || t == CORRELATE_VALUE_AVG ||
           t == CORRELATE_VALUE_PERCENTILE;
}

static int parse_condition(struct cload *c, struct fy_node *n, struct cdef *d)
{
    correlate_rule *r = &d->pub;
    bool temporal = r->type == CORRELATE_TEMPORAL || r->type == CORRELATE_TEMPORAL_ORDERED;
    if (!n) {
        if (temporal) return 0; /* default: every rule of `rules` */
        return fail(c, NULL, "%s correlation has no 'condition'", correlate_type_name(r->type));
    }
    if (!fy_node_is_mapping(n)) return fail(c, n, "'condition' must be a map of gt/gte/lt/lte/eq/neq (and field)");
    void *it = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(n, &it))) {
        size_t len;
        struct fy_node *key = fy_node_pair_key(pair), *value = fy_node_pair_value(pair);
        const char *k = node_scalar(key, &len);
        if (!k) return fail(c, key, "condition keys must be strings");
        if (len == 5 && !memcmp(k, "field", 5)) {
            const char **fields;
            uint32_t count;
            if (string_list(c, value, "field", true, CORRELATE_GROUP_BY_MAX, &fields, &count)) return -EINVAL;
            if (!count) return fail(c, value, "'field' is empty");
            r->fields = fields;
            r->field_count = count;
            r->field = fields[0];
            continue;
        }
        int op = -1;
        for (int o = 0; o < CC_OP_COUNT; o++)
            if (strlen(op_names[o]) == len && !memcmp(op_names[o], k, len)) op = o;
        if (op < 0) return fail(c, key, "unknown condition operator '%.*s' (gt, gte, lt, lte, eq, neq)", (int)MAMORI_MIN(len, 32), k);
        double v;
        if (!parse_number(value, &v)) return fail(c, value, "condition '%s' must be a number", op_names[op]);
        d->cond.has |= (uint8_t)(1u << op);
        d->cond.value[op] = v;
    }
    if (!d->cond.has) return fail(c, n, "condition has no operator (gt, gte, lt, lte, eq, neq)");
    if (is_value_type(r->type) && !r->fields) return fail(c, n, "%s condition needs 'field'", correlate_type_name(r->type));
    if (!is_value_type(r->type) && r->fields)
        return fail(c, get(n, "field"), "'field' is only for value_count, value_sum, value_avg and value_percentile");
    if (r->field_count > 1 && r->type != CORRELATE_VALUE_COUNT)
        return fail(c, get(n, "field"), "%s takes one field", correlate_type_name(r->type));
    /* Counts only grow as matches arrive, and the condition is checked at each match: an
     * upper bound alone would hold on the very first one. */
    bool grows = r->type == CORRELATE_EVENT_COUNT || r->type == CORRELATE_VALUE_COUNT || temporal;
    bool lower = (d->cond.has >> CC_GT & 1) || (d->cond.has >> CC_GTE & 1) || (d->cond.has >> CC_EQ & 1);
    if (grows && !lower)
        return fail(c, n, "a %s condition needs a lower bound (gt, gte or eq): it is checked at each match, so "
                          "an upper bound alone would hold on the first one",
                    correlate_type_name(r->type));
    return 0;
}

static int parse_aliases(struct cload *c, struct fy_node *n, struct cdef *d, const char **group, uint32_t group_count)
{
    if (!n) return 0;
    if (!fy_node_is_mapping(n)) return fail(c, n, "'aliases' must be a map: alias → {rule name: field}");
    uint32_t cap = 0;
    void *it = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *v = fy_node_pair_value(pair);
        if (!v || !fy_node_is_mapping(v))
            return fail(c, v ? v : fy_node_pair_key(pair), "each alias must be a map of rule name → field");
        cap += (uint32_t)MAMORI_MAX(fy_node_mapping_item_count(v), 0);
    }
    d->aliases = arena_alloc(&c->d->mem, (cap ? cap : 1) * sizeof *d->aliases);
    it = NULL;
    while ((pair = fy_node_mapping_iterate(n, &it))) {
        const char *alias;
        if (scalar(c, fy_node_pair_key(pair), "aliases", &alias)) return -EINVAL;
        bool used = false;
        for (uint32_t g = 0; g < group_count; g++) used |= !strcmp(group[g], alias);
        if (!used) return fail(c, fy_node_pair_key(pair), "alias '%s' is not in 'group-by'", alias);
        void *it2 = NULL;
        struct fy_node_pair *p2;
        while ((p2 = fy_node_mapping_iterate(fy_node_pair_value(pair), &it2))) {
            struct calias *a = &d->aliases[d->alias_count];
            a->alias = alias;
            a->line = node_line(fy_node_pair_key(p2));
            if (scalar(c, fy_node_pair_key(p2), "aliases", &a->rule) ||
                scalar(c, fy_node_pair_value(p2), "aliases", &a->field))
                return -EINVAL;
            if (!a->rule || !a->field) return fail(c, fy_node_pair_key(p2), "alias '%s' maps a rule to nothing", alias);
            d->alias_count++;
        }
    }
    return 0;
}

static int parse_correlation(struct cload *c, struct fy_node *root, struct cdef *d)
{
    correlate_rule *r = &d->pub;
    struct fy_node *sec = get(root, "correlation");
    if (!fy_node_is_mapping(sec)) return fail(c, sec, "'correlation' must be a map");
    const char *type;
    struct fy_node *tn = get(sec, "type");
    if (!tn) return fail(c, sec, "correlation has no 'type'");
    if (scalar(c, tn, "type", &type)) return -EINVAL;
    int t = -1;
    for (int i = 0; i < CORRELATE_TYPE_COUNT; i++)
        if (!strcmp(type, type_names[i])) t = i;
    if (t < 0)
        return fail(c, tn, "unknown correlation type '%s' (event_count, value_count, temporal, temporal_ordered, "
                           "value_sum, value_avg, value_percentile)",
                    type);
    r->type = (enum correlate_type)t;

    struct fy_node *rules = get(sec, "rules");
    const char **refs;
    uint32_t ref_count;
    if (!rules) return fail(c, sec, "correlation has no 'rules'");
    if (string_list(c, rules, "rules", true, CORRELATE_RULES_MAX, &refs, &ref_count)) return -EINVAL;
    if (!ref_count) return fail(c, rules, "'rules' is empty");
    d->refs = arena_alloc(&c->d->mem, ref_count * sizeof *d->refs);
    void *it = NULL;
    for (uint32_t i = 0; i < ref_count; i++) {
        struct fy_node *item = fy_node_is_sequence(rules) ? fy_node_sequence_iterate(rules, &it) : rules;
        d->refs[i] = (struct cref){.text = refs[i], .line = node_line(item)};
    }
    r->rule_count = ref_count;

    const char **group;
    uint32_t group_count;
    if (string_list(c, get(sec, "group-by"), "group-by", true, CORRELATE_GROUP_BY_MAX, &group, &group_count))
        return -EINVAL;
    r->group_by = group;
    r->group_count = group_count;
    if (parse_aliases(c, get(sec, "aliases"), d, group, group_count)) return -EINVAL;
    if (parse_timespan(c, get(sec, "timespan"), r)) return -EINVAL;
    if (parse_condition(c, get(sec, "condition"), d)) return -EINVAL;
    if ((r->type == CORRELATE_TEMPORAL || r->type == CORRELATE_TEMPORAL_ORDERED) && d->cond.has &&
        !ccond_holds(&d->cond, (double)ref_count))
        return fail(c, get(sec, "condition"), "the condition cannot hold: %s counts at most %u rules",
                    correlate_type_name(r->type), ref_count);

    /* `generate` belongs to the document; accept it inside the section too (seen in the wild) */
    struct fy_node *gen = get(root, "generate");
    if (!gen) gen = get(sec, "generate");
    if (gen) {
        size_t len;
        const char *s = node_scalar(gen, &len);
        if (s && fy_node_get_style(gen) == FYNS_PLAIN && ((len == 4 && !memcmp(s, "true", 4)) || (len == 4 && !memcmp(s, "True", 4))))
            r->generate = true;
        else if (!(s && fy_node_get_style(gen) == FYNS_PLAIN && len == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5))))
            return fail(c, gen, "'generate' must be true or false");
    }
    return 0;
}

void correlate_load_document(struct detect_loader *l, const char *file, struct fy_node *root, const char *id,
                             const char *title)
{
    struct correlate_defs **slot = loader_correlations(l);
    if (!*slot) {
        *slot = mamori_xcalloc(1, sizeof **slot);
        arena_init(&(*slot)->mem, 16 * 1024);
    }
    struct correlate_defs *defs = *slot;
    MAMORI_ASSERT(!defs->taken);
    struct cload c = {.l = l, .d = defs, .file = file, .id = id, .title = title, .doc_line = node_line(root)};
    if (!title[0]) {
        fail(&c, root, "correlation has no 'title'");
        return;
    }
    if (defs->count >= CORRELATE_COUNT_MAX) { /* bounds the set's memory and resolution time */
        fail(&c, root, "more than %d correlations in one rule set", CORRELATE_COUNT_MAX);
        return;
    }
    struct cdef *d = arena_alloc(&defs->mem, sizeof *d);
    memset(d, 0, sizeof *d);
    detect_rule *info = &d->pub.info;
    info->id = arena_strndup(&defs->mem, id, strlen(id));
    info->title = arena_strndup(&defs->mem, title, strlen(title));
    info->file = arena_strndup(&defs->mem, file, strlen(file));
    info->line = c.doc_line;
    info->product = info->category = info->service = "";
    if (attr(&c, root, "name", &info->name) || attr(&c, root, "status", &info->status) ||
        attr(&c, root, "level", &info->level_name) || attr(&c, root, "description", &info->description) ||
        parse_tags(&c, root, info))
        return;
    info->level = level_of(info->level_name);
    const detect_options *opt = loader_options(l);
    if (!strcmp(info->status, "deprecated") && !opt->include_deprecated) {
        loader_add_problem(l, file, c.doc_line, DETECT_REASON_SKIP_DEPRECATED, "status: deprecated", id, title);
        return;
    }
    if (!strcmp(info->status, "unsupported") && !opt->include_unsupported) {
        loader_add_problem(l, file, c.doc_line, DETECT_REASON_SKIP_UNSUPPORTED, "status: unsupported", id, title);
        return;
    }
    if (parse_correlation(&c, root, d)) return;
    struct fy_node *ext = get(root, "x-mamori");
    if (ext) {
        buf b;
        buf_init(&b);
        yaml_write_json(&b, ext);
        info->x_mamori_json = arena_strndup(&defs->mem, b.data, b.len);
        buf_fini(&b);
    }
    if (defs->count == defs->cap) {
        defs->cap = defs->cap ? defs->cap * 2 : 16;
        defs->defs = mamori_xrealloc(defs->defs, defs->cap * sizeof *defs->defs);
    }
    defs->defs[defs->count++] = d;
}

void correlate_defs_free(struct correlate_defs *defs)
{
    if (!defs) return;
    free(defs->defs);
    arena_fini(&defs->mem);
    free(defs);
}

/* ---- resolution --------------------------------------------------------------------------------- */

static void reject(struct detect_loader *l, struct cdef *d, uint32_t line, const char *fmt, ...) MAMORI_PRINTF(4, 5);
static void reject(struct detect_loader *l, struct cdef *d, uint32_t line, const char *fmt, ...)
{
    if (d->dead) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    d->dead = true;
    loader_add_problem(l, d->pub.info.file, line ? line : d->pub.info.line, DETECT_REASON_CORRELATION, msg,
                       d->pub.info.id, d->pub.info.title);
}

static bool names(const detect_rule *r, const char *text)
{
    return (r->id[0] && !strcmp(r->id, text)) || (r->name[0] && !strcmp(r->name, text));
}

/* Cycle search: a correlation on a loop, or depending on a dead one, dies. */
static uint32_t visit(struct detect_loader *l, struct correlate_defs *defs, struct cdef *d)
{
    if (d->done) return d->depth;
    d->visiting = true;
    uint32_t depth = 0;
    for (uint32_t i = 0; i < d->pub.rule_count && !d->dead; i++) {
        if (!d->refs[i].is_correlation) continue;
        struct cdef *t = defs->defs[d->refs[i].target];
        if (t->visiting) {
            reject(l, d, d->refs[i].line, "correlation chain loops back through '%s'", d->refs[i].text);
            break;
        }
        uint32_t sub = visit(l, defs, t);
        if (t->dead) {
            reject(l, d, d->refs[i].line, "references correlation '%s', which was rejected", d->refs[i].text);
            break;
        }
        depth = MAMORI_MAX(depth, sub + 1);
    }
    if (!d->dead && depth > CORRELATE_CHAIN_DEPTH_MAX)
        reject(l, d, 0, "correlation chain deeper than %u", CORRELATE_CHAIN_DEPTH_MAX);
    d->visiting = false;
    d->done = true;
    d->depth = depth;
    return depth;
}

/* Field names to read from source `src` (a rule or correlation info) for correlation d. */
static const char *aliased(arena *a, const struct cdef *d, const detect_rule *src, const char *field)
{
    (void)a;
    for (uint32_t i = 0; i < d->alias_count; i++)
        if (!strcmp(d->aliases[i].alias, field) && names(src, d->aliases[i].rule)) return d->aliases[i].field;
    return field;
}

static void fill_consumer(arena *a, struct consumer *c, const struct cdef *d, uint32_t corr, uint32_t pos,
                          const detect_rule *src)
{
    c->corr = corr;
    c->pos = pos;
    const char **g = arena_alloc(a, (d->pub.group_count ? d->pub.group_count : 1) * sizeof *g);
    for (uint32_t i = 0; i < d->pub.group_count; i++) g[i] = aliased(a, d, src, d->pub.group_by[i]);
    const char **v = arena_alloc(a, (d->pub.field_count ? d->pub.field_count : 1) * sizeof *v);
    for (uint32_t i = 0; i < d->pub.field_count; i++) v[i] = aliased(a, d, src, d->pub.fields[i]);
    c->group_fields = g;
    c->value_fields = v;
}

int correlate_set_build(detect_loader *l, detect_ruleset *rs, correlate_set **out)
{
    correlate_set *s = mamori_xcalloc(1, sizeof *s);
    s->rs = detect_ruleset_ref(rs);
    s->rule_count = (uint32_t)detect_ruleset_rule_count(rs);
    struct correlate_defs **slot = loader_correlations(l);
    if (!*slot) {
        *slot = mamori_xcalloc(1, sizeof **slot);
        arena_init(&(*slot)->mem, 16 * 1024);
    }
    struct correlate_defs *defs = *slot;
    MAMORI_ASSERT(!defs->taken);
    defs->taken = true;
    s->defs = defs;
    *slot = NULL; /* the set owns them now */

    /* duplicate ids: against rules and earlier correlations */
    for (uint32_t i = 0; i < defs->count; i++) {
        struct cdef *d = defs->defs[i];
        const char *id = d->pub.info.id;
        if (!id[0]) continue;
        for (uint32_t r = 0; r < s->rule_count && !d->dead; r++) {
            const detect_rule *o = detect_ruleset_rule(rs, r);
            if (!strcmp(o->id, id))
                reject(l, d, 0, "id %s is already the id of rule '%s' (%s line %u)", id, o->title, o->file, o->line);
        }
        for (uint32_t j = 0; j < i && !d->dead; j++)
            if (!defs->defs[j]->dead && !strcmp(defs->defs[j]->pub.info.id, id))
                reject(l, d, 0, "id %s already loaded from %s line %u", id, defs->defs[j]->pub.info.file,
                       defs->defs[j]->pub.info.line);
    }
    /* names are references too: unique among correlations and rules */
    for (uint32_t i = 0; i < defs->count; i++) {
        struct cdef *d = defs->defs[i];
        const char *name = d->pub.info.name;
        if (!name[0] || d->dead) continue;
        for (uint32_t r = 0; r < s->rule_count && !d->dead; r++) {
            const detect_rule *o = detect_ruleset_rule(rs, r);
            if (!strcmp(o->name, name))
                reject(l, d, 0, "name %s is already the name of rule '%s' (%s line %u)", name, o->title, o->file, o->line);
        }
        for (uint32_t j = 0; j < i && !d->dead; j++)
            if (!defs->defs[j]->dead && !strcmp(defs->defs[j]->pub.info.name, name))
                reject(l, d, 0, "name %s already used by the correlation in %s line %u", name,
                       defs->defs[j]->pub.info.file, defs->defs[j]->pub.info.line);
    }
    /* references: correlations first (by id, then name), then rules */
    for (uint32_t i = 0; i < defs->count; i++) {
        struct cdef *d = defs->defs[i];
        for (uint32_t k = 0; k < d->pub.rule_count && !d->dead; k++) {
            struct cref *ref = &d->refs[k];
            bool found = false;
            for (uint32_t j = 0; j < defs->count && !found; j++) {
                if (defs->defs[j]->dead && j != i) continue;
                if (names(&defs->defs[j]->pub.info, ref->text)) {
                    found = true;
                    ref->is_correlation = true;
                    ref->target = j;
                }
            }
            for (uint32_t r = 0; r < s->rule_count && !found; r++) {
                if (names(detect_ruleset_rule(rs, r), ref->text)) {
                    found = true;
                    ref->target = r;
                }
            }
            if (!found) reject(l, d, ref->line, "references '%s', which is no loaded rule or correlation", ref->text);
            for (uint32_t j = 0; j < k && !d->dead; j++)
                if (d->refs[j].is_correlation == ref->is_correlation && d->refs[j].target == ref->target)
                    reject(l, d, ref->line, "references the same rule twice ('%s' and '%s')", d->refs[j].text, ref->text);
        }
        for (uint32_t a = 0; a < d->alias_count && !d->dead; a++) {
            bool ok = false;
            for (uint32_t k = 0; k < d->pub.rule_count; k++) ok |= !strcmp(d->refs[k].text, d->aliases[a].rule);
            if (!ok)
                reject(l, d, d->aliases[a].line, "alias '%s' names '%s', which 'rules' does not list", d->aliases[a].alias,
                       d->aliases[a].rule);
        }
    }
    /* loops, rejected dependencies; repeat until nothing changes (a rejection can orphan others) */
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t i = 0; i < defs->count; i++) defs->defs[i]->done = false;
        for (uint32_t i = 0; i < defs->count; i++) {
            bool was = defs->defs[i]->dead;
            visit(l, defs, defs->defs[i]);
            changed |= was != defs->defs[i]->dead;
        }
    }
    /* live correlations, renumbered */
    uint32_t *new_index = mamori_xmalloc((defs->count ? defs->count : 1) * sizeof *new_index);
    s->corrs = mamori_xmalloc((defs->count ? defs->count : 1) * sizeof *s->corrs);
    for (uint32_t i = 0; i < defs->count; i++) {
        new_index[i] = UINT32_MAX;
        if (defs->defs[i]->dead) continue;
        new_index[i] = s->count;
        defs->defs[i]->pub.info.index = s->count;
        s->corrs[s->count++] = defs->defs[i];
    }
    for (uint32_t i = 0; i < s->count; i++)
        for (uint32_t k = 0; k < s->corrs[i]->pub.rule_count; k++)
            if (s->corrs[i]->refs[k].is_correlation) s->corrs[i]->refs[k].target = new_index[s->corrs[i]->refs[k].target];
    free(new_index);
    loader_report_mutable(l)->correlations = s->count;

    /* consumers: counting sort by source */
    s->rule_first = mamori_xcalloc(s->rule_count + 2, sizeof *s->rule_first);
    s->corr_first = mamori_xcalloc(s->count + 2, sizeof *s->corr_first);
    uint32_t nrule = 0, ncorr = 0;
    for (uint32_t i = 0; i < s->count; i++)
        for (uint32_t k = 0; k < s->corrs[i]->pub.rule_count; k++) {
            const struct cref *ref = &s->corrs[i]->refs[k];
            if (ref->is_correlation) s->corr_first[ref->target + 1]++, ncorr++;
            else s->rule_first[ref->target + 1]++, nrule++;
        }
    for (uint32_t r = 0; r < s->rule_count; r++) s->rule_first[r + 1] += s->rule_first[r];
    for (uint32_t c = 0; c < s->count; c++) s->corr_first[c + 1] += s->corr_first[c];
    s->rule_consumers = mamori_xcalloc(nrule ? nrule : 1, sizeof *s->rule_consumers);
    s->corr_consumers = mamori_xcalloc(ncorr ? ncorr : 1, sizeof *s->corr_consumers);
    uint32_t *rule_fill = mamori_xcalloc(s->rule_count + 1, sizeof *rule_fill);
    uint32_t *corr_fill = mamori_xcalloc(s->count + 1, sizeof *corr_fill);
    s->rule_standalone = mamori_xmalloc((s->rule_count ? s->rule_count : 1) * sizeof *s->rule_standalone);
    s->corr_emit = mamori_xmalloc((s->count ? s->count : 1) * sizeof *s->corr_emit);
    for (uint32_t r = 0; r < s->rule_count; r++) s->rule_standalone[r] = true;
    for (uint32_t c = 0; c < s->count; c++) s->corr_emit[c] = true;
    bool *generated_r = mamori_xcalloc(s->rule_count + 1, sizeof *generated_r);
    bool *generated_c = mamori_xcalloc(s->count + 1, sizeof *generated_c);
    for (uint32_t i = 0; i < s->count; i++) {
        const struct cdef *d = s->corrs[i];
        for (uint32_t k = 0; k < d->pub.rule_count; k++) {
            const struct cref *ref = &d->refs[k];
            struct consumer *c;
            const detect_rule *src;
            if (ref->is_correlation) {
                c = &s->corr_consumers[s->corr_first[ref->target] + corr_fill[ref->target]++];
                src = &s->corrs[ref->target]->pub.info;
                s->corr_emit[ref->target] = false;
                generated_c[ref->target] |= d->pub.generate;
            } else {
                c = &s->rule_consumers[s->rule_first[ref->target] + rule_fill[ref->target]++];
                src = detect_ruleset_rule(rs, ref->target);
                s->rule_standalone[ref->target] = false;
                generated_r[ref->target] |= d->pub.generate;
            }
            fill_consumer(&defs->mem, c, d, i, k, src);
        }
    }
    for (uint32_t r = 0; r < s->rule_count; r++) s->rule_standalone[r] |= generated_r[r];
    for (uint32_t c = 0; c < s->count; c++) s->corr_emit[c] |= generated_c[c];
    free(generated_r);
    free(generated_c);
    free(rule_fill);
    free(corr_fill);
    /* `x-mamori` parsed, as rule sets do for rules (automatic response reads it) */
    json_parser *jp = NULL;
    for (uint32_t i = 0; i < s->count; i++) {
        detect_rule *info = &s->corrs[i]->pub.info;
        if (!info->x_mamori_json) continue;
        if (!jp) jp = json_parser_create();
        json_value *v = arena_alloc(&defs->mem, sizeof *v);
        json_error jerr;
        if (json_parse(jp, &defs->mem, info->x_mamori_json, strlen(info->x_mamori_json), v, &jerr) == 0)
            info->x_mamori = v;
    }
    json_parser_destroy(jp);
    *out = s;
    return 0;
}

void correlate_set_destroy(correlate_set *s)
{
    if (!s) return;
    free(s->rule_first);
    free(s->corr_first);
    free(s->rule_consumers);
    free(s->corr_consumers);
    free(s->rule_standalone);
    free(s->corr_emit);
    free(s->corrs);
    correlate_defs_free(s->defs);
    detect_ruleset_unref(s->rs);
    free(s);
}

size_t correlate_set_count(const correlate_set *s) { return s->count; }
detect_ruleset *correlate_set_ruleset(const correlate_set *s) { return s->rs; }

const correlate_rule *correlate_set_rule(const correlate_set *s, size_t index)
{
    MAMORI_ASSERT(index < s->count);
    return &s->corrs[index]->pub;
}

bool correlate_set_rule_standalone(const correlate_set *s, const detect_rule *rule)
{
    return rule->index >= s->rule_count || s->rule_standalone[rule->index];
}

bool correlate_set_uses_rule(const correlate_set *s, const detect_rule *rule)
{
    return rule->index < s->rule_count && s->rule_first[rule->index + 1] > s->rule_first[rule->index];
}

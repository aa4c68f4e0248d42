/* detect/detection.c — a rule's `detection` section → search identifiers → condition tree.
 * Maps are AND, lists are OR, a list of plain values is one keyword item; each
 * `field|mod|mod: value(s)` item becomes predicates in item.c. */
#include "internal.h"

#include <errno.h>
#include <string.h>

struct ident {
    const char *name;
    uint32_t len;
    struct cnode *node;
};

struct detection {
    struct ident *ids;
    uint32_t count;
};

/* ---- condition tree helpers ----------------------------------------------------------------- */

struct cnode *cnode_new(arena *a, enum cnode_kind kind, uint32_t count)
{
    struct cnode *n = arena_alloc(a, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->count = count;
    n->kids = count ? arena_alloc(a, count * sizeof *n->kids) : NULL;
    return n;
}

struct cnode *cnode_join(arena *a, enum cnode_kind kind, struct cnode **kids, uint32_t count)
{
    uint32_t live = 0;
    for (uint32_t i = 0; i < count; i++) live += kids[i]->kind != CN_NONE;
    if (live == 0) return cnode_new(a, CN_NONE, 0);
    if (live == 1)
        for (uint32_t i = 0; i < count; i++)
            if (kids[i]->kind != CN_NONE) return kids[i];
    struct cnode *n = cnode_new(a, kind, live);
    uint32_t k = 0;
    for (uint32_t i = 0; i < count; i++)
        if (kids[i]->kind != CN_NONE) n->kids[k++] = kids[i];
    return n;
}

struct cnode *cnode_not(arena *a, struct cnode *kid)
{
    if (kid->kind == CN_NONE) return kid;
    struct cnode *n = cnode_new(a, CN_NOT, 1);
    n->kids[0] = kid;
    return n;
}

/* ---- search identifiers -------------------------------------------------------------------------- */

static bool all_scalars(struct fy_node *seq)
{
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(seq, &it)))
        if (!fy_node_is_scalar(item)) return false;
    return true;
}

static int parse_definition(load_ctx *c, struct fy_node *n, uint32_t depth, struct cnode **out)
{
    arena *a = c->mem;
    if (depth > DETECT_DETECTION_DEPTH_MAX)
        return load_fail(c, DETECT_REASON_LIMIT, n, "search identifier nested deeper than %d", DETECT_DETECTION_DEPTH_MAX);
    if (!n) return load_fail(c, DETECT_REASON_DETECTION, n, "empty search identifier");
    if (fy_node_is_mapping(n)) {
        int count = fy_node_mapping_item_count(n);
        if (count <= 0) return load_fail(c, DETECT_REASON_DETECTION, n, "empty map in detection");
        struct cnode **kids = arena_alloc(a, (size_t)count * sizeof *kids);
        void *it = NULL;
        struct fy_node_pair *pair;
        uint32_t k = 0;
        while ((pair = fy_node_mapping_iterate(n, &it)) && k < (uint32_t)count) {
            struct fy_node *key = fy_node_pair_key(pair);
            size_t key_len;
            const char *key_text = node_scalar(key, &key_len);
            if (!key_text) return load_fail(c, DETECT_REASON_DETECTION, key, "detection keys must be strings");
            struct fy_node *value = fy_node_pair_value(pair);
            if (!value) return load_fail(c, DETECT_REASON_DETECTION, key, "field without value");
            if (fy_node_is_mapping(value))
                return load_fail(c, DETECT_REASON_DETECTION, key, "value of '%.*s' must be a scalar or a list of scalars",
                                 (int)MAMORI_MIN(key_len, 80), key_text);
            if (detection_item(c, key, key_text, key_len, value, &kids[k++])) return -EINVAL;
        }
        *out = cnode_join(a, CN_AND, kids, k);
        return 0;
    }
    if (fy_node_is_sequence(n)) {
        int count = fy_node_sequence_item_count(n);
        if (count <= 0) return load_fail(c, DETECT_REASON_DETECTION, n, "empty list in detection");
        if (all_scalars(n)) return detection_item(c, NULL, NULL, 0, n, out);
        struct cnode **kids = arena_alloc(a, (size_t)count * sizeof *kids);
        void *it = NULL;
        struct fy_node *item;
        uint32_t k = 0;
        while ((item = fy_node_sequence_iterate(n, &it)) && k < (uint32_t)count) {
            int rc = fy_node_is_scalar(item) ? detection_item(c, NULL, NULL, 0, item, &kids[k])
                                             : parse_definition(c, item, depth + 1, &kids[k]);
            if (rc) return rc;
            k++;
        }
        *out = cnode_join(a, CN_OR, kids, k);
        return 0;
    }
    return detection_item(c, NULL, NULL, 0, n, out);
}

int detection_parse(load_ctx *c, struct fy_node *detection, struct detection **out)
{
    arena *a = c->mem;
    if (!detection || !fy_node_is_mapping(detection))
        return load_fail(c, DETECT_REASON_DETECTION, detection, "'detection' must be a map");
    int total = fy_node_mapping_item_count(detection);
    if (total > DETECT_IDENTIFIERS_MAX)
        return load_fail(c, DETECT_REASON_LIMIT, detection, "more than %d search identifiers", DETECT_IDENTIFIERS_MAX);
    struct detection *d = arena_alloc(a, sizeof *d);
    d->ids = arena_alloc(a, (size_t)(total > 0 ? total : 1) * sizeof *d->ids);
    d->count = 0;
    void *it = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(detection, &it))) {
        struct fy_node *key = fy_node_pair_key(pair);
        size_t len;
        const char *name = node_scalar(key, &len);
        if (!name) return load_fail(c, DETECT_REASON_DETECTION, key, "search identifiers must be strings");
        if (text_is(name, len, "condition") || text_is(name, len, "timeframe")) continue;
        if (c->filter_doc && text_is(name, len, "rules")) continue;
        struct ident *id = &d->ids[d->count];
        id->name = arena_strndup(a, name, len);
        id->len = (uint32_t)len;
        if (parse_definition(c, fy_node_pair_value(pair), 0, &id->node)) return -EINVAL;
        d->count++;
    }
    *out = d;
    return 0;
}

struct cnode *detection_identifier(struct detection *d, const char *name, size_t len)
{
    for (uint32_t i = 0; i < d->count; i++)
        if (d->ids[i].len == len && memcmp(d->ids[i].name, name, len) == 0) return d->ids[i].node;
    return NULL;
}

/* Full match of name against a pattern where `*` is any run of characters. */
static bool glob_match(const char *pat, size_t plen, const char *s, size_t slen)
{
    size_t p = 0, i = 0, star = SIZE_MAX, mark = 0;
    while (i < slen) {
        if (p < plen && pat[p] == '*') {
            star = p++;
            mark = i;
        } else if (p < plen && pat[p] == s[i]) {
            p++;
            i++;
        } else if (star != SIZE_MAX) {
            p = star + 1;
            i = ++mark;
        } else {
            return false;
        }
    }
    while (p < plen && pat[p] == '*') p++;
    return p == plen;
}

uint32_t detection_select(struct detection *d, const char *pattern, size_t len, bool them, struct cnode **out,
                          uint32_t max)
{
    bool underscore_ok = !them && len > 0 && pattern[0] == '_';
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->count; i++) {
        const struct ident *id = &d->ids[i];
        if (id->name[0] == '_' && !underscore_ok) continue;
        if (!them && !glob_match(pattern, len, id->name, id->len)) continue;
        if (n < max) out[n] = id->node;
        n++;
    }
    return n;
}

int detection_condition(load_ctx *c, struct detection *d, struct fy_node *condition, struct cnode **out)
{
    arena *a = c->mem;
    if (!condition) return load_fail(c, DETECT_REASON_DETECTION, NULL, "detection has no condition");
    struct fy_node **items;
    uint32_t count;
    if (fy_node_is_sequence(condition)) {
        int n = fy_node_sequence_item_count(condition);
        if (n <= 0) return load_fail(c, DETECT_REASON_CONDITION, condition, "empty condition list");
        count = (uint32_t)n;
        items = arena_alloc(a, count * sizeof *items);
        void *it = NULL;
        for (uint32_t i = 0; i < count; i++) items[i] = fy_node_sequence_iterate(condition, &it);
    } else {
        count = 1;
        items = arena_alloc(a, sizeof *items);
        items[0] = condition;
    }
    struct cnode **parts = arena_alloc(a, count * sizeof *parts);
    for (uint32_t i = 0; i < count; i++) {
        size_t len;
        const char *text = node_scalar(items[i], &len);
        if (!text) return load_fail(c, DETECT_REASON_CONDITION, items[i], "condition must be a string");
        if (condition_parse(c, d, items[i], text, len, &parts[i])) return -EINVAL;
    }
    *out = cnode_join(a, CN_OR, parts, count);
    if ((*out)->kind == CN_NONE)
        return load_fail(c, DETECT_REASON_CONDITION, condition, "condition selects no search identifier");
    return 0;
}

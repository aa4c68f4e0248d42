/* detect/item.c — one detection item, `field|mod|mod: value(s)` (or a plain keyword list), to
 * predicates: its YAML scalars are typed, run through the modifiers left to right (as the
 * specification and pySigma apply them) and become predicates (struct pspec) joined by OR, or
 * AND under `all`, negated under `neq`; a list's patterns bound for one database become one
 * predicate. Strings end up as Hyperscan expressions (sigstring.c), checked one by one so a
 * bad one rejects only its rule. The maps, lists and identifiers around items: detection.c. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct cnode *cnode_leaf(arena *a, struct pspec *p)
{
    struct cnode *n = cnode_new(a, CN_PRED, 0);
    n->pred = p;
    return n;
}

/* ---- modifiers ------------------------------------------------------------------------------- */

enum modifier {
    MOD_CONTAINS = 0, MOD_STARTSWITH, MOD_ENDSWITH, MOD_ALL, MOD_BASE64, MOD_BASE64OFFSET, MOD_WIDE,
    MOD_UTF16LE, MOD_UTF16BE, MOD_UTF16, MOD_WINDASH, MOD_RE, MOD_RE_I, MOD_RE_M, MOD_RE_S, MOD_CIDR,
    MOD_EXPAND, MOD_FIELDREF, MOD_EXISTS, MOD_CASED, MOD_LT, MOD_LTE, MOD_GT, MOD_GTE, MOD_NEQ,
    MOD_MINUTE, MOD_HOUR, MOD_DAY, MOD_WEEK, MOD_MONTH, MOD_YEAR,
};

static const struct {
    const char *name;
    uint8_t mod;
} modifier_names[] = {
    {"contains", MOD_CONTAINS}, {"startswith", MOD_STARTSWITH}, {"endswith", MOD_ENDSWITH},
    {"all", MOD_ALL}, {"base64", MOD_BASE64}, {"base64offset", MOD_BASE64OFFSET}, {"wide", MOD_WIDE},
    {"utf16le", MOD_UTF16LE}, {"utf16be", MOD_UTF16BE}, {"utf16", MOD_UTF16}, {"windash", MOD_WINDASH},
    {"re", MOD_RE}, {"i", MOD_RE_I}, {"ignorecase", MOD_RE_I}, {"m", MOD_RE_M}, {"multiline", MOD_RE_M},
    {"s", MOD_RE_S}, {"dotall", MOD_RE_S}, {"cidr", MOD_CIDR}, {"expand", MOD_EXPAND},
    {"fieldref", MOD_FIELDREF}, {"exists", MOD_EXISTS}, {"cased", MOD_CASED}, {"lt", MOD_LT},
    {"lte", MOD_LTE}, {"gt", MOD_GT}, {"gte", MOD_GTE}, {"neq", MOD_NEQ}, {"minute", MOD_MINUTE},
    {"hour", MOD_HOUR}, {"day", MOD_DAY}, {"week", MOD_WEEK}, {"month", MOD_MONTH}, {"year", MOD_YEAR},
};

#define MODIFIERS_MAX 16
#define WINDASH_LITERALS_MAX 125 /* 5^3: up to three flags in one value become literals */

/* A value on its way through the modifiers. */
enum vtype { V_STRING = 0, V_REGEX, V_NUMBER, V_BOOL, V_NULL, V_FIELDREF, V_CIDR, V_EXISTS, V_COMPARE, V_TIME };
static const char *const vtype_names[] = {"string", "regular expression", "number", "boolean", "null",
                                          "field reference", "CIDR", "exists", "comparison", "time part"};

struct val {
    uint8_t type;
    bool cased;
    sigstr *alts; /* V_STRING: the value and its expansions (OR) */
    uint32_t alt_count;
    const char *text; /* raw scalar text (regex source, number text, CIDR…) */
    size_t text_len;
    double number;
    uint32_t re_flags;
    uint8_t op; /* compare op, fieldref mode, time unit, exists */
    struct cidr cidr;
};

/* ---- YAML scalars ------------------------------------------------------------------------------ */


/* Typed value of one YAML scalar node (strings keep their escapes unparsed until needed). */
static int scalar_value(load_ctx *c, struct fy_node *n, struct val *v)
{
    memset(v, 0, sizeof *v);
    size_t len;
    const char *s = node_scalar(n, &len);
    if (!s) return load_fail(c, DETECT_REASON_DETECTION, n, "value must be a scalar or a list of scalars");
    v->text = s;
    v->text_len = len;
    if (fy_node_get_style(n) == FYNS_PLAIN) {
        int64_t i;
        double d;
        if (len == 0 || text_is(s, len, "~") || text_is(s, len, "null") || text_is(s, len, "Null") ||
            text_is(s, len, "NULL")) {
            v->type = V_NULL;
            return 0;
        }
        static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
        static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
        for (size_t k = 0; k < MAMORI_ARRAY_LEN(trues); k++) {
            if (text_is(s, len, trues[k])) {
                v->type = V_BOOL;
                v->number = 1;
                return 0;
            }
            if (text_is(s, len, falses[k])) {
                v->type = V_BOOL;
                return 0;
            }
        }
        if (yaml_plain_int(s, len, &i)) {
            char tmp[24];
            int n_chars = snprintf(tmp, sizeof tmp, "%lld", (long long)i);
            v->type = V_NUMBER;
            v->number = (double)i;
            v->text = arena_strndup(c->mem, tmp, (size_t)n_chars);
            v->text_len = (size_t)n_chars;
            return 0;
        }
        if (yaml_plain_float(s, len, &d)) {
            v->type = V_NUMBER;
            v->number = d;
            return 0;
        }
    }
    v->type = V_STRING;
    v->alts = arena_alloc(c->mem, sizeof(sigstr));
    v->alts[0] = sigstr_parse(c->mem, s, len);
    v->alt_count = 1;
    return 0;
}

/* Numbers and booleans used where a string is expected become their text. */
static void as_string(load_ctx *c, struct val *v)
{
    if (v->type != V_NUMBER && v->type != V_BOOL) return;
    const char *t = v->type == V_BOOL ? (v->number != 0 ? "true" : "false") : v->text;
    size_t n = v->type == V_BOOL ? strlen(t) : v->text_len;
    v->type = V_STRING;
    v->alts = arena_alloc(c->mem, sizeof(sigstr));
    v->alts[0] = sigstr_literal(c->mem, t, n);
    v->alt_count = 1;
}

/* ---- applying one modifier to one value ---------------------------------------------------------- */

struct item_ctx {
    load_ctx *c;
    struct fy_node *at; /* the item's key, for error lines */
    const char *field;  /* NULL for keywords */
    const char *mod_name;
    uint32_t applied; /* value modifiers applied so far */
};

static int wrong_type(struct item_ctx *ic, const struct val *v)
{
    return load_fail(ic->c, DETECT_REASON_MODIFIER, ic->at, "modifier '%s' cannot apply to a %s value", ic->mod_name,
                     vtype_names[v->type]);
}

static int expand_classes(struct item_ctx *ic, struct val *v)
{
    sigstr *out;
    uint32_t n;
    if (sigstr_expand_classes(ic->c->mem, v->alts, v->alt_count, &out, &n, DETECT_EXPANSION_MAX))
        return load_fail(ic->c, DETECT_REASON_LIMIT, ic->at, "windash expands to more than %u values",
                         DETECT_EXPANSION_MAX);
    v->alts = out;
    v->alt_count = n;
    return 0;
}

static int apply_modifier(struct item_ctx *ic, uint8_t mod, struct val *v)
{
    load_ctx *c = ic->c;
    arena *a = c->mem;
    switch (mod) {
    case MOD_CONTAINS:
    case MOD_STARTSWITH:
    case MOD_ENDSWITH: {
        bool before = mod != MOD_STARTSWITH, after = mod != MOD_ENDSWITH;
        as_string(c, v);
        if (v->type == V_STRING) {
            for (uint32_t i = 0; i < v->alt_count; i++) v->alts[i] = sigstr_wrap(a, v->alts[i], before, after);
        } else if (v->type == V_FIELDREF) {
            if (after) v->op |= REF_STARTS;
            if (before) v->op |= REF_ENDS;
        } else if (v->type != V_REGEX) { /* a searched regex is unanchored already */
            return wrong_type(ic, v);
        }
        return 0;
    }
    case MOD_WINDASH:
        as_string(c, v);
        if (v->type != V_STRING) return wrong_type(ic, v);
        for (uint32_t i = 0; i < v->alt_count; i++) v->alts[i] = sigstr_windash(a, v->alts[i]);
        return 0;
    case MOD_WIDE:
    case MOD_UTF16LE:
    case MOD_UTF16BE:
    case MOD_UTF16: {
        as_string(c, v);
        if (v->type != V_STRING) return wrong_type(ic, v);
        if (expand_classes(ic, v)) return -EINVAL;
        enum utf16_kind kind = mod == MOD_UTF16BE ? UTF16_BE : mod == MOD_UTF16 ? UTF16_BOM : UTF16_LE;
        for (uint32_t i = 0; i < v->alt_count; i++)
            if (sigstr_utf16(a, v->alts[i], kind, &v->alts[i])) return wrong_type(ic, v);
        return 0;
    }
    case MOD_BASE64:
    case MOD_BASE64OFFSET: {
        as_string(c, v);
        if (v->type != V_STRING) return wrong_type(ic, v);
        for (uint32_t i = 0; i < v->alt_count; i++)
            if (sigstr_has_wildcards(&v->alts[i]))
                return load_fail(c, DETECT_REASON_VALUE, ic->at,
                                 "modifier '%s': base64 encoding of a value with wildcards is not allowed", ic->mod_name);
        if (expand_classes(ic, v)) return -EINVAL;
        if (mod == MOD_BASE64) {
            for (uint32_t i = 0; i < v->alt_count; i++) v->alts[i] = sigstr_base64(a, &v->alts[i]);
            return 0;
        }
        if ((uint64_t)v->alt_count * 3 > DETECT_EXPANSION_MAX)
            return load_fail(c, DETECT_REASON_LIMIT, ic->at, "base64offset expands to more than %u values",
                             DETECT_EXPANSION_MAX);
        sigstr *out = arena_alloc(a, (size_t)v->alt_count * 3 * sizeof(sigstr));
        for (uint32_t i = 0; i < v->alt_count; i++) sigstr_base64offset(a, &v->alts[i], &out[i * 3]);
        v->alts = out;
        v->alt_count *= 3;
        return 0;
    }
    case MOD_RE:
        if (ic->applied)
            return load_fail(c, DETECT_REASON_MODIFIER, ic->at, "modifier 're' must come before value modifiers");
        if (v->type == V_NULL) return wrong_type(ic, v);
        v->type = V_REGEX;
        return 0;
    case MOD_RE_I:
    case MOD_RE_M:
    case MOD_RE_S:
        if (v->type != V_REGEX) return wrong_type(ic, v);
        v->re_flags |= mod == MOD_RE_I ? HS_FLAG_CASELESS : mod == MOD_RE_M ? HS_FLAG_MULTILINE : HS_FLAG_DOTALL;
        return 0;
    case MOD_CASED:
        if (v->type == V_FIELDREF) {
            v->cased = true;
            return 0;
        }
        as_string(c, v);
        if (v->type != V_STRING) return wrong_type(ic, v);
        v->cased = true;
        return 0;
    case MOD_CIDR:
        if (ic->applied) return load_fail(c, DETECT_REASON_MODIFIER, ic->at, "modifier 'cidr' must come first");
        if (v->type != V_STRING && v->type != V_NUMBER) return wrong_type(ic, v);
        if (!direct_parse_cidr(v->text, v->text_len, &v->cidr))
            return load_fail(c, DETECT_REASON_VALUE, ic->at, "invalid CIDR '%.*s'", (int)MAMORI_MIN(v->text_len, 80),
                             v->text);
        v->type = V_CIDR;
        return 0;
    case MOD_EXISTS:
        if (!ic->field) return load_fail(c, DETECT_REASON_MODIFIER, ic->at, "modifier 'exists' needs a field");
        if (ic->applied) return load_fail(c, DETECT_REASON_MODIFIER, ic->at, "modifier 'exists' must come first");
        if (v->type != V_BOOL)
            return load_fail(c, DETECT_REASON_VALUE, ic->at, "modifier 'exists' takes true or false");
        v->type = V_EXISTS;
        v->op = v->number != 0;
        return 0;
    case MOD_FIELDREF:
        if (!ic->field) return load_fail(c, DETECT_REASON_MODIFIER, ic->at, "modifier 'fieldref' needs a field");
        as_string(c, v);
        if (v->type != V_STRING || v->alt_count != 1) return wrong_type(ic, v);
        if (sigstr_has_wildcards(&v->alts[0]))
            return load_fail(c, DETECT_REASON_VALUE, ic->at, "field references must not contain wildcards");
        {
            const sigstr *s = &v->alts[0];
            char *name = arena_alloc(a, s->len + 1);
            for (uint32_t i = 0; i < s->len; i++) name[i] = (char)s->sym[i];
            name[s->len] = '\0';
            v->text = name;
            v->text_len = s->len;
        }
        v->type = V_FIELDREF;
        v->op = 0;
        return 0;
    case MOD_LT:
    case MOD_LTE:
    case MOD_GT:
    case MOD_GTE:
        if (v->type == V_STRING && !direct_parse_number(v->text, v->text_len, &v->number)) return wrong_type(ic, v);
        if (v->type != V_STRING && v->type != V_NUMBER) return wrong_type(ic, v);
        v->type = V_COMPARE;
        v->op = mod == MOD_LT ? CMP_LT : mod == MOD_LTE ? CMP_LTE : mod == MOD_GT ? CMP_GT : CMP_GTE;
        return 0;
    case MOD_MINUTE:
    case MOD_HOUR:
    case MOD_DAY:
    case MOD_WEEK:
    case MOD_MONTH:
    case MOD_YEAR:
        if (v->type != V_NUMBER || v->number != floor(v->number)) return wrong_type(ic, v);
        v->type = V_TIME;
        v->op = (uint8_t)(mod - MOD_MINUTE);
        return 0;
    case MOD_EXPAND: {
        as_string(c, v);
        if (v->type != V_STRING) return wrong_type(ic, v);
        const detect_options *opt = loader_options(c->loader);
        sigstr *all = NULL;
        uint32_t all_count = 0;
        for (uint32_t i = 0; i < v->alt_count; i++) {
            sigstr *out;
            uint32_t n;
            char missing[128];
            int rc = sigstr_expand_placeholders(a, &v->alts[i], opt->placeholders, opt->placeholder_count, &out, &n,
                                                DETECT_EXPANSION_MAX, missing, sizeof missing);
            if (rc == -ENOENT)
                return load_fail(c, DETECT_REASON_PLACEHOLDER, ic->at,
                                 "placeholder '%%%s%%' has no configured values", missing);
            if (rc || all_count + n > DETECT_EXPANSION_MAX)
                return load_fail(c, DETECT_REASON_LIMIT, ic->at, "placeholders expand to more than %u values",
                                 DETECT_EXPANSION_MAX);
            sigstr *joined = arena_alloc(a, (all_count + n) * sizeof(sigstr));
            if (all_count) memcpy(joined, all, all_count * sizeof(sigstr));
            memcpy(joined + all_count, out, n * sizeof(sigstr));
            all = joined;
            all_count += n;
        }
        v->alts = all;
        v->alt_count = all_count;
        return 0;
    }
    default: mamori_panic(__FILE__, __LINE__, "modifier %u: list modifiers are handled by the caller", mod);
    }
}

/* ---- a value → one predicate ------------------------------------------------------------------- */

static int add_pattern(struct item_ctx *ic, struct pattern *out, const char *expr, uint32_t flags, bool regex)
{
    load_ctx *c = ic->c;
    const detect_options *opt = loader_options(c->loader);
    if (strlen(expr) > opt->pattern_bytes_max)
        return load_fail(c, DETECT_REASON_LIMIT, ic->at, "expression of %zu bytes over the limit of %u", strlen(expr),
                         opt->pattern_bytes_max);
    char why[160];
    if (loader_check_pattern(c->loader, expr, &flags, why, sizeof why))
        return load_fail(c, regex ? DETECT_REASON_REGEX : DETECT_REASON_VALUE, ic->at, "%s '%.*s' not supported: %s",
                         regex ? "regular expression" : "value", (int)MAMORI_MIN(strlen(expr), 120), expr, why);
    out->expr = expr;
    out->flags = flags;
    return 0;
}

static bool has_non_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80) return true;
    return false;
}

static int value_to_pred(struct item_ctx *ic, struct val *v, struct pspec **out, uint32_t *pattern_budget)
{
    load_ctx *c = ic->c;
    arena *a = c->mem;
    struct pspec *p = arena_alloc(a, sizeof *p);
    memset(p, 0, sizeof *p);
    p->field = ic->field;
    p->field_len = ic->field ? (uint32_t)strlen(ic->field) : 0;
    p->line = node_line(ic->at);
    if (!ic->field) {
        if (v->type != V_STRING && v->type != V_NUMBER && v->type != V_BOOL && v->type != V_REGEX)
            return load_fail(c, DETECT_REASON_DETECTION, ic->at, "a %s value must be bound to a field",
                             vtype_names[v->type]);
        as_string(c, v);
        if (v->type == V_STRING) /* keywords are searched anywhere in a field */
            for (uint32_t i = 0; i < v->alt_count; i++) v->alts[i] = sigstr_wrap(a, v->alts[i], true, true);
    }
    switch (v->type) {
    case V_NUMBER:
    case V_BOOL:
        as_string(c, v);
        __attribute__((fallthrough));
    case V_STRING: {
        /* windash as explicit literal alternatives (Hyperscan matches plain literal sets much
         * faster than a class in UTF-8 mode), unless a value has too many dashes */
        bool dashes = false;
        for (uint32_t i = 0; i < v->alt_count && !dashes; i++)
            for (uint32_t k = 0; k < v->alts[i].len && !dashes; k++) dashes = v->alts[i].sym[k] == SYM_WINDASH;
        if (dashes) {
            sigstr *expanded;
            uint32_t n;
            if (sigstr_expand_classes(a, v->alts, v->alt_count, &expanded, &n, WINDASH_LITERALS_MAX) == 0) {
                v->alts = expanded;
                v->alt_count = n;
            }
        }
        if (v->alt_count > *pattern_budget)
            return load_fail(c, DETECT_REASON_LIMIT, ic->at, "more than %u values in one item",
                             loader_options(c->loader)->values_per_item_max);
        *pattern_budget -= v->alt_count;
        struct pattern *pats = arena_alloc(a, v->alt_count * sizeof *pats);
        memset(pats, 0, v->alt_count * sizeof *pats);
        uint32_t n = 0;
        for (uint32_t i = 0; i < v->alt_count; i++) {
            uint32_t flags;
            const char *expr = NULL;
            if (!ic->field) {
                expr = sigstr_keyword_expression(a, &v->alts[i], v->cased, &flags);
                pats[n].joined = expr != NULL;
            }
            if (!expr) expr = sigstr_expression(a, &v->alts[i], v->cased, &flags);
            if (!expr) { /* `*`: any value at all */
                p->kind = PRED_ANY;
                *out = p;
                return 0;
            }
            bool joined = pats[n].joined;
            if (add_pattern(ic, &pats[n], expr, flags, false)) return -EINVAL;
            pats[n].joined = joined;
            n++;
        }
        p->kind = PRED_PATTERN;
        p->patterns = pats;
        p->pattern_count = n;
        break;
    }
    case V_REGEX: {
        if (*pattern_budget == 0)
            return load_fail(c, DETECT_REASON_LIMIT, ic->at, "more than %u values in one item",
                             loader_options(c->loader)->values_per_item_max);
        (*pattern_budget)--;
        struct pattern *pat = arena_alloc(a, sizeof *pat);
        memset(pat, 0, sizeof *pat);
        uint32_t flags = HS_FLAG_SINGLEMATCH | v->re_flags;
        if (has_non_ascii(v->text, v->text_len)) flags |= HS_FLAG_UTF8;
        if (add_pattern(ic, pat, arena_strndup(a, v->text, v->text_len), flags, true)) return -EINVAL;
        pat->regex = true;
        p->kind = PRED_PATTERN;
        p->patterns = pat;
        p->pattern_count = 1;
        break;
    }
    case V_NULL: p->kind = PRED_NULL; break;
    case V_EXISTS:
        p->kind = PRED_EXISTS;
        p->op = v->op;
        break;
    case V_COMPARE:
        p->kind = PRED_COMPARE;
        p->op = v->op;
        p->number = v->number;
        break;
    case V_CIDR:
        p->kind = PRED_CIDR;
        p->cidr = v->cidr;
        break;
    case V_FIELDREF:
        p->kind = PRED_FIELDREF;
        p->op = v->op;
        p->cased = v->cased;
        p->ref_field = v->text;
        p->ref_len = (uint32_t)v->text_len;
        break;
    case V_TIME:
        p->kind = PRED_TIMEPART;
        p->op = v->op;
        p->number = v->number;
        break;
    default: mamori_panic(__FILE__, __LINE__, "value type %u", v->type);
    }
    *out = p;
    return 0;
}

/* Which database a pattern goes to, as far as the predicate can tell (compile.c decides by
 * path, route and laziness too, which one predicate's patterns share): a user regex, a joined
 * keyword, an anchored literal, a contains literal (split_contains may move those as a
 * group), or other Hyperscan expressions. */
static int pattern_class(const struct pattern *pt)
{
    if (pt->regex) return 0;
    uint32_t len;
    int lit = literal_parse(pt->expr, pt->flags, NULL, &len);
    int cls = lit < 0 ? 1 : lit == LIT_CONTAINS ? 2 : 3;
    return pt->joined ? cls + 3 : cls;
}
#define PATTERN_CLASSES 7

/* The class all of a leaf's patterns share, or -1 (not a pattern predicate, or mixed). */
static int leaf_class(const struct cnode *leaf)
{
    const struct pspec *p = leaf->pred;
    if (leaf->kind != CN_PRED || p->kind != PRED_PATTERN || p->pattern_count == 0) return -1;
    int cls = pattern_class(&p->patterns[0]);
    for (uint32_t i = 1; i < p->pattern_count; i++)
        if (pattern_class(&p->patterns[i]) != cls) return -1;
    return cls;
}

/* A value list is an OR of one field's values. Its pattern values of one class become one
 * predicate holding all their patterns — the same truth value (the field matches any of
 * them), but one alternative bit per path instead of one predicate per value: a rule listing
 * 480 DLL names evaluated 240 predicates on average per candidate event, now one. The other
 * leaves (null, numbers, cidr, `*`…) stay as they are. Returns the new leaf count. */
static uint32_t merge_value_patterns(arena *a, struct cnode **leaves, uint32_t count)
{
    uint32_t patterns[PATTERN_CLASSES] = {0}, values[PATTERN_CLASSES] = {0};
    int *cls = arena_alloc(a, count * sizeof *cls);
    for (uint32_t i = 0; i < count; i++) {
        cls[i] = leaf_class(leaves[i]);
        if (cls[i] < 0) continue;
        patterns[cls[i]] += leaves[i]->pred->pattern_count;
        values[cls[i]]++;
    }
    struct pattern *merged[PATTERN_CLASSES] = {0};
    struct pspec *owner[PATTERN_CLASSES] = {0};
    uint32_t kept = 0;
    for (uint32_t i = 0; i < count; i++) {
        int c = cls[i];
        if (c < 0 || values[c] < 2) {
            leaves[kept++] = leaves[i];
            continue;
        }
        struct pspec *p = leaves[i]->pred;
        if (!owner[c]) { /* the first value of its class carries the group */
            merged[c] = arena_alloc(a, patterns[c] * sizeof *merged[c]);
            memcpy(merged[c], p->patterns, p->pattern_count * sizeof *merged[c]);
            p->patterns = merged[c];
            owner[c] = p;
            leaves[kept++] = leaves[i];
            continue;
        }
        memcpy(merged[c] + owner[c]->pattern_count, p->patterns, p->pattern_count * sizeof *merged[c]);
        owner[c]->pattern_count += p->pattern_count;
    }
    return kept;
}

int detection_item(load_ctx *c, struct fy_node *key, const char *key_text, size_t key_len, struct fy_node *value,
                   struct cnode **out)
{
    arena *a = c->mem;
    struct fy_node *at = key ? key : value;
    const char *field = NULL;
    uint8_t mods[MODIFIERS_MAX];
    uint32_t mod_count = 0;
    bool link_all = false, negate = false, is_regex = false;
    if (key_text) {
        const char *bar = memchr(key_text, '|', key_len);
        size_t field_len = bar ? (size_t)(bar - key_text) : key_len;
        if (field_len) field = arena_strndup(a, key_text, field_len);
        while (bar) {
            const char *name = bar + 1;
            const char *end = key_text + key_len;
            bar = memchr(name, '|', (size_t)(end - name));
            size_t n = (size_t)((bar ? bar : end) - name);
            size_t m = 0;
            while (m < MAMORI_ARRAY_LEN(modifier_names) && !text_is(name, n, modifier_names[m].name)) m++;
            if (m == MAMORI_ARRAY_LEN(modifier_names))
                return load_fail(c, DETECT_REASON_UNKNOWN_MODIFIER, at, "unknown modifier '%.*s'", (int)MAMORI_MIN(n, 60),
                                 name);
            if (mod_count == MODIFIERS_MAX)
                return load_fail(c, DETECT_REASON_LIMIT, at, "more than %d modifiers", MODIFIERS_MAX);
            uint8_t mod = modifier_names[m].mod;
            if (mod == MOD_ALL) link_all = true;
            else if (mod == MOD_NEQ) negate = true;
            else mods[mod_count++] = mod;
            is_regex |= mod == MOD_RE;
        }
    }
    /* the values: one scalar, or a list of scalars; an empty list means null */
    struct fy_node **nodes;
    uint32_t count;
    if (fy_node_is_sequence(value)) {
        int n = fy_node_sequence_item_count(value);
        count = n > 0 ? (uint32_t)n : 0;
        nodes = arena_alloc(a, (count ? count : 1) * sizeof *nodes);
        void *it = NULL;
        struct fy_node *item;
        uint32_t k = 0;
        while ((item = fy_node_sequence_iterate(value, &it)) && k < count) nodes[k++] = item;
    } else {
        count = 1;
        nodes = arena_alloc(a, sizeof *nodes);
        nodes[0] = value;
    }
    const detect_options *opt = loader_options(c->loader);
    uint32_t budget = opt->values_per_item_max;
    if (count > budget)
        return load_fail(c, DETECT_REASON_LIMIT, at, "more than %u values in one item", opt->values_per_item_max);
    struct cnode **leaves = arena_alloc(a, (count ? count : 1) * sizeof *leaves);
    for (uint32_t i = 0; i < count; i++) {
        struct val v;
        if (!nodes[i] || !fy_node_is_scalar(nodes[i]))
            return load_fail(c, DETECT_REASON_DETECTION, nodes[i] ? nodes[i] : at,
                             "value of '%s' must be a scalar or a list of scalars", field ? field : "keywords");
        if (scalar_value(c, nodes[i], &v)) return -EINVAL;
        if (is_regex && v.type != V_NULL) { /* `re` takes the text exactly as written */
            v.text = node_scalar(nodes[i], &v.text_len);
            v.type = V_STRING;
        }
        struct item_ctx ic = {c, at, field, NULL, 0};
        for (uint32_t m = 0; m < mod_count; m++) {
            size_t k = 0;
            while (modifier_names[k].mod != mods[m]) k++;
            ic.mod_name = modifier_names[k].name;
            if (apply_modifier(&ic, mods[m], &v)) return -EINVAL;
            ic.applied++;
        }
        struct pspec *p;
        if (value_to_pred(&ic, &v, &p, &budget)) return -EINVAL;
        leaves[i] = cnode_leaf(a, p);
    }
    struct cnode *node;
    if (count == 0) {
        if (!field) return load_fail(c, DETECT_REASON_DETECTION, at, "an empty keyword list");
        struct val v = {.type = V_NULL};
        struct item_ctx ic = {c, at, field, "", 0};
        struct pspec *p;
        if (value_to_pred(&ic, &v, &p, &budget)) return -EINVAL;
        node = cnode_leaf(a, p);
    } else {
        if (!link_all) count = merge_value_patterns(a, leaves, count);
        node = cnode_join(a, link_all ? CN_AND : CN_OR, leaves, count);
    }
    *out = negate ? cnode_not(a, node) : node;
    return 0;
}


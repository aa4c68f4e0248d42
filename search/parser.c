/* search/parser.c — recursive descent over the tokens of lexer.c into the query tree of
 * internal.h. Precedence, lowest first: or, and, not, comparison. Every error names the
 * byte offset of the token that broke the grammar, and every input-driven size (nesting,
 * nodes, list length, stages, join fields) has a limit. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct parser {
    lexer lx;
    token cur, next;
    search_query *q;
    search_error *err;
    uint32_t depth;
} parser;

static int advance(parser *p)
{
    p->cur = p->next;
    if (p->cur.kind == TK_EOF) return 0;
    return lex_next(&p->lx, &p->next);
}

static bool tok_is_kw(const token *t, const char *kw)
{
    return t->kind == TK_IDENT && !t->str && strlen(kw) == t->len && strncasecmp(t->text, kw, t->len) == 0;
}

static const char *tok_desc(const token *t, char *tmp, size_t n)
{
    switch (t->kind) {
    case TK_EOF: return "end of query";
    case TK_STRING: return "a string";
    case TK_NUMBER: return "a number";
    case TK_DURATION: return "a duration";
    default: snprintf(tmp, n, "'%.*s'", (int)MAMORI_MIN(t->len, 40u), t->text); return tmp;
    }
}

static int syntax(parser *p, const token *t, const char *expected)
{
    char tmp[64];
    return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)t->pos, "expected %s at offset %u, found %s", expected,
                     t->pos, tok_desc(t, tmp, sizeof tmp));
}

static int expect(parser *p, enum tok_kind k, const char *what)
{
    if (p->cur.kind != k) return syntax(p, &p->cur, what);
    return advance(p);
}

static int expect_kw(parser *p, const char *kw)
{
    if (!tok_is_kw(&p->cur, kw)) {
        char what[48];
        snprintf(what, sizeof what, "'%s'", kw);
        return syntax(p, &p->cur, what);
    }
    return advance(p);
}

static node *new_node(parser *p, enum node_kind k, uint32_t pos)
{
    if (p->q->node_count >= SEARCH_MAX_NODES) return NULL;
    p->q->node_count++;
    node *n = arena_alloc(&p->q->a, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = k;
    n->pos = pos;
    return n;
}

static int too_many_nodes(parser *p, uint32_t pos)
{
    return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)pos, "query too complex at offset %u (over %u predicates)",
                     pos, SEARCH_MAX_NODES);
}

void field_ref_init(arena *a, field_ref *f, const char *path, size_t len)
{
    f->path = arena_strndup(a, path, len);
    f->path_len = (uint32_t)len;
    uint32_t segs = 1;
    for (size_t i = 0; i < len; i++)
        if (path[i] == '.') segs++;
    f->segs = arena_alloc(a, segs * sizeof *f->segs);
    f->seg_lens = arena_alloc(a, segs * sizeof *f->seg_lens);
    f->seg_count = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || path[i] == '.') {
            f->segs[f->seg_count] = f->path + start;
            f->seg_lens[f->seg_count] = (uint32_t)(i - start);
            f->seg_count++;
            start = i + 1;
        }
    }
    f->index_field = (uint8_t)store_index_field_for_path(path, len);
}

static const char *const reserved[] = {"and", "or", "not", "where", "in", "like", "regex", "sequence", "by", "with",
                                       "until", "true", "false", "null", "maxspan"};

static bool is_reserved(const token *t)
{
    if (t->str) return false; /* `quoted` */
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(reserved); i++)
        if (tok_is_kw(t, reserved[i])) return true;
    return false;
}

static int parse_field(parser *p, field_ref *f)
{
    if (p->cur.kind != TK_IDENT || is_reserved(&p->cur)) return syntax(p, &p->cur, "a field name");
    if (p->cur.str) field_ref_init(&p->q->a, f, p->cur.str, p->cur.str_len);
    else field_ref_init(&p->q->a, f, p->cur.text, p->cur.len);
    if (f->path_len > 255)
        return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)p->cur.pos, "field name too long at offset %u",
                         p->cur.pos);
    return advance(p);
}

static int parse_field_list(parser *p, field_ref *out, uint32_t *count, uint32_t max)
{
    *count = 0;
    for (;;) {
        if (*count == max)
            return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)p->cur.pos, "more than %u fields at offset %u", max,
                             p->cur.pos);
        int rc = parse_field(p, &out[*count]);
        if (rc) return rc;
        (*count)++;
        if (p->cur.kind != TK_COMMA) return 0;
        rc = advance(p);
        if (rc) return rc;
    }
}

/* ---- literals ---- */

static void literal_derive(literal *l)
{
    if (l->kind != LIT_STRING) return;
    l->is_ip = ip_parse(l->s, l->len, l->ip);
    char tmp[64];
    if (l->len > 0 && l->len < sizeof tmp) {
        memcpy(tmp, l->s, l->len);
        tmp[l->len] = '\0';
        char *end;
        double d = strtod(tmp, &end);
        if (*end == '\0' && end != tmp && tmp[0] != ' ') {
            l->num_ok = true;
            l->num_from_str = d;
        }
    }
    l->has_wildcard = memchr(l->s, '*', l->len) || memchr(l->s, '?', l->len);
}

static int parse_literal(parser *p, literal *l)
{
    memset(l, 0, sizeof *l);
    token *t = &p->cur;
    if (t->kind == TK_STRING) {
        l->kind = LIT_STRING;
        l->s = t->str;
        l->len = t->str_len;
        literal_derive(l);
        return advance(p);
    }
    bool neg = false;
    uint32_t start = t->pos;
    if (t->kind == TK_MINUS) {
        neg = true;
        int rc = advance(p);
        if (rc) return rc;
    }
    if (t->kind == TK_NUMBER) {
        l->kind = LIT_NUMBER;
        l->is_int = t->is_int;
        l->i = neg ? -t->num_i : t->num_i;
        l->d = neg ? -t->num_d : t->num_d;
        l->len = t->pos + t->len - start;
        l->s = arena_strndup(&p->q->a, p->lx.text + start, l->len);
        return advance(p);
    }
    if (neg) return syntax(p, t, "a number after '-'");
    if (tok_is_kw(t, "true") || tok_is_kw(t, "false")) {
        l->kind = LIT_BOOL;
        l->b = tok_is_kw(t, "true");
        return advance(p);
    }
    if (tok_is_kw(t, "null")) {
        l->kind = LIT_NULL;
        return advance(p);
    }
    if (t->kind == TK_IDENT)
        return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)t->pos,
                         "expected a value at offset %u, found '%.*s' (comparing two fields is not supported; quote "
                         "strings)",
                         t->pos, (int)MAMORI_MIN(t->len, 40u), t->text);
    return syntax(p, t, "a value (string, number, true, false, null)");
}

/* Either one literal or a parenthesized list. */
static int parse_values(parser *p, node *n, bool list_required)
{
    if (p->cur.kind != TK_LPAREN) {
        if (list_required) return syntax(p, &p->cur, "'(' and a list of values");
        n->lits = arena_alloc(&p->q->a, sizeof *n->lits);
        n->lit_count = 1;
        return parse_literal(p, &n->lits[0]);
    }
    int rc = advance(p);
    if (rc) return rc;
    literal *tmp = mamori_xmalloc(SEARCH_MAX_LIST * sizeof *tmp);
    uint32_t count = 0;
    for (;;) {
        if (count == SEARCH_MAX_LIST) {
            rc = set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)p->cur.pos, "more than %u values in a list at offset %u",
                           SEARCH_MAX_LIST, p->cur.pos);
            break;
        }
        rc = parse_literal(p, &tmp[count]);
        if (rc) break;
        count++;
        if (p->cur.kind == TK_COMMA) {
            rc = advance(p);
            if (rc) break;
            continue;
        }
        rc = expect(p, TK_RPAREN, "',' or ')'");
        break;
    }
    if (!rc) {
        n->lits = arena_memdup(&p->q->a, tmp, count * sizeof *tmp);
        n->lit_count = count;
    }
    free(tmp);
    return rc;
}

static int compile_regex(parser *p, node *n, literal *l, uint32_t pos)
{
    if (l->kind != LIT_STRING)
        return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)pos, "regex needs a string pattern at offset %u", pos);
    int errcode;
    PCRE2_SIZE erroff;
    uint32_t opts = PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    if (n->caseless) opts |= PCRE2_CASELESS;
    l->re = pcre2_compile((PCRE2_SPTR)l->s, l->len, opts, &errcode, &erroff, NULL);
    if (!l->re) {
        char msg[120];
        pcre2_get_error_message(errcode, (PCRE2_UCHAR *)msg, sizeof msg);
        return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)pos, "bad regex at offset %u: %s (pattern offset %zu)",
                         pos, msg, (size_t)erroff);
    }
    struct re_link *link = arena_alloc(&p->q->a, sizeof *link);
    link->re = l->re;
    link->next = p->q->regexes;
    p->q->regexes = link;
    (void)pcre2_jit_compile(l->re, PCRE2_JIT_COMPLETE); /* best effort */
    return 0;
}

static bool cidr_parse(const char *s, size_t len, uint8_t ip[16], uint8_t *bits)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    if (!ip_parse(s, alen, ip)) return false;
    bool v4 = memcmp(ip, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0 && memchr(s, ':', alen) == NULL;
    unsigned max = v4 ? 32 : 128, b = max;
    if (slash) {
        size_t dl = len - alen - 1;
        if (dl == 0 || dl > 3) return false;
        b = 0;
        for (size_t i = 0; i < dl; i++) {
            char c = slash[1 + i];
            if (c < '0' || c > '9') return false;
            b = b * 10 + (unsigned)(c - '0');
        }
        if (b > max) return false;
    }
    *bits = (uint8_t)(v4 ? b + 96 : b);
    return true;
}

static int parse_function(parser *p, node **out)
{
    token name = p->cur;
    int rc = advance(p);
    if (rc) return rc;
    bool caseless = false;
    if (p->cur.kind == TK_TILDE) {
        caseless = true;
        rc = advance(p);
        if (rc) return rc;
    }
    enum cmp_op op;
    if (name.len == 9 && !strncasecmp(name.text, "cidrMatch", 9)) op = OP_CIDR;
    else if (name.len == 10 && !strncasecmp(name.text, "startsWith", 10)) op = OP_STARTS;
    else if (name.len == 8 && !strncasecmp(name.text, "endsWith", 8)) op = OP_ENDS;
    else if (name.len == 14 && !strncasecmp(name.text, "stringContains", 14)) op = OP_CONTAINS;
    else
        return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)name.pos,
                         "unknown function '%.*s' at offset %u (cidrMatch, startsWith, endsWith, stringContains)",
                         (int)MAMORI_MIN(name.len, 40u), name.text, name.pos);
    if (op == OP_CIDR && caseless)
        return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)name.pos, "cidrMatch has no ~ variant (offset %u)",
                         name.pos);
    node *n = new_node(p, NODE_CMP, name.pos);
    if (!n) return too_many_nodes(p, name.pos);
    n->op = op;
    n->caseless = caseless;
    rc = expect(p, TK_LPAREN, "'('");
    if (rc) return rc;
    rc = parse_field(p, &n->field);
    if (rc) return rc;
    literal *tmp = mamori_xmalloc(SEARCH_MAX_LIST * sizeof *tmp);
    uint32_t count = 0;
    while (!rc && p->cur.kind == TK_COMMA) {
        rc = advance(p);
        if (rc) break;
        if (count == SEARCH_MAX_LIST) {
            rc = set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)p->cur.pos, "more than %u arguments at offset %u",
                           SEARCH_MAX_LIST, p->cur.pos);
            break;
        }
        uint32_t pos = p->cur.pos;
        rc = parse_literal(p, &tmp[count]);
        if (rc) break;
        if (tmp[count].kind != LIT_STRING)
            rc = set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)pos, "%.*s expects strings, at offset %u",
                           (int)name.len, name.text, pos);
        else if (op == OP_CIDR && !cidr_parse(tmp[count].s, tmp[count].len, tmp[count].ip, &tmp[count].cidr_bits))
            rc = set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)pos, "'%.*s' is not a CIDR block, at offset %u",
                           (int)MAMORI_MIN(tmp[count].len, 60u), tmp[count].s, pos);
        count++;
    }
    if (!rc && count == 0)
        rc = set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)p->cur.pos, "%.*s needs at least one value, at offset %u",
                       (int)name.len, name.text, p->cur.pos);
    if (!rc) rc = expect(p, TK_RPAREN, "',' or ')'");
    if (!rc) {
        n->lits = arena_memdup(&p->q->a, tmp, count * sizeof *tmp);
        n->lit_count = count;
        *out = n;
    }
    free(tmp);
    return rc;
}

static int parse_cond(parser *p, node **out);

static int parse_comparison(parser *p, node **out)
{
    token *t = &p->cur;
    uint32_t pos = t->pos;
    if (tok_is_kw(t, "true") || tok_is_kw(t, "false")) {
        node *n = new_node(p, NODE_CONST, pos);
        if (!n) return too_many_nodes(p, pos);
        n->value = tok_is_kw(t, "true");
        *out = n;
        return advance(p);
    }
    if (t->kind == TK_IDENT && !t->str && (p->next.kind == TK_LPAREN || p->next.kind == TK_TILDE) && !is_reserved(t))
        return parse_function(p, out);
    node *n = new_node(p, NODE_CMP, pos);
    if (!n) return too_many_nodes(p, pos);
    int rc = parse_field(p, &n->field);
    if (rc) return rc;
    bool negate = false;
    uint32_t op_pos = p->cur.pos;
    switch (p->cur.kind) {
    case TK_EQ: n->op = OP_EQ; break;
    case TK_NE: n->op = OP_NE; break;
    case TK_LT: n->op = OP_LT; break;
    case TK_LE: n->op = OP_LE; break;
    case TK_GT: n->op = OP_GT; break;
    case TK_GE: n->op = OP_GE; break;
    case TK_COLON: n->op = OP_WILDCARD; n->caseless = true; break;
    case TK_ASSIGN:
        return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)op_pos, "use '==' to compare, at offset %u", op_pos);
    case TK_IDENT:
        if (tok_is_kw(&p->cur, "not")) {
            negate = true;
            rc = advance(p);
            if (rc) return rc;
            if (!tok_is_kw(&p->cur, "in")) return syntax(p, &p->cur, "'in' after 'not'");
        }
        if (tok_is_kw(&p->cur, "in")) n->op = OP_IN;
        else if (tok_is_kw(&p->cur, "like")) n->op = OP_LIKE;
        else if (tok_is_kw(&p->cur, "regex")) n->op = OP_REGEX;
        else return syntax(p, &p->cur, "an operator (==, !=, <, <=, >, >=, :, in, like, regex)");
        break;
    default: return syntax(p, &p->cur, "an operator (==, !=, <, <=, >, >=, :, in, like, regex)");
    }
    rc = advance(p);
    if (rc) return rc;
    if ((n->op == OP_IN || n->op == OP_LIKE || n->op == OP_REGEX) && p->cur.kind == TK_TILDE) {
        n->caseless = true;
        rc = advance(p);
        if (rc) return rc;
    }
    uint32_t val_pos = p->cur.pos;
    bool list_ok = n->op == OP_IN || n->op == OP_WILDCARD || n->op == OP_LIKE || n->op == OP_REGEX;
    if (!list_ok && p->cur.kind == TK_LPAREN)
        return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)val_pos,
                         "a list of values needs 'in', ':', 'like' or 'regex', at offset %u", val_pos);
    rc = parse_values(p, n, n->op == OP_IN);
    if (rc) return rc;
    for (uint32_t i = 0; i < n->lit_count; i++) {
        literal *l = &n->lits[i];
        if ((n->op == OP_WILDCARD || n->op == OP_LIKE) && l->kind != LIT_STRING && l->kind != LIT_NUMBER)
            return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)val_pos,
                             "wildcard patterns must be strings, at offset %u", val_pos);
        if (n->op == OP_REGEX) {
            rc = compile_regex(p, n, l, val_pos);
            if (rc) return rc;
        }
        if ((n->op == OP_LT || n->op == OP_LE || n->op == OP_GT || n->op == OP_GE) &&
            (l->kind == LIT_NULL || l->kind == LIT_BOOL))
            return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)val_pos,
                             "ordering comparisons need a number or a string, at offset %u", val_pos);
        if (l->kind == LIT_NUMBER) l->has_wildcard = false;
    }
    if (negate) {
        node *nn = new_node(p, NODE_NOT, pos);
        if (!nn) return too_many_nodes(p, pos);
        nn->kid = n;
        *out = nn;
    } else {
        *out = n;
    }
    return 0;
}

static int parse_unary(parser *p, node **out)
{
    if (++p->depth > SEARCH_MAX_DEPTH)
        return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)p->cur.pos, "nesting deeper than %u at offset %u",
                         SEARCH_MAX_DEPTH, p->cur.pos);
    int rc;
    if (tok_is_kw(&p->cur, "not")) {
        uint32_t pos = p->cur.pos;
        rc = advance(p);
        if (rc) return rc;
        node *n = new_node(p, NODE_NOT, pos);
        if (!n) return too_many_nodes(p, pos);
        rc = parse_unary(p, &n->kid);
        if (rc) return rc;
        *out = n;
    } else if (p->cur.kind == TK_LPAREN) {
        rc = advance(p);
        if (rc) return rc;
        rc = parse_cond(p, out);
        if (rc) return rc;
        rc = expect(p, TK_RPAREN, "')'");
        if (rc) return rc;
    } else {
        rc = parse_comparison(p, out);
        if (rc) return rc;
    }
    p->depth--;
    return 0;
}

/* and/or chains are flattened into one node with many children. */
static int parse_chain(parser *p, node **out, const char *kw, enum node_kind kind,
                       int (*sub)(parser *, node **))
{
    uint32_t pos = p->cur.pos;
    node *first;
    int rc = sub(p, &first);
    if (rc) return rc;
    if (!tok_is_kw(&p->cur, kw)) {
        *out = first;
        return 0;
    }
    size_t cap = 8;
    uint32_t count = 0;
    node **kids = mamori_xmalloc(cap * sizeof *kids);
    kids[count++] = first;
    while (tok_is_kw(&p->cur, kw)) {
        rc = advance(p);
        if (!rc && count == SEARCH_MAX_NODES) rc = too_many_nodes(p, p->cur.pos);
        if (!rc && count == cap) {
            cap *= 2;
            kids = mamori_xrealloc(kids, cap * sizeof *kids);
        }
        if (!rc) rc = sub(p, &kids[count]);
        if (rc) {
            free(kids);
            return rc;
        }
        count++;
    }
    node *n = new_node(p, kind, pos);
    if (!n) {
        free(kids);
        return too_many_nodes(p, pos);
    }
    n->kids = arena_memdup(&p->q->a, kids, count * sizeof *kids);
    free(kids);
    n->kid_count = count;
    *out = n;
    return 0;
}

static int parse_and(parser *p, node **out) { return parse_chain(p, out, "and", NODE_AND, parse_unary); }

static int parse_cond(parser *p, node **out)
{
    if (++p->depth > SEARCH_MAX_DEPTH)
        return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)p->cur.pos, "nesting deeper than %u at offset %u",
                         SEARCH_MAX_DEPTH, p->cur.pos);
    int rc = parse_chain(p, out, "or", NODE_OR, parse_and);
    p->depth--;
    return rc;
}

static int parse_event_query(parser *p, event_query *eq)
{
    memset(eq, 0, sizeof *eq);
    token *t = &p->cur;
    eq->pos = t->pos;
    if (t->kind == TK_STRING) {
        eq->category = t->str;
        eq->category_len = t->str_len;
    } else if (t->kind == TK_IDENT && !t->str && !is_reserved(t)) {
        if (!tok_is_kw(t, "any")) {
            eq->category = arena_strndup(&p->q->a, t->text, t->len);
            eq->category_len = t->len;
        }
    } else {
        return syntax(p, t, "an event category (process, network, file, dns, registry, library, any…)");
    }
    if (eq->category && (memchr(eq->category, '.', eq->category_len) || eq->category_len == 0))
        return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)t->pos,
                         "'%.*s' is not an event category, at offset %u", (int)MAMORI_MIN(eq->category_len, 40u),
                         eq->category, t->pos);
    int rc = advance(p);
    if (rc) return rc;
    rc = expect_kw(p, "where");
    if (rc) return rc;
    rc = parse_cond(p, &eq->cond);
    if (rc) return rc;
    if (eq->category) {
        node *n = new_node(p, NODE_CMP, eq->pos);
        if (!n) return too_many_nodes(p, eq->pos);
        n->op = OP_IN;
        n->caseless = true;
        field_ref_init(&p->q->a, &n->field, "event.category", 14);
        n->lits = arena_alloc(&p->q->a, sizeof *n->lits);
        memset(n->lits, 0, sizeof *n->lits);
        n->lits[0].kind = LIT_STRING;
        n->lits[0].s = eq->category;
        n->lits[0].len = eq->category_len;
        literal_derive(&n->lits[0]);
        n->lit_count = 1;
        eq->category_node = n;
    }
    return 0;
}

static int parse_stage(parser *p, event_query *eq)
{
    int rc = expect(p, TK_LBRACKET, "'['");
    if (rc) return rc;
    rc = parse_event_query(p, eq);
    if (rc) return rc;
    rc = expect(p, TK_RBRACKET, "']' (or 'and', 'or')");
    if (rc) return rc;
    if (tok_is_kw(&p->cur, "by")) {
        rc = advance(p);
        if (rc) return rc;
        rc = parse_field_list(p, eq->by, &eq->by_count, SEARCH_MAX_BY);
    }
    return rc;
}

static int parse_sequence(parser *p)
{
    search_query *q = p->q;
    q->is_sequence = true;
    int rc = advance(p); /* 'sequence' */
    if (rc) return rc;
    bool have_by = false, have_span = false;
    for (;;) {
        if (tok_is_kw(&p->cur, "by") && !have_by) {
            have_by = true;
            rc = advance(p);
            if (!rc) rc = parse_field_list(p, q->seq_by, &q->seq_by_count, SEARCH_MAX_BY);
        } else if (tok_is_kw(&p->cur, "with") && !have_span) {
            have_span = true;
            rc = advance(p);
            if (!rc) rc = expect_kw(p, "maxspan");
            if (!rc) rc = expect(p, TK_ASSIGN, "'='");
            if (!rc && p->cur.kind != TK_DURATION) rc = syntax(p, &p->cur, "a duration such as 5m (ms, s, m, h, d)");
            if (!rc) {
                if (p->cur.duration_us <= 0)
                    return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)p->cur.pos,
                                     "maxspan must be positive, at offset %u", p->cur.pos);
                q->maxspan_us = p->cur.duration_us;
                rc = advance(p);
            }
        } else {
            break;
        }
        if (rc) return rc;
    }
    while (p->cur.kind == TK_LBRACKET) {
        if (q->stage_count == SEARCH_MAX_STAGES)
            return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)p->cur.pos,
                             "more than %u queries in a sequence, at offset %u", SEARCH_MAX_STAGES, p->cur.pos);
        rc = parse_stage(p, &q->stages[q->stage_count]);
        if (rc) return rc;
        q->stage_count++;
    }
    if (q->stage_count < 2)
        return syntax(p, &p->cur, q->stage_count ? "a second [query] (a sequence needs at least two)" : "'[' query ']'");
    if (tok_is_kw(&p->cur, "until")) {
        rc = advance(p);
        if (rc) return rc;
        q->has_until = true;
        rc = parse_stage(p, &q->until);
        if (rc) return rc;
    }
    uint32_t keys = q->seq_by_count + q->stages[0].by_count;
    for (uint32_t i = 0; i < q->stage_count + (q->has_until ? 1u : 0u); i++) {
        const event_query *st = i < q->stage_count ? &q->stages[i] : &q->until;
        if (q->seq_by_count + st->by_count != keys)
            return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)st->pos,
                             "every query of a sequence needs the same number of join fields, at offset %u", st->pos);
    }
    return 0;
}

static int parse_pipes(parser *p)
{
    search_query *q = p->q;
    while (p->cur.kind == TK_PIPE) {
        int rc = advance(p);
        if (rc) return rc;
        if (q->pipe_count == SEARCH_MAX_PIPES)
            return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)p->cur.pos, "more than %u pipes, at offset %u",
                             SEARCH_MAX_PIPES, p->cur.pos);
        if (q->pipe_count && q->pipes[q->pipe_count - 1].kind == PIPE_COUNT)
            return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)p->cur.pos,
                             "nothing may follow '| count', at offset %u", p->cur.pos);
        pipe_op *po = &q->pipes[q->pipe_count];
        memset(po, 0, sizeof *po);
        po->pos = p->cur.pos;
        if (tok_is_kw(&p->cur, "head") || tok_is_kw(&p->cur, "tail")) {
            po->kind = tok_is_kw(&p->cur, "head") ? PIPE_HEAD : PIPE_TAIL;
            rc = advance(p);
            if (rc) return rc;
            if (p->cur.kind != TK_NUMBER || !p->cur.is_int || p->cur.num_i < 1)
                return syntax(p, &p->cur, "a positive integer");
            po->n = (uint64_t)p->cur.num_i;
            rc = advance(p);
            if (rc) return rc;
        } else if (tok_is_kw(&p->cur, "count")) {
            po->kind = PIPE_COUNT;
            rc = advance(p);
            if (rc) return rc;
            if (tok_is_kw(&p->cur, "by")) {
                if (q->is_sequence)
                    return set_error(p->err, SEARCH_ERR_BAD_QUERY, (int32_t)p->cur.pos,
                                     "'count by' is not supported after a sequence, at offset %u", p->cur.pos);
                rc = advance(p);
                if (rc) return rc;
                rc = parse_field_list(p, po->by, &po->by_count, SEARCH_MAX_BY);
                if (rc) return rc;
            }
        } else {
            return syntax(p, &p->cur, "a pipe: head N, tail N, count, count by FIELD");
        }
        q->pipe_count++;
    }
    return 0;
}

int parse_query(search_query *q, search_error *err)
{
    parser p;
    memset(&p, 0, sizeof p);
    p.lx.text = q->text;
    p.lx.len = q->text_len;
    p.lx.a = &q->a;
    p.lx.err = err;
    p.q = q;
    p.err = err;
    int rc = lex_next(&p.lx, &p.next);
    if (!rc) rc = advance(&p);
    if (rc) return rc;
    if (p.cur.kind == TK_EOF) return syntax(&p, &p.cur, "a query");
    if (tok_is_kw(&p.cur, "sequence")) rc = parse_sequence(&p);
    else rc = parse_event_query(&p, &q->filter);
    if (!rc) rc = parse_pipes(&p);
    if (!rc && p.cur.kind != TK_EOF) {
        if (p.cur.kind == TK_RPAREN) rc = set_error(err, SEARCH_ERR_BAD_QUERY, (int32_t)p.cur.pos, "unbalanced ')' at offset %u", p.cur.pos);
        else rc = syntax(&p, &p.cur, "'and', 'or', '|' or the end of the query");
    }
    return rc;
}

void query_free_patterns(search_query *q)
{
    for (struct re_link *l = q->regexes; l; l = l->next) pcre2_code_free(l->re);
    q->regexes = NULL;
}

/* ---- the shape of a compiled query (what api/fanout*.c needs to merge shards) ---- */

static bool host_field(const field_ref *f)
{
    static const char *const names[] = {"host.id", "mamori.agent_id", "agent.id"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (f->path_len == strlen(names[i]) && !memcmp(f->path, names[i], f->path_len)) return true;
    return false;
}

static bool sequence_host_bound(const search_query *q)
{
    for (uint32_t i = 0; i < q->seq_by_count; i++)
        if (host_field(&q->seq_by[i])) return true;
    for (uint32_t j = 0; j < SEARCH_MAX_BY; j++) {
        bool all = q->stage_count > 0;
        for (uint32_t s = 0; s < q->stage_count && all; s++)
            all = j < q->stages[s].by_count && host_field(&q->stages[s].by[j]);
        if (all) return true;
    }
    return false;
}

void search_query_shape(const search_query *q, search_shape *out)
{
    memset(out, 0, sizeof *out);
    out->sequence = q->is_sequence;
    out->host_bound = q->is_sequence && sequence_host_bound(q);
    for (uint32_t i = 0; i < q->pipe_count; i++) {
        const pipe_op *p = &q->pipes[i];
        if (p->kind == PIPE_HEAD) out->head = p->n;
        else if (p->kind == PIPE_TAIL) out->tail = p->n;
        else {
            out->count = true;
            out->count_by = p->by_count;
        }
    }
}

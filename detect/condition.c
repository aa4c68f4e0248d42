/* detect/condition.c — the Sigma condition grammar, by recursive descent:
 *
 *   or      := and ("or" and)*
 *   and     := not ("and" not)*
 *   not     := "not" not | primary
 *   primary := "(" or ")" | quant "of" (pattern | "them") | identifier
 *   quant   := "1" | "any" | "all"
 *
 * so precedence runs or < and < not < x-of < parentheses, as the specification lists it.
 * Identifiers resolve to the search identifiers' trees; an `x of` pattern that selects
 * nothing rejects the rule (as pySigma 2.x does). Keywords are matched
 * case-insensitively. The deprecated `| count()` aggregation is rejected with its own
 * reason; correlation rules replace it. */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

enum tok_kind { TOK_END = 0, TOK_LPAREN, TOK_RPAREN, TOK_WORD, TOK_PIPE };

typedef struct parser {
    load_ctx *c;
    struct detection *d;
    struct fy_node *at;
    const char *text;
    size_t len, pos;
    /* current token */
    enum tok_kind kind;
    const char *word;
    size_t word_len;
    uint32_t depth;
} parser;

static bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

static void next(parser *p)
{
    while (p->pos < p->len && is_space(p->text[p->pos])) p->pos++;
    if (p->pos >= p->len) {
        p->kind = TOK_END;
        return;
    }
    char ch = p->text[p->pos];
    if (ch == '(' || ch == ')' || ch == '|') {
        p->kind = ch == '(' ? TOK_LPAREN : ch == ')' ? TOK_RPAREN : TOK_PIPE;
        p->pos++;
        return;
    }
    size_t start = p->pos;
    while (p->pos < p->len) {
        ch = p->text[p->pos];
        if (is_space(ch) || ch == '(' || ch == ')' || ch == '|') break;
        p->pos++;
    }
    p->kind = TOK_WORD;
    p->word = p->text + start;
    p->word_len = p->pos - start;
}

static bool word_is(const parser *p, const char *kw)
{
    size_t n = strlen(kw);
    return p->kind == TOK_WORD && p->word_len == n && strncasecmp(p->word, kw, n) == 0;
}

static int syntax(parser *p, const char *what)
{
    if (p->kind == TOK_END)
        return load_fail(p->c, DETECT_REASON_CONDITION, p->at, "condition '%.*s': %s at the end",
                         (int)MAMORI_MIN(p->len, 200), p->text, what);
    if (p->kind == TOK_PIPE)
        return load_fail(p->c, DETECT_REASON_AGGREGATION, p->at,
                         "condition '%.*s': aggregation ('|') is the deprecated Sigma 1 syntax; use a correlation rule",
                         (int)MAMORI_MIN(p->len, 200), p->text);
    size_t at = p->kind == TOK_WORD ? (size_t)(p->word - p->text) : p->pos - 1;
    return load_fail(p->c, DETECT_REASON_CONDITION, p->at, "condition '%.*s': %s at offset %zu",
                     (int)MAMORI_MIN(p->len, 200), p->text, what, at);
}

static bool is_keyword(const parser *p)
{
    return word_is(p, "and") || word_is(p, "or") || word_is(p, "not") || word_is(p, "of");
}

static int parse_or(parser *p, struct cnode **out);

static int parse_selector(parser *p, bool all, struct cnode **out)
{
    arena *a = p->c->mem;
    next(p); /* "of" */
    next(p);
    if (p->kind != TOK_WORD || is_keyword(p)) return syntax(p, "expected a search identifier pattern after 'of'");
    bool them = word_is(p, "them");
    uint32_t n = detection_select(p->d, p->word, p->word_len, them, NULL, 0);
    if (n == 0) {
        /* pySigma (2.x) rejects such a rule; dropping the selector would change what the
         * rest of the condition means (`a or not 1 of filter_*`) without a word */
        char what[160];
        snprintf(what, sizeof what, "'%s of %.*s' selects no search identifier", all ? "all" : "1",
                 (int)MAMORI_MIN(p->word_len, 100), p->word);
        return syntax(p, what);
    }
    struct cnode **kids = arena_alloc(a, n * sizeof *kids);
    detection_select(p->d, p->word, p->word_len, them, kids, n);
    next(p);
    *out = cnode_join(a, all ? CN_AND : CN_OR, kids, n);
    return 0;
}

static int parse_primary(parser *p, struct cnode **out)
{
    if (p->kind == TOK_LPAREN) {
        if (++p->depth > DETECT_CONDITION_DEPTH_MAX)
            return load_fail(p->c, DETECT_REASON_LIMIT, p->at, "condition nested deeper than %d",
                             DETECT_CONDITION_DEPTH_MAX);
        next(p);
        if (parse_or(p, out)) return -EINVAL;
        if (p->kind != TOK_RPAREN) return syntax(p, "expected ')'");
        p->depth--;
        next(p);
        return 0;
    }
    if (p->kind != TOK_WORD || is_keyword(p)) return syntax(p, "expected a search identifier");
    if (word_is(p, "1") || word_is(p, "any") || word_is(p, "all")) {
        /* look ahead for "of" without consuming */
        parser save = *p;
        bool all = word_is(p, "all");
        next(p);
        bool selector = word_is(p, "of");
        *p = save;
        if (selector) return parse_selector(p, all, out);
    }
    if (memchr(p->word, '*', p->word_len)) return syntax(p, "a pattern needs '1 of' or 'all of'");
    struct cnode *node = detection_identifier(p->d, p->word, p->word_len);
    if (!node)
        return load_fail(p->c, DETECT_REASON_CONDITION, p->at, "condition refers to unknown search identifier '%.*s'",
                         (int)MAMORI_MIN(p->word_len, 80), p->word);
    *out = node;
    next(p);
    return 0;
}

static int parse_not(parser *p, struct cnode **out)
{
    if (!word_is(p, "not")) return parse_primary(p, out);
    if (++p->depth > DETECT_CONDITION_DEPTH_MAX)
        return load_fail(p->c, DETECT_REASON_LIMIT, p->at, "condition nested deeper than %d", DETECT_CONDITION_DEPTH_MAX);
    next(p);
    struct cnode *kid;
    if (parse_not(p, &kid)) return -EINVAL;
    p->depth--;
    *out = cnode_not(p->c->mem, kid);
    return 0;
}

/* Parses `sub (op sub)*` into one AND/OR node. */
static int parse_chain(parser *p, const char *op, int (*sub)(parser *, struct cnode **), enum cnode_kind kind,
                       struct cnode **out)
{
    arena *a = p->c->mem;
    uint32_t cap = 8, n = 0;
    struct cnode **kids = arena_alloc(a, cap * sizeof *kids);
    for (;;) {
        if (n == cap) {
            kids = arena_grow(a, kids, cap * sizeof *kids, cap * 2 * sizeof *kids);
            cap *= 2;
        }
        if (sub(p, &kids[n])) return -EINVAL;
        n++;
        if (!word_is(p, op)) break;
        next(p);
    }
    *out = cnode_join(a, kind, kids, n);
    return 0;
}

static int parse_and(parser *p, struct cnode **out) { return parse_chain(p, "and", parse_not, CN_AND, out); }
static int parse_or(parser *p, struct cnode **out) { return parse_chain(p, "or", parse_and, CN_OR, out); }

int condition_parse(load_ctx *c, struct detection *d, struct fy_node *at, const char *text, size_t len,
                    struct cnode **out)
{
    if (len > DETECT_CONDITION_BYTES_MAX)
        return load_fail(c, DETECT_REASON_LIMIT, at, "condition of %zu bytes over the limit of %d", len,
                         DETECT_CONDITION_BYTES_MAX);
    parser p = {.c = c, .d = d, .at = at, .text = text, .len = len};
    next(&p);
    if (p.kind == TOK_END) return load_fail(c, DETECT_REASON_CONDITION, at, "empty condition");
    if (parse_or(&p, out)) return -EINVAL;
    if (p.kind != TOK_END) return syntax(&p, "unexpected token");
    return 0;
}

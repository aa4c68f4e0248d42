/* detect/strength.c — how rarely a predicate should match: a static guess, used only to choose
 * which side of an AND makes a rule a candidate (compile.c's triggers; docs/detection.md §6).
 * An expression weighs the literal bytes every match of it must contain, more when it is
 * anchored; a field whose values repeat across events divides that. Any choice is exact (a
 * rule that is not a candidate cannot hold); a poor one costs time: an eager scan of a slow
 * regular expression on every event, or a candidate on every event. */
#include "internal.h"

#include <string.h>

struct cursor {
    const char *s;
    size_t i, n;
};

static double alternation(struct cursor *c);
static size_t skip_nested(const char *e, size_t i, size_t n);

/* One atom's weight, the cursor past it: a literal letter, digit or byte ≥ 0x80 1, as is
 * escaped punctuation and a `\xHH` byte (how sigstr_expression writes a value's punctuation);
 * other punctuation, a character class, `.`, `\d`-like classes and anchors 0; a group its
 * alternation's. */
static double atom(struct cursor *c)
{
    const char *s = c->s;
    char ch = s[c->i];
    if (ch == '(') {
        c->i++;
        if (c->i < c->n && s[c->i] == '?') { /* (?:…), (?i:…), or inline flags (?i) */
            while (c->i < c->n && s[c->i] != ':' && s[c->i] != ')') c->i++;
            if (c->i < c->n && s[c->i] == ')') {
                c->i++;
                return 0;
            }
            c->i++;
        }
        double w = alternation(c);
        if (c->i < c->n && s[c->i] == ')') c->i++;
        return w;
    }
    if (ch == '[') {
        c->i = skip_nested(s, c->i, c->n);
        return 0;
    }
    if (ch == '\\' && c->i + 1 < c->n) {
        char e = s[c->i + 1];
        if (e == 'x') {
            if (c->i + 2 < c->n && s[c->i + 2] == '{') { /* \x{HHHH} */
                while (c->i < c->n && s[c->i] != '}') c->i++;
                c->i++;
            } else {
                c->i += 4;
            }
            return 1;
        }
        c->i += 2;
        return strchr("dwsDWSbBzAZ", e) ? 0 : 1;
    }
    c->i++;
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (unsigned char)ch >= 0x80;
}

/* A sequence of atoms up to `|`, `)` or the end: their weights added, an optional one (`?`,
 * `*`, `{0,…}`) counting nothing. */
static double sequence(struct cursor *c)
{
    const char *s = c->s;
    double sum = 0;
    while (c->i < c->n && s[c->i] != '|' && s[c->i] != ')') {
        double w = atom(c);
        if (c->i < c->n) {
            char q = s[c->i];
            if (q == '?' || q == '*' || q == '+') {
                c->i++;
                if (q != '+') w = 0;
                if (c->i < c->n && (s[c->i] == '?' || s[c->i] == '+')) c->i++; /* lazy, possessive */
            } else if (q == '{' && c->i + 1 < c->n && s[c->i + 1] >= '0' && s[c->i + 1] <= '9') {
                if (s[c->i + 1] == '0' && c->i + 2 < c->n && (s[c->i + 2] == ',' || s[c->i + 2] == '}')) w = 0;
                while (c->i < c->n && s[c->i] != '}') c->i++;
                c->i++;
            }
        }
        sum += w;
    }
    return sum;
}

/* Alternatives: the weakest one's weight (any of them may be the one that matches). */
static double alternation(struct cursor *c)
{
    double w = sequence(c);
    while (c->i < c->n && c->s[c->i] == '|') {
        c->i++;
        w = MAMORI_MIN(w, sequence(c));
    }
    return w;
}

static double expression_strength(const char *e)
{
    struct cursor c = {.s = e, .n = strlen(e)};
    double w = 0;
    while (c.i < c.n) {
        w += alternation(&c);
        if (c.i < c.n) c.i++; /* an unbalanced ) */
    }
    bool start = c.n && e[0] == '^';
    bool end = (c.n >= 2 && !strcmp(e + c.n - 2, "\\z")) || (c.n && e[c.n - 1] == '$' && (c.n < 2 || e[c.n - 2] != '\\'));
    return w + (start && end ? 6 : start || end ? 1 : 0);
}

/* Fields whose values repeat across most events of a kind (the image of a common binary,
 * an event id; a CallTrace lists ntdll.dll and kernelbase.dll frame after frame, so
 * `CallTrace|contains: ntdll.dll` holds on nearly every process access): a match there says
 * little, prefer the other side of an AND. */
static bool common_field(const char *field)
{
    static const char *const common[] = {"Image", "ParentImage", "OriginalFileName", "EventID", "Provider_Name",
                                         "Channel", "Product", "Company", "Description", "Signed", "Initiated",
                                         "SourceImage", "TargetImage", "User", "IntegrityLevel", "CallTrace"};
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(common); i++)
        if (field && !strcmp(field, common[i])) return true;
    return false;
}

/* A user regular expression as a trigger is scanned on every event of its class, by
 * Hyperscan's slower engines (process_creation's command-line expressions took ~1,400 cycles
 * per 52-byte value, more than the 8,353 literals and wildcards of the path together), while a
 * candidate that turns out false now costs a few lazy answers (lazy.c): such a side is chosen
 * only when the others are much weaker. */
#define REGEX_DIVISOR 8

double pred_strength(const struct pspec *ps)
{
    double s = 1e9;
    bool regex = false;
    for (uint32_t k = 0; k < ps->pattern_count; k++) {
        s = MAMORI_MIN(s, expression_strength(ps->patterns[k].expr));
        regex |= ps->patterns[k].regex;
    }
    if (ps->pattern_count == 0) s = 0;
    if (regex) s /= REGEX_DIVISOR;
    return common_field(ps->field) ? s / 4 : s;
}

/* ---- required literals of regular expressions ---------------------------------------- */

/* Skips a group or class starting at e[i] ('(' or '['); returns the index past it, or n when
 * it does not close. */
static size_t skip_nested(const char *e, size_t i, size_t n)
{
    if (e[i] == '[') {
        i++;
        if (i < n && e[i] == '^') i++;
        if (i < n && e[i] == ']') i++; /* a leading ] is a member */
        while (i < n && e[i] != ']') i += e[i] == '\\' ? 2 : 1;
        return i < n ? i + 1 : n;
    }
    int depth = 0;
    while (i < n) {
        char c = e[i];
        if (c == '\\') {
            i += 2;
            continue;
        }
        if (c == '[') {
            i = skip_nested(e, i, n);
            continue;
        }
        if (c == '(') depth++;
        else if (c == ')' && --depth == 0) return i + 1;
        i++;
    }
    return n;
}

uint32_t regex_factor(const char *e, uint32_t flags, char *out, uint32_t cap)
{
    if (flags & (HS_FLAG_UTF8 | HS_FLAG_UCP)) return 0; /* caseless Unicode folds 'k' to U+212A */
    if (strstr(e, "(?x") || strstr(e, "\\Q")) return 0;  /* extended syntax, quoting */
    size_t n = strlen(e), i = 0;
    uint32_t best = 0, cur = 0;
    char run[256];
    while (i < n) {
        char c = e[i], lit = 0;
        bool is_lit = false;
        if (c == '|') return 0; /* an alternative without it */
        if (c == '(' && i + 3 < n && e[i + 1] == '?' && e[i + 2] == 'i' && e[i + 3] == ')') {
            i += 4; /* (?i): the factor is caseless anyway */
            continue;
        }
        size_t next;
        if (c == '(' || c == '[') {
            next = skip_nested(e, i, n);
        } else if (c == '\\' && i + 1 < n) {
            char x = e[i + 1];
            next = i + 2;
            uint8_t v;
            if (x == 'x' && literal_byte(e, i, n, &v) == 4) {
                next = i + 4;
                if (v >= 0x20 && v < 0x7f) is_lit = true, lit = (char)v;
            } else if (!((x >= '0' && x <= '9') || (x >= 'A' && x <= 'Z') || (x >= 'a' && x <= 'z')) && (unsigned char)x < 0x80) {
                is_lit = true, lit = x; /* escaped punctuation */
            } else if (x == 'x' || !strchr("dDwWsSbBAzZntrfvae", x)) {
                return 0; /* \x{…}, octal, back references, \c, \p{…}…: escapes longer than two bytes */
            }
        } else if (c == '{' && !(i + 1 < n && e[i + 1] >= '0' && e[i + 1] <= '9')) {
            return 0; /* a literal brace, or syntax this reader does not know */
        } else {
            next = i + 1;
            if (c != '.' && c != '^' && c != '$' && c != '?' && c != '*' && c != '+' && c != '{' && c != ')' &&
                (unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
                is_lit = true, lit = c;
        }
        /* the atom's quantifier: optional (?, *, {0…}) drops it, repeated (+, {m≥1…}) keeps one */
        bool optional = false, repeated = false;
        if (next < n) {
            char q = e[next];
            if (q == '?' || q == '*') optional = true, next++;
            else if (q == '+') repeated = true, next++;
            else if (q == '{' && next + 1 < n && e[next + 1] >= '0' && e[next + 1] <= '9') {
                optional = e[next + 1] == '0' && next + 2 < n && (e[next + 2] == ',' || e[next + 2] == '}');
                repeated = !optional;
                while (next < n && e[next] != '}') next++;
                next++;
            }
            if (next < n && (optional || repeated) && (e[next] == '?' || e[next] == '+')) next++; /* lazy, possessive */
        }
        if (is_lit && !optional && cur < sizeof run) run[cur++] = lit;
        if (!is_lit || optional || repeated) { /* the run ends here */
            if (cur > best && cur <= cap) memcpy(out, run, cur), best = cur;
            cur = 0;
        }
        i = next;
    }
    if (cur > best && cur <= cap) memcpy(out, run, cur), best = cur;
    return best;
}

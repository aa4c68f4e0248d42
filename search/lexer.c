/* search/lexer.c — tokens of the query language: field paths and keywords, strings
 * ("…" with escapes, """raw""" for Windows paths), numbers, durations (5m), operators.
 * Every token keeps its byte offset so that errors can point at it. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int set_error(search_error *err, enum search_error_code code, int32_t position, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        err->position = position;
        err->cursor[0] = '\0';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code == SEARCH_ERR_TOO_LARGE ? -E2BIG : code == SEARCH_ERR_DEADLINE ? -ETIMEDOUT
           : code == SEARCH_ERR_INTERNAL ? -EIO : -EINVAL;
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '@';
}
static bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9') || c == '.'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void put_utf8(buf *b, uint32_t cp)
{
    if (cp < 0x80) {
        buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        buf_putc(b, (char)(0xC0 | (cp >> 6)));
        buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        buf_putc(b, (char)(0xE0 | (cp >> 12)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        buf_putc(b, (char)(0xF0 | (cp >> 18)));
        buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    }
}

static int lex_string(lexer *lx, token *t)
{
    const char *s = lx->text;
    size_t start = lx->pos;
    char quote = s[start];
    buf out;
    buf_init(&out);
    int rc = 0;
    if (quote == '"' && start + 2 < lx->len && s[start + 1] == '"' && s[start + 2] == '"') {
        /* """raw""": no escapes, for Windows paths */
        size_t p = start + 3;
        while (p + 2 < lx->len && !(s[p] == '"' && s[p + 1] == '"' && s[p + 2] == '"')) p++;
        if (p + 2 >= lx->len) {
            rc = set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)start, "unterminated raw string at offset %zu", start);
            goto done;
        }
        buf_append(&out, s + start + 3, p - start - 3);
        lx->pos = p + 3;
    } else {
        size_t p = start + 1;
        for (;;) {
            if (p >= lx->len) {
                rc = set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)start, "unterminated string at offset %zu", start);
                goto done;
            }
            char c = s[p];
            if (c == quote) {
                p++;
                break;
            }
            if ((unsigned char)c < 0x20) {
                rc = set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)p, "control character in string at offset %zu", p);
                goto done;
            }
            if (c != '\\') {
                buf_putc(&out, c);
                p++;
                continue;
            }
            if (p + 1 >= lx->len) {
                rc = set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)p, "unterminated escape at offset %zu", p);
                goto done;
            }
            char e = s[p + 1];
            switch (e) {
            case '"': case '\'': case '\\': case '/': buf_putc(&out, e); p += 2; break;
            case 'n': buf_putc(&out, '\n'); p += 2; break;
            case 't': buf_putc(&out, '\t'); p += 2; break;
            case 'r': buf_putc(&out, '\r'); p += 2; break;
            case 'u': {
                uint32_t cp = 0;
                int i;
                for (i = 0; i < 4; i++) {
                    int h = p + 2 + (size_t)i < lx->len ? hexval(s[p + 2 + (size_t)i]) : -1;
                    if (h < 0) break;
                    cp = cp * 16 + (uint32_t)h;
                }
                if (i < 4 || (cp >= 0xD800 && cp <= 0xDFFF)) {
                    rc = set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)p,
                                   "bad \\u escape at offset %zu (4 hex digits, no surrogates)", p);
                    goto done;
                }
                if (cp == 0) {
                    rc = set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)p, "NUL character in string at offset %zu", p);
                    goto done;
                }
                put_utf8(&out, cp);
                p += 6;
                break;
            }
            default:
                rc = set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)p,
                               "unknown escape '\\%c' at offset %zu (use \\\\ for a backslash, or \"\"\"raw\"\"\")",
                               (e >= 0x20 && e < 0x7f) ? e : '?', p);
                goto done;
            }
        }
        lx->pos = p;
    }
    if (out.len > SEARCH_MAX_STRING_BYTES) {
        rc = set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)start, "string at offset %zu is %zu bytes, over the %u limit",
                       start, out.len, SEARCH_MAX_STRING_BYTES);
        goto done;
    }
    t->kind = TK_STRING;
    t->str = arena_strndup(lx->a, out.data ? out.data : "", out.len);
    t->str_len = (uint32_t)out.len;
done:
    buf_fini(&out);
    return rc;
}

static int lex_number(lexer *lx, token *t)
{
    const char *s = lx->text;
    size_t p = lx->pos, start = p;
    bool is_int = true;
    while (p < lx->len && is_digit(s[p])) p++;
    if (p < lx->len && s[p] == '.' && p + 1 < lx->len && is_digit(s[p + 1])) {
        is_int = false;
        p++;
        while (p < lx->len && is_digit(s[p])) p++;
    }
    if (p < lx->len && (s[p] == 'e' || s[p] == 'E') && p + 1 < lx->len &&
        (is_digit(s[p + 1]) || ((s[p + 1] == '+' || s[p + 1] == '-') && p + 2 < lx->len && is_digit(s[p + 2])))) {
        is_int = false;
        p += 2;
        while (p < lx->len && is_digit(s[p])) p++;
    }
    char tmp[64];
    size_t n = p - start;
    if (n >= sizeof tmp)
        return set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)start, "number too long at offset %zu", start);
    memcpy(tmp, s + start, n);
    tmp[n] = '\0';
    t->kind = TK_NUMBER;
    t->is_int = is_int;
    if (is_int) {
        errno = 0;
        long long v = strtoll(tmp, NULL, 10);
        if (errno) return set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)start, "integer out of range at offset %zu", start);
        t->num_i = v;
        t->num_d = (double)v;
    } else {
        t->num_d = strtod(tmp, NULL);
        if (!isfinite(t->num_d))
            return set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)start, "number out of range at offset %zu", start);
    }
    /* a unit glued to the number makes a duration */
    size_t u = p;
    while (u < lx->len && ((s[u] >= 'a' && s[u] <= 'z') || (s[u] >= 'A' && s[u] <= 'Z'))) u++;
    if (u > p) {
        size_t ul = u - p;
        int64_t mult;
        if (ul == 2 && !memcmp(s + p, "ms", 2)) mult = 1000;
        else if (ul == 1 && s[p] == 's') mult = 1000000;
        else if (ul == 1 && s[p] == 'm') mult = 60LL * 1000000;
        else if (ul == 1 && s[p] == 'h') mult = 3600LL * 1000000;
        else if (ul == 1 && s[p] == 'd') mult = 86400LL * 1000000;
        else
            return set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)p,
                             "unknown duration unit '%.*s' at offset %zu (ms, s, m, h, d)", (int)ul, s + p, p);
        if (!is_int || t->num_i < 0 || t->num_i > (int64_t)(INT64_MAX / mult))
            return set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)start, "bad duration at offset %zu", start);
        t->kind = TK_DURATION;
        t->duration_us = t->num_i * mult;
        p = u;
    } else if (p < lx->len && (is_ident_char(s[p]))) {
        return set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)start, "malformed number at offset %zu", start);
    }
    lx->pos = p;
    return 0;
}

int lex_next(lexer *lx, token *t)
{
    const char *s = lx->text;
    while (lx->pos < lx->len && (s[lx->pos] == ' ' || s[lx->pos] == '\t' || s[lx->pos] == '\n' || s[lx->pos] == '\r'))
        lx->pos++;
    memset(t, 0, sizeof *t);
    t->pos = (uint32_t)lx->pos;
    t->text = s + lx->pos;
    if (lx->pos >= lx->len) {
        t->kind = TK_EOF;
        return 0;
    }
    size_t start = lx->pos;
    char c = s[start];
    char n1 = start + 1 < lx->len ? s[start + 1] : '\0';
    int rc = 0;
    if (is_ident_start(c)) {
        size_t p = start + 1;
        while (p < lx->len && is_ident_char(s[p])) p++;
        /* a path never ends with '.' */
        while (p > start + 1 && s[p - 1] == '.') p--;
        t->kind = TK_IDENT;
        lx->pos = p;
    } else if (c == '`') {
        size_t p = start + 1;
        while (p < lx->len && s[p] != '`') p++;
        if (p >= lx->len || p == start + 1)
            return set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)start, "unterminated or empty `field` at offset %zu",
                             start);
        t->kind = TK_IDENT;
        t->str = arena_strndup(lx->a, s + start + 1, p - start - 1);
        t->str_len = (uint32_t)(p - start - 1);
        lx->pos = p + 1;
    } else if (c == '"' || c == '\'') {
        rc = lex_string(lx, t);
    } else if (is_digit(c)) {
        rc = lex_number(lx, t);
    } else {
        enum tok_kind k;
        size_t w = 1;
        switch (c) {
        case '(': k = TK_LPAREN; break;
        case ')': k = TK_RPAREN; break;
        case '[': k = TK_LBRACKET; break;
        case ']': k = TK_RBRACKET; break;
        case ',': k = TK_COMMA; break;
        case '|': k = TK_PIPE; break;
        case ':': k = TK_COLON; break;
        case '-': k = TK_MINUS; break;
        case '~': k = TK_TILDE; break;
        case '=':
            if (n1 == '=') { k = TK_EQ; w = 2; } else { k = TK_ASSIGN; }
            break;
        case '!':
            if (n1 != '=')
                return set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)start, "'!' must be followed by '=' at offset %zu",
                                 start);
            k = TK_NE;
            w = 2;
            break;
        case '<':
            if (n1 == '=') { k = TK_LE; w = 2; } else { k = TK_LT; }
            break;
        case '>':
            if (n1 == '=') { k = TK_GE; w = 2; } else { k = TK_GT; }
            break;
        default:
            if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
                return set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)start, "unexpected character '%c' at offset %zu",
                                 c, start);
            return set_error(lx->err, SEARCH_ERR_BAD_QUERY, (int32_t)start, "unexpected byte 0x%02x at offset %zu",
                             (unsigned char)c, start);
        }
        t->kind = k;
        lx->pos = start + w;
    }
    t->len = (uint32_t)(lx->pos - start);
    return rc;
}

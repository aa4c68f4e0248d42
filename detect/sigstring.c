/* detect/sigstring.c — Sigma string values: the specification's escapes and wildcards, the
 * string-transforming modifiers (contains/startswith/endswith, windash, utf16 encodings,
 * base64/base64offset, expand) and the translation of the result into one Hyperscan
 * expression. A value is a sequence of symbols (bytes plus `*`, `?` and the windash class)
 * so every modifier works on the parsed form, never on re-escaped text. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static sigstr sigstr_alloc(arena *a, size_t len)
{
    sigstr s = {.sym = arena_alloc(a, (len ? len : 1) * sizeof(uint16_t)), .len = 0};
    return s;
}

sigstr sigstr_parse(arena *a, const char *s, size_t len)
{
    sigstr out = sigstr_alloc(a, len + 1);
    bool escaped = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (escaped) {
            /* \* \? \\ are the plain character; before anything else the backslash stays */
            if (c != '*' && c != '?' && c != '\\') out.sym[out.len++] = '\\';
            out.sym[out.len++] = c;
            escaped = false;
        } else if (c == '\\') {
            escaped = true;
        } else if (c == '*') {
            out.sym[out.len++] = SYM_STAR;
        } else if (c == '?') {
            out.sym[out.len++] = SYM_QMARK;
        } else {
            out.sym[out.len++] = c;
        }
    }
    if (escaped) out.sym[out.len++] = '\\';
    return out;
}

sigstr sigstr_literal(arena *a, const char *s, size_t len)
{
    sigstr out = sigstr_alloc(a, len);
    for (size_t i = 0; i < len; i++) out.sym[out.len++] = (unsigned char)s[i];
    return out;
}

bool sigstr_has_wildcards(const sigstr *s)
{
    for (uint32_t i = 0; i < s->len; i++)
        if (s->sym[i] == SYM_STAR || s->sym[i] == SYM_QMARK) return true;
    return false;
}

sigstr sigstr_wrap(arena *a, sigstr s, bool star_before, bool star_after)
{
    bool add_before = star_before && !(s.len && s.sym[0] == SYM_STAR);
    bool add_after = star_after && !(s.len && s.sym[s.len - 1] == SYM_STAR);
    if (!add_before && !add_after) return s;
    sigstr out = sigstr_alloc(a, s.len + 2);
    if (add_before) out.sym[out.len++] = SYM_STAR;
    memcpy(out.sym + out.len, s.sym, s.len * sizeof(uint16_t));
    out.len += s.len;
    if (add_after) out.sym[out.len++] = SYM_STAR;
    return out;
}

/* ---- windash ----------------------------------------------------------------------------- */

/* Code point of the UTF-8 sequence starting at sym[i] (literal bytes only); *end past it. */
static uint32_t decode_at(const sigstr *s, uint32_t i, uint32_t *end)
{
    uint16_t c = s->sym[i];
    uint32_t need = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
    uint32_t cp = need == 0 ? c : need == 1 ? (c & 0x1Fu) : need == 2 ? (c & 0x0Fu) : (c & 0x07u);
    uint32_t k = i + 1;
    for (uint32_t n = 0; n < need; n++, k++) {
        if (k >= s->len || s->sym[k] > 0xFF || (s->sym[k] & 0xC0) != 0x80) {
            *end = i + 1;
            return c; /* invalid: the byte stands for itself */
        }
        cp = (cp << 6) | (s->sym[k] & 0x3Fu);
    }
    *end = k;
    return cp;
}

/* Python's \w for str patterns: letters, digits and underscore of any script. We treat every
 * non-ASCII code point as a word character except the punctuation and symbol blocks. */
static bool is_word_cp(uint32_t cp)
{
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || cp == '_';
    if (cp <= 0xBF || cp == 0xD7 || cp == 0xF7) return false;
    if (cp >= 0x2000 && cp <= 0x2BFF) return false; /* punctuation, symbols, arrows, boxes */
    if (cp >= 0x3000 && cp <= 0x303F) return false;
    if (cp >= 0xFE30 && cp <= 0xFE4F) return false;
    if (cp >= 0xFF00 && cp <= 0xFF0F) return false;
    return true;
}

static bool is_literal(uint16_t sym) { return sym <= 0xFF; }

/* Is the character ending just before position i a word character (same plain part)? */
static bool word_before(const sigstr *s, uint32_t i)
{
    if (i == 0 || !is_literal(s->sym[i - 1])) return false;
    uint32_t start = i - 1;
    while (start > 0 && is_literal(s->sym[start]) && (s->sym[start] & 0xC0) == 0x80 && i - start < 4) start--;
    uint32_t end;
    uint32_t cp = decode_at(s, start, &end);
    if (end != i) cp = s->sym[i - 1];
    return is_word_cp(cp);
}

static bool word_at(const sigstr *s, uint32_t i)
{
    if (i >= s->len || !is_literal(s->sym[i])) return false;
    uint32_t end;
    return is_word_cp(decode_at(s, i, &end));
}

sigstr sigstr_windash(arena *a, sigstr s)
{
    sigstr out = sigstr_alloc(a, s.len);
    for (uint32_t i = 0; i < s.len; i++) {
        uint16_t c = s.sym[i];
        if ((c == '-' || c == '/') && !word_before(&s, i) && word_at(&s, i + 1)) out.sym[out.len++] = SYM_WINDASH;
        else out.sym[out.len++] = c;
    }
    return out;
}

/* The five characters windash allows, as UTF-8. */
static const char *const dash_utf8[5] = {"-", "/", "\xE2\x80\x93", "\xE2\x80\x94", "\xE2\x80\x95"};

int sigstr_expand_classes(arena *a, const sigstr *in, uint32_t in_count, sigstr **out, uint32_t *out_count,
                          uint32_t max)
{
    uint64_t total = 0;
    for (uint32_t k = 0; k < in_count; k++) {
        uint64_t n = 1;
        for (uint32_t i = 0; i < in[k].len && n <= max; i++)
            if (in[k].sym[i] == SYM_WINDASH) n *= 5;
        total += n;
        if (total > max) return -E2BIG;
    }
    sigstr *res = arena_alloc(a, (total ? total : 1) * sizeof(sigstr));
    uint32_t count = 0;
    for (uint32_t k = 0; k < in_count; k++) {
        const sigstr *s = &in[k];
        uint32_t classes = 0;
        for (uint32_t i = 0; i < s->len; i++) classes += s->sym[i] == SYM_WINDASH;
        uint64_t combos = 1;
        for (uint32_t c = 0; c < classes; c++) combos *= 5;
        for (uint64_t combo = 0; combo < combos; combo++) {
            sigstr r = sigstr_alloc(a, (size_t)s->len * 3);
            uint64_t rest = combo;
            for (uint32_t i = 0; i < s->len; i++) {
                if (s->sym[i] != SYM_WINDASH) {
                    r.sym[r.len++] = s->sym[i];
                    continue;
                }
                const char *d = dash_utf8[rest % 5];
                rest /= 5;
                for (; *d; d++) r.sym[r.len++] = (unsigned char)*d;
            }
            res[count++] = r;
        }
    }
    *out = res;
    *out_count = count;
    return 0;
}

/* ---- encodings --------------------------------------------------------------------------- */

int sigstr_utf16(arena *a, sigstr s, enum utf16_kind kind, sigstr *out)
{
    sigstr r = sigstr_alloc(a, (size_t)s.len * 4 + 2);
    if (kind == UTF16_BOM) {
        r.sym[r.len++] = 0xFF;
        r.sym[r.len++] = 0xFE;
    }
    bool be = kind == UTF16_BE;
    for (uint32_t i = 0; i < s.len;) {
        if (!is_literal(s.sym[i])) {
            if (s.sym[i] == SYM_WINDASH) return -EINVAL; /* caller expands classes first */
            r.sym[r.len++] = s.sym[i++];
            continue;
        }
        uint32_t end;
        uint32_t cp = decode_at(&s, i, &end);
        i = end;
        uint16_t units[2];
        int n = 1;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            units[0] = (uint16_t)(0xD800 + (cp >> 10));
            units[1] = (uint16_t)(0xDC00 + (cp & 0x3FF));
            n = 2;
        } else {
            units[0] = (uint16_t)cp;
        }
        for (int k = 0; k < n; k++) {
            uint8_t hi = (uint8_t)(units[k] >> 8), lo = (uint8_t)units[k];
            r.sym[r.len++] = be ? hi : lo;
            r.sym[r.len++] = be ? lo : hi;
        }
    }
    *out = r;
    return 0;
}

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding of bytes[0..n) into out (4 * ceil(n/3) symbols). */
static uint32_t b64_encode(const uint8_t *bytes, uint32_t n, uint16_t *out)
{
    uint32_t o = 0;
    for (uint32_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)bytes[i] << 16;
        if (i + 1 < n) v |= (uint32_t)bytes[i + 1] << 8;
        if (i + 2 < n) v |= bytes[i + 2];
        out[o++] = (unsigned char)b64_alphabet[(v >> 18) & 63];
        out[o++] = (unsigned char)b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? (unsigned char)b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? (unsigned char)b64_alphabet[v & 63] : '=';
    }
    return o;
}

static uint8_t *plain_bytes(arena *a, const sigstr *s, uint32_t prefix_spaces)
{
    uint8_t *b = arena_alloc(a, s->len + prefix_spaces + 1);
    for (uint32_t i = 0; i < prefix_spaces; i++) b[i] = ' ';
    for (uint32_t i = 0; i < s->len; i++) b[prefix_spaces + i] = (uint8_t)s->sym[i];
    return b;
}

sigstr sigstr_base64(arena *a, const sigstr *s)
{
    uint8_t *b = plain_bytes(a, s, 0);
    sigstr r = sigstr_alloc(a, ((size_t)s->len + 2) / 3 * 4 + 4);
    r.len = b64_encode(b, s->len, r.sym);
    return r;
}

/* The value at byte offsets 0, 1 and 2 of a longer encoded text: encode with 0-2 leading
 * filler bytes, then cut the characters the filler or the unknown neighbours influence. */
void sigstr_base64offset(arena *a, const sigstr *s, sigstr out[3])
{
    static const uint32_t start_cut[3] = {0, 2, 3};
    static const uint32_t end_cut[3] = {0, 3, 2}; /* by (len + offset) % 3 */
    for (uint32_t i = 0; i < 3; i++) {
        uint8_t *b = plain_bytes(a, s, i);
        uint32_t n = s->len + i;
        sigstr r = sigstr_alloc(a, ((size_t)n + 2) / 3 * 4 + 4);
        r.len = b64_encode(b, n, r.sym);
        uint32_t cut_end = end_cut[n % 3];
        uint32_t from = start_cut[i];
        uint32_t to = r.len >= cut_end ? r.len - cut_end : 0;
        if (to < from) to = from;
        out[i].sym = r.sym + from;
        out[i].len = to - from;
    }
}

/* ---- Hyperscan expressions --------------------------------------------------------------- */

/* Does the code point have a case mapping (so caseless matching must fold it in UTF-8
 * mode)? The scripts with case: Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee,
 * Glagolitic, Coptic, a few letterlike symbols, full-width Latin, Deseret and friends.
 * Everything else (CJK, emoji, punctuation, dashes) matches the same bytes either way. */
static bool has_case(uint32_t cp)
{
    static const uint32_t ranges[][2] = {
        {0x00B5, 0x00B5},   {0x00C0, 0x024F},   {0x0370, 0x058F},   {0x10A0, 0x10FF}, {0x13A0, 0x13FF},
        {0x1C80, 0x1CBF},   {0x1E00, 0x1FFF},   {0x2126, 0x212B},   {0x2132, 0x2132}, {0x214E, 0x214E},
        {0x2160, 0x2184},   {0x24B6, 0x24E9},   {0x2C00, 0x2D2F},   {0xA640, 0xA69F}, {0xA720, 0xA7FF},
        {0xAB70, 0xABBF},   {0xFF21, 0xFF5A},   {0x10400, 0x104FF}, {0x10C80, 0x10CFF}, {0x118A0, 0x118FF},
        {0x16E40, 0x16E7F}, {0x1E900, 0x1E95F},
    };
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(ranges); i++)
        if (cp >= ranges[i][0] && cp <= ranges[i][1]) return true;
    return false;
}

static bool valid_utf8_runs(const sigstr *s, bool *non_ascii)
{
    *non_ascii = false;
    for (uint32_t i = 0; i < s->len;) {
        uint16_t c = s->sym[i];
        if (!is_literal(c) || c < 0x80) {
            i++;
            continue;
        }
        *non_ascii = true;
        uint32_t need = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
        if (need == 9 || c == 0xC0 || c == 0xC1 || c > 0xF4) return false;
        for (uint32_t k = 1; k <= need; k++)
            if (i + k >= s->len || !is_literal(s->sym[i + k]) || (s->sym[i + k] & 0xC0) != 0x80) return false;
        i += need + 1;
    }
    return true;
}

static void put_byte(buf *b, uint8_t c, bool utf8)
{
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= 0x80 && utf8)) {
        buf_putc(b, (char)c);
        return;
    }
    char tmp[5];
    snprintf(tmp, sizeof tmp, "\\x%02x", c);
    buf_append(b, tmp, 4);
}

const char *sigstr_expression(arena *a, const sigstr *s, bool cased, uint32_t *flags)
{
    uint32_t first = 0, end = s->len;
    while (first < end && s->sym[first] == SYM_STAR) first++;
    while (end > first && s->sym[end - 1] == SYM_STAR) end--;
    *flags = HS_FLAG_SINGLEMATCH | HS_FLAG_DOTALL | (cased ? 0u : HS_FLAG_CASELESS);
    if (first == end) {
        if (s->len) return NULL; /* only stars: any value */
        *flags |= HS_FLAG_ALLOWEMPTY;
        return arena_strndup(a, "^\\z", 3); /* the empty string */
    }
    bool non_ascii;
    bool valid = valid_utf8_runs(s, &non_ascii);
    /* UTF-8 mode makes `?` one character and caseless matching fold non-ASCII letters; it is
     * slower, so only those need it. Dashes and other punctuation have no case: byte mode
     * matches them exactly. Encoded values (wide/utf16) are not UTF-8 text: byte mode. */
    bool cased_letter = false;
    for (uint32_t i = first; non_ascii && i < end;) {
        if (s->sym[i] < 0x80 || s->sym[i] > 0xFF) {
            i++;
            continue;
        }
        uint32_t next;
        cased_letter |= has_case(decode_at(s, i, &next));
        i = next;
    }
    bool utf8 = valid && cased_letter;
    if (utf8) *flags |= HS_FLAG_UTF8;
    buf b;
    buf_init(&b);
    if (first == 0) buf_putc(&b, '^');
    for (uint32_t i = first; i < end; i++) {
        uint16_t c = s->sym[i];
        if (c == SYM_STAR) {
            buf_puts(&b, ".*");
        } else if (c == SYM_QMARK) {
            /* one character: `.` in UTF-8 mode, else one UTF-8 sequence spelled out (byte
             * mode is faster and enough when no letter needs Unicode case folding) */
            buf_puts(&b, utf8 ? "." : "(?:[\\x00-\\x7f]|[\\xc0-\\xff][\\x80-\\xbf]*)");
        } else if (c == SYM_WINDASH) {
            buf_puts(&b, "(?:");
            for (int k = 0; k < 5; k++) {
                if (k) buf_putc(&b, '|');
                for (const char *d = dash_utf8[k]; *d; d++) put_byte(&b, (uint8_t)*d, utf8);
            }
            buf_putc(&b, ')');
        } else {
            put_byte(&b, (uint8_t)c, utf8);
        }
    }
    if (end == s->len) buf_puts(&b, "\\z");
    /* SINGLEMATCH costs Hyperscan bookkeeping; a pattern anchored at the end, or a
     * fixed-length one anchored at the start, can only match once anyway */
    bool fixed = true;
    for (uint32_t i = first; i < end; i++) fixed &= s->sym[i] != SYM_STAR && s->sym[i] != SYM_WINDASH;
    if (end == s->len || (first == 0 && fixed)) *flags &= ~(uint32_t)HS_FLAG_SINGLEMATCH;
    const char *expr = arena_strndup(a, b.data, b.len);
    buf_fini(&b);
    return expr;
}

/* ---- expand -------------------------------------------------------------------------------- */

static bool is_name_char(uint16_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

struct segment {
    uint32_t from, to;        /* literal: symbols [from, to) with "\%" → "%" */
    const detect_placeholder *placeholder; /* or a placeholder */
};

int sigstr_expand_placeholders(arena *a, const sigstr *s, const detect_placeholder *placeholders, size_t count,
                               sigstr **out, uint32_t *out_count, uint32_t max, char *missing, size_t missing_len)
{
    struct segment *segs = arena_alloc(a, ((size_t)s->len + 1) * sizeof *segs);
    uint32_t nseg = 0, lit_from = 0;
    for (uint32_t i = 0; i < s->len; i++) {
        if (s->sym[i] != '%' || (i > 0 && s->sym[i - 1] == '\\')) continue;
        uint32_t k = i + 1;
        while (k < s->len && is_name_char(s->sym[k])) k++;
        if (k == i + 1 || k >= s->len || s->sym[k] != '%') continue;
        char name[128];
        uint32_t name_len = k - i - 1;
        if (name_len >= sizeof name) continue;
        for (uint32_t j = 0; j < name_len; j++) name[j] = (char)s->sym[i + 1 + j];
        name[name_len] = '\0';
        const detect_placeholder *ph = NULL;
        for (size_t p = 0; p < count; p++)
            if (strcmp(placeholders[p].name, name) == 0 && placeholders[p].value_count) ph = &placeholders[p];
        if (!ph) {
            snprintf(missing, missing_len, "%s", name);
            return -ENOENT;
        }
        segs[nseg++] = (struct segment){lit_from, i, NULL};
        segs[nseg++] = (struct segment){0, 0, ph};
        lit_from = k + 1;
        i = k;
    }
    segs[nseg++] = (struct segment){lit_from, s->len, NULL};

    uint64_t total = 1;
    for (uint32_t g = 0; g < nseg; g++) {
        if (segs[g].placeholder) total *= segs[g].placeholder->value_count;
        if (total > max) return -E2BIG;
    }
    /* parse each placeholder value once */
    sigstr **values = arena_alloc(a, nseg * sizeof *values);
    size_t value_syms = 0;
    for (uint32_t g = 0; g < nseg; g++) {
        const detect_placeholder *ph = segs[g].placeholder;
        values[g] = NULL;
        if (!ph) continue;
        values[g] = arena_alloc(a, ph->value_count * sizeof(sigstr));
        size_t longest = 0;
        for (size_t v = 0; v < ph->value_count; v++) {
            values[g][v] = sigstr_parse(a, ph->values[v], strlen(ph->values[v]));
            if (values[g][v].len > longest) longest = values[g][v].len;
        }
        value_syms += longest;
    }
    sigstr *res = arena_alloc(a, (size_t)total * sizeof(sigstr));
    for (uint64_t combo = 0; combo < total; combo++) {
        sigstr r = sigstr_alloc(a, s->len + value_syms);
        uint64_t rest = combo;
        for (uint32_t g = 0; g < nseg; g++) {
            const struct segment *sg = &segs[g];
            if (sg->placeholder) {
                const sigstr *v = &values[g][rest % sg->placeholder->value_count];
                rest /= sg->placeholder->value_count;
                memcpy(r.sym + r.len, v->sym, v->len * sizeof(uint16_t));
                r.len += v->len;
                continue;
            }
            for (uint32_t i = sg->from; i < sg->to; i++) {
                if (s->sym[i] == '\\' && i + 1 < sg->to && s->sym[i + 1] == '%') continue;
                r.sym[r.len++] = s->sym[i];
            }
        }
        res[combo] = r;
    }
    *out = res;
    *out_count = (uint32_t)total;
    return 0;
}

const char *sigstr_keyword_expression(arena *a, const sigstr *s, bool cased, uint32_t *flags)
{
    for (uint32_t i = 0; i < s->len; i++)
        if ((s->sym[i] >= 0x80 && s->sym[i] <= 0xFF) || s->sym[i] == SYM_WINDASH) return NULL;
    uint32_t first = 0, end = s->len;
    while (first < end && s->sym[first] == SYM_STAR) first++;
    while (end > first && s->sym[end - 1] == SYM_STAR) end--;
    if (first == end) return NULL;
    *flags = HS_FLAG_SINGLEMATCH | (cased ? 0u : HS_FLAG_CASELESS);
    buf b;
    buf_init(&b);
    if (first == 0) buf_puts(&b, KEYWORD_VALUE_START);
    for (uint32_t i = first; i < end; i++) {
        uint16_t c = s->sym[i];
        if (c == SYM_STAR) buf_puts(&b, "[^\\xff]*");
        else if (c == SYM_QMARK) buf_puts(&b, "(?:[\\x00-\\x7f]|[\\xc0-\\xfe][\\x80-\\xbf]*)"); /* one character */
        else put_byte(&b, (uint8_t)c, false);
    }
    if (end == s->len) buf_puts(&b, KEYWORD_VALUE_END);
    const char *expr = arena_strndup(a, b.data, b.len);
    buf_fini(&b);
    return expr;
}

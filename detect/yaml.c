/* detect/yaml.c — the YAML side of rule loading that is not about Sigma: node lines and
 * scalars (libfyaml), YAML 1.1 plain-scalar typing as PyYAML (and so pySigma) reads it,
 * extension attributes rendered as JSON, and the UTF-8 check every rule file passes before
 * libfyaml sees it. */
#include "internal.h"

#include <string.h>

uint32_t node_line(struct fy_node *n)
{
    for (int depth = 0; n && depth < 64; depth++) {
        struct fy_token *t = fy_node_get_scalar_token(n);
        if (t) {
            const struct fy_mark *m = fy_token_start_mark(t);
            return m ? (uint32_t)m->line + 1 : 0;
        }
        /* a collection: the line of its first key or item */
        void *it = NULL;
        if (fy_node_is_mapping(n)) {
            struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
            n = p ? fy_node_pair_key(p) : NULL;
        } else if (fy_node_is_sequence(n)) {
            n = fy_node_sequence_iterate(n, &it);
        } else {
            return 0;
        }
    }
    return 0;
}

/* The text being loaded (load_stream sets it): single-quoted scalars are decoded from it. */
static _Thread_local struct {
    const char *text;
    size_t len;
    arena *mem;
} input;

void yaml_input_begin(const char *text, size_t len, arena *mem)
{
    input.text = text;
    input.len = len;
    input.mem = mem;
}

void yaml_input_end(void) { memset(&input, 0, sizeof input); }

static bool blank(char c) { return c == ' ' || c == '\t'; }

/* A single-quoted scalar's value from its source (between the quotes): line folding as YAML
 * defines it (a line break between text is a space, each empty line a newline, white space
 * around breaks dropped) and '' → '. */
static const char *single_quoted(const char *raw, size_t n, size_t *len)
{
    if (!memchr(raw, '\n', n) && !memmem(raw, n, "''", 2)) {
        *len = n;
        return raw; /* the common case: the source is the value */
    }
    char *out = arena_alloc(input.mem, n + 1);
    size_t o = 0, breaks = 0;
    bool first = true;
    for (size_t i = 0; i <= n;) {
        size_t end = i;
        while (end < n && raw[end] != '\n') end++;
        size_t a = i, b = end;
        if (b > a && raw[b - 1] == '\r') b--;
        if (!first)
            while (a < b && blank(raw[a])) a++;
        if (end < n)
            while (b > a && blank(raw[b - 1])) b--;
        if (first) {
            first = false;
        } else if (a < b || end >= n) {
            if (breaks == 1) out[o++] = ' ';
            else
                for (size_t k = 1; k < breaks; k++) out[o++] = '\n';
            breaks = 0;
        }
        for (size_t k = a; k < b; k++) {
            out[o++] = raw[k];
            if (raw[k] == '\'' && k + 1 < b && raw[k + 1] == '\'') k++;
        }
        if (end >= n) break;
        breaks++;
        i = end + 1;
    }
    out[o] = '\0';
    *len = o;
    return out;
}

const char *node_scalar(struct fy_node *n, size_t *len)
{
    if (!n || !fy_node_is_scalar(n) || fy_node_is_alias(n)) return NULL;
    /* libfyaml 0.7.12 leaks memory formatting single-quoted scalars with many '' escapes
     * (found by fuzzing): decode those from the source ourselves */
    if (input.text && fy_node_get_style(n) == FYNS_SINGLE_QUOTED) {
        struct fy_token *t = fy_node_get_scalar_token(n);
        const struct fy_mark *a = t ? fy_token_start_mark(t) : NULL, *b = t ? fy_token_end_mark(t) : NULL;
        if (a && b && a->input_pos <= b->input_pos && b->input_pos <= input.len)
            return single_quoted(input.text + a->input_pos, b->input_pos - a->input_pos, len);
    }
    const char *s = fy_node_get_scalar(n, len);
    if (!s) {
        *len = 0;
        return "";
    }
    return s;
}

bool yaml_plain_int(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (i >= len) return false;
    unsigned base = 10;
    if (len - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) base = 16, i += 2;
    else if (len - i > 2 && s[i] == '0' && (s[i + 1] == 'b' || s[i + 1] == 'B')) base = 2, i += 2;
    else if (len - i > 2 && s[i] == '0' && (s[i + 1] == 'o' || s[i + 1] == 'O')) base = 8, i += 2;
    else if (len - i > 1 && s[i] == '0') base = 8, i += 1;
    uint64_t v = 0;
    bool digits = false;
    for (; i < len; i++) {
        char ch = s[i];
        if (ch == '_') continue;
        unsigned d;
        if (ch >= '0' && ch <= '9') d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f') d = (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F') d = (unsigned)(ch - 'A' + 10);
        else return false;
        if (d >= base) return false;
        if (v > (UINT64_MAX - d) / base) return false;
        v = v * base + d;
        digits = true;
    }
    if (!digits || v > (uint64_t)INT64_MAX) return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

bool yaml_plain_float(const char *s, size_t len, double *out)
{
    bool dot = false, digit = false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch >= '0' && ch <= '9') digit = true;
        else if (ch == '.') dot = true;
        else if (!(ch == '-' || ch == '+' || ch == 'e' || ch == 'E' || ch == '_')) return false;
    }
    if (!dot || !digit) return false;
    return direct_parse_number(s, len, out);
}

static bool yaml_null_word(const char *s, size_t len)
{
    return len == 0 || (len == 1 && s[0] == '~') || (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) ||
                                                                  !memcmp(s, "NULL", 4)));
}

/* YAML → compact JSON for extension attributes (x-mamori). Plain scalars keep YAML types. */
static void write_json(buf *out, struct fy_node *n, int depth)
{
    if (!n || depth > 32) {
        buf_puts(out, "null");
        return;
    }
    if (fy_node_is_mapping(n)) {
        buf_putc(out, '{');
        void *it = NULL;
        struct fy_node_pair *pair;
        bool first = true;
        while ((pair = fy_node_mapping_iterate(n, &it))) {
            size_t len;
            const char *k = node_scalar(fy_node_pair_key(pair), &len);
            if (!k) continue;
            if (!first) buf_putc(out, ',');
            first = false;
            json_write_string(out, k, len);
            buf_putc(out, ':');
            write_json(out, fy_node_pair_value(pair), depth + 1);
        }
        buf_putc(out, '}');
        return;
    }
    if (fy_node_is_sequence(n)) {
        buf_putc(out, '[');
        void *it = NULL;
        struct fy_node *item;
        bool first = true;
        while ((item = fy_node_sequence_iterate(n, &it))) {
            if (!first) buf_putc(out, ',');
            first = false;
            write_json(out, item, depth + 1);
        }
        buf_putc(out, ']');
        return;
    }
    size_t len;
    const char *s = node_scalar(n, &len);
    if (!s) {
        buf_puts(out, "null");
        return;
    }
    if (fy_node_get_style(n) == FYNS_PLAIN) {
        if (yaml_null_word(s, len)) {
            buf_puts(out, "null");
            return;
        }
        if ((len == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4)))) {
            buf_puts(out, "true");
            return;
        }
        if ((len == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5)))) {
            buf_puts(out, "false");
            return;
        }
        double d;
        bool numeric = len > 0 && len < 32 && direct_parse_number(s, len, &d);
        for (size_t i = 0; numeric && i < len; i++)
            numeric = (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                      s[i] == '+';
        if (numeric && !(len > 1 && s[0] == '0' && s[1] != '.')) {
            buf_append(out, s, len);
            return;
        }
    }
    json_write_string(out, s, len);
}

void yaml_write_json(buf *out, struct fy_node *n) { write_json(out, n, 0); }

/* Offset of the first byte that is not part of valid, printable UTF-8 text, or len. YAML
 * allows only printable characters in a stream (its c-printable production: TAB, LF, CR,
 * U+0020..U+007E, U+0085, U+00A0..U+D7FF, U+E000..U+FFFD, U+10000..U+10FFFF). Checking
 * before libfyaml 0.7 sees the text also keeps it off two of its bugs found by fuzzing:
 * invalid UTF-8 in a directive loops forever, control characters in a scalar leak memory. */
size_t yaml_utf8_invalid_at(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) return i;
            i++;
            continue;
        }
        size_t need = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
        if (need == 0 || c == 0xC0 || c == 0xC1 || c > 0xF4 || i + need >= len) return i;
        uint32_t cp = c & (0x3Fu >> need);
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if ((need == 1 && cp < 0x80) || (need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return i; /* overlong or surrogate */
        if ((cp >= 0x80 && cp <= 0x9F && cp != 0x85) || cp == 0xFFFE || cp == 0xFFFF) return i; /* not printable */
        i += need + 1;
    }
    return len;
}

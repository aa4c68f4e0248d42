/* core/json_write.c — JSON text from strings and DOM values (compact; escapes as RFC 8259
 * requires, other control bytes as \u00XX). */
#include "json.h"

#include <string.h>

void json_write_string(buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_reserve(out, n + 2);
    out->data[out->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (MAMORI_LIKELY(c >= 0x20 && c != '"' && c != '\\')) continue;
        buf_append(out, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        buf_append(out, esc, elen);
    }
    buf_append(out, s + run, n - run);
    buf_putc(out, '"');
}

void json_write_value(buf *out, const json_value *v)
{
    switch (v->type) {
    case JSON_NULL: buf_append(out, "null", 4); break;
    case JSON_BOOL: v->num.b ? buf_append(out, "true", 4) : buf_append(out, "false", 5); break;
    case JSON_NUMBER:
        if (v->str) buf_append(out, v->str, v->len);
        else if (v->flags & JSON_FLAG_INT) buf_put_i64(out, v->num.i);
        else buf_printf(out, "%.17g", v->num.d);
        break;
    case JSON_STRING: json_write_string(out, v->str, v->len); break;
    case JSON_ARRAY:
        buf_putc(out, '[');
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) buf_putc(out, ',');
            json_write_value(out, &v->items[i]);
        }
        buf_putc(out, ']');
        break;
    case JSON_OBJECT:
        buf_putc(out, '{');
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) buf_putc(out, ',');
            json_write_string(out, v->members[i].key, v->members[i].key_len);
            buf_putc(out, ':');
            json_write_value(out, &v->members[i].value);
        }
        buf_putc(out, '}');
        break;
    default: mamori_panic(__FILE__, __LINE__, "unknown json type %d", v->type);
    }
}

/* core/json.h — RFC 8259 JSON parser into an arena DOM, and a compact writer.
 *
 * Why our own: the per-event path must not call malloc (json-c and cJSON allocate per
 * node), must keep int64 exact (cJSON does not), and must be C (simdjson is C++). See
 * docs/json.md for the measurements behind the choice.
 *
 * Strings that contain no escapes point into the input text (zero copy): the input must
 * outlive the DOM. Strings are NOT NUL-terminated; use (str, len). Invalid UTF-8 and lone
 * surrogates inside strings are replaced by U+FFFD and flagged (JSON_FLAG_REPLACED), never
 * rejected: an event must not vanish because a command line holds a bad byte. */
#ifndef MAMORI_CORE_JSON_H
#define MAMORI_CORE_JSON_H

#include "arena.h"
#include "base.h"
#include "buf.h"

enum json_type { JSON_NULL = 0, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

enum json_flag {
    JSON_FLAG_INT = 1u << 0,      /* number is an integer that fits int64: num.i is exact */
    JSON_FLAG_REPLACED = 1u << 1, /* string had invalid UTF-8 replaced by U+FFFD */
};

#define JSON_MAX_DEPTH 64
#define JSON_MAX_NUMBER_CHARS 400

typedef struct json_value json_value;
typedef struct json_member json_member;

struct json_value {
    uint8_t type;  /* enum json_type */
    uint8_t flags; /* enum json_flag */
    uint16_t reserved;
    uint32_t len; /* string bytes / number text bytes / array items / object members */
    union {
        const char *str;      /* JSON_STRING: bytes; JSON_NUMBER: the number's text */
        json_value *items;    /* JSON_ARRAY */
        json_member *members; /* JSON_OBJECT, in input order (duplicates kept) */
    };
    union {
        int64_t i; /* JSON_NUMBER with JSON_FLAG_INT */
        double d;  /* JSON_NUMBER without JSON_FLAG_INT (shares storage with i) */
        bool b;    /* JSON_BOOL */
    } num;
};

struct json_member {
    const char *key; /* not NUL-terminated */
    uint32_t key_len;
    json_value value;
};

typedef struct json_error {
    size_t offset; /* byte offset in the input */
    char msg[96];
} json_error;

typedef struct json_parser json_parser;

/* A parser holds scratch space reused across documents; one per thread. */
json_parser *json_parser_create(void);
void json_parser_destroy(json_parser *p);

/* Parses exactly one JSON value (surrounding whitespace allowed) from text[0..len).
 * Borrows `text` (must outlive *out); allocates the DOM in `a`. */
int json_parse(json_parser *p, arena *a, const char *text, size_t len, json_value *out, json_error *err) MAMORI_WUR;

/* Parses the next value at or after *pos (skipping whitespace) and advances *pos past it.
 * Returns -ENODATA when only whitespace remains. For NDJSON and concatenated objects. */
int json_parse_next(json_parser *p, arena *a, const char *text, size_t len, size_t *pos, json_value *out,
                    json_error *err) MAMORI_WUR;

/* First member named key (exact, case-sensitive) of an object, or NULL. */
const json_value *json_object_get(const json_value *obj, const char *key, size_t key_len);
static inline bool json_is_string(const json_value *v) { return v && v->type == JSON_STRING; }

/* Appends the value compactly. */
void json_write_value(buf *out, const json_value *v);
/* Appends a quoted, escaped JSON string of bytes s[0..n). */
void json_write_string(buf *out, const char *s, size_t n);

#endif

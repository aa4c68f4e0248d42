/* core/buf.h — growable byte buffer on the heap, reused across batches so the steady
 * state allocates nothing. */
#ifndef MAMORI_CORE_BUF_H
#define MAMORI_CORE_BUF_H

#include "base.h"

typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
} buf;

static inline void buf_init(buf *b) { b->data = NULL; b->len = b->cap = 0; }
void buf_fini(buf *b);
static inline void buf_clear(buf *b) { b->len = 0; }
/* Ensures room for `extra` more bytes. */
void buf_reserve(buf *b, size_t extra);
void buf_append(buf *b, const void *p, size_t n);
static inline void buf_putc(buf *b, char c)
{
    if (MAMORI_UNLIKELY(b->len + 1 > b->cap)) buf_reserve(b, 1);
    b->data[b->len++] = c;
}
void buf_puts(buf *b, const char *s);
void buf_printf(buf *b, const char *fmt, ...) MAMORI_PRINTF(2, 3);
void buf_put_u64(buf *b, uint64_t v);
void buf_put_i64(buf *b, int64_t v);
/* Returns a NUL-terminated view (the NUL is not counted in len). */
const char *buf_cstr(buf *b);

#endif

/* core/base.c — panic, non-failing allocation and the stable hash behind storage keys. */
#include "base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void mamori_panic(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mamori: panic at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

static MAMORI_NORETURN void out_of_memory(size_t bytes)
{
    mamori_panic(__FILE__, __LINE__, "out of memory allocating %zu bytes (lower the configured limits)", bytes);
}

void *mamori_xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) out_of_memory(bytes);
    return p;
}

void *mamori_xcalloc(size_t count, size_t bytes)
{
    void *p = calloc(count ? count : 1, bytes ? bytes : 1);
    if (!p) out_of_memory(count * bytes);
    return p;
}

void *mamori_xrealloc(void *ptr, size_t bytes)
{
    void *p = realloc(ptr, bytes ? bytes : 1);
    if (!p) out_of_memory(bytes);
    return p;
}

char *mamori_xstrdup(const char *s)
{
    return mamori_xstrndup(s, strlen(s));
}

char *mamori_xstrndup(const char *s, size_t n)
{
    char *p = mamori_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

uint64_t mamori_hash64(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

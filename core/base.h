/* core/base.h — assertions, panics, allocation that cannot fail silently, and the
 * small helpers every module uses. Included by every other core header. */
#ifndef MAMORI_CORE_BASE_H
#define MAMORI_CORE_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAMORI_WUR __attribute__((warn_unused_result))
#define MAMORI_PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))
#define MAMORI_NORETURN __attribute__((noreturn))
#define MAMORI_LIKELY(x) __builtin_expect(!!(x), 1)
#define MAMORI_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MAMORI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MAMORI_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAMORI_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Prints file:line and the message, then aborts. For programmer errors only. */
MAMORI_NORETURN void mamori_panic(const char *file, int line, const char *fmt, ...) MAMORI_PRINTF(3, 4);

/* On in every build: cheap invariants. */
#define MAMORI_ASSERT(cond)                                                        \
    do {                                                                           \
        if (MAMORI_UNLIKELY(!(cond))) mamori_panic(__FILE__, __LINE__, "assertion failed: %s", #cond); \
    } while (0)

/* Costly invariants: debug and sanitizer builds only. */
#ifdef NDEBUG
#define MAMORI_DEBUG_ASSERT(cond) ((void)0)
#else
#define MAMORI_DEBUG_ASSERT(cond) MAMORI_ASSERT(cond)
#endif

/* Allocation failure is not an operating error we can route around: every input-driven
 * size is bounded by a configured limit, so running out of memory means the limits are
 * wrong for the machine. These abort with a message instead of returning NULL. */
void *mamori_xmalloc(size_t bytes);
void *mamori_xcalloc(size_t count, size_t bytes);
void *mamori_xrealloc(void *ptr, size_t bytes);
char *mamori_xstrdup(const char *s);
char *mamori_xstrndup(const char *s, size_t n);

/* Big-endian load/store, used by the wire protocol and the storage keys. */
static inline void mamori_put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void mamori_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void mamori_put_be64(uint8_t *p, uint64_t v)
{
    mamori_put_be32(p, (uint32_t)(v >> 32));
    mamori_put_be32(p + 4, (uint32_t)v);
}
static inline uint16_t mamori_get_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t mamori_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline uint64_t mamori_get_be64(const uint8_t *p)
{
    return ((uint64_t)mamori_get_be32(p) << 32) | mamori_get_be32(p + 4);
}

/* Stable 64-bit hash (XXH3) of bytes: used for tenant and agent ids in storage keys, so
 * it must never change across versions. */
uint64_t mamori_hash64(const void *data, size_t len);

#endif

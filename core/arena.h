/* core/arena.h — bump allocator for everything that lives as long as one batch (or one
 * request): the per-event path allocates only from an arena, never with malloc. */
#ifndef MAMORI_CORE_ARENA_H
#define MAMORI_CORE_ARENA_H

#include "base.h"

struct arena_chunk;

typedef struct arena {
    struct arena_chunk *first;   /* standard-size chunks, in allocation order */
    struct arena_chunk *current; /* the chunk the cursor is in */
    struct arena_chunk *big;     /* oversize one-off blocks; freed by arena_reset */
    char *cursor;
    char *end;
    size_t chunk_bytes;    /* size of a standard chunk */
    size_t retain_bytes;   /* standard chunks arena_reset keeps for reuse (at least one) */
    size_t bytes_reserved; /* total bytes of all chunks and blocks, for memory budgets */
} arena;

/* Initializes an empty arena in caller memory; no allocation until first use. */
void arena_init(arena *a, size_t chunk_bytes);
/* Frees every chunk. */
void arena_fini(arena *a);
/* Drops everything allocated but keeps standard chunks up to retain_bytes (by default
 * one) for reuse, so a recycled arena allocates and page-faults nothing in steady state. */
void arena_reset(arena *a);
/* How much arena_reset keeps (rounded down to whole chunks, at least one chunk). */
static inline void arena_set_retain(arena *a, size_t bytes) { a->retain_bytes = bytes; }
/* Returns `bytes` of 16-byte aligned memory owned by the arena. Never NULL. */
void *arena_alloc(arena *a, size_t bytes);
/* Copies `len` bytes and appends a NUL; owned by the arena. */
char *arena_strndup(arena *a, const char *s, size_t len);
/* Returns a copy of `len` bytes owned by the arena (no terminator). */
void *arena_memdup(arena *a, const void *p, size_t len);
/* Gives back the tail of `p` (an allocation of `bytes`) past its first `keep` bytes when p is
 * the most recent allocation; does nothing otherwise. */
void arena_trim(arena *a, void *p, size_t bytes, size_t keep);
/* Grows the most recent allocation `p` of `old_bytes` to `new_bytes` in place when
 * possible, else copies. Returns the (possibly moved) block. */
void *arena_grow(arena *a, void *p, size_t old_bytes, size_t new_bytes);

#endif

/* core/arena.c — chunked bump allocation; big requests get a chunk of their own. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

struct arena_chunk {
    struct arena_chunk *next;
    size_t bytes;
    _Alignas(16) char data[];
};

#define ARENA_ALIGN 16u

void arena_init(arena *a, size_t chunk_bytes)
{
    memset(a, 0, sizeof *a);
    a->chunk_bytes = chunk_bytes ? chunk_bytes : 64 * 1024;
}

void arena_fini(arena *a)
{
    struct arena_chunk *c = a->chunks;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->chunks = NULL;
    a->cursor = a->end = NULL;
    a->bytes_reserved = 0;
}

void arena_reset(arena *a)
{
    /* Keep one chunk of the standard size for reuse; oversize one-off blocks go. */
    struct arena_chunk *keep = NULL, *c = a->chunks;
    while (c) {
        struct arena_chunk *next = c->next;
        if (!keep && c->bytes == a->chunk_bytes) {
            keep = c;
        } else {
            a->bytes_reserved -= c->bytes;
            free(c);
        }
        c = next;
    }
    a->chunks = keep;
    if (keep) {
        keep->next = NULL;
        a->cursor = keep->data;
        a->end = keep->data + keep->bytes;
    } else {
        a->cursor = a->end = NULL;
    }
}

static void arena_new_chunk(arena *a, size_t min_bytes)
{
    size_t bytes = a->chunk_bytes;
    if (min_bytes > bytes) bytes = min_bytes;
    struct arena_chunk *c = mamori_xmalloc(sizeof *c + bytes);
    c->bytes = bytes;
    a->bytes_reserved += bytes;
    if (a->chunks && a->cursor && (size_t)(a->end - a->cursor) >= ARENA_ALIGN * 8 && min_bytes > a->chunk_bytes) {
        /* A big one-off block: link it behind the current chunk so the current chunk's
         * free space stays usable. */
        c->next = a->chunks->next;
        a->chunks->next = c;
        return;
    }
    c->next = a->chunks;
    a->chunks = c;
    a->cursor = c->data;
    a->end = c->data + bytes;
}

void *arena_alloc(arena *a, size_t bytes)
{
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0) need = ARENA_ALIGN;
    if (MAMORI_UNLIKELY(!a->cursor || (size_t)(a->end - a->cursor) < need)) {
        struct arena_chunk *before = a->chunks;
        arena_new_chunk(a, need);
        if (a->chunks == before) {
            /* linked behind the current chunk: hand out the whole block */
            return before->next->data;
        }
    }
    void *p = a->cursor;
    a->cursor += need;
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *arena_memdup(arena *a, const void *p, size_t len)
{
    void *d = arena_alloc(a, len);
    memcpy(d, p, len);
    return d;
}

void *arena_grow(arena *a, void *p, size_t old_bytes, size_t new_bytes)
{
    size_t old_need = (old_bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    size_t new_need = (new_bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (p && (char *)p + old_need == a->cursor && (size_t)(a->end - (char *)p) >= new_need) {
        a->cursor = (char *)p + new_need;
        return p;
    }
    void *n = arena_alloc(a, new_bytes);
    if (p && old_bytes) memcpy(n, p, old_bytes < new_bytes ? old_bytes : new_bytes);
    return n;
}

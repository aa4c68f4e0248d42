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
    a->retain_bytes = a->chunk_bytes;
}

static void free_list(struct arena_chunk *c)
{
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
}

void arena_fini(arena *a)
{
    free_list(a->first);
    free_list(a->big);
    a->first = a->current = a->big = NULL;
    a->cursor = a->end = NULL;
    a->bytes_reserved = 0;
}

void arena_reset(arena *a)
{
    free_list(a->big);
    a->big = NULL;
    size_t kept = 0;
    struct arena_chunk *c = a->first, *last_kept = NULL;
    while (c && (kept == 0 || kept + c->bytes <= a->retain_bytes)) {
        kept += c->bytes;
        last_kept = c;
        c = c->next;
    }
    if (last_kept) last_kept->next = NULL;
    free_list(c);
    a->bytes_reserved = kept;
    a->current = a->first;
    if (a->first) {
        a->cursor = a->first->data;
        a->end = a->first->data + a->first->bytes;
    } else {
        a->cursor = a->end = NULL;
    }
}

static struct arena_chunk *new_chunk(arena *a, size_t bytes)
{
    struct arena_chunk *c = mamori_xmalloc(sizeof *c + bytes);
    c->bytes = bytes;
    c->next = NULL;
    a->bytes_reserved += bytes;
    return c;
}

static inline size_t align_up(size_t bytes) { return (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1); }

/* What an allocation of `bytes` takes from the chunk: aligned, never nothing. */
static inline size_t reserved(size_t bytes)
{
    size_t need = align_up(bytes);
    return need ? need : ARENA_ALIGN;
}

void *arena_alloc(arena *a, size_t bytes)
{
    size_t need = reserved(bytes);
    if (MAMORI_LIKELY(a->cursor && (size_t)(a->end - a->cursor) >= need)) {
        void *p = a->cursor;
        a->cursor += need;
        return p;
    }
    if (need > a->chunk_bytes / 2) {
        /* A big one-off block: kept aside, so the current chunk's free space stays usable. */
        struct arena_chunk *c = new_chunk(a, need);
        c->next = a->big;
        a->big = c;
        return c->data;
    }
    /* Move to the next retained chunk, or append a fresh one after the current. */
    if (a->current && a->current->next) {
        a->current = a->current->next;
    } else {
        struct arena_chunk *c = new_chunk(a, a->chunk_bytes);
        if (a->current) a->current->next = c;
        else a->first = c;
        a->current = c;
    }
    a->cursor = a->current->data + need;
    a->end = a->current->data + a->current->bytes;
    return a->current->data;
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

void arena_trim(arena *a, void *p, size_t bytes, size_t keep)
{
    size_t need = reserved(bytes), keep_need = align_up(keep);
    if (p && (char *)p + need == a->cursor && keep_need <= need) a->cursor = (char *)p + keep_need;
}

void *arena_grow(arena *a, void *p, size_t old_bytes, size_t new_bytes)
{
    size_t old_need = align_up(old_bytes), new_need = align_up(new_bytes);
    if (p && (char *)p + old_need == a->cursor && (size_t)(a->end - (char *)p) >= new_need) {
        a->cursor = (char *)p + new_need;
        return p;
    }
    void *n = arena_alloc(a, new_bytes);
    if (p && old_bytes) memcpy(n, p, old_bytes < new_bytes ? old_bytes : new_bytes);
    return n;
}

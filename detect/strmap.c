/* detect/strmap.c — a small string → u32 map (open addressing, linear probing) for the
 * loader and the compiler: rule ids, field names, ECS paths, expressions. Build-time only;
 * the per-event path never touches it. Keys are borrowed and must outlive the map. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct strmap_slot {
    const char *key;
    uint64_t hash;
    uint32_t len;
    uint32_t value;
};

void strmap_init(strmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void strmap_fini(strmap *m)
{
    free(m->slots);
    strmap_init(m);
}

uint64_t strmap_hash(const char *s, size_t len) { return mamori_hash64(s, len); }

static struct strmap_slot *find(const strmap *m, const char *key, size_t len, uint64_t h)
{
    uint32_t mask = m->cap - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        struct strmap_slot *s = &m->slots[i];
        if (!s->key) return s;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) return s;
    }
}

uint32_t strmap_get(const strmap *m, const char *key, size_t len)
{
    if (m->cap == 0) return DETECT_NONE;
    const struct strmap_slot *s = find(m, key, len, strmap_hash(key, len));
    return s->key ? s->value : DETECT_NONE;
}

static void grow(strmap *m)
{
    uint32_t old_cap = m->cap;
    struct strmap_slot *old = m->slots;
    m->cap = old_cap ? old_cap * 2 : 64;
    m->slots = mamori_xcalloc(m->cap, sizeof *m->slots);
    for (uint32_t i = 0; i < old_cap; i++) {
        if (!old[i].key) continue;
        *find(m, old[i].key, old[i].len, old[i].hash) = old[i];
    }
    free(old);
}

uint32_t strmap_put(strmap *m, const char *key, size_t len, uint32_t value)
{
    MAMORI_ASSERT(len <= UINT32_MAX);
    if ((m->count + 1) * 2 > m->cap) grow(m);
    uint64_t h = strmap_hash(key, len);
    struct strmap_slot *s = find(m, key, len, h);
    if (s->key) return s->value;
    s->key = key;
    s->len = (uint32_t)len;
    s->hash = h;
    s->value = value;
    m->count++;
    return value;
}

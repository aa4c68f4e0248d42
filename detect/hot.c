/* detect/hot.c — the rule set's read-mostly data that every scan and every candidate's
 * evaluation reads (rules, predicates, alternatives, condition nodes, paths, fields, the
 * database lists and the Hyperscan databases themselves), moved once it is complete into one
 * mapping, on 2 MiB pages when it is large enough (the SigmaHQ set: ~14 MiB). Spread over the
 * heap in 4 KiB pages, it costs TLB misses on candidates and on scans of large databases; on
 * huge pages it fits the TLB (docs/detection.md §10.23: ~2.5% warm, ~2% cold, in one process).
 * A copy is byte for byte and a Hyperscan database is placed with hs_deserialize_database_at,
 * so nothing reads differently; whatever cannot be placed (no mapping, a database that does
 * not serialize) stays where it was. Not under AddressSanitizer, whose heap checks would no
 * longer see these arrays. */
#include "internal.h"

#include "core/log.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HOT_PAGE ((size_t)2 << 20)
#define HOT_ALIGN 64

#if defined(__SANITIZE_ADDRESS__)
#define HOT_MOVE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOT_MOVE 0
#endif
#endif
#ifndef HOT_MOVE
#define HOT_MOVE 1
#endif

static bool is_hot(const detect_ruleset *rs, const void *p)
{
    return rs->hot_map && (const char *)p >= (const char *)rs->hot_map &&
           (const char *)p < (const char *)rs->hot_map + rs->hot_map_bytes;
}

/* One list of the arrays (move_arrays) walked three ways: sizing (base NULL), copying (base
 * set), releasing (rs set: each freed unless it lies in the mapping). *used grows by each
 * array, 64-byte aligned. */
struct hot_pass {
    char *base;
    size_t used;
    const detect_ruleset *release;
};

/* Copies count elements of size bytes from *ptr into the region and frees the original; or
 * releases *ptr. */
static void move_array(struct hot_pass *h, void *ptr_to_ptr, size_t count, size_t size)
{
    void **pp = ptr_to_ptr;
    if (h->release) { /* whatever its count: an empty array may still be a 1-element allocation */
        if (!is_hot(h->release, *pp)) free(*pp);
        *pp = NULL;
        return;
    }
    if (!*pp || !count) return;
    size_t off = (h->used + HOT_ALIGN - 1) & ~(size_t)(HOT_ALIGN - 1);
    h->used = off + count * size;
    if (!h->base) return;
    memcpy(h->base + off, *pp, count * size);
    free(*pp);
    *pp = h->base + off;
}
#define MOVE(h, arr, count) move_array((h), &(arr), (size_t)(count), sizeof *(arr))

/* Every array the walk and the evaluation read, in one order for every pass. The counts kept
 * in arrays are read before those arrays move, and not at all when releasing (a set whose
 * build failed may not have them). */
static void move_arrays(struct hot_pass *h, detect_ruleset *rs)
{
    bool sized = !h->release;
    uint32_t path_db_count = 0;
    for (uint32_t p = 0; sized && p < rs->path_count; p++)
        path_db_count = MAMORI_MAX(path_db_count, rs->paths[p].db_first + rs->paths[p].db_count);
    for (uint32_t i = 0; i < rs->db_count; i++) {
        struct db *d = &rs->dbs[i];
        /* alts before alt_first, which says how many */
        MOVE(h, d->alts, sized && d->alt_first ? d->alt_first[d->id_count] : 0);
        MOVE(h, d->alt_first, d->id_count + 1);
    }
    MOVE(h, rs->dbs, rs->db_count);
    MOVE(h, rs->rules, rs->rule_count);
    MOVE(h, rs->always, rs->always_count);
    MOVE(h, rs->preds, rs->pred_count);
    MOVE(h, rs->alt_pred, rs->alt_count);
    MOVE(h, rs->alt_trigger, rs->alt_count);
    MOVE(h, rs->alt_path, rs->alt_count);
    MOVE(h, rs->alt_lazy_dbs, sized && rs->alt_lazy_first ? rs->alt_lazy_first[rs->alt_count] : 0);
    MOVE(h, rs->alt_lazy_first, rs->alt_count + 1);
    MOVE(h, rs->alt_lits, sized && rs->alt_lit_first ? rs->alt_lit_first[rs->alt_count] : 0);
    MOVE(h, rs->alt_lit_first, rs->alt_count + 1);
    MOVE(h, rs->nodes, rs->node_count);
    MOVE(h, rs->kids, rs->kid_count);
    MOVE(h, rs->paths, rs->path_count);
    MOVE(h, rs->path_slots, rs->path_slot_mask + 1);
    MOVE(h, rs->fields, rs->field_count);
    MOVE(h, rs->path_dbs, path_db_count);
    MOVE(h, rs->path_db_cls, path_db_count);
    MOVE(h, rs->keyword_dbs, rs->keyword_db_count);
    MOVE(h, rs->keyword_db_cls, rs->keyword_db_count);
    MOVE(h, rs->keyword_value_dbs, rs->keyword_value_db_count);
    MOVE(h, rs->keyword_value_db_cls, rs->keyword_value_db_count);
}

void ruleset_hot_move(detect_ruleset *rs)
{
    if (!HOT_MOVE || rs->hot_map) return;
    /* the databases serialized first: their placed size is known only from their bytes */
    char **bytes = mamori_xcalloc(rs->db_count ? rs->db_count : 1, sizeof *bytes);
    size_t *lens = mamori_xcalloc(rs->db_count ? rs->db_count : 1, sizeof *lens);
    size_t *sizes = mamori_xcalloc(rs->db_count ? rs->db_count : 1, sizeof *sizes);
    struct hot_pass h = {0};
    move_arrays(&h, rs);
    for (uint32_t i = 0; i < rs->db_count; i++) {
        if (!rs->dbs[i].hs) continue;
        if (hs_serialize_database(rs->dbs[i].hs, &bytes[i], &lens[i]) != HS_SUCCESS) {
            bytes[i] = NULL;
            continue;
        }
        if (hs_serialized_database_size(bytes[i], lens[i], &sizes[i]) != HS_SUCCESS) {
            free(bytes[i]);
            bytes[i] = NULL;
            continue;
        }
        h.used = ((h.used + HOT_ALIGN - 1) & ~(size_t)(HOT_ALIGN - 1)) + sizes[i];
    }
    /* huge pages from half of one on: a small set fits the TLB anyway, and a huge page it
     * cannot fill would cost 2 MiB of memory */
    bool huge = h.used >= HOT_PAGE / 2;
    size_t page = huge ? HOT_PAGE : (size_t)4096;
    size_t need = (h.used + page - 1) & ~(page - 1);
    size_t map_bytes = need + (huge ? HOT_PAGE : 0); /* room to start on a 2 MiB boundary */
    void *map = need ? mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
    if (map == MAP_FAILED) {
        if (need) LOG_WARN("detect", "rule set stays on the heap: no mapping of %zu bytes", map_bytes);
    } else {
        rs->hot_map = map;
        rs->hot_map_bytes = map_bytes;
        char *base = (char *)(((uintptr_t)map + page - 1) & ~(uintptr_t)(page - 1));
        if (huge && madvise(base, need, MADV_HUGEPAGE) != 0)
            LOG_DEBUG("detect", "madvise(MADV_HUGEPAGE) refused: the rule set is on 4 KiB pages");
        struct hot_pass copy = {.base = base};
        move_arrays(&copy, rs);
        for (uint32_t i = 0; i < rs->db_count; i++) {
            if (!bytes[i]) continue;
            size_t off = (copy.used + HOT_ALIGN - 1) & ~(size_t)(HOT_ALIGN - 1);
            hs_database_t *placed = (hs_database_t *)(base + off);
            copy.used = off + sizes[i];
            if (hs_deserialize_database_at(bytes[i], lens[i], placed) != HS_SUCCESS) continue; /* stays */
            hs_free_database(rs->dbs[i].hs);
            rs->dbs[i].hs = placed;
        }
        rs->hot_bytes = copy.used;
    }
    for (uint32_t i = 0; i < rs->db_count; i++) free(bytes[i]);
    free(bytes);
    free(lens);
    free(sizes);
}

void ruleset_hot_release(detect_ruleset *rs)
{
    for (uint32_t i = 0; i < rs->db_count; i++)
        if (rs->dbs[i].hs && !is_hot(rs, rs->dbs[i].hs)) hs_free_database(rs->dbs[i].hs);
    struct hot_pass h = {.release = rs};
    move_arrays(&h, rs);
    if (rs->hot_map) munmap(rs->hot_map, rs->hot_map_bytes);
    rs->hot_map = NULL;
    rs->hot_map_bytes = rs->hot_bytes = 0;
}

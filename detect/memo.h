/* detect/memo.h — the scan memo (memo.c): a database's matches in a value, remembered per
 * worker. Internal to detect/ (included by internal.h). */
#ifndef MAMORI_DETECT_MEMO_H
#define MAMORI_DETECT_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef void (*literal_match_fn)(uint32_t id, void *ctx);

#define MEMO_SLOTS 4096u               /* direct-mapped entries (power of two) */
#define MEMO_RING_BYTES (1u << 20)     /* their records: ids then value bytes (power of two) */
#define MEMO_TEXT_MAX 512u             /* longer values are scanned, never remembered, */
#define MEMO_LINE_MIN 256u             /* but lines this long of line-local databases' values are */
#define MEMO_LINE_MAX 16384u           /* (up to this long; scan.c scan_lines) */
#define MEMO_IDS_MAX 32u               /* scans reporting more expressions are not remembered */
#define MEMO_LINE_DB 0x80000000u       /* in a line's database number: lines apart from values */
struct memo_slot {
    uint64_t hash; /* memo_key(value, db); 0: empty */
    uint64_t pos;  /* absolute ring position of the record */
    uint32_t db, len, id_count;
};
struct scan_memo {
    struct memo_slot *slots;
    char *ring;
    uint64_t ring_pos; /* bytes ever written (records never straddle the ring's end) */
    uint32_t rec[MEMO_IDS_MAX]; /* the ids of the scan being recorded */
    uint32_t rec_count;
};
/* Allocates (first call) or empties the memo. */
void memo_init(struct scan_memo *m);
void memo_fini(struct scan_memo *m);
/* A value's hash (never 0), computed once per value however many databases scan it, and the
 * memo key of (database, value) made from it. */
uint64_t memo_text_hash(const char *text, size_t len);
/* A line's hash: of its length and its first and last MEMO_LINE_SAMPLE bytes only (a hit
 * compares the whole line; long lines differing only inside share a slot, and miss). */
#define MEMO_LINE_SAMPLE 64u
uint64_t memo_line_hash(const char *text, size_t len);
static inline uint64_t memo_key(uint64_t text_hash, uint32_t db)
{
    uint64_t k = (text_hash ^ ((uint64_t)(db + 1) * 0x9E3779B97F4A7C15ull)) * 0xD6E8FEB86659FD93ull;
    k ^= k >> 32;
    return k ? k : 1; /* 0 marks an empty slot */
}
/* The direct-mapped slot of key (its bits from 20 up). */
static inline struct memo_slot *memo_slot_of(const struct scan_memo *m, uint64_t key)
{
    return &m->slots[(key >> 20) & (MEMO_SLOTS - 1)];
}
/* Starts fetching the slot memo_replay will read for key. */
static inline void memo_prefetch(const struct scan_memo *m, uint64_t key)
{
    __builtin_prefetch(memo_slot_of(m, key));
}
/* If the memo holds (db, text), calls fn(id, ctx) for each id it matched and returns true. */
bool memo_replay(const struct scan_memo *m, uint64_t hash, uint32_t db, const char *text, size_t len,
                 literal_match_fn fn, void *ctx);
/* Records one id of the scan in progress; memo_store then files the ids under (db, text)
 * (and forgets them: the next scan starts empty). */
void memo_record(struct scan_memo *m, uint32_t id);
void memo_store(struct scan_memo *m, uint64_t hash, uint32_t db, const char *text, size_t len);

#endif

/* detect/memo.c — the scan memo: what a database matched in a value, remembered per worker.
 *
 * Telemetry repeats itself: the same image paths, call traces, access masks and hashes arrive
 * in event after event (on the OTRF recordings 93% of the values a rule set scans were seen
 * before). Scanning a value with a database is a pure function of (database, bytes), so a
 * worker remembers the expression ids a scan reported and replays them when the same bytes
 * come back for the same database: one hash and one compare instead of a Hyperscan or
 * substring scan.
 *
 * Exact, not probabilistic: an entry keeps the value's bytes and a hit compares them in full.
 * Bounded and allocation-free after detect_worker_bind: a direct-mapped table of MEMO_SLOTS
 * entries whose records (ids, then bytes) live in a ring of MEMO_RING_BYTES; an entry whose
 * record the ring has since overwritten is simply a miss. Values longer than MEMO_TEXT_MAX
 * (mostly unique: script blocks, PowerShell context) and scans reporting more than
 * MEMO_IDS_MAX expressions are not remembered; but a long value of a line-local database is
 * scanned line by line, and its lines of MEMO_LINE_MIN..MEMO_LINE_MAX bytes are (scan.c
 * scan_lines: PowerShell's context repeats its 5 KB host application line event after event),
 * under their database's number with MEMO_LINE_DB set. A worker rebinding to another rule set
 * forgets everything (database numbers change). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* XXH3 inlined: values are hashed on the hot path, most of them short */
#include <xxhash.h>

void memo_init(struct scan_memo *m)
{
    if (!m->slots) {
        m->slots = mamori_xcalloc(MEMO_SLOTS, sizeof *m->slots);
        m->ring = mamori_xmalloc(MEMO_RING_BYTES);
    } else {
        memset(m->slots, 0, MEMO_SLOTS * sizeof *m->slots);
    }
    m->ring_pos = 0;
    m->rec_count = 0;
}

void memo_fini(struct scan_memo *m)
{
    free(m->slots);
    free(m->ring);
    m->slots = NULL;
    m->ring = NULL;
}

uint64_t memo_text_hash(const char *text, size_t len)
{
    uint64_t h = XXH3_64bits(text, len);
    return h ? h : 1; /* 0 means "not computed yet" to the callers */
}

uint64_t memo_line_hash(const char *text, size_t len)
{
    if (len <= 2 * MEMO_LINE_SAMPLE) return memo_text_hash(text, len);
    uint64_t h = XXH3_64bits_withSeed(text, MEMO_LINE_SAMPLE, len) ^
                 XXH3_64bits(text + len - MEMO_LINE_SAMPLE, MEMO_LINE_SAMPLE) * 0x9E3779B97F4A7C15ull;
    return h ? h : 1;
}

bool memo_replay(const struct scan_memo *m, uint64_t hash, uint32_t db, const char *text, size_t len,
                 literal_match_fn fn, void *ctx)
{
    const struct memo_slot *s = memo_slot_of(m, hash);
    if (s->hash != hash || s->db != db || s->len != len) return false;
    if (m->ring_pos - s->pos > MEMO_RING_BYTES) return false; /* its record was overwritten */
    const char *rec = m->ring + (s->pos & (MEMO_RING_BYTES - 1));
    size_t ids_bytes = (size_t)s->id_count * sizeof(uint32_t);
    if (memcmp(rec + ids_bytes, text, len) != 0) return false;
    for (uint32_t i = 0; i < s->id_count; i++) {
        uint32_t id;
        memcpy(&id, rec + i * sizeof id, sizeof id);
        fn(id, ctx);
    }
    return true;
}

void memo_record(struct scan_memo *m, uint32_t id)
{
    for (uint32_t i = 0; i < m->rec_count && i < MEMO_IDS_MAX; i++)
        if (m->rec[i] == id) return; /* Hyperscan reports an expression at every match end */
    if (m->rec_count < MEMO_IDS_MAX) m->rec[m->rec_count] = id;
    m->rec_count++; /* past MEMO_IDS_MAX: too many to keep, memo_store declines */
}

void memo_store(struct scan_memo *m, uint64_t hash, uint32_t db, const char *text, size_t len)
{
    uint32_t count = m->rec_count;
    m->rec_count = 0;
    if (count > MEMO_IDS_MAX || len > MEMO_LINE_MAX) return; /* callers keep values to MEMO_TEXT_MAX */
    size_t need = (size_t)count * sizeof(uint32_t) + len;
    need = (need + 7) & ~(size_t)7;
    uint64_t pos = m->ring_pos;
    size_t off = (size_t)(pos & (MEMO_RING_BYTES - 1));
    if (off + need > MEMO_RING_BYTES) pos += MEMO_RING_BYTES - off; /* records do not wrap */
    char *rec = m->ring + (pos & (MEMO_RING_BYTES - 1));
    memcpy(rec, m->rec, (size_t)count * sizeof(uint32_t));
    memcpy(rec + (size_t)count * sizeof(uint32_t), text, len);
    m->ring_pos = pos + need;
    struct memo_slot *s = memo_slot_of(m, hash);
    *s = (struct memo_slot){.hash = hash, .pos = pos, .db = db, .len = (uint32_t)len, .id_count = count};
}

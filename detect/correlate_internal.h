/* detect/correlate_internal.h — private to the correlation files of detect/: the parsed
 * correlation documents (correlate_load.c), the resolved set, matches and the engine state
 * (correlate.c, correlate_state.c), and the two hooks load.c offers them. */
#ifndef MAMORI_DETECT_CORRELATE_INTERNAL_H
#define MAMORI_DETECT_CORRELATE_INTERNAL_H

#include "correlate.h"
#include "internal.h"

#include <string.h>

/* ---- hooks in load.c -------------------------------------------------------------------------- */

struct correlate_defs;
/* The loader's slot for collected correlation documents (NULL until the first one). */
struct correlate_defs **loader_correlations(struct detect_loader *l);
/* Records a rejection or skip in the loader's report (copies every string). */
void loader_add_problem(struct detect_loader *l, const char *file, uint32_t line, enum detect_reason reason,
                        const char *message, const char *rule_id, const char *title);
detect_report *loader_report_mutable(struct detect_loader *l);

/* load.c calls this for every document holding `correlation:` when
 * detect_options.correlations is set. id and title are already read (copied). */
void correlate_load_document(struct detect_loader *l, const char *file, struct fy_node *root, const char *id,
                             const char *title);
void correlate_defs_free(struct correlate_defs *defs);

/* ---- parsed documents ------------------------------------------------------------------------- */

enum ccond_op { CC_GT = 0, CC_GTE, CC_LT, CC_LTE, CC_EQ, CC_NEQ, CC_OP_COUNT };

struct ccond {
    uint8_t has; /* bit per enum ccond_op */
    double value[CC_OP_COUNT];
};

struct cref {
    const char *text; /* id or name as written */
    uint32_t line;
    bool is_correlation; /* resolved: a correlation (target = its index in defs) or a rule */
    uint32_t target;
};

struct calias {
    const char *alias;
    const char *rule; /* rule name (or id) the mapping applies to */
    const char *field;
    uint32_t line;
};

struct cdef {
    correlate_rule pub;
    struct cref *refs;
    struct calias *aliases;
    uint32_t alias_count;
    struct ccond cond;
    uint32_t depth; /* 0: references base rules only */
    bool dead;
    bool visiting; /* cycle search */
    bool done;
};

struct correlate_defs {
    arena mem;
    struct cdef **defs;
    uint32_t count, cap;
    bool taken; /* a set was built from them */
};

bool ccond_holds(const struct ccond *c, double value);

/* ---- the resolved set ------------------------------------------------------------------------- */

/* A correlation using a rule or a correlation at position pos of its `rules`, with the
 * field names to read from that source (aliases applied). */
struct consumer {
    uint32_t corr;
    uint32_t pos;
    const char *const *group_fields; /* corr's group_count of them */
    const char *const *value_fields; /* corr's field_count of them */
};

struct correlate_set {
    detect_ruleset *rs;
    struct correlate_defs *defs;
    struct cdef **corrs; /* live correlations, in load order; corrs[i]->pub.info.index == i */
    uint32_t count;
    uint32_t rule_count;
    uint32_t *rule_first; /* base rule index → consumers[rule_first[r] .. rule_first[r+1]) */
    struct consumer *rule_consumers;
    uint32_t *corr_first; /* correlation index → corr_consumers[…] */
    struct consumer *corr_consumers;
    bool *rule_standalone;
    bool *corr_emit;
};

/* ---- matches ---------------------------------------------------------------------------------- */

struct mtarget {
    uint32_t corr, pos;
    bool missing;  /* a group-by or value field is absent */
    bool numeric;  /* value parses as a number */
    double number;
    uint64_t value_hash;
    uint32_t key_off, key_len;     /* in blob */
    uint32_t value_off, value_len; /* in blob; value_len 0 and value_off UINT32_MAX: none */
};

struct correlate_match {
    int64_t time_us;
    int64_t received_us; /* INT64_MAX when unknown */
    uint32_t id_count;
    uint32_t target_count;
    struct mtarget *targets;
    buf blob;      /* ids (each NUL-terminated) first, then keys and values */
    bool chained;  /* an alert of a correlation: never late */
};

/* ---- engine state ----------------------------------------------------------------------------- */

struct centry {
    int64_t time_us;
    uint64_t seq; /* arrival order: ties in time keep it */
    uint32_t pos;
    uint32_t id_count;
    double number;
    uint64_t value_hash;
    char *data; /* ids, each NUL-terminated, then the value (NUL-terminated) if has_value */
    uint32_t data_len;
    bool has_value;
};

struct ckey {
    char *key;
    uint32_t key_len;
    uint64_t hash;
    struct ckey *hash_next;
    struct ckey *newer, *older; /* LRU by last update (arrival) */
    struct centry *entries;     /* sorted by (time_us, seq) */
    uint32_t count, cap;
    int64_t newest_us;  /* newest match time the key took (never lowered): its own watermark */
    int64_t arrival_us; /* the engine's arrival clock at its last update (LRU order, expiry) */
    uint64_t version; /* engine version of its last change (incremental checkpoints) */
};

struct cstate {
    struct ckey **buckets;
    uint32_t bucket_count; /* power of two */
    struct ckey *newest, *oldest;
    correlate_stats stats;
    /* incremental checkpoints (correlate_state_delta) */
    uint64_t delta_version; /* keys changed after it go into the next delta */
    buf removed;            /* keys removed since the last delta: u32 length + bytes each */
    bool delta_full;        /* the next delta must be everything (too many removals, a reload) */
};

struct correlate_engine {
    const correlate_set *set;
    correlate_options opt;
    struct cstate *states;
    int64_t watermark_us; /* newest match time fed (receive-bounded): reported, checkpointed */
    int64_t clock_us;     /* newest arrival: receive times (live) or match times (offline) */
    bool arrival_fix;     /* restored keys wait for an arrival time (the next match's clock) */
    uint64_t seq;
    uint64_t version; /* counts key changes, for incremental checkpoints */
    uint64_t late; /* late matches (once per match, whatever number of correlations) */
    /* window scratch (contributing entries, value hashes), grown to the largest key; a
     * chained evaluation may reuse it: fire() is done with it before feeding the chain */
    uint32_t *sel;
    uint64_t *hashes;
    uint32_t scratch_cap;
};

/* Two entries of one base event (one event matching several steps of a temporal_ordered
 * correlation fills only one step of a sequence). */
static inline bool centry_same_event(const struct centry *a, const struct centry *b)
{
    return a->id_count == 1 && b->id_count == 1 && a->time_us == b->time_us && !strcmp(a->data, b->data);
}

/* correlate.c, for correlate_state.c and correlate_seq.c */
/* An empty match at time_us (clamped to ±2^62 µs) with room for `targets` targets. */
correlate_match *cmatch_new(int64_t time_us, uint32_t targets);
struct ckey *cstate_key(correlate_engine *e, uint32_t corr, const char *key, uint32_t key_len, bool create);
void cstate_clear(correlate_engine *e, uint32_t corr);
void ckey_remove(correlate_engine *e, uint32_t corr, struct ckey *k);
/* Inserts an entry (taking its data) in time order, evicting the oldest past the limit. */
uint32_t ckey_insert(correlate_engine *e, uint32_t corr, struct ckey *k, const struct centry *ent);

/* Little-endian encoders shared by the checkpoint (correlate_state.c) and the match wire
 * format (correlate_wire.c): u8, u32, u64, and a string as u32 length + bytes. */
static inline void corr_put_u8(buf *b, uint8_t v) { buf_append(b, &v, 1); }
static inline void corr_put_u32(buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    buf_append(b, x, 4);
}
static inline void corr_put_u64(buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    buf_append(b, x, 8);
}
static inline void corr_put_str(buf *b, const char *s, size_t len)
{
    corr_put_u32(b, (uint32_t)len);
    buf_append(b, s, len);
}
/* The matching reader: little-endian integers and u32-length strings from a byte range; any
 * read past the end (or a string longer than max) marks the reader bad and yields 0 / NULL. */
struct corr_reader {
    const uint8_t *p, *end;
    bool bad;
};
static inline uint64_t corr_get_n(struct corr_reader *r, int n)
{
    if (r->bad || r->end - r->p < n) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}
static inline const char *corr_get_str(struct corr_reader *r, uint32_t *len, uint32_t max)
{
    *len = (uint32_t)corr_get_n(r, 4);
    if (r->bad || *len > max || (size_t)(r->end - r->p) < *len) {
        r->bad = true;
        *len = 0;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += *len;
    return s;
}
/* How encoded state and matches name a rule: its id, or its title when it has none. */
static inline const char *corr_rule_key(const correlate_rule *r) { return r->info.id[0] ? r->info.id : r->info.title; }

#endif

/* server/detect_corr_internal.h — private to detect_corr.c and detect_corr_checkpoint.c: the
 * correlation runtime of live detection (docs/detection.md §11.6). */
#ifndef MAMORI_SERVER_DETECT_CORR_INTERNAL_H
#define MAMORI_SERVER_DETECT_CORR_INTERNAL_H

#include "detect_internal.h"

#define MOD "detect"
#define CORR_MARKS_KEY "corr/marks"
#define CORR_STATE_PREFIX "corr/st/"
#define CORR_STATE_PREFIX_LEN 8u
#define CORR_MARKS_MAGIC 0x4d434b50u /* "MCKP" */
#define CORR_MARKS_VERSION 1u

struct corr_gen {
    uint64_t generation;
    correlate_set *set;
    _Atomic unsigned refs;
};

typedef struct corr_tenant {
    uint64_t tenant_hash;
    char *tenant;
    correlate_engine *engine;
    uint64_t *versions; /* per correlation: its change count at the last checkpoint */
} corr_tenant;

typedef struct corr_mark {
    uint64_t tenant_hash, agent_hash, seq;
} corr_mark;

struct corr_rt {
    const mamori_config *cfg;
    store *db;
    pthread_mutex_t mu;      /* engines, marks, checkpoints */
    pthread_mutex_t swap_mu; /* pairs the slot's rule set with current (never held long) */
    corr_gen *current;       /* written under both locks, read under either */
    correlate_options opt;
    corr_tenant *tenants;
    uint32_t tenant_count, tenant_cap;
    /* "fed up to" per agent: open addressing, index + 1 */
    corr_mark *marks;
    uint32_t mark_count, mark_cap;
    uint32_t *table;
    uint32_t mask;
    int64_t anchor_us; /* newest receive time of a fed batch */
    uint32_t inflight; /* threads holding correlation alerts not written yet */
    bool full_due;     /* the next checkpoint rewrites every state (after restore, reload) */
    bool dirty;        /* batches fed since the last checkpoint */
    bool have_checkpoint;
    int64_t checkpoint_anchor_us; /* the stored checkpoint's anchor (start-up) */
    int64_t last_checkpoint_ms;
    corr_mark *prepared; /* durable seqs at start-up, before ingest opened */
    size_t prepared_count;
    correlate_stats retired; /* counters of engines a reload replaced */
    uint64_t fed_batches, refed_batches, checkpoints, checkpoint_errors, checkpoint_bytes, checkpoint_us_sum;
    uint64_t checkpoint_us_last, checkpoint_keys, alerts_raised, restored_keys, restore_errors;
    /* re-keying (Kafka, docs/detection.md §11.8): CORR_REKEY_* */
    int rekey;
    buf wire, origin; /* scratch of corr_rt_feed when re-keying */
    uint64_t rekeyed_matches;
};

const char *corr_rule_key(const correlate_rule *r); /* its id, else its title */
/* The tenant's engines (created for the current correlations; NULL when there are none). */
corr_tenant *corr_tenant_get(corr_rt *c, uint64_t tenant_hash, const char *name);
/* The agent's fed-up-to entry (created at seq 0 when asked). */
corr_mark *corr_mark_find(corr_rt *c, uint64_t tenant_hash, uint64_t agent_hash, bool create);
/* Reads corr/marks into c (at create). */
void corr_rt_load_marks(corr_rt *c);

#endif

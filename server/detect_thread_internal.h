/* server/detect_thread_internal.h — private to detect_thread.c (polling, evaluation, the
 * thread) and detect_commit.c (durability, alert and watermark writes, correlation feeding,
 * releasing batches): one detection thread's state. */
#ifndef MAMORI_SERVER_DETECT_THREAD_INTERNAL_H
#define MAMORI_SERVER_DETECT_THREAD_INTERNAL_H

#include "detect_internal.h"

struct detect_thread {
    detect_rt *rt;
    uint32_t no;
    pthread_t thread;
    bool started;
    bus_consumer *consumer;
    detect_counters counters;
};

/* A batch evaluated and waiting for its durability; its alerts are alerts[first..+count),
 * the matches correlations use hits[first_hit..+hit_count) (fed once it is durable). */
typedef struct pending {
    bus_batch *batch;
    detect_ruleset *rs; /* keeps the alerts' rules alive */
    corr_gen *corr;     /* the rule set's correlations */
    uint32_t first_alert, alert_count;
    uint32_t first_hit, hit_count;
    bool corr_fed;
    bool skipped; /* taken while no rule set could be built: no watermark, no feeding (§7.1) */
} pending;

typedef struct corr_hit {
    uint32_t event_index;
    const detect_rule *rule;
} corr_hit;

/* Watermarks not yet written: one per agent, the highest seq. */
typedef struct mark_set {
    store_detect_mark *v;
    uint32_t count, cap;
    uint32_t *table; /* index + 1, 0 = empty */
    uint32_t mask;
} mark_set;

typedef struct thread_state {
    detect_thread *t;
    detect_rt *rt;
    detect_worker *worker;
    uint64_t bound_generation;
    detect_worker_stats last_stats;
    pending *pending;
    uint32_t pending_count, pending_cap;
    store_alert *alerts;
    const detect_rule **alert_rules;
    uint32_t *alert_events; /* the event's position in its batch (automatic response) */
    uint32_t *body_offsets;
    uint32_t alert_count, alert_cap;
    buf bodies;
    mark_set marks;
    int64_t last_marks_flush_ms;
    /* correlations: hits of pending batches, alerts of fed ones not written yet */
    corr_hit *hits;
    uint32_t hit_count, hit_cap;
    corr_alerts corr_out;
    corr_records rekeyed; /* matches for the matches topic, sent before their batches are released */
    bool corr_inflight;
    corr_checkpoint ckpt;
    store_alert *combined; /* single-event then correlation alerts of one write */
    bool *combined_written;
    uint32_t combined_cap;
    /* the group of batches being evaluated (evaluate_group): one detect_eval_batch call over
     * their events laid end to end; on_match follows the batch an event index falls in */
    bus_batch **group;
    uint32_t group_count, group_at;   /* batches in the group; the one being matched */
    uint32_t group_base, group_end;   /* that batch's events: group indices [base, end) */
    uint32_t group_first_alert[DETECT_POLL_BATCHES], group_first_hit[DETECT_POLL_BATCHES];
    mamori_event *group_events;       /* the group's events, copied end to end (2+ batches) */
    uint32_t group_events_cap;
    bus_batch *batch;                 /* group[group_at] */
    corr_gen *batch_corr;
    uint32_t batch_alerts;
    int64_t now_us;
} thread_state;

/* detect_commit.c */
void detect_marks_init(mark_set *m);
void detect_marks_fini(mark_set *m);
/* Drops pending[0..k) and their alerts; done: their work is complete (else abandoned: Kafka
 * delivers them again). */
void detect_release(thread_state *s, uint32_t k, bool done);
/* Writes what is ready (the durable prefix of pending). False after a failed write (the
 * caller backs off). */
bool detect_commit_ready(thread_state *s, bool force_marks);

#endif

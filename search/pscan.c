/* search/pscan.c — range scans on several threads. The range is cut into parts holding
 * data (between the first and last event, many more parts than threads so they balance);
 * threads take parts in time order, each checking events with its own worker state. With
 * an ordered consumer (pages) a part keeps its matches (at most keep_max) and the calling
 * thread hands them over part by part in time order, so the consumer sees exactly the
 * sequential order and can stop early (later parts are then abandoned); without one
 * (count, count by) workers consume into their own state. A deadline stops every part;
 * the position examined is that of the last part consumed in order. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PSCAN_PARTS_PER_THREAD 8u

enum part_state { PART_TODO = 0, PART_RUNNING, PART_DONE };

typedef struct kept_match {
    store_event_ref ref;
    size_t off, len; /* in the part's json buffer */
} kept_match;

typedef struct part {
    int64_t from, to;
    int state;
    bool partial; /* stopped before its end: deadline, error or keep_max */
    store_event_ref examined;
    bool has_examined;
    kept_match *matches;
    size_t match_count, match_cap;
    buf json;
} part;

typedef struct shared {
    pscan *ps;
    part *parts;
    uint32_t part_count, next_part;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic bool stop;     /* no part is to be started or continued */
    _Atomic bool deadline; /* a worker saw the deadline pass */
    _Atomic bool consumer_stop;
    int error;
} shared;

typedef struct worker_arg {
    shared *sh;
    void *worker;
    part *cur;
} worker_arg;

static int scan_one(void *ctx, const store_event_ref *ref, const char *json, size_t len)
{
    worker_arg *wa = ctx;
    shared *sh = wa->sh;
    part *pt = wa->cur;
    if (sh->stop) {
        pt->partial = true;
        return 1;
    }
    int rc = sh->ps->check(wa->worker, ref, json, len);
    if (rc < 0 || rc == PSCAN_DEADLINE || rc == PSCAN_STOP) {
        pt->partial = true;
        if (rc < 0) {
            pthread_mutex_lock(&sh->mu);
            if (!sh->error) sh->error = rc;
            pthread_mutex_unlock(&sh->mu);
        } else if (rc == PSCAN_DEADLINE) {
            sh->deadline = true;
        } else {
            sh->consumer_stop = true;
        }
        sh->stop = true;
        return 1;
    }
    pt->examined = *ref;
    pt->has_examined = true;
    if (rc == PSCAN_MATCH && sh->ps->take) {
        if (pt->match_count == pt->match_cap) {
            pt->match_cap = pt->match_cap ? pt->match_cap * 2 : 16;
            pt->matches = mamori_xrealloc(pt->matches, pt->match_cap * sizeof *pt->matches);
        }
        pt->matches[pt->match_count++] = (kept_match){.ref = *ref, .off = pt->json.len, .len = len};
        buf_append(&pt->json, json, len);
        if (pt->match_count >= sh->ps->keep_max) return 1; /* the consumer stops inside this part */
    }
    return 0;
}

/* Claims and scans the next part; false when none was left to claim. */
static bool run_one_part(worker_arg *wa)
{
    shared *sh = wa->sh;
    pthread_mutex_lock(&sh->mu);
    if (sh->stop || sh->next_part == sh->part_count) {
        pthread_mutex_unlock(&sh->mu);
        return false;
    }
    part *pt = &sh->parts[sh->next_part++];
    pt->state = PART_RUNNING;
    pthread_mutex_unlock(&sh->mu);
    wa->cur = pt;
    int rc = store_scan_events(sh->ps->s, sh->ps->tenant, pt->from, pt->to, scan_one, wa);
    pthread_mutex_lock(&sh->mu);
    if (rc < 0) {
        pt->partial = true;
        if (!sh->error) sh->error = rc;
        sh->stop = true;
    }
    pt->state = PART_DONE;
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
    return true;
}

static void *thread_main(void *arg)
{
    while (run_one_part(arg)) {
    }
    return NULL;
}

/* Hands finished parts to the consumer in time order (waiting for the next one when
 * block). Returns true while the scan goes on. */
static bool consume(shared *sh, uint32_t *next, bool block)
{
    pscan *ps = sh->ps;
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        while (block && *next < sh->part_count && sh->parts[*next].state == PART_RUNNING)
            pthread_cond_wait(&sh->cv, &sh->mu);
        if (*next == sh->part_count) {
            pthread_mutex_unlock(&sh->mu);
            return false;
        }
        part *pt = &sh->parts[*next];
        int state = pt->state;
        pthread_mutex_unlock(&sh->mu);
        if (state == PART_TODO) {
            if (!sh->stop) return true;
            ps->deadline_hit = sh->deadline; /* never started: the scan ends before it */
            return false;
        }
        if (state == PART_RUNNING) return true;
        for (size_t i = 0; i < pt->match_count; i++) {
            const kept_match *k = &pt->matches[i];
            if (ps->take(ps->take_ctx, &k->ref, pt->json.data + k->off, k->len)) {
                ps->stopped = true;
                sh->stop = true;
                return false;
            }
        }
        MAMORI_ASSERT(pt->match_count < ps->keep_max); /* a full part ends in a consumer stop */
        if (pt->has_examined) {
            ps->examined = pt->examined;
            ps->has_examined = true;
        }
        free(pt->matches);
        pt->matches = NULL;
        buf_fini(&pt->json);
        (*next)++;
        if (pt->partial) { /* the deadline (or an error) stopped it */
            ps->deadline_hit = sh->deadline;
            sh->stop = true;
            return false;
        }
    }
}

/* first + span * i / parts without overflow */
static int64_t split_point(int64_t first, int64_t span, uint32_t i, uint32_t parts)
{
    return first + span / parts * i + span % parts * i / parts;
}

int pscan_run(pscan *ps)
{
    MAMORI_ASSERT(ps->worker_count >= 1 && ps->check && (!ps->take || ps->keep_max > 0));
    ps->stopped = ps->deadline_hit = ps->has_examined = false;
    int64_t first, last;
    int rc = store_event_bounds(ps->s, ps->tenant, ps->from_us, ps->to_us, &first, &last);
    if (rc) return rc;
    if (first < 0) return 0;
    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.ps = ps;
    uint32_t want = ps->worker_count == 1 ? 1 : ps->worker_count * PSCAN_PARTS_PER_THREAD;
    int64_t span = last - first + 1;
    if ((int64_t)want > span) want = (uint32_t)span;
    sh.part_count = want;
    sh.parts = mamori_xcalloc(want, sizeof *sh.parts);
    for (uint32_t i = 0; i < want; i++) {
        part *pt = &sh.parts[i];
        pt->from = i == 0 ? ps->from_us : split_point(first, span, i, want);
        pt->to = i + 1 == want ? ps->to_us : split_point(first, span, i + 1, want);
        buf_init(&pt->json);
    }
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.cv, NULL);
    worker_arg *args = mamori_xcalloc(ps->worker_count, sizeof *args);
    pthread_t *threads = mamori_xcalloc(ps->worker_count, sizeof *threads);
    bool *started = mamori_xcalloc(ps->worker_count, sizeof *started);
    for (uint32_t i = 0; i < ps->worker_count; i++) args[i] = (worker_arg){.sh = &sh, .worker = ps->workers[i]};
    for (uint32_t i = 1; i < ps->worker_count && i < want; i++)
        started[i] = pthread_create(&threads[i], NULL, thread_main, &args[i]) == 0;
    if (ps->take) {
        uint32_t next = 0;
        for (;;) {
            bool ran = run_one_part(&args[0]);
            if (!consume(&sh, &next, !ran)) break;
        }
    } else {
        thread_main(&args[0]);
    }
    for (uint32_t i = 1; i < ps->worker_count; i++)
        if (started[i]) pthread_join(threads[i], NULL);
    if (!ps->take) {
        ps->stopped = sh.consumer_stop;
        /* the examined position: the last part finished in order */
        for (uint32_t i = 0; i < sh.part_count && !ps->stopped; i++) {
            part *pt = &sh.parts[i];
            if (pt->state == PART_DONE && pt->has_examined) {
                ps->examined = pt->examined;
                ps->has_examined = true;
            }
            if (pt->state != PART_DONE || pt->partial) {
                ps->deadline_hit = sh.deadline;
                break;
            }
        }
    }
    rc = sh.error;
    for (uint32_t i = 0; i < sh.part_count; i++) {
        free(sh.parts[i].matches);
        buf_fini(&sh.parts[i].json);
    }
    free(sh.parts);
    free(args);
    free(threads);
    free(started);
    pthread_mutex_destroy(&sh.mu);
    pthread_cond_destroy(&sh.cv);
    return rc;
}

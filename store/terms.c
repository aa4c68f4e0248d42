/* store/terms.c — the term worker: a helper thread that extracts a group's index terms
 * while the writer thread is inside the RocksDB write, and moves each committed group's
 * terms into the active slice afterwards. The writer thread then only builds and writes
 * batches (measured: the RocksDB write is most of a group commit's time, and the second
 * core was idle during it). Lookups first wait for every group committed before them to
 * be inserted, so a group is visible to the index as soon as store_write_group returns. */
#include "internal.h"

#include "core/clock.h"

#include <stdlib.h>
#include <string.h>

/* ---- extraction (worker thread, while the writer writes) ---- */

typedef struct extract_ctx {
    term_group *g;
    pending_event *ev;
} extract_ctx;

static void add_term(void *arg, enum store_index_field f, const char *value, size_t len)
{
    extract_ctx *x = arg;
    term_group *g = x->g;
    if (len == 0) return;
    ix_term t;
    ix_term_make(&g->scratch, value, len, &t);
    if (g->term_count == g->term_cap) {
        g->term_cap = g->term_cap ? g->term_cap * 2 : 65536;
        g->terms = mamori_xrealloc(g->terms, g->term_cap * sizeof *g->terms);
    }
    MAMORI_ASSERT(g->values.len + t.len <= UINT32_MAX);
    pending_term *pt = &g->terms[g->term_count++];
    pt->term_hash = ix_term_hash(x->ev->tenant_hash, x->ev->day, (uint8_t)f, &t);
    pt->full_hash = t.full_hash;
    pt->value_off = (uint32_t)g->values.len;
    pt->len = t.len;
    pt->field = (uint8_t)f;
    pt->truncated = (uint8_t)t.truncated;
    buf_append(&g->values, t.value, t.len);
    x->ev->term_count++;
}

static void extract_group(term_group *g)
{
    g->term_count = 0;
    buf_clear(&g->values);
    for (size_t i = 0; i < g->event_count; i++) {
        pending_event *pe = &g->events[i];
        pe->first_term = (uint32_t)g->term_count;
        pe->term_count = 0;
        extract_ctx x = {.g = g, .ev = pe};
        ix_extract_event(pe->ev, add_term, &x); /* pe->ev dangles once the writer returns */
    }
}

/* ---- insertion (worker thread, after the commit) ---- */

static void insert_group(store *s, term_group *g)
{
    pthread_rwlock_wrlock(&s->ix_rw);
    ix_slice *sl = s->active;
    if (g->has_log) ix_slice_note_group(sl, g->group_no);
    uint64_t entries_before = sl->entries;
    for (size_t i = 0; i < g->event_count; i++) {
        const pending_event *pe = &g->events[i];
        uint32_t eno = ix_slice_add_event(sl, &pe->ref);
        for (uint32_t k = 0; k < pe->term_count; k++) {
            const pending_term *pt = &g->terms[pe->first_term + k];
            ix_term t = {.value = (const uint8_t *)g->values.data + pt->value_off,
                         .len = pt->len,
                         .truncated = pt->truncated,
                         .full_hash = pt->full_hash};
            ix_slice_add_term(sl, eno, pe->tenant_hash, pe->day, pt->field, &t, pt->term_hash);
        }
    }
    atomic_fetch_add_explicit(&s->entries_pending, sl->entries - entries_before, memory_order_relaxed);
    if (ix_slice_bytes(sl) >= s->opt.index_slice_max_bytes || sl->event_count >= IX_SLICE_EVENTS_MAX / 2 ||
        clock_mono_ms() - sl->opened_mono_ms >= (int64_t)s->opt.index_slice_ms) {
        pthread_mutex_lock(&s->ix_mu);
        ix_close_active_locked(s);
        pthread_mutex_unlock(&s->ix_mu);
    }
    pthread_rwlock_unlock(&s->ix_rw);
}

static void *term_worker_main(void *arg)
{
    store *s = arg;
    pthread_setname_np(pthread_self(), "store-terms");
    pthread_mutex_lock(&s->tw_mu);
    for (;;) {
        term_group *extract = NULL, *insert = NULL;
        for (int i = 0; i < 2; i++) {
            term_group *g = &s->tg[i];
            if (g->state == TG_EXTRACT) extract = g;
            if (g->state == TG_COMMITTED && (!insert || g->commit_seq < insert->commit_seq)) insert = g;
        }
        if (extract) { /* first: the writer is waiting for it */
            pthread_mutex_unlock(&s->tw_mu);
            extract_group(extract);
            pthread_mutex_lock(&s->tw_mu);
            extract->state = TG_EXTRACTED;
            pthread_cond_broadcast(&s->tw_cv);
            continue;
        }
        if (insert) {
            pthread_mutex_unlock(&s->tw_mu);
            insert_group(s, insert);
            pthread_mutex_lock(&s->tw_mu);
            insert->state = TG_FREE;
            s->tw_inserted = insert->commit_seq;
            pthread_cond_broadcast(&s->tw_cv);
            continue;
        }
        if (s->tw_stop) break;
        pthread_cond_wait(&s->tw_cv, &s->tw_mu);
    }
    pthread_mutex_unlock(&s->tw_mu);
    return NULL;
}

/* ---- the writer's side ---- */

term_group *tw_acquire(store *s)
{
    term_group *g = &s->tg[s->tg_next];
    s->tg_next ^= 1;
    pthread_mutex_lock(&s->tw_mu);
    while (g->state != TG_FREE) pthread_cond_wait(&s->tw_cv, &s->tw_mu);
    pthread_mutex_unlock(&s->tw_mu);
    g->event_count = 0;
    g->term_count = 0;
    return g;
}

static void set_state(store *s, term_group *g, int state)
{
    pthread_mutex_lock(&s->tw_mu);
    g->state = state;
    if (state == TG_COMMITTED) g->commit_seq = ++s->tw_committed;
    pthread_cond_broadcast(&s->tw_cv);
    pthread_mutex_unlock(&s->tw_mu);
}

void tw_start_extract(store *s, term_group *g) { set_state(s, g, TG_EXTRACT); }

void tw_wait_extracted(store *s, term_group *g)
{
    pthread_mutex_lock(&s->tw_mu);
    while (g->state == TG_EXTRACT) pthread_cond_wait(&s->tw_cv, &s->tw_mu);
    pthread_mutex_unlock(&s->tw_mu);
}

void tw_commit(store *s, term_group *g, bool has_log, uint64_t group_no)
{
    g->has_log = has_log;
    g->group_no = group_no;
    set_state(s, g, TG_COMMITTED);
}

void tw_discard(store *s, term_group *g) { set_state(s, g, TG_FREE); }

void tw_sync(store *s)
{
    pthread_mutex_lock(&s->tw_mu);
    uint64_t target = s->tw_committed;
    while (s->tw_inserted < target) pthread_cond_wait(&s->tw_cv, &s->tw_mu);
    pthread_mutex_unlock(&s->tw_mu);
}

pending_event *tw_add_event(term_group *g)
{
    if (g->event_count == g->event_cap) {
        g->event_cap = g->event_cap ? g->event_cap * 2 : 16384;
        g->events = mamori_xrealloc(g->events, g->event_cap * sizeof *g->events);
    }
    return &g->events[g->event_count++];
}

int tw_start(store *s)
{
    for (int i = 0; i < 2; i++) {
        buf_init(&s->tg[i].values);
        buf_init(&s->tg[i].scratch);
        s->tg[i].state = TG_FREE;
    }
    int rc = pthread_create(&s->tw_thread, NULL, term_worker_main, s);
    if (rc) return -rc;
    s->tw_started = true;
    return 0;
}

void tw_stop(store *s)
{
    if (s->tw_started) {
        tw_sync(s);
        pthread_mutex_lock(&s->tw_mu);
        s->tw_stop = true;
        pthread_cond_broadcast(&s->tw_cv);
        pthread_mutex_unlock(&s->tw_mu);
        pthread_join(s->tw_thread, NULL);
        s->tw_started = false;
    }
    for (int i = 0; i < 2; i++) {
        free(s->tg[i].events);
        free(s->tg[i].terms);
        buf_fini(&s->tg[i].values);
        buf_fini(&s->tg[i].scratch);
        memset(&s->tg[i], 0, sizeof s->tg[i]);
    }
}

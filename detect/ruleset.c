/* detect/ruleset.c — the rule set as a shared snapshot: reference counting, the owner's
 * slot that swaps snapshots, read-only accessors, and the JSON form of a rule for alerts.
 * A reader takes its reference under the slot's mutex (one short critical section per
 * batch), so a swap can never free a rule set between a reader's load and its ref. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

detect_ruleset *detect_ruleset_ref(detect_ruleset *rs)
{
    MAMORI_ASSERT(rs);
    unsigned before = atomic_fetch_add_explicit(&rs->refs, 1, memory_order_relaxed);
    MAMORI_ASSERT(before > 0);
    return rs;
}

void detect_ruleset_unref(detect_ruleset *rs)
{
    if (!rs) return;
    unsigned before = atomic_fetch_sub_explicit(&rs->refs, 1, memory_order_acq_rel);
    MAMORI_ASSERT(before > 0);
    if (before == 1) ruleset_free(rs);
}

size_t detect_ruleset_rule_count(const detect_ruleset *rs) { return rs->rule_count; }

const detect_rule *detect_ruleset_rule(const detect_ruleset *rs, size_t index)
{
    MAMORI_ASSERT(index < rs->rule_count);
    return rs->infos[index];
}

uint64_t detect_ruleset_generation(const detect_ruleset *rs) { return rs->generation; }

/* ---- slot --------------------------------------------------------------------------------------- */

struct detect_slot {
    pthread_mutex_t lock;
    detect_ruleset *current;
};

detect_slot *detect_slot_create(void)
{
    detect_slot *s = mamori_xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

void detect_slot_destroy(detect_slot *s)
{
    if (!s) return;
    detect_ruleset_unref(s->current);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void detect_slot_set(detect_slot *s, detect_ruleset *rs)
{
    pthread_mutex_lock(&s->lock);
    detect_ruleset *old = s->current;
    s->current = rs;
    pthread_mutex_unlock(&s->lock);
    detect_ruleset_unref(old); /* outside the lock: freeing may take a while */
}

detect_ruleset *detect_slot_get(detect_slot *s)
{
    pthread_mutex_lock(&s->lock);
    detect_ruleset *rs = s->current ? detect_ruleset_ref(s->current) : NULL;
    pthread_mutex_unlock(&s->lock);
    return rs;
}

/* ---- JSON --------------------------------------------------------------------------------------- */

static void put_key(buf *out, const char *key, bool first)
{
    if (!first) buf_putc(out, ',');
    json_write_string(out, key, strlen(key));
    buf_putc(out, ':');
}

static void put_string(buf *out, const char *key, const char *value)
{
    put_key(out, key, false);
    json_write_string(out, value, strlen(value));
}

void detect_rule_write_json(buf *out, const detect_rule *r)
{
    buf_putc(out, '{');
    put_key(out, "id", true);
    json_write_string(out, r->id, strlen(r->id));
    put_string(out, "title", r->title);
    put_string(out, "level", r->level_name);
    put_string(out, "status", r->status);
    put_key(out, "tags", false);
    buf_putc(out, '[');
    for (uint32_t i = 0; i < r->tag_count; i++) {
        if (i) buf_putc(out, ',');
        json_write_string(out, r->tags[i], strlen(r->tags[i]));
    }
    buf_putc(out, ']');
    put_key(out, "attack", false);
    buf_putc(out, '[');
    for (uint32_t i = 0; i < r->attack_count; i++) {
        if (i) buf_putc(out, ',');
        json_write_string(out, r->attack_ids[i], strlen(r->attack_ids[i]));
    }
    buf_putc(out, ']');
    put_string(out, "file", r->file);
    put_key(out, "line", false);
    buf_put_u64(out, r->line);
    if (r->x_mamori_json) {
        put_key(out, "x-mamori", false);
        buf_puts(out, r->x_mamori_json);
    }
    buf_putc(out, '}');
}

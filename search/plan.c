/* search/plan.c — choosing how to find the events of one event query: every top-level
 * conjunct on an indexed field with an equality, prefix or octet-aligned CIDR test is a
 * candidate; each is sized from its posting headers, the smallest is read whole, the others
 * narrow that set by marking (store_index_mark) when cheaper than the fetches they spare,
 * and the set's events are fetched and filtered. Without a small enough candidate the plan
 * streams the most selective one, or scans the time range. */
#include "internal.h"

#include "core/clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool env_deadline(exec_env *env)
{
    if (env->deadline_hit) return true;
    if (!env->deadline_mono_us) return false;
    if ((++env->tick & 255) != 0) return false;
    if (clock_mono_us() >= env->deadline_mono_us) env->deadline_hit = true;
    return env->deadline_hit;
}

static int field_rank(uint8_t f)
{
    switch (f) {
    case STORE_IX_PROCESS_ENTITY_ID:
    case STORE_IX_PROCESS_PARENT_ENTITY_ID:
    case STORE_IX_PROCESS_HASH:
    case STORE_IX_FILE_PATH: return 1;
    case STORE_IX_SOURCE_IP:
    case STORE_IX_DESTINATION_IP:
    case STORE_IX_DNS_QUESTION_NAME: return 2;
    case STORE_IX_HOST_ID:
    case STORE_IX_HOST_NAME:
    case STORE_IX_USER_NAME: return 3;
    case STORE_IX_PROCESS_EXECUTABLE:
    case STORE_IX_PROCESS_NAME: return 4;
    case STORE_IX_EVENT_CATEGORY: return 9;
    default: return 8;
    }
}

static void conjuncts(const node *n, const node **out, uint32_t *count, uint32_t max)
{
    if (n->kind == NODE_AND) {
        for (uint32_t i = 0; i < n->kid_count; i++) conjuncts(n->kids[i], out, count, max);
        return;
    }
    if (*count < max) out[(*count)++] = n;
}

/* Lookups answering a conjunct, or false when the index cannot. */
static bool candidate_for(const node *n, ix_candidate *c)
{
    if (n->kind != NODE_CMP || !n->field.index_field) return false;
    memset(c, 0, sizeof *c);
    c->pred = n;
    bool exact = true;
    ix_lookup *lk = mamori_xcalloc(n->lit_count, sizeof *lk);
    uint32_t count = 0;
    for (uint32_t i = 0; i < n->lit_count; i++) {
        const literal *l = &n->lits[i];
        ix_lookup x = {.field = n->field.index_field};
        switch (n->op) {
        case OP_EQ:
        case OP_IN:
            if (l->kind == LIT_NUMBER && l->is_int) {
                x.value = l->s;
                x.len = l->len;
            } else if (l->kind == LIT_STRING && l->len > 0 && !(l->is_ip && memchr(l->s, ':', l->len))) {
                x.value = l->s;
                x.len = l->len;
            } else {
                goto no;
            }
            if (!n->caseless) exact = false;
            break;
        case OP_WILDCARD:
        case OP_LIKE:
        case OP_STARTS: {
            if (l->kind != LIT_STRING || l->len == 0) goto no;
            const char *star = memchr(l->s, '*', l->len);
            if (n->op != OP_STARTS && memchr(l->s, '?', l->len)) goto no;
            if (n->op == OP_STARTS) {
                x.prefix = true;
                x.len = l->len;
            } else if (!star) {
                x.len = l->len;
            } else {
                size_t plen = (size_t)(star - l->s);
                for (size_t k = plen; k < l->len; k++)
                    if (l->s[k] != '*') goto no;
                if (plen == 0) goto no;
                x.prefix = true;
                x.len = (uint32_t)plen;
            }
            x.value = l->s;
            if (!n->caseless) exact = false;
            break;
        }
        case OP_CIDR: {
            if (n->field.index_field != STORE_IX_SOURCE_IP && n->field.index_field != STORE_IX_DESTINATION_IP) goto no;
            if (memcmp(l->ip, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) != 0) goto no;
            unsigned bits = l->cidr_bits >= 96 ? l->cidr_bits - 96u : 999u;
            if (bits == 0 || bits > 32 || bits % 8) goto no;
            char tmp[20];
            size_t n8 = bits / 8, w = 0;
            for (size_t k = 0; k < n8; k++) {
                w += (size_t)snprintf(tmp + w, sizeof tmp - w, "%u", l->ip[12 + k]);
                if (k + 1 < 4) tmp[w++] = '.';
            }
            if (n8 == 4) {
                x.prefix = false;
                x.len = (uint32_t)w;
            } else {
                x.prefix = true;
                x.len = (uint32_t)w;
            }
            /* lives as long as the query: keep a copy next to the candidate */
            char *copy = mamori_xmalloc(w + 1);
            memcpy(copy, tmp, w);
            copy[w] = '\0';
            x.value = copy;
            exact = false;
            break;
        }
        default: goto no;
        }
        lk[count++] = x;
    }
    c->lookups = lk;
    c->lookup_count = count;
    c->exact = exact;
    c->rank = field_rank(n->field.index_field);
    for (uint32_t i = 0; i < count; i++)
        if (lk[i].prefix) c->rank++;
    return true;
no:
    if (n->op == OP_CIDR)
        for (uint32_t i = 0; i < count; i++) free((char *)lk[i].value);
    free(lk);
    return false;
}

static void cand_free(ix_candidate *c)
{
    if (c->pred && c->pred->op == OP_CIDR)
        for (uint32_t i = 0; i < c->lookup_count; i++) free((char *)c->lookups[i].value);
    free(c->lookups);
    free(c->refs);
    memset(c, 0, sizeof *c);
}

void plan_fini(plan *p)
{
    for (uint32_t i = 0; i < p->cand_count; i++) cand_free(&p->cands[i]);
    free(p->set);
    memset(p, 0, sizeof *p);
}

typedef struct collect_ctx {
    exec_env *env;
    store_event_ref *refs;
    size_t count, cap, limit;
    bool over;
} collect_ctx;

static int collect_ref(void *arg, const store_event_ref *ref)
{
    collect_ctx *c = arg;
    c->env->st->refs_read++;
    if (env_deadline(c->env)) return 1;
    if (c->count == c->limit) {
        c->over = true;
        return 1;
    }
    if (c->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->refs = mamori_xrealloc(c->refs, c->cap * sizeof *c->refs);
    }
    c->refs[c->count++] = *ref;
    return 0;
}

static int ref_cmp(const void *a, const void *b) { return search_ref_cmp(a, b); }

/* Reads up to cap refs of the candidate (union of its lookups). */
static int cand_sample(exec_env *env, ix_candidate *c, int64_t from_us, int64_t to_us, size_t cap)
{
    collect_ctx cc = {.env = env, .limit = cap};
    for (uint32_t i = 0; i < c->lookup_count && !cc.over && !env->deadline_hit; i++) {
        const ix_lookup *l = &c->lookups[i];
        int rc = store_index_lookup(env->s, env->tenant, (enum store_index_field)l->field, l->value, l->len, l->prefix,
                                    from_us, to_us, collect_ref, &cc);
        if (rc < 0 && rc != -E2BIG) {
            free(cc.refs);
            return set_error(env->err, SEARCH_ERR_INTERNAL, -1, "index lookup failed: %d", rc);
        }
        if (rc == -E2BIG) cc.over = true;
    }
    if (c->lookup_count > 1 && cc.count > 1) {
        qsort(cc.refs, cc.count, sizeof *cc.refs, ref_cmp);
        size_t w = 1;
        for (size_t r = 1; r < cc.count; r++)
            if (search_ref_cmp(&cc.refs[r], &cc.refs[w - 1]) != 0) cc.refs[w++] = cc.refs[r];
        cc.count = w;
    }
    c->refs = cc.refs;
    c->ref_count = cc.count;
    c->complete = !cc.over && !env->deadline_hit;
    return 0;
}

int cand_stream(exec_env *env, const ix_candidate *c, int64_t from_us, int64_t to_us, store_ref_fn fn, void *ctx)
{
    MAMORI_ASSERT(c->lookup_count == 1);
    const ix_lookup *l = &c->lookups[0];
    int rc = store_index_lookup(env->s, env->tenant, (enum store_index_field)l->field, l->value, l->len, l->prefix,
                                from_us, to_us, fn, ctx);
    if (rc == -E2BIG)
        return set_error(env->err, SEARCH_ERR_TOO_LARGE, (int32_t)c->pred->pos,
                         "the prefix at offset %u matches too many values for one day; make it longer", c->pred->pos);
    if (rc < 0) return set_error(env->err, SEARCH_ERR_INTERNAL, -1, "index lookup failed: %d", rc);
    return 0;
}

static size_t intersect(store_event_ref *a, size_t na, const store_event_ref *b, size_t nb)
{
    size_t i = 0, j = 0, w = 0;
    while (i < na && j < nb) {
        int c = search_ref_cmp(&a[i], &b[j]);
        if (c == 0) {
            a[w++] = a[i];
            i++;
            j++;
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    return w;
}

/* The candidate's size from posting headers (an upper bound; cap + 1 when over cap). */
static int cand_estimate(exec_env *env, ix_candidate *c, int64_t from_us, int64_t to_us, uint64_t cap)
{
    c->estimate = 0;
    for (uint32_t i = 0; i < c->lookup_count && c->estimate <= cap; i++) {
        const ix_lookup *l = &c->lookups[i];
        uint64_t n = 0;
        int rc = store_index_estimate(env->s, env->tenant, (enum store_index_field)l->field, l->value, l->len,
                                      l->prefix, from_us, to_us, cap - c->estimate, &n);
        if (rc) return set_error(env->err, SEARCH_ERR_INTERNAL, -1, "index estimate failed: %d", rc);
        c->estimate += n;
    }
    if (c->estimate > cap) c->estimate = cap + 1;
    return 0;
}

/* Narrows keep[] (set[0..n), sorted) to the refs the candidate's index lookups hold.
 * Returns 1 when the index cannot decide (a prefix longer than keys keep): keep untouched. */
static int cand_mark(exec_env *env, const ix_candidate *c, int64_t from_us, int64_t to_us, const store_event_ref *set,
                     size_t n, bool *keep, bool *hit)
{
    memset(hit, 0, n * sizeof *hit);
    for (uint32_t i = 0; i < c->lookup_count; i++) {
        const ix_lookup *l = &c->lookups[i];
        int rc = store_index_mark(env->s, env->tenant, (enum store_index_field)l->field, l->value, l->len, l->prefix,
                                  from_us, to_us, set, n, hit);
        if (rc == -ENOTSUP) return 1;
        if (rc) return set_error(env->err, SEARCH_ERR_INTERNAL, -1, "index lookup failed: %d", rc);
    }
    env->st->refs_read += n;
    for (size_t k = 0; k < n; k++) keep[k] = keep[k] && hit[k];
    return 0;
}

static int cand_order(const void *x, const void *y)
{
    const ix_candidate *a = x, *b = y;
    if (a->estimate != b->estimate) return a->estimate < b->estimate ? -1 : 1;
    return a->rank - b->rank;
}

static void plan_candidates(const event_query *q, plan *p)
{
    const node *conj[64];
    uint32_t nconj = 0;
    if (q->category_node) conj[nconj++] = q->category_node;
    conjuncts(q->cond, conj, &nconj, MAMORI_ARRAY_LEN(conj));
    p->conjunct_count = nconj;
    bool all_exact = true;
    for (uint32_t i = 0; i < nconj; i++) {
        if (conj[i]->kind == NODE_CONST && conj[i]->value) continue;
        ix_candidate c;
        if (p->cand_count < PLAN_MAX_CANDIDATES && candidate_for(conj[i], &c)) {
            if (!c.exact) all_exact = false;
            p->cands[p->cand_count++] = c;
        } else {
            all_exact = false;
        }
    }
    p->all_exact = all_exact && p->cand_count > 0;
}

int plan_build(exec_env *env, const event_query *q, int64_t from_us, int64_t to_us, size_t sample_cap,
               bool apply_all, plan *p)
{
    memset(p, 0, sizeof *p);
    plan_candidates(q, p);
    if (p->cand_count == 0) {
        p->kind = PLAN_SCAN;
        return 0;
    }
    /* sizes from posting headers: no list is read before the smallest is known */
    uint64_t cap = env->lim->max_candidates;
    for (uint32_t i = 0; i < p->cand_count; i++) {
        int rc = cand_estimate(env, &p->cands[i], from_us, to_us, cap);
        if (rc) return rc;
    }
    qsort(p->cands, p->cand_count, sizeof p->cands[0], cand_order);
    ix_candidate *best = &p->cands[0];
    if (best->estimate <= sample_cap) {
        int rc = cand_sample(env, best, from_us, to_us, cap);
        if (rc) return rc;
    }
    if (env->deadline_hit) return 0;
    if (best->complete) {
        p->kind = PLAN_INDEX_SET;
        p->set = best->refs;
        p->set_count = best->ref_count;
        best->refs = NULL;
        p->intersected = 1;
        bool *keep = NULL, *hit = NULL;
        for (uint32_t i = 1; i < p->cand_count && p->set_count > 0; i++) {
            ix_candidate *c = &p->cands[i];
            /* decoding PLAN_MARK_PER_FETCH references costs about one event fetch */
            if (!apply_all && c->estimate / PLAN_MARK_PER_FETCH >= p->set_count) continue;
            if (!keep) {
                keep = mamori_xmalloc(p->set_count * sizeof *keep);
                hit = mamori_xmalloc(p->set_count * sizeof *hit);
            }
            for (size_t k = 0; k < p->set_count; k++) keep[k] = true;
            int rc = cand_mark(env, c, from_us, to_us, p->set, p->set_count, keep, hit);
            if (rc < 0) {
                free(keep);
                free(hit);
                return rc;
            }
            if (rc == 1) {
                /* the index cannot decide this one without reading it: intersect a full read */
                if (c->estimate > cap) continue;
                rc = cand_sample(env, c, from_us, to_us, cap);
                if (rc) {
                    free(keep);
                    free(hit);
                    return rc;
                }
                if (!c->complete) continue;
                p->set_count = intersect(p->set, p->set_count, c->refs, c->ref_count);
            } else {
                size_t w = 0;
                for (size_t k = 0; k < p->set_count; k++)
                    if (keep[k]) p->set[w++] = p->set[k];
                p->set_count = w;
            }
            c->applied = true;
            p->intersected++;
        }
        /* an empty set holds every test vacuously */
        p->all_applied = p->intersected == p->cand_count || p->set_count == 0;
        free(keep);
        free(hit);
        return 0;
    }
    /* nothing small enough to read whole: stream the most selective single-lookup
     * candidate, unless the best is the category (a scan with the prefilter reads those
     * events faster) */
    for (uint32_t i = 0; i < p->cand_count; i++) {
        if (p->cands[i].lookup_count == 1 && p->cands[i].rank < 9) {
            p->kind = PLAN_INDEX_STREAM;
            p->stream_cand = (int)i;
            return 0;
        }
    }
    p->kind = PLAN_SCAN;
    return 0;
}

int plan_mark_set(exec_env *env, const event_query *q, int64_t from_us, int64_t to_us, const store_event_ref *set,
                  size_t n, bool *keep)
{
    plan p;
    memset(&p, 0, sizeof p);
    plan_candidates(q, &p);
    bool *hit = mamori_xmalloc((n ? n : 1) * sizeof *hit);
    int rc = 0;
    for (uint32_t i = 0; i < p.cand_count && rc >= 0; i++) {
        rc = cand_estimate(env, &p.cands[i], from_us, to_us, env->lim->max_candidates);
        if (rc) break;
        /* a list far larger than the set costs more to decode than the fetches it spares */
        if (p.cands[i].estimate / PLAN_MARK_PER_FETCH >= n && p.cands[i].estimate > env->lim->max_candidates)
            continue;
        rc = cand_mark(env, &p.cands[i], from_us, to_us, set, n, keep, hit);
        if (rc == 1) rc = 0;
    }
    free(hit);
    plan_fini(&p);
    return rc;
}

static const char *field_name(uint8_t f)
{
    const char *n = store_index_field_name((enum store_index_field)f);
    return n ? n : "?";
}

void plan_explain(const plan *p, buf *out)
{
    static const char *const kinds[] = {"scan", "index_stream", "index_set"};
    buf_printf(out, "{\"kind\":\"%s\",\"all_exact\":%s,\"candidates\":[", kinds[p->kind],
               p->all_exact ? "true" : "false");
    for (uint32_t i = 0; i < p->cand_count; i++) {
        const ix_candidate *c = &p->cands[i];
        if (i) buf_putc(out, ',');
        buf_printf(out, "{\"field\":");
        json_write_string(out, field_name(c->lookups[0].field), strlen(field_name(c->lookups[0].field)));
        buf_puts(out, ",\"lookups\":[");
        for (uint32_t k = 0; k < c->lookup_count; k++) {
            if (k) buf_putc(out, ',');
            buf_puts(out, "{\"value\":");
            json_write_string(out, c->lookups[k].value, c->lookups[k].len);
            buf_printf(out, ",\"prefix\":%s}", c->lookups[k].prefix ? "true" : "false");
        }
        buf_printf(out, "],\"offset\":%u,\"exact\":%s,\"rank\":%d,\"estimate\":%llu,\"sampled\":%zu,\"complete\":%s",
                   c->pred->pos, c->exact ? "true" : "false", c->rank, (unsigned long long)c->estimate, c->ref_count,
                   c->complete ? "true" : "false");
        if (c->applied) buf_puts(out, ",\"marked\":true");
        if (p->kind == PLAN_INDEX_STREAM && (int)i == p->stream_cand) buf_puts(out, ",\"streamed\":true");
        buf_putc(out, '}');
    }
    buf_puts(out, "]");
    if (p->kind == PLAN_INDEX_SET) buf_printf(out, ",\"intersected\":%u,\"set\":%zu", p->intersected, p->set_count);
    buf_putc(out, '}');
}

/* detect/correlate_wire.c — a base match for one correlation as bytes: what a detect worker
 * would publish to `mamori.matches`, keyed by tenant and group-by value, so that the worker
 * owning that key feeds it to its engine (docs/detection.md §11.8). One message per target
 * (a match of a rule several correlations use may go to several workers). The correlation is
 * named by its id (title when none) and type, not by its position, so sender and receiver
 * may run different generations of the rule set. Little-endian, versioned:
 *
 *   "MCMT" u32 version  i64 time  u8 chained  str correlation-key  u32 type  u32 pos
 *   u8 missing  u8 numeric  u64 number-bits  u64 value-hash  str group-key
 *   u8 has-value [str value]  u32 id-count  str ids (each NUL-terminated)
 *   where str = u32 length + bytes. */
#include "correlate_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char MAGIC[4] = {'M', 'C', 'M', 'T'};
#define WIRE_VERSION 1u
#define WIRE_STR_MAX (16u << 20)


size_t correlate_match_target_count(const correlate_match *m) { return m ? m->target_count : 0; }

const correlate_rule *correlate_match_target(const correlate_set *set, const correlate_match *m, size_t target,
                                             const char **group_key, size_t *group_key_len)
{
    MAMORI_ASSERT(target < m->target_count);
    const struct mtarget *t = &m->targets[target];
    *group_key = t->missing ? NULL : m->blob.data + t->key_off;
    *group_key_len = t->missing ? 0 : t->key_len;
    return &set->corrs[t->corr]->pub;
}

static size_t ids_len(const correlate_match *m)
{
    size_t n = 0;
    for (uint32_t i = 0; i < m->id_count; i++) n += strlen(m->blob.data + n) + 1;
    return n;
}

void correlate_match_encode(const correlate_set *set, const correlate_match *m, size_t target, buf *out)
{
    MAMORI_ASSERT(target < m->target_count);
    const struct mtarget *t = &m->targets[target];
    const correlate_rule *r = &set->corrs[t->corr]->pub;
    buf_append(out, MAGIC, 4);
    corr_put_u32(out, WIRE_VERSION);
    corr_put_u64(out, (uint64_t)m->time_us);
    corr_put_u8(out, m->chained);
    corr_put_str(out, corr_rule_key(r), strlen(corr_rule_key(r)));
    corr_put_u32(out, (uint32_t)r->type);
    corr_put_u32(out, t->pos);
    corr_put_u8(out, t->missing);
    corr_put_u8(out, t->numeric);
    uint64_t bits;
    memcpy(&bits, &t->number, sizeof bits);
    corr_put_u64(out, bits);
    corr_put_u64(out, t->value_hash);
    corr_put_str(out, t->missing ? "" : m->blob.data + t->key_off, t->missing ? 0 : t->key_len);
    bool has_value = !t->missing && t->value_off != UINT32_MAX;
    corr_put_u8(out, has_value);
    if (has_value) corr_put_str(out, m->blob.data + t->value_off, t->value_len);
    corr_put_u32(out, m->id_count);
    corr_put_str(out, m->blob.data, ids_len(m));
}

int correlate_match_decode(const correlate_set *set, const void *data, size_t len, correlate_match **out)
{
    *out = NULL;
    struct corr_reader r = {.p = data, .end = (const uint8_t *)data + len};
    if (len < 8 || memcmp(data, MAGIC, 4) != 0) return -EINVAL;
    r.p += 4;
    if (corr_get_n(&r, 4) != WIRE_VERSION) return -EINVAL;
    int64_t time_us = (int64_t)corr_get_n(&r, 8);
    uint8_t chained = (uint8_t)corr_get_n(&r, 1);
    uint32_t key_len;
    const char *key = corr_get_str(&r, &key_len, WIRE_STR_MAX);
    uint32_t type = (uint32_t)corr_get_n(&r, 4), pos = (uint32_t)corr_get_n(&r, 4);
    uint8_t missing = (uint8_t)corr_get_n(&r, 1), numeric = (uint8_t)corr_get_n(&r, 1);
    uint64_t bits = corr_get_n(&r, 8), value_hash = corr_get_n(&r, 8);
    uint32_t group_len, value_len = 0, ids_bytes;
    const char *group = corr_get_str(&r, &group_len, WIRE_STR_MAX);
    uint8_t has_value = (uint8_t)corr_get_n(&r, 1);
    const char *value = has_value ? corr_get_str(&r, &value_len, WIRE_STR_MAX) : NULL;
    uint32_t id_count = (uint32_t)corr_get_n(&r, 4);
    const char *ids = corr_get_str(&r, &ids_bytes, WIRE_STR_MAX);
    if (r.bad || r.p != r.end || chained > 1 || missing > 1 || numeric > 1 || has_value > 1) return -EINVAL;
    /* the ids: id_count NUL-terminated strings filling ids_bytes exactly */
    uint32_t seen = 0;
    for (uint32_t i = 0; i < ids_bytes; i++) seen += ids[i] == '\0';
    if (id_count == 0 || seen != id_count || ids[ids_bytes - 1] != '\0') return -EINVAL;
    if (time_us < -((int64_t)1 << 62) || time_us > ((int64_t)1 << 62)) return -EINVAL;
    double number;
    memcpy(&number, &bits, sizeof number);
    if (numeric && !isfinite(number)) return -EINVAL;
    /* the correlation, by key and type, in this set */
    uint32_t corr = UINT32_MAX;
    for (uint32_t c = 0; c < set->count && corr == UINT32_MAX; c++) {
        const correlate_rule *cr = &set->corrs[c]->pub;
        const char *k = corr_rule_key(cr);
        if (strlen(k) == key_len && !memcmp(k, key, key_len) && (uint32_t)cr->type == type) corr = c;
    }
    if (corr == UINT32_MAX) return -ENOENT;
    const correlate_rule *cr = &set->corrs[corr]->pub;
    if (pos >= cr->rule_count) return -EINVAL;
    correlate_match *m = mamori_xcalloc(1, sizeof *m);
    m->time_us = time_us;
    m->chained = chained;
    m->targets = mamori_xcalloc(1, sizeof *m->targets);
    m->target_count = 1;
    buf_init(&m->blob);
    buf_append(&m->blob, ids, ids_bytes);
    m->id_count = id_count;
    struct mtarget *t = &m->targets[0];
    t->corr = corr;
    t->pos = pos;
    t->missing = missing;
    t->numeric = numeric;
    t->number = number;
    t->value_hash = value_hash;
    t->key_off = (uint32_t)m->blob.len;
    buf_append(&m->blob, group, group_len);
    t->key_len = group_len;
    t->value_off = UINT32_MAX;
    if (has_value) {
        t->value_off = (uint32_t)m->blob.len;
        buf_append(&m->blob, value, value_len);
        t->value_len = value_len;
    }
    *out = m;
    return 0;
}

/* ---- the origin envelope: "MCMO" u32 version  str tenant  str agent  u8 has-host-id [str]
 *      u8 has-host-name [str]  u64 agent-hash  u64 seq  u32 index  i64 ts  i64 received ---- */

static const char ORIGIN_MAGIC[4] = {'M', 'C', 'M', 'O'};
#define ORIGIN_VERSION 1u

static void put_opt_str(buf *b, const char *s, size_t len)
{
    corr_put_u8(b, s != NULL);
    if (s) corr_put_str(b, s, len);
}

void correlate_origin_encode(const correlate_origin *o, buf *out)
{
    buf_append(out, ORIGIN_MAGIC, 4);
    corr_put_u32(out, ORIGIN_VERSION);
    corr_put_str(out, o->tenant, o->tenant_len);
    corr_put_str(out, o->agent_id, o->agent_id_len);
    put_opt_str(out, o->host_id, o->host_id_len);
    put_opt_str(out, o->host_name, o->host_name_len);
    corr_put_u64(out, o->agent_hash);
    corr_put_u64(out, o->seq);
    corr_put_u32(out, o->index);
    corr_put_u64(out, (uint64_t)o->ts_us);
    corr_put_u64(out, (uint64_t)o->received_us);
}

static const char *get_opt_str(struct corr_reader *r, size_t *len)
{
    uint8_t has = (uint8_t)corr_get_n(r, 1);
    *len = 0;
    if (has > 1) r->bad = true;
    if (has != 1 || r->bad) return NULL;
    uint32_t l;
    const char *s = corr_get_str(r, &l, WIRE_STR_MAX);
    *len = l;
    return s;
}

int correlate_origin_decode(const void *data, size_t len, correlate_origin *o)
{
    memset(o, 0, sizeof *o);
    struct corr_reader r = {.p = data, .end = (const uint8_t *)data + len};
    if (!data || len < 8 || memcmp(data, ORIGIN_MAGIC, 4) != 0) return -EINVAL;
    r.p += 4;
    if (corr_get_n(&r, 4) != ORIGIN_VERSION) return -EINVAL;
    uint32_t tl, al;
    o->tenant = corr_get_str(&r, &tl, WIRE_STR_MAX);
    o->agent_id = corr_get_str(&r, &al, WIRE_STR_MAX);
    o->tenant_len = tl;
    o->agent_id_len = al;
    o->host_id = get_opt_str(&r, &o->host_id_len);
    o->host_name = get_opt_str(&r, &o->host_name_len);
    o->agent_hash = corr_get_n(&r, 8);
    o->seq = corr_get_n(&r, 8);
    o->index = (uint32_t)corr_get_n(&r, 4);
    o->ts_us = (int64_t)corr_get_n(&r, 8);
    o->received_us = (int64_t)corr_get_n(&r, 8);
    if (r.bad || r.p != r.end || tl == 0 || al == 0 || memchr(o->tenant, '\0', tl) || memchr(o->agent_id, '\0', al)) {
        memset(o, 0, sizeof *o);
        return -EINVAL;
    }
    return 0;
}

void correlate_match_record_key(const char *tenant, const char *group_key, size_t group_key_len, buf *out)
{
    buf_puts(out, tenant);
    corr_put_u8(out, 0x1F);
    if (group_key_len) buf_append(out, group_key, group_key_len);
}

bool correlate_rule_grouped_by_host(const correlate_rule *r)
{
    static const char *const host_fields[] = {"host.id", "host.name", "mamori.agent_id", "Computer", "Hostname",
                                              "ComputerName"};
    for (uint32_t g = 0; g < r->group_count; g++)
        for (size_t i = 0; i < MAMORI_ARRAY_LEN(host_fields); i++)
            if (!strcmp(r->group_by[g], host_fields[i])) return true;
    return false;
}

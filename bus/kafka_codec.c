/* bus/kafka_codec.c — the Kafka message of one agent batch (docs/kafka.md "Message format").
 * Encoding writes the events' canonical ECS JSON as NDJSON plus identity headers; decoding
 * parses and normalizes the lines again (normalizing normalized ECS gives the same event,
 * as start-up re-detection relies on too) and takes each event's storage position from the
 * event-keys header, so a batch read back from Kafka lands on exactly the keys the original
 * would have: redelivery overwrites, never duplicates. */
#include "kafka_codec.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"

static const char *arena_u64(arena *a, uint64_t v, size_t *len)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    MAMORI_ASSERT(n > 0 && (size_t)n < sizeof tmp);
    *len = (size_t)n;
    return arena_memdup(a, tmp, (size_t)n);
}

static const char *arena_i64(arena *a, int64_t v, size_t *len)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    MAMORI_ASSERT(n > 0 && (size_t)n < sizeof tmp);
    *len = (size_t)n;
    return arena_memdup(a, tmp, (size_t)n);
}

static void add_header(kafka_message *m, const char *name, const void *value, size_t len)
{
    MAMORI_ASSERT(m->header_count < KAFKA_HEADERS_MAX);
    m->headers[m->header_count++] = (kafka_header){name, value, len};
}

void kafka_encode_batch(bus_batch *b, kafka_message *out)
{
    memset(out, 0, sizeof *out);
    arena *a = &b->arena;
    size_t tenant_len = strlen(b->tenant), agent_len = strlen(b->agent_id);
    char *key = arena_alloc(a, tenant_len + 1 + agent_len);
    memcpy(key, b->tenant, tenant_len);
    key[tenant_len] = '/';
    memcpy(key + tenant_len + 1, b->agent_id, agent_len);
    out->key = key;
    out->key_len = tenant_len + 1 + agent_len;

    size_t value_len = 0;
    for (uint32_t i = 0; i < b->event_count; i++) value_len += (size_t)b->events[i].json_len + 1;
    char *value = value_len ? arena_alloc(a, value_len) : NULL;
    uint8_t *keys = b->event_count ? arena_alloc(a, (size_t)b->event_count * KAFKA_EVENT_KEY_BYTES) : NULL;
    size_t pos = 0;
    for (uint32_t i = 0; i < b->event_count; i++) {
        const mamori_event *ev = &b->events[i];
        memcpy(value + pos, ev->json, ev->json_len);
        pos += ev->json_len;
        value[pos++] = '\n';
        mamori_put_be32(keys + (size_t)i * KAFKA_EVENT_KEY_BYTES, ev->index);
        mamori_put_be64(keys + (size_t)i * KAFKA_EVENT_KEY_BYTES + 4, (uint64_t)ev->ts_us);
    }
    MAMORI_ASSERT(pos == value_len);
    out->value = value;
    out->value_len = value_len;

    size_t len;
    const char *v;
    add_header(out, KAFKA_HEADER_TENANT, b->tenant, tenant_len);
    add_header(out, KAFKA_HEADER_AGENT, b->agent_id, agent_len);
    v = arena_u64(a, b->seq, &len);
    add_header(out, KAFKA_HEADER_SEQ, v, len);
    v = arena_i64(a, b->received_us, &len);
    add_header(out, KAFKA_HEADER_RECEIVED, v, len);
    v = arena_u64(a, b->rejected_count, &len);
    add_header(out, KAFKA_HEADER_REJECTED, v, len);
    add_header(out, KAFKA_HEADER_FORMAT, "ecs", 3);
    add_header(out, KAFKA_HEADER_EVENT_KEYS, keys, (size_t)b->event_count * KAFKA_EVENT_KEY_BYTES);
}

int64_t kafka_timestamp_us(int64_t timestamp_ms)
{
    return timestamp_ms > 0 && timestamp_ms <= INT64_MAX / 1000 ? timestamp_ms * 1000 : 0;
}

void kafka_decoder_init(kafka_decoder *d, uint32_t max_events, size_t max_value_bytes, int64_t max_past_us,
                        int64_t max_future_us)
{
    d->parser = json_parser_create();
    d->norm = normalizer_create();
    d->max_events = max_events;
    d->max_value_bytes = max_value_bytes;
    d->max_past_us = max_past_us;
    d->max_future_us = max_future_us;
    d->reread_failures = 0;
}

void kafka_decoder_fini(kafka_decoder *d)
{
    json_parser_destroy(d->parser);
    normalizer_destroy(d->norm);
}

/* The last header of that name (Kafka allows repeats; the last one wins). */
static const kafka_header *find_header(const kafka_message *m, const char *name)
{
    for (uint32_t i = m->header_count; i-- > 0;)
        if (!strcmp(m->headers[i].name, name)) return &m->headers[i];
    return NULL;
}

static int parse_decimal(const kafka_header *h, bool allow_negative, int64_t *out)
{
    if (!h || h->value_len == 0 || h->value_len > 20) return -EINVAL;
    const char *s = h->value;
    size_t i = 0;
    bool negative = false;
    if (allow_negative && s[0] == '-') {
        negative = true;
        i = 1;
        if (h->value_len == 1) return -EINVAL;
    }
    uint64_t v = 0;
    for (; i < h->value_len; i++) {
        if (s[i] < '0' || s[i] > '9') return -EINVAL;
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(s[i] - '0')) / 10) return -ERANGE;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = negative ? -(int64_t)v : (int64_t)v;
    return 0;
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

static int fail(char *err, size_t err_len, const char *what)
{
    snprintf(err, err_len, "%s", what);
    return -EINVAL;
}

/* tenant and agent: headers, else the key "tenant/agent". Copied into the arena. */
static int decode_identity(const kafka_message *m, bus_batch *b, char *err, size_t err_len)
{
    const kafka_header *t = find_header(m, KAFKA_HEADER_TENANT), *a = find_header(m, KAFKA_HEADER_AGENT);
    const char *tenant = NULL, *agent = NULL;
    size_t tenant_len = 0, agent_len = 0;
    if (t && a) {
        tenant = t->value;
        tenant_len = t->value_len;
        agent = a->value;
        agent_len = a->value_len;
    } else if (m->key) {
        const char *slash = memchr(m->key, '/', m->key_len);
        if (slash) {
            tenant = m->key;
            tenant_len = (size_t)(slash - m->key);
            agent = slash + 1;
            agent_len = m->key_len - tenant_len - 1;
        }
    }
    if (!tenant) return fail(err, err_len, "no tenant and agent (headers mamori.tenant/mamori.agent or key tenant/agent)");
    if (tenant_len == 0 || tenant_len > 64 || memchr(tenant, '\0', tenant_len))
        return fail(err, err_len, "tenant must be 1-64 bytes without NUL");
    if (agent_len == 0 || agent_len > 128 || memchr(agent, '\0', agent_len))
        return fail(err, err_len, "agent id must be 1-128 bytes without NUL");
    b->tenant = arena_strndup(&b->arena, tenant, tenant_len);
    b->agent_id = arena_strndup(&b->arena, agent, agent_len);
    b->tenant_hash = event_tenant_hash(b->tenant);
    b->agent_hash = event_agent_hash(b->tenant, b->agent_id);
    return 0;
}

int kafka_decode_batch(kafka_decoder *d, const kafka_message *m, bus_batch *b, char *err, size_t err_len)
{
    int rc = decode_identity(m, b, err, err_len);
    if (rc) return rc;
    int64_t v;
    const kafka_header *h = find_header(m, KAFKA_HEADER_SEQ);
    if (h) {
        if (parse_decimal(h, false, &v) || v < 1) return fail(err, err_len, "mamori.seq must be a decimal >= 1");
        b->seq = (uint64_t)v;
    } else {
        if (m->offset < 0) return fail(err, err_len, "no mamori.seq and no offset");
        b->seq = (uint64_t)m->offset + 1;
    }
    h = find_header(m, KAFKA_HEADER_RECEIVED);
    if (h) {
        if (parse_decimal(h, false, &v)) return fail(err, err_len, "mamori.received_us must be a decimal >= 0");
        b->received_us = v;
    } else {
        b->received_us = m->timestamp_us > 0 ? m->timestamp_us : clock_wall_us();
    }
    h = find_header(m, KAFKA_HEADER_REJECTED);
    if (h) {
        /* lines that do not normalize are added to it: leave room for a whole batch of them,
         * so the count cannot wrap around to a small number */
        if (parse_decimal(h, false, &v) || v > (int64_t)(UINT32_MAX - d->max_events))
            return fail(err, err_len, "mamori.rejected must be a decimal <= 2^32 - 1 - ingest.max_batch_events");
        b->rejected_count = (uint32_t)v;
    }
    enum event_format format = EVENT_FORMAT_ECS;
    h = find_header(m, KAFKA_HEADER_FORMAT);
    if (h) {
        char name[16];
        if (h->value_len >= sizeof name) return fail(err, err_len, "mamori.format must be ecs, winlog or auto");
        memcpy(name, h->value, h->value_len);
        name[h->value_len] = '\0';
        if (event_format_parse(name, &format)) return fail(err, err_len, "mamori.format must be ecs, winlog or auto");
    }
    if (m->value_len > d->max_value_bytes) return fail(err, err_len, "value larger than the largest message allowed");

    /* the DOM borrows the text: it must live in the batch arena */
    char *text = arena_alloc(&b->arena, m->value_len + 1);
    if (m->value_len) memcpy(text, m->value, m->value_len);
    text[m->value_len] = '\0';
    size_t len = m->value_len;
    size_t lines = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (!blank(p, n)) lines++;
        p = nl ? nl + 1 : end;
    }
    if (lines > d->max_events) return fail(err, err_len, "more events than ingest.max_batch_events");
    const kafka_header *keys = find_header(m, KAFKA_HEADER_EVENT_KEYS);
    if (keys && keys->value_len != lines * KAFKA_EVENT_KEY_BYTES)
        return fail(err, err_len, "mamori.event_keys is not 12 bytes per event line");
    b->events = lines ? arena_alloc(&b->arena, lines * sizeof *b->events) : NULL;
    event_stamp stamp = {
        .tenant = b->tenant,
        .agent_id = b->agent_id,
        .agent_hash = b->agent_hash,
        .seq = b->seq,
        .received_us = b->received_us < 0 ? 0 : b->received_us,
        /* with keys, the time was settled by whoever made them: taken as given below */
        .max_past_us = keys ? 0 : d->max_past_us,
        .max_future_us = keys ? 0 : d->max_future_us,
    };
    uint32_t line_no = 0, k = 0;
    char why[160];
    for (const char *p = text, *end = text + len; p < end; line_no++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *line = p;
        p = nl ? nl + 1 : end;
        if (blank(line, n)) continue;
        uint32_t index = line_no;
        int64_t ts_us = 0;
        if (keys) {
            const uint8_t *kp = (const uint8_t *)keys->value + (size_t)k * KAFKA_EVENT_KEY_BYTES;
            index = mamori_get_be32(kp);
            ts_us = (int64_t)mamori_get_be64(kp + 4);
        }
        k++;
        json_value root;
        json_error jerr;
        mamori_event *ev = &b->events[b->event_count];
        if (json_parse(d->parser, &b->arena, line, n, &root, &jerr) != 0 ||
            normalize_event(d->norm, &b->arena, format, &root, &stamp, index, ev, why, sizeof why) != 0) {
            b->rejected_count++;
            if (keys) d->reread_failures++;
            continue;
        }
        if (keys) ev->ts_us = ts_us;
        b->event_count++;
    }
    return 0;
}

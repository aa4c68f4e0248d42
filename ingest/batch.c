/* ingest/batch.c — one EVENTS frame to one bus batch: zstd with a hard output limit (a
 * "zstd bomb" stops at max_batch_bytes), NDJSON split by line so a bad line is rejected
 * alone, each event parsed and normalized into the batch's arena, and the ACK payload
 * prepared for when the batch is durable. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"

#define BATCH_ARENA_CHUNK (256u * 1024)

static int decompress(ingest_thread *t, bus_batch *b, const uint8_t *src, size_t src_len, uint32_t max_out,
                      char **out, size_t *out_len, char *reason, size_t reason_len)
{
    unsigned long long size = ZSTD_getFrameContentSize(src, src_len);
    if (size == ZSTD_CONTENTSIZE_ERROR) {
        snprintf(reason, reason_len, "zstd: payload is not a zstd frame");
        return -EPROTO;
    }
    if (size != ZSTD_CONTENTSIZE_UNKNOWN) {
        if (size > max_out) {
            snprintf(reason, reason_len, "zstd: decompressed size %llu over max %u", size, max_out);
            return -EPROTO;
        }
        size_t frame_len = ZSTD_findFrameCompressedSize(src, src_len);
        if (ZSTD_isError(frame_len) || frame_len != src_len) {
            snprintf(reason, reason_len, "zstd: payload must be exactly one complete frame");
            return -EPROTO;
        }
        char *dst = arena_alloc(&b->arena, (size_t)size + 1);
        size_t got = ZSTD_decompressDCtx(t->zstd, dst, (size_t)size, src, src_len);
        if (ZSTD_isError(got) || got != size) {
            snprintf(reason, reason_len, "zstd: %s", ZSTD_isError(got) ? ZSTD_getErrorName(got) : "size mismatch");
            return -EPROTO;
        }
        *out = dst;
        *out_len = got;
        return 0;
    }
    /* Unknown size: stream into a growing buffer, never past max_out. */
    ZSTD_DCtx_reset(t->zstd, ZSTD_reset_session_only);
    size_t cap = src_len * 4 < 65536 ? 65536 : src_len * 4;
    if (cap > max_out) cap = max_out;
    char *dst = arena_alloc(&b->arena, cap);
    ZSTD_inBuffer in = {src, src_len, 0};
    ZSTD_outBuffer o = {dst, cap, 0};
    for (;;) {
        size_t ret = ZSTD_decompressStream(t->zstd, &o, &in);
        if (ZSTD_isError(ret)) {
            snprintf(reason, reason_len, "zstd: %s", ZSTD_getErrorName(ret));
            return -EPROTO;
        }
        if (ret == 0) {
            if (in.pos != in.size) {
                snprintf(reason, reason_len, "zstd: payload must be exactly one complete frame");
                return -EPROTO;
            }
            break;
        }
        if (o.pos == o.size) {
            if (o.size >= max_out) {
                snprintf(reason, reason_len, "zstd: decompressed size over max %u", max_out);
                return -EPROTO;
            }
            size_t ncap = o.size * 2 > max_out ? max_out : o.size * 2;
            dst = arena_grow(&b->arena, dst, o.size, ncap);
            o.dst = dst;
            o.size = ncap;
            continue;
        }
        if (in.pos == in.size) {
            snprintf(reason, reason_len, "zstd: truncated frame");
            return -EPROTO;
        }
    }
    *out = dst;
    *out_len = o.pos;
    return 0;
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

int batch_build(ingest_thread *t, conn *c, const frame_header *h, const uint8_t *payload, bus_batch **out,
                char *reason, size_t reason_len)
{
    const mamori_config *cfg = t->owner->cfg;
    uint32_t format_bits = (h->flags & FRAME_FLAG_FORMAT_MASK) >> FRAME_FLAG_FORMAT_SHIFT;
    enum event_format format = format_bits == FRAME_FORMAT_WINLOG ? EVENT_FORMAT_WINLOG
                               : format_bits == FRAME_FORMAT_AUTO ? EVENT_FORMAT_AUTO
                                                                   : EVENT_FORMAT_ECS;
    if (h->seq == 0) {
        snprintf(reason, reason_len, "batch seq must be >= 1");
        return -EPROTO;
    }
    bus_batch *b = bus_batch_create(BATCH_ARENA_CHUNK);
    b->tenant = arena_strndup(&b->arena, c->tenant, strlen(c->tenant));
    b->agent_id = arena_strndup(&b->arena, c->agent_id, strlen(c->agent_id));
    b->tenant_hash = c->tenant_hash;
    b->agent_hash = c->agent_hash;
    b->seq = h->seq;
    b->received_us = clock_wall_us();
    b->ack_thread = t->index;
    b->on_durable = registry_on_durable;
    b->on_durable_ctx = t->owner;

    char *text;
    size_t len;
    if (h->flags & FRAME_FLAG_ZSTD) {
        int rc = decompress(t, b, payload, h->length, cfg->ingest.max_batch_bytes, &text, &len, reason, reason_len);
        if (rc) {
            bus_batch_destroy(b);
            return rc;
        }
    } else {
        text = arena_memdup(&b->arena, payload, h->length);
        len = h->length;
    }

    /* Count lines first: the limit is a protocol rule, and the events array is sized once. */
    size_t lines = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (!blank(p, n)) lines++;
        p = nl ? nl + 1 : end;
    }
    if (lines > cfg->ingest.max_batch_events) {
        snprintf(reason, reason_len, "batch has more than %u events", cfg->ingest.max_batch_events);
        bus_batch_destroy(b);
        return -EPROTO;
    }
    b->events = lines ? arena_alloc(&b->arena, lines * sizeof *b->events) : NULL;

    event_stamp stamp = {
        .tenant = b->tenant,
        .agent_id = b->agent_id,
        .agent_hash = b->agent_hash,
        .seq = b->seq,
        .received_us = b->received_us,
        .max_past_us = (int64_t)cfg->ingest.max_event_age_days * 86400 * 1000000,
        .max_future_us = (int64_t)cfg->ingest.max_clock_skew_s * 1000000,
    };
    buf *ack = &t->ack_buf, *errs = &t->err_buf;
    buf_clear(ack);
    buf_clear(errs);
    uint32_t errors = 0, line_no = 0;
    char why[256];
    for (const char *p = text, *end = text + len; p < end; line_no++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *line = p;
        p = nl ? nl + 1 : end;
        if (blank(line, n)) continue;
        json_value v;
        json_error jerr;
        int rc = json_parse(t->parser, &b->arena, line, n, &v, &jerr);
        if (rc) {
            snprintf(why, sizeof why, "invalid JSON at byte %zu: %s", jerr.offset, jerr.msg);
            COUNT(t, events_rejected_invalid_json, 1);
        } else {
            rc = normalize_event(t->norm, &b->arena, format, &v, &stamp, line_no, &b->events[b->event_count], why,
                                 sizeof why);
            if (rc) COUNT(t, events_rejected_invalid_event, 1);
        }
        if (rc == 0) {
            b->event_count++;
            continue;
        }
        b->rejected_count++;
        if (errors < INGEST_ACK_MAX_ERRORS) {
            if (errors) buf_putc(errs, ',');
            buf_printf(errs, "{\"line\":%u,\"reason\":", line_no + 1);
            json_write_string(errs, why, strlen(why));
            buf_putc(errs, '}');
            errors++;
        }
    }
    buf_puts(ack, "{\"accepted\":");
    buf_put_u64(ack, b->event_count);
    buf_puts(ack, ",\"rejected\":");
    buf_put_u64(ack, b->rejected_count);
    buf_puts(ack, ",\"errors\":[");
    buf_append(ack, errs->data, errs->len);
    buf_puts(ack, "]}");
    b->ack_payload = arena_memdup(&b->arena, ack->data, ack->len);
    b->ack_payload_len = (uint32_t)ack->len;
    *out = b;
    return 0;
}

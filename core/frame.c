/* core/frame.c — protocol v1 frame header codec and validation. */
#include "frame.h"

#include <errno.h>

void frame_header_encode(const frame_header *h, uint8_t out[FRAME_HEADER_BYTES])
{
    mamori_put_be32(out, h->length);
    out[4] = h->type;
    out[5] = h->flags;
    mamori_put_be16(out + 6, h->reserved);
    mamori_put_be64(out + 8, h->seq);
}

static uint8_t allowed_flags(uint8_t type)
{
    switch (type) {
    case FRAME_EVENTS: return FRAME_FLAG_ZSTD | FRAME_FLAG_FORMAT_MASK;
    case FRAME_RESULT: return FRAME_FLAG_ZSTD | FRAME_FLAG_CHUNK | FRAME_FLAG_LAST;
    default: return 0;
    }
}

int frame_header_decode(const uint8_t in[FRAME_HEADER_BYTES], uint32_t max_payload, frame_header *h,
                        const char **reason)
{
    h->length = mamori_get_be32(in);
    h->type = in[4];
    h->flags = in[5];
    h->reserved = mamori_get_be16(in + 6);
    h->seq = mamori_get_be64(in + 8);
    if (h->type == 0 || h->type > FRAME_TYPE_MAX) {
        *reason = "unknown frame type";
        return -EPROTO;
    }
    if (h->reserved != 0) {
        *reason = "reserved header field not zero";
        return -EPROTO;
    }
    if (h->flags & ~allowed_flags(h->type)) {
        *reason = "flags not allowed for frame type";
        return -EPROTO;
    }
    if (h->type == FRAME_EVENTS &&
        ((h->flags & FRAME_FLAG_FORMAT_MASK) >> FRAME_FLAG_FORMAT_SHIFT) > FRAME_FORMAT_AUTO) {
        *reason = "reserved event format";
        return -EPROTO;
    }
    if (h->length > max_payload) {
        *reason = "frame length over maximum";
        return -EPROTO;
    }
    return 0;
}

int frame_peek(const uint8_t *data, size_t len, uint32_t max_payload, frame_header *h, const char **reason)
{
    if (len < FRAME_HEADER_BYTES) return 0;
    int rc = frame_header_decode(data, max_payload, h, reason);
    if (rc) return rc;
    return len - FRAME_HEADER_BYTES >= h->length ? 1 : 0;
}

const char *frame_type_name(uint8_t type)
{
    static const char *const names[] = {"?",      "HELLO",  "WELCOME", "EVENTS", "ACK",
                                        "COMMAND", "RESULT", "PING",    "PONG",   "CLOSE"};
    return type <= FRAME_TYPE_MAX ? names[type] : "?";
}

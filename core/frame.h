/* core/frame.h — agent protocol v1 framing (docs/protocol.md is normative).
 * Header: u32 length | u8 type | u8 flags | u16 reserved | u64 seq, big-endian, then
 * `length` payload bytes. Shared by the server, the simulator and the tests. */
#ifndef MAMORI_CORE_FRAME_H
#define MAMORI_CORE_FRAME_H

#include "base.h"

#define FRAME_HEADER_BYTES 16u
#define FRAME_PROTOCOL_VERSION 1u
#define FRAME_DEFAULT_MAX_PAYLOAD (4u * 1024 * 1024)

enum frame_type {
    FRAME_HELLO = 1,   /* agent → server: JSON {protocol, agent_version, host, last_acked_seq, capabilities} */
    FRAME_WELCOME = 2, /* server → agent: JSON {protocol, resume_seq, acked_seq, isolation, limits} */
    FRAME_EVENTS = 3,  /* agent → server: NDJSON batch, header seq = batch seq */
    FRAME_ACK = 4,     /* server → agent: header seq = highest contiguous durable seq; JSON counts */
    FRAME_COMMAND = 5, /* server → agent: JSON {id, action, args, expires_at} */
    FRAME_RESULT = 6,  /* agent → server: JSON {id, status, output} or a file chunk */
    FRAME_PING = 7,    /* either way: header seq = nonce; optional JSON heartbeat */
    FRAME_PONG = 8,    /* answer to PING with the same seq */
    FRAME_CLOSE = 9,   /* either way: UTF-8 reason text; the sender then closes */
};
#define FRAME_TYPE_MAX FRAME_CLOSE

/* EVENTS flags */
#define FRAME_FLAG_ZSTD 0x01u        /* payload is one zstd frame */
#define FRAME_FLAG_FORMAT_MASK 0x06u /* bits 1-2: event format */
#define FRAME_FLAG_FORMAT_SHIFT 1u
#define FRAME_FORMAT_ECS 0u
#define FRAME_FORMAT_WINLOG 1u
#define FRAME_FORMAT_AUTO 2u
/* RESULT flags */
#define FRAME_FLAG_CHUNK 0x08u /* RESULT payload is a binary file chunk (see protocol.md) */
#define FRAME_FLAG_LAST 0x10u  /* last chunk of a file */

typedef struct frame_header {
    uint32_t length;
    uint8_t type;
    uint8_t flags;
    uint16_t reserved;
    uint64_t seq;
} frame_header;

_Static_assert(FRAME_HEADER_BYTES == 4 + 1 + 1 + 2 + 8, "header layout");

void frame_header_encode(const frame_header *h, uint8_t out[FRAME_HEADER_BYTES]);

/* Validates a header: known type, zero reserved field, flags allowed for the type, length
 * within max_payload. Returns 0, or -EPROTO with *reason set to a static message. */
int frame_header_decode(const uint8_t in[FRAME_HEADER_BYTES], uint32_t max_payload, frame_header *h,
                        const char **reason) MAMORI_WUR;

/* Looks at `len` buffered bytes. Returns 1 with *h filled when a whole frame (header +
 * payload, payload at data + FRAME_HEADER_BYTES) is present, 0 when more bytes are needed,
 * or -EPROTO (reason set) as soon as the header is invalid. */
int frame_peek(const uint8_t *data, size_t len, uint32_t max_payload, frame_header *h, const char **reason) MAMORI_WUR;

const char *frame_type_name(uint8_t type);

#endif

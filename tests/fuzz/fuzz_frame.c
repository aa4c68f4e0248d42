/* Fuzz target: the protocol v1 frame decoder as ingest drives it — a byte stream cut
 * into frames by frame_peek (any split point), each payload of a JSON-carrying type
 * parsed as the server would. Must never crash, hang or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/frame.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_parser *parser;
    if (!parser) parser = json_parser_create();
    arena a;
    arena_init(&a, 4096);
    /* First byte picks the maximum payload so both small and default limits are hit. */
    uint32_t max = size && (data[0] & 1) ? 64 : FRAME_DEFAULT_MAX_PAYLOAD;
    size_t off = size ? 1 : 0;
    while (off < size) {
        frame_header h;
        const char *reason = NULL;
        /* feed the decoder growing prefixes, as partial reads would */
        size_t avail = size - off;
        size_t step = (data[off] % 7) + 1;
        for (size_t n = 0; n < avail && n < FRAME_HEADER_BYTES; n += step) {
            int partial = frame_peek(data + off, n, max, &h, &reason);
            if (partial < 0) break;
        }
        int r = frame_peek(data + off, avail, max, &h, &reason);
        if (r <= 0) {
            if (r < 0 && !reason) abort(); /* a violation always has a reason */
            break;
        }
        if (h.length > max) abort();
        const char *payload = (const char *)data + off + FRAME_HEADER_BYTES;
        if (h.type == FRAME_HELLO || h.type == FRAME_ACK || h.type == FRAME_WELCOME || h.type == FRAME_PING) {
            json_value v;
            json_error err;
            if (json_parse(parser, &a, payload, h.length, &v, &err) == 0 && v.type > JSON_OBJECT) abort();
        } else if (h.type == FRAME_EVENTS && !(h.flags & FRAME_FLAG_ZSTD)) {
            size_t pos = 0;
            json_value v;
            while (json_parse_next(parser, &a, payload, h.length, &pos, &v, NULL) == 0) {
            }
        }
        (void)frame_type_name(h.type);
        off += FRAME_HEADER_BYTES + h.length;
        arena_reset(&a);
    }
    arena_fini(&a);
    return 0;
}

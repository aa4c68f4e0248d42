/* bus/kafka_codec.h — private to bus/: one agent batch <-> one Kafka message (key, NDJSON
 * value, headers), without any librdkafka type, so the wire format is unit-tested without a
 * broker. The format is normative in docs/kafka.md (external producers write it too). */
#ifndef MAMORI_BUS_KAFKA_CODEC_H
#define MAMORI_BUS_KAFKA_CODEC_H

#include "bus.h"
#include "core/json.h"

#define KAFKA_HEADER_TENANT "mamori.tenant"
#define KAFKA_HEADER_AGENT "mamori.agent"
#define KAFKA_HEADER_SEQ "mamori.seq"
#define KAFKA_HEADER_RECEIVED "mamori.received_us"
#define KAFKA_HEADER_REJECTED "mamori.rejected"
#define KAFKA_HEADER_FORMAT "mamori.format"
#define KAFKA_HEADER_EVENT_KEYS "mamori.event_keys"
#define KAFKA_EVENT_KEY_BYTES 12u /* index u32 BE, ts_us i64 BE */
#define KAFKA_HEADERS_MAX 8

typedef struct kafka_header {
    const char *name;  /* NUL-terminated */
    const void *value; /* value_len bytes, not NUL-terminated */
    size_t value_len;
} kafka_header;

/* One message, as views: everything is borrowed (from the batch arena when encoded, from
 * the librdkafka message when decoded). */
typedef struct kafka_message {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    kafka_header headers[KAFKA_HEADERS_MAX];
    uint32_t header_count;
    int64_t offset;       /* decode: Kafka offset (seq fallback: offset + 1) */
    int64_t timestamp_us; /* decode: the message timestamp (received fallback); 0 unknown */
} kafka_message;

/* Encodes batch b into *out: key "tenant/agent", value = every event's canonical JSON
 * followed by '\n', and the headers. All memory comes from b's arena (lives as long as b). */
void kafka_encode_batch(bus_batch *b, kafka_message *out);

typedef struct kafka_decoder {
    json_parser *parser;
    normalizer *norm;
    uint32_t max_events;     /* non-blank lines per message */
    size_t max_value_bytes;
    int64_t max_past_us;     /* time bounds for messages without event keys (0: none) */
    int64_t max_future_us;
    /* events of messages WITH event keys (written by Mamori, normalized once already) that did
     * not read back: never expected; counted because such an event was acked but not stored */
    uint64_t reread_failures;
} kafka_decoder;

/* A message timestamp (ms since the epoch, as librdkafka gives it: any int64 an external
 * producer chose) in microseconds; 0 (unknown) when absent, negative or too large to scale. */
int64_t kafka_timestamp_us(int64_t timestamp_ms);

void kafka_decoder_init(kafka_decoder *d, uint32_t max_events, size_t max_value_bytes, int64_t max_past_us,
                        int64_t max_future_us);
void kafka_decoder_fini(kafka_decoder *d);

/* Fills the empty batch b (from bus_batch_create) from message m: identity, then the events
 * parsed and normalized into b's arena (the value is copied there first). Events given
 * with keys keep their index and ts_us exactly, so the store writes the same keys as for
 * the original batch. A line that does not normalize is counted in rejected_count. A
 * message that cannot be a batch (no tenant/agent, bad seq, keys header of the wrong size,
 * over the limits) returns -EINVAL with a reason in err. */
int kafka_decode_batch(kafka_decoder *d, const kafka_message *m, bus_batch *b, char *err, size_t err_len) MAMORI_WUR;

#endif

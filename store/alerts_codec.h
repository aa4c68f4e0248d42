/* store/alerts_codec.h — private to store/alerts*.c: the alerts column family's key kinds,
 * index entry values and record decoding (docs/storage.md "alerts"). */
#ifndef MAMORI_STORE_ALERTS_CODEC_H
#define MAMORI_STORE_ALERTS_CODEC_H

#include "store/store.h"

/* First key byte: the record, or which index the entry belongs to. */
#define ALERT_KIND_RECORD 'A'
#define ALERT_KIND_TIME 'T'
#define ALERT_KIND_HOST 'H'
#define ALERT_KIND_RULE 'R'
#define ALERT_KIND_LEVEL 'L'
#define ALERT_KIND_STATUS 'S'

#define ALERT_RECORD_KEY_BYTES (1u + 8u + STORE_ALERT_ID_BYTES)
#define ALERT_SUMMARY_BYTES 26u
#define ALERT_INDEX_PREFIX_MAX 17u

_Static_assert(ALERT_INDEX_PREFIX_MAX + 8u + STORE_ALERT_ID_BYTES == STORE_ALERT_INDEX_KEY_MAX, "index key size");

/* What every index entry carries, so filters other than the walked index are checked
 * without reading the record. */
typedef struct alert_summary {
    uint8_t status, level;
    uint64_t rule_hash, host_id_hash, host_name_hash;
} alert_summary;

/* ts as a key component that sorts newest first. */
uint64_t alert_inv_ts(int64_t ts_us);
int64_t alert_ts_from_inv(uint64_t inv);
/* kind | tenant | term (8 bytes for host/rule, 1 for level/status, none for time). */
size_t alert_index_prefix(uint8_t *out, char kind, uint64_t tenant_hash, uint64_t term);
void alert_record_key(uint8_t out[ALERT_RECORD_KEY_BYTES], uint64_t tenant_hash, const uint8_t id[STORE_ALERT_ID_BYTES]);
void alert_summary_encode(uint8_t out[ALERT_SUMMARY_BYTES], const store_alert *a);
int alert_summary_decode(const uint8_t *p, size_t len, alert_summary *out) MAMORI_WUR;
int alert_record_decode(const uint8_t *p, size_t len, uint64_t tenant_hash, const uint8_t id[STORE_ALERT_ID_BYTES],
                        store_alert *out) MAMORI_WUR;

#endif

/* search/search.h — the EQL-compatible query language of DESIGN §6 over the store:
 * compile a query once (lexer, parser with positioned errors), then execute it for one
 * tenant and time range, writing the DESIGN §7 response shape as JSON.
 *
 * Thread model: a compiled query is immutable and may be shared; search_execute keeps all
 * its scratch state on the calling thread. Nothing here knows about HTTP. */
#ifndef MAMORI_SEARCH_H
#define MAMORI_SEARCH_H

#include "core/base.h"
#include "core/buf.h"
#include "store/store.h"

/* Hard limits of the language (input-driven sizes); the runtime limits are in
 * search_limits and come from the configuration. */
#define SEARCH_MAX_QUERY_BYTES 16384u /* query text */
#define SEARCH_MAX_DEPTH 64u          /* nesting of parentheses / not */
#define SEARCH_MAX_NODES 4096u        /* predicates and boolean operators */
#define SEARCH_MAX_LIST 1024u         /* values in one in (...) list */
#define SEARCH_MAX_STAGES 16u         /* queries in a sequence (until excluded) */
#define SEARCH_MAX_BY 8u              /* join / count-by fields */
#define SEARCH_MAX_STRING_BYTES 4096u /* one string literal */
#define SEARCH_CURSOR_MAX_CHARS 256u

enum search_error_code {
    SEARCH_ERR_NONE = 0,
    SEARCH_ERR_BAD_QUERY,    /* syntax or semantics; position is set */
    SEARCH_ERR_BAD_REQUEST,  /* a bad cursor, time range, limit */
    SEARCH_ERR_TOO_LARGE,    /* a result or state limit was hit */
    SEARCH_ERR_DEADLINE,     /* the deadline passed before any row was found */
    SEARCH_ERR_INTERNAL,     /* the store failed */
};

typedef struct search_error {
    enum search_error_code code;
    int32_t position; /* byte offset in the query text, -1 when not about the text */
    char message[256];
    char cursor[SEARCH_CURSOR_MAX_CHARS + 1]; /* DEADLINE: where to continue ("" if none) */
} search_error;
/* Stable error code names for the API: "bad_query", "bad_request", "too_large",
 * "deadline_exceeded", "internal". */
const char *search_error_code_name(enum search_error_code code);

typedef struct search_limits {
    uint32_t max_result_rows;     /* limit and head/tail N may not exceed this */
    uint32_t max_groups;          /* count by: distinct groups */
    uint32_t max_sequence_keys;   /* join keys with a partial sequence at once */
    uint32_t max_candidates;      /* refs materialized for one plan (intersection, sequences) */
    uint32_t scan_threads;        /* threads of one range scan (count, count by, pages), >= 1 */
} search_limits;
void search_limits_default(search_limits *lim);

typedef struct search_query search_query;

/* Compiles query text (borrowed). On error returns -EINVAL and fills err (code
 * SEARCH_ERR_BAD_QUERY, position = byte offset of the offending token). *out is owned by
 * the caller: search_query_destroy. */
int search_compile(const char *text, size_t len, search_query **out, search_error *err) MAMORI_WUR;
void search_query_destroy(search_query *q);

typedef struct search_request {
    const char *tenant;        /* borrowed; every read is limited to it */
    int64_t from_us, to_us;    /* [from, to) */
    uint32_t limit;            /* rows (events, sequences, groups) per page, >= 1 */
    const char *cursor;        /* NULL or "" for the first page */
    int64_t deadline_mono_us;  /* clock_mono_us() bound; 0 = none */
    bool explain;              /* answer {"plan":…} without running */
} search_request;

/* What one execution did (for metrics and the access log). */
typedef struct search_stats {
    uint64_t refs_read;        /* index references decoded */
    uint64_t events_fetched;   /* events read by address */
    uint64_t events_scanned;   /* events read by a range scan */
    uint64_t events_parsed;    /* events parsed and evaluated */
    uint64_t rows;             /* rows in the answer */
    const char *plan;          /* "index", "intersect", "scan", "seeded", "index_count", … */
} search_stats;

/* Executes q for req and appends the response body to out:
 *   {"events":[…]} | {"sequences":[{"by":{…},"events":[…]}]} | {"count":N} |
 *   {"counts":[{"by":{…},"count":N}]}, each with "cursor" when there is more, or
 *   {"plan":{…}} with req->explain.
 * Events are the stored canonical JSON with mamori.event_id added. Returns 0, or a
 * negative errno with err filled (out is then unspecified). */
int search_execute(store *s, const search_query *q, const search_request *req, const search_limits *lim,
                   buf *out, search_stats *st, search_error *err) MAMORI_WUR;

/* What a compiled query answers, for merging the answers of several store shards
 * (api/fanout.c): a sequence or a filter, its head/tail N (0: none), and count / count by. */
typedef struct search_shape {
    bool sequence;
    uint64_t head, tail;
    bool count;        /* | count or | count by */
    uint32_t count_by; /* fields of | count by; 0 for | count */
    bool host_bound;   /* a sequence whose join key holds the host (host.id, mamori.agent_id or
                        * agent.id: in `sequence by`, or at one position of every stage's `by`),
                        * so each of its sequences is one host's — whole on one store shard */
} search_shape;
void search_query_shape(const search_query *q, search_shape *out);

/* The time range a cursor was issued for (so later pages need not repeat from/to);
 * -EINVAL if it is not a cursor. */
int search_cursor_range(const char *cursor, int64_t *from_us, int64_t *to_us) MAMORI_WUR;

/* Appends an event as the API returns it: json (the stored canonical JSON, borrowed)
 * with "event_id" inserted into its "mamori" object (created if absent). */
void search_render_event(buf *out, const char *json, size_t len, const store_event_ref *ref);

#endif

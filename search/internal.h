/* search/internal.h — private to search/: tokens, the query tree, the evaluator, the
 * planner and the sequence state machine. */
#ifndef MAMORI_SEARCH_INTERNAL_H
#define MAMORI_SEARCH_INTERNAL_H

#include "search/search.h"

#include "core/arena.h"
#include "core/json.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- lexer (lexer.c) ---- */
enum tok_kind {
    TK_EOF = 0,
    TK_IDENT,    /* field path or keyword; text = [start, start+len) */
    TK_STRING,   /* decoded into str/str_len */
    TK_NUMBER,   /* integer or decimal; num_i / num_d */
    TK_DURATION, /* number immediately followed by a unit: 5m, 30s */
    TK_LPAREN, TK_RPAREN, TK_LBRACKET, TK_RBRACKET, TK_COMMA, TK_PIPE,
    TK_EQ, TK_NE, TK_LT, TK_LE, TK_GT, TK_GE, TK_COLON, TK_ASSIGN, TK_MINUS, TK_TILDE,
};

typedef struct token {
    enum tok_kind kind;
    uint32_t pos, len;  /* in the query text */
    const char *text;   /* query text at pos */
    char *str;          /* TK_STRING: decoded bytes (arena), NUL-terminated */
    uint32_t str_len;
    bool is_int;
    int64_t num_i;
    double num_d;
    int64_t duration_us;
} token;

typedef struct lexer {
    const char *text;
    size_t len, pos;
    arena *a;
    search_error *err;
} lexer;
/* Next token into *t; -EINVAL with err filled on a lexical error. */
int lex_next(lexer *lx, token *t) MAMORI_WUR;

/* ---- the tree ---- */
typedef struct field_ref {
    const char *path; /* dotted, NUL-terminated (arena) */
    uint32_t path_len;
    uint32_t seg_count;
    const char **segs; /* segments */
    uint32_t *seg_lens;
    uint8_t index_field; /* enum store_index_field or 0 */
} field_ref;

enum lit_kind { LIT_NULL = 0, LIT_BOOL, LIT_NUMBER, LIT_STRING };

typedef struct literal {
    enum lit_kind kind;
    bool b;
    bool is_int;
    int64_t i;
    double d;
    const char *s; /* LIT_STRING (arena, NUL-terminated); LIT_NUMBER: its text */
    uint32_t len;
    /* derived at compile time */
    bool is_ip;
    uint8_t ip[16];       /* IPv4 mapped into ::ffff:0:0/96 */
    bool num_ok;          /* a string that reads as a number */
    double num_from_str;
    pcre2_code *re;       /* regex operators */
    uint8_t cidr_bits;    /* cidrMatch: prefix length in the 128-bit space */
    bool has_wildcard;    /* wildcard operators: contains * or ? */
} literal;

enum cmp_op {
    OP_EQ = 1, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE,
    OP_WILDCARD,   /* ':' — caseless wildcard (also with a list) */
    OP_LIKE,       /* like / like~ */
    OP_REGEX,      /* regex / regex~ */
    OP_IN,         /* in / in~ (OP_EQ over a list) */
    OP_CIDR,       /* cidrMatch(field, …) */
    OP_STARTS, OP_ENDS, OP_CONTAINS, /* startsWith, endsWith, stringContains */
};

enum node_kind { NODE_AND = 1, NODE_OR, NODE_NOT, NODE_CMP, NODE_CONST };

typedef struct node {
    enum node_kind kind;
    uint32_t pos; /* where it starts in the text, for messages */
    /* AND / OR */
    struct node **kids;
    uint32_t kid_count;
    /* NOT */
    struct node *kid;
    /* CMP */
    enum cmp_op op;
    bool caseless;
    field_ref field;
    literal *lits;
    uint32_t lit_count;
    /* CONST */
    bool value;
} node;

typedef struct event_query {
    uint32_t pos;
    const char *category; /* NULL: any */
    uint32_t category_len;
    node *cond;           /* never NULL (NODE_CONST true when absent) */
    node *category_node;  /* event.category predicate, NULL for any */
    field_ref by[SEARCH_MAX_BY]; /* stage-level join fields (sequences) */
    uint32_t by_count;
} event_query;

enum pipe_kind { PIPE_HEAD = 1, PIPE_TAIL, PIPE_COUNT };

typedef struct pipe_op {
    enum pipe_kind kind;
    uint32_t pos;
    uint64_t n;
    field_ref by[SEARCH_MAX_BY];
    uint32_t by_count;
} pipe_op;

#define SEARCH_MAX_PIPES 8u

struct search_query {
    arena a;
    char *text; /* copy */
    size_t text_len;
    uint64_t text_hash;
    bool is_sequence;
    event_query filter; /* !is_sequence */
    /* sequence */
    field_ref seq_by[SEARCH_MAX_BY];
    uint32_t seq_by_count;
    int64_t maxspan_us; /* 0 = none */
    event_query stages[SEARCH_MAX_STAGES];
    uint32_t stage_count;
    bool has_until;
    event_query until;
    /* pipes */
    pipe_op pipes[SEARCH_MAX_PIPES];
    uint32_t pipe_count;
    uint32_t node_count;
    struct re_link {
        pcre2_code *re;
        struct re_link *next;
    } *regexes; /* every compiled pattern, freed with the query */
};

int parse_query(search_query *q, search_error *err) MAMORI_WUR;
void field_ref_init(arena *a, field_ref *f, const char *path, size_t len);
void query_free_patterns(search_query *q);

/* ---- evaluation (eval.c) ---- */
typedef struct eval_ctx {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
} eval_ctx;
void eval_ctx_init(eval_ctx *e);
void eval_ctx_fini(eval_ctx *e);
/* Field value in a parsed event (nested objects; dotted member names tolerated). */
const json_value *field_get(const json_value *root, const field_ref *f);
bool eval_node(eval_ctx *e, const node *n, const json_value *root);
bool eval_query(eval_ctx *e, const event_query *q, const json_value *root);
/* Wildcard match: '*' any run, '?' one byte. */
bool wildcard_match(const char *pat, size_t plen, const char *s, size_t slen, bool caseless);
/* Parses an IPv4 / IPv6 literal into 16 bytes (v4 mapped). */
bool ip_parse(const char *s, size_t len, uint8_t out[16]);
/* Necessary-condition literals for a raw-text prefilter: every event matching q contains
 * each returned needle (caseless flag per needle) in its stored JSON. */
typedef struct needle {
    const char *s;
    uint32_t len;
    bool caseless;
} needle;
size_t collect_needles(const event_query *q, arena *a, needle *out, size_t max);
bool raw_contains(const char *hay, size_t hlen, const needle *n);

/* ---- the lazy field extractor (extract.c) ---- */
#define FIELD_SET_MAX 64u
typedef struct field_set {
    const field_ref *v[FIELD_SET_MAX]; /* borrowed from the query */
    uint32_t n;
    bool all; /* too many: parse whole events */
} field_set;
void field_set_add(field_set *fs, const field_ref *f);
/* Every field the query's condition, category and stage-level join fields read. */
void field_set_add_query(field_set *fs, const event_query *q);
/* Parses the stored event json into root (allocated in a), keeping only the members on the
 * paths of fs: field_get answers every path of fs exactly as on the full DOM. Falls back to
 * the full parse when the text is unusual (escaped keys, deep nesting). json_parse's
 * contract otherwise (json borrowed, must outlive root). */
int extract_event(json_parser *jp, arena *a, const field_set *fs, const char *json, size_t len, json_value *root,
                  json_error *err) MAMORI_WUR;

/* ---- parallel range scans (pscan.c) ---- */
enum pscan_verdict { PSCAN_NO = 0, PSCAN_MATCH, PSCAN_STOP, PSCAN_DEADLINE };
/* Checks one event on a worker's own state: a verdict, or a negative errno. */
typedef int (*pscan_check_fn)(void *worker, const store_event_ref *ref, const char *json, size_t len);
/* The ordered consumer, on the calling thread: non-zero to stop. */
typedef int (*pscan_take_fn)(void *ctx, const store_event_ref *ref, const char *json, size_t len);
typedef struct pscan {
    store *s;
    const char *tenant;
    int64_t from_us, to_us;
    void **workers; /* one per thread; workers[0] runs on the calling thread */
    uint32_t worker_count;
    pscan_check_fn check;
    pscan_take_fn take; /* NULL: workers consume into their own state, in no order */
    void *take_ctx;
    size_t keep_max;    /* take: the consumer stops after at most this many matches */
    /* results */
    bool stopped;       /* take (or a worker's PSCAN_STOP) ended the scan */
    bool deadline_hit;
    bool has_examined;
    store_event_ref examined; /* everything up to here, in order, was examined */
} pscan;
/* Scans [from, to) on worker_count threads. 0 or a negative errno (store failure). */
int pscan_run(pscan *ps) MAMORI_WUR;

/* ---- planning (plan.c) ---- */
typedef struct ix_lookup {
    uint8_t field;
    const char *value;
    uint32_t len;
    bool prefix;
} ix_lookup;

typedef struct ix_candidate {
    const node *pred;   /* the conjunct */
    ix_lookup *lookups; /* union of these */
    uint32_t lookup_count;
    bool exact;         /* the index answers the predicate exactly (caseless semantics) */
    int rank;           /* static selectivity guess, lower = more selective */
    /* sampling */
    store_event_ref *refs;
    size_t ref_count;
    bool complete;      /* refs holds every match in the range (under the cap) */
    uint64_t estimate;  /* refs per the posting headers: an upper bound (cap + 1 when over) */
    bool applied;       /* the set was narrowed to the refs this candidate's index holds */
} ix_candidate;

#define PLAN_MAX_CANDIDATES 16u
#define PLAN_MARK_PER_FETCH 1000u /* references decoded for a mark, for the cost of one event fetch */

/* (ts, agent, seq, index) order: the order of event keys inside a tenant. */
static inline int search_ref_cmp(const store_event_ref *a, const store_event_ref *b)
{
    if (a->ts_us != b->ts_us) return a->ts_us < b->ts_us ? -1 : 1;
    if (a->agent_hash != b->agent_hash) return a->agent_hash < b->agent_hash ? -1 : 1;
    if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
    if (a->index != b->index) return a->index < b->index ? -1 : 1;
    return 0;
}

typedef struct plan {
    ix_candidate cands[PLAN_MAX_CANDIDATES];
    uint32_t cand_count;
    bool all_exact;           /* every conjunct has an exact candidate and nothing else remains */
    uint32_t conjunct_count;
    /* decision */
    enum { PLAN_SCAN = 0, PLAN_INDEX_STREAM, PLAN_INDEX_SET } kind;
    int stream_cand;          /* PLAN_INDEX_STREAM */
    store_event_ref *set;     /* PLAN_INDEX_SET: sorted, unique (malloc) */
    size_t set_count;
    uint32_t intersected;     /* candidates intersected into set (the first one included) */
    bool all_applied;         /* set holds exactly the refs every candidate's index holds */
} plan;

typedef struct exec_env {
    store *s;
    const char *tenant;
    uint64_t tenant_hash;
    const search_limits *lim;
    int64_t deadline_mono_us;
    search_stats *st;
    search_error *err;
    bool deadline_hit;
    uint32_t tick;
} exec_env;

bool env_deadline(exec_env *env);
/* Finds index candidates of q over [from, to), sizes them from posting headers, reads the
 * smallest whole when it has at most sample_cap refs and narrows that set by the others
 * whose lists are cheap to decode next to the fetches they spare (every one with
 * apply_all), and decides. The plan owns its memory: plan_fini. */
int plan_build(exec_env *env, const event_query *q, int64_t from_us, int64_t to_us, size_t sample_cap,
               bool apply_all, plan *p) MAMORI_WUR;
/* Clears keep[i] for refs of set[0..n) (sorted, unique) that an index candidate of q rules
 * out; what stays is a superset of q's matches in the set. Candidates whose lists are much
 * larger than the set are skipped (keep is a superset either way). */
int plan_mark_set(exec_env *env, const event_query *q, int64_t from_us, int64_t to_us, const store_event_ref *set,
                  size_t n, bool *keep) MAMORI_WUR;
void plan_fini(plan *p);
void plan_explain(const plan *p, buf *out);
/* Streams the refs of one candidate (union of its lookups, in order, deduplicated). */
int cand_stream(exec_env *env, const ix_candidate *c, int64_t from_us, int64_t to_us, store_ref_fn fn,
                void *ctx) MAMORI_WUR;

/* ---- sequences (sequence.c): the correlation engine's temporal_ordered evaluation
 * (detect/correlate.h), fed events in time order (per join key at least: a reset starts over) ---- */
typedef struct seq_event {
    store_event_ref ref;
    int64_t ts_us;
} seq_event;
typedef struct seq_machine seq_machine;
/* Called for each completed sequence: key (serialized join values, borrowed) and the
 * events, one per stage. Returns non-zero to stop. */
typedef int (*seq_done_fn)(void *ctx, const char *key, size_t key_len, const seq_event *events, uint32_t n);
/* maxspan_us 0 = unbounded. */
seq_machine *seq_machine_create(uint32_t stages, int64_t maxspan_us, uint32_t max_keys, seq_done_fn fn, void *ctx);
void seq_machine_destroy(seq_machine *m);
/* Forgets every key (the next feed may be at any time). */
void seq_machine_reset(seq_machine *m);
/* Stages s >= 1 an event of key at ts_us could take part in a sequence as (bit s): those
 * whose earlier stages the key holds in order inside [ts_us - maxspan, ts_us]; 0 when none
 * (then nothing of the key is alive either). An event at ts_us that can match only stages
 * outside this mask (and not stage 0), nor `until` while the mask is 0, changes no answer
 * if fed. */
uint32_t seq_machine_waiting(seq_machine *m, const char *key, size_t key_len, int64_t ts_us);
/* One event: stage_mask has bit i when it matches stage i under this join key,
 * until_match when it matches the until query (then it only forgets the key). Returns 0,
 * 1 when fn asked to stop, -E2BIG over max_keys, SEQ_EVENTS_PER_KEY_MAX or SEQ_EVENTS_MAX, -EDOM when ev
 * is older than an event fed before (since the last reset). */
int seq_machine_feed(seq_machine *m, uint32_t stage_mask, bool until_match, const char *key, size_t key_len,
                     const seq_event *ev) MAMORI_WUR;
/* Matches one join key may hold, and all keys together (≈ 150 bytes each): more is
 * SEARCH_ERR_TOO_LARGE, never a silent eviction. */
#define SEQ_EVENTS_PER_KEY_MAX 65536u
#define SEQ_EVENTS_MAX 1000000u

/* ---- cursors and rendering (render.c) ---- */
typedef struct cursor_state {
    uint8_t kind;          /* 1 = position, 2 = offset (groups), 3 = sequence */
    store_event_ref after; /* everything <= after was examined */
    uint64_t remaining;    /* head: rows still allowed; UINT64_MAX = unlimited */
    uint64_t offset;       /* groups */
    int64_t from_us, to_us; /* the range of the first page */
} cursor_state;
static inline void cursor_stamp(cursor_state *c, const search_request *req)
{
    c->from_us = req->from_us;
    c->to_us = req->to_us;
}
void cursor_encode(const cursor_state *c, uint64_t query_hash, char out[SEARCH_CURSOR_MAX_CHARS + 1]);
int cursor_decode(const char *s, uint64_t query_hash, cursor_state *c) MAMORI_WUR;
uint64_t request_hash(const search_query *q, int64_t from_us, int64_t to_us);

/* ---- executors ---- */
typedef int (*match_fn)(void *ctx, const store_event_ref *ref, const char *json, size_t len, const json_value *root);
/* Every match of eq in [from, to), in time order, through its plan. fn's root holds the
 * fields eq reads and those of reads (may be NULL). */
int search_each_match(exec_env *env, const event_query *eq, int64_t from_us, int64_t to_us, const field_set *reads,
                      match_fn fn, void *ctx) MAMORI_WUR;
int exec_filter(exec_env *env, const search_query *q, const search_request *req, const cursor_state *cur,
                buf *out) MAMORI_WUR;
int exec_sequence(exec_env *env, const search_query *q, const search_request *req, const cursor_state *cur,
                  buf *out) MAMORI_WUR;
/* ---- the sequence run (seqexec.c: context, feeding, the unseeded run; seqseed.c: the
 * seeded run). Shared between those two files only. ---- */
typedef struct found_seq {
    char *key;
    uint32_t key_len;
    uint32_t n;
    seq_event evs[SEARCH_MAX_STAGES];
} found_seq;

typedef struct seq_run {
    exec_env *env;
    const search_query *q;
    seq_machine *m;
    eval_ctx ev;
    json_parser *jp;
    arena a;
    buf json, key, stage_key;
    field_set fs; /* every field the stages, until and join keys read */
    /* the answer: the `want` earliest completions after the cursor (max-heap on the last event) */
    found_seq *heap;
    size_t heap_n, want;
    uint64_t total;   /* completions after the cursor */
    bool count_only;
    store_event_ref after;
    bool has_after;
    /* key filter for interval scans: sorted hashes of seed keys (NULL = all) */
    uint64_t *key_hashes;
    size_t key_hash_count;
    int error;
} seq_run;
typedef struct ref_list {
    store_event_ref *v;
    size_t n, cap;
    size_t stop_at; /* stop collecting once n reaches it (0 = no limit) */
    exec_env *env;
} ref_list;
/* Appends ref to the ref_list ctx; 1 when the deadline has passed or stop_at is reached. */
int seq_collect_ref(void *ctx, const store_event_ref *ref);
int seq_hash_cmp(const void *a, const void *b);
/* Feed one event (scanned, or fetched by its ref) to the run's machine; nonzero stops. */
int seq_scan_feed(void *ctx, const store_event_ref *ref, const char *json, size_t len);
int seq_fetch_feed(seq_run *r, const store_event_ref *ref);
/* Records the error of a failed seq_machine_feed (rc < 0) in r and returns it. */
int seq_feed_error(seq_run *r, int rc);
/* The seeded run: stage seed_stage's matches bound the windows read (seqseed.c). */
int seq_run_seeded(seq_run *r, int seed_stage, int64_t from, int64_t to) MAMORI_WUR;

/* Writes a serialized join key (values separated by 0x1f, each its compact JSON) for
 * fields of root; false when any field is missing or null. */
bool key_build(const json_value *root, const field_ref *a, uint32_t na, const field_ref *b, uint32_t nb, buf *out);
/* {"f1":v1,...} from a serialized key. */
void key_write_by(buf *out, const char *key, size_t key_len, const field_ref *a, uint32_t na, const field_ref *b,
                  uint32_t nb);

int set_error(search_error *err, enum search_error_code code, int32_t position, const char *fmt, ...)
    MAMORI_PRINTF(4, 5);

#endif

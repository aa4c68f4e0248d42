/* detect/internal.h — private to detect/: the loader's rule model (predicates and condition
 * trees), the compiled rule set, the worker, and the helpers the source files share.
 *
 * Pipeline: load.c reads YAML documents → detection.c turns a detection section into a
 * condition tree (cnode) whose leaves are predicates (pspec), using sigstring.c for Sigma
 * string values and condition.c for the condition grammar → compile.c interns fields and
 * paths (fields.c), builds one Hyperscan database per ECS path and the evaluation program
 * → eval.c scans events with a worker and evaluates candidate rules (direct.c for the
 * predicates Hyperscan does not handle). */
#ifndef MAMORI_DETECT_INTERNAL_H
#define MAMORI_DETECT_INTERNAL_H

#include "detect.h"
#include "memo.h"

#include "core/arena.h"
#include "core/logsource.h"

#include <hs/hs.h>
#include <libfyaml.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

/* ---- limits (not configurable: they bound recursion and encodings, not workloads) ----- */
#define DETECT_CONDITION_DEPTH_MAX 64 /* nesting of parentheses/not in a condition */
#define DETECT_DETECTION_DEPTH_MAX 8  /* nesting of lists/maps inside a search identifier */
#define DETECT_EXPANSION_MAX 1024     /* alternatives one value may expand into */
#define DETECT_CONDITION_BYTES_MAX 8192
#define DETECT_IDENTIFIERS_MAX 4096   /* search identifiers of one rule */
#define DETECT_NONE UINT32_MAX

/* A change under test: the code of variant a, or in a tuning build (-DDETECT_AB) the variant
 * detect_ab_variant picks, so that one process times both on the same events (detect.h). */
#ifdef DETECT_AB
#define DETECT_AB_PICK(a, b) (detect_ab_variant ? (b) : (a))
#else
#define DETECT_AB_PICK(a, b) (a)
#endif

#define DETECT_KEYWORD_SEPARATOR 0xFF /* never in UTF-8 text: joins values for one keyword scan */
/* Events scanned together (detect_eval_batch's chunks): large enough that each deferred
 * database is scanned for many events at once, small enough that a chunk's events are still
 * in L2 when evaluation reads them again (128: −2 to −7% against 256, docs/detection.md
 * §10.12). Overridable for tuning builds. */
#ifndef DETECT_BATCH_MAX
#define DETECT_BATCH_MAX 128
#endif
#ifndef DETECT_DEFER_BYTES
#define DETECT_DEFER_BYTES (64 * 1024) /* Hyperscan databases this large are scanned batch-wise */
#endif

/* ---- small string → u32 map (open addressing; keys borrowed) --------------------------- */
typedef struct strmap {
    struct strmap_slot *slots;
    uint32_t cap; /* power of two */
    uint32_t count;
} strmap;
void strmap_init(strmap *m);
void strmap_fini(strmap *m);
uint64_t strmap_hash(const char *s, size_t len);
/* Value for key, or DETECT_NONE. */
uint32_t strmap_get(const strmap *m, const char *key, size_t len);
/* Inserts key → value unless present; returns the value now stored. Borrows key. */
uint32_t strmap_put(strmap *m, const char *key, size_t len, uint32_t value);

/* ---- predicates: one field (or the keyword search) against one Sigma value ------------- */

enum pred_kind {
    PRED_PATTERN = 0, /* Hyperscan expressions (any of them) on the field's text */
    PRED_NULL,        /* field absent or JSON null */
    PRED_EXISTS,      /* op: 1 = must exist, 0 = must not */
    PRED_COMPARE,     /* op: enum cmp_op, number */
    PRED_CIDR,        /* cidr */
    PRED_FIELDREF,    /* op: enum ref_mode bits, ref_field */
    PRED_TIMEPART,    /* op: enum time_unit, number */
    PRED_ANY,         /* `*`: the field holds any non-null value */
    PRED_KIND_COUNT
};
enum cmp_op { CMP_LT = 0, CMP_LTE, CMP_GT, CMP_GTE };
enum ref_mode { REF_STARTS = 1, REF_ENDS = 2 }; /* 0 = equal, both = contains */
enum time_unit { TIME_MINUTE = 0, TIME_HOUR, TIME_DAY, TIME_WEEK, TIME_MONTH, TIME_YEAR };

struct pattern {
    const char *expr; /* Hyperscan expression, NUL-terminated */
    uint32_t flags;   /* HS_FLAG_* */
    bool joined;      /* keyword pattern that cannot match 0xFF: scanned over all values joined */
    bool regex;       /* a user regular expression: its own database (slow engines stay apart) */
};

struct cidr {
    uint8_t family; /* 4 or 6 */
    uint8_t prefix;
    uint8_t addr[16]; /* network address, host bits cleared */
};

struct pspec {
    uint8_t kind;      /* enum pred_kind */
    uint8_t op;
    bool cased;        /* fieldref: case-sensitive comparison */
    const char *field; /* Sigma field name; NULL for keywords */
    uint32_t field_len;
    uint32_t line;
    uint32_t pattern_count;
    const struct pattern *patterns;
    double number;
    const char *ref_field;
    uint32_t ref_len;
    struct cidr cidr;
};

/* ---- condition trees ------------------------------------------------------------------ */

enum cnode_kind { CN_NONE = 0, CN_AND, CN_OR, CN_NOT, CN_PRED };

struct cnode {
    uint8_t kind; /* enum cnode_kind */
    uint32_t count;
    struct cnode **kids;
    struct pspec *pred;
    /* compile.c memo: a subtree shared by several references compiles once per rule */
    uint32_t memo_rule; /* rule index + 1 */
    uint32_t memo_node;
};

/* Where a rule's events come from: 0 = any. */
struct route {
    uint64_t categories; /* at most one bit: the rule's category */
    uint16_t service;
    uint8_t product;
    bool unroutable; /* names a product/category/service no classification produces */
};

static inline bool route_applies(const struct route *r, const struct logsource_set *ls)
{
    if (r->categories && !(r->categories & ls->categories)) return false;
    if (r->service && r->service != ls->service) return false;
    /* An event that does not say its OS (an ECS event without host.os.type) is not held
     * against a rule's product: its category still decides. */
    if (r->product && ls->product && r->product != ls->product) return false;
    return !r->unroutable;
}

/* ---- the loader ----------------------------------------------------------------------- */

struct lrule {
    detect_rule info;
    struct route route;
    struct logsource_set ls; /* the rule's logsource for field mapping */
    struct cnode *cond;
    bool dead; /* rejected after loading (e.g. Hyperscan refused a pattern) */
};

struct lfilter; /* Sigma filter documents, applied at build */

/* What the detection/condition parsers need from the loader. */
typedef struct load_ctx {
    struct detect_loader *loader;
    arena *mem;          /* rule memory (becomes the rule set's) */
    const char *file;
    const struct logsource_set *ls;
    bool filter_doc; /* a Sigma filter: its `rules` key is not a search identifier */
    /* first error of the document being loaded */
    enum detect_reason reason;
    uint32_t line;
    char message[256];
    bool failed;
} load_ctx;

/* Records the first failure of the current document; returns -EINVAL for `return fail(…)`. */
int load_fail(load_ctx *c, enum detect_reason reason, struct fy_node *at, const char *fmt, ...)
    MAMORI_PRINTF(4, 5);
/* 1-based line of a node (a collection reports its first key or item); 0 if unknown. */
uint32_t node_line(struct fy_node *n);
/* Scalar text of a node (not NUL-terminated) or NULL if not a scalar. */
const char *node_scalar(struct fy_node *n, size_t *len);

/* yaml.c */
/* The text load_stream is parsing (single-quoted scalars are decoded from it into mem). */
void yaml_input_begin(const char *text, size_t len, arena *mem);
void yaml_input_end(void);
/* YAML 1.1 integers (decimal, 0x, 0o/leading 0, 0b, underscores) and floats of plain scalars. */
bool yaml_plain_int(const char *s, size_t len, int64_t *out);
bool yaml_plain_float(const char *s, size_t len, double *out);
/* A node (mapping, sequence, scalar) as compact JSON; plain scalars keep their YAML type. */
void yaml_write_json(buf *out, struct fy_node *n);
/* Offset of the first byte of text that is not valid UTF-8, or len. */
size_t yaml_utf8_invalid_at(const char *text, size_t len);

/* Hyperscan's verdict on one expression, cached across the rules of a load. */
int loader_check_pattern(struct detect_loader *l, const char *expr, uint32_t *flags, char *why, size_t why_len);
const detect_options *loader_options(const struct detect_loader *l);

/* detection.c: the detection section (without condition) → search identifiers; then the
 * condition(s) → one tree. item.c: one `field|modifiers: value(s)` item (key NULL: a plain
 * keyword list) → its predicates' tree. */
int detection_item(load_ctx *c, struct fy_node *key, const char *key_text, size_t key_len, struct fy_node *value,
                   struct cnode **out);
static inline bool text_is(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}
struct detection;
int detection_parse(load_ctx *c, struct fy_node *detection, struct detection **out);
/* Builds the rule's condition from the `condition` node (string or list of strings). */
int detection_condition(load_ctx *c, struct detection *d, struct fy_node *condition, struct cnode **out);

/* condition.c: parses one condition string; identifiers are resolved through the callbacks
 * of `struct detection`. */
int condition_parse(load_ctx *c, struct detection *d, struct fy_node *at, const char *text, size_t len,
                    struct cnode **out);
/* Search identifier lookups for condition.c (detection.c implements them). */
struct cnode *detection_identifier(struct detection *d, const char *name, size_t len);
/* Every identifier matching a `*` pattern (`them` = all), excluding `_`-prefixed names
 * unless the pattern itself starts with `_`. Returns how many; fills up to max. */
uint32_t detection_select(struct detection *d, const char *pattern, size_t len, bool them, struct cnode **out,
                          uint32_t max);

/* cnode helpers (detection.c) */
struct cnode *cnode_new(arena *a, enum cnode_kind kind, uint32_t count);
/* AND/OR of kids with CN_NONE dropped; a single kid is returned as is. */
struct cnode *cnode_join(arena *a, enum cnode_kind kind, struct cnode **kids, uint32_t count);
struct cnode *cnode_not(arena *a, struct cnode *kid);

/* ---- Sigma string values (sigstring.c) -------------------------------------------------- */

/* A Sigma string after escape processing: symbols 0..255 are bytes, the rest specials. */
enum { SYM_STAR = 256, SYM_QMARK = 257, SYM_WINDASH = 258 };
typedef struct sigstr {
    uint16_t *sym;
    uint32_t len;
} sigstr;

/* Parses a rule string with the specification's escapes (\* \? \\; a backslash before any
 * other character stays, so "\%" survives for the expand modifier). */
sigstr sigstr_parse(arena *a, const char *s, size_t len);
sigstr sigstr_literal(arena *a, const char *s, size_t len); /* no wildcard processing */
bool sigstr_has_wildcards(const sigstr *s);
/* contains/startswith/endswith */
sigstr sigstr_wrap(arena *a, sigstr s, bool star_before, bool star_after);
/* windash: '-' or '/' preceded by a non-word character (or the start of a plain part) and
 * followed by a word character becomes the dash class. Returns the count replaced. */
sigstr sigstr_windash(arena *a, sigstr s);
/* wide/utf16le, utf16be, utf16 (BOM + LE) */
enum utf16_kind { UTF16_LE = 0, UTF16_BE, UTF16_BOM };
int sigstr_utf16(arena *a, sigstr s, enum utf16_kind kind, sigstr *out);
/* Dash classes → explicit alternatives (for encodings, which need plain bytes). */
int sigstr_expand_classes(arena *a, const sigstr *in, uint32_t in_count, sigstr **out, uint32_t *out_count,
                          uint32_t max);
/* base64 (one result) / base64offset (three); the input must hold no wildcard. */
sigstr sigstr_base64(arena *a, const sigstr *s);
void sigstr_base64offset(arena *a, const sigstr *s, sigstr out[3]);
/* Hyperscan expression for a wildcard string: anchored unless it starts/ends with `*`.
 * Sets *flags; returns NULL when the string is only stars (any value) — see PRED_ANY. */
const char *sigstr_expression(arena *a, const sigstr *s, bool cased, uint32_t *flags);
/* The same for a keyword (already wrapped in stars) when it can be matched over all of an
 * event's values joined by 0xFF: byte mode, `*` and `?` never cross 0xFF. NULL when the
 * value needs UTF-8 mode (non-ASCII letters fold case only there) or holds 0xFF. */
const char *sigstr_keyword_expression(arena *a, const sigstr *s, bool cased, uint32_t *flags);
/* A joined keyword expression's value boundaries (buffer start/end or 0xFF) when not `*`. */
#define KEYWORD_VALUE_START "(?:^|\\xff)"
#define KEYWORD_VALUE_END "(?:\\xff|$)"
/* expand: every %name% (name of [A-Za-z0-9_], the first % not escaped) becomes each of the
 * placeholder's values (all combinations); "\%" becomes "%". -ENOENT names the first
 * placeholder without values in missing; -E2BIG past max results. */
int sigstr_expand_placeholders(arena *a, const sigstr *s, const detect_placeholder *placeholders, size_t count,
                               sigstr **out, uint32_t *out_count, uint32_t max, char *missing, size_t missing_len);

/* ---- field mapping (fields.c) ----------------------------------------------------------- */

/* Where a Sigma field may live in the events a rule with logsource `ls` sees: the ecs_map
 * row path for each logsource those events can have, the winlog System alias and
 * winlog.event_data.<Field> when some of them leave the field unmapped, and
 * winlog.event_data.<Field> as a fallback of `primary` when another field can take the
 * row's path first (the normalizer then leaves this one in EventData). */
struct field_place {
    const char *path;
    const char *primary; /* NULL: a place of its own; else only a displacement fallback */
    bool shared;         /* every fallback of this place has the same primary */
};
uint32_t field_places(const char *field, size_t len, const struct logsource_set *ls, const char *event_data_path,
                      struct field_place *out, uint32_t max);
/* winlog System fields Sigma rules name that core/ecs_map has no row for (e.g. Computer →
 * winlog.computer_name). NULL if none. */
const char *field_system_alias(const char *field, size_t len);
/* Fields the normalizer synthesizes for winlog events (event.kind, event.category…): not
 * part of the original record, so keyword searches skip them. */
bool field_is_synthesized(const char *path, size_t len);
/* The paths field_is_synthesized names besides mamori.*: up to max into out; returns how many exist. */
uint32_t field_synthesized_paths(const char **out, uint32_t *lens, uint32_t max);

/* ---- the compiled rule set ------------------------------------------------------------- */

struct rt_pred {
    uint8_t kind; /* enum pred_kind */
    uint8_t op;
    bool cased;
    uint32_t rule;
    uint32_t field;     /* sigma field id (DETECT_NONE for keywords) */
    uint32_t alt_first; /* PRED_PATTERN: alternatives alt_first..+alt_count */
    uint32_t alt_count;
    uint32_t ref_field; /* PRED_FIELDREF */
    bool trigger;       /* a match of this predicate makes its rule a candidate */
    double number;
    struct cidr cidr;
};

enum enode_kind { EN_FALSE = 0, EN_TRUE, EN_AND, EN_OR, EN_NOT, EN_PRED };
struct enode {
    uint8_t kind;
    uint32_t count; /* AND/OR: kids rs->kids[arg .. arg+count) */
    uint32_t arg;   /* AND/OR: first kid; NOT: the kid; PRED: pred id */
};

struct rt_rule {
    struct route route;
    uint32_t root; /* enode */
    bool always;   /* condition can hold without any trigger predicate matching */
    bool dead;
};

struct path {
    const char *str; /* NUL-terminated */
    uint32_t len;
    uint32_t hash; /* event_path_hash(str, len) */
    uint32_t db_first; /* databases scanning this path's values: rs->path_dbs[db_first..+db_count) */
    uint32_t db_count;
};

/* The path table (path_lookup below): the paths with eager databases and the paths keyword
 * searches skip on winlog events (field_is_synthesized), keyed by event_path_hash (the
 * normalizer stores it in every field: the path's bytes are read on a hit only, to verify
 * it). A field of an event that no database scans usually stops at an empty slot. */
#define PATH_SLOT_SYNTHESIZED 0x80000000u /* ref flag: keyword searches skip the path on winlog events */
#define PATH_SLOT_EXTRA 0x40000000u       /* ref flag: not a path id but rs->extra_paths[ref & PATH_SLOT_ID] */
#define PATH_SLOT_ID 0x3fffffffu
#define PATH_EXTRA_MAX 32
struct path_slot {
    uint32_t hash; /* event_path_hash; 0: empty */
    uint32_t ref;  /* path id (with eager databases) or extra path index, and flags */
};

struct sfield {
    const char *name;
    uint32_t len;
    uint32_t event_data_path; /* path id of winlog.event_data.<name> */
    uint32_t alias_path;      /* detect-side System alias, or DETECT_NONE */
};

/* A database holds the expressions of the rules of one routing class: a category, or for
 * rules without one, a service (0: rules naming neither). An event scans the classes it
 * belongs to only. */
struct db_class {
    uint8_t category; /* enum logsource_category, 0 = none */
    uint8_t product;  /* enum logsource_product, 0 = any */
    uint16_t service; /* enum logsource_service (only when category is 0), 0 = none */
};

/* Necessary for route_applies of every rule of the class (product as there: an event that
 * does not say its OS is not held against it). */
static inline bool db_class_applies(const struct db_class *c, const struct logsource_set *ls)
{
    if (c->product && ls->product && c->product != ls->product) return false;
    if (c->category) return (ls->categories & ((uint64_t)1 << c->category)) != 0;
    return !c->service || c->service == ls->service;
}

/* ---- literal sets (literal.c): exact, prefix and suffix literals without Hyperscan ------ */

enum lit_kind { LIT_EXACT = 0, LIT_PREFIX, LIT_SUFFIX, LIT_CONTAINS };
/* ASCII lowercase of one byte: Hyperscan's caseless folding in byte mode; and back. */
static inline uint8_t ascii_fold(uint8_t c) { return (uint8_t)(c - 'A') < 26 ? (uint8_t)(c + 32) : c; }
static inline uint8_t ascii_upper(uint8_t c) { return (uint8_t)(c - 'a') < 26 ? (uint8_t)(c - 32) : c; }
#if defined(__x86_64__) && defined(__GNUC__) /* AVX2 paths (literal.c, lazy.c), taken when the CPU has it */
#define DETECT_HAVE_AVX2 1
#endif
/* The byte expression s spells at s[i] (before s[to]) the way sigstr_expression writes a
 * value's bytes — a letter or digit as itself, anything else as `\xHH` — into *byte; returns
 * how many characters that took (1 or 4), 0 when no literal byte starts there. */
size_t literal_byte(const char *s, size_t i, size_t to, uint8_t *byte);
struct litset;
/* The kind of a Hyperscan expression that is a plain literal in byte mode (`^lit\z`, `^lit`,
 * `lit\z`, or unanchored `lit`, with literal bytes spelled as
 * sigstr_expression does), its bytes in out (NULL: not wanted; else at least strlen(expr)
 * bytes) and their count in *len; -1 for anything else (wildcards, classes, UTF-8 mode). */
int literal_parse(const char *expr, uint32_t flags, char *out, uint32_t *len);
/* A literal set holds its unanchored (LIT_CONTAINS) expressions of two bytes or more in a
 * substring filter (at most LITERAL_CONTAINS_MAX of them, at most 32 distinct rarest byte
 * pairs in 8 buckets), those of one byte (at most LITERAL_SHORT_MAX) apart, and those of two in a
 * table (at most LITERAL_PAIRS_MAX) when the filter cannot hold them.
 * literal_contains_overflow says which contains expressions among exprs a set cannot hold:
 * those of at least the length it returns (UINT32_MAX: none). They belong in Hyperscan,
 * whose literal matcher handles large sets. */
#define LITERAL_CONTAINS_MAX 64
#define LITERAL_SHORT_MAX 64
#define LITERAL_PAIRS_MAX 1024
uint32_t literal_contains_overflow(const char *const *exprs, const uint32_t *flags, uint32_t count);
/* A set of expressions literal_parse accepts, expression i reported as id i. Owned. */
struct litset *literal_set_build(const char *const *exprs, const uint32_t *flags, uint32_t count);
void literal_set_free(struct litset *set);
size_t literal_set_bytes(const struct litset *set);
/* Calls fn once for every expression of the set matching text[0..len) (in no particular order). */
void literal_set_scan(const struct litset *set, const char *text, size_t len, literal_match_fn fn, void *ctx);
/* Whether a lookup costs more than a memo probe (memo.c): a substring filter, or several
 * prefix/suffix key lengths to probe. */
bool literal_set_worth_memo(const struct litset *set);
/* Whether every expression is a contains literal without '\n': its matches lie within a line. */
bool literal_all_in_line(const char *const *exprs, const uint32_t *flags, uint32_t count);

/* ---- the scan memo (memo.c): memo.h ---------------------------------------------------- */

/* One way of answering a lazy alternative without its lazy databases (lazy.c): a plain
 * literal, a star-only wildcard, a literal set or a Hyperscan database of its own. */
#define ALT_LIT_GLOB 4 /* kinds beyond enum lit_kind: segments between `*` */
#define ALT_LIT_SET 5  /* the alternative's plain literals in a literal set */
#define ALT_LIT_HS 6   /* the alternative's expressions in a Hyperscan database of their own */
struct alt_lit {
    const char *text; /* folded (ASCII lowercase) when caseless; a wildcard's segments in a row */
    uint32_t len;     /* bytes of text */
    uint8_t kind;     /* enum lit_kind, or ALT_LIT_* */
    bool cased;
    bool start, end;  /* ALT_LIT_GLOB: anchored at the value's start, end */
    uint32_t seg_count;
    const uint32_t *seg; /* ALT_LIT_GLOB: the segments' lengths */
    struct litset *set;  /* ALT_LIT_SET (owned) */
    hs_database_t *hs;   /* ALT_LIT_HS (owned by one of the alternatives sharing it) */
    bool owner;
};

struct db {
    hs_database_t *hs;      /* NULL for a literal set */
    struct litset *lit;     /* exact/prefix/suffix literals matched without Hyperscan */
    uint32_t path;         /* DETECT_NONE for the keyword databases */
    struct db_class cls;
    bool joined;           /* keyword database scanned over all values joined */
    bool regex;            /* holds the `re` expressions of its path and class */
    bool lazy;             /* non-trigger patterns: scanned only when a candidate asks */
    bool defer;            /* large: scanned database by database over the batch, not per value */
    bool memo;             /* costlier to scan than to look up in the worker's scan memo */
    bool line_local;       /* contains literals only, none holding '\n': long values by line */
    bool split;            /* or split so: rs->db_splits (compile_db.c split_lines) */
    bool rest_gated;       /* its lines database reports ids from id_count on: rest is worth a scan */
    uint32_t join_min;     /* joined: the fewest bytes of one value any of its expressions
                            * matches (a match never crosses the 0xFF between values, so a
                            * shorter value need not be joined); 0 when unknown */
    uint32_t id_count;     /* distinct expressions */
    const char **exprs;    /* id → expression (borrowed from the rule memory) */
    uint32_t *flags;       /* id → its Hyperscan flags */
    uint32_t *alt_first;   /* id → alts[alt_first[id] .. alt_first[id+1]) */
    uint32_t *alts;
    size_t bytes;
};
/* A database split by line (struct db split): its expressions matching within a line, and the
 * others, both with the whole database's ids. */
struct db_split {
    hs_database_t *lines, *rest;
};

struct detect_ruleset {
    atomic_uint refs;
    uint64_t generation;
    arena mem; /* rules, strings, trees (the loader's memory, moved here) */

    uint32_t rule_count;
    detect_rule **infos;   /* public views, by rule index */
    struct rt_rule *rules;
    struct db_split *db_splits; /* by database, NULL when none is split */
    uint32_t *always;      /* rules with always set (and not dead) */
    uint32_t always_count;

    struct rt_pred *preds;
    uint32_t pred_count;
    uint32_t *alt_pred, *alt_trigger; /* alternative → pred; → the live rule its pred triggers, or DETECT_NONE */
    uint32_t *alt_path; /* alternative → path id */
    /* alternative → the lazy databases holding its patterns: alt_lazy_dbs[alt_lazy_first[a] .. alt_lazy_first[a + 1]),
     * none when scanned eagerly; several when its patterns went to several (split contains values, literal + pattern). */
    uint32_t *alt_lazy_first, *alt_lazy_dbs;
    /* lazy alternative → how lazy.c answers it without a scan: alt_lits[alt_lit_first[a] .. alt_lit_first[a + 1]);
     * none when it cannot (more than LAZY_DIRECT_MAX expressions, or Hyperscan refused its own database) */
    uint32_t *alt_lit_first;
    struct alt_lit *alt_lits;
    size_t alt_bytes; /* their literal sets' and Hyperscan databases' */
    uint32_t alt_count;
    struct enode *nodes;
    uint32_t *kids;
    uint32_t node_count, kid_count;
    struct path *paths;
    uint32_t path_count;
    strmap path_index;
    struct path_slot *path_slots; /* path_slot_mask + 1 slots */
    uint32_t path_slot_mask;
    struct { const char *str; uint32_t len; } extra_paths[PATH_EXTRA_MAX]; /* table paths that are no path id (synthesized ones) */
    uint32_t extra_path_count;
    struct sfield *fields;
    uint32_t field_count;
    uint32_t *row_path; /* ecs_map row index → path id */

    struct db *dbs;
    uint32_t db_count;
    uint32_t *path_dbs;
    struct db_class *path_db_cls; /* the class of each path_dbs entry (no load of the database) */
    uint32_t *keyword_dbs; /* joined-values keyword databases */
    uint32_t keyword_db_count;
    bool join_anchored; /* a joined expression has KEYWORD_VALUE_START/END: no container skip (struct shape) */
    uint32_t *keyword_value_dbs; /* per-value keyword databases (regex, UTF-8) */
    struct db_class *keyword_db_cls, *keyword_value_db_cls; /* their classes, beside them */
    uint32_t keyword_value_db_count;
    hs_scratch_t *scratch_proto;
    size_t scratch_bytes;
    void *hot_map; /* hot.c: the mapping on huge pages, NULL when none */
    size_t hot_map_bytes, hot_bytes;
};

/* hot.c: the read-mostly arrays and Hyperscan databases moved onto one mapping on huge pages
 * once the set is complete; ruleset_hot_release frees them, moved or not, and the mapping. */
void ruleset_hot_move(detect_ruleset *rs);
void ruleset_hot_release(detect_ruleset *rs);
/* compile.c */
int ruleset_build(struct detect_loader *l, struct lrule **rules, uint32_t count, detect_ruleset **out,
                  detect_report *report, char *err, size_t err_len);
void ruleset_free(detect_ruleset *rs);
/* The loader's rule memory, handed to the rule set being built (the loader keeps none). */
arena *loader_take_memory(struct detect_loader *l);
/* loader.c: records a rejection discovered while compiling */
void loader_reject_rule(struct detect_loader *l, struct lrule *r, enum detect_reason reason, const char *fmt, ...)
    MAMORI_PRINTF(4, 5);

/* ---- the worker (eval.c, scan.c) ------------------------------------------------------ */

#define KEYWORD_DBS_MAX 64 /* keyword databases applying to one event (one per class at most) */
/* Keyword values this long are scanned where they lie instead of copied into the join, when
 * every joined database is a literal set (scan.c join_direct): the copy of a 5 KB PowerShell
 * ContextInfo costs more than a call (docs/detection.md §10.25). */
#ifndef JOIN_DIRECT_MIN
#define JOIN_DIRECT_MIN 1024
#endif

struct scan_item {
    uint32_t db, path, event;
    uint32_t len;
    const char *text; /* NULL: w->text + off */
    uint32_t off;
    uint64_t text_hash; /* memo_text_hash of the value, or 0 */
};

struct hit {
    uint32_t event, alt;
};

/* Logsource classifications by (channel, event id) for winlog events (a stream repeats a few;
 * logsource_from_winlog compares the channel against its whole table) and for ECS events by
 * the values logsource_from_ecs reads (event_id -2/-3, the key in channel: classify.c). */
#define LS_CACHE_SLOTS 64
#define LS_CACHE_CHANNEL_MAX 96
struct ls_cache_entry {
    int64_t event_id;
    uint32_t len; /* 0: empty */
    char channel[LS_CACHE_CHANNEL_MAX];
    struct logsource_set ls;
};

/* Paths are short (a few words): compared inline, 8 bytes at a time (4 below 8: a libc
 * memcmp call cost ~2% of the ECS line). The same pointer is the common case: the table keeps
 * ecs_map's own strings, which the normalizer gives mapped fields (compile.c, intern_path_as). */
static inline bool path_equal(const char *a, const char *b, uint32_t len)
{
    if (a == b) return true;
    if (len < 8) {
        if (len < 4) {
            for (uint32_t i = 0; i < len; i++)
                if (a[i] != b[i]) return false;
            return true;
        }
        uint32_t x, y, p, q; /* the first 4 and the last 4, overlapping */
        memcpy(&x, a, 4);
        memcpy(&y, b, 4);
        memcpy(&p, a + len - 4, 4);
        memcpy(&q, b + len - 4, 4);
        return x == y && p == q;
    }
    uint64_t x, y;
    for (uint32_t i = 0; i + 8 < len; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) return false;
    }
    memcpy(&x, a + len - 8, 8);
    memcpy(&y, b + len - 8, 8);
    return x == y;
}

/* The path table's reference for a path (path id or extra path, with flags), or DETECT_NONE
 * when the path is not in it (no eager database scans it and keyword searches do not skip it). */
static inline uint32_t path_lookup(const detect_ruleset *rs, const char *path, uint32_t len, uint32_t hash)
{
    for (uint32_t s = hash & rs->path_slot_mask;; s = (s + 1) & rs->path_slot_mask) {
        const struct path_slot *slot = &rs->path_slots[s];
        if (!slot->hash) return DETECT_NONE;
        if (slot->hash != hash) continue;
        uint32_t id = slot->ref & PATH_SLOT_ID;
        const char *str;
        uint32_t str_len;
        if (slot->ref & PATH_SLOT_EXTRA) {
            str = rs->extra_paths[id].str;
            str_len = rs->extra_paths[id].len;
        } else {
            str = rs->paths[id].str;
            str_len = rs->paths[id].len;
        }
        if (str_len == len && path_equal(str, path, len)) return slot->ref;
    }
}

/* Walk plans by event shape (plan.c). Events of one kind (a Sysmon event id, a Security
 * event id, one agent's process events) carry the same fields in the same order, so what the
 * walk does with each field — which databases scan it (path table lookup, then the
 * logsource's databases of that path) and whether keyword searches read it — is worked out
 * once per shape and replayed. A shape is the sequence of (path hash, path length, flags) of
 * the fields, with the event's logsource and winlog flag; an event matches a cached shape when
 * all of them are equal and the shape's checks hold (shape_build). Direct-mapped, rebuilt on
 * a miss; forgotten by detect_worker_bind. */
#define SHAPE_SLOTS 128
#define SHAPE_FIELDS_MAX 256 /* events with more fields are walked field by field */
struct shape_op {            /* a field the walk does something with */
    uint16_t field;          /* index in the event */
    uint8_t keyword;         /* keyword searches read its value */
    uint8_t suffix;          /* its text ended the shape's container's text when the shape was built */
    uint32_t pid;            /* path id, or DETECT_NONE */
    uint32_t db_first, db_count; /* its databases: shape dbs[db_first..+db_count) */
};
struct shape_check { /* a field whose path the walk must know (see shape_build) */
    uint32_t field;
    const char *str; /* its bytes must be this table path's; NULL: it must be in no slot */
};
struct shape {
    uint64_t tag; /* lookup hash; 0: empty */
    struct logsource_set ls;
    bool winlog;
    uint32_t field_count, op_count, check_count, db_count, join_count;
    /* The field with the longest keyword text (UINT32_MAX: none): a keyword value ending it
     * byte for byte is not joined (plan.c shape_suffixes says why). */
    uint32_t container;
    uint32_t cap, db_cap; /* cap: of keys, ops, checks (field_count at most); dbs grow apart */
    uint64_t *keys; uint8_t *flags; /* per field: shape_field_key, its flags */
    struct shape_op *ops;
    uint32_t *joins; /* fields keyword searches read and nothing else does: only joined (list_event) */
    struct shape_check *checks;
    uint32_t *dbs;
};

/* The key of a field in a shape (its flags are kept beside): path length and hash, one load. */
_Static_assert(offsetof(event_field, path_hash) == offsetof(event_field, path_len) + 4, "path_len, path_hash adjacent");
static inline uint64_t shape_field_key(const event_field *f)
{
    uint64_t k;
    memcpy(&k, &f->path_len, sizeof k);
    return k;
}

struct detect_worker {
    detect_ruleset *rs;
    hs_scratch_t *scratch;
    bool warm; /* detect_worker_set_warm: no value prefetching */
    /* cold batches: the event whose values are being prefetched, a few fields at a time while
     * the walk works on an earlier one (scan.c, prefetch_step), and the next field to fetch */
    const mamori_event *pf_ev;
    uint32_t pf_field;
    const char *pf_line; /* the field array of a later event, a cache line at a time: */
    uint32_t pf_lines;   /* lines of it left to prefetch */
    /* per event */
    uint64_t *alt_bits;
    uint32_t *touched; /* alternatives whose bit is set */
    uint32_t touched_count;
    uint32_t *rule_mark; /* == mark: candidate this event */
    uint32_t *cands;
    uint32_t *field_mark; /* == mark: field_path is resolved for this event */
    uint32_t *field_path;
    uint32_t mark;
    detect_match *matches;
    size_t match_count;
    size_t alt_cap, rule_cap, field_cap, db_cap;
    const mamori_event *ev;
    struct logsource_set ls;
    /* per batch (scan.c); grown to their high-water mark, then reused */
    struct logsource_set batch_ls[DETECT_BATCH_MAX];
    struct scan_item *items, *items_sorted;
    size_t item_count, item_cap, items_sorted_cap;
    struct hit *hits;
    size_t hit_count, hit_cap;
    uint32_t *hits_sorted; /* alternatives, grouped by event */
    size_t hits_sorted_cap;
    uint32_t event_start[DETECT_BATCH_MAX + 1]; /* event → hits_sorted[event_start[e]..[e+1]) */
    uint32_t *db_start;                          /* counting sort by database (scan.c sort_items) */
    uint32_t *lazy_mark;                         /* == mark: lazy database scanned for lazy_path */
    uint32_t *lazy_path;
    char *text; /* rendered numbers of the batch's deferred scans */
    size_t text_len, text_cap;
    char *join; /* the current event's keyword values joined by 0xFF */
    size_t join_len, join_cap;
    const struct db *scan_db;
    uint32_t scan_path, scan_event;
    literal_match_fn scan_fn; /* where a Hyperscan match of the scan in progress goes */
    literal_match_fn memo_fn; /* where a recorded match goes on */
    struct scan_memo memo;
    bool batch_winlog[DETECT_BATCH_MAX]; /* the event has winlog.channel */
    /* The databases that apply to the current event's logsource (scan.c): per path, computed
     * the first time an event of that logsource has the path; forgotten when the logsource
     * changes (consecutive events mostly share one). */
    struct logsource_set plan_ls;
    bool plan_valid;
    uint32_t plan_gen;
    uint32_t *plan_mark; /* per path: == plan_gen when plan_first/plan_count are current */
    uint32_t *plan_first, *plan_count;
    uint32_t *plan_dbs; /* database ids, plan_len used */
    uint32_t plan_len;
    size_t plan_path_cap, plan_db_cap;
    uint32_t plan_joined[KEYWORD_DBS_MAX], plan_per_value[KEYWORD_DBS_MAX]; /* keyword databases */
    uint32_t plan_njoined, plan_nper_value;
    uint32_t plan_join_min; /* values shorter than this are not joined (the plan's dbs' join_min) */
    size_t plan_join_direct; /* values this long are scanned where they lie, not joined (scan.c) */
    struct shape *shapes; /* SHAPE_SLOTS, allocated on first use */
    struct ls_cache_entry ls_cache[LS_CACHE_SLOTS];
    uint32_t channel_at[32], event_id_at[32]; /* by field count % 32: classify.c find_winlog */
    uint32_t ecs_at[4]; /* and of event.category, event.type, host.os.type, dns.question.name */
    /* Where each path was found in the last event that was asked for it (or where it would
     * have sorted): events of one kind hold a path at the same index (path_get); plan_path_cap
     * entries. */
    uint32_t *path_at;
    /* field_resolve_mapped per field for the logsource ls_gen counts (resolve) */
    uint32_t ls_gen;
    struct logsource_set gen_ls;
    bool gen_valid;
    uint32_t *mapped_gen, *mapped_path;
    detect_worker_stats stats;
    literal_match_fn line_fn; /* scan_lines: where a line's match of an expression goes on */
    bool rest_wanted;         /* scan_lines: a line holds a required literal of rest_hs */
};

/* plan.c: the walk's plans. plan_for makes the worker's plan the logsource ls's (its keyword
 * databases: plan_joined, plan_per_value); plan_path gives the databases of path pid that
 * apply to it. shape_get returns the walk plan of event e of the batch (classified, under the
 * current plan), built on a miss; NULL when the event cannot have one (a field without path
 * hash, more than SHAPE_FIELDS_MAX fields): then the caller walks field by field.
 * shapes_forget drops them all (rebind). */
void plan_for(detect_worker *w, const struct logsource_set *ls);
const uint32_t *plan_path(detect_worker *w, uint32_t pid, uint32_t *count);
const struct shape *shape_get(detect_worker *w, const mamori_event *ev, uint32_t e);
/* Whether field f's text ends field c's, byte for byte (a shape's container and its suffixes). */
bool text_ends(const event_field *c, const event_field *f);
void shapes_forget(detect_worker *w);
void shapes_free(detect_worker *w);

/* eval.c: the value at path pid in the event being evaluated (w->ev), as event_get finds it. */
const json_value *path_get(detect_worker *w, uint32_t pid);
/* path_get's field, or NULL: its text (when the normalizer set it) spares loading the value. */
const event_field *path_field(detect_worker *w, uint32_t pid);

/* scan.c: classifies events[0..n) (n <= DETECT_BATCH_MAX) into w->batch_ls, scans them and
 * leaves every event's matched alternatives in w->hits_sorted / w->event_start. */
void scan_batch(detect_worker *w, const mamori_event *events, uint32_t n);
void classify(detect_worker *w, const mamori_event *ev, uint32_t e); /* classify.c: batch_ls[e], batch_winlog[e] */
/* Scans the current event's value at `path` with lazy database `db`, setting alternative
 * bits directly (the event is being evaluated). */
void scan_lazy(detect_worker *w, uint32_t db, uint32_t path);
/* lazy.c: lists how each lazy alternative is answered (alt_lit_first/alt_lits, own Hyperscan
 * databases compiled on up to threads threads); lazy_direct answers one for the current event's
 * value at path: 1 (its bit set) or 0, or -1 when a scan costs less (an array, a long list). */
#ifndef LAZY_DIRECT_MAX
#define LAZY_DIRECT_MAX 64 /* more expressions per alternative: scanned (a long list costs what a scan does) */
#endif
bool lazy_expr_answerable(const char *expr, uint32_t flags);
void order_kids(detect_ruleset *rs); /* eval_plan.c: kids of every AND/OR, bit readers first */
/* compile_db.c: fn(i, ctx) for every i < count, on up to threads threads (0: one per CPU). */
void compile_parallel(uint32_t count, unsigned threads, void (*fn)(uint32_t i, void *ctx), void *ctx);
void lazy_direct_build(detect_ruleset *rs, unsigned threads);
void lazy_direct_free(detect_ruleset *rs); /* the sets and databases alt_lits own (hot.c frees the arrays) */
int lazy_direct(detect_worker *w, uint32_t alt, uint32_t path);

/* fields.c: runtime resolution of a Sigma field to the path it lives at in an event. The
 * field's winlog.event_data.<Field> when the event has it (the caller checks: eval.c
 * resolve); else, here, the ecs_map row for the event's logsource ls, else the System alias,
 * else the event_data path. */
uint32_t field_resolve_mapped(const detect_ruleset *rs, uint32_t field, const struct logsource_set *ls);

/* direct.c: predicates evaluated without Hyperscan. */
bool direct_eval(const detect_ruleset *rs, const struct rt_pred *p, const json_value *v, const json_value *ref);
/* Parsing helpers shared with the loader. */
bool direct_parse_cidr(const char *s, size_t len, struct cidr *out);
bool direct_parse_number(const char *s, size_t len, double *out);
/* Text of a scalar for scanning: strings as is, numbers as their text, booleans as
 * "true"/"false". false for null, arrays and objects. tmp holds at least 32 bytes. */
bool direct_scalar_text(const json_value *v, char *tmp, const char **text, size_t *len);

#endif

/* detect/detect.h — Sigma rules compiled to Hyperscan and evaluated on normalized events.
 *
 * Three objects, three lifetimes:
 *   detect_loader   reads Sigma YAML (files, directories, or text), rejects what it cannot
 *                   load with file, line and reason, and builds a rule set. Build-time only.
 *   detect_ruleset  the compiled rule set: an immutable, refcounted snapshot. Any number of
 *                   threads read it at once; the owner swaps a new one in (detect_slot) and
 *                   the old one is freed when its last reader lets go.
 *   detect_worker   per-thread evaluation state (Hyperscan scratch, match bitsets, candidate
 *                   lists). One per thread, never shared; detect_eval never calls malloc.
 *
 * Semantics follow the Sigma specification v2 (docs/detection.md lists every decision and
 * every deviation). No Hyperscan or libfyaml type appears here. */
#ifndef MAMORI_DETECT_DETECT_H
#define MAMORI_DETECT_DETECT_H

#include "core/base.h"
#include "core/buf.h"
#include "core/event.h"
#include "core/json.h"

/* ---- rules as the rest of the system sees them ---------------------------------------- */

enum detect_level {
    DETECT_LEVEL_NONE = 0, /* no level, or one the specification does not name */
    DETECT_LEVEL_INFORMATIONAL,
    DETECT_LEVEL_LOW,
    DETECT_LEVEL_MEDIUM,
    DETECT_LEVEL_HIGH,
    DETECT_LEVEL_CRITICAL,
};

/* One loaded rule. Every pointer is owned by the rule set it came from and lives exactly as
 * long as that rule set; copy what must outlive it. Strings are NUL-terminated; absent
 * attributes are "" (never NULL) except x_mamori / x_mamori_json. */
typedef struct detect_rule {
    const char *id;          /* Sigma `id` */
    const char *name;        /* Sigma `name` */
    const char *title;       /* Sigma `title` (mandatory) */
    const char *status;      /* `status` as written */
    const char *level_name;  /* `level` as written */
    enum detect_level level;
    const char *description;
    const char *const *tags; /* `tags`, as written */
    uint32_t tag_count;
    const char *const *attack_ids; /* ATT&CK ids from attack.tNNNN[.NNN] tags: "T1059.001" */
    uint32_t attack_count;
    const char *product; /* logsource as written */
    const char *category;
    const char *service;
    const char *x_mamori_json;  /* the rule's `x-mamori` extension as compact JSON, or NULL */
    const json_value *x_mamori; /* the same, parsed (e.g. {"response":["isolate"]}), or NULL */
    const char *file;           /* where the rule was loaded from */
    uint32_t line;              /* line of the rule's document (1-based) */
    uint32_t index;             /* position in its rule set */
} detect_rule;

/* Appends the alert's "rule" object: {"id","title","level","status","tags","attack",
 * "file","line"[,"x-mamori"]} as compact JSON. */
void detect_rule_write_json(buf *out, const detect_rule *rule);

/* ---- loading --------------------------------------------------------------------------- */

/* A value list for the `expand` modifier's %name% placeholders. Values are Sigma strings
 * (wildcards and escapes apply). A rule using a placeholder with no configured values is
 * rejected, as the specification requires of tools that cannot resolve it. */
typedef struct detect_placeholder {
    const char *name; /* without the % signs */
    const char *const *values;
    size_t value_count;
} detect_placeholder;

typedef struct detect_options {
    bool include_deprecated;  /* load `status: deprecated` rules (default: skipped) */
    bool include_unsupported; /* load `status: unsupported` rules (default: skipped) */
    const detect_placeholder *placeholders; /* borrowed until detect_loader_create returns */
    size_t placeholder_count;
    unsigned compile_threads;      /* Hyperscan compile threads; 0 = online CPUs (max 16) */
    uint32_t rules_max;            /* rules per rule set */
    uint32_t values_per_item_max;  /* values of one field (after expansion) */
    uint32_t pattern_bytes_max;    /* bytes of one compiled expression */
    uint32_t file_bytes_max;       /* bytes of one rule file */
    bool correlations; /* load correlation documents (detect/correlate.h); false: skip them */
} detect_options;

/* Defaults: skip deprecated/unsupported, no placeholders, 100000 rules, 65536 values per
 * item, 16 KiB per expression, 4 MiB per file. */
void detect_options_default(detect_options *opt);

/* Why a rule was not loaded. Skips are deliberate (status, correlation rules); rejections
 * are rules we cannot run. Names are stable (they appear in reports and metrics). */
enum detect_reason {
    DETECT_REASON_YAML = 0,          /* not valid YAML */
    DETECT_REASON_NOT_A_RULE,        /* document is not a Sigma rule (no title/logsource/detection…) */
    DETECT_REASON_ATTRIBUTE,         /* a rule attribute has the wrong type */
    DETECT_REASON_DETECTION,         /* malformed detection section */
    DETECT_REASON_UNKNOWN_MODIFIER,  /* a modifier the specification does not define */
    DETECT_REASON_MODIFIER,          /* a modifier applied where the specification forbids it */
    DETECT_REASON_VALUE,             /* a value its modifiers cannot take (bad CIDR, number…) */
    DETECT_REASON_CONDITION,         /* condition syntax error or unknown identifier */
    DETECT_REASON_AGGREGATION,       /* deprecated `| count()` aggregation syntax */
    DETECT_REASON_PLACEHOLDER,       /* `expand` placeholder with no configured values */
    DETECT_REASON_REGEX,             /* regular expression Hyperscan cannot compile */
    DETECT_REASON_LIMIT,             /* a configured limit was hit */
    DETECT_REASON_DUPLICATE_ID,      /* a rule with the same id was loaded first */
    DETECT_REASON_COLLECTION,        /* Sigma 1.x rule collections (`action:` documents) */
    DETECT_REASON_FILTER,            /* a Sigma filter document that cannot be applied */
    DETECT_REASON_FILE,              /* file unreadable or too large */
    DETECT_REASON_CORRELATION,       /* a correlation rule we cannot run (detect/correlate.h) */
    /* skips: counted apart from rejections */
    DETECT_REASON_SKIP_DEPRECATED,   /* status: deprecated */
    DETECT_REASON_SKIP_UNSUPPORTED,  /* status: unsupported */
    DETECT_REASON_SKIP_CORRELATION,  /* correlation rules not supported yet (detect_options.correlations off) */
    DETECT_REASON_COUNT
};
const char *detect_reason_name(enum detect_reason reason);
static inline bool detect_reason_is_skip(enum detect_reason reason)
{
    return reason >= DETECT_REASON_SKIP_DEPRECATED && reason < DETECT_REASON_COUNT;
}

typedef struct detect_problem {
    const char *file;
    uint32_t line; /* 1-based; 0 when the whole file is concerned */
    enum detect_reason reason;
    const char *message; /* e.g. "unknown modifier 'containz'" */
    const char *rule_id; /* "" when unknown */
    const char *title;   /* "" when unknown */
} detect_problem;

typedef struct detect_report {
    uint32_t files;      /* rule files read */
    uint32_t documents;  /* YAML documents seen */
    uint32_t loaded;     /* rules in the rule set */
    uint32_t rejected;   /* sum of the rejection reasons */
    uint32_t skipped;    /* sum of the skip reasons */
    uint32_t filters;    /* Sigma filter documents applied */
    uint32_t unroutable; /* loaded rules whose logsource no event classification produces
                          * (products and services core/logsource.h does not know) */
    uint32_t by_reason[DETECT_REASON_COUNT];
    const detect_problem *problems; /* every rejection and skip, in load order */
    size_t problem_count;
    double load_ms;     /* reading and parsing YAML, building predicates */
    double compile_ms;  /* Hyperscan compilation (wall clock, all threads) */
    uint32_t databases; /* one per ECS field, plus one for keywords */
    uint32_t patterns;  /* distinct expressions over all databases */
    uint32_t predicates;
    uint64_t database_bytes; /* sum of hs_database_size */
    uint64_t scratch_bytes;  /* per worker */
    uint64_t hot_bytes; /* read-mostly data placed together on one mapping, of 2 MiB pages from 1 MiB on (0: none) */
    uint32_t correlations;   /* correlation rules loaded (correlate_set_build) */
} detect_report;

typedef struct detect_loader detect_loader;
typedef struct detect_ruleset detect_ruleset;

/* Copies *opt (NULL = defaults) including the placeholder values. */
detect_loader *detect_loader_create(const detect_options *opt);
void detect_loader_destroy(detect_loader *loader);

/* Loads a rule file or, recursively, every *.yml / *.yaml under a directory (sorted order).
 * Bad rules are recorded in the report, not returned as errors: this fails (-errno, with
 * err filled) only when path itself cannot be read. */
int detect_loader_add_path(detect_loader *loader, const char *path, char *err, size_t err_len) MAMORI_WUR;

/* Loads every YAML document of text[0..len) as if read from a file called `name`.
 * Borrows text and name for the call only. */
void detect_loader_add_text(detect_loader *loader, const char *name, const char *text, size_t len);

/* Compiles everything loaded so far into a rule set (also when it holds no rule). Returns
 * an owned reference in *out. The loader keeps its report and may be destroyed at once;
 * it cannot build twice. -ENOMEM-like failures of Hyperscan itself give -EIO with err. */
int detect_loader_build(detect_loader *loader, detect_ruleset **out, char *err, size_t err_len) MAMORI_WUR;

/* The report so far (final after detect_loader_build). Borrowed from the loader. */
const detect_report *detect_loader_report(const detect_loader *loader);

/* ---- the rule set snapshot ------------------------------------------------------------- */

/* Adds a reference and returns rs. Thread-safe. */
detect_ruleset *detect_ruleset_ref(detect_ruleset *rs);
/* Drops a reference; the last one frees the rule set. Thread-safe. NULL is fine. */
void detect_ruleset_unref(detect_ruleset *rs);

size_t detect_ruleset_rule_count(const detect_ruleset *rs);
/* Borrowed; valid while the caller holds a reference. */
const detect_rule *detect_ruleset_rule(const detect_ruleset *rs, size_t index);
/* Unique per rule set built in this process (workers use it to notice a swap). */
uint64_t detect_ruleset_generation(const detect_ruleset *rs);

/* An owner's slot holding the current rule set: readers take a reference per batch, a
 * reload swaps in the next one. A swap never blocks readers for longer than a pointer copy. */
typedef struct detect_slot detect_slot;
detect_slot *detect_slot_create(void);
/* Drops the slot's reference. */
void detect_slot_destroy(detect_slot *slot);
/* Takes the caller's reference to rs (may be NULL) and releases the previous rule set. */
void detect_slot_set(detect_slot *slot, detect_ruleset *rs);
/* Returns a new reference to the current rule set (NULL if none): unref when done. */
detect_ruleset *detect_slot_get(detect_slot *slot);

/* ---- evaluation ------------------------------------------------------------------------ */

typedef struct detect_worker detect_worker;

typedef struct detect_match {
    const detect_rule *rule; /* borrowed from the worker's bound rule set */
} detect_match;

typedef struct detect_worker_stats {
    uint64_t events;     /* events evaluated */
    uint64_t scans;      /* value scans asked for: hs_scan calls, literal-set lookups, memo hits */
    uint64_t memo_hits;  /* of which answered by the worker's scan memo (detect/memo.c) */
    uint64_t candidates; /* rules whose condition was evaluated */
    uint64_t matches;
    uint64_t scan_errors; /* hs_scan failures (logged, rate-limited): should stay 0 */
    uint64_t shape_hits;  /* events walked by a cached walk plan of their shape (plan.c) */
    uint64_t shape_builds; /* walk plans built (a shape not cached, or its slot taken by another) */
    uint64_t lazy_direct; /* lazy predicates answered from the value itself, without a scan (lazy.c) */
    uint64_t lazy_scans;  /* lazy databases scanned for a candidate (at most once per event and path) */
    uint64_t join_suffixes; /* values left out of the keyword join: they end a longer value that is in it */
    uint64_t line_hits;   /* lines of long values answered by the scan memo (scan.c scan_lines) */
} detect_worker_stats;

detect_worker *detect_worker_create(void);
/* Releases the bound rule set, if any. */
void detect_worker_destroy(detect_worker *w);

/* Binds the worker to rs (taking its own reference, releasing the previous one) and sizes
 * its scratch and bitsets for it: call it whenever the current rule set changed, not per
 * event. Cheap when rs is already bound. -ENOMEM-like Hyperscan failures give -EIO. */
int detect_worker_bind(detect_worker *w, detect_ruleset *rs) MAMORI_WUR;

/* warm: the caller has just built the events it evaluates (parsed and normalized them
 * itself, as mamorictl scan does), so their values are still in cache and the batch walk
 * does not prefetch them. Default false: events that arrive cold (the bus, the store).
 * Changes speed only, never results. */
void detect_worker_set_warm(detect_worker *w, bool warm);

/* Evaluates every rule that routes to ev and returns the matching ones through *matches
 * (owned by the worker, valid until its next detect_eval or bind), in rule set order, each
 * rule at most once. Borrows ev for the call. No allocation. The worker must be bound. */
size_t detect_eval(detect_worker *w, const mamori_event *ev, const detect_match **matches);

/* Called once per match: event index in the batch, the rule (borrowed as above). */
typedef void (*detect_match_fn)(void *ctx, size_t event_index, const detect_rule *rule);

/* Evaluates events[0..count) as one batch and calls fn for every match, event by event, each
 * event's rules in rule set order — the same matches detect_eval gives one event at a time,
 * faster: the batch is scanned database by database, so each Hyperscan database is walked
 * once per batch while it is in cache (internally in chunks of 256 events). Borrows events
 * for the call. Returns the number of matches. No allocation once the worker's buffers have
 * grown to the largest batch seen. */
size_t detect_eval_batch(detect_worker *w, const mamori_event *events, size_t count, detect_match_fn fn, void *ctx);

void detect_worker_stats_get(const detect_worker *w, detect_worker_stats *out);

#ifdef DETECT_PROFILE
#include <stdio.h>
/* Tuning builds only (-DDETECT_PROFILE): cycles spent per database since the last call,
 * the costliest first. Not thread-safe: one worker at a time. */
void detect_profile_print(const detect_ruleset *rs, FILE *out);
#endif

#ifdef DETECT_AB
/* Tuning builds only (-DDETECT_AB): which of two variants of a change under test runs, 0 or
 * 1 (DETECT_AB_PICK in detect/internal.h). `bench_detect_bench --only ab` times both on the same
 * batches (docs/detection.md §10.15). Process-wide; not thread-safe. */
extern int detect_ab_variant;
#endif

#endif

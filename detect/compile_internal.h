/* detect/compile_internal.h — the rule-set builder's state, shared by the rule compiler
 * (compile.c) and the database builder (compile_db.c). */
#ifndef MAMORI_DETECT_COMPILE_INTERNAL_H
#define MAMORI_DETECT_COMPILE_INTERNAL_H

#include "internal.h"

#define PATHS_PER_FIELD_MAX 16
#define COMPILE_THREADS_MAX 16
#define LINES_REST_MAX 8 /* expressions left for the whole value when a database is split by line */

/* growable arrays */
#define VEC_PUSH(arr, count, cap, value)                                                   \
    do {                                                                                   \
        if ((count) == (cap)) {                                                            \
            (cap) = (cap) ? (cap) * 2 : 256;                                               \
            (arr) = mamori_xrealloc((arr), (size_t)(cap) * sizeof *(arr));                 \
        }                                                                                  \
        (arr)[(count)++] = (value);                                                        \
    } while (0)

struct entry {
    const char *expr;
    uint32_t flags;
    uint32_t alt;
    bool joined; /* keyword pattern for the joined-values database */
    bool regex;  /* user regular expression: kept in a database of its own */
};

struct db_build {
    uint32_t path; /* DETECT_NONE: keywords */
    bool joined;   /* the joined-values keyword database */
    bool regex;    /* the regular-expression database of its path and class */
    bool lazy;     /* non-trigger patterns of its path and class */
    bool literal;  /* anchored plain literals: a literal set, not a Hyperscan database */
    struct db_class cls;
    struct entry *entries;
    uint32_t count, cap;
    /* filled by prepare/compile */
    const char **exprs;
    uint32_t *flags;
    uint32_t *alt_first;
    uint32_t *alts;
    uint32_t id_count;
    hs_database_t *hs;
    struct litset *lit;
    bool line_local, rest_gated;       /* struct db's, from compile_db */
    hs_database_t *lines_hs, *rest_hs; /* struct db's, from compile_db */
    int failed_expression; /* -1: none; -2: whole database */
    char error[256];
};

typedef struct builder {
    detect_ruleset *rs;
    detect_loader *loader;
    uint32_t pred_cap, alt_cap, node_cap, kid_cap, path_cap, field_cap;
    strmap field_index; /* Sigma field name → field id */
    uint32_t *alt_primary; /* alternative → primary path of a displacement fallback, or NONE */
    struct entry *pending; /* expressions of every alternative, before distribution */
    uint32_t pending_count, pending_cap;
    uint32_t *path_target; /* path → the path whose database scans it */
    double *strength;      /* pred → how rarely it should match (trigger choice) */
    const struct pspec **pspec; /* pred → its specification */
    uint32_t strength_cap;
    struct db_build *builds;
    uint32_t build_count, build_cap;
    uint64_t *build_keys; /* open addressing: (path, class, joined) → build index + 1 */
    uint32_t *build_slots;
    uint32_t build_slot_cap;
} builder;

/* strength.c: a static guess of how rarely predicate ps matches (trigger choice). */
double pred_strength(const struct pspec *ps);
/* The longest literal (ASCII, at most cap bytes, into out) every match of regular expression
 * expr (its Hyperscan flags) contains, compared caselessly; 0 when there is none this reader
 * can vouch for (a top-level alternation, Unicode case folding, syntax it does not know). */
uint32_t regex_factor(const char *expr, uint32_t flags, char *out, uint32_t cap);
#define FACTOR_MIN 3 /* shorter required literals hold on too many values to be worth it */

/* Sorts db's entries, gives each distinct (expression, flags) an id and lists its alternatives. */
void db_prepare(struct db_build *db);
/* Compiles every database of b on up to threads threads (literal sets built in place). */
void db_compile_all(builder *b, unsigned threads);
/* A database Hyperscan refused: rejects the rules using the failing expression (named in the
 * report) and rebuilds db without them; 0 once it compiles, -EIO if it still cannot. */
int db_repair(builder *b, struct lrule **lrules, const uint32_t *rule_source, struct db_build *db) MAMORI_WUR;

#endif

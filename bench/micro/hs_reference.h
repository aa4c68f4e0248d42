/* bench/micro/hs_reference.h — the machine reference of issue 4, measured on the host at hand
 * so that the detection figures of one run can be read against it: "Hyperscan with 3,000
 * caseless patterns scans ≈ 10.5M strings/s (≈ 95 ns per 130 B field), and each hs_scan call
 * has ≈ 40 ns fixed cost". The issue does not say which patterns and strings; these are ours:
 * - patterns: 3,000 distinct plain values (no wildcard, 8 to 200 bytes) of SigmaHQ
 *   `contains`, `startswith` and `endswith` lists, taken evenly from all such values of the
 *   rule directories sorted (so the same rules give the same set); caseless literals,
 *   HS_FLAG_SINGLEMATCH, block mode;
 * - strings: the first 130 bytes of every event field text of 130 bytes or more, one hs_scan
 *   each; timed all, and apart the ones no pattern matches (the scan without match handling);
 * - fixed cost: hs_scan of 16 zero bytes.
 * Hyperscan's speed on real text depends on how often its literal filter fires, so this line
 * is for comparing hosts and moments (print it in the same run as the lines it explains), not
 * a reproduction of the issue's figure. Header-only: every .c in bench/micro is a benchmark of
 * its own. */
#ifndef MAMORI_BENCH_HS_REFERENCE_H
#define MAMORI_BENCH_HS_REFERENCE_H

#include "core/base.h"

#include <dirent.h>
#include <hs/hs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define REF_PATTERNS 3000
#define REF_FIELD 130 /* bytes per string */
#define REF_MIN_LEN 8 /* bytes per literal at least: the short ones (.exe, \\x) match most strings */
#define REF_ISSUE_STRINGS_PER_S 10.5e6
#define REF_ISSUE_FIXED_NS 40.0

struct ref_values {
    char **v;
    size_t count, cap;
};

static inline void ref_value_add(struct ref_values *r, const char *s, size_t len)
{
    if (len < REF_MIN_LEN || len > 200) return;
    if (r->count == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4096;
        r->v = mamori_xrealloc(r->v, r->cap * sizeof *r->v);
    }
    char *c = mamori_xmalloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '*' || s[i] == '?') { /* a wildcard: not a literal value */
            free(c);
            return;
        }
        c[n++] = s[i];
        if (s[i] == '\'' && i + 1 < len && s[i + 1] == '\'') i++; /* YAML's '' in single quotes */
    }
    c[n] = '\0';
    r->v[r->count++] = c;
}

/* The scalar of a YAML line's value part (quoted or plain), without quotes; NULL if none. */
static inline const char *ref_scalar(const char *p, size_t *len)
{
    while (*p == ' ') p++;
    if (*p == '\'' || *p == '"') {
        char q = *p++;
        const char *s = p;
        while (*p && !(*p == q && !(q == '\'' && p[1] == '\''))) p += (q == '\'' && *p == '\'') ? 2 : 1;
        *len = (size_t)(p - s);
        return *p == q ? s : NULL;
    }
    size_t n = strcspn(p, "\r\n#");
    while (n && p[n - 1] == ' ') n--;
    *len = n;
    return n && *p != '[' && *p != '{' && *p != '|' && *p != '>' ? p : NULL;
}

/* The values under `Field|contains:` (…startswith, endswith, with or without `|all`) of one
 * rule file: inline or as a list on the following lines. */
static inline void ref_rule_file(struct ref_values *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[4096];
    int list_indent = -1; /* indent of the key whose list items are collected, -1: none */
    while (fgets(line, sizeof line, f)) {
        int indent = (int)strspn(line, " ");
        const char *p = line + indent;
        size_t len;
        if (list_indent >= 0 && indent > list_indent && p[0] == '-' && p[1] == ' ') {
            const char *s = ref_scalar(p + 2, &len);
            if (s) ref_value_add(r, s, len);
            continue;
        }
        list_indent = -1;
        const char *colon = strstr(p, ":");
        if (!colon || colon == p) continue;
        size_t key = (size_t)(colon - p);
        char k[256];
        if (key >= sizeof k) continue;
        memcpy(k, p, key);
        k[key] = '\0';
        if (strchr(k, ' ') || !(strstr(k, "|contains") || strstr(k, "|startswith") || strstr(k, "|endswith")) ||
            strstr(k, "|re") || strstr(k, "|base64") || strstr(k, "|wide") || strstr(k, "|utf16") ||
            strstr(k, "|windash") || strstr(k, "|expand") || strstr(k, "|cased"))
            continue;
        const char *s = ref_scalar(colon + 1, &len);
        if (s) ref_value_add(r, s, len);
        else list_indent = indent;
    }
    fclose(f);
}

static inline void ref_rule_dir(struct ref_values *r, const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) return;
    for (int i = 0; i < n; i++) {
        char path[2048];
        int plen = snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        struct stat st;
        size_t nlen = strlen(names[i]->d_name);
        if (plen > 0 && (size_t)plen < sizeof path && names[i]->d_name[0] != '.' && stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode)) ref_rule_dir(r, path);
            else if (nlen > 4 && !strcmp(names[i]->d_name + nlen - 4, ".yml")) ref_rule_file(r, path);
        }
        free(names[i]);
    }
    free(names);
}

static inline int ref_on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                                void *ctx)
{
    (void)id, (void)from, (void)to, (void)flags;
    *(int *)ctx = 1;
    return 0;
}

static inline int ref_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline int ref_cmp_str(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int c = strcasecmp(x, y);
    return c ? c : strcmp(x, y);
}

/* Strings/s and the fixed ns per call on this host (median of runs, thread CPU time), with the
 * issue's figures beside them. strings: `count` strings of REF_FIELD bytes, back to back. */
static inline void bench_hs_reference(const char *const *rule_dirs, size_t dirs, const char *strings, size_t count,
                                      int runs, double (*clock)(void))
{
    struct ref_values r = {0};
    for (size_t i = 0; i < dirs; i++) ref_rule_dir(&r, rule_dirs[i]);
    qsort(r.v, r.count, sizeof *r.v, ref_cmp_str);
    size_t uniq = 0;
    for (size_t i = 0; i < r.count; i++) {
        if (uniq && !strcasecmp(r.v[uniq - 1], r.v[i])) free(r.v[i]);
        else r.v[uniq++] = r.v[i];
    }
    if (uniq < REF_PATTERNS || count == 0) {
        printf("reference: %zu distinct values, %zu strings: too few, skipped\n", uniq, count);
        return;
    }
    const char *pat[REF_PATTERNS];
    size_t lens[REF_PATTERNS];
    unsigned flags[REF_PATTERNS], ids[REF_PATTERNS];
    for (size_t i = 0; i < REF_PATTERNS; i++) {
        pat[i] = r.v[i * uniq / REF_PATTERNS];
        lens[i] = strlen(pat[i]);
        flags[i] = HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH;
        ids[i] = (unsigned)i;
    }
    hs_database_t *db = NULL;
    hs_compile_error_t *cerr = NULL;
    if (hs_compile_lit_multi(pat, flags, ids, lens, REF_PATTERNS, HS_MODE_BLOCK, NULL, &db, &cerr) != HS_SUCCESS) {
        printf("reference: compile: %s\n", cerr ? cerr->message : "?");
        hs_free_compile_error(cerr);
        return;
    }
    hs_scratch_t *scratch = NULL;
    if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS) abort();
    /* the strings no pattern matches, apart: the scan without match handling */
    char *quiet = mamori_xmalloc(count * REF_FIELD);
    size_t quiet_count = 0;
    for (size_t i = 0; i < count; i++) {
        int hit = 0;
        hs_scan(db, strings + i * REF_FIELD, REF_FIELD, 0, scratch, ref_on_match, &hit);
        if (!hit) memcpy(quiet + quiet_count++ * REF_FIELD, strings + i * REF_FIELD, REF_FIELD);
    }
    static const char zeros[16];
    double t_str[100], t_quiet[100], t_fix[100];
    if (runs > 100) runs = 100;
    for (int run = -1; run < runs; run++) {
        double t0 = clock();
        for (size_t i = 0; i < count; i++)
            hs_scan(db, strings + i * REF_FIELD, REF_FIELD, 0, scratch, ref_on_match, &(int){0});
        double t1 = clock();
        for (size_t i = 0; i < quiet_count; i++)
            hs_scan(db, quiet + i * REF_FIELD, REF_FIELD, 0, scratch, ref_on_match, &(int){0});
        double t2 = clock();
        for (size_t i = 0; i < count; i++) hs_scan(db, zeros, sizeof zeros, 0, scratch, ref_on_match, &(int){0});
        double t3 = clock();
        if (run >= 0) t_str[run] = t1 - t0, t_quiet[run] = t2 - t1, t_fix[run] = t3 - t2;
    }
    qsort(t_str, (size_t)runs, sizeof *t_str, ref_cmp_double);
    qsort(t_quiet, (size_t)runs, sizeof *t_quiet, ref_cmp_double);
    qsort(t_fix, (size_t)runs, sizeof *t_fix, ref_cmp_double);
    double ns_all = t_str[runs / 2] / (double)count * 1e9, ns_fix = t_fix[runs / 2] / (double)count * 1e9;
    double ns_quiet = quiet_count ? t_quiet[runs / 2] / (double)quiet_count * 1e9 : 0.0;
    printf("reference: Hyperscan, %d caseless SigmaHQ literals (of %zu), %zu strings of %d B: %.0f ns/string "
           "(%.2fM/s); the %zu no literal matches: %.0f ns (%.2fM/s); hs_scan of 16 zero bytes: %.0f ns. Issue 4's "
           "machine: %.0f ns (%.1fM/s), fixed cost %.0f ns\n",
           REF_PATTERNS, uniq, count, REF_FIELD, ns_all, 1e3 / ns_all, quiet_count, ns_quiet,
           ns_quiet > 0 ? 1e3 / ns_quiet : 0.0, ns_fix, 1e9 / REF_ISSUE_STRINGS_PER_S, REF_ISSUE_STRINGS_PER_S / 1e6,
           REF_ISSUE_FIXED_NS);
    free(quiet);
    hs_free_scratch(scratch);
    hs_free_database(db);
    for (size_t i = 0; i < uniq; i++) free(r.v[i]);
    free(r.v);
}

#endif

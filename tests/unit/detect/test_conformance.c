/* tests/unit/detect/test_conformance.c — the SigmaHQ conformance data through the library:
 * (1) every regression case in MAMORI_DATA_DIR/sigma/regression_data: load the rule its
 * info.yml names (found by id across the rule directories), normalize the case's evtx_dump
 * events, and require the rule to fire at least match_count times; (2) the whole SigmaHQ
 * rule set loads, with every rejection listed and of a reason the specification mandates
 * (an `expand` placeholder nobody configured). Skipped when the data is absent. */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <libfyaml.h>
#include <sys/stat.h>

#define SIGMA_DIR MAMORI_DATA_DIR "/sigma"
static const char *const rule_dirs[] = {SIGMA_DIR "/rules", SIGMA_DIR "/rules-emerging-threats",
                                        SIGMA_DIR "/rules-threat-hunting"};

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)(n > 0 ? n : 0) + 1);
    size_t got = fread(data, 1, (size_t)(n > 0 ? n : 0), f);
    fclose(f);
    data[got] = '\0';
    *len = got;
    return data;
}

/* ---- rule id → file ---------------------------------------------------------------------------- */

struct id_entry {
    char id[40];
    char *path;
};
static struct id_entry *ids;
static size_t id_count, id_cap;

static void index_file(const char *path)
{
    size_t len;
    char *text = read_all(path, &len);
    if (!text) return;
    for (char *line = text; line && *line;) {
        if (!strncmp(line, "id: ", 4)) {
            if (id_count == id_cap) {
                id_cap = id_cap ? id_cap * 2 : 4096;
                ids = realloc(ids, id_cap * sizeof *ids);
            }
            size_t n = strcspn(line + 4, "\r\n \t");
            snprintf(ids[id_count].id, sizeof ids[id_count].id, "%.*s", (int)MAMORI_MIN(n, 39), line + 4);
            ids[id_count].path = strdup(path);
            id_count++;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    free(text);
}

typedef void (*visit_fn)(const char *path, void *ctx);

static void walk(const char *dir, const char *suffix, visit_fn fn, void *ctx)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) return;
    for (int i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        struct stat st;
        if (names[i]->d_name[0] != '.' && stat(path, &st) == 0) {
            size_t pl = strlen(path), sl = strlen(suffix);
            if (S_ISDIR(st.st_mode)) walk(path, suffix, fn, ctx);
            else if (pl >= sl && !strcmp(path + pl - sl, suffix)) fn(path, ctx);
        }
        free(names[i]);
    }
    free(names);
}

static void index_visit(const char *path, void *ctx)
{
    (void)ctx;
    index_file(path);
}

static const char *rule_file(const char *id)
{
    for (size_t i = 0; i < id_count; i++)
        if (!strcmp(ids[i].id, id)) return ids[i].path;
    return NULL;
}

/* ---- one regression case ----------------------------------------------------------------------- */

struct tally {
    unsigned cases, passed, no_test, failed;
};

static const char *scalar_at(struct fy_node *n, const char *ypath)
{
    struct fy_node *v = fy_node_by_path(n, ypath, (size_t)-1, FYNWF_DONT_FOLLOW);
    return v ? fy_node_get_scalar0(v) : NULL;
}

static size_t count_fires(const char *rule_path, const char *rule_id, const char *events_path)
{
    detect_loader *l = detect_loader_create(NULL);
    char err[256];
    assert_int_equal(detect_loader_add_path(l, rule_path, err, sizeof err), 0);
    detect_ruleset *rs;
    assert_int_equal(detect_loader_build(l, &rs, err, sizeof err), 0);
    if (detect_loader_report(l)->loaded != 1) harness_print_problems(detect_loader_report(l));
    assert_int_equal(detect_loader_report(l)->loaded, 1);
    detect_worker *w = detect_worker_create();
    assert_int_equal(detect_worker_bind(w, rs), 0);
    json_parser *p = json_parser_create();
    normalizer *norm = normalizer_create();
    arena a;
    arena_init(&a, 64 * 1024);
    size_t len = 0, pos = 0, fired = 0;
    char *text = read_all(events_path, &len);
    assert_non_null(text);
    event_stamp stamp = {.tenant = "offline", .agent_id = "scan", .agent_hash = 1, .seq = 1, .received_us = 1714566896000000LL};
    for (uint32_t index = 0;; index++) {
        json_value v;
        json_error jerr;
        int rc = json_parse_next(p, &a, text, len, &pos, &v, &jerr);
        if (rc == -ENODATA) break;
        assert_int_equal(rc, 0);
        mamori_event ev;
        char why[128];
        assert_int_equal(normalize_event(norm, &a, EVENT_FORMAT_WINLOG, &v, &stamp, index, &ev, why, sizeof why), 0);
        const detect_match *m;
        size_t n = detect_eval(w, &ev, &m);
        for (size_t i = 0; i < n; i++) fired += !strcmp(m[i].rule->id, rule_id);
        arena_reset(&a);
    }
    free(text);
    arena_fini(&a);
    normalizer_destroy(norm);
    json_parser_destroy(p);
    detect_worker_destroy(w);
    detect_ruleset_unref(rs);
    detect_loader_destroy(l);
    return fired;
}

static void case_visit(const char *info_path, void *ctx)
{
    struct tally *t = ctx;
    t->cases++;
    struct fy_document *doc = fy_document_build_from_file(NULL, info_path);
    assert_non_null(doc);
    struct fy_node *root = fy_document_root(doc);
    const char *rule_id = scalar_at(root, "/rule_metadata/0/id");
    assert_non_null(rule_id);
    struct fy_node *tests = fy_node_by_path(root, "/regression_tests_info", (size_t)-1, FYNWF_DONT_FOLLOW);
    if (!tests || !fy_node_is_sequence(tests) || fy_node_sequence_item_count(tests) == 0) {
        printf("  no test defined: %s\n", info_path);
        t->no_test++;
        fy_document_destroy(doc);
        return;
    }
    const char *rule_path = rule_file(rule_id);
    assert_non_null(rule_path);
    void *it = NULL;
    struct fy_node *test;
    bool ok = true;
    while ((test = fy_node_sequence_iterate(tests, &it))) {
        const char *evtx = scalar_at(test, "/path");
        const char *count = scalar_at(test, "/match_count");
        unsigned want = count ? (unsigned)strtoul(count, NULL, 10) : 1;
        /* the evtx's JSON dump sits next to it: <data>/sigma/<path without .evtx>.json */
        char events[2048];
        snprintf(events, sizeof events, "%s/%.*s.json", SIGMA_DIR, (int)(strlen(evtx) - 5), evtx);
        size_t got = count_fires(rule_path, rule_id, events);
        if (got < want) {
            printf("  FAIL %s (%s): fired %zu times, want %u\n", rule_id, rule_path, got, want);
            ok = false;
        }
    }
    if (ok) t->passed++;
    else t->failed++;
    fy_document_destroy(doc);
}

static void test_regression_cases(void **state)
{
    (void)state;
    struct stat st;
    if (stat(SIGMA_DIR "/regression_data", &st) != 0) skip();
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(rule_dirs); i++) walk(rule_dirs[i], ".yml", index_visit, NULL);
    struct tally t = {0};
    walk(SIGMA_DIR "/regression_data", "/info.yml", case_visit, &t);
    printf("regression: %u cases, %u pass, %u fail, %u without a test\n", t.cases, t.passed, t.failed, t.no_test);
    assert_true(t.cases > 0);
    assert_int_equal(t.failed, 0);
    assert_int_equal(t.passed + t.no_test, t.cases);
    for (size_t i = 0; i < id_count; i++) free(ids[i].path);
    free(ids);
}

static void test_sigmahq_loads(void **state)
{
    (void)state;
    struct stat st;
    if (stat(rule_dirs[0], &st) != 0) skip();
    detect_loader *l = detect_loader_create(NULL);
    char err[256];
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(rule_dirs); i++)
        assert_int_equal(detect_loader_add_path(l, rule_dirs[i], err, sizeof err), 0);
    detect_ruleset *rs;
    assert_int_equal(detect_loader_build(l, &rs, err, sizeof err), 0);
    const detect_report *r = detect_loader_report(l);
    printf("SigmaHQ: %u files, %u loaded (%u unroutable), %u rejected, %u skipped; load %.0f ms, Hyperscan %.0f ms, "
           "%u databases, %.1f MiB\n",
           r->files, r->loaded, r->unroutable, r->rejected, r->skipped, r->load_ms, r->compile_ms, r->databases,
           (double)r->database_bytes / 1048576.0);
    for (int k = 0; k < DETECT_REASON_COUNT; k++)
        if (r->by_reason[k]) printf("  %u %s\n", r->by_reason[k], detect_reason_name((enum detect_reason)k));
    for (size_t i = 0; i < r->problem_count; i++) {
        const detect_problem *p = &r->problems[i];
        printf("  %s:%u: %s: %s\n", p->file, p->line, detect_reason_name(p->reason), p->message);
        /* the specification requires rejecting a rule whose placeholders cannot be resolved;
         * anything else would be a construct we fail to support */
        assert_true(p->reason == DETECT_REASON_PLACEHOLDER || detect_reason_is_skip(p->reason));
    }
    assert_true((uint64_t)r->loaded * 100 >= (uint64_t)(r->loaded + r->rejected) * 99);
    detect_ruleset_unref(rs);
    detect_loader_destroy(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regression_cases),
        cmocka_unit_test(test_sigmahq_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* detect/load.c — the rule loader: walks files and directories, splits YAML streams into
 * documents (libfyaml), reads each rule's attributes and logsource, hands the detection
 * section to detection.c, and keeps the report (counts by reason, every problem with file
 * and line). Correlation documents go to correlate_load.c when detect_options.correlations
 * is set and are skipped under their own reason otherwise; Sigma filter documents are kept
 * and applied at build. */
#include "correlate_internal.h"
#include "internal.h"

#include "core/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WALK_DEPTH_MAX 32

struct lfilter {
    struct cnode *cond;
    const char **targets; /* rule ids or names */
    uint32_t target_count;
    const char *file;
    uint32_t line;
    const char *title;
};

struct verdict {
    uint32_t flags; /* flags to compile with (ALLOWEMPTY added when needed) */
    const char *why; /* NULL when Hyperscan accepts the expression */
};

struct detect_loader {
    detect_options opt;
    arena meta; /* options, report strings, pattern cache keys */
    arena *mem; /* rule memory; moved into the rule set at build */
    detect_report report;
    detect_problem *problems;
    size_t problem_cap;
    struct lrule **rules;
    uint32_t rule_count, rule_cap;
    strmap ids; /* rule id → rule index */
    struct lfilter **filters;
    uint32_t filter_count, filter_cap;
    strmap pattern_cache; /* flags + expression → verdict index */
    struct verdict *verdicts;
    uint32_t verdict_count, verdict_cap;
    bool built;
    struct correlate_defs *correlations; /* correlation documents (correlate_load.c) */
};

/* ---- options and reasons -------------------------------------------------------------------- */

void detect_options_default(detect_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->rules_max = 100000;
    opt->values_per_item_max = 65536;
    opt->pattern_bytes_max = 16 * 1024;
    opt->file_bytes_max = 4 * 1024 * 1024;
}

static const char *const reason_names[DETECT_REASON_COUNT] = {
    [DETECT_REASON_YAML] = "invalid YAML",
    [DETECT_REASON_NOT_A_RULE] = "not a Sigma rule",
    [DETECT_REASON_ATTRIBUTE] = "invalid rule attribute",
    [DETECT_REASON_DETECTION] = "invalid detection",
    [DETECT_REASON_UNKNOWN_MODIFIER] = "unknown modifier",
    [DETECT_REASON_MODIFIER] = "invalid modifier use",
    [DETECT_REASON_VALUE] = "invalid value",
    [DETECT_REASON_CONDITION] = "invalid condition",
    [DETECT_REASON_AGGREGATION] = "aggregation syntax (deprecated)",
    [DETECT_REASON_PLACEHOLDER] = "placeholder not configured",
    [DETECT_REASON_REGEX] = "regular expression not supported by Hyperscan",
    [DETECT_REASON_LIMIT] = "limit exceeded",
    [DETECT_REASON_DUPLICATE_ID] = "duplicate rule id",
    [DETECT_REASON_COLLECTION] = "rule collection (Sigma 1.x action)",
    [DETECT_REASON_FILTER] = "invalid filter",
    [DETECT_REASON_FILE] = "unreadable file",
    [DETECT_REASON_CORRELATION] = "invalid correlation",
    [DETECT_REASON_SKIP_DEPRECATED] = "status deprecated (skipped)",
    [DETECT_REASON_SKIP_UNSUPPORTED] = "status unsupported (skipped)",
    [DETECT_REASON_SKIP_CORRELATION] = "correlation rules not supported yet",
};

const char *detect_reason_name(enum detect_reason reason)
{
    return (unsigned)reason < DETECT_REASON_COUNT ? reason_names[reason] : "unknown";
}

const detect_options *loader_options(const detect_loader *l) { return &l->opt; }

/* ---- loader lifetime ------------------------------------------------------------------------- */

detect_loader *detect_loader_create(const detect_options *opt)
{
    detect_loader *l = mamori_xcalloc(1, sizeof *l);
    arena_init(&l->meta, 64 * 1024);
    l->mem = mamori_xmalloc(sizeof *l->mem);
    arena_init(l->mem, 256 * 1024);
    if (opt) l->opt = *opt;
    else detect_options_default(&l->opt);
    if (l->opt.placeholder_count) {
        detect_placeholder *ph = arena_alloc(&l->meta, l->opt.placeholder_count * sizeof *ph);
        for (size_t i = 0; i < l->opt.placeholder_count; i++) {
            const detect_placeholder *src = &opt->placeholders[i];
            ph[i].name = arena_strndup(&l->meta, src->name, strlen(src->name));
            const char **values = arena_alloc(&l->meta, (src->value_count ? src->value_count : 1) * sizeof *values);
            for (size_t v = 0; v < src->value_count; v++)
                values[v] = arena_strndup(&l->meta, src->values[v], strlen(src->values[v]));
            ph[i].values = values;
            ph[i].value_count = src->value_count;
        }
        l->opt.placeholders = ph;
    }
    strmap_init(&l->ids);
    strmap_init(&l->pattern_cache);
    return l;
}

void detect_loader_destroy(detect_loader *l)
{
    if (!l) return;
    correlate_defs_free(l->correlations);
    strmap_fini(&l->ids);
    strmap_fini(&l->pattern_cache);
    free(l->verdicts);
    free(l->filters);
    free(l->rules);
    free(l->problems);
    if (l->mem) {
        arena_fini(l->mem);
        free(l->mem);
    }
    arena_fini(&l->meta);
    free(l);
}

const detect_report *detect_loader_report(const detect_loader *l) { return &l->report; }

/* ---- problems -------------------------------------------------------------------------------- */

static void add_problem(detect_loader *l, const char *file, uint32_t line, enum detect_reason reason,
                        const char *message, const char *rule_id, const char *title)
{
    if (l->report.problem_count == l->problem_cap) {
        l->problem_cap = l->problem_cap ? l->problem_cap * 2 : 64;
        l->problems = mamori_xrealloc(l->problems, l->problem_cap * sizeof *l->problems);
        l->report.problems = l->problems;
    }
    detect_problem *p = &l->problems[l->report.problem_count++];
    p->file = arena_strndup(&l->meta, file, strlen(file));
    p->line = line;
    p->reason = reason;
    p->message = arena_strndup(&l->meta, message, strlen(message));
    p->rule_id = arena_strndup(&l->meta, rule_id ? rule_id : "", rule_id ? strlen(rule_id) : 0);
    p->title = arena_strndup(&l->meta, title ? title : "", title ? strlen(title) : 0);
    l->report.by_reason[reason]++;
    if (detect_reason_is_skip(reason)) l->report.skipped++;
    else l->report.rejected++;
}

int load_fail(load_ctx *c, enum detect_reason reason, struct fy_node *at, const char *fmt, ...)
{
    if (c->failed) return -EINVAL;
    c->failed = true;
    c->reason = reason;
    c->line = at ? node_line(at) : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof c->message, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

void loader_reject_rule(detect_loader *l, struct lrule *r, enum detect_reason reason, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->dead = true;
    add_problem(l, r->info.file, r->info.line, reason, msg, r->info.id, r->info.title);
}

/* ---- YAML helpers ---------------------------------------------------------------------------- */

static struct fy_node *map_get(struct fy_node *map, const char *key)
{
    void *it = NULL;
    struct fy_node_pair *pair;
    size_t n = strlen(key);
    while ((pair = fy_node_mapping_iterate(map, &it))) {
        size_t len;
        const char *k = node_scalar(fy_node_pair_key(pair), &len);
        if (k && len == n && memcmp(k, key, n) == 0) return fy_node_pair_value(pair);
    }
    return NULL;
}

static bool map_has(struct fy_node *map, const char *key)
{
    void *it = NULL;
    struct fy_node_pair *pair;
    size_t n = strlen(key);
    while ((pair = fy_node_mapping_iterate(map, &it))) {
        size_t len;
        const char *k = node_scalar(fy_node_pair_key(pair), &len);
        if (k && len == n && memcmp(k, key, n) == 0) return true;
    }
    return false;
}

/* A scalar attribute copied into rule memory ("" when absent); -EINVAL when not a scalar. */
static int attr_string(load_ctx *c, struct fy_node *root, const char *key, const char **out)
{
    struct fy_node *n = map_get(root, key);
    *out = "";
    if (!n) return 0;
    size_t len;
    const char *s = node_scalar(n, &len);
    if (!s) return load_fail(c, DETECT_REASON_ATTRIBUTE, n, "'%s' must be a string", key);
    *out = arena_strndup(c->mem, s, len);
    return 0;
}

/* ---- rule attributes ------------------------------------------------------------------------- */

static int parse_tags(load_ctx *c, struct fy_node *root, detect_rule *info)
{
    struct fy_node *n = map_get(root, "tags");
    info->tags = NULL;
    info->attack_ids = NULL;
    if (!n) return 0;
    if (!fy_node_is_sequence(n)) return load_fail(c, DETECT_REASON_ATTRIBUTE, n, "'tags' must be a list");
    int count = fy_node_sequence_item_count(n);
    const char **tags = arena_alloc(c->mem, (size_t)(count > 0 ? count : 1) * sizeof *tags);
    const char **attack = arena_alloc(c->mem, (size_t)(count > 0 ? count : 1) * sizeof *attack);
    uint32_t t = 0, k = 0;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(n, &it)) && t < (uint32_t)count) {
        size_t len;
        const char *s = node_scalar(item, &len);
        if (!s) return load_fail(c, DETECT_REASON_ATTRIBUTE, item, "tags must be strings");
        tags[t++] = arena_strndup(c->mem, s, len);
        /* attack.t1059 / attack.t1059.001 → T1059 / T1059.001 */
        if (len >= 12 && !memcmp(s, "attack.t", 8)) {
            bool ok = true;
            for (size_t i = 8; i < 12; i++) ok &= s[i] >= '0' && s[i] <= '9';
            if (len != 12) {
                ok &= len == 16 && s[12] == '.';
                for (size_t i = 13; ok && i < 16; i++) ok &= s[i] >= '0' && s[i] <= '9';
            }
            if (ok) {
                char *id = arena_strndup(c->mem, s + 7, len - 7);
                id[0] = 'T';
                attack[k++] = id;
            }
        }
    }
    info->tags = tags;
    info->tag_count = t;
    info->attack_ids = attack;
    info->attack_count = k;
    return 0;
}

static enum detect_level level_of(const char *s)
{
    static const char *const names[] = {"", "informational", "low", "medium", "high", "critical"};
    for (size_t i = 1; i < MAMORI_ARRAY_LEN(names); i++)
        if (strcmp(s, names[i]) == 0) return (enum detect_level)i;
    return DETECT_LEVEL_NONE;
}

static int parse_logsource(load_ctx *c, struct fy_node *root, struct lrule *r)
{
    struct fy_node *ls = map_get(root, "logsource");
    if (!ls || !fy_node_is_mapping(ls))
        return load_fail(c, DETECT_REASON_NOT_A_RULE, ls ? ls : root, "'logsource' must be a map");
    if (attr_string(c, ls, "product", &r->info.product) || attr_string(c, ls, "category", &r->info.category) ||
        attr_string(c, ls, "service", &r->info.service))
        return -EINVAL;
    memset(&r->route, 0, sizeof r->route);
    memset(&r->ls, 0, sizeof r->ls);
    if (r->info.product[0]) {
        enum logsource_product p;
        if (logsource_product_parse(r->info.product, strlen(r->info.product), &p) == 0) r->route.product = (uint8_t)p;
        else r->route.unroutable = true;
    }
    if (r->info.category[0]) {
        enum logsource_category cat;
        if (logsource_category_parse(r->info.category, strlen(r->info.category), &cat) == 0)
            r->route.categories = logsource_bit(cat);
        else r->route.unroutable = true;
    }
    if (r->info.service[0]) {
        enum logsource_service s;
        if (logsource_service_parse(r->info.service, strlen(r->info.service), &s) == 0) r->route.service = (uint16_t)s;
        else r->route.unroutable = true;
    }
    r->ls.categories = r->route.categories;
    r->ls.service = r->route.service;
    r->ls.product = r->route.product;
    return 0;
}

/* ---- documents ------------------------------------------------------------------------------- */

static void add_rule(detect_loader *l, struct lrule *r)
{
    if (l->rule_count == l->rule_cap) {
        l->rule_cap = l->rule_cap ? l->rule_cap * 2 : 256;
        l->rules = mamori_xrealloc(l->rules, l->rule_cap * sizeof *l->rules);
    }
    l->rules[l->rule_count++] = r;
}

static void load_filter(detect_loader *l, load_ctx *c, struct fy_node *root, const char *title)
{
    struct fy_node *f = map_get(root, "filter");
    uint32_t line = node_line(root);
    if (!f || !fy_node_is_mapping(f)) {
        load_fail(c, DETECT_REASON_FILTER, f ? f : root, "'filter' must be a map");
        return;
    }
    struct fy_node *rules = map_get(f, "rules");
    if (!rules) {
        load_fail(c, DETECT_REASON_FILTER, f, "filter has no 'rules'");
        return;
    }
    struct lfilter *flt = arena_alloc(c->mem, sizeof *flt);
    memset(flt, 0, sizeof *flt);
    uint32_t count = fy_node_is_sequence(rules) ? (uint32_t)MAMORI_MAX(fy_node_sequence_item_count(rules), 0) : 1;
    flt->targets = arena_alloc(c->mem, (count ? count : 1) * sizeof *flt->targets);
    if (fy_node_is_sequence(rules)) {
        void *it = NULL;
        struct fy_node *item;
        while ((item = fy_node_sequence_iterate(rules, &it))) {
            size_t len;
            const char *s = node_scalar(item, &len);
            if (!s) {
                load_fail(c, DETECT_REASON_FILTER, item, "filter rules must be rule ids or names");
                return;
            }
            flt->targets[flt->target_count++] = arena_strndup(c->mem, s, len);
        }
    } else {
        size_t len;
        const char *s = node_scalar(rules, &len);
        if (!s) {
            load_fail(c, DETECT_REASON_FILTER, rules, "filter rules must be rule ids or names");
            return;
        }
        flt->targets[flt->target_count++] = arena_strndup(c->mem, s, len);
    }
    struct detection *d;
    if (detection_parse(c, f, &d)) return;
    if (detection_condition(c, d, map_get(f, "condition"), &flt->cond)) return;
    flt->file = c->file;
    flt->line = line;
    flt->title = title;
    if (l->filter_count == l->filter_cap) {
        l->filter_cap = l->filter_cap ? l->filter_cap * 2 : 8;
        l->filters = mamori_xrealloc(l->filters, l->filter_cap * sizeof *l->filters);
    }
    l->filters[l->filter_count++] = flt;
}

static void load_document(detect_loader *l, const char *file, struct fy_node *root)
{
    load_ctx c = {.loader = l, .mem = l->mem, .file = file};
    c.filter_doc = map_has(root, "filter") && !map_has(root, "detection");
    uint32_t line = node_line(root);
    const char *id = "", *title = "";
    if (!fy_node_is_mapping(root)) {
        add_problem(l, file, line, DETECT_REASON_NOT_A_RULE, "document is not a map", NULL, NULL);
        return;
    }
    if (attr_string(&c, root, "id", &id) || attr_string(&c, root, "title", &title)) goto fail;
    if (map_has(root, "correlation")) {
        if (l->opt.correlations) correlate_load_document(l, file, root, id, title); /* correlate_load.c */
        else add_problem(l, file, line, DETECT_REASON_SKIP_CORRELATION, "correlation rules not supported yet", id, title);
        return;
    }
    if (map_has(root, "action")) {
        load_fail(&c, DETECT_REASON_COLLECTION, map_get(root, "action"),
                  "Sigma 1.x rule collections ('action') are not part of Sigma 2");
        goto fail;
    }
    if (!title[0]) {
        load_fail(&c, DETECT_REASON_NOT_A_RULE, root, "rule has no 'title'");
        goto fail;
    }
    if (map_has(root, "filter") && !map_has(root, "detection")) {
        load_filter(l, &c, root, title);
        if (c.failed) goto fail;
        l->report.filters++;
        return;
    }
    struct lrule *r = arena_alloc(l->mem, sizeof *r);
    memset(r, 0, sizeof *r);
    r->info.id = id;
    r->info.title = title;
    r->info.file = file;
    r->info.line = line;
    if (attr_string(&c, root, "name", &r->info.name) || attr_string(&c, root, "status", &r->info.status) ||
        attr_string(&c, root, "level", &r->info.level_name) ||
        attr_string(&c, root, "description", &r->info.description) || parse_tags(&c, root, &r->info))
        goto fail;
    r->info.level = level_of(r->info.level_name);
    if (!strcmp(r->info.status, "deprecated") && !l->opt.include_deprecated) {
        add_problem(l, file, line, DETECT_REASON_SKIP_DEPRECATED, "status: deprecated", id, title);
        return;
    }
    if (!strcmp(r->info.status, "unsupported") && !l->opt.include_unsupported) {
        add_problem(l, file, line, DETECT_REASON_SKIP_UNSUPPORTED, "status: unsupported", id, title);
        return;
    }
    if (parse_logsource(&c, root, r)) goto fail;
    c.ls = &r->ls;
    struct fy_node *det = map_get(root, "detection");
    if (!det) {
        load_fail(&c, DETECT_REASON_NOT_A_RULE, root, "rule has no 'detection'");
        goto fail;
    }
    struct detection *d;
    if (detection_parse(&c, det, &d)) goto fail;
    if (detection_condition(&c, d, fy_node_is_mapping(det) ? map_get(det, "condition") : NULL, &r->cond)) goto fail;
    struct fy_node *ext = map_get(root, "x-mamori");
    if (ext) {
        buf b;
        buf_init(&b);
        yaml_write_json(&b, ext);
        r->info.x_mamori_json = arena_strndup(l->mem, b.data, b.len);
        buf_fini(&b);
    }
    if (l->rule_count >= l->opt.rules_max) {
        load_fail(&c, DETECT_REASON_LIMIT, root, "more than %u rules", l->opt.rules_max);
        goto fail;
    }
    if (id[0]) {
        uint32_t first = strmap_put(&l->ids, id, strlen(id), l->rule_count);
        if (first != l->rule_count) {
            const struct lrule *o = l->rules[first];
            load_fail(&c, DETECT_REASON_DUPLICATE_ID, root, "rule id %s already loaded from %s line %u", id, o->info.file,
                      o->info.line);
            goto fail;
        }
    }
    add_rule(l, r);
    return;
fail:
    add_problem(l, file, c.line ? c.line : line, c.reason, c.message, id, title);
}

static struct fy_diag *make_diag(void)
{
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (diag) fy_diag_set_collect_errors(diag, true);
    return diag;
}

/* Loads every document of one YAML stream; text must be NUL-terminated at len. */
static void load_stream(detect_loader *l, const char *file, const char *text, size_t len)
{
    /* Sigma files are UTF-8 YAML, which allows printable characters only. Checking first
     * also keeps libfyaml 0.7 away from inputs that hang it or leak (found by
     * tests/fuzz/fuzz_sigma.c; see yaml.c). */
    size_t bad = yaml_utf8_invalid_at(text, len);
    if (bad < len) {
        char msg[128];
        uint32_t line = 1;
        for (size_t i = 0; i < bad; i++) line += text[i] == '\n';
        snprintf(msg, sizeof msg, "not valid UTF-8 or not a printable character at byte offset %zu", bad);
        add_problem(l, file, line, DETECT_REASON_YAML, msg, NULL, NULL);
        return;
    }
    yaml_input_begin(text, len, &l->meta);
    struct fy_diag *diag = make_diag();
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_1, .diag = diag};
    struct fy_parser *fyp = fy_parser_create(&cfg);
    if (!fyp || fy_parser_set_string(fyp, text, len) != 0) {
        add_problem(l, file, 0, DETECT_REASON_YAML, "cannot start the YAML parser", NULL, NULL);
        goto out;
    }
    for (;;) {
        struct fy_document *doc = fy_parse_load_document(fyp);
        if (!doc) {
            if (fy_parser_get_stream_error(fyp)) {
                void *it = NULL;
                struct fy_diag_error *de = diag ? fy_diag_errors_iterate(diag, &it) : NULL;
                char msg[256];
                snprintf(msg, sizeof msg, "YAML: %s", de ? de->msg : "syntax error");
                add_problem(l, file, de ? (uint32_t)de->line + 1 : 0, DETECT_REASON_YAML, msg, NULL, NULL);
            }
            break;
        }
        struct fy_node *root = fy_document_root(doc);
        if (root) {
            l->report.documents++;
            load_document(l, file, root);
        }
        fy_parse_document_destroy(fyp, doc);
    }
out:
    if (fyp) fy_parser_destroy(fyp);
    if (diag) fy_diag_destroy(diag);
    yaml_input_end();
}

void detect_loader_add_text(detect_loader *l, const char *name, const char *text, size_t len)
{
    MAMORI_ASSERT(!l->built);
    int64_t t0 = clock_mono_us();
    const char *file = arena_strndup(l->mem, name, strlen(name));
    char *copy = mamori_xmalloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';
    l->report.files++;
    load_stream(l, file, copy, len);
    free(copy);
    l->report.load_ms += (double)(clock_mono_us() - t0) / 1000.0;
}

static void load_file(detect_loader *l, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char msg[256];
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(msg, sizeof msg, "cannot read: %s", strerror(errno));
        add_problem(l, path, 0, DETECT_REASON_FILE, msg, NULL, NULL);
        if (fd >= 0) close(fd);
        return;
    }
    if ((uint64_t)st.st_size > l->opt.file_bytes_max) {
        snprintf(msg, sizeof msg, "file of %lld bytes over the limit of %u", (long long)st.st_size, l->opt.file_bytes_max);
        add_problem(l, path, 0, DETECT_REASON_FILE, msg, NULL, NULL);
        close(fd);
        return;
    }
    size_t size = (size_t)st.st_size;
    char *text = mamori_xmalloc(size + 1);
    size_t got = 0;
    int read_errno = 0;
    while (got < size) {
        ssize_t n = read(fd, text + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) read_errno = errno;
        if (n <= 0) break; /* 0: the file shrank; what was read is the rule text */
        got += (size_t)n;
    }
    close(fd);
    if (read_errno) { /* not half a file parsed as if it were the whole */
        snprintf(msg, sizeof msg, "cannot read: %s", strerror(read_errno));
        add_problem(l, path, 0, DETECT_REASON_FILE, msg, NULL, NULL);
        free(text);
        return;
    }
    text[got] = '\0';
    int64_t t0 = clock_mono_us();
    l->report.files++;
    load_stream(l, arena_strndup(l->mem, path, strlen(path)), text, got);
    l->report.load_ms += (double)(clock_mono_us() - t0) / 1000.0;
    free(text);
}

static bool is_rule_file(const char *name)
{
    size_t n = strlen(name);
    return (n > 4 && !strcmp(name + n - 4, ".yml")) || (n > 5 && !strcmp(name + n - 5, ".yaml"));
}

static void walk(detect_loader *l, const char *dir, int depth)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot list directory: %s", strerror(errno));
        add_problem(l, dir, 0, DETECT_REASON_FILE, msg, NULL, NULL);
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (name[0] == '.') {
            free(names[i]);
            continue;
        }
        size_t len = strlen(dir) + 1 + strlen(name) + 1;
        char *path = mamori_xmalloc(len);
        snprintf(path, len, "%s/%s", dir, name);
        struct stat st;
        if (stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode) && depth < WALK_DEPTH_MAX) walk(l, path, depth + 1);
            else if (S_ISREG(st.st_mode) && is_rule_file(name)) load_file(l, path);
        }
        free(path);
        free(names[i]);
    }
    free(names);
}

int detect_loader_add_path(detect_loader *l, const char *path, char *err, size_t err_len)
{
    MAMORI_ASSERT(!l->built);
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        snprintf(err, err_len, "%s: %s", path, strerror(e));
        return -e;
    }
    if (S_ISDIR(st.st_mode)) {
        if (access(path, R_OK | X_OK) != 0) {
            int e = errno;
            snprintf(err, err_len, "%s: %s", path, strerror(e));
            return -e;
        }
        walk(l, path, 0);
        return 0;
    }
    if (access(path, R_OK) != 0) {
        int e = errno;
        snprintf(err, err_len, "%s: %s", path, strerror(e));
        return -e;
    }
    load_file(l, path);
    return 0;
}

/* ---- Hyperscan verdicts, cached -------------------------------------------------------------- */

int loader_check_pattern(detect_loader *l, const char *expr, uint32_t *flags, char *why, size_t why_len)
{
    size_t n = strlen(expr);
    char *key = arena_alloc(&l->meta, n + 4);
    memcpy(key, flags, 4);
    memcpy(key + 4, expr, n);
    uint32_t idx = strmap_get(&l->pattern_cache, key, n + 4);
    if (idx == DETECT_NONE) {
        struct verdict v = {.flags = *flags, .why = NULL};
        hs_expr_info_t *info = NULL;
        hs_compile_error_t *cerr = NULL;
        if (hs_expression_info(expr, *flags, &info, &cerr) != HS_SUCCESS) {
            v.why = arena_strndup(&l->meta, cerr ? cerr->message : "rejected", cerr ? strlen(cerr->message) : 8);
        } else if (info->min_width == 0 && !(v.flags & HS_FLAG_ALLOWEMPTY)) {
            v.flags |= HS_FLAG_ALLOWEMPTY; /* e.g. `a*`: can match the empty string */
        }
        if (cerr) hs_free_compile_error(cerr);
        free(info);
        if (l->verdict_count == l->verdict_cap) {
            l->verdict_cap = l->verdict_cap ? l->verdict_cap * 2 : 1024;
            l->verdicts = mamori_xrealloc(l->verdicts, l->verdict_cap * sizeof *l->verdicts);
        }
        idx = l->verdict_count++;
        l->verdicts[idx] = v;
        strmap_put(&l->pattern_cache, key, n + 4, idx);
    }
    const struct verdict *v = &l->verdicts[idx];
    if (v->why) {
        snprintf(why, why_len, "%s", v->why);
        return -EINVAL;
    }
    *flags = v->flags;
    return 0;
}

/* ---- build ------------------------------------------------------------------------------------ */

static struct lrule *find_target(detect_loader *l, const char *target)
{
    uint32_t idx = strmap_get(&l->ids, target, strlen(target));
    if (idx != DETECT_NONE) return l->rules[idx];
    for (uint32_t i = 0; i < l->rule_count; i++)
        if (l->rules[i]->info.name[0] && !strcmp(l->rules[i]->info.name, target)) return l->rules[i];
    return NULL;
}

static void apply_filters(detect_loader *l)
{
    for (uint32_t f = 0; f < l->filter_count; f++) {
        const struct lfilter *flt = l->filters[f];
        for (uint32_t t = 0; t < flt->target_count; t++) {
            struct lrule *r = find_target(l, flt->targets[t]);
            if (!r) continue;
            struct cnode *kids[2] = {r->cond, cnode_not(l->mem, flt->cond)};
            r->cond = cnode_join(l->mem, CN_AND, kids, 2);
        }
    }
}

int detect_loader_build(detect_loader *l, detect_ruleset **out, char *err, size_t err_len)
{
    MAMORI_ASSERT(!l->built);
    l->built = true;
    apply_filters(l);
    return ruleset_build(l, l->rules, l->rule_count, out, &l->report, err, err_len);
}

arena *loader_take_memory(detect_loader *l)
{
    arena *mem = l->mem;
    l->mem = NULL;
    return mem;
}

/* ---- hooks for the correlation loader (correlate_load.c) ---------------------------------------- */

struct correlate_defs **loader_correlations(detect_loader *l) { return &l->correlations; }

void loader_add_problem(detect_loader *l, const char *file, uint32_t line, enum detect_reason reason,
                        const char *message, const char *rule_id, const char *title)
{
    add_problem(l, file, line, reason, message, rule_id, title);
}

detect_report *loader_report_mutable(detect_loader *l) { return &l->report; }

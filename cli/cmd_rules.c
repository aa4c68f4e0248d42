/* cli/cmd_rules.c — `mamorictl rules lint DIR…`: load and compile Sigma rules exactly as
 * the server and `mamorictl scan` do, print every rejected rule as `file:line: reason:
 * message` and the counts, and exit 1 if any rule was rejected. Also home of the helpers
 * both rule-loading commands share (placeholder options, the load report). */
#include "cli.h"

#include "detect/correlate.h"
#include "detect/detect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared with cmd_scan.c ------------------------------------------------------------------ */

struct cli_placeholders {
    detect_placeholder *items;
    size_t count;
};

int cli_placeholder_add(struct cli_placeholders **ph, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec) return -EINVAL;
    if (!*ph) *ph = mamori_xcalloc(1, sizeof **ph);
    struct cli_placeholders *p = *ph;
    size_t name_len = (size_t)(eq - spec);
    detect_placeholder *slot = NULL;
    for (size_t i = 0; i < p->count; i++)
        if (strlen(p->items[i].name) == name_len && !strncmp(p->items[i].name, spec, name_len)) slot = &p->items[i];
    if (!slot) {
        p->items = mamori_xrealloc(p->items, (p->count + 1) * sizeof *p->items);
        slot = &p->items[p->count++];
        slot->name = mamori_xstrndup(spec, name_len);
        slot->values = NULL;
        slot->value_count = 0;
    }
    const char **values = mamori_xrealloc((void *)slot->values, (slot->value_count + 1) * sizeof *values);
    values[slot->value_count++] = mamori_xstrdup(eq + 1);
    slot->values = values;
    return 0;
}

void cli_placeholders_apply(const struct cli_placeholders *ph, detect_options *opt)
{
    if (!ph) return;
    opt->placeholders = ph->items;
    opt->placeholder_count = ph->count;
}

void cli_placeholders_free(struct cli_placeholders *ph)
{
    if (!ph) return;
    for (size_t i = 0; i < ph->count; i++) {
        for (size_t v = 0; v < ph->items[i].value_count; v++) free((void *)ph->items[i].values[v]);
        free((void *)ph->items[i].values);
        free((void *)ph->items[i].name);
    }
    free(ph->items);
    free(ph);
}

void cli_print_rule_report(FILE *out, const detect_report *r, bool list_rejections, bool list_skips)
{
    if (list_rejections || list_skips) {
        for (size_t i = 0; i < r->problem_count; i++) {
            const detect_problem *p = &r->problems[i];
            bool skip = detect_reason_is_skip(p->reason);
            if ((skip && !list_skips) || (!skip && !list_rejections)) continue;
            fprintf(out, "%s:%u: %s: %s\n", p->file, p->line, detect_reason_name(p->reason), p->message);
        }
    }
    char correlations[48] = "";
    if (r->correlations) snprintf(correlations, sizeof correlations, ", %u correlations", r->correlations);
    fprintf(out,
            "rules: %u loaded (%u for logsources no event classification reaches), %u rejected, %u skipped, "
            "%u filters%s; %u files, %u documents\n",
            r->loaded, r->unroutable, r->rejected, r->skipped, r->filters, correlations, r->files, r->documents);
    for (int k = 0; k < DETECT_REASON_COUNT; k++)
        if (r->by_reason[k])
            fprintf(out, "  %-5u %s%s\n", r->by_reason[k], detect_reason_name((enum detect_reason)k),
                    detect_reason_is_skip((enum detect_reason)k) ? "" : " (rejected)");
    fprintf(out,
            "compile: load %.0f ms, Hyperscan %.0f ms; %u databases, %u patterns, %u predicates, %.1f MiB of databases, "
            "%.1f MiB scratch per thread\n",
            r->load_ms, r->compile_ms, r->databases, r->patterns, r->predicates,
            (double)r->database_bytes / (1024.0 * 1024.0), (double)r->scratch_bytes / (1024.0 * 1024.0));
}

/* ---- rules lint -------------------------------------------------------------------------------- */

static void lint_usage(FILE *out)
{
    fprintf(out,
            "usage: mamorictl rules lint [options] PATH…\n"
            "\n"
            "Loads and compiles every Sigma rule under each PATH (file or directory), prints each\n"
            "rejected rule as 'file:line: reason: message' and the counts. Exit status 1 if any\n"
            "rule was rejected, 2 on usage errors.\n"
            "\n"
            "options:\n"
            "  --placeholder NAME=VALUE  value for the expand modifier's %%NAME%% (repeat to add)\n"
            "  --include-deprecated      load status: deprecated rules instead of skipping them\n"
            "  --include-unsupported     load status: unsupported rules instead of skipping them\n"
            "  --list-skipped            also list skipped rules (deprecated, correlation…)\n"
            "\n"
            "mamorictl rules test FILE… --from TIME --to TIME: run rules over stored events through the\n"
            "API, nothing alerted (mamorictl rules test --help).\n");
}

static int cmd_rules_lint(int argc, char **argv)
{
    detect_options opt;
    detect_options_default(&opt);
    struct cli_placeholders *ph = NULL;
    bool list_skips = false;
    int first_path = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            lint_usage(stdout);
            cli_placeholders_free(ph);
            return 0;
        } else if (!strcmp(a, "--placeholder") && i + 1 < argc) {
            if (cli_placeholder_add(&ph, argv[++i])) {
                fprintf(stderr, "mamorictl rules lint: --placeholder wants NAME=VALUE, got '%s'\n", argv[i]);
                cli_placeholders_free(ph);
                return 2;
            }
        } else if (!strcmp(a, "--include-deprecated")) {
            opt.include_deprecated = true;
        } else if (!strcmp(a, "--include-unsupported")) {
            opt.include_unsupported = true;
        } else if (!strcmp(a, "--list-skipped")) {
            list_skips = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mamorictl rules lint: unknown option '%s'\n", a);
            lint_usage(stderr);
            cli_placeholders_free(ph);
            return 2;
        } else {
            first_path = i;
            break;
        }
    }
    if (first_path >= argc) {
        lint_usage(stderr);
        cli_placeholders_free(ph);
        return 2;
    }
    cli_placeholders_apply(ph, &opt);
    opt.correlations = true; /* checked as mamorictl scan loads them */
    detect_loader *loader = detect_loader_create(&opt);
    int rc = 0;
    char err[512];
    for (int i = first_path; i < argc; i++) {
        if (detect_loader_add_path(loader, argv[i], err, sizeof err)) {
            fprintf(stderr, "mamorictl rules lint: %s\n", err);
            rc = 1;
        }
    }
    detect_ruleset *rs = NULL;
    if (detect_loader_build(loader, &rs, err, sizeof err)) {
        fprintf(stderr, "mamorictl rules lint: %s\n", err);
        rc = 1;
    }
    correlate_set *corr = NULL;
    if (rs && correlate_set_build(loader, rs, &corr)) rc = 1;
    correlate_set_destroy(corr);
    const detect_report *report = detect_loader_report(loader);
    cli_print_rule_report(stdout, report, true, list_skips);
    if (report->rejected) rc = 1;
    detect_ruleset_unref(rs);
    detect_loader_destroy(loader);
    cli_placeholders_free(ph);
    return rc;
}

int cmd_rules(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        lint_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "lint")) return cmd_rules_lint(argc - 1, argv + 1);
    if (!strcmp(argv[1], "test")) return cmd_rules_test(argc - 1, argv + 1);
    fprintf(stderr, "mamorictl rules: unknown subcommand '%s'\n", argv[1]);
    lint_usage(stderr);
    return 2;
}

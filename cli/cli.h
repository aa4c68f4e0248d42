/* cli/cli.h — mamorictl subcommands. Each returns the process exit code: 0 success,
 * 1 operation failed, 2 usage error. */
#ifndef MAMORI_CLI_H
#define MAMORI_CLI_H

int cmd_store(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_rules(int argc, char **argv);
int cmd_rules_test(int argc, char **argv); /* cmd_rules_test.c */
int cmd_search(int argc, char **argv);
int cmd_agents(int argc, char **argv);
int cmd_tree(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_alerts(int argc, char **argv);
/* isolate, release, kill, rm, fetch, ps, ls, actions (cmd_respond.c) */
int cmd_respond(const char *verb, int argc, char **argv);

/* Shared by the commands that load Sigma rules (defined in cmd_rules.c). */
#include <stdbool.h>
#include <stdio.h>
struct cli_placeholders;
struct detect_options;
struct detect_report;
/* --placeholder NAME=VALUE: adds VALUE to NAME's list; -EINVAL if spec has no '='. */
int cli_placeholder_add(struct cli_placeholders **ph, const char *spec);
void cli_placeholders_apply(const struct cli_placeholders *ph, struct detect_options *opt);
void cli_placeholders_free(struct cli_placeholders *ph);
/* Rejections (and skips) as `file:line: reason: message`, then the counts. */
void cli_print_rule_report(FILE *out, const struct detect_report *r, bool list_rejections, bool list_skips);

#endif

/* cli/main.c — mamorictl: the operator's command line. Subcommands live in cmd_*.c;
 * this file only dispatches. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/crash.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mamorictl <command> [options]\n"
            "\n"
            "commands:\n"
            "  store count   count stored events (offline: the server must be stopped)\n"
            "  store lookup  count or list events through an index\n"
            "  store get     print one stored event by id\n"
            "  store stats   storage figures (bytes per event, counts); --compact first\n"
            "  scan          run Sigma rules over files of events, offline (NDJSON alerts)\n"
            "  rules lint    load and compile Sigma rules, report every rejected one\n"
            "  search        search events through the API (EQL subset, docs/search.md)\n"
            "  agents        list agents, or show one\n"
            "  tree          process tree of a process entity id\n"
            "  alerts        list alerts; get, ack, close, reopen or assign one\n"
            "  keys          create (also offline, --data DIR), list and delete API keys\n"
            "  isolate, release, kill, rm, fetch, ps, ls\n"
            "                remote response on an agent, waiting for the result (docs/response.md)\n"
            "  actions       an agent's response actions, or one ('actions get ID')\n"
            "\n"
            "Run 'mamorictl <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    (void)crash_report_install("mamorictl"); /* a crash prints its stack (core/crash.h) */
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("mamorictl 0.1.0\n");
        return 0;
    }
    if (!strcmp(argv[1], "store")) return cmd_store(argc - 1, argv + 1);
    if (!strcmp(argv[1], "scan")) return cmd_scan(argc - 1, argv + 1);
    if (!strcmp(argv[1], "rules")) return cmd_rules(argc - 1, argv + 1);
    if (!strcmp(argv[1], "search")) return cmd_search(argc - 1, argv + 1);
    if (!strcmp(argv[1], "agents")) return cmd_agents(argc - 1, argv + 1);
    if (!strcmp(argv[1], "tree")) return cmd_tree(argc - 1, argv + 1);
    if (!strcmp(argv[1], "keys")) return cmd_keys(argc - 1, argv + 1);
    if (!strcmp(argv[1], "alerts")) return cmd_alerts(argc - 1, argv + 1);
    static const char *const respond[] = {"isolate", "release", "kill", "rm", "fetch", "ps", "ls", "actions"};
    for (size_t i = 0; i < sizeof respond / sizeof respond[0]; i++)
        if (!strcmp(argv[1], respond[i])) return cmd_respond(respond[i], argc - 1, argv + 1);
    fprintf(stderr, "mamorictl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

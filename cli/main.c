/* cli/main.c — mamorictl: the operator's command line. Subcommands live in cmd_*.c;
 * this file only dispatches. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

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
            "\n"
            "Run 'mamorictl <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("mamorictl 0.1.0\n");
        return 0;
    }
    if (!strcmp(argv[1], "store")) return cmd_store(argc - 1, argv + 1);
    fprintf(stderr, "mamorictl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

/* cli/cli.h — mamorictl subcommands. Each returns the process exit code: 0 success,
 * 1 operation failed, 2 usage error. */
#ifndef MAMORI_CLI_H
#define MAMORI_CLI_H

int cmd_store(int argc, char **argv);

#endif

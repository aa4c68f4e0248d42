/* bench/sim/isolation.c — `--isolation nft` (docs/response.md §2.4): isolate replaces the
 * table `inet mamori_isolation` atomically (`nft -f -`, input and output policy drop, only
 * loopback, IPv6 neighbour discovery and TCP with the Mamori endpoints accepted); release
 * deletes it. The table outlives the simulator as isolation outlives an agent's restart:
 * at start-up its presence is the state reported. */
#include "sim.h"

#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MOD "sim"
#define NFT_TABLE "mamori_isolation"
#define NFT_TIMEOUT_MS 10000

extern char **environ;

/* Runs `nft -f -` with script on stdin (or `nft ARGS` when script is NULL). Returns the
 * exit status (0 = success) or -errno; nft's stderr goes to err. */
static int run_nft(const char *const *args, const char *script, char *err, size_t err_len)
{
    int in_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        snprintf(err, err_len, "pipe: %s", strerror(errno));
        if (in_pipe[0] >= 0) close(in_pipe[0]), close(in_pipe[1]);
        return -errno;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    const char *argv[16];
    size_t argc = 0;
    argv[argc++] = "nft";
    for (size_t i = 0; args[i] && argc < 15; i++) argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid;
    int rc = posix_spawnp(&pid, "nft", &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in_pipe[0]);
    close(err_pipe[1]);
    if (rc != 0) {
        snprintf(err, err_len, "cannot run nft: %s", strerror(rc));
        close(in_pipe[1]);
        close(err_pipe[0]);
        return -rc;
    }
    if (script) {
        size_t len = strlen(script), off = 0;
        while (off < len) {
            ssize_t n = write(in_pipe[1], script + off, len - off);
            if (n <= 0) break;
            off += (size_t)n;
        }
    }
    close(in_pipe[1]);
    size_t got = 0;
    err[0] = '\0';
    for (;;) {
        struct pollfd p = {.fd = err_pipe[0], .events = POLLIN};
        if (poll(&p, 1, NFT_TIMEOUT_MS) <= 0) {
            (void)kill(pid, SIGKILL);
            snprintf(err, err_len, "nft did not finish within %d ms", NFT_TIMEOUT_MS);
            break;
        }
        char chunk[512];
        ssize_t n = read(err_pipe[0], chunk, sizeof chunk);
        if (n <= 0) break;
        size_t take = MAMORI_MIN((size_t)n, err_len - 1 - got);
        memcpy(err + got, chunk, take);
        got += take;
        err[got] = '\0';
    }
    close(err_pipe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    /* One line is enough for a RESULT. */
    for (char *p = err; *p; p++)
        if (*p == '\n') *p = ' ';
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int isolation_nft_probe(bool *isolated, char *err, size_t err_len)
{
    static const char *const args[] = {"list", "table", "inet", NFT_TABLE, NULL};
    int rc = run_nft(args, NULL, err, err_len);
    if (rc < 0) return rc;
    *isolated = rc == 0;
    return 0;
}

static void append_endpoint_rules(buf *script, const struct sockaddr_storage *a)
{
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        port = ntohs(in->sin_port);
        buf_printf(script, "add rule inet %s output ip daddr %s tcp dport %u accept\n", NFT_TABLE, ip, port);
        buf_printf(script, "add rule inet %s input ip saddr %s tcp sport %u accept\n", NFT_TABLE, ip, port);
    } else if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
        buf_printf(script, "add rule inet %s output ip6 daddr %s tcp dport %u accept\n", NFT_TABLE, ip, port);
        buf_printf(script, "add rule inet %s input ip6 saddr %s tcp sport %u accept\n", NFT_TABLE, ip, port);
    }
}

int isolation_nft_apply(const struct sockaddr_storage *allow, size_t count, char *err, size_t err_len)
{
    buf script;
    buf_init(&script);
    /* add + delete + create in one transaction: atomic, and works whether or not the
     * table exists (nft 1.0.6 has no "destroy"). */
    buf_puts(&script, "add table inet " NFT_TABLE "\n"
                      "delete table inet " NFT_TABLE "\n"
                      "add table inet " NFT_TABLE "\n"
                      "add chain inet " NFT_TABLE " input { type filter hook input priority -10; policy drop; }\n"
                      "add chain inet " NFT_TABLE " output { type filter hook output priority -10; policy drop; }\n"
                      "add rule inet " NFT_TABLE " input iif lo accept\n"
                      "add rule inet " NFT_TABLE " output oif lo accept\n"
                      "add rule inet " NFT_TABLE " input icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, "
                      "nd-router-advert } accept\n"
                      "add rule inet " NFT_TABLE " output icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, "
                      "nd-router-solicit } accept\n");
    for (size_t i = 0; i < count; i++) append_endpoint_rules(&script, &allow[i]);
    const char *const args[] = {"-f", "-", NULL};
    int rc = run_nft(args, buf_cstr(&script), err, err_len);
    buf_fini(&script);
    if (rc > 0) {
        char detail[256];
        snprintf(detail, sizeof detail, "%s", err);
        snprintf(err, err_len, "nft failed (exit %d): %s", rc, detail);
        return -EIO;
    }
    return rc;
}

int isolation_nft_remove(char *err, size_t err_len)
{
    static const char script[] = "add table inet " NFT_TABLE "\ndelete table inet " NFT_TABLE "\n";
    const char *const args[] = {"-f", "-", NULL};
    int rc = run_nft(args, script, err, err_len);
    if (rc > 0) {
        char detail[256];
        snprintf(detail, sizeof detail, "%s", err);
        snprintf(err, err_len, "nft failed (exit %d): %s", rc, detail);
        return -EIO;
    }
    return rc;
}

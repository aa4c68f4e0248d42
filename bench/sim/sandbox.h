/* bench/sim/sandbox.h — the real host a simulated agent acts on (docs/response.md §2.1,
 * docs/simulator.md "Response actions"): one directory tree it may list, fetch from and
 * delete in (every path is confined beneath it, `..` and symlinks included), and the
 * child processes it started, which it may list and kill. Shared by every agent of the
 * run and safe to call from any worker thread. Errors are messages for a RESULT. */
#ifndef MAMORI_BENCH_SIM_SANDBOX_H
#define MAMORI_BENCH_SIM_SANDBOX_H

#include "core/base.h"
#include "core/buf.h"

#include <stdint.h>
#include <sys/types.h>

#define SANDBOX_ERROR_MAX 512
#define SANDBOX_LIST_ENTRIES_MAX 10000u /* list_dir: more entries → "truncated": true */
#define SANDBOX_DEPTH_MAX 8u
#define SANDBOX_PROCS_MAX 1024u

typedef struct sim_sandbox sim_sandbox;

/* root_dir: the permitted root (made absolute and canonical); NULL = no root, every path
 * is refused. Returns 0, or -errno with the reason in err. *out is owned by the caller. */
int sandbox_create(const char *root_dir, sim_sandbox **out, char *err, size_t err_len) MAMORI_WUR;
/* Kills (SIGKILL) and reaps the children still alive, closes the root. */
void sandbox_destroy(sim_sandbox *sb);
/* The canonical root ("" without one). Borrowed. */
const char *sandbox_root(const sim_sandbox *sb);

/* Starts `count` long-running children (`sleep`, killed with the simulator: PDEATHSIG).
 * Call before any thread starts. */
int sandbox_spawn_procs(sim_sandbox *sb, uint32_t count, char *err, size_t err_len) MAMORI_WUR;

/* Path confinement, the heart of every file action: opens `path` (absolute, path_len
 * bytes, need not be NUL-terminated) with open(2) `flags` beneath the root, resolving
 * `..` and symlinks inside it only (openat2 RESOLVE_BENEATH). Returns 0 with *fd_out, or
 * -EXDEV when the path is outside the permitted root (lexically or by resolution),
 * -EINVAL for a relative path or one with a NUL byte, or the open error (-ENOENT, …). */
int sandbox_open_beneath(const sim_sandbox *sb, const char *path, size_t path_len, int flags, int *fd_out) MAMORI_WUR;

/* The actions. On success each returns 0 and appends the `output` JSON object to out; on
 * failure -1 with the message in err (e.g. "path outside permitted roots: /etc/passwd"). */
int sandbox_list_dir(sim_sandbox *sb, const char *path, size_t path_len, uint32_t depth, size_t out_bytes_max,
                     buf *out, char *err, size_t err_len) MAMORI_WUR;
/* sha256_hex: NULL, or 64 hex digits the content must have (else nothing is deleted). */
int sandbox_delete_file(sim_sandbox *sb, const char *path, size_t path_len, const char *sha256_hex, buf *out,
                        char *err, size_t err_len) MAMORI_WUR;
/* Opens a regular file to send: -1 with err when it is not permitted, missing, not a
 * regular file, or bigger than max_bytes. *fd_out is owned by the caller. */
int sandbox_open_file(sim_sandbox *sb, const char *path, size_t path_len, uint64_t max_bytes, int *fd_out,
                      uint64_t *size_out, char *err, size_t err_len) MAMORI_WUR;
/* This process and the children it started that are alive, from /proc. */
int sandbox_list_processes(sim_sandbox *sb, buf *out, char *err, size_t err_len) MAMORI_WUR;
/* Kills one of our children by pid (entity_id NULL) or by entity_id (pid ignored), and
 * reaps it. Any other process is refused. */
int sandbox_kill_process(sim_sandbox *sb, int64_t pid, const char *entity_id, size_t entity_len, buf *out, char *err,
                         size_t err_len) MAMORI_WUR;

#endif

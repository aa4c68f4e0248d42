/* bench/sim/sandbox.c — what a simulated agent's response actions really touch
 * (docs/response.md §2.1): a directory tree confined with openat2(RESOLVE_BENEATH) from
 * one open root descriptor, so neither `..` nor a symlink (relative or absolute) nor a
 * rename race can lead outside it, and the child processes the simulator started, read
 * from /proc and killed only if they are ours (pid and start time both match). */
#include "sandbox.h"

#include "core/clock.h"
#include "core/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

typedef struct sandbox_child {
    pid_t pid;
    uint64_t start_ticks; /* /proc/<pid>/stat field 22: tells a reused pid apart */
} sandbox_child;

struct sim_sandbox {
    char root[PATH_MAX]; /* canonical; "" = no root */
    size_t root_len;
    int root_fd;
    pthread_mutex_t lock; /* children */
    sandbox_child children[SANDBOX_PROCS_MAX];
    uint32_t child_count;
};

static void set_err(char *err, size_t err_len, const char *fmt, ...) MAMORI_PRINTF(3, 4);
static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

int sandbox_create(const char *root_dir, sim_sandbox **out, char *err, size_t err_len)
{
    sim_sandbox *sb = mamori_xcalloc(1, sizeof *sb);
    sb->root_fd = -1;
    pthread_mutex_init(&sb->lock, NULL);
    if (root_dir) {
        if (!realpath(root_dir, sb->root)) {
            int e = errno;
            set_err(err, err_len, "--sandbox %s: %s", root_dir, strerror(e));
            sandbox_destroy(sb);
            return -e;
        }
        sb->root_len = strlen(sb->root);
        sb->root_fd = open(sb->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sb->root_fd < 0) {
            int e = errno;
            set_err(err, err_len, "--sandbox %s: %s", root_dir, strerror(e));
            sandbox_destroy(sb);
            return -e;
        }
    }
    *out = sb;
    return 0;
}

static void reap_locked(sim_sandbox *sb)
{
    for (uint32_t i = 0; i < sb->child_count;) {
        int status;
        pid_t r = waitpid(sb->children[i].pid, &status, WNOHANG);
        if (r == sb->children[i].pid || (r < 0 && errno == ECHILD)) {
            sb->children[i] = sb->children[--sb->child_count];
            continue;
        }
        i++;
    }
}

void sandbox_destroy(sim_sandbox *sb)
{
    if (!sb) return;
    for (uint32_t i = 0; i < sb->child_count; i++) {
        (void)kill(sb->children[i].pid, SIGKILL);
        (void)waitpid(sb->children[i].pid, NULL, 0);
    }
    if (sb->root_fd >= 0) close(sb->root_fd);
    pthread_mutex_destroy(&sb->lock);
    free(sb);
}

const char *sandbox_root(const sim_sandbox *sb) { return sb->root; }

/* ---- processes ---- */

/* Reads /proc/<pid>/stat: the command name (comm), the parent, the state and the start
 * time. Returns 0 or -errno. */
static int read_stat(pid_t pid, char *comm, size_t comm_cap, pid_t *ppid, char *state, uint64_t *start_ticks)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return -EIO;
    text[n] = '\0';
    char *open_paren = strchr(text, '(');
    char *close_paren = strrchr(text, ')');
    if (!open_paren || !close_paren || close_paren < open_paren) return -EIO;
    size_t comm_len = MAMORI_MIN((size_t)(close_paren - open_paren - 1), comm_cap - 1);
    memcpy(comm, open_paren + 1, comm_len);
    comm[comm_len] = '\0';
    /* After ") ": field 3 (state) is token 0, field 4 (ppid) token 1, field 22
     * (starttime) token 19. */
    char *save = NULL;
    char *tok = strtok_r(close_paren + 1, " ", &save);
    for (int i = 0; tok; i++, tok = strtok_r(NULL, " ", &save)) {
        if (i == 0 && state) *state = tok[0];
        else if (i == 1 && ppid) *ppid = (pid_t)strtol(tok, NULL, 10);
        else if (i == 19) {
            if (start_ticks) *start_ticks = strtoull(tok, NULL, 10);
            return 0;
        }
    }
    return -EIO;
}

int sandbox_spawn_procs(sim_sandbox *sb, uint32_t count, char *err, size_t err_len)
{
    if (count > SANDBOX_PROCS_MAX - sb->child_count) {
        set_err(err, err_len, "--sandbox-procs: at most %u", SANDBOX_PROCS_MAX);
        return -EINVAL;
    }
    pid_t parent = getpid();
    for (uint32_t i = 0; i < count; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            set_err(err, err_len, "--sandbox-procs: fork: %s", strerror(errno));
            return -errno;
        }
        if (pid == 0) {
            /* Dies with the simulator, whatever kills it. */
            (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(0);
            int devnull = open("/dev/null", O_RDWR);
            if (devnull >= 0) {
                (void)dup2(devnull, 0);
                (void)dup2(devnull, 1);
            }
            char seconds[32];
            snprintf(seconds, sizeof seconds, "%u", 86400u + i);
            execlp("sleep", "sleep", seconds, (char *)NULL);
            _exit(127);
        }
        sandbox_child *c = &sb->children[sb->child_count++];
        c->pid = pid;
        c->start_ticks = 0;
        if (read_stat(pid, (char[16]){0}, 16, NULL, NULL, &c->start_ticks) != 0) {
            set_err(err, err_len, "--sandbox-procs: child %d vanished", (int)pid);
            return -ESRCH;
        }
    }
    return 0;
}

static void entity_id_of(pid_t pid, uint64_t start_ticks, char *out, size_t cap)
{
    snprintf(out, cap, "sim-%d-%llu", (int)pid, (unsigned long long)start_ticks);
}

/* Appends one process object; false if it is gone. */
static bool append_process(buf *out, pid_t pid, bool first)
{
    char comm[64], state = 0;
    pid_t ppid = 0;
    uint64_t start = 0;
    if (read_stat(pid, comm, sizeof comm, &ppid, &state, &start) != 0 || state == 'Z' || state == 'X') return false;
    char path[64], exe[PATH_MAX], entity[64];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    ssize_t exe_len = readlink(path, exe, sizeof exe - 1);
    if (exe_len < 0) exe_len = 0;
    exe[exe_len] = '\0';
    char cmdline[4096];
    size_t cmd_len = 0;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, cmdline, sizeof cmdline);
        close(fd);
        if (n > 0) cmd_len = (size_t)n;
    }
    while (cmd_len && cmdline[cmd_len - 1] == '\0') cmd_len--;
    for (size_t i = 0; i < cmd_len; i++)
        if (cmdline[i] == '\0') cmdline[i] = ' ';
    char user[64] = "";
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    if (stat(path, &st) == 0) {
        struct passwd pw, *found = NULL;
        char pwbuf[1024];
        if (getpwuid_r(st.st_uid, &pw, pwbuf, sizeof pwbuf, &found) == 0 && found)
            snprintf(user, sizeof user, "%s", found->pw_name);
        else
            snprintf(user, sizeof user, "%u", (unsigned)st.st_uid);
    }
    entity_id_of(pid, start, entity, sizeof entity);
    if (!first) buf_putc(out, ',');
    buf_puts(out, "{\"pid\":");
    buf_put_i64(out, pid);
    buf_puts(out, ",\"ppid\":");
    buf_put_i64(out, ppid);
    buf_puts(out, ",\"name\":");
    json_write_string(out, comm, strlen(comm));
    buf_puts(out, ",\"executable\":");
    json_write_string(out, exe, (size_t)exe_len);
    buf_puts(out, ",\"command_line\":");
    json_write_string(out, cmdline, cmd_len);
    buf_puts(out, ",\"entity_id\":");
    json_write_string(out, entity, strlen(entity));
    buf_puts(out, ",\"user\":");
    json_write_string(out, user, strlen(user));
    buf_putc(out, '}');
    return true;
}

int sandbox_list_processes(sim_sandbox *sb, buf *out, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    pthread_mutex_lock(&sb->lock);
    reap_locked(sb);
    buf_puts(out, "{\"processes\":[");
    bool first = !append_process(out, getpid(), true);
    for (uint32_t i = 0; i < sb->child_count; i++)
        if (append_process(out, sb->children[i].pid, first)) first = false;
    buf_puts(out, "]}");
    pthread_mutex_unlock(&sb->lock);
    return 0;
}

int sandbox_kill_process(sim_sandbox *sb, int64_t pid, const char *entity_id, size_t entity_len, buf *out, char *err,
                         size_t err_len)
{
    pthread_mutex_lock(&sb->lock);
    reap_locked(sb);
    int rc = -1;
    uint32_t found = UINT32_MAX;
    for (uint32_t i = 0; i < sb->child_count && found == UINT32_MAX; i++) {
        if (entity_id) {
            char entity[64];
            entity_id_of(sb->children[i].pid, sb->children[i].start_ticks, entity, sizeof entity);
            if (strlen(entity) == entity_len && memcmp(entity, entity_id, entity_len) == 0) found = i;
        } else if (sb->children[i].pid == pid) {
            found = i;
        }
    }
    if (found == UINT32_MAX) {
        if (entity_id)
            set_err(err, err_len, "no process started by this agent has entity_id %.*s", (int)MAMORI_MIN(entity_len, 128),
                    entity_id);
        else if (pid == getpid())
            set_err(err, err_len, "process %lld is the agent itself: refused", (long long)pid);
        else
            set_err(err, err_len, "process %lld was not started by this agent: refused", (long long)pid);
        goto done;
    }
    sandbox_child c = sb->children[found];
    uint64_t start = 0;
    char comm[16];
    char state = 0;
    if (read_stat(c.pid, comm, sizeof comm, NULL, &state, &start) != 0 || start != c.start_ticks || state == 'Z') {
        set_err(err, err_len, "process %d is gone", (int)c.pid);
        goto done;
    }
    if (kill(c.pid, SIGKILL) != 0) {
        set_err(err, err_len, "kill %d: %s", (int)c.pid, strerror(errno));
        goto done;
    }
    /* Reaped here, so the process is gone from /proc when the result says killed. */
    (void)waitpid(c.pid, NULL, 0);
    sb->children[found] = sb->children[--sb->child_count];
    buf_puts(out, "{\"pid\":");
    buf_put_i64(out, c.pid);
    buf_puts(out, ",\"killed\":true}");
    rc = 0;
done:
    pthread_mutex_unlock(&sb->lock);
    return rc;
}

/* ---- paths ---- */

int sandbox_open_beneath(const sim_sandbox *sb, const char *path, size_t path_len, int flags, int *fd_out)
{
    if (path_len == 0 || path[0] != '/' || memchr(path, '\0', path_len)) return -EINVAL;
    if (sb->root_fd < 0) return -EXDEV;
    /* Lexically under the root: the root itself, or root + '/' + the rest. */
    const char *rest;
    size_t rest_len;
    if (sb->root_len == 1) { /* the root is "/" */
        rest = path + 1;
        rest_len = path_len - 1;
    } else if (path_len >= sb->root_len && memcmp(path, sb->root, sb->root_len) == 0 &&
               (path_len == sb->root_len || path[sb->root_len] == '/')) {
        rest = path + sb->root_len;
        rest_len = path_len - sb->root_len;
    } else {
        return -EXDEV;
    }
    while (rest_len && rest[0] == '/') {
        rest++;
        rest_len--;
    }
    char rel[PATH_MAX];
    if (rest_len >= sizeof rel) return -ENAMETOOLONG;
    if (rest_len == 0) {
        rel[0] = '.';
        rel[1] = '\0';
    } else {
        memcpy(rel, rest, rest_len);
        rel[rest_len] = '\0';
    }
    /* The kernel resolves every component beneath root_fd: `..` past the root, an
     * absolute symlink, or a relative one that climbs out all fail with EXDEV. */
    struct open_how how = {.flags = (uint64_t)(unsigned)flags | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    long fd = syscall(SYS_openat2, sb->root_fd, rel, &how, sizeof how);
    if (fd < 0) return errno == ELOOP ? -EXDEV : -errno;
    *fd_out = (int)fd;
    return 0;
}

static int path_error(int rc, const char *path, size_t path_len, char *err, size_t err_len)
{
    int n = (int)MAMORI_MIN(path_len, (size_t)300);
    switch (rc) {
    case -EXDEV:
    case -EINVAL: set_err(err, err_len, "path outside permitted roots: %.*s", n, path); break;
    case -ENOENT: set_err(err, err_len, "no such file or directory: %.*s", n, path); break;
    case -ENOTDIR: set_err(err, err_len, "not a directory: %.*s", n, path); break;
    default: set_err(err, err_len, "%.*s: %s", n, path, strerror(-rc)); break;
    }
    return -1;
}

static void hex_of(const unsigned char *md, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[2 * n] = '\0';
}

/* sha256 of an open file from its start. */
static int sha256_fd(int fd, char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return -ENOMEM;
    }
    char chunk[64 * 1024];
    off_t off = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = pread(fd, chunk, sizeof chunk, off);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = -errno;
            break;
        }
        if (n == 0) break;
        EVP_DigestUpdate(ctx, chunk, (size_t)n);
        off += n;
    }
    unsigned char md[32];
    unsigned int len = 0;
    if (!rc) {
        EVP_DigestFinal_ex(ctx, md, &len);
        hex_of(md, 32, hex);
    }
    EVP_MD_CTX_free(ctx);
    return rc;
}

int sandbox_delete_file(sim_sandbox *sb, const char *path, size_t path_len, const char *sha256_hex, buf *out,
                        char *err, size_t err_len)
{
    int n = (int)MAMORI_MIN(path_len, (size_t)300);
    /* The last component must name an entry: not the root, ".", ".." or a trailing "/". */
    size_t end = path_len;
    size_t slash = end;
    while (slash > 0 && path[slash - 1] != '/') slash--;
    const char *base = path + slash;
    size_t base_len = end - slash;
    if (slash == 0 || base_len == 0 || (base_len == 1 && base[0] == '.') ||
        (base_len == 2 && base[0] == '.' && base[1] == '.')) {
        int fd;
        int rc = sandbox_open_beneath(sb, path, path_len, O_PATH, &fd);
        if (rc) return path_error(rc, path, path_len, err, err_len);
        close(fd);
        return set_err(err, err_len, "not a regular file: %.*s", n, path), -1;
    }
    if (base_len > NAME_MAX) return path_error(-ENAMETOOLONG, path, path_len, err, err_len);
    char name[NAME_MAX + 1];
    memcpy(name, base, base_len);
    name[base_len] = '\0';

    int dir_fd = -1, fd = -1, rc;
    rc = sandbox_open_beneath(sb, path, slash, O_PATH | O_DIRECTORY, &dir_fd);
    if (rc) return path_error(rc, path, path_len, err, err_len);
    /* The content (through a symlink too, if it stays inside) is what the hash is of. */
    rc = sandbox_open_beneath(sb, path, path_len, O_RDONLY | O_NOCTTY | O_NONBLOCK, &fd);
    if (rc) {
        close(dir_fd);
        return path_error(rc, path, path_len, err, err_len);
    }
    int result = -1;
    struct stat st, entry;
    char hex[65];
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, err_len, "not a regular file: %.*s", n, path);
        goto done;
    }
    rc = sha256_fd(fd, hex);
    if (rc) {
        set_err(err, err_len, "%.*s: read: %s", n, path, strerror(-rc));
        goto done;
    }
    if (sha256_hex && strcasecmp(sha256_hex, hex) != 0) {
        set_err(err, err_len, "sha256 mismatch: %.*s is %s, not %s: nothing deleted", n, path, hex, sha256_hex);
        goto done;
    }
    /* A regular file must still be the file we hashed (no swap in between); a symlink
     * is removed itself, never its target. */
    if (fstatat(dir_fd, name, &entry, AT_SYMLINK_NOFOLLOW) != 0) {
        set_err(err, err_len, "no such file or directory: %.*s", n, path);
        goto done;
    }
    if (!S_ISLNK(entry.st_mode) && (entry.st_dev != st.st_dev || entry.st_ino != st.st_ino)) {
        set_err(err, err_len, "%.*s changed while being deleted: nothing deleted", n, path);
        goto done;
    }
    if (unlinkat(dir_fd, name, 0) != 0) {
        set_err(err, err_len, "%.*s: unlink: %s", n, path, strerror(errno));
        goto done;
    }
    buf_puts(out, "{\"path\":");
    json_write_string(out, path, path_len);
    buf_puts(out, ",\"deleted\":true,\"sha256\":\"");
    buf_puts(out, hex);
    buf_puts(out, "\"}");
    result = 0;
done:
    close(fd);
    close(dir_fd);
    return result;
}

int sandbox_open_file(sim_sandbox *sb, const char *path, size_t path_len, uint64_t max_bytes, int *fd_out,
                      uint64_t *size_out, char *err, size_t err_len)
{
    int n = (int)MAMORI_MIN(path_len, (size_t)300);
    int fd;
    int rc = sandbox_open_beneath(sb, path, path_len, O_RDONLY | O_NOCTTY | O_NONBLOCK, &fd);
    if (rc) return path_error(rc, path, path_len, err, err_len);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return set_err(err, err_len, "not a regular file: %.*s", n, path), -1;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        close(fd);
        set_err(err, err_len, "file is %llu bytes, over max_bytes %llu", (unsigned long long)st.st_size,
                (unsigned long long)max_bytes);
        return -1;
    }
    *fd_out = fd;
    *size_out = (uint64_t)st.st_size;
    return 0;
}

/* ---- list_dir ---- */

typedef struct walk {
    buf *out;
    size_t out_start;
    size_t out_bytes_max;
    uint32_t entries;
    bool truncated;
} walk;

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void walk_dir(walk *wk, int dir_fd, const char *dir_path, uint32_t depth_left)
{
    int fd = dup(dir_fd);
    if (fd < 0) return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            names = mamori_xrealloc(names, cap * sizeof *names);
        }
        names[count++] = mamori_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, compare_names);
    for (size_t i = 0; i < count; i++) {
        if (wk->truncated) break;
        struct stat st;
        if (fstatat(dir_fd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) continue; /* gone meanwhile */
        if (wk->entries >= SANDBOX_LIST_ENTRIES_MAX || wk->out->len - wk->out_start >= wk->out_bytes_max) {
            wk->truncated = true;
            break;
        }
        const char *type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "symlink"
                                                                                                          : "other";
        char child[PATH_MAX + NAME_MAX + 2];
        int len = snprintf(child, sizeof child, "%s%s%s", dir_path, strcmp(dir_path, "/") ? "/" : "", names[i]);
        if (len < 0 || (size_t)len >= sizeof child) continue;
        char mtime[40];
        clock_format_rfc3339((int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000, mtime);
        if (wk->entries) buf_putc(wk->out, ',');
        buf_puts(wk->out, "{\"path\":");
        json_write_string(wk->out, child, (size_t)len);
        buf_printf(wk->out, ",\"type\":\"%s\",\"size\":%lld,\"mtime\":\"%s\"}", type, (long long)st.st_size, mtime);
        wk->entries++;
        if (S_ISDIR(st.st_mode) && depth_left > 1) {
            /* Names from readdir hold no '/', and O_NOFOLLOW keeps a racing symlink out. */
            int sub = openat(dir_fd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                walk_dir(wk, sub, child, depth_left - 1);
                close(sub);
            }
        }
    }
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
}

int sandbox_list_dir(sim_sandbox *sb, const char *path, size_t path_len, uint32_t depth, size_t out_bytes_max, buf *out,
                     char *err, size_t err_len)
{
    if (depth < 1 || depth > SANDBOX_DEPTH_MAX)
        return set_err(err, err_len, "depth %u out of range 1-%u", depth, SANDBOX_DEPTH_MAX), -1;
    int fd;
    int rc = sandbox_open_beneath(sb, path, path_len, O_RDONLY | O_DIRECTORY, &fd);
    if (rc) return path_error(rc, path, path_len, err, err_len);
    /* Entries are named by the directory's real path (what was opened), so they are
     * canonical whatever spelling the request used. */
    char real[PATH_MAX], link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t real_len = readlink(link, real, sizeof real - 1);
    if (real_len <= 0) {
        close(fd);
        return path_error(-EIO, path, path_len, err, err_len);
    }
    real[real_len] = '\0';
    size_t start = out->len;
    buf_puts(out, "{\"path\":");
    json_write_string(out, path, path_len);
    buf_puts(out, ",\"entries\":[");
    walk wk = {.out = out, .out_start = start, .out_bytes_max = out_bytes_max};
    walk_dir(&wk, fd, real, depth);
    close(fd);
    buf_printf(out, "],\"truncated\":%s}", wk.truncated ? "true" : "false");
    return 0;
}

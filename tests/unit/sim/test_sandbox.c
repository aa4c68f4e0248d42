/* Unit tests: bench/sim/sandbox.c — the simulator's response-action sandbox. Path
 * confinement above all (a path outside the root, `..` climbing out, absolute and
 * relative symlinks leading out, a sibling sharing the root's prefix, relative paths and
 * NUL bytes are refused; what stays inside is allowed), then delete with a wrong hash,
 * list_dir truncation and fetch size limits, and kill_process refusing what is not ours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fixture {
    char base[256]; /* holds root/ and root-sibling/ */
    char root[PATH_MAX];
    sim_sandbox *sb;
} fixture;

static void write_file(const char *dir, const char *rel, const char *content)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void make_dir(const char *dir, const char *rel)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static void make_link(const char *dir, const char *rel, const char *target)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    assert_int_equal(symlink(target, path), 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->base, sizeof f->base, "/tmp/mamori-sandbox-XXXXXX");
    assert_non_null(mkdtemp(f->base));
    snprintf(f->root, sizeof f->root, "%s/root", f->base);
    assert_int_equal(mkdir(f->root, 0755), 0);
    make_dir(f->base, "root-sibling");
    write_file(f->base, "root-sibling/secret", "secret\n");
    write_file(f->base, "outside.txt", "outside\n");
    make_dir(f->root, "docs");
    make_dir(f->root, "docs/sub");
    write_file(f->root, "docs/a.txt", "hello\n");
    write_file(f->root, "docs/sub/b.txt", "b\n");
    make_link(f->root, "inside-link", "docs/a.txt");
    make_link(f->root, "docs/up-link", "../docs/a.txt");
    make_link(f->root, "abs-link", "/etc/passwd");
    make_link(f->root, "rel-out", "../outside.txt");
    make_link(f->root, "dir-out", "../root-sibling");
    char err[SANDBOX_ERROR_MAX];
    assert_int_equal(sandbox_create(f->root, &f->sb, err, sizeof err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sandbox_destroy(f->sb);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->base);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* sandbox_open_beneath(root + suffix) */
static int open_rel(fixture *f, const char *suffix)
{
    char path[PATH_MAX * 2];
    int n = snprintf(path, sizeof path, "%s%s", f->root, suffix);
    int fd = -1;
    int rc = sandbox_open_beneath(f->sb, path, (size_t)n, O_RDONLY, &fd);
    if (rc == 0) close(fd);
    return rc;
}

static int open_abs(fixture *f, const char *path)
{
    int fd = -1;
    int rc = sandbox_open_beneath(f->sb, path, strlen(path), O_RDONLY, &fd);
    if (rc == 0) close(fd);
    return rc;
}

static void test_inside_is_allowed(void **state)
{
    fixture *f = *state;
    assert_int_equal(open_rel(f, ""), 0);                       /* the root itself */
    assert_int_equal(open_rel(f, "/"), 0);
    assert_int_equal(open_rel(f, "/docs/a.txt"), 0);
    assert_int_equal(open_rel(f, "//docs///a.txt"), 0);
    assert_int_equal(open_rel(f, "/docs/sub/../a.txt"), 0);    /* `..` that stays inside */
    assert_int_equal(open_rel(f, "/inside-link"), 0);           /* relative link inside */
    assert_int_equal(open_rel(f, "/docs/up-link"), 0);          /* `..` in a link, inside */
    assert_int_equal(open_rel(f, "/docs/missing"), -ENOENT);
}

static void test_outside_is_refused(void **state)
{
    fixture *f = *state;
    assert_int_equal(open_abs(f, "/etc/passwd"), -EXDEV);
    assert_int_equal(open_abs(f, "/"), -EXDEV);
    assert_int_equal(open_rel(f, "/../outside.txt"), -EXDEV);
    assert_int_equal(open_rel(f, "/docs/../../outside.txt"), -EXDEV);
    assert_int_equal(open_rel(f, "/docs/sub/../../../root/docs/a.txt"), -EXDEV); /* out and back in */
    assert_int_equal(open_rel(f, "/abs-link"), -EXDEV);
    assert_int_equal(open_rel(f, "/rel-out"), -EXDEV);
    assert_int_equal(open_rel(f, "/dir-out/secret"), -EXDEV);
    assert_int_equal(open_rel(f, "-sibling/secret"), -EXDEV); /* shares the root's prefix */
    assert_int_equal(open_rel(f, "/.."), -EXDEV);
    /* malformed: relative, empty, NUL inside */
    assert_int_equal(open_abs(f, "docs/a.txt"), -EINVAL);
    int fd;
    assert_int_equal(sandbox_open_beneath(f->sb, "", 0, O_RDONLY, &fd), -EINVAL);
    char with_nul[PATH_MAX * 2];
    int n = snprintf(with_nul, sizeof with_nul, "%s/docs/a.txt", f->root);
    with_nul[strlen(f->root) + 5] = '\0';
    assert_int_equal(sandbox_open_beneath(f->sb, with_nul, (size_t)n, O_RDONLY, &fd), -EINVAL);
}

static void test_no_root_refuses_everything(void **state)
{
    (void)state;
    sim_sandbox *sb;
    char err[SANDBOX_ERROR_MAX];
    assert_int_equal(sandbox_create(NULL, &sb, err, sizeof err), 0);
    int fd;
    assert_int_equal(sandbox_open_beneath(sb, "/tmp", 4, O_RDONLY, &fd), -EXDEV);
    buf out;
    buf_init(&out);
    assert_int_equal(sandbox_list_dir(sb, "/tmp", 4, 1, 1 << 20, &out, err, sizeof err), -1);
    assert_string_equal(err, "path outside permitted roots: /tmp");
    buf_fini(&out);
    sandbox_destroy(sb);
    assert_int_not_equal(sandbox_create("/nonexistent/mamori", &sb, err, sizeof err), 0);
    assert_non_null(strstr(err, "/nonexistent/mamori"));
}

static void test_delete_and_fetch(void **state)
{
    fixture *f = *state;
    char err[SANDBOX_ERROR_MAX], path[PATH_MAX * 2];
    buf out;
    buf_init(&out);
    int n = snprintf(path, sizeof path, "%s/docs/a.txt", f->root);
    /* sha256("hello\n") */
    static const char right[] = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    assert_int_equal(sandbox_delete_file(f->sb, path, (size_t)n, "0000000000000000000000000000000000000000000000000000000000000000",
                                         &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "sha256 mismatch"));
    assert_int_equal(access(path, F_OK), 0);
    int fd;
    uint64_t size;
    assert_int_equal(sandbox_open_file(f->sb, path, (size_t)n, 5, &fd, &size, err, sizeof err), -1);
    assert_string_equal(err, "file is 6 bytes, over max_bytes 5");
    assert_int_equal(sandbox_open_file(f->sb, path, (size_t)n, 6, &fd, &size, err, sizeof err), 0);
    assert_int_equal(size, 6);
    close(fd);
    assert_int_equal(sandbox_delete_file(f->sb, path, (size_t)n, right, &out, err, sizeof err), 0);
    assert_non_null(strstr(out.data, "\"deleted\":true"));
    assert_int_equal(access(path, F_OK), -1);
    /* a link leading out is refused, and its target survives */
    buf_clear(&out);
    n = snprintf(path, sizeof path, "%s/rel-out", f->root);
    assert_int_equal(sandbox_delete_file(f->sb, path, (size_t)n, NULL, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "path outside permitted roots"));
    char outside[PATH_MAX * 2];
    snprintf(outside, sizeof outside, "%s/outside.txt", f->base);
    assert_int_equal(access(outside, F_OK), 0);
    /* the root and directories are not files */
    n = snprintf(path, sizeof path, "%s/", f->root);
    assert_int_equal(sandbox_delete_file(f->sb, path, (size_t)n, NULL, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));
    n = snprintf(path, sizeof path, "%s/docs/..", f->root);
    assert_int_equal(sandbox_delete_file(f->sb, path, (size_t)n, NULL, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));
    buf_fini(&out);
}

static void test_list_dir(void **state)
{
    fixture *f = *state;
    char err[SANDBOX_ERROR_MAX];
    buf out;
    buf_init(&out);
    assert_int_equal(sandbox_list_dir(f->sb, f->root, strlen(f->root), 2, 1 << 20, &out, err, sizeof err), 0);
    buf_cstr(&out);
    assert_non_null(strstr(out.data, "/docs/sub\""));
    assert_null(strstr(out.data, "/docs/sub/b.txt\""));
    buf_clear(&out);
    assert_int_equal(sandbox_list_dir(f->sb, f->root, strlen(f->root), 3, 1 << 20, &out, err, sizeof err), 0);
    buf_cstr(&out);
    assert_non_null(strstr(out.data, "/docs/sub/b.txt\""));
    assert_non_null(strstr(out.data, "\"type\":\"symlink\""));
    assert_non_null(strstr(out.data, "\"truncated\":false"));
    /* depth 1 does not descend; links to directories are never followed */
    buf_clear(&out);
    assert_int_equal(sandbox_list_dir(f->sb, f->root, strlen(f->root), 1, 1 << 20, &out, err, sizeof err), 0);
    buf_cstr(&out);
    assert_null(strstr(out.data, "b.txt"));
    assert_null(strstr(out.data, "secret"));
    /* over the output limit: truncated, still valid */
    buf_clear(&out);
    assert_int_equal(sandbox_list_dir(f->sb, f->root, strlen(f->root), 8, 10, &out, err, sizeof err), 0);
    buf_cstr(&out);
    assert_non_null(strstr(out.data, "\"truncated\":true"));
    assert_int_equal(sandbox_list_dir(f->sb, f->root, strlen(f->root), 9, 1 << 20, &out, err, sizeof err), -1);
    buf_fini(&out);
}

static void test_kill_only_own_children(void **state)
{
    fixture *f = *state;
    char err[SANDBOX_ERROR_MAX];
    buf out;
    buf_init(&out);
    assert_int_equal(sandbox_spawn_procs(f->sb, 1, err, sizeof err), 0);
    assert_int_equal(sandbox_list_processes(f->sb, &out, err, sizeof err), 0);
    buf_cstr(&out);
    /* the first process is the agent itself, the second the child */
    const char *child = strstr(out.data, "},{\"pid\":");
    assert_non_null(child);
    long pid = strtol(child + 9, NULL, 10);
    assert_true(pid > 0 && pid != getpid());
    buf_clear(&out);
    assert_int_equal(sandbox_kill_process(f->sb, getpid(), NULL, 0, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "the agent itself"));
    assert_int_equal(sandbox_kill_process(f->sb, 1, NULL, 0, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "not started by this agent"));
    assert_int_equal(kill(1, 0), 0);
    assert_int_equal(sandbox_kill_process(f->sb, -1, "sim-1-1", 7, &out, err, sizeof err), -1);
    assert_int_equal(sandbox_kill_process(f->sb, pid, NULL, 0, &out, err, sizeof err), 0);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/%ld", pid);
    assert_int_equal(access(proc, F_OK), -1); /* killed and reaped */
    assert_int_equal(sandbox_kill_process(f->sb, pid, NULL, 0, &out, err, sizeof err), -1);
    buf_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inside_is_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outside_is_refused, setup, teardown),
        cmocka_unit_test(test_no_root_refuses_everything),
        cmocka_unit_test_setup_teardown(test_delete_and_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_only_own_children, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

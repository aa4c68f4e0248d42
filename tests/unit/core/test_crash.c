/* Unit tests: core/crash.c — a process that installed the handler and then crashes writes
 * the signal, the address and its stack to stderr, and still dies of that signal (exit
 * status and core dumps unchanged). Each crash happens in a forked child. Sanitizer builds
 * install nothing (their own reports are better), and the tests say so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/crash.h"

/* Runs crash() in a child with the handler installed; returns its stderr (static) and sets
 * *status. */
static const char *crash_child(void (*crash)(void), int *status)
{
    static char out[16384];
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        if (!crash_report_install("crash-test")) _exit(77);
        crash();
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], out + len, sizeof out - 1 - len)) > 0) len += (size_t)n;
    out[len] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, status, 0), pid);
    return out;
}

static volatile int *volatile null_pointer;

static void segfault(void) { *null_pointer = 1; }

static void abort_now(void) { abort(); }

static void test_segfault_reports_and_dies(void **state)
{
    (void)state;
    int status;
    const char *err = crash_child(segfault, &status);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) skip(); /* a sanitizer build */
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    assert_non_null(strstr(err, "crash-test: fatal SIGSEGV (11) at address 0x0; stack"));
    /* frames follow, one per line, naming the binary and an offset */
    assert_non_null(strstr(err, "unit_core_test_crash("));
}

static void test_abort_reports_and_dies(void **state)
{
    (void)state;
    int status;
    const char *err = crash_child(abort_now, &status);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) skip();
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_non_null(strstr(err, "crash-test: fatal SIGABRT (6); stack"));
    assert_null(strstr(err, "at address"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segfault_reports_and_dies),
        cmocka_unit_test(test_abort_reports_and_dies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

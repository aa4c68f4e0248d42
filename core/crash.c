/* core/crash.c — see crash.h. The handler uses only async-signal-safe calls (write, raise,
 * sigaction) plus glibc's backtrace(), whose first call loads libgcc_s: install calls it
 * once, so the handler never loads a library (nor allocates) in a dying process. */
#include "crash.h"

#include <execinfo.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#if defined(MAMORI_SANITIZED) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CRASH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CRASH_SANITIZED 1
#endif
#endif

#ifndef CRASH_SANITIZED
#define CRASH_FRAMES 64

static const char *crash_program = "mamori";
static char alt_stack[64 * 1024]; /* the main thread's: a stack overflow there still reports */

static void put(const char *s) { (void)!write(STDERR_FILENO, s, strlen(s)); }

static void put_number(uintptr_t v, unsigned base)
{
    char digits[24], *p = digits + sizeof digits; /* 20 decimal digits, or "0x" and 16 */
    *--p = '\0';
    do {
        *--p = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (base == 16) *--p = 'x', *--p = '0';
    put(p);
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    default: return "signal";
    }
}

static void on_fatal(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    put(crash_program);
    put(": fatal ");
    put(signal_name(sig));
    put(" (");
    put_number((uintptr_t)sig, 10);
    put(")");
    if (sig != SIGABRT) {
        put(" at address ");
        put_number((uintptr_t)info->si_addr, 16);
    }
    put("; stack (addr2line -f -e BINARY OFFSET):\n");
    void *frames[CRASH_FRAMES];
    int n = backtrace(frames, CRASH_FRAMES);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    /* SA_RESETHAND put the default action back: die of the same signal */
    raise(sig);
}
#endif

bool crash_report_install(const char *program)
{
#ifdef CRASH_SANITIZED
    (void)program;
    return false;
#else
    crash_program = program;
    void *warm[1];
    (void)backtrace(warm, 1); /* loads libgcc_s now, not in the handler */
    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0};
    (void)sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = (int)(SA_SIGINFO | SA_ONSTACK | (unsigned)SA_RESETHAND);
    sigemptyset(&sa.sa_mask);
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) (void)sigaction(fatal[i], &sa, NULL);
    return true;
#endif
}

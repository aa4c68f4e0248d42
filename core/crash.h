/* core/crash.h — what a crash leaves behind. After crash_report_install(), a fatal signal
 * (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) writes one line naming the program, the signal
 * and the faulting address to stderr (the log), then the stack, one frame per line as
 * `binary(+offset) [address]` (`addr2line -f -e BINARY OFFSET` names the function and line),
 * and the process then dies of the same signal as it would have: the exit status and any core
 * dump are unchanged. Sanitizer builds keep their own reports and install nothing. */
#ifndef MAMORI_CORE_CRASH_H
#define MAMORI_CORE_CRASH_H

#include <stdbool.h>

/* Installs the handler for the calling process (program: the name the first line starts
 * with; kept, not copied). Returns false when it installed nothing (a sanitizer build). */
bool crash_report_install(const char *program);

#endif

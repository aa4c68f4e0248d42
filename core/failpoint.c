/* core/failpoint.c — see failpoint.h. A handful of names, set once before the threads start
 * and only read afterwards (but for their atomic counts); a disarmed process pays one load of
 * a flag per point. */
#include "failpoint.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"

#define FAILPOINTS_MAX 16
#define FAILPOINT_NAME_MAX 64

static char names[FAILPOINTS_MAX][FAILPOINT_NAME_MAX];
static atomic_long left[FAILPOINTS_MAX]; /* failures still to give; -1: every time */
static int count;
static atomic_bool armed;

int failpoints_arm(const char *spec)
{
    count = 0;
    while (spec && *spec && count < FAILPOINTS_MAX) {
        const char *end = strchr(spec, ',');
        size_t len = end ? (size_t)(end - spec) : strlen(spec);
        const char *eq = memchr(spec, '=', len);
        size_t name_len = eq ? (size_t)(eq - spec) : len;
        long n = -1;
        if (eq) {
            char *stop = NULL;
            n = strtol(eq + 1, &stop, 10);
            if (stop != spec + len || stop == eq + 1 || n < 1) name_len = 0; /* not a count: skipped */
        }
        if (name_len > 0 && name_len < FAILPOINT_NAME_MAX) {
            memcpy(names[count], spec, name_len);
            names[count][name_len] = '\0';
            atomic_store_explicit(&left[count], n, memory_order_relaxed);
            count++;
        }
        spec = end ? end + 1 : NULL;
    }
    atomic_store_explicit(&armed, count > 0, memory_order_release);
    return count;
}

bool failpoint(const char *name)
{
    if (MAMORI_LIKELY(!atomic_load_explicit(&armed, memory_order_acquire))) return false;
    for (int i = 0; i < count; i++) {
        if (strcmp(names[i], name) != 0) continue;
        long n = atomic_load_explicit(&left[i], memory_order_relaxed);
        while (n > 0 && !atomic_compare_exchange_weak_explicit(&left[i], &n, n - 1, memory_order_relaxed,
                                                               memory_order_relaxed)) {
        }
        return n != 0; /* -1: always; n > 0: this was one of the n */
    }
    return false;
}

/* core/failpoint.c — see failpoint.h. A handful of names, set once before the threads start
 * and only read afterwards; a disarmed process pays one load of a flag per point. */
#include "failpoint.h"

#include <stdatomic.h>
#include <string.h>

#include "core/base.h"

#define FAILPOINTS_MAX 16
#define FAILPOINT_NAME_MAX 64

static char names[FAILPOINTS_MAX][FAILPOINT_NAME_MAX];
static int count;
static atomic_bool armed;

int failpoints_arm(const char *spec)
{
    count = 0;
    while (spec && *spec && count < FAILPOINTS_MAX) {
        const char *end = strchr(spec, ',');
        size_t len = end ? (size_t)(end - spec) : strlen(spec);
        if (len > 0 && len < FAILPOINT_NAME_MAX) {
            memcpy(names[count], spec, len);
            names[count][len] = '\0';
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
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0) return true;
    return false;
}

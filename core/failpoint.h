/* core/failpoint.h — named points where a test can make an operation fail, to reach error
 * paths no real input reaches deterministically (a RocksDB write failing at one moment and
 * not at the next). Disarmed unless failpoints_arm() is called: mamorid calls it only for a
 * development node (--dev) started with MAMORI_FAILPOINTS=name[=N][,…] in its environment
 * (each point fails every time it is reached, or its first N times), so a production node
 * never consults them. The points are listed in the README ("Building and testing by
 * hand"). */
#ifndef MAMORI_CORE_FAILPOINT_H
#define MAMORI_CORE_FAILPOINT_H

#include <stdbool.h>

/* Arms the points named in spec (comma-separated `name` or `name=N`, N >= 1; NULL or "" arms
 * none; malformed items are skipped). Call before any thread reaches a point. Returns the
 * number armed. */
int failpoints_arm(const char *spec);

/* True when the point is armed (the caller then fails as the real operation would). */
bool failpoint(const char *name);

#endif

/* core/log.h — the one logger: `ts level module msg key=value…` lines on stderr.
 * Never log per event; use LOG_RATELIMITED on any path input can drive. */
#ifndef MAMORI_CORE_LOG_H
#define MAMORI_CORE_LOG_H

#include "base.h"

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns -EINVAL otherwise. */
int log_level_parse(const char *name, enum log_level *out) MAMORI_WUR;
void log_write(enum log_level level, const char *module, const char *fmt, ...) MAMORI_PRINTF(3, 4);

/* Token bucket of `per_second` lines; counts what it suppressed and reports it with the
 * next line let through. Lock-free: racing threads may let a line or two extra pass. */
struct log_ratelimit {
    int64_t window_start_ms;
    uint32_t emitted;
    uint32_t suppressed;
};
bool log_ratelimit_allow(struct log_ratelimit *rl, uint32_t per_second, uint32_t *suppressed_out);

#define LOG_DEBUG(mod, ...) do { if (log_get_level() <= LOG_LEVEL_DEBUG) log_write(LOG_LEVEL_DEBUG, mod, __VA_ARGS__); } while (0)
#define LOG_INFO(mod, ...) log_write(LOG_LEVEL_INFO, mod, __VA_ARGS__)
#define LOG_WARN(mod, ...) log_write(LOG_LEVEL_WARN, mod, __VA_ARGS__)
#define LOG_ERROR(mod, ...) log_write(LOG_LEVEL_ERROR, mod, __VA_ARGS__)

/* At most `per_second` such lines per call site; suppressed lines are counted. */
#define LOG_RATELIMITED(level, mod, per_second, ...)                                         \
    do {                                                                                     \
        static struct log_ratelimit rl_site_;                                                \
        uint32_t suppressed_;                                                                \
        if (log_ratelimit_allow(&rl_site_, (per_second), &suppressed_)) {                    \
            if (suppressed_) log_write(level, mod, "(%u similar lines suppressed)", suppressed_); \
            log_write(level, mod, __VA_ARGS__);                                              \
        }                                                                                    \
    } while (0)

#endif

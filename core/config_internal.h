/* core/config_internal.h — the configuration schema shared by the table (config_keys.c) and
 * the code that walks it (config.c): loading, overrides, validation and the dump. */
#ifndef MAMORI_CORE_CONFIG_INTERNAL_H
#define MAMORI_CORE_CONFIG_INTERNAL_H

#include "config.h"

#include <stddef.h>

enum key_type { KEY_STRING, KEY_BOOL, KEY_U32, KEY_U64, KEY_ENUM, KEY_LIST };

typedef struct config_key {
    const char *name; /* dotted path */
    enum key_type type;
    size_t offset;
    const char *default_value;
    uint64_t min, max;      /* integers; KEY_LIST: max = most items */
    const char *choices;    /* KEY_ENUM: "|a|b|" */
    const char *help;
} config_key;

#define KiB 1024ULL
#define MiB (1024ULL * 1024)
#define GiB (1024ULL * 1024 * 1024)

/* Every key, in dump order (config_keys.c). */
extern const config_key config_keys[];
extern const size_t config_key_count;

#endif

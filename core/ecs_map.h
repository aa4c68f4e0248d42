/* core/ecs_map.h — the Sigma/Windows field name → ECS path table, per Sigma logsource: the
 * pySigma `ecs_windows` pipeline (pySigma-backend-elasticsearch, field mapping plus
 * ecs_windows_variable_mappings) written down as data in core/ecs_map.c. The normalizer
 * uses it to move EventData fields to ECS; the detection engine uses it to find the ECS
 * path a rule's field names. A field with no row lives at winlog.event_data.<Field>.
 * docs/ecs-mapping.md is the readable form. */
#ifndef MAMORI_CORE_ECS_MAP_H
#define MAMORI_CORE_ECS_MAP_H

#include "base.h"
#include "logsource.h"

/* How a value is stored at its ECS path. Values from winlog sources are text; the
 * normalizer converts them to this type when they are exactly in the expected form and
 * keeps them as text otherwise. */
enum ecs_value_type {
    ECS_TYPE_KEYWORD = 0, /* string, kept as sent */
    ECS_TYPE_LONG,        /* integer: decimal text → JSON integer ("0x1a" stays text) */
    ECS_TYPE_GUID,        /* GUID text → "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" lowercase */
};

typedef struct ecs_map_entry {
    const char *sigma_field; /* Sigma / Windows EventData name, e.g. "Image" */
    uint8_t category;        /* enum logsource_category the row is limited to; 0 = any */
    uint8_t service;         /* enum logsource_service the row is limited to; 0 = any */
    uint8_t type;            /* enum ecs_value_type */
    const char *ecs_path;    /* e.g. "process.executable"; never NULL */
} ecs_map_entry;

/* Row whose field matches and whose logsource condition holds for ls (ls may be NULL:
 * only unconditional rows then). Rows limited to a category or service win over
 * unconditional ones, as pySigma applies the variable mappings first. Matching is exact
 * first; if no row matches exactly, ASCII case-insensitively ("SourceProcessGUID" finds
 * SourceProcessGuid), and then *exact_case is false. NULL = unmapped: the field belongs
 * at winlog.event_data.<Field>. Returns a static row. exact_case may be NULL. */
const ecs_map_entry *ecs_map_lookup(const char *field, size_t field_len, const struct logsource_set *ls,
                                    bool *exact_case);

/* The reverse direction: rows that map onto ecs_path and apply to ls (NULL = any), in
 * table order, up to max of them into out (static rows). Returns how many exist (may
 * exceed max). Borrows ecs_path.
 * E.g. ("file.path", image_load) → ImageLoaded, FileName, TargetFilename, Device, ScriptName. */
size_t ecs_map_reverse(const char *ecs_path, size_t path_len, const struct logsource_set *ls,
                       const ecs_map_entry **out, size_t max);

/* Type of an ECS path wherever it comes from (mapped rows and the winlog system fields):
 * ECS_TYPE_LONG for process.pid, source.port, winlog.event_id, …; ECS_TYPE_KEYWORD for
 * anything else. Used to coerce "1234" to 1234 in every format. */
enum ecs_value_type ecs_map_path_type(const char *ecs_path, size_t path_len);

/* The whole table, in priority order (for docs, tests and rule compilers); static rows. */
size_t ecs_map_count(void);
const ecs_map_entry *ecs_map_at(size_t index);
/* Position of a row in the table: lower wins when two fields of one event map to the
 * same path (see docs/ecs-mapping.md, "collisions"). */
size_t ecs_map_index(const ecs_map_entry *entry);
/* strlen(entry->ecs_path), from a table built once (the normalizer pushes it per mapped field). */
size_t ecs_map_path_len(const ecs_map_entry *entry);

#endif

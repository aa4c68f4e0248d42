/* detect/fields.c — where a Sigma field lives in a normalized event.
 *
 * The normalizer moves winlog EventData fields to ECS paths with core/ecs_map, choosing
 * rows by the event's own logsource, and leaves unmapped fields — and fields that lost a
 * path to a higher-priority field (Security 4688's creator ProcessId vs NewProcessId) — at
 * winlog.event_data.<Field>. So a rule's field is found, per event, exactly the way the
 * normalizer placed it: winlog.event_data.<Field> if the event has it, else the ecs_map row
 * for the event's logsource, else a winlog System alias. At compile time every path a field
 * can resolve to for the rule's events gets the field's patterns (one Hyperscan database
 * per path); at run time the resolved path picks which of those matches counts. */
#include "internal.h"

#include "core/ecs_map.h"

#include <string.h>
#include <strings.h>

#define EVENT_DATA_PREFIX "winlog.event_data."

/* evtx System fields Sigma rules name (Provider_Name and EventID have ecs_map rows). The
 * normalizer writes them under winlog.* (Level also as a name in log.level), and the
 * rendered message (evtx RenderingInfo, NXLog's Message) in message. */
static const struct {
    const char *field;
    const char *path;
} system_aliases[] = {
    {"Computer", "winlog.computer_name"},       {"EventRecordID", "winlog.record_id"},
    {"Provider_Guid", "winlog.provider_guid"},  {"Version", "winlog.version"},
    {"Task", "winlog.task"},                    {"Opcode", "winlog.opcode"},
    {"Keywords", "winlog.keywords"},            {"Security_UserID", "winlog.user.identifier"},
    {"Execution_ProcessID", "winlog.process.pid"}, {"Execution_ThreadID", "winlog.process.thread.id"},
    {"Level", "winlog.level"},                  {"Message", "message"},
};

const char *field_system_alias(const char *field, size_t len)
{
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(system_aliases); i++)
        if (strlen(system_aliases[i].field) == len && strncasecmp(system_aliases[i].field, field, len) == 0)
            return system_aliases[i].path;
    return NULL;
}

static const struct {
    const char *path;
    uint32_t len;
} synthesized[] = {
#define S(x) {x, sizeof x - 1}
    S("event.kind"),   S("event.category"), S("event.type"), S("event.module"),        S("event.provider"),
    S("event.code"),   S("host.os.type"),   S("host.name"),  S("log.level"),           S("process.name"),
    S("process.parent.name"),
#undef S
};

bool field_is_synthesized(const char *path, size_t len)
{
    if (len >= 7 && memcmp(path, "mamori.", 7) == 0) return true;
    if (path[0] != 'e' && path[0] != 'h' && path[0] != 'l' && path[0] != 'p') return false;
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(synthesized); i++)
        if (synthesized[i].len == len && memcmp(synthesized[i].path, path, len) == 0) return true;
    return false;
}

uint32_t field_synthesized_paths(const char **out, uint32_t *lens, uint32_t max)
{
    uint32_t n = (uint32_t)MAMORI_ARRAY_LEN(synthesized);
    for (uint32_t i = 0; i < n && i < max; i++) {
        out[i] = synthesized[i].path;
        lens[i] = synthesized[i].len;
    }
    return n;
}

static bool same_name_caseless(const char *a, const char *b, size_t len)
{
    return strlen(a) == len && strncasecmp(a, b, len) == 0;
}

static bool row_applies(const ecs_map_entry *row, const struct logsource_set *ls)
{
    if (row->category && !(ls->categories & logsource_bit((enum logsource_category)row->category))) return false;
    if (row->service && ls->service != row->service) return false;
    return true;
}

/* Can another field claim the row's path first in an event of logsource ls (the normalizer
 * keeps the lowest row; the loser goes back to winlog.event_data.<Field>)? */
static bool displaceable(const ecs_map_entry *row, const char *field, size_t len, const struct logsource_set *ls)
{
    size_t index = ecs_map_index(row);
    for (size_t i = 0; i < index; i++) {
        const ecs_map_entry *other = ecs_map_at(i);
        if (strcmp(other->ecs_path, row->ecs_path) != 0 || !row_applies(other, ls)) continue;
        if (!same_name_caseless(other->sigma_field, field, len)) return true;
    }
    return false;
}

static uint32_t add_place(struct field_place *out, uint32_t n, uint32_t max, const char *path, const char *primary)
{
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(out[i].path, path) != 0) continue;
        if (!primary) out[i].primary = NULL; /* a primary place stays primary */
        else if (out[i].primary && strcmp(out[i].primary, primary) != 0) out[i].shared = false;
        return n;
    }
    if (n < max) out[n++] = (struct field_place){.path = path, .primary = primary, .shared = primary != NULL};
    return n;
}

uint32_t field_places(const char *field, size_t len, const struct logsource_set *ls, const char *event_data_path,
                      struct field_place *out, uint32_t max)
{
    /* the logsources the rule's events can have, as far as ecs_map rows care: the rule's
     * category (else none or any row's), the rule's service (else none or any row's) */
    uint64_t cats[8];
    uint16_t svcs[8];
    uint32_t ncat = 0, nsvc = 0;
    bool dotted = memchr(field, '.', len) != NULL;
    if (ls->categories) cats[ncat++] = ls->categories;
    else cats[ncat++] = 0;
    if (ls->service) svcs[nsvc++] = ls->service;
    else svcs[nsvc++] = 0;
    for (size_t i = 0; !dotted && i < ecs_map_count(); i++) {
        const ecs_map_entry *row = ecs_map_at(i);
        if (!same_name_caseless(row->sigma_field, field, len)) continue;
        if (!ls->categories && row->category && ncat < MAMORI_ARRAY_LEN(cats))
            cats[ncat++] = logsource_bit((enum logsource_category)row->category);
        if (!ls->service && row->service && nsvc < MAMORI_ARRAY_LEN(svcs)) svcs[nsvc++] = row->service;
    }
    uint32_t n = 0;
    bool unmapped = dotted;
    const char *displaced[8];
    uint32_t ndisplaced = 0;
    for (uint32_t c = 0; c < ncat && !dotted; c++) {
        for (uint32_t s = 0; s < nsvc; s++) {
            struct logsource_set probe = {.categories = cats[c], .service = svcs[s], .product = ls->product};
            const ecs_map_entry *row = ecs_map_lookup(field, len, &probe, NULL);
            if (!row) {
                unmapped = true;
                continue;
            }
            n = add_place(out, n, max, row->ecs_path, NULL);
            if (displaceable(row, field, len, &probe) && ndisplaced < MAMORI_ARRAY_LEN(displaced))
                displaced[ndisplaced++] = row->ecs_path;
        }
    }
    if (unmapped) {
        const char *alias = field_system_alias(field, len);
        if (alias) n = add_place(out, n, max, alias, NULL);
        n = add_place(out, n, max, event_data_path, NULL);
    }
    for (uint32_t i = 0; i < ndisplaced; i++) n = add_place(out, n, max, event_data_path, displaced[i]);
    return n;
}

uint32_t field_resolve_mapped(const detect_ruleset *rs, uint32_t field, const struct logsource_set *ls)
{
    const struct sfield *f = &rs->fields[field];
    if (!memchr(f->name, '.', f->len)) {
        const ecs_map_entry *row = ecs_map_lookup(f->name, f->len, ls, NULL);
        if (row) return rs->row_path[ecs_map_index(row)];
    }
    if (f->alias_path != DETECT_NONE) return f->alias_path;
    return f->event_data_path;
}

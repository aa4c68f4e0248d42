/* core/ecs_map.c — the Sigma/Windows field → ECS table (pySigma ecs_windows, written down
 * as data) and the lookups over it. Row order is priority: rows limited to a logsource
 * first (pySigma's variable mappings), then the unconditional rows, ordered so that when
 * two fields of one event land on the same path the one naming the event's subject wins
 * (4688: NewProcessId before the creator's ProcessId). Indexes are built once. */
#include "ecs_map.h"

#include <pthread.h>
#include <string.h>

#define CAT(x) LOGSOURCE_CATEGORY_##x
#define SVC(x) LOGSOURCE_SERVICE_##x
#define KW ECS_TYPE_KEYWORD
#define LONG ECS_TYPE_LONG
#define GUID ECS_TYPE_GUID

static const ecs_map_entry rows[] = {
    /* ---- ecs_windows_variable_mappings: limited to a category or a service ---------- */
    {"FileVersion", CAT(PROCESS_CREATION), 0, KW, "process.pe.file_version"},
    {"FileVersion", CAT(IMAGE_LOAD), 0, KW, "file.pe.file_version"},
    {"Description", CAT(PROCESS_CREATION), 0, KW, "process.pe.description"},
    {"Description", CAT(IMAGE_LOAD), 0, KW, "file.pe.description"},
    {"Description", CAT(SYSMON_ERROR), 0, KW, "winlog.event_data.Description"},
    {"Product", CAT(PROCESS_CREATION), 0, KW, "process.pe.product"},
    {"Product", CAT(IMAGE_LOAD), 0, KW, "file.pe.product"},
    {"Company", CAT(PROCESS_CREATION), 0, KW, "process.pe.company"},
    {"Company", CAT(IMAGE_LOAD), 0, KW, "file.pe.company"},
    {"OriginalFileName", CAT(PROCESS_CREATION), 0, KW, "process.pe.original_file_name"},
    {"OriginalFileName", CAT(IMAGE_LOAD), 0, KW, "file.pe.original_file_name"},
    {"CommandLine", CAT(PROCESS_CREATION), 0, KW, "process.command_line"},
    {"CommandLine", 0, SVC(SECURITY), KW, "process.command_line"},
    {"CommandLine", 0, SVC(POWERSHELL_CLASSIC), KW, "powershell.command.value"},
    {"Protocol", CAT(NETWORK_CONNECTION), 0, KW, "network.transport"},
    {"Initiated", CAT(NETWORK_CONNECTION), 0, KW, "network.direction"},
    /* pySigma spells these categories "driver_loaded" / "image_loaded", which no rule
     * uses; we apply them to the categories they were meant for. */
    {"Signature", CAT(DRIVER_LOAD), 0, KW, "file.code_signature.subject_name"},
    {"Signature", CAT(IMAGE_LOAD), 0, KW, "file.code_signature.subject_name"},
    {"EngineVersion", 0, SVC(POWERSHELL_CLASSIC), KW, "powershell.engine.version"},
    {"HostVersion", 0, SVC(POWERSHELL_CLASSIC), KW, "powershell.process.executable_version"},
    {"SubjectLogonId", 0, SVC(SECURITY), KW, "winlog.logon.id"},
    {"ServiceName", 0, SVC(SECURITY), KW, "service.name"},
    {"SubjectDomainName", 0, SVC(SECURITY), KW, "user.domain"},
    {"SubjectUserName", 0, SVC(SECURITY), KW, "user.name"},
    {"SubjectUserSid", 0, SVC(SECURITY), KW, "user.id"},
    {"TargetLogonId", 0, SVC(SECURITY), KW, "winlog.logon.id"},
    /* Ours, not pySigma's: Security 4688's ParentProcessName is the creator's full path, as
     * Winlogbeat maps it (pySigma's generic row below would put a path in
     * process.parent.name, where ParentImage rules never look). */
    {"ParentProcessName", 0, SVC(SECURITY), KW, "process.parent.executable"},

    /* ---- ecs_windows field mapping: every Windows logsource ------------------------- */
    {"EventID", 0, 0, KW, "event.code"},
    {"Channel", 0, 0, KW, "winlog.channel"},
    {"Provider_Name", 0, 0, KW, "winlog.provider_name"},
    {"ComputerName", 0, 0, KW, "winlog.computer_name"},
    {"FileName", 0, 0, KW, "file.path"},
    {"ProcessGuid", 0, 0, GUID, "process.entity_id"},
    /* Security 4688 carries both the new process and its creator (ProcessId): the new
     * process is the event's subject. */
    {"NewProcessId", 0, 0, LONG, "process.pid"},
    {"NewProcessName", 0, 0, KW, "process.executable"},
    {"ProcessId", 0, 0, LONG, "process.pid"},
    {"Image", 0, 0, KW, "process.executable"},
    {"CurrentDirectory", 0, 0, KW, "process.working_directory"},
    {"ParentProcessGuid", 0, 0, GUID, "process.parent.entity_id"},
    {"ParentProcessId", 0, 0, LONG, "process.parent.pid"},
    {"ParentImage", 0, 0, KW, "process.parent.executable"},
    {"ParentCommandLine", 0, 0, KW, "process.parent.command_line"},
    {"TargetFilename", 0, 0, KW, "file.path"},
    {"SourceIp", 0, 0, KW, "source.ip"},
    {"SourceHostname", 0, 0, KW, "source.domain"},
    {"SourcePort", 0, 0, LONG, "source.port"},
    {"DestinationIp", 0, 0, KW, "destination.ip"},
    {"DestinationHostname", 0, 0, KW, "destination.domain"},
    {"DestinationPort", 0, 0, LONG, "destination.port"},
    {"DestinationPortName", 0, 0, KW, "network.protocol"},
    {"ImageLoaded", 0, 0, KW, "file.path"},
    {"Signed", 0, 0, KW, "file.code_signature.signed"},
    {"SignatureStatus", 0, 0, KW, "file.code_signature.status"},
    {"Imphash", 0, 0, KW, "file.pe.imphash"},
    {"SourceProcessGuid", 0, 0, GUID, "process.entity_id"},
    {"SourceProcessId", 0, 0, LONG, "process.pid"},
    {"SourceImage", 0, 0, KW, "process.executable"},
    {"Device", 0, 0, KW, "file.path"},
    {"SourceThreadId", 0, 0, LONG, "process.thread.id"},
    {"TargetObject", 0, 0, KW, "registry.path"},
    {"PipeName", 0, 0, KW, "file.name"},
    {"Destination", 0, 0, KW, "process.executable"},
    {"QueryName", 0, 0, KW, "dns.question.name"},
    {"QueryStatus", 0, 0, KW, "sysmon.dns.status"},
    {"IsExecutable", 0, 0, KW, "sysmon.file.is_executable"},
    {"Archived", 0, 0, KW, "sysmon.file.archived"},
    {"CommandName", 0, 0, KW, "powershell.command.name"},
    {"CommandPath", 0, 0, KW, "powershell.command.path"},
    {"CommandType", 0, 0, KW, "powershell.command.type"},
    {"HostApplication", 0, 0, KW, "process.command_line"},
    {"HostId", 0, 0, KW, "process.entity_id"},
    {"HostName", 0, 0, KW, "process.title"},
    {"NewEngineState", 0, 0, KW, "powershell.engine.new_state"},
    {"PipelineId", 0, 0, KW, "powershell.pipeline_id"},
    {"PreviousEngineState", 0, 0, KW, "powershell.engine.previous_state"},
    {"RunspaceId", 0, 0, KW, "powershell.runspace_id"},
    {"ScriptName", 0, 0, KW, "file.path"},
    {"SequenceNumber", 0, 0, LONG, "event.sequence"},
    {"NewProviderState", 0, 0, KW, "powershell.provider.new_state"},
    {"ProviderName", 0, 0, KW, "powershell.provider.name"},
    {"MessageNumber", 0, 0, LONG, "powershell.sequence"},
    {"MessageTotal", 0, 0, LONG, "powershell.total"},
    {"ScriptBlockText", 0, 0, KW, "powershell.file.script_block_text"},
    {"ScriptBlockId", 0, 0, KW, "powershell.file.script_block_id"},
    {"AccountDomain", 0, 0, KW, "user.domain"},
    {"AccountName", 0, 0, KW, "user.name"},
    {"Application", 0, 0, KW, "process.executable"},
    {"ClientAddress", 0, 0, KW, "source.ip"},
    {"ClientName", 0, 0, KW, "source.domain"},
    {"DestAddress", 0, 0, KW, "destination.ip"},
    {"DestPort", 0, 0, LONG, "destination.port"},
    {"IpAddress", 0, 0, KW, "source.ip"},
    {"IpPort", 0, 0, LONG, "source.port"},
    {"ParentProcessName", 0, 0, KW, "process.parent.name"},
    {"ProcessName", 0, 0, KW, "process.executable"},
    {"SourceAddress", 0, 0, KW, "source.ip"},
    {"TargetDomainName", 0, 0, KW, "user.domain"},
    {"User", 0, 0, KW, "user.name"},
    {"WorkstationName", 0, 0, KW, "source.domain"},
    {"Payload", 0, 0, KW, "powershell.file.script_block_text"},
};

#undef CAT
#undef SVC
#undef KW
#undef LONG
#undef GUID

/* Integer-typed ECS paths that no row above produces: the winlog system fields the
 * normalizer writes and a few common ECS counters agents send. */
static const char *const extra_long_paths[] = {
    "winlog.event_id", "winlog.record_id", "winlog.level", "winlog.process.pid", "winlog.process.thread.id",
    "winlog.version",
    "process.exit_code", "file.size", "source.bytes", "destination.bytes", "network.bytes",
};

/* ---- indexes --------------------------------------------------------------------------- */

#define FIELD_SLOTS 512u
#define PATH_SLOTS 128u
_Static_assert(MAMORI_ARRAY_LEN(rows) * 2 < FIELD_SLOTS, "field index too full");
_Static_assert(MAMORI_ARRAY_LEN(rows) < 65535, "row index fits uint16_t");

static uint16_t field_slots[FIELD_SLOTS];    /* row + 1 by caseless field name; 0 = empty */
static uint8_t field_lens[MAMORI_ARRAY_LEN(rows)];
static uint8_t path_lens[MAMORI_ARRAY_LEN(rows)];
static const char *long_path_slots[PATH_SLOTS]; /* integer-typed paths; NULL = empty */
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

/* The bytes of s[0..len) (len <= 8) as a little-endian word, zero padded. */
static inline uint64_t load_word(const char *s, size_t len)
{
    uint64_t w = 0;
    if (len >= 8) {
        memcpy(&w, s, 8);
        return w;
    }
    if (len >= 4) { /* two overlapping 4-byte loads */
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + len - 4, 4);
        return (uint64_t)lo | (uint64_t)hi << (8 * (len - 4));
    }
    for (size_t i = 0; i < len; i++) w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    return w;
}

/* ASCII A-Z → a-z in each byte of w; every other byte (>= 0x80 too) unchanged. */
static inline uint64_t lower_word(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t low7 = w & ~highs;
    uint64_t ge_a = low7 + ones * (0x80 - 'A');     /* high bit: low7 >= 'A' (no carry out of a byte) */
    uint64_t gt_z = low7 + ones * (0x80 - 'Z' - 1); /* high bit: low7 > 'Z' */
    uint64_t upper = ge_a & ~gt_z & ~w & highs;
    return w | (upper >> 2);
}

/* Field names are looked up for every EventData field of every event: hashed and compared
 * a word at a time, case-folded in registers. */
static uint32_t hash_caseless(const char *s, size_t len)
{
    uint64_t h = (uint64_t)len * 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < len; i += 8) {
        h ^= lower_word(load_word(s + i, MAMORI_MIN(len - i, 8)));
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    return (uint32_t)h;
}

static uint32_t hash_exact(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static bool equal_caseless(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i += 8) {
        size_t k = MAMORI_MIN(len - i, 8);
        if (lower_word(load_word(a + i, k)) != lower_word(load_word(b + i, k))) return false;
    }
    return true;
}

static bool equal_exact(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i += 8) {
        size_t k = MAMORI_MIN(len - i, 8);
        if (load_word(a + i, k) != load_word(b + i, k)) return false;
    }
    return true;
}

static void long_path_add(const char *path)
{
    uint32_t slot = hash_exact(path, strlen(path)) % PATH_SLOTS;
    while (long_path_slots[slot]) {
        if (strcmp(long_path_slots[slot], path) == 0) return;
        slot = (slot + 1) % PATH_SLOTS;
    }
    long_path_slots[slot] = path;
}

static void index_build(void)
{
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(rows); i++) {
        const char *f = rows[i].sigma_field;
        MAMORI_ASSERT(strlen(f) < 256);
        field_lens[i] = (uint8_t)strlen(f);
        MAMORI_ASSERT(strlen(rows[i].ecs_path) < 256);
        path_lens[i] = (uint8_t)strlen(rows[i].ecs_path);
        uint32_t slot = hash_caseless(f, field_lens[i]) % FIELD_SLOTS;
        while (field_slots[slot]) slot = (slot + 1) % FIELD_SLOTS;
        field_slots[slot] = (uint16_t)(i + 1);
        if (rows[i].type == ECS_TYPE_LONG) long_path_add(rows[i].ecs_path);
    }
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(extra_long_paths); i++) long_path_add(extra_long_paths[i]);
}

static inline void index_ready(void) { pthread_once(&index_once, index_build); }

static bool row_applies(const ecs_map_entry *row, const struct logsource_set *ls)
{
    if (row->category && (!ls || !(ls->categories & logsource_bit((enum logsource_category)row->category))))
        return false;
    if (row->service && (!ls || ls->service != row->service)) return false;
    return true;
}

const ecs_map_entry *ecs_map_lookup(const char *field, size_t field_len, const struct logsource_set *ls,
                                    bool *exact_case)
{
    index_ready();
    size_t best_exact = SIZE_MAX, best_caseless = SIZE_MAX;
    uint32_t slot = hash_caseless(field, field_len) % FIELD_SLOTS;
    while (field_slots[slot]) {
        size_t i = field_slots[slot] - 1u;
        const ecs_map_entry *row = &rows[i];
        slot = (slot + 1) % FIELD_SLOTS;
        if (field_lens[i] != field_len) continue;
        bool exact = equal_exact(row->sigma_field, field, field_len);
        if (!exact && !equal_caseless(row->sigma_field, field, field_len)) continue;
        if (!row_applies(row, ls)) continue;
        if (exact) {
            if (i < best_exact) best_exact = i;
        } else if (i < best_caseless) {
            best_caseless = i;
        }
    }
    if (best_exact != SIZE_MAX) {
        if (exact_case) *exact_case = true;
        return &rows[best_exact];
    }
    if (best_caseless != SIZE_MAX) {
        if (exact_case) *exact_case = false;
        return &rows[best_caseless];
    }
    return NULL;
}

size_t ecs_map_reverse(const char *ecs_path, size_t path_len, const struct logsource_set *ls,
                       const ecs_map_entry **out, size_t max)
{
    size_t found = 0;
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(rows); i++) {
        const ecs_map_entry *row = &rows[i];
        if (strlen(row->ecs_path) != path_len || memcmp(row->ecs_path, ecs_path, path_len) != 0) continue;
        if (ls && !row_applies(row, ls)) continue;
        if (found < max) out[found] = row;
        found++;
    }
    return found;
}

enum ecs_value_type ecs_map_path_type(const char *ecs_path, size_t path_len)
{
    index_ready();
    uint32_t slot = hash_exact(ecs_path, path_len) % PATH_SLOTS;
    while (long_path_slots[slot]) {
        const char *p = long_path_slots[slot];
        if (strlen(p) == path_len && memcmp(p, ecs_path, path_len) == 0) return ECS_TYPE_LONG;
        slot = (slot + 1) % PATH_SLOTS;
    }
    return ECS_TYPE_KEYWORD;
}

size_t ecs_map_count(void) { return MAMORI_ARRAY_LEN(rows); }

const ecs_map_entry *ecs_map_at(size_t index)
{
    MAMORI_ASSERT(index < MAMORI_ARRAY_LEN(rows));
    return &rows[index];
}

size_t ecs_map_index(const ecs_map_entry *entry)
{
    MAMORI_ASSERT(entry >= rows && entry < rows + MAMORI_ARRAY_LEN(rows));
    return (size_t)(entry - rows);
}

size_t ecs_map_path_len(const ecs_map_entry *entry)
{
    index_ready();
    return path_lens[ecs_map_index(entry)];
}

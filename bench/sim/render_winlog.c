/* bench/sim/render_winlog.c — one model activity as a Sysmon event the way NXLog
 * (im_msvistalog) ships it: flat JSON with the event log header fields (EventID, Channel,
 * Hostname, RecordNumber, ...) and the Sysmon EventData at top level (Image, CommandLine,
 * ProcessGuid, ParentProcessGuid, TargetFilename, QueryName, TargetObject, ...), string
 * values as Sysmon writes them. Event IDs: 1, 5, 3, 11, 26, 22, 13, 7. */
#include "model.h"

#include "core/clock.h"

#include <ctype.h>
#include <string.h>

typedef struct sysmon_kind {
    uint32_t event_id;
    uint32_t version;
    const char *category;
    const char *event_type; /* NXLog's EventType, or Sysmon's own for registry events */
} sysmon_kind;

static const sysmon_kind kinds[ACT_KINDS] = {
    [ACT_PROCESS_START] = {1, 5, "Process Create (rule: ProcessCreate)", "INFO"},
    [ACT_PROCESS_END] = {5, 3, "Process terminated (rule: ProcessTerminate)", "INFO"},
    [ACT_FILE_CREATE] = {11, 2, "File created (rule: FileCreate)", "INFO"},
    [ACT_FILE_DELETE] = {26, 5, "File Delete logged (rule: FileDeleteDetected)", "INFO"},
    [ACT_NETWORK] = {3, 5, "Network connection detected (rule: NetworkConnect)", "INFO"},
    [ACT_DNS] = {22, 5, "Dns query (rule: DnsQuery)", "INFO"},
    [ACT_REGISTRY] = {13, 2, "Registry value set (rule: RegistryEvent)", "SetValue"},
    [ACT_LIBRARY] = {7, 3, "Image loaded (rule: ImageLoad)", "INFO"},
};

static void put_str_member(buf *out, const char *key_json, const char *value);

/* "YYYY-MM-DD HH:MM:SS" plus `frac` fractional digits (0 or 3), as Sysmon and NXLog do. */
static void put_time(buf *out, const char *key_json, int64_t us, int frac)
{
    char ts[32];
    clock_format_rfc3339(us, ts);
    ts[10] = ' ';
    buf_puts(out, key_json);
    buf_append(out, ts, frac ? 20u + (size_t)frac : 19u);
    buf_putc(out, '"');
}

static void put_guid(const sim_model *m, buf *out, const char *key_json, uint64_t serial)
{
    char guid[40];
    model_guid(m, serial, guid);
    buf_puts(out, key_json);
    buf_puts(out, guid);
    buf_putc(out, '"');
}

static void put_user(const sim_model *m, buf *out, uint8_t user)
{
    buf_puts(out, ",\"User\":\"");
    buf_puts(out, user == USER_HOST ? "CORP" : "NT AUTHORITY");
    buf_puts(out, "\\\\");
    buf_puts(out, model_user_name(m, user));
    buf_putc(out, '"');
}

static void put_hashes(buf *out, const char *sha256)
{
    char upper[65];
    for (int i = 0; i < 64; i++) upper[i] = (char)toupper((unsigned char)sha256[i]);
    upper[64] = '\0';
    buf_puts(out, ",\"Hashes\":\"SHA256=");
    buf_puts(out, upper);
    buf_putc(out, '"');
}

/* ProcessGuid, ProcessId, Image of the acting process. */
static void put_actor(const sim_model *m, buf *out, const model_proc *p)
{
    const proc_template *t = &model_templates[p->tmpl];
    put_guid(m, out, ",\"ProcessGuid\":\"", p->serial);
    buf_puts(out, ",\"ProcessId\":\"");
    buf_put_u64(out, p->pid);
    buf_putc(out, '"');
    put_expanded(out, m, ",\"Image\":\"", t->exe_json, p->serial);
}

static void put_process_create(const sim_model *m, buf *out, const model_proc *p)
{
    static const char *const integrity[] = {"Medium", "High", "System"};
    const proc_template *t = &model_templates[p->tmpl];
    put_actor(m, out, p);
    buf_puts(out, ",\"FileVersion\":\"10.0.19041.3636 (WinBuild.160101.0800)\"");
    put_member(out, ",\"Description\":\"", t->description_json);
    put_member(out, ",\"Company\":\"", t->company_json);
    put_member(out, ",\"OriginalFileName\":\"", t->original_file_name_json);
    put_expanded(out, m, ",\"CommandLine\":\"", t->cmdlines_json[p->cmdline], p->serial);
    put_expanded(out, m, ",\"CurrentDirectory\":\"", t->cwd_json, p->serial);
    put_user(m, out, p->user);
    buf_puts(out, p->user == USER_HOST ? ",\"LogonId\":\"0x2b3c41\",\"TerminalSessionId\":\"1\""
                                       : ",\"LogonId\":\"0x3e7\",\"TerminalSessionId\":\"0\"");
    put_str_member(out, ",\"IntegrityLevel\":\"", integrity[MAMORI_MIN(t->integrity, 2u)]);
    put_hashes(out, t->sha256);
    if (p->parent_serial) {
        const proc_template *pt = &model_templates[p->parent_tmpl];
        put_guid(m, out, ",\"ParentProcessGuid\":\"", p->parent_serial);
        buf_puts(out, ",\"ParentProcessId\":\"");
        buf_put_u64(out, p->parent_pid);
        buf_putc(out, '"');
        put_expanded(out, m, ",\"ParentImage\":\"", pt->exe_json, p->parent_serial);
        put_expanded(out, m, ",\"ParentCommandLine\":\"", pt->cmdlines_json[p->parent_cmdline], p->parent_serial);
    }
}

static void put_str_member(buf *out, const char *key_json, const char *value)
{
    buf_puts(out, key_json);
    buf_puts(out, value);
    buf_putc(out, '"');
}

static void put_u64_member(buf *out, const char *key_json, uint64_t value)
{
    buf_puts(out, key_json);
    buf_put_u64(out, value);
    buf_putc(out, '"');
}

static void put_network(const sim_model *m, buf *out, const model_activity *act)
{
    const net_dest *d = act->dest;
    put_actor(m, out, act->proc);
    put_user(m, out, act->proc->user);
    buf_puts(out, d->udp ? ",\"Protocol\":\"udp\"" : ",\"Protocol\":\"tcp\"");
    put_str_member(out, ",\"Initiated\":\"true\",\"SourceIsIpv6\":\"false\",\"SourceIp\":\"", m->host->ip);
    buf_puts(out, ",\"SourceHostname\":");
    json_write_string(out, m->host->name, strlen(m->host->name));
    put_u64_member(out, ",\"SourcePort\":\"", act->source_port);
    put_str_member(out, ",\"SourcePortName\":\"-\",\"DestinationIsIpv6\":\"false\",\"DestinationIp\":\"", d->ip);
    put_str_member(out, ",\"DestinationHostname\":\"", d->domain);
    put_u64_member(out, ",\"DestinationPort\":\"", d->port);
    put_str_member(out, ",\"DestinationPortName\":\"", d->protocol);
}

void render_winlog(sim_model *m, const model_activity *act, int64_t now_us, buf *out)
{
    const sysmon_kind *k = &kinds[act->kind];
    put_time(out, "{\"EventTime\":\"", now_us, 0);
    buf_puts(out, ",\"Hostname\":");
    json_write_string(out, m->host->name, strlen(m->host->name));
    /* The NXLog header; constant pieces between the few values that change. */
    buf_puts(out, ",\"Keywords\":-9223372036854775808,\"EventType\":\"");
    buf_puts(out, k->event_type);
    buf_puts(out, "\",\"SeverityValue\":2,\"Severity\":\"INFO\",\"EventID\":");
    buf_put_u64(out, k->event_id);
    buf_puts(out, ",\"SourceName\":\"Microsoft-Windows-Sysmon\",\"ProviderGuid\":\"{5770385F-C22A-43E0-BF4C-"
                  "06F5698FFBD9}\",\"Version\":");
    buf_put_u64(out, k->version);
    buf_puts(out, ",\"Task\":");
    buf_put_u64(out, k->event_id);
    buf_puts(out, ",\"OpcodeValue\":0,\"RecordNumber\":");
    buf_put_u64(out, m->record_number);
    buf_puts(out, ",\"ExecutionProcessID\":3172,\"ThreadID\":");
    buf_put_u64(out, 4000 + (m->record_number % 97) * 4);
    buf_puts(out, ",\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Domain\":\"NT AUTHORITY\","
                  "\"AccountName\":\"SYSTEM\",\"UserID\":\"S-1-5-18\",\"AccountType\":\"User\",\"Category\":\"");
    buf_puts(out, k->category);
    buf_puts(out, "\",\"Opcode\":\"Info\",\"RuleName\":\"-\"");
    put_time(out, ",\"UtcTime\":\"", now_us, 3);
    const model_proc *p = act->proc;
    switch (act->kind) {
    case ACT_PROCESS_START: put_process_create(m, out, p); break;
    case ACT_PROCESS_END:
        put_actor(m, out, p);
        put_user(m, out, p->user);
        break;
    case ACT_FILE_CREATE:
    case ACT_FILE_DELETE:
        put_actor(m, out, p);
        put_expanded(out, m, ",\"TargetFilename\":\"", act->choice->text_json, act->choice_seed);
        if (act->kind == ACT_FILE_CREATE) {
            put_time(out, ",\"CreationUtcTime\":\"", now_us, 3);
        } else {
            put_hashes(out, act->choice->sha256);
            buf_puts(out, ",\"IsExecutable\":\"false\"");
        }
        put_user(m, out, p->user);
        break;
    case ACT_NETWORK: put_network(m, out, act); break;
    case ACT_DNS:
        put_actor(m, out, p);
        put_str_member(out, ",\"QueryName\":\"", act->dest->domain);
        buf_puts(out, ",\"QueryStatus\":\"0\",\"QueryResults\":\"::ffff:");
        buf_puts(out, act->dest->ip);
        buf_puts(out, ";\""); /* Sysmon ends the result list with ';' */
        put_user(m, out, p->user);
        break;
    case ACT_REGISTRY:
        put_actor(m, out, p);
        put_expanded(out, m, ",\"TargetObject\":\"", act->choice->text_json, act->choice_seed);
        put_expanded(out, m, ",\"Details\":\"", act->choice->data_json, act->choice_seed);
        put_user(m, out, p->user);
        break;
    case ACT_LIBRARY:
        put_actor(m, out, p);
        put_expanded(out, m, ",\"ImageLoaded\":\"", act->choice->text_json, act->choice_seed);
        put_hashes(out, act->choice->sha256);
        buf_puts(out, ",\"Signed\":\"true\",\"Signature\":\"Microsoft Windows\",\"SignatureStatus\":\"Valid\"");
        put_user(m, out, p->user);
        break;
    default: break;
    }
    put_time(out, ",\"EventReceivedTime\":\"", now_us, 0);
    buf_puts(out, ",\"SourceModuleName\":\"eventlog\",\"SourceModuleType\":\"im_msvistalog\",\"@timestamp\":\"");
    char ts[32];
    buf_append(out, ts, clock_format_rfc3339(now_us, ts));
    buf_puts(out, "\"}");
}

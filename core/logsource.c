/* core/logsource.c — the Sigma logsource tables: names, winlog (channel, EventID) →
 * categories as the Sigma taxonomy appendix tables them, and ECS (event.category,
 * event.type, host.os.type) → categories. Data first, then the few lookups over it; the
 * channel index is a small open-addressing hash built once (read-only afterwards). */
#include "logsource.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

/* ---- names ---------------------------------------------------------------------------- */

static const char *const category_names[LOGSOURCE_CATEGORY_COUNT] = {
    [LOGSOURCE_CATEGORY_NONE] = "",
    [LOGSOURCE_CATEGORY_PROCESS_CREATION] = "process_creation",
    [LOGSOURCE_CATEGORY_FILE_CHANGE] = "file_change",
    [LOGSOURCE_CATEGORY_NETWORK_CONNECTION] = "network_connection",
    [LOGSOURCE_CATEGORY_SYSMON_STATUS] = "sysmon_status",
    [LOGSOURCE_CATEGORY_PROCESS_TERMINATION] = "process_termination",
    [LOGSOURCE_CATEGORY_DRIVER_LOAD] = "driver_load",
    [LOGSOURCE_CATEGORY_IMAGE_LOAD] = "image_load",
    [LOGSOURCE_CATEGORY_CREATE_REMOTE_THREAD] = "create_remote_thread",
    [LOGSOURCE_CATEGORY_RAW_ACCESS_THREAD] = "raw_access_thread",
    [LOGSOURCE_CATEGORY_PROCESS_ACCESS] = "process_access",
    [LOGSOURCE_CATEGORY_FILE_EVENT] = "file_event",
    [LOGSOURCE_CATEGORY_REGISTRY_EVENT] = "registry_event",
    [LOGSOURCE_CATEGORY_REGISTRY_ADD] = "registry_add",
    [LOGSOURCE_CATEGORY_REGISTRY_DELETE] = "registry_delete",
    [LOGSOURCE_CATEGORY_REGISTRY_SET] = "registry_set",
    [LOGSOURCE_CATEGORY_REGISTRY_RENAME] = "registry_rename",
    [LOGSOURCE_CATEGORY_CREATE_STREAM_HASH] = "create_stream_hash",
    [LOGSOURCE_CATEGORY_PIPE_CREATED] = "pipe_created",
    [LOGSOURCE_CATEGORY_WMI_EVENT] = "wmi_event",
    [LOGSOURCE_CATEGORY_DNS_QUERY] = "dns_query",
    [LOGSOURCE_CATEGORY_FILE_DELETE] = "file_delete",
    [LOGSOURCE_CATEGORY_CLIPBOARD_CAPTURE] = "clipboard_capture",
    [LOGSOURCE_CATEGORY_PROCESS_TAMPERING] = "process_tampering",
    [LOGSOURCE_CATEGORY_FILE_DELETE_DETECTED] = "file_delete_detected",
    [LOGSOURCE_CATEGORY_FILE_BLOCK_EXECUTABLE] = "file_block_executable",
    [LOGSOURCE_CATEGORY_FILE_BLOCK_SHREDDING] = "file_block_shredding",
    [LOGSOURCE_CATEGORY_FILE_EXECUTABLE_DETECTED] = "file_executable_detected",
    [LOGSOURCE_CATEGORY_SYSMON_ERROR] = "sysmon_error",
    [LOGSOURCE_CATEGORY_FILE_ACCESS] = "file_access",
    [LOGSOURCE_CATEGORY_FILE_RENAME] = "file_rename",
    [LOGSOURCE_CATEGORY_PS_CLASSIC_START] = "ps_classic_start",
    [LOGSOURCE_CATEGORY_PS_CLASSIC_PROVIDER_START] = "ps_classic_provider_start",
    [LOGSOURCE_CATEGORY_PS_CLASSIC_SCRIPT] = "ps_classic_script",
    [LOGSOURCE_CATEGORY_PS_MODULE] = "ps_module",
    [LOGSOURCE_CATEGORY_PS_SCRIPT] = "ps_script",
    [LOGSOURCE_CATEGORY_ANTIVIRUS] = "antivirus",
    [LOGSOURCE_CATEGORY_DNS] = "dns",
    [LOGSOURCE_CATEGORY_FIREWALL] = "firewall",
    [LOGSOURCE_CATEGORY_PROXY] = "proxy",
    [LOGSOURCE_CATEGORY_WEBSERVER] = "webserver",
};

static const char *const service_names[LOGSOURCE_SERVICE_COUNT] = {
    [LOGSOURCE_SERVICE_NONE] = "",
    [LOGSOURCE_SERVICE_SECURITY] = "security",
    [LOGSOURCE_SERVICE_SYSTEM] = "system",
    [LOGSOURCE_SERVICE_APPLICATION] = "application",
    [LOGSOURCE_SERVICE_SYSMON] = "sysmon",
    [LOGSOURCE_SERVICE_POWERSHELL] = "powershell",
    [LOGSOURCE_SERVICE_POWERSHELL_CLASSIC] = "powershell-classic",
    [LOGSOURCE_SERVICE_TASKSCHEDULER] = "taskscheduler",
    [LOGSOURCE_SERVICE_WMI] = "wmi",
    [LOGSOURCE_SERVICE_DNS_SERVER] = "dns-server",
    [LOGSOURCE_SERVICE_DNS_SERVER_ANALYTIC] = "dns-server-analytic",
    [LOGSOURCE_SERVICE_DNS_SERVER_AUDIT] = "dns-server-audit",
    [LOGSOURCE_SERVICE_DNS_CLIENT] = "dns-client",
    [LOGSOURCE_SERVICE_WINDEFEND] = "windefend",
    [LOGSOURCE_SERVICE_APPLICATION_EXPERIENCE] = "application-experience",
    [LOGSOURCE_SERVICE_APPLOCKER] = "applocker",
    [LOGSOURCE_SERVICE_APPMODEL_RUNTIME] = "appmodel-runtime",
    [LOGSOURCE_SERVICE_APPXDEPLOYMENT_SERVER] = "appxdeployment-server",
    [LOGSOURCE_SERVICE_APPXPACKAGING_OM] = "appxpackaging-om",
    [LOGSOURCE_SERVICE_BITLOCKER] = "bitlocker",
    [LOGSOURCE_SERVICE_BITS_CLIENT] = "bits-client",
    [LOGSOURCE_SERVICE_CAPI2] = "capi2",
    [LOGSOURCE_SERVICE_CERTIFICATESERVICESCLIENT_LIFECYCLE_SYSTEM] = "certificateservicesclient-lifecycle-system",
    [LOGSOURCE_SERVICE_CODEINTEGRITY_OPERATIONAL] = "codeintegrity-operational",
    [LOGSOURCE_SERVICE_DHCP] = "dhcp",
    [LOGSOURCE_SERVICE_DIAGNOSIS_SCRIPTED] = "diagnosis-scripted",
    [LOGSOURCE_SERVICE_DRIVER_FRAMEWORK] = "driver-framework",
    [LOGSOURCE_SERVICE_FIREWALL_AS] = "firewall-as",
    [LOGSOURCE_SERVICE_HYPER_V_WORKER] = "hyper-v-worker",
    [LOGSOURCE_SERVICE_IIS_CONFIGURATION] = "iis-configuration",
    [LOGSOURCE_SERVICE_KERNEL_EVENT_TRACING] = "kernel-event-tracing",
    [LOGSOURCE_SERVICE_KERNEL_SHIMENGINE] = "kernel-shimengine",
    [LOGSOURCE_SERVICE_LDAP] = "ldap",
    [LOGSOURCE_SERVICE_LSA_SERVER] = "lsa-server",
    [LOGSOURCE_SERVICE_MSEXCHANGE_MANAGEMENT] = "msexchange-management",
    [LOGSOURCE_SERVICE_NTFS] = "ntfs",
    [LOGSOURCE_SERVICE_NTLM] = "ntlm",
    [LOGSOURCE_SERVICE_OPENSSH] = "openssh",
    [LOGSOURCE_SERVICE_PRINTSERVICE_ADMIN] = "printservice-admin",
    [LOGSOURCE_SERVICE_PRINTSERVICE_OPERATIONAL] = "printservice-operational",
    [LOGSOURCE_SERVICE_SECURITY_MITIGATIONS] = "security-mitigations",
    [LOGSOURCE_SERVICE_SENSE] = "sense",
    [LOGSOURCE_SERVICE_SERVICEBUS_CLIENT] = "servicebus-client",
    [LOGSOURCE_SERVICE_SHELL_CORE] = "shell-core",
    [LOGSOURCE_SERVICE_SMBCLIENT_SECURITY] = "smbclient-security",
    [LOGSOURCE_SERVICE_TERMINALSERVICES_LOCALSESSIONMANAGER] = "terminalservices-localsessionmanager",
    [LOGSOURCE_SERVICE_VHDMP] = "vhdmp",
    [LOGSOURCE_SERVICE_AUDITD] = "auditd",
};

static const char *const product_names[LOGSOURCE_PRODUCT_COUNT] = {
    [LOGSOURCE_PRODUCT_NONE] = "",
    [LOGSOURCE_PRODUCT_WINDOWS] = "windows",
    [LOGSOURCE_PRODUCT_LINUX] = "linux",
    [LOGSOURCE_PRODUCT_MACOS] = "macos",
};

const char *logsource_category_name(enum logsource_category c)
{
    return (unsigned)c < LOGSOURCE_CATEGORY_COUNT ? category_names[c] : "";
}

const char *logsource_service_name(enum logsource_service s)
{
    return (unsigned)s < LOGSOURCE_SERVICE_COUNT ? service_names[s] : "";
}

const char *logsource_product_name(enum logsource_product p)
{
    return (unsigned)p < LOGSOURCE_PRODUCT_COUNT ? product_names[p] : "";
}

static int name_index(const char *const *names, int count, const char *name, size_t len)
{
    if (len == 0) return -1;
    for (int i = 1; i < count; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) return i;
    return -1;
}

int logsource_category_parse(const char *name, size_t len, enum logsource_category *out)
{
    int i = name_index(category_names, LOGSOURCE_CATEGORY_COUNT, name, len);
    if (i < 0) return -EINVAL;
    *out = (enum logsource_category)i;
    return 0;
}

int logsource_service_parse(const char *name, size_t len, enum logsource_service *out)
{
    int i = name_index(service_names, LOGSOURCE_SERVICE_COUNT, name, len);
    if (i < 0) return -EINVAL;
    *out = (enum logsource_service)i;
    return 0;
}

int logsource_product_parse(const char *name, size_t len, enum logsource_product *out)
{
    int i = name_index(product_names, LOGSOURCE_PRODUCT_COUNT, name, len);
    if (i < 0) return -EINVAL;
    *out = (enum logsource_product)i;
    return 0;
}

/* ---- table 1: winlog channel → service; (event table, EventID) → categories ---------- */

/* Which EventID table applies to a channel. */
enum event_table { EVT_NONE = 0, EVT_SYSMON, EVT_SECURITY, EVT_POWERSHELL, EVT_PS_CLASSIC };

struct channel_row {
    const char *channel;
    uint8_t service; /* enum logsource_service */
    uint8_t product; /* enum logsource_product */
    uint8_t table;   /* enum event_table */
};

#define WIN LOGSOURCE_PRODUCT_WINDOWS
#define SVC(x) LOGSOURCE_SERVICE_##x

/* The taxonomy's "Windows Folder / Service" table, plus the Sysmon for Linux channel (the
 * taxonomy's Linux process_creation/network_connection/file_event rows) and
 * PowerShellCore/Operational (ps_module/ps_script rows; no service of its own). */
static const struct channel_row channel_rows[] = {
    {"Security", SVC(SECURITY), WIN, EVT_SECURITY},
    {"System", SVC(SYSTEM), WIN, EVT_NONE},
    {"Application", SVC(APPLICATION), WIN, EVT_NONE},
    {"Microsoft-Windows-Sysmon/Operational", SVC(SYSMON), WIN, EVT_SYSMON},
    {"Linux-Sysmon/Operational", SVC(SYSMON), LOGSOURCE_PRODUCT_LINUX, EVT_SYSMON},
    {"Microsoft-Windows-PowerShell/Operational", SVC(POWERSHELL), WIN, EVT_POWERSHELL},
    {"PowerShellCore/Operational", SVC(NONE), WIN, EVT_POWERSHELL},
    {"Windows PowerShell", SVC(POWERSHELL_CLASSIC), WIN, EVT_PS_CLASSIC},
    {"Microsoft-Windows-TaskScheduler/Operational", SVC(TASKSCHEDULER), WIN, EVT_NONE},
    {"Microsoft-Windows-WMI-Activity/Operational", SVC(WMI), WIN, EVT_NONE},
    {"DNS Server", SVC(DNS_SERVER), WIN, EVT_NONE},
    {"Microsoft-Windows-DNS-Server/Analytical", SVC(DNS_SERVER_ANALYTIC), WIN, EVT_NONE},
    {"Microsoft-Windows-DNS-Server/Audit", SVC(DNS_SERVER_AUDIT), WIN, EVT_NONE},
    {"Microsoft-Windows-DNS Client Events/Operational", SVC(DNS_CLIENT), WIN, EVT_NONE},
    {"Microsoft-Windows-Windows Defender/Operational", SVC(WINDEFEND), WIN, EVT_NONE},
    {"Microsoft-Windows-Application-Experience/Program-Telemetry", SVC(APPLICATION_EXPERIENCE), WIN, EVT_NONE},
    {"Microsoft-Windows-Application-Experience/Program-Compatibility-Assistant", SVC(APPLICATION_EXPERIENCE), WIN,
     EVT_NONE},
    {"Microsoft-Windows-AppLocker/MSI and Script", SVC(APPLOCKER), WIN, EVT_NONE},
    {"Microsoft-Windows-AppLocker/EXE and DLL", SVC(APPLOCKER), WIN, EVT_NONE},
    {"Microsoft-Windows-AppLocker/Packaged app-Deployment", SVC(APPLOCKER), WIN, EVT_NONE},
    {"Microsoft-Windows-AppLocker/Packaged app-Execution", SVC(APPLOCKER), WIN, EVT_NONE},
    {"Microsoft-Windows-AppModel-Runtime/Admin", SVC(APPMODEL_RUNTIME), WIN, EVT_NONE},
    {"Microsoft-Windows-AppXDeploymentServer/Operational", SVC(APPXDEPLOYMENT_SERVER), WIN, EVT_NONE},
    {"Microsoft-Windows-AppxPackaging/Operational", SVC(APPXPACKAGING_OM), WIN, EVT_NONE},
    {"Microsoft-Windows-BitLocker/BitLocker Management", SVC(BITLOCKER), WIN, EVT_NONE},
    {"Microsoft-Windows-Bits-Client/Operational", SVC(BITS_CLIENT), WIN, EVT_NONE},
    {"Microsoft-Windows-CAPI2/Operational", SVC(CAPI2), WIN, EVT_NONE},
    {"Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational",
     SVC(CERTIFICATESERVICESCLIENT_LIFECYCLE_SYSTEM), WIN, EVT_NONE},
    {"Microsoft-Windows-CodeIntegrity/Operational", SVC(CODEINTEGRITY_OPERATIONAL), WIN, EVT_NONE},
    {"Microsoft-Windows-DHCP-Server/Operational", SVC(DHCP), WIN, EVT_NONE},
    {"Microsoft-Windows-Diagnosis-Scripted/Operational", SVC(DIAGNOSIS_SCRIPTED), WIN, EVT_NONE},
    {"Microsoft-Windows-DriverFrameworks-UserMode/Operational", SVC(DRIVER_FRAMEWORK), WIN, EVT_NONE},
    {"Microsoft-Windows-Windows Firewall With Advanced Security/Firewall", SVC(FIREWALL_AS), WIN, EVT_NONE},
    {"Microsoft-Windows-Hyper-V-Worker", SVC(HYPER_V_WORKER), WIN, EVT_NONE},
    {"Microsoft-IIS-Configuration/Operational", SVC(IIS_CONFIGURATION), WIN, EVT_NONE},
    {"Microsoft-Windows-Kernel-EventTracing", SVC(KERNEL_EVENT_TRACING), WIN, EVT_NONE},
    {"Microsoft-Windows-Kernel-ShimEngine/Operational", SVC(KERNEL_SHIMENGINE), WIN, EVT_NONE},
    {"WinEventLog:Microsoft-Windows-Kernel-ShimEngine/Diagnostic", SVC(KERNEL_SHIMENGINE), WIN, EVT_NONE},
    {"Microsoft-Windows-LDAP-Client/Debug", SVC(LDAP), WIN, EVT_NONE},
    {"Microsoft-Windows-LSA/Operational", SVC(LSA_SERVER), WIN, EVT_NONE},
    {"MSExchange Management", SVC(MSEXCHANGE_MANAGEMENT), WIN, EVT_NONE},
    {"Microsoft-Windows-Ntfs/Operational", SVC(NTFS), WIN, EVT_NONE},
    {"Microsoft-Windows-NTLM/Operational", SVC(NTLM), WIN, EVT_NONE},
    {"OpenSSH/Operational", SVC(OPENSSH), WIN, EVT_NONE},
    {"Microsoft-Windows-PrintService/Admin", SVC(PRINTSERVICE_ADMIN), WIN, EVT_NONE},
    {"Microsoft-Windows-PrintService/Operational", SVC(PRINTSERVICE_OPERATIONAL), WIN, EVT_NONE},
    {"Microsoft-Windows-Security-Mitigations/Kernel Mode", SVC(SECURITY_MITIGATIONS), WIN, EVT_NONE},
    {"Microsoft-Windows-Security-Mitigations/User Mode", SVC(SECURITY_MITIGATIONS), WIN, EVT_NONE},
    {"Microsoft-Windows-SENSE/Operational", SVC(SENSE), WIN, EVT_NONE},
    {"Microsoft-ServiceBus-Client/Operational", SVC(SERVICEBUS_CLIENT), WIN, EVT_NONE},
    {"Microsoft-ServiceBus-Client/Admin", SVC(SERVICEBUS_CLIENT), WIN, EVT_NONE},
    {"Microsoft-Windows-Shell-Core/Operational", SVC(SHELL_CORE), WIN, EVT_NONE},
    {"Microsoft-Windows-SmbClient/Security", SVC(SMBCLIENT_SECURITY), WIN, EVT_NONE},
    {"Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
     SVC(TERMINALSERVICES_LOCALSESSIONMANAGER), WIN, EVT_NONE},
    {"Microsoft-Windows-VHDMP/Operational", SVC(VHDMP), WIN, EVT_NONE},
};

#undef SVC
#undef WIN

struct event_row {
    uint8_t table; /* enum event_table */
    uint16_t event_id;
    uint64_t categories;
    struct logsource_winlog_ecs ecs;
};

#define C(x) LOGSOURCE_BIT(LOGSOURCE_CATEGORY_##x)
/* ECS categorization columns: event.category, event.type (ECS 8 allowed values). */
#define ECS(cat, ...) {{cat, NULL}, {__VA_ARGS__, NULL}}
#define ECS_NONE {{NULL}, {NULL}}

static const struct event_row event_rows[] = {
    /* Sysmon: the taxonomy's "Windows Folder / Category" table. */
    {EVT_SYSMON, 1, C(PROCESS_CREATION), ECS("process", "start")},
    {EVT_SYSMON, 2, C(FILE_CHANGE), ECS("file", "change")},
    {EVT_SYSMON, 3, C(NETWORK_CONNECTION), ECS("network", "connection", "start")},
    {EVT_SYSMON, 4, C(SYSMON_STATUS), ECS_NONE},
    {EVT_SYSMON, 5, C(PROCESS_TERMINATION), ECS("process", "end")},
    {EVT_SYSMON, 6, C(DRIVER_LOAD), ECS("driver", "start")},
    {EVT_SYSMON, 7, C(IMAGE_LOAD), ECS("library", "start")},
    {EVT_SYSMON, 8, C(CREATE_REMOTE_THREAD), ECS("process", "change")},
    {EVT_SYSMON, 9, C(RAW_ACCESS_THREAD), ECS("file", "access")},
    {EVT_SYSMON, 10, C(PROCESS_ACCESS), ECS("process", "access")},
    {EVT_SYSMON, 11, C(FILE_EVENT), ECS("file", "creation")},
    {EVT_SYSMON, 12, C(REGISTRY_ADD) | C(REGISTRY_DELETE) | C(REGISTRY_EVENT), ECS("registry", "change")},
    {EVT_SYSMON, 13, C(REGISTRY_SET) | C(REGISTRY_EVENT), ECS("registry", "change")},
    {EVT_SYSMON, 14, C(REGISTRY_RENAME) | C(REGISTRY_EVENT), ECS("registry", "change")},
    {EVT_SYSMON, 15, C(CREATE_STREAM_HASH), ECS("file", "creation")},
    {EVT_SYSMON, 16, C(SYSMON_STATUS), ECS("configuration", "change")},
    {EVT_SYSMON, 17, C(PIPE_CREATED), ECS("file", "creation")},
    {EVT_SYSMON, 18, C(PIPE_CREATED), ECS("file", "access")},
    {EVT_SYSMON, 19, C(WMI_EVENT), ECS_NONE},
    {EVT_SYSMON, 20, C(WMI_EVENT), ECS_NONE},
    {EVT_SYSMON, 21, C(WMI_EVENT), ECS_NONE},
    {EVT_SYSMON, 22, C(DNS_QUERY), ECS("network", "protocol", "info")},
    {EVT_SYSMON, 23, C(FILE_DELETE), ECS("file", "deletion")},
    {EVT_SYSMON, 24, C(CLIPBOARD_CAPTURE), ECS_NONE},
    {EVT_SYSMON, 25, C(PROCESS_TAMPERING), ECS("process", "change")},
    /* pySigma's Sysmon pipeline routes file_delete to 23 and 26; the taxonomy adds
     * file_delete_detected for 26. */
    {EVT_SYSMON, 26, C(FILE_DELETE) | C(FILE_DELETE_DETECTED), ECS("file", "deletion")},
    {EVT_SYSMON, 27, C(FILE_BLOCK_EXECUTABLE), ECS("file", "denied")},
    {EVT_SYSMON, 28, C(FILE_BLOCK_SHREDDING), ECS("file", "denied")},
    {EVT_SYSMON, 29, C(FILE_EXECUTABLE_DETECTED), ECS("file", "creation")},
    {EVT_SYSMON, 255, C(SYSMON_ERROR), ECS_NONE},
    /* Security: 4688 is a generic process_creation source (DESIGN §4); the others only
     * get an ECS categorization. */
    {EVT_SECURITY, 4688, C(PROCESS_CREATION), ECS("process", "start")},
    {EVT_SECURITY, 4689, 0, ECS("process", "end")},
    {EVT_SECURITY, 4624, 0, ECS("authentication", "start")},
    {EVT_SECURITY, 4625, 0, ECS("authentication", "start")},
    {EVT_SECURITY, 4634, 0, ECS("authentication", "end")},
    {EVT_SECURITY, 4720, 0, ECS("iam", "user", "creation")},
    {EVT_SECURITY, 5156, 0, ECS("network", "connection", "allowed")},
    /* PowerShell. */
    {EVT_POWERSHELL, 4103, C(PS_MODULE), ECS_NONE},
    {EVT_POWERSHELL, 4104, C(PS_SCRIPT), ECS_NONE},
    {EVT_PS_CLASSIC, 400, C(PS_CLASSIC_START), ECS_NONE},
    {EVT_PS_CLASSIC, 600, C(PS_CLASSIC_PROVIDER_START), ECS_NONE},
    {EVT_PS_CLASSIC, 800, C(PS_CLASSIC_SCRIPT), ECS_NONE},
};

#undef ECS
#undef ECS_NONE

/* ASCII case-insensitive index of channel_rows. */
#define CHANNEL_SLOTS 256u
_Static_assert(MAMORI_ARRAY_LEN(channel_rows) * 2 < CHANNEL_SLOTS, "channel index too full");
static uint8_t channel_slots[CHANNEL_SLOTS]; /* row index + 1; 0 = empty */
static pthread_once_t channel_once = PTHREAD_ONCE_INIT;

static inline unsigned char ascii_lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

static uint32_t hash_caseless(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= ascii_lower((unsigned char)s[i]);
        h *= 16777619u;
    }
    return h;
}

static bool equal_caseless(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i])) return false;
    return true;
}

static void channel_index_build(void)
{
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(channel_rows); i++) {
        const char *ch = channel_rows[i].channel;
        uint32_t slot = hash_caseless(ch, strlen(ch)) % CHANNEL_SLOTS;
        while (channel_slots[slot]) slot = (slot + 1) % CHANNEL_SLOTS;
        channel_slots[slot] = (uint8_t)(i + 1);
    }
}

static const struct channel_row *channel_find(const char *channel, size_t len)
{
    pthread_once(&channel_once, channel_index_build);
    uint32_t slot = hash_caseless(channel, len) % CHANNEL_SLOTS;
    while (channel_slots[slot]) {
        const struct channel_row *row = &channel_rows[channel_slots[slot] - 1];
        if (strlen(row->channel) == len && equal_caseless(row->channel, channel, len)) return row;
        slot = (slot + 1) % CHANNEL_SLOTS;
    }
    return NULL;
}

void logsource_from_winlog(const char *channel, size_t channel_len, int64_t event_id,
                           struct logsource_set *out, struct logsource_winlog_ecs *ecs)
{
    memset(out, 0, sizeof *out);
    if (ecs) memset(ecs, 0, sizeof *ecs);
    out->product = LOGSOURCE_PRODUCT_WINDOWS;
    const struct channel_row *ch = channel ? channel_find(channel, channel_len) : NULL;
    if (!ch) return;
    out->product = ch->product;
    out->service = ch->service;
    if (ch->table == EVT_NONE) return;
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(event_rows); i++) {
        const struct event_row *row = &event_rows[i];
        if (row->table != ch->table || row->event_id != event_id) continue;
        out->categories = row->categories;
        if (ecs) *ecs = row->ecs;
        return;
    }
}

/* ---- table 2: ECS categorization → categories ----------------------------------------- */

struct ecs_row {
    const char *category; /* event.category value */
    const char *type;     /* event.type value, NULL = any */
    uint64_t categories;
};

static const struct ecs_row ecs_rows[] = {
    {"process", "start", C(PROCESS_CREATION)},
    {"process", "end", C(PROCESS_TERMINATION)},
    {"network", "start", C(NETWORK_CONNECTION)},
    {"network", "connection", C(NETWORK_CONNECTION)},
    {"file", "creation", C(FILE_EVENT)},
    {"file", "change", C(FILE_EVENT)},
    {"file", "deletion", C(FILE_DELETE)},
    {"dns", NULL, C(DNS_QUERY)},
    /* registry_event is Sigma's umbrella for registry_add/set/delete/rename rules. */
    {"registry", NULL, C(REGISTRY_SET) | C(REGISTRY_EVENT)},
    {"library", NULL, C(IMAGE_LOAD)},
    {"driver", NULL, C(DRIVER_LOAD)},
};

#undef C

static bool string_is(const json_value *v, const char *s)
{
    size_t n = strlen(s);
    return v->type == JSON_STRING && v->len == n && memcmp(v->str, s, n) == 0;
}

/* True if v (a string or an array holding strings) contains s. */
static bool value_contains(const json_value *v, const char *s)
{
    if (!v) return false;
    if (v->type == JSON_STRING) return string_is(v, s);
    if (v->type != JSON_ARRAY) return false;
    for (uint32_t i = 0; i < v->len; i++)
        if (string_is(&v->items[i], s)) return true;
    return false;
}

void logsource_from_ecs(const json_value *event_category, const json_value *event_type,
                        const json_value *host_os_type, bool dns_question_present,
                        struct logsource_set *out)
{
    memset(out, 0, sizeof *out);
    if (host_os_type && host_os_type->type == JSON_STRING) {
        const char *s = host_os_type->str;
        size_t n = host_os_type->len;
        if (n == 7 && equal_caseless(s, "windows", 7)) out->product = LOGSOURCE_PRODUCT_WINDOWS;
        else if (n == 5 && equal_caseless(s, "linux", 5)) out->product = LOGSOURCE_PRODUCT_LINUX;
        else if (n == 5 && equal_caseless(s, "macos", 5)) out->product = LOGSOURCE_PRODUCT_MACOS;
    }
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(ecs_rows); i++) {
        const struct ecs_row *row = &ecs_rows[i];
        if (!value_contains(event_category, row->category)) continue;
        if (row->type && !value_contains(event_type, row->type)) continue;
        out->categories |= row->categories;
    }
    if (dns_question_present && value_contains(event_category, "network"))
        out->categories |= logsource_bit(LOGSOURCE_CATEGORY_DNS_QUERY);
}

static bool event_id_of(const json_value *v, int64_t *out)
{
    if (!v) return false;
    if (v->type == JSON_NUMBER && (v->flags & JSON_FLAG_INT)) {
        *out = v->num.i;
        return true;
    }
    if (v->type != JSON_STRING || v->len == 0 || v->len > 18) return false;
    int64_t n = 0;
    for (uint32_t i = 0; i < v->len; i++) {
        if (v->str[i] < '0' || v->str[i] > '9') return false;
        n = n * 10 + (v->str[i] - '0');
    }
    *out = n;
    return true;
}

void logsource_classify(const mamori_event *ev, struct logsource_set *out)
{
    const json_value *channel = event_get_cstr(ev, "winlog.channel");
    if (channel && channel->type == JSON_STRING) {
        int64_t event_id = -1;
        if (!event_id_of(event_get_cstr(ev, "winlog.event_id"), &event_id)) event_id = -1;
        logsource_from_winlog(channel->str, channel->len, event_id, out, NULL);
        return;
    }
    logsource_from_ecs(event_get_cstr(ev, "event.category"), event_get_cstr(ev, "event.type"),
                       event_get_cstr(ev, "host.os.type"), event_get_cstr(ev, "dns.question.name") != NULL, out);
}

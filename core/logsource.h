/* core/logsource.h — the Sigma logsource model (product, service, categories) and the two
 * routing tables that place an event in it: winlog (channel, EventID) as the Sigma taxonomy
 * appendix tables them, and ECS (event.category, event.type, host.os.type). The tables are
 * data in core/logsource.c and documented in docs/ecs-mapping.md; the normalizer, the
 * detection engine and the field mapping (core/ecs_map.h) all read the same ones. */
#ifndef MAMORI_CORE_LOGSOURCE_H
#define MAMORI_CORE_LOGSOURCE_H

#include "base.h"
#include "event.h"

enum logsource_product {
    LOGSOURCE_PRODUCT_NONE = 0,
    LOGSOURCE_PRODUCT_WINDOWS,
    LOGSOURCE_PRODUCT_LINUX,
    LOGSOURCE_PRODUCT_MACOS,
    LOGSOURCE_PRODUCT_COUNT
};

/* Sigma `category` values. An event may belong to several (Sysmon 12 is registry_add,
 * registry_delete and registry_event), hence a bit set: bit (1 << category). */
enum logsource_category {
    LOGSOURCE_CATEGORY_NONE = 0,
    LOGSOURCE_CATEGORY_PROCESS_CREATION,
    LOGSOURCE_CATEGORY_FILE_CHANGE,
    LOGSOURCE_CATEGORY_NETWORK_CONNECTION,
    LOGSOURCE_CATEGORY_SYSMON_STATUS,
    LOGSOURCE_CATEGORY_PROCESS_TERMINATION,
    LOGSOURCE_CATEGORY_DRIVER_LOAD,
    LOGSOURCE_CATEGORY_IMAGE_LOAD,
    LOGSOURCE_CATEGORY_CREATE_REMOTE_THREAD,
    LOGSOURCE_CATEGORY_RAW_ACCESS_THREAD,
    LOGSOURCE_CATEGORY_PROCESS_ACCESS,
    LOGSOURCE_CATEGORY_FILE_EVENT,
    LOGSOURCE_CATEGORY_REGISTRY_EVENT,
    LOGSOURCE_CATEGORY_REGISTRY_ADD,
    LOGSOURCE_CATEGORY_REGISTRY_DELETE,
    LOGSOURCE_CATEGORY_REGISTRY_SET,
    LOGSOURCE_CATEGORY_REGISTRY_RENAME,
    LOGSOURCE_CATEGORY_CREATE_STREAM_HASH,
    LOGSOURCE_CATEGORY_PIPE_CREATED,
    LOGSOURCE_CATEGORY_WMI_EVENT,
    LOGSOURCE_CATEGORY_DNS_QUERY,
    LOGSOURCE_CATEGORY_FILE_DELETE,
    LOGSOURCE_CATEGORY_CLIPBOARD_CAPTURE,
    LOGSOURCE_CATEGORY_PROCESS_TAMPERING,
    LOGSOURCE_CATEGORY_FILE_DELETE_DETECTED,
    LOGSOURCE_CATEGORY_FILE_BLOCK_EXECUTABLE,
    LOGSOURCE_CATEGORY_FILE_BLOCK_SHREDDING,
    LOGSOURCE_CATEGORY_FILE_EXECUTABLE_DETECTED,
    LOGSOURCE_CATEGORY_SYSMON_ERROR,
    LOGSOURCE_CATEGORY_FILE_ACCESS,
    LOGSOURCE_CATEGORY_FILE_RENAME,
    LOGSOURCE_CATEGORY_PS_CLASSIC_START,
    LOGSOURCE_CATEGORY_PS_CLASSIC_PROVIDER_START,
    LOGSOURCE_CATEGORY_PS_CLASSIC_SCRIPT,
    LOGSOURCE_CATEGORY_PS_MODULE,
    LOGSOURCE_CATEGORY_PS_SCRIPT,
    LOGSOURCE_CATEGORY_ANTIVIRUS,
    LOGSOURCE_CATEGORY_DNS,
    LOGSOURCE_CATEGORY_FIREWALL,
    LOGSOURCE_CATEGORY_PROXY,
    LOGSOURCE_CATEGORY_WEBSERVER,
    LOGSOURCE_CATEGORY_COUNT
};
_Static_assert(LOGSOURCE_CATEGORY_COUNT <= 64, "categories must fit the uint64_t bit set");

/* Sigma `service` values (Windows channels; a few Linux ones). One per event. */
enum logsource_service {
    LOGSOURCE_SERVICE_NONE = 0,
    LOGSOURCE_SERVICE_SECURITY,
    LOGSOURCE_SERVICE_SYSTEM,
    LOGSOURCE_SERVICE_APPLICATION,
    LOGSOURCE_SERVICE_SYSMON,
    LOGSOURCE_SERVICE_POWERSHELL,
    LOGSOURCE_SERVICE_POWERSHELL_CLASSIC,
    LOGSOURCE_SERVICE_TASKSCHEDULER,
    LOGSOURCE_SERVICE_WMI,
    LOGSOURCE_SERVICE_DNS_SERVER,
    LOGSOURCE_SERVICE_DNS_SERVER_ANALYTIC,
    LOGSOURCE_SERVICE_DNS_SERVER_AUDIT,
    LOGSOURCE_SERVICE_DNS_CLIENT,
    LOGSOURCE_SERVICE_WINDEFEND,
    LOGSOURCE_SERVICE_APPLICATION_EXPERIENCE,
    LOGSOURCE_SERVICE_APPLOCKER,
    LOGSOURCE_SERVICE_APPMODEL_RUNTIME,
    LOGSOURCE_SERVICE_APPXDEPLOYMENT_SERVER,
    LOGSOURCE_SERVICE_APPXPACKAGING_OM,
    LOGSOURCE_SERVICE_BITLOCKER,
    LOGSOURCE_SERVICE_BITS_CLIENT,
    LOGSOURCE_SERVICE_CAPI2,
    LOGSOURCE_SERVICE_CERTIFICATESERVICESCLIENT_LIFECYCLE_SYSTEM,
    LOGSOURCE_SERVICE_CODEINTEGRITY_OPERATIONAL,
    LOGSOURCE_SERVICE_DHCP,
    LOGSOURCE_SERVICE_DIAGNOSIS_SCRIPTED,
    LOGSOURCE_SERVICE_DRIVER_FRAMEWORK,
    LOGSOURCE_SERVICE_FIREWALL_AS,
    LOGSOURCE_SERVICE_HYPER_V_WORKER,
    LOGSOURCE_SERVICE_IIS_CONFIGURATION,
    LOGSOURCE_SERVICE_KERNEL_EVENT_TRACING,
    LOGSOURCE_SERVICE_KERNEL_SHIMENGINE,
    LOGSOURCE_SERVICE_LDAP,
    LOGSOURCE_SERVICE_LSA_SERVER,
    LOGSOURCE_SERVICE_MSEXCHANGE_MANAGEMENT,
    LOGSOURCE_SERVICE_NTFS,
    LOGSOURCE_SERVICE_NTLM,
    LOGSOURCE_SERVICE_OPENSSH,
    LOGSOURCE_SERVICE_PRINTSERVICE_ADMIN,
    LOGSOURCE_SERVICE_PRINTSERVICE_OPERATIONAL,
    LOGSOURCE_SERVICE_SECURITY_MITIGATIONS,
    LOGSOURCE_SERVICE_SENSE,
    LOGSOURCE_SERVICE_SERVICEBUS_CLIENT,
    LOGSOURCE_SERVICE_SHELL_CORE,
    LOGSOURCE_SERVICE_SMBCLIENT_SECURITY,
    LOGSOURCE_SERVICE_TERMINALSERVICES_LOCALSESSIONMANAGER,
    LOGSOURCE_SERVICE_VHDMP,
    LOGSOURCE_SERVICE_AUDITD,
    LOGSOURCE_SERVICE_COUNT
};

/* Where an event sits in the Sigma logsource model. A rule applies to an event when its
 * product (if any) equals product, its service (if any) equals service and its category
 * (if any) is in categories. */
struct logsource_set {
    uint64_t categories; /* bit (1 << enum logsource_category) */
    uint16_t service;    /* enum logsource_service */
    uint8_t product;     /* enum logsource_product */
};

#define LOGSOURCE_BIT(c) ((uint64_t)1 << (c)) /* constant-expression form, for tables */
static inline uint64_t logsource_bit(enum logsource_category c) { return LOGSOURCE_BIT(c); }
static inline bool logsource_has(const struct logsource_set *s, enum logsource_category c)
{
    return (s->categories & logsource_bit(c)) != 0;
}

/* Sigma spellings ("process_creation", "powershell-classic", "windows"). Static strings. */
const char *logsource_category_name(enum logsource_category c);
const char *logsource_service_name(enum logsource_service s);
const char *logsource_product_name(enum logsource_product p);
/* Parse the Sigma spelling (exact, case-sensitive as in rules). -EINVAL if unknown. */
int logsource_category_parse(const char *name, size_t len, enum logsource_category *out) MAMORI_WUR;
int logsource_service_parse(const char *name, size_t len, enum logsource_service *out) MAMORI_WUR;
int logsource_product_parse(const char *name, size_t len, enum logsource_product *out) MAMORI_WUR;

/* ECS classification of a winlog (channel, EventID): what the normalizer writes to
 * event.category / event.type (NULL-terminated lists of static strings, empty when the
 * table has no row). event.module is logsource_service_name(service). */
struct logsource_winlog_ecs {
    const char *category[3];
    const char *type[3];
};

/* Table 1: winlog channel (ASCII case-insensitive: data has "security" and "Security") and
 * EventID → product, service, categories. Unknown channels give product windows and no
 * service; unknown EventIDs give no category. ecs may be NULL. Borrows channel. */
void logsource_from_winlog(const char *channel, size_t channel_len, int64_t event_id,
                           struct logsource_set *out, struct logsource_winlog_ecs *ecs);

/* Table 2: ECS event.category / event.type values (each a JSON string or array of strings;
 * either may be NULL) and host.os.type (string or NULL) → product and categories.
 * dns_question_present says whether dns.question.name exists (network events carrying a
 * DNS question are dns_query). Borrows everything. */
void logsource_from_ecs(const json_value *event_category, const json_value *event_type,
                        const json_value *host_os_type, bool dns_question_present,
                        struct logsource_set *out);

/* Classifies any normalized event: by winlog.channel / winlog.event_id when
 * winlog.channel is present, else by event.category / event.type / host.os.type.
 * Borrows ev; fills *out completely. */
void logsource_classify(const mamori_event *ev, struct logsource_set *out);

#endif

/* bench/sim/model.h — private to the synthetic event source: the tables of programs a
 * simulated host runs (tables.c), the host model that turns them into a process tree with
 * file, network, DNS, registry and library activity (model.c), and the two renderers that
 * write one activity as ECS (render_ecs.c) or as an NXLog-style Sysmon event
 * (render_winlog.c). Table strings are JSON-escaped once at start-up, so rendering is
 * mostly memcpy. */
#ifndef MAMORI_BENCH_SIM_MODEL_H
#define MAMORI_BENCH_SIM_MODEL_H

#include "sim.h"

enum proc_user { USER_HOST = 0, USER_SYSTEM, USER_LOCAL_SERVICE, USER_NETWORK_SERVICE, USER_ROOT };
enum net_profile { NET_NONE = 0, NET_WEB, NET_MAIL, NET_WINDOWS, NET_DC, NET_DEV, NET_CHAT, NET_LINUX, NET_PROFILES };
enum file_profile { FILES_TEMP = 0, FILES_DOCS, FILES_BROWSER, FILES_SYSTEM, FILES_LINUX_TMP, FILES_LINUX_HOME,
                    FILES_LINUX_SYSTEM, FILE_PROFILES };
enum dll_profile { DLLS_BASE = 0, DLLS_SCRIPT, DLLS_BROWSER, DLLS_OFFICE, DLLS_LINUX, DLL_PROFILES };

#define TEMPLATE_CHILDREN_MAX 12
#define TEMPLATE_CMDLINES_MAX 4

/* Text in tables may hold placeholders, expanded per process or per event:
 * {U} user name, {S} user SID, {R} 8 letters/digits, {H} 6 hex digits, {N} 1..999. */
typedef struct proc_template {
    const char *name;
    const char *exe;
    const char *cwd;
    const char *cmdlines[TEMPLATE_CMDLINES_MAX];
    const char *original_file_name; /* PE metadata (Windows) */
    const char *description;
    const char *company;
    uint8_t user;      /* enum proc_user */
    uint8_t integrity; /* 0 Medium, 1 High, 2 System */
    uint8_t files;     /* enum file_profile */
    uint8_t net;       /* enum net_profile */
    uint8_t dlls;      /* enum dll_profile */
    bool registry;     /* writes the registry now and then */
    bool linux_host;
    uint8_t children[TEMPLATE_CHILDREN_MAX]; /* template ids; 0 ends the list */
    /* filled by tables_init() */
    const char *name_json, *exe_json, *cwd_json, *cmdlines_json[TEMPLATE_CMDLINES_MAX];
    const char *original_file_name_json, *description_json, *company_json;
    uint8_t cmdline_count;
    char sha256[65];
} proc_template;

typedef struct net_dest {
    const char *domain;
    const char *ip;
    uint16_t port;
    bool udp;
    const char *protocol; /* network.protocol */
    uint8_t profile;      /* enum net_profile */
} net_dest;

typedef struct text_choice {
    const char *text; /* raw; JSON-escaped copy below */
    const char *text_json;
    const char *data;      /* registry: value data shown by Sysmon ("Details") */
    const char *data_json;
    char sha256[65];       /* DLLs: a stable made-up hash */
} text_choice;

extern proc_template model_templates[];
extern const uint32_t model_template_count;
extern const net_dest model_net_dests[];
extern const uint32_t model_net_dest_count;
/* Per profile: file path patterns, DLL paths; registry value paths (+data). */
extern text_choice *model_file_paths[FILE_PROFILES];
extern uint32_t model_file_path_counts[FILE_PROFILES];
extern text_choice *model_dlls[DLL_PROFILES];
extern uint32_t model_dll_counts[DLL_PROFILES];
extern text_choice model_registry[];
extern const uint32_t model_registry_count;
/* Processes every Windows / Linux host starts with: {template id, parent's index in the
 * list (255: none)}, ended by template 0. */
extern const uint8_t model_windows_base[][2];
extern const uint8_t model_linux_base[][2];

/* JSON-escapes every table string once (thread-safe, idempotent). */
void tables_init(void);

/* ---- the host model ---- */

#define MODEL_PROCS_MAX 48

typedef struct model_proc {
    uint8_t tmpl;
    uint8_t cmdline;
    uint8_t user; /* enum proc_user */
    uint8_t parent_tmpl;
    uint8_t parent_cmdline;
    uint32_t pid;
    uint32_t parent_pid;
    uint64_t serial; /* entity id */
    uint64_t parent_serial;
} model_proc;

enum activity_kind {
    ACT_PROCESS_START = 0,
    ACT_PROCESS_END,
    ACT_FILE_CREATE,
    ACT_FILE_DELETE,
    ACT_NETWORK,
    ACT_DNS,
    ACT_REGISTRY,
    ACT_LIBRARY,
    ACT_KINDS
};

typedef struct model_activity {
    enum activity_kind kind;
    const model_proc *proc;       /* the actor; for a start, the new process */
    const text_choice *choice;    /* file path pattern, DLL or registry value */
    uint64_t choice_seed;         /* expands the pattern's placeholders */
    const net_dest *dest;
    uint16_t source_port;
} model_activity;

struct sim_model {
    const sim_host *host;
    uint64_t rng;
    uint64_t host_hash;
    uint64_t next_serial;
    uint64_t record_number;
    uint32_t next_linux_pid;
    char user[40];
    char sid[64];
    char host_json[320]; /* ECS "host" object, rendered once */
    size_t host_json_len;
    model_proc procs[MODEL_PROCS_MAX];
    uint32_t proc_count;
    uint32_t base_count; /* procs[0..base_count) never exit */
    const net_dest *last_dns; /* a lookup is usually followed by a connection */
    uint32_t last_dns_proc;
    model_proc ended; /* the process of the last ACT_PROCESS_END, kept for rendering */
};

/* Expands placeholders of an already JSON-escaped pattern into out. */
void model_expand(const sim_model *m, const char *pattern_json, uint64_t seed, buf *out);
/* Process GUID "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" of an entity serial (38 chars). */
void model_guid(const sim_model *m, uint64_t serial, char out[40]);
const char *model_user_domain(const sim_model *m, uint8_t user);
const char *model_user_name(const sim_model *m, uint8_t user);

void render_ecs(sim_model *m, const model_activity *act, int64_t now_us, buf *out);
void render_winlog(sim_model *m, const model_activity *act, int64_t now_us, buf *out);

/* `,"key":"value"` with value already JSON-escaped. */
static inline void put_member(buf *out, const char *key_json, const char *value_json)
{
    buf_puts(out, key_json);
    buf_puts(out, value_json);
    buf_putc(out, '"');
}
/* `,"key":"<pattern expanded>"`. */
static inline void put_expanded(buf *out, const sim_model *m, const char *key_json, const char *pattern_json,
                                uint64_t seed)
{
    buf_puts(out, key_json);
    model_expand(m, pattern_json, seed, out);
    buf_putc(out, '"');
}
void sha256_hex_of(const char *text, char out[65]);

#endif

/* bench/micro/store_bench.c — drives store_write_group with synthetic, realistic ECS
 * events (process, file, network and dns activity of N agents, entity ids, hashes,
 * ~500-byte canonical JSON) in group commits, then reports events/s, group-commit latency,
 * index slice write times and bytes per event after compaction. Not a test: it prints
 * numbers (docs/storage.md records them).
 *
 *   bench_store_bench [--events N] [--sync 0|1] [--agents N] [--batch N] [--group N]
 *                     [--pool N] [--dir D] [--keep] [--slice-ms N] [--zstd-level N]
 *                     [--dict BYTES] [--no-compact] [--sample]
 *
 * Events are generated before the clock starts (a pool replayed with shifted times and
 * sequence numbers when --events exceeds --pool), so the figures are the store's alone. */
#include "core/arena.h"
#include "core/clock.h"
#include "core/event.h"
#include "core/json.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- randomness ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static uint32_t rnd_below(uint32_t n) { return (uint32_t)(rnd() % n); }
/* Skewed pick in [0, n): small indexes far more likely (a few executables, domains and
 * files dominate real telemetry). */
static uint32_t rnd_skewed(uint32_t n)
{
    double u = (double)(rnd() >> 11) / 9007199254740992.0;
    uint32_t i = (uint32_t)((double)n * u * u * u);
    return i < n ? i : n - 1;
}

static void rnd_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) out[i] = hex[rnd() & 15];
    out[n] = '\0';
}

static void guid(char *out) /* 36 chars + NUL */
{
    char h[33];
    rnd_hex(h, 32);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

/* ---- the world: executables, domains, users, agents with process tables ---- */

typedef struct exe {
    char path[160];
    char name[48];
    char md5[33], sha1[41], sha256[65];
} exe;

typedef struct proc {
    char entity_id[40];
    uint32_t pid;
    uint32_t exe;
    int parent; /* index into the agent's table, -1 for none */
    uint32_t user;
} proc;

enum { PROCS = 48 };

typedef struct agent {
    char id[40];
    char host_id[40];
    char host_name[32];
    char ip[16];
    bool windows;
    uint32_t users[3];
    proc procs[PROCS];
    uint64_t seq;
    int64_t last_ts; /* an agent's batches cover consecutive time spans */
} agent;

static const char *const win_exes[] = {
    "C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\explorer.exe",
    "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "C:\\Windows\\System32\\cmd.exe",
    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "C:\\Windows\\System32\\conhost.exe",
    "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE", "C:\\Windows\\System32\\lsass.exe",
    "C:\\Windows\\System32\\services.exe", "C:\\Windows\\System32\\RuntimeBroker.exe",
    "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe", "C:\\Windows\\System32\\taskhostw.exe",
    "C:\\Windows\\System32\\rundll32.exe", "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
    "C:\\Program Files\\Microsoft VS Code\\Code.exe", "C:\\Windows\\System32\\SearchIndexer.exe",
};
static const char *const lin_exes[] = {
    "/usr/bin/bash", "/usr/sbin/sshd", "/usr/bin/python3.11", "/usr/lib/systemd/systemd", "/usr/bin/curl",
    "/usr/sbin/nginx", "/usr/bin/dockerd", "/usr/bin/containerd-shim-runc-v2", "/usr/bin/java", "/usr/bin/node",
};
static const char *const tlds[] = {"com", "net", "org", "io", "cloud", "co.uk", "de"};
static const char *const words[] = {"update", "cdn", "api", "login", "static", "mail", "telemetry", "graph", "edge",
                                    "files", "sync", "auth", "data", "img", "www", "portal"};
static const char *const exts[] = {"tmp", "log", "docx", "xlsx", "pdf", "dll", "exe", "json", "txt", "ps1", "zip"};

enum { EXES = 400, DOMAINS = 3000, USERS = 3000, DEST_IPS = 6000 };
static exe g_exes[EXES];
static uint32_t g_win_exes[EXES], g_lin_exes[EXES], g_win_count, g_lin_count;

static uint32_t pick_exe(bool windows)
{
    return windows ? g_win_exes[rnd_skewed(g_win_count)] : g_lin_exes[rnd_skewed(g_lin_count)];
}
static char g_domains[DOMAINS][64];
static char g_users[USERS][32];
static char g_dest_ips[DEST_IPS][16];
static agent *g_agents;
static uint32_t g_agent_count;

static void make_world(uint32_t agents)
{
    for (uint32_t i = 0; i < EXES; i++) {
        exe *e = &g_exes[i];
        uint32_t nwin = (uint32_t)MAMORI_ARRAY_LEN(win_exes), nlin = (uint32_t)MAMORI_ARRAY_LEN(lin_exes);
        bool win = i < nwin || i % 5 != 0;
        if (i < nwin) snprintf(e->path, sizeof e->path, "%s", win_exes[i]);
        else if (win)
            snprintf(e->path, sizeof e->path, "C:\\Program Files\\Vendor%u\\App%u\\bin\\tool%u.exe", i % 37, i, i);
        else if ((i - nwin) / 5 < nlin)
            snprintf(e->path, sizeof e->path, "%s", lin_exes[(i - nwin) / 5]);
        else snprintf(e->path, sizeof e->path, "/opt/vendor%u/bin/daemon%u", i % 23, i);
        const char *slash = strrchr(e->path, win ? '\\' : '/');
        snprintf(e->name, sizeof e->name, "%.47s", slash ? slash + 1 : e->path);
        rnd_hex(e->md5, 32);
        rnd_hex(e->sha1, 40);
        rnd_hex(e->sha256, 64);
        if (win) g_win_exes[g_win_count++] = i;
        else g_lin_exes[g_lin_count++] = i;
    }
    for (uint32_t i = 0; i < DOMAINS; i++)
        snprintf(g_domains[i], sizeof g_domains[i], "%s%u.%s-%s.%s", words[rnd_below(16)], rnd_below(20),
                 words[rnd_below(16)], words[rnd_below(16)], tlds[rnd_below(7)]);
    for (uint32_t i = 0; i < USERS; i++) snprintf(g_users[i], sizeof g_users[i], "user%04u.%c%c", i, 'a' + rnd_below(26), 'a' + rnd_below(26));
    for (uint32_t i = 0; i < DEST_IPS; i++)
        snprintf(g_dest_ips[i], sizeof g_dest_ips[i], "%u.%u.%u.%u", 13 + rnd_below(200), rnd_below(256),
                 rnd_below(256), 1 + rnd_below(254));
    g_agent_count = agents;
    g_agents = calloc(agents, sizeof *g_agents);
    for (uint32_t a = 0; a < agents; a++) {
        agent *ag = &g_agents[a];
        guid(ag->id);
        guid(ag->host_id);
        ag->windows = a % 5 != 0;
        char suffix[8];
        rnd_hex(suffix, 7);
        for (char *c = suffix; *c; c++)
            if (*c >= 'a') *c = (char)(*c - 32);
        snprintf(ag->host_name, sizeof ag->host_name, "%s-%s", ag->windows ? "DESKTOP" : "srv", suffix);
        snprintf(ag->ip, sizeof ag->ip, "10.%u.%u.%u", a / 65536 % 256, a / 256 % 256, a % 256);
        for (int u = 0; u < 3; u++) ag->users[u] = rnd_below(USERS);
        for (int p = 0; p < PROCS; p++) {
            proc *pr = &ag->procs[p];
            guid(pr->entity_id);
            pr->pid = 100 + rnd_below(60000);
            pr->exe = pick_exe(ag->windows);
            pr->parent = p == 0 ? -1 : (int)rnd_below((uint32_t)p);
            pr->user = ag->users[rnd_below(3)];
        }
    }
}

/* ---- canonical JSON from flat (path, value) pairs ---- */

typedef struct kv {
    char path[64];
    char value[512]; /* JSON text of the value */
} kv;

typedef struct doc {
    kv kv[64];
    int n;
} doc;

static void put_raw(doc *d, const char *path, const char *json_text)
{
    kv *k = &d->kv[d->n++];
    size_t plen = strlen(path), vlen = strlen(json_text);
    if (plen >= sizeof k->path || vlen >= sizeof k->value) abort(); /* generator bug */
    memcpy(k->path, path, plen + 1);
    memcpy(k->value, json_text, vlen + 1);
}

static void put_str(doc *d, const char *path, const char *s)
{
    buf b;
    buf_init(&b);
    json_write_string(&b, s, strlen(s));
    put_raw(d, path, buf_cstr(&b));
    buf_fini(&b);
}

static void put_int(doc *d, const char *path, long long v)
{
    char t[32];
    snprintf(t, sizeof t, "%lld", v);
    put_raw(d, path, t);
}

static int kv_cmp(const void *a, const void *b) { return strcmp(((const kv *)a)->path, ((const kv *)b)->path); }

/* Nested, members sorted, compact — what the normalizer stores. */
static void doc_emit(doc *d, buf *out)
{
    qsort(d->kv, (size_t)d->n, sizeof d->kv[0], kv_cmp);
    buf_clear(out);
    buf_putc(out, '{');
    const char *open[8];
    size_t open_len[8];
    int depth = 0;
    bool first = true;
    for (int i = 0; i < d->n; i++) {
        const char *segs[8];
        size_t seg_len[8];
        int nseg = 0;
        for (const char *p = d->kv[i].path;;) {
            const char *dot = strchr(p, '.');
            segs[nseg] = p;
            seg_len[nseg++] = dot ? (size_t)(dot - p) : strlen(p);
            if (!dot) break;
            p = dot + 1;
        }
        int common = 0;
        while (common < depth && common < nseg - 1 && open_len[common] == seg_len[common] &&
               memcmp(open[common], segs[common], seg_len[common]) == 0)
            common++;
        while (depth > common) {
            buf_putc(out, '}');
            depth--;
            first = false;
        }
        for (int s = depth; s < nseg - 1; s++) {
            if (!first) buf_putc(out, ',');
            json_write_string(out, segs[s], seg_len[s]);
            buf_puts(out, ":{");
            open[depth] = segs[s];
            open_len[depth++] = seg_len[s];
            first = true;
        }
        if (!first) buf_putc(out, ',');
        json_write_string(out, segs[nseg - 1], seg_len[nseg - 1]);
        buf_putc(out, ':');
        buf_puts(out, d->kv[i].value);
        first = false;
    }
    while (depth-- > 0) buf_putc(out, '}');
    buf_putc(out, '}');
}

/* ---- events ---- */

static void proc_fields(doc *d, const agent *ag, const proc *pr, bool with_hash)
{
    const exe *e = &g_exes[pr->exe];
    put_str(d, "process.entity_id", pr->entity_id);
    put_int(d, "process.pid", pr->pid);
    put_str(d, "process.name", e->name);
    put_str(d, "process.executable", e->path);
    if (with_hash) {
        put_str(d, "process.hash.sha256", e->sha256);
        if (ag->windows) put_str(d, "process.hash.md5", e->md5);
    }
    if (pr->parent >= 0) put_str(d, "process.parent.entity_id", ag->procs[pr->parent].entity_id);
    put_str(d, "user.name", g_users[pr->user]);
}

static void make_event(agent *ag, int64_t ts_us, uint64_t seq, uint32_t index, buf *out)
{
    doc d = {.n = 0};
    char t[40], s[400];
    clock_format_rfc3339(ts_us, t);
    put_str(&d, "@timestamp", t);
    put_str(&d, "host.id", ag->host_id);
    put_str(&d, "host.name", ag->host_name);
    put_str(&d, "mamori.agent_id", ag->id);
    put_str(&d, "mamori.tenant", "default");
    clock_format_rfc3339(ts_us + 200000 + (int64_t)rnd_below(800000), t);
    put_str(&d, "mamori.received", t);
    char id[EVENT_ID_HEX_CHARS + 1];
    event_id_format(ts_us, event_agent_hash("default", ag->id), seq, index, id);
    put_str(&d, "mamori.event_id", id);
    uint32_t r = rnd_below(100);
    proc *pr = &ag->procs[rnd_skewed(PROCS)];
    if (r < 12) { /* process start: a new process replaces an old one */
        int slot = 1 + (int)rnd_below(PROCS - 1);
        proc *np = &ag->procs[slot];
        guid(np->entity_id);
        np->pid = 100 + rnd_below(60000);
        np->exe = pick_exe(ag->windows);
        np->parent = (int)rnd_below((uint32_t)slot);
        np->user = ag->users[rnd_below(3)];
        put_raw(&d, "event.category", "[\"process\"]");
        put_raw(&d, "event.type", "[\"start\"]");
        put_str(&d, "event.action", "process_started");
        proc_fields(&d, ag, np, true);
        snprintf(s, sizeof s, "%s --%s=%u", g_exes[np->exe].name, words[rnd_below(16)], rnd_below(100000));
        put_str(&d, "process.command_line", s);
    } else if (r < 16) {
        put_raw(&d, "event.category", "[\"process\"]");
        put_raw(&d, "event.type", "[\"end\"]");
        put_str(&d, "event.action", "process_stopped");
        proc_fields(&d, ag, pr, true);
        put_int(&d, "process.exit_code", rnd_below(4) ? 0 : 1);
    } else if (r < 46) {
        static const char *const ftypes[] = {"creation", "change", "deletion"};
        put_raw(&d, "event.category", "[\"file\"]");
        snprintf(s, sizeof s, "[\"%s\"]", ftypes[rnd_below(3)]);
        put_raw(&d, "event.type", s);
        put_str(&d, "event.action", "file_event");
        proc_fields(&d, ag, pr, false);
        const char *ext = exts[rnd_skewed(11)];
        uint32_t kind = rnd_below(10);
        char name[64];
        if (kind < 4) snprintf(name, sizeof name, "%s%u.%s", words[rnd_below(16)], rnd_below(50), ext);
        else snprintf(name, sizeof name, "%08x.%s", (unsigned)rnd(), ext);
        if (ag->windows)
            snprintf(s, sizeof s, kind < 6 ? "C:\\Users\\%s\\AppData\\Local\\Temp\\%s" : "C:\\Users\\%s\\Documents\\%s",
                     g_users[pr->user], name);
        else snprintf(s, sizeof s, kind < 6 ? "/tmp/%.0s%s" : "/home/%s/%s", g_users[pr->user], name);
        put_str(&d, "file.path", s);
    } else if (r < 76) {
        put_raw(&d, "event.category", "[\"network\"]");
        put_raw(&d, "event.type", "[\"connection\",\"start\"]");
        put_str(&d, "event.action", "connection_attempted");
        proc_fields(&d, ag, pr, false);
        put_str(&d, "source.ip", ag->ip);
        put_int(&d, "source.port", 49152 + rnd_below(16000));
        put_str(&d, "destination.ip", g_dest_ips[rnd_skewed(DEST_IPS)]);
        static const int ports[] = {443, 443, 443, 80, 53, 22, 445, 3389, 8080, 8443};
        put_int(&d, "destination.port", ports[rnd_below(10)]);
        put_str(&d, "network.transport", "tcp");
    } else {
        put_raw(&d, "event.category", "[\"network\"]");
        put_raw(&d, "event.type", "[\"protocol\"]");
        put_str(&d, "event.action", "dns_query");
        proc_fields(&d, ag, pr, false);
        put_str(&d, "dns.question.name", g_domains[rnd_skewed(DOMAINS)]);
        put_str(&d, "dns.question.type", rnd_below(4) ? "A" : "AAAA");
    }
    doc_emit(&d, out);
}

/* ---- events as the store sees them: JSON plus the flattened, sorted field list ---- */

typedef struct flat {
    event_field *v;
    uint32_t n, cap;
} flat;

static void flatten(arena *a, flat *out, const char *prefix, size_t plen, const json_value *v)
{
    if (v->type == JSON_OBJECT) {
        for (uint32_t i = 0; i < v->len; i++) {
            const json_member *m = &v->members[i];
            size_t n = plen ? plen + 1 + m->key_len : m->key_len;
            char *path = arena_alloc(a, n + 1);
            if (plen) {
                memcpy(path, prefix, plen);
                path[plen] = '.';
            }
            memcpy(path + (plen ? plen + 1 : 0), m->key, m->key_len);
            path[n] = '\0';
            flatten(a, out, path, n, &m->value);
        }
        return;
    }
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 64;
        out->v = realloc(out->v, out->cap * sizeof *out->v);
    }
    out->v[out->n++] = (event_field){.path = prefix, .path_len = (uint32_t)plen, .value = v};
}

static int field_cmp(const void *a, const void *b)
{
    return strcmp(((const event_field *)a)->path, ((const event_field *)b)->path);
}

typedef struct pool_batch {
    uint32_t agent;
    uint64_t seq;
    mamori_event *events;
    uint32_t count;
} pool_batch;

typedef struct pool {
    pool_batch *batches;
    size_t count, cap;
    uint64_t events;
    uint64_t json_bytes;
    int64_t span_us;
    uint64_t seq_span; /* batches per agent */
} pool;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void make_pool(pool *p, arena *a, uint64_t events, uint32_t batch_min, uint32_t batch_max, uint32_t group,
                      double rate)
{
    json_parser *jp = json_parser_create();
    buf json;
    buf_init(&json);
    flat f = {0};
    int64_t start = 1764547200000000LL; /* 2025-12-01 */
    int64_t now = start;
    uint32_t next_agent = 0;
    int64_t ts[2048];
    while (p->events < events) {
        for (uint32_t g = 0; g < group && p->events < events; g++) {
            uint32_t n = batch_min + (batch_max > batch_min ? rnd_below(batch_max - batch_min + 1) : 0);
            if (n > events - p->events) n = (uint32_t)(events - p->events);
            agent *ag = &g_agents[next_agent];
            if (p->count == p->cap) {
                p->cap = p->cap ? p->cap * 2 : 1024;
                p->batches = realloc(p->batches, p->cap * sizeof *p->batches);
            }
            pool_batch *b = &p->batches[p->count++];
            b->agent = next_agent;
            b->seq = ++ag->seq;
            b->count = n;
            b->events = arena_alloc(a, n * sizeof *b->events);
            /* an agent's batch holds its activity since its previous batch (at most 2 s) */
            int64_t from = MAMORI_MAX(ag->last_ts, now - 2000000);
            for (uint32_t i = 0; i < n; i++) ts[i] = from + (int64_t)(rnd() % (uint64_t)(now - from + 1));
            ag->last_ts = now + 1;
            qsort(ts, n, sizeof ts[0], cmp_i64);
            for (uint32_t i = 0; i < n; i++) {
                make_event(ag, ts[i], b->seq, i, &json);
                char *text = arena_strndup(a, json.data, json.len);
                json_value *root = arena_alloc(a, sizeof *root);
                json_error err;
                if (json_parse(jp, a, text, json.len, root, &err)) {
                    fprintf(stderr, "generator produced bad JSON: %s\n%s\n", err.msg, text);
                    exit(1);
                }
                f.n = 0;
                flatten(a, &f, "", 0, root);
                qsort(f.v, f.n, sizeof *f.v, field_cmp);
                b->events[i] = (mamori_event){.ts_us = ts[i], .index = i, .field_count = f.n,
                                              .fields = arena_memdup(a, f.v, f.n * sizeof *f.v), .json = text,
                                              .json_len = (uint32_t)json.len};
                p->json_bytes += json.len;
            }
            p->events += n;
            now += (int64_t)((double)n / rate * 1e6);
            next_agent = (next_agent + 1 + rnd_below(3)) % g_agent_count;
        }
    }
    p->span_us = now - start + 5000000;
    uint64_t max_seq = 0;
    for (uint32_t i = 0; i < g_agent_count; i++) max_seq = MAMORI_MAX(max_seq, g_agents[i].seq);
    p->seq_span = max_seq;
    free(f.v);
    buf_fini(&json);
    json_parser_destroy(jp);
}

/* ---- the run ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

/* Busy CPU seconds of the whole machine (/proc/stat): with our own CPU time, tells how
 * much other processes took while we measured (the box is shared). */
static double machine_busy_seconds(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]);
    fclose(f);
    if (n < 8) return 0;
    long hz = sysconf(_SC_CLK_TCK);
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)hz; /* all but idle and iowait */
}

/* CPU seconds per thread name, from /proc/self/task: where the time went. */
static void print_thread_cpu(const char *phase)
{
    char names[16][32];
    double secs[16] = {0};
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) return;
    struct dirent *e;
    long hz = sysconf(_SC_CLK_TCK);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], line[1024], name[32] = "?";
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        line[len] = '\0';
        char *open_paren = strchr(line, '('), *close_paren = strrchr(line, ')');
        if (!open_paren || !close_paren) continue;
        snprintf(name, sizeof name, "%.*s", (int)MAMORI_MIN((long)(close_paren - open_paren - 1), 31L), open_paren + 1);
        unsigned long long ut = 0, st = 0;
        /* fields after the name: state(3) ... utime(14) stime(15) */
        if (sscanf(close_paren + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) continue;
        int i = 0;
        while (i < n && strcmp(names[i], name) != 0) i++;
        if (i == n && n < 16) snprintf(names[n++], sizeof names[0], "%s", name);
        if (i < 16) secs[i] += (double)(ut + st) / (double)hz;
    }
    closedir(d);
    fprintf(stderr, "thread CPU seconds %s:", phase);
    for (int i = 0; i < n; i++) fprintf(stderr, " %s=%.2f", names[i], secs[i]);
    fprintf(stderr, "\n");
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_store_bench [--events N] [--sync 0|1] [--agents N] [--batch N] [--group N]\n"
                    "                         [--pool N] [--dir D] [--keep] [--slice-ms N] [--zstd-level N]\n"
                    "                         [--dict BYTES] [--no-compact] [--sample]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t events = 2000000, pool_events = 0;
    uint32_t agents = 1000, batch = 0, group = 32, slice_ms = 10000, dict = 65536;
    int sync = 0, zstd_level = 3;
    bool keep = false, compact = true, sample = false;
    const char *dir_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keep")) keep = true;
        else if (!strcmp(a, "--no-compact")) compact = false;
        else if (!strcmp(a, "--sample")) sample = true;
        else if (!v) usage();
        else if (!strcmp(a, "--events")) events = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--pool")) pool_events = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--sync")) sync = atoi(v), i++;
        else if (!strcmp(a, "--agents")) agents = (uint32_t)atoi(v), i++;
        else if (!strcmp(a, "--batch")) batch = (uint32_t)atoi(v), i++;
        else if (!strcmp(a, "--group")) group = (uint32_t)atoi(v), i++;
        else if (!strcmp(a, "--slice-ms")) slice_ms = (uint32_t)atoi(v), i++;
        else if (!strcmp(a, "--zstd-level")) zstd_level = atoi(v), i++;
        else if (!strcmp(a, "--dict")) dict = (uint32_t)atoi(v), i++;
        else if (!strcmp(a, "--dir")) dir_arg = v, i++;
        else usage();
    }
    if (!events || !agents || !group || batch > 2000) usage();
    uint32_t batch_min = batch ? batch : 100, batch_max = batch ? batch : 500;
    if (!pool_events || pool_events > events) pool_events = events;

    make_world(agents);
    arena a;
    arena_init(&a, 64u << 20);
    pool p = {0};
    int64_t g0 = clock_mono_us();
    make_pool(&p, &a, pool_events, batch_min, batch_max, group, 250000.0);
    if (sample)
        for (size_t i = 0; i < 6 && i < p.batches[0].count; i++) fprintf(stderr, "%s\n", p.batches[0].events[i].json);
    fprintf(stderr, "generated %llu events (%.0f B JSON avg) in %.1f s\n", (unsigned long long)p.events,
            (double)p.json_bytes / (double)p.events, (double)(clock_mono_us() - g0) / 1e6);

    char tmpl[] = "/tmp/mamori-store-bench-XXXXXX";
    const char *dir = dir_arg ? dir_arg : mkdtemp(tmpl);
    if (!dir) {
        perror("mkdtemp");
        return 1;
    }
    store_options o;
    store_options_default(&o);
    o.path = dir;
    o.sync = sync != 0;
    o.index_slice_ms = slice_ms;
    o.zstd_level = zstd_level;
    o.zstd_dict_bytes = dict;
    store *s;
    char err[256];
    if (store_open(&o, &s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    size_t max_groups = (size_t)(events / (batch_min * (uint64_t)group)) + 16;
    uint64_t *lat = malloc(max_groups * sizeof *lat);
    size_t groups = 0;
    store_batch *bs = calloc(group, sizeof *bs);
    mamori_event *shifted = malloc((size_t)group * batch_max * sizeof *shifted);
    uint64_t written = 0, bytes = 0;
    size_t next = 0;
    uint64_t pass = 0;
    const char *tenant = "default";
    uint64_t tenant_hash = event_tenant_hash(tenant);
    double cpu0 = cpu_seconds(), busy0 = machine_busy_seconds();
    struct timespec wt0, wt1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &wt0);
    int64_t t0 = clock_mono_us();
    while (written < events) {
        size_t nb = 0, ne = 0;
        while (nb < group && written + ne < events) {
            if (next == p.count) {
                next = 0;
                pass++;
            }
            const pool_batch *pb = &p.batches[next++];
            const agent *ag = &g_agents[pb->agent];
            uint32_t n = (uint32_t)MAMORI_MIN((uint64_t)pb->count, events - written - ne);
            for (uint32_t i = 0; i < n; i++) {
                shifted[ne + i] = pb->events[i];
                shifted[ne + i].ts_us += (int64_t)pass * p.span_us;
            }
            bs[nb++] = (store_batch){.tenant = tenant,
                                     .tenant_hash = tenant_hash,
                                     .agent_id = ag->id,
                                     .agent_hash = event_agent_hash(tenant, ag->id),
                                     .seq = pb->seq + pass * p.seq_span,
                                     .events = &shifted[ne],
                                     .event_count = n};
            ne += n;
        }
        store_write_result r;
        int64_t w0 = clock_mono_us();
        int rc = store_write_group(s, bs, nb, &r);
        uint64_t us = (uint64_t)(clock_mono_us() - w0);
        if (rc) {
            fprintf(stderr, "store_write_group: %s\n", strerror(-rc));
            return 1;
        }
        if (groups < max_groups) lat[groups++] = us;
        written += r.events_written;
        bytes += r.bytes_written;
        if (r.batches_duplicate) {
            fprintf(stderr, "unexpected duplicates\n");
            return 1;
        }
    }
    int64_t t1 = clock_mono_us();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &wt1);
    double writer_cpu = (double)(wt1.tv_sec - wt0.tv_sec) + (double)(wt1.tv_nsec - wt0.tv_nsec) / 1e9;
    double cpu1 = cpu_seconds(), busy1 = machine_busy_seconds();
    print_thread_cpu("after ingest (the main thread includes event generation)");
    int rc = store_flush_index(s);
    int64_t t2 = clock_mono_us();
    if (rc) {
        fprintf(stderr, "store_flush_index: %s\n", strerror(-rc));
        return 1;
    }
    store_stats st;
    store_get_stats(s, &st);
    uint64_t slices = st.index_slices_flushed, slice_us = st.index_slice_flush_us_total,
             slice_max = st.index_slice_flush_us_max, waits = st.index_writer_waits;
    int64_t t3 = t2;
    double cpu2 = cpu_seconds(), cpu3 = cpu2;
    if (compact) {
        rc = store_compact_all(s);
        t3 = clock_mono_us();
        cpu3 = cpu_seconds();
        print_thread_cpu("after compaction (cumulative)");
        if (rc) {
            fprintf(stderr, "store_compact_all: %s\n", strerror(-rc));
            return 1;
        }
        store_get_stats(s, &st);
    }
    qsort(lat, groups, sizeof *lat, cmp_u64);
    double secs = (double)(t1 - t0) / 1e6;
    double eps = (double)written / secs;
    double ev_b = (double)st.events_sst_bytes / (double)written, ix_b = (double)st.index_sst_bytes / (double)written;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"events\":%llu,\"sync\":%d,\"agents\":%u,\"groups\":%zu,\"seconds\":%.2f,\"events_per_s\":%.0f,"
           "\"json_bytes_avg\":%.0f,\"mib_per_s\":%.1f,\"commit_us_p50\":%llu,\"commit_us_p99\":%llu,"
           "\"commit_us_max\":%llu,\"index_slices\":%llu,\"slice_write_ms_avg\":%.1f,\"slice_write_ms_max\":%.1f,"
           "\"writer_waits\":%llu,\"final_index_flush_ms\":%.1f,\"compact_s\":%.1f,\"events_bytes_per_event\":%.1f,"
           "\"index_bytes_per_event\":%.1f,\"bytes_per_event\":%.1f,\"max_rss_mib\":%ld,\"cpu_cores_during_ingest\":%.2f,"
           "\"cpu_us_per_event_ingest\":%.2f,\"cpu_us_per_event_total\":%.2f,\"writer_cpu_us_per_event\":%.2f,"
           "\"other_processes_cores\":%.2f}\n",
           (unsigned long long)written, sync, agents, groups, secs, eps, (double)p.json_bytes / (double)p.events,
           (double)bytes / secs / 1048576.0, (unsigned long long)lat[groups / 2],
           (unsigned long long)lat[groups * 99 / 100], (unsigned long long)lat[groups - 1], (unsigned long long)slices,
           slices ? (double)slice_us / (double)slices / 1000.0 : 0.0, (double)slice_max / 1000.0,
           (unsigned long long)waits, (double)(t2 - t1) / 1000.0, (double)(t3 - t2) / 1e6, compact ? ev_b : 0.0,
           compact ? ix_b : 0.0, compact ? ev_b + ix_b : 0.0, ru.ru_maxrss / 1024, (cpu1 - cpu0) / secs,
           (cpu1 - cpu0) * 1e6 / (double)written, (cpu3 - cpu0) * 1e6 / (double)written,
           writer_cpu * 1e6 / (double)written, MAMORI_MAX(0.0, ((busy1 - busy0) - (cpu1 - cpu0)) / secs));
    fprintf(stderr,
            "%llu events in %.2f s: %.0f events/s (sync %s), group commit p50 %.1f ms p99 %.1f ms; %llu slices, "
            "slice write avg %.0f ms max %.0f ms\n",
            (unsigned long long)written, secs, eps, sync ? "on" : "off", (double)lat[groups / 2] / 1000.0,
            (double)lat[groups * 99 / 100] / 1000.0, (unsigned long long)slices,
            slices ? (double)slice_us / (double)slices / 1000.0 : 0.0, (double)slice_max / 1000.0);
    if (compact)
        fprintf(stderr, "after compaction: events %.1f B/event + index %.1f B/event = %.1f B/event\n", ev_b, ix_b,
                ev_b + ix_b);
    store_close(s);
    if (!keep && !dir_arg) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else fprintf(stderr, "data kept in %s\n", dir);
    free(lat);
    free(bs);
    free(shifted);
    free(p.batches);
    arena_fini(&a);
    free(g_agents);
    return 0;
}

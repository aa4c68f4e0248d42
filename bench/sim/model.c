/* bench/sim/model.c — a simulated host's life: a process tree that grows and shrinks
 * (starts pick a plausible parent, short-lived tools exit again) and, around it, file,
 * network, DNS, registry and library activity by the processes whose habits fit (a
 * browser connects to the web, Word writes documents, PowerShell loads amsi.dll). Each
 * call yields one activity; render_ecs.c / render_winlog.c write it. Deterministic for a
 * given seed, constant memory per host (~3 KiB), no allocation after creation. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const first_names[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
                                          "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil",
                                          "trent", "victor", "walter", "yuki", "zoe", "omar", "priya", "lars"};
static const char *const last_names[] = {"nguyen", "smith", "garcia", "mueller", "rossi", "kowalski", "tanaka",
                                         "okafor", "silva", "jensen", "dubois", "haddad", "novak", "kim"};

/* Activity mix, per 100 events. Windows and Linux differ only in registry (none on Linux). */
static const uint8_t windows_mix[ACT_KINDS] = {[ACT_PROCESS_START] = 9, [ACT_PROCESS_END] = 7,
                                               [ACT_FILE_CREATE] = 17,  [ACT_FILE_DELETE] = 6,
                                               [ACT_NETWORK] = 20,      [ACT_DNS] = 14,
                                               [ACT_REGISTRY] = 13,     [ACT_LIBRARY] = 14};
static const uint8_t linux_mix[ACT_KINDS] = {[ACT_PROCESS_START] = 11, [ACT_PROCESS_END] = 9,
                                             [ACT_FILE_CREATE] = 26,   [ACT_FILE_DELETE] = 9,
                                             [ACT_NETWORK] = 18,       [ACT_DNS] = 12,
                                             [ACT_REGISTRY] = 0,       [ACT_LIBRARY] = 15};

void sim_host_init(sim_host *h, const char *agent_id, uint32_t index, bool windows)
{
    memset(h, 0, sizeof *h);
    h->name = agent_id;
    h->index = index;
    h->windows = windows;
    uint64_t a = mamori_hash64(agent_id, strlen(agent_id));
    uint64_t b = mamori_hash64(&a, sizeof a);
    snprintf(h->id, sizeof h->id, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
             (unsigned)a & 0xffff, (unsigned)(b >> 48), (unsigned long long)(b & 0xffffffffffffULL));
    snprintf(h->ip, sizeof h->ip, "10.%u.%u.%u", 16 + (index / 62500) % 200, (index / 250) % 250, index % 250 + 2);
    snprintf(h->mac, sizeof h->mac, "00-15-5d-%02x-%02x-%02x", (index >> 16) & 0xff, (index >> 8) & 0xff,
             index & 0xff);
}

const char *model_user_name(const sim_model *m, uint8_t user)
{
    switch (user) {
    case USER_SYSTEM: return "SYSTEM";
    case USER_LOCAL_SERVICE: return "LOCAL SERVICE";
    case USER_NETWORK_SERVICE: return "NETWORK SERVICE";
    case USER_ROOT: return "root";
    default: return m->user;
    }
}

const char *model_user_domain(const sim_model *m, uint8_t user)
{
    if (!m->host->windows) return NULL;
    return user == USER_HOST ? "CORP" : "NT AUTHORITY";
}

static char *put_hex_digits(char *out, uint64_t v, unsigned digits)
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = digits; i-- > 0; v >>= 4) out[i] = hex[v & 15];
    return out + digits;
}

void model_guid(const sim_model *m, uint64_t serial, char out[40])
{
    /* {host-------mix--mix--ser-serial------}: unique per (host, serial), and no printf on
     * the per-event path. */
    uint64_t mix = mamori_hash64(&serial, sizeof serial) ^ m->host_hash;
    char *p = out;
    *p++ = '{';
    p = put_hex_digits(p, m->host_hash >> 32, 8);
    *p++ = '-';
    p = put_hex_digits(p, mix >> 48, 4);
    *p++ = '-';
    p = put_hex_digits(p, mix >> 32, 4);
    *p++ = '-';
    p = put_hex_digits(p, serial >> 32, 4);
    *p++ = '-';
    p = put_hex_digits(p, serial, 12);
    *p++ = '}';
    *p = '\0';
}

void model_expand(const sim_model *m, const char *p, uint64_t seed, buf *out)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    static const char hex[] = "0123456789abcdef";
    const char *run = p;
    while ((p = strchr(p, '{'))) {
        if (!p[1] || p[2] != '}' || !strchr("USRHN", p[1])) {
            p++;
            continue;
        }
        buf_append(out, run, (size_t)(p - run));
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t r = seed >> 16;
        switch (p[1]) {
        case 'U': buf_puts(out, m->user); break;
        case 'S': buf_puts(out, m->sid); break;
        case 'R':
            buf_reserve(out, 8);
            for (int i = 0; i < 8; i++, r /= 62) out->data[out->len++] = alnum[r % 62];
            break;
        case 'H':
            buf_reserve(out, 6);
            for (int i = 0; i < 6; i++, r >>= 4) out->data[out->len++] = hex[r & 15];
            break;
        default: buf_put_u64(out, 1 + r % 999); break;
        }
        p += 3;
        run = p;
    }
    buf_puts(out, run);
}

static uint32_t new_pid(sim_model *m)
{
    if (!m->host->windows) {
        m->next_linux_pid += 1 + sim_rng_below(&m->rng, 40);
        if (m->next_linux_pid > 4000000) m->next_linux_pid = 1000;
        return m->next_linux_pid;
    }
    return 4 * (200 + sim_rng_below(&m->rng, 6000));
}

static model_proc *spawn(sim_model *m, uint8_t tmpl, const model_proc *parent)
{
    MAMORI_ASSERT(m->proc_count < MODEL_PROCS_MAX);
    const proc_template *t = &model_templates[tmpl];
    model_proc *p = &m->procs[m->proc_count++];
    memset(p, 0, sizeof *p);
    p->tmpl = tmpl;
    p->cmdline = (uint8_t)sim_rng_below(&m->rng, t->cmdline_count);
    p->user = t->user;
    p->pid = m->proc_count == 1 && m->host->windows ? 4 : new_pid(m); /* System */
    p->serial = ++m->next_serial;
    if (parent) {
        p->parent_tmpl = parent->tmpl;
        p->parent_cmdline = parent->cmdline;
        p->parent_pid = parent->pid;
        p->parent_serial = parent->serial;
    }
    return p;
}

static void render_host_json(sim_model *m)
{
    const sim_host *h = m->host;
    buf b;
    buf_init(&b);
    buf_puts(&b, "{\"name\":");
    json_write_string(&b, h->name, strlen(h->name));
    buf_printf(&b, ",\"id\":\"%s\",\"os\":{\"type\":\"%s\",\"version\":\"%s\"},\"ip\":[\"%s\"]}", h->id,
               h->windows ? "windows" : "linux", h->windows ? "10.0.19045" : "6.1.0", h->ip);
    MAMORI_ASSERT(b.len < sizeof m->host_json);
    memcpy(m->host_json, b.data, b.len);
    m->host_json_len = b.len;
    buf_fini(&b);
}

sim_model *model_create(const sim_host *host, uint64_t seed)
{
    tables_init();
    sim_model *m = mamori_xcalloc(1, sizeof *m);
    m->host = host;
    m->host_hash = mamori_hash64(host->name, strlen(host->name));
    m->rng = (seed ^ m->host_hash) | 1;
    m->next_linux_pid = 1000;
    m->record_number = 100000 + sim_rng_below(&m->rng, 1000000);
    snprintf(m->user, sizeof m->user, "%s.%s", first_names[m->host_hash % MAMORI_ARRAY_LEN(first_names)],
             last_names[(m->host_hash >> 20) % MAMORI_ARRAY_LEN(last_names)]);
    snprintf(m->sid, sizeof m->sid, "S-1-5-21-1004336348-1177238915-682003330-%u", 1000 + host->index % 50000);
    render_host_json(m);
    /* The long-lived base processes. */
    const uint8_t(*base)[2] = host->windows ? model_windows_base : model_linux_base;
    for (uint32_t i = 0; base[i][0]; i++) {
        uint8_t parent = base[i][1];
        spawn(m, base[i][0], parent < m->proc_count ? &m->procs[parent] : NULL);
    }
    m->base_count = m->proc_count;
    return m;
}

void model_destroy(sim_model *m) { free(m); }

static uint32_t child_count(const proc_template *t)
{
    uint32_t n = 0;
    while (n < TEMPLATE_CHILDREN_MAX && t->children[n]) n++;
    return n;
}

/* A live process matching `want` (NULL: any); falls back to any. */
static uint32_t pick_proc(sim_model *m, bool (*want)(const proc_template *))
{
    for (int tries = 0; tries < 6; tries++) {
        uint32_t i = sim_rng_below(&m->rng, m->proc_count);
        if (!want || want(&model_templates[m->procs[i].tmpl])) return i;
    }
    for (uint32_t i = 0; i < m->proc_count; i++)
        if (!want || want(&model_templates[m->procs[i].tmpl])) return i;
    return sim_rng_below(&m->rng, m->proc_count);
}

static bool has_children(const proc_template *t) { return t->children[0] != 0; }
static bool uses_network(const proc_template *t) { return t->net != NET_NONE; }
static bool writes_registry(const proc_template *t) { return t->registry; }

static const net_dest *pick_dest(sim_model *m, uint8_t profile)
{
    uint32_t start = sim_rng_below(&m->rng, model_net_dest_count);
    for (uint32_t k = 0; k < model_net_dest_count; k++) {
        const net_dest *d = &model_net_dests[(start + k) % model_net_dest_count];
        if (d->profile == profile) return d;
    }
    return &model_net_dests[start];
}

static enum activity_kind pick_kind(sim_model *m)
{
    uint32_t live = m->proc_count - m->base_count;
    if (live < 4) return ACT_PROCESS_START;
    const uint8_t *mix = m->host->windows ? windows_mix : linux_mix;
    uint32_t r = sim_rng_below(&m->rng, 100);
    enum activity_kind k = ACT_PROCESS_START;
    for (uint32_t i = 0; i < ACT_KINDS; i++) {
        if (r < mix[i]) {
            k = (enum activity_kind)i;
            break;
        }
        r -= mix[i];
    }
    if (k == ACT_PROCESS_START && m->proc_count == MODEL_PROCS_MAX) k = ACT_PROCESS_END;
    return k;
}

static void next_activity(sim_model *m, model_activity *act)
{
    memset(act, 0, sizeof *act);
    act->kind = pick_kind(m);
    act->choice_seed = sim_rng_next(&m->rng);
    switch (act->kind) {
    case ACT_PROCESS_START: {
        uint32_t pi = pick_proc(m, has_children);
        const proc_template *pt = &model_templates[m->procs[pi].tmpl];
        uint32_t n = child_count(pt);
        uint8_t child = n ? pt->children[sim_rng_below(&m->rng, n)] : m->procs[pi].tmpl;
        act->proc = spawn(m, child, &m->procs[pi]);
        break;
    }
    case ACT_PROCESS_END: {
        uint32_t i = m->base_count + sim_rng_below(&m->rng, m->proc_count - m->base_count);
        uint32_t last = m->proc_count - 1;
        if (m->last_dns_proc == i) m->last_dns = NULL;
        else if (m->last_dns_proc == last) m->last_dns_proc = i;
        m->ended = m->procs[i];
        m->procs[i] = m->procs[last]; /* order does not matter */
        m->proc_count--;
        act->proc = &m->ended;
        break;
    }
    case ACT_FILE_CREATE:
    case ACT_FILE_DELETE: {
        act->proc = &m->procs[pick_proc(m, NULL)];
        uint8_t profile = model_templates[act->proc->tmpl].files;
        act->choice = &model_file_paths[profile][sim_rng_below(&m->rng, model_file_path_counts[profile])];
        break;
    }
    case ACT_NETWORK:
        if (m->last_dns && m->last_dns_proc < m->proc_count && sim_rng_below(&m->rng, 2)) {
            act->proc = &m->procs[m->last_dns_proc]; /* the lookup, then the connection */
            act->dest = m->last_dns;
            m->last_dns = NULL;
        } else {
            act->proc = &m->procs[pick_proc(m, uses_network)];
            act->dest = pick_dest(m, model_templates[act->proc->tmpl].net);
        }
        act->source_port = (uint16_t)(49152 + sim_rng_below(&m->rng, 16383));
        break;
    case ACT_DNS: {
        uint32_t i = pick_proc(m, uses_network);
        act->proc = &m->procs[i];
        act->dest = pick_dest(m, model_templates[act->proc->tmpl].net);
        m->last_dns = act->dest;
        m->last_dns_proc = i;
        break;
    }
    case ACT_REGISTRY:
        act->proc = &m->procs[pick_proc(m, writes_registry)];
        act->choice = &model_registry[sim_rng_below(&m->rng, model_registry_count)];
        break;
    case ACT_LIBRARY: {
        act->proc = &m->procs[pick_proc(m, NULL)];
        uint8_t profile = model_templates[act->proc->tmpl].dlls;
        /* Every process loads the base DLLs too. */
        if (profile != DLLS_LINUX && sim_rng_below(&m->rng, 3) == 0) profile = DLLS_BASE;
        act->choice = &model_dlls[profile][sim_rng_below(&m->rng, model_dll_counts[profile])];
        break;
    }
    default: mamori_panic(__FILE__, __LINE__, "activity kind %d", (int)act->kind);
    }
}

void model_render(sim_model *m, enum sim_format format, int64_t now_us, buf *out)
{
    model_activity act;
    next_activity(m, &act);
    m->record_number++;
    if (format == SIM_FORMAT_WINLOG && m->host->windows)
        render_winlog(m, &act, now_us, out);
    else
        render_ecs(m, &act, now_us, out);
}

/* bench/sim/response.c — the agent side of response actions (docs/response.md §2): COMMAND
 * in, RESULT out ("running", then one final), executed for real on the sandbox (sandbox.c)
 * and isolation (isolation.c, or recorded state). One command at a time per agent, in
 * order; fetch_file streams ≤ 1 MiB chunks as the connection drains; the last 1024
 * finished ids are remembered so a redelivered command is answered, never re-run (§2.3). */
#include "sim.h"
#include "sandbox.h"

#include "core/clock.h"
#include "core/frame.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#define MOD "sim"
#define DONE_MAX 1024u               /* finished ids remembered per agent (§2.3: at least 1024) */
#define ACTION_ID_MAX 64u
#define CHUNK_BYTES_MAX (1024u * 1024) /* §2.2 */
#define PENDING_MAX 100000u          /* commands waiting behind a transfer, per agent */
#define OUTPUT_MARGIN (16u * 1024)   /* frame room kept beside a result's output */
#define FETCH_DEFAULT_MAX (1ull << 32)
#define ALLOW_MAX 32u

typedef struct done_entry {
    char id[ACTION_ID_MAX + 1];
    bool fetch;      /* answered by sending the file again, then a fresh final result */
    char *final;     /* the final RESULT payload; owned */
    uint32_t final_len;
} done_entry;

typedef struct transfer {
    bool active;
    int fd;
    uint64_t seq;
    char id[ACTION_ID_MAX + 1];
    char *path; /* owned, as requested */
    size_t path_len;
    uint64_t size; /* at open: what is sent */
    uint64_t sent;
    EVP_MD_CTX *md;
} transfer;

struct sim_response {
    done_entry *done; /* ring, grows to DONE_MAX */
    uint32_t done_cap;
    uint32_t done_next;
    uint32_t done_count;
    buf pending; /* commands waiting: u64 seq | u32 len | payload */
    size_t pending_off;
    uint32_t pending_count;
    transfer xfer;
};

const char *agent_isolation_name(const sim_agent *a) { return a->isolated ? "isolated" : "none"; }

static sim_response *state_of(sim_agent *a)
{
    if (!a->response) {
        a->response = mamori_xcalloc(1, sizeof *a->response);
        buf_init(&a->response->pending);
        a->response->xfer.fd = -1;
    }
    return a->response;
}

static void transfer_end(transfer *x)
{
    if (x->fd >= 0) close(x->fd);
    x->fd = -1;
    EVP_MD_CTX_free(x->md);
    x->md = NULL;
    free(x->path);
    x->path = NULL;
    x->active = false;
}

void response_on_disconnect(sim_agent *a)
{
    sim_response *r = a->response;
    if (!r) return;
    /* The server sends what is not final again on the next connection (§1). */
    transfer_end(&r->xfer);
    buf_clear(&r->pending);
    r->pending_off = 0;
    r->pending_count = 0;
}

void response_free(sim_agent *a)
{
    sim_response *r = a->response;
    if (!r) return;
    transfer_end(&r->xfer);
    for (uint32_t i = 0; i < r->done_count; i++) free(r->done[i].final);
    free(r->done);
    buf_fini(&r->pending);
    free(r);
    a->response = NULL;
}

static const done_entry *find_done(const sim_response *r, const char *id)
{
    for (uint32_t i = 0; i < r->done_count; i++)
        if (strcmp(r->done[i].id, id) == 0) return &r->done[i];
    return NULL;
}

static void remember(sim_response *r, const char *id, bool fetch, const buf *final)
{
    if (!find_done(r, id) && r->done_count < DONE_MAX && r->done_count == r->done_cap) {
        r->done_cap = r->done_cap ? MAMORI_MIN(r->done_cap * 2, DONE_MAX) : 16;
        r->done = mamori_xrealloc(r->done, r->done_cap * sizeof *r->done);
    }
    done_entry *e = (done_entry *)find_done(r, id); /* a fetch answered again */
    if (e) {
        free(e->final);
    } else if (r->done_count < DONE_MAX) {
        e = &r->done[r->done_count++];
    } else {
        e = &r->done[r->done_next]; /* oldest */
        r->done_next = (r->done_next + 1) % DONE_MAX;
        free(e->final);
    }
    snprintf(e->id, sizeof e->id, "%s", id);
    e->fetch = fetch;
    e->final = mamori_xmalloc(final->len ? final->len : 1);
    memcpy(e->final, final->data, final->len);
    e->final_len = (uint32_t)final->len;
}

static void queue_result(sim_agent *a, uint64_t seq, const buf *payload)
{
    conn_queue_frame_flags(a, FRAME_RESULT, 0, seq, payload->data, payload->len);
}

static void result_head(buf *b, const char *id, const char *status)
{
    buf_clear(b);
    buf_puts(b, "{\"id\":");
    json_write_string(b, id, strlen(id));
    buf_printf(b, ",\"status\":\"%s\"", status);
}

/* Sends the final result, remembers it, counts it. output: the output object, or NULL
 * with error set. */
static void finish(sim_worker *w, sim_agent *a, uint64_t seq, const char *id, bool fetch, const buf *output,
                   const char *error)
{
    buf b;
    buf_init(&b);
    if (error) {
        result_head(&b, id, "failed");
        buf_puts(&b, ",\"error\":");
        json_write_string(&b, error, strlen(error));
        buf_putc(&b, '}');
        STAT_ADD(&w->counters, results_failed, 1);
    } else {
        result_head(&b, id, "succeeded");
        buf_puts(&b, ",\"output\":");
        buf_append(&b, output->data, output->len);
        buf_putc(&b, '}');
        STAT_ADD(&w->counters, results_succeeded, 1);
    }
    queue_result(a, seq, &b);
    remember(state_of(a), id, fetch, &b);
    buf_fini(&b);
}

/* ---- isolation ---- */

/* "1.2.3.4:7443" or "[::1]:7443" → address; false for anything else (names included:
 * an isolated host resolves nothing). */
static bool parse_endpoint(const char *s, size_t len, struct sockaddr_storage *out)
{
    char text[128];
    if (len == 0 || len >= sizeof text) return false;
    memcpy(text, s, len);
    text[len] = '\0';
    char *host = text, *port;
    if (text[0] == '[') {
        char *close = strchr(text, ']');
        if (!close || close[1] != ':') return false;
        *close = '\0';
        host = text + 1;
        port = close + 2;
    } else {
        port = strrchr(text, ':');
        if (!port) return false;
        *port++ = '\0';
    }
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    if (*end || p == 0 || p > 65535) return false;
    memset(out, 0, sizeof *out);
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)p);
        return true;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
        return true;
    }
    return false;
}

/* Enforces `isolated`. allow: the args.allow array of an isolate command, or NULL. The
 * endpoint this agent is configured with and the peer of its current connection are
 * always allowed (§2.1). Returns 0, or -1 with err. */
static int set_isolation(sim_worker *w, sim_agent *a, bool isolated, const json_value *allow, char *err,
                         size_t err_len)
{
    const sim_run *run = w->run;
    if (run->opt.isolation_nft) {
        if (isolated) {
            struct sockaddr_storage addrs[ALLOW_MAX];
            size_t n = 0;
            addrs[n++] = run->target.addr;
            struct sockaddr_storage peer;
            socklen_t peer_len = sizeof peer;
            if (a->fd >= 0 && getpeername(a->fd, (struct sockaddr *)&peer, &peer_len) == 0) addrs[n++] = peer;
            if (allow && allow->type == JSON_ARRAY) {
                for (uint32_t i = 0; i < allow->len && n < ALLOW_MAX; i++) {
                    const json_value *v = &allow->items[i];
                    if (v->type == JSON_STRING && parse_endpoint(v->str, v->len, &addrs[n])) n++;
                    else
                        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "agent %s: isolate: allow entry %u is not IP:PORT, "
                                        "skipped", a->identity->agent_id, i);
                }
            }
            if (isolation_nft_apply(addrs, n, err, err_len) != 0) return -1;
        } else if (isolation_nft_remove(err, err_len) != 0) {
            return -1;
        }
    }
    if (a->isolated != isolated) {
        STAT_ADD(&w->counters, isolation_changes, 1);
        if (isolated) STAT_ADD(&w->counters, isolated, 1);
        else STAT_SUB(&w->counters, isolated, 1);
    }
    a->isolated = isolated;
    /* Reported at once (a heartbeat), not only in the next periodic one. */
    a->report_isolation = true;
    return 0;
}

void response_apply_desired(sim_worker *w, sim_agent *a, bool isolated)
{
    if (a->isolated == isolated) return;
    char err[SANDBOX_ERROR_MAX];
    if (set_isolation(w, a, isolated, NULL, err, sizeof err) != 0)
        LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 5, "agent %s: cannot apply WELCOME isolation %s: %s",
                        a->identity->agent_id, isolated ? "isolated" : "none", err);
    else
        LOG_INFO(MOD, "agent %s: isolation %s (from WELCOME)", a->identity->agent_id, agent_isolation_name(a));
}

/* ---- fetch_file ---- */

static void start_fetch(sim_worker *w, sim_agent *a, uint64_t seq, const char *id, const char *path, size_t path_len,
                        uint64_t max_bytes)
{
    char err[SANDBOX_ERROR_MAX];
    int fd;
    uint64_t size;
    if (sandbox_open_file(w->run->sandbox, path, path_len, max_bytes, &fd, &size, err, sizeof err) != 0) {
        finish(w, a, seq, id, true, NULL, err);
        return;
    }
    transfer *x = &state_of(a)->xfer;
    x->active = true;
    x->fd = fd;
    x->seq = seq;
    snprintf(x->id, sizeof x->id, "%s", id);
    x->path = mamori_xstrndup(path, path_len);
    x->path_len = path_len;
    x->size = size;
    x->sent = 0;
    x->md = EVP_MD_CTX_new();
    MAMORI_ASSERT(x->md && EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) == 1);
}

/* Queues chunks while the control queue is short; the final result after the last. */
static void pump_transfer(sim_worker *w, sim_agent *a)
{
    transfer *x = &a->response->xfer;
    uint32_t chunk_max = MAMORI_MIN(CHUNK_BYTES_MAX, a->max_frame_bytes);
    while (x->active && a->control.len < 2 * (size_t)chunk_max) {
        uint64_t want = MAMORI_MIN((uint64_t)chunk_max, x->size - x->sent);
        buf_reserve(&a->control, FRAME_HEADER_BYTES + want);
        uint8_t *header = (uint8_t *)a->control.data + a->control.len;
        ssize_t n = want ? pread(x->fd, header + FRAME_HEADER_BYTES, want, (off_t)x->sent) : 0;
        if (n < 0) {
            char err[SANDBOX_ERROR_MAX];
            snprintf(err, sizeof err, "%.*s: read: %s", (int)MAMORI_MIN(x->path_len, (size_t)300), x->path,
                     strerror(errno));
            /* Chunks already sent end with an empty last one, then the failure. */
            conn_queue_frame_flags(a, FRAME_RESULT, FRAME_FLAG_CHUNK | FRAME_FLAG_LAST, x->seq, NULL, 0);
            char id[ACTION_ID_MAX + 1];
            snprintf(id, sizeof id, "%s", x->id);
            uint64_t seq = x->seq;
            transfer_end(x);
            finish(w, a, seq, id, true, NULL, err);
            return;
        }
        /* A file that shrank since it was opened ends early: what was sent is the file. */
        bool last = n == 0 || x->sent + (uint64_t)n >= x->size;
        EVP_DigestUpdate(x->md, header + FRAME_HEADER_BYTES, (size_t)n);
        x->sent += (uint64_t)n;
        frame_header h = {.length = (uint32_t)n, .type = FRAME_RESULT,
                          .flags = (uint8_t)(FRAME_FLAG_CHUNK | (last ? FRAME_FLAG_LAST : 0)), .seq = x->seq};
        frame_header_encode(&h, header);
        a->control.len += FRAME_HEADER_BYTES + (size_t)n;
        STAT_ADD(&w->counters, file_bytes_sent, n);
        if (!last) continue;
        unsigned char md[32];
        unsigned int md_len = 0;
        EVP_DigestFinal_ex(x->md, md, &md_len);
        char hex[65];
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
        buf out;
        buf_init(&out);
        buf_puts(&out, "{\"path\":");
        json_write_string(&out, x->path, x->path_len);
        buf_printf(&out, ",\"size\":%llu,\"sha256\":\"%s\"}", (unsigned long long)x->sent, hex);
        char id[ACTION_ID_MAX + 1];
        snprintf(id, sizeof id, "%s", x->id);
        uint64_t seq = x->seq;
        transfer_end(x);
        finish(w, a, seq, id, true, &out, NULL);
        buf_fini(&out);
    }
}

/* ---- one command ---- */

static const json_value *get(const json_value *obj, const char *key)
{
    return obj && obj->type == JSON_OBJECT ? json_object_get(obj, key, strlen(key)) : NULL;
}

/* A string argument as (pointer, length); false when missing or not a string. */
static bool get_string(const json_value *args, const char *key, const char **s, size_t *len)
{
    const json_value *v = get(args, key);
    if (!v || v->type != JSON_STRING) return false;
    *s = v->str;
    *len = v->len;
    return true;
}

static int get_int(const json_value *args, const char *key, int64_t *out)
{
    const json_value *v = get(args, key);
    if (!v) return -ENOENT;
    if (v->type != JSON_NUMBER || !(v->flags & JSON_FLAG_INT)) return -EINVAL;
    *out = v->num.i;
    return 0;
}

static void run_command(sim_worker *w, sim_agent *a, uint64_t seq, const uint8_t *payload, uint32_t len)
{
    sim_run *run = w->run;
    sim_response *r = state_of(a);
    arena_reset(&w->json_arena);
    json_value root;
    json_error jerr;
    const json_value *idv = NULL;
    if (json_parse(w->json, &w->json_arena, (const char *)payload, len, &root, &jerr) == 0 && root.type == JSON_OBJECT)
        idv = get(&root, "id");
    char id[ACTION_ID_MAX + 1];
    if (!idv || idv->type != JSON_STRING || idv->len == 0 || idv->len > ACTION_ID_MAX) {
        /* Nothing to answer to but the command number. */
        snprintf(id, sizeof id, "%llu", (unsigned long long)seq);
        finish(w, a, seq, id, false, NULL, "bad COMMAND: not a JSON object with a string id of 1-64 bytes");
        return;
    }
    memcpy(id, idv->str, idv->len);
    id[idv->len] = '\0';

    const done_entry *done = find_done(r, id);
    const json_value *action_v = get(&root, "action");
    const json_value *args = get(&root, "args");
    if (done && !done->fetch) {
        /* §2.3: the same final RESULT, nothing executed again. */
        STAT_ADD(&w->counters, commands_repeated, 1);
        conn_queue_frame_flags(a, FRAME_RESULT, 0, seq, done->final, done->final_len);
        return;
    }
    if (done) STAT_ADD(&w->counters, commands_repeated, 1);

    char err[SANDBOX_ERROR_MAX];
    if (!action_v || action_v->type != JSON_STRING) {
        finish(w, a, seq, id, false, NULL, "bad COMMAND: no action");
        return;
    }
    const json_value *expires = get(&root, "expires_at");
    int64_t expires_us;
    if (expires && expires->type == JSON_STRING && clock_parse_rfc3339(expires->str, expires->len, &expires_us) == 0 &&
        clock_wall_us() > expires_us) {
        snprintf(err, sizeof err, "expired at %.*s before the agent started it", (int)MAMORI_MIN(expires->len, 40u),
                 expires->str);
        finish(w, a, seq, id, false, NULL, err);
        return;
    }

    if (!done) {
        buf running;
        buf_init(&running);
        result_head(&running, id, "running");
        buf_putc(&running, '}');
        queue_result(a, seq, &running);
        buf_fini(&running);
    }

    char action[32];
    snprintf(action, sizeof action, "%.*s", (int)MAMORI_MIN(action_v->len, 31u), action_v->str);
    buf out;
    buf_init(&out);
    const char *path = NULL;
    size_t path_len = 0;
    int64_t n;
    int rc = -1;
    bool fetch = false;
    err[0] = '\0';
    if (strcmp(action, "isolate") == 0 || strcmp(action, "release") == 0) {
        bool isolated = action[0] == 'i';
        rc = set_isolation(w, a, isolated, get(args, "allow"), err, sizeof err);
        if (!rc) buf_printf(&out, "{\"isolation\":\"%s\"}", agent_isolation_name(a));
    } else if (strcmp(action, "list_processes") == 0) {
        rc = sandbox_list_processes(run->sandbox, &out, err, sizeof err);
    } else if (strcmp(action, "kill_process") == 0) {
        const char *entity;
        size_t entity_len;
        int pid_rc = get_int(args, "pid", &n);
        if (pid_rc == 0)
            rc = sandbox_kill_process(run->sandbox, n, NULL, 0, &out, err, sizeof err);
        else if (pid_rc == -EINVAL)
            snprintf(err, sizeof err, "args.pid: not an integer");
        else if (get_string(args, "entity_id", &entity, &entity_len))
            rc = sandbox_kill_process(run->sandbox, -1, entity, entity_len, &out, err, sizeof err);
        else
            snprintf(err, sizeof err, "args: pid or entity_id required");
    } else if (!get_string(args, "path", &path, &path_len) &&
               (strcmp(action, "delete_file") == 0 || strcmp(action, "fetch_file") == 0 ||
                strcmp(action, "list_dir") == 0)) {
        snprintf(err, sizeof err, "args.path: missing or not a string");
    } else if (strcmp(action, "delete_file") == 0) {
        const char *sha = NULL;
        size_t sha_len = 0;
        char sha_text[65];
        bool has_sha = get_string(args, "sha256", &sha, &sha_len);
        if (has_sha && sha_len != 64) {
            snprintf(err, sizeof err, "args.sha256: not 64 hex digits");
        } else {
            if (has_sha) {
                memcpy(sha_text, sha, 64);
                sha_text[64] = '\0';
            }
            rc = sandbox_delete_file(run->sandbox, path, path_len, has_sha ? sha_text : NULL, &out, err, sizeof err);
        }
    } else if (strcmp(action, "fetch_file") == 0) {
        int64_t max = (int64_t)FETCH_DEFAULT_MAX;
        int max_rc = get_int(args, "max_bytes", &max);
        if (max_rc == -EINVAL || (max_rc == 0 && max < 0)) {
            snprintf(err, sizeof err, "args.max_bytes: not a non-negative integer");
        } else {
            fetch = true;
            start_fetch(w, a, seq, id, path, path_len, (uint64_t)max);
        }
    } else if (strcmp(action, "list_dir") == 0) {
        int64_t depth = 1;
        if (get_int(args, "depth", &depth) == -EINVAL) snprintf(err, sizeof err, "args.depth: not an integer");
        else if (depth < 1 || depth > SANDBOX_DEPTH_MAX)
            snprintf(err, sizeof err, "args.depth: %lld out of range 1-%u", (long long)depth, SANDBOX_DEPTH_MAX);
        else {
            size_t cap = a->max_frame_bytes > 2 * OUTPUT_MARGIN ? a->max_frame_bytes - OUTPUT_MARGIN
                                                                : a->max_frame_bytes / 2;
            rc = sandbox_list_dir(run->sandbox, path, path_len, (uint32_t)depth, cap, &out, err, sizeof err);
        }
    } else {
        snprintf(err, sizeof err, "unknown action '%s'", action);
    }
    if (!fetch) finish(w, a, seq, id, false, rc == 0 ? &out : NULL, rc == 0 ? NULL : err);
    buf_fini(&out);
}

static void run_pending(sim_worker *w, sim_agent *a)
{
    sim_response *r = a->response;
    while (r->pending_off < r->pending.len && !r->xfer.active) {
        const uint8_t *p = (const uint8_t *)r->pending.data + r->pending_off;
        uint64_t seq = mamori_get_be64(p);
        uint32_t len = mamori_get_be32(p + 8);
        r->pending_off += 12 + (size_t)len;
        r->pending_count--;
        run_command(w, a, seq, p + 12, len);
    }
    if (r->pending_off == r->pending.len) {
        buf_clear(&r->pending);
        r->pending_off = 0;
    }
}

void response_on_command(sim_worker *w, sim_agent *a, uint64_t seq, const uint8_t *payload, uint32_t len)
{
    STAT_ADD(&w->counters, commands, 1);
    sim_response *r = state_of(a);
    if (r->xfer.active || r->pending_off < r->pending.len) {
        if (r->pending_count >= PENDING_MAX) {
            LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "agent %s: %u commands waiting: command %llu dropped (the "
                            "server sends it again on the next connection)",
                            a->identity->agent_id, PENDING_MAX, (unsigned long long)seq);
            return;
        }
        uint8_t head[12];
        mamori_put_be64(head, seq);
        mamori_put_be32(head + 8, len);
        buf_append(&r->pending, head, sizeof head);
        buf_append(&r->pending, payload, len);
        r->pending_count++;
        return;
    }
    run_command(w, a, seq, payload, len);
    if (r->xfer.active) pump_transfer(w, a);
}

void response_pump(sim_worker *w, sim_agent *a)
{
    if (!a->response || a->state != AGENT_READY) return;
    if (a->response->xfer.active) pump_transfer(w, a);
    if (!a->response->xfer.active) run_pending(w, a);
    if (a->response->xfer.active) pump_transfer(w, a);
}

/* ingest/response.c — the connection side of remote response (docs/response.md §2): the
 * capabilities and isolation an agent announces in HELLO and heartbeats, COMMAND frames
 * handed over by the response service through the thread's mailbox, and RESULTs — JSON
 * answers matched to the commands sent on this connection, and fetch_file chunks hashed as
 * they arrive and checked against the size and sha256 the agent announces. What this file
 * learns goes to the response service (on_agent_event), which persists it; nothing here
 * touches the store. */
#include "internal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "ingest"

static uint32_t slot_of(ingest_thread *t, conn *c) { return (uint32_t)(c - t->conns); }

static void event_base(ingest_thread *t, conn *c, ingest_agent_event *ev, enum ingest_agent_event_kind kind)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = kind;
    ev->tenant = c->tenant;
    ev->agent_id = c->agent_id;
    ev->tenant_hash = c->tenant_hash;
    ev->agent_hash = c->agent_hash;
    ev->route = (ingest_route){t->index, slot_of(t, c), c->gen};
    ev->at_us = clock_wall_us();
    ev->isolation = c->isolation;
}

static void emit(ingest_thread *t, ingest_agent_event *ev)
{
    ingest *in = t->owner;
    if (in->on_agent_event) in->on_agent_event(in->response_ctx, ev);
    free(ev->file); /* not taken (no service): dropped */
    ev->file = NULL;
}

int conn_resp_desired_isolation(ingest *in, const conn *c)
{
    return in->desired_isolation ? in->desired_isolation(in->response_ctx, c->tenant_hash, c->agent_hash) : 0;
}

static int isolation_of(const json_value *v)
{
    if (!json_is_string(v)) return INGEST_ISOLATION_UNKNOWN;
    if (v->len == 4 && !memcmp(v->str, "none", 4)) return 0;
    if (v->len == 8 && !memcmp(v->str, "isolated", 8)) return 1;
    return INGEST_ISOLATION_UNKNOWN;
}

void conn_resp_hello(ingest_thread *t, conn *c, const json_value *hello, const char *raw, size_t raw_len)
{
    const json_value *caps = json_object_get(hello, "capabilities", 12);
    c->caps = 0;
    if (caps && caps->type == JSON_ARRAY)
        for (uint32_t i = 0; i < caps->len; i++) {
            const json_value *v = &caps->items[i];
            if (!json_is_string(v)) continue;
            if (v->len == 8 && !memcmp(v->str, "response", 8)) c->caps |= INGEST_CAP_RESPONSE;
            if (v->len == 9 && !memcmp(v->str, "isolation", 9)) c->caps |= INGEST_CAP_ISOLATION;
        }
    c->isolation = (int8_t)isolation_of(json_object_get(hello, "isolation", 9));
    ingest_agent_event ev;
    event_base(t, c, &ev, INGEST_AGENT_ONLINE);
    ev.caps = c->caps;
    ev.hello = raw;
    ev.hello_len = raw_len;
    ev.peer = c->peer;
    ev.server_address = c->local;
    c->online_told = true;
    emit(t, &ev);
}

void conn_resp_ping(ingest_thread *t, conn *c, const uint8_t *payload, uint32_t len)
{
    arena_reset(&t->scratch);
    json_value v;
    json_error jerr;
    /* a heartbeat that is not JSON is tolerated (PING payloads are "empty or JSON") */
    if (json_parse(t->parser, &t->scratch, (const char *)payload, len, &v, &jerr) != 0 || v.type != JSON_OBJECT) return;
    int iso = isolation_of(json_object_get(&v, "isolation", 9));
    if (iso == INGEST_ISOLATION_UNKNOWN || iso == c->isolation) return;
    c->isolation = (int8_t)iso;
    ingest_agent_event ev;
    event_base(t, c, &ev, INGEST_AGENT_ISOLATION);
    emit(t, &ev);
}

void conn_resp_close(ingest_thread *t, conn *c)
{
    if (!c->online_told) return;
    c->online_told = false;
    ingest_agent_event ev;
    event_base(t, c, &ev, INGEST_AGENT_OFFLINE);
    emit(t, &ev);
}

static void xfer_reset(conn *c)
{
    c->xfer_cmd = 0;
    c->xfer_done = false;
    buf_fini(&c->xfer);
    if (c->xfer_sha) EVP_MD_CTX_free(c->xfer_sha);
    c->xfer_sha = NULL;
}

void conn_resp_release(conn *c)
{
    xfer_reset(c);
    free(c->cmds);
    c->cmds = NULL;
    c->cmd_count = c->cmd_cap = 0;
}

static sent_command *find_cmd(conn *c, uint64_t cmd_no)
{
    for (uint32_t i = 0; i < c->cmd_count; i++)
        if (c->cmds[i].cmd_no == cmd_no) return &c->cmds[i];
    return NULL;
}

/* ---- COMMAND ---- */

void conn_resp_command(ingest_thread *t, conn *c, const inbox_msg *m)
{
    if (!(c->caps & INGEST_CAP_RESPONSE) || find_cmd(c, m->seq)) return;
    if (c->cmd_count == INGEST_MAX_COMMANDS_PER_CONN) {
        /* forget the oldest answered command; none answered: the service sends too much */
        uint32_t i = 0;
        while (i < c->cmd_count && !c->cmds[i].final) i++;
        if (i == c->cmd_count) {
            LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "agent=%s: %u commands unanswered; command %llu not sent",
                            c->agent_id, c->cmd_count, (unsigned long long)m->seq);
            return;
        }
        memmove(&c->cmds[i], &c->cmds[i + 1], (c->cmd_count - i - 1) * sizeof *c->cmds);
        c->cmd_count--;
    }
    if (c->cmd_count == c->cmd_cap) { /* most agents get a few commands: start small */
        c->cmd_cap = c->cmd_cap ? MAMORI_MIN(c->cmd_cap * 2, INGEST_MAX_COMMANDS_PER_CONN) : 8;
        c->cmds = mamori_xrealloc(c->cmds, c->cmd_cap * sizeof *c->cmds);
    }
    sent_command *sc = &c->cmds[c->cmd_count++];
    *sc = (sent_command){.cmd_no = m->seq, .max_bytes = m->max_bytes, .fetch = m->fetch};
    memcpy(sc->action_id, m->action_id, sizeof sc->action_id);
    conn_send_frame(t, c, FRAME_COMMAND, 0, m->seq, m->payload, m->payload_len);
    COUNT(t, commands_sent, 1);
    loop_flush(t, c);
}

void ingest_send_command(ingest *in, const ingest_route *route, uint64_t cmd_no, const uint8_t action_id[16],
                         bool fetch, uint64_t max_bytes, const char *payload, size_t len)
{
    if (route->thread >= in->thread_count) return;
    inbox_msg m = {.kind = INBOX_COMMAND, .fetch = fetch, .slot = route->slot, .gen = route->gen, .seq = cmd_no,
                   .payload = mamori_xstrndup(payload, len), .payload_len = (uint32_t)len, .max_bytes = max_bytes};
    memcpy(m.action_id, action_id, sizeof m.action_id);
    loop_post(in, route->thread, &m);
}

/* ---- RESULT ---- */

static void hex32(const uint8_t *b, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[64] = '\0';
}

static void on_chunk(ingest_thread *t, conn *c, const frame_header *h, const uint8_t *payload)
{
    char reason[256];
    unsigned long long n = (unsigned long long)c->frames_in;
    sent_command *sc = find_cmd(c, h->seq);
    if (h->flags & FRAME_FLAG_ZSTD) {
        snprintf(reason, sizeof reason, "frame %llu: RESULT chunk must not be zstd-compressed", n);
        conn_violation(t, c, reason);
        return;
    }
    if (!sc || !sc->fetch || sc->final) {
        snprintf(reason, sizeof reason, "frame %llu: file chunk for command %llu, which is not a fetch_file in progress",
                 n, (unsigned long long)h->seq);
        conn_violation(t, c, reason);
        return;
    }
    if (c->xfer_cmd && c->xfer_cmd != h->seq) {
        snprintf(reason, sizeof reason, "frame %llu: file chunk for command %llu while command %llu is transferring", n,
                 (unsigned long long)h->seq, (unsigned long long)c->xfer_cmd);
        conn_violation(t, c, reason);
        return;
    }
    if (c->xfer_cmd && c->xfer_done) {
        snprintf(reason, sizeof reason, "frame %llu: file chunk for command %llu after its last chunk", n,
                 (unsigned long long)h->seq);
        conn_violation(t, c, reason);
        return;
    }
    if (!c->xfer_cmd) {
        c->xfer_cmd = h->seq;
        c->xfer_sha = EVP_MD_CTX_new();
        MAMORI_ASSERT(c->xfer_sha && EVP_DigestInit_ex(c->xfer_sha, EVP_sha256(), NULL) == 1);
    }
    if ((uint64_t)c->xfer.len + h->length > sc->max_bytes) {
        snprintf(reason, sizeof reason, "frame %llu: file of command %llu passes max_bytes %llu", n,
                 (unsigned long long)h->seq, (unsigned long long)sc->max_bytes);
        conn_violation(t, c, reason);
        return;
    }
    if (h->length) {
        buf_append(&c->xfer, payload, h->length);
        EVP_DigestUpdate(c->xfer_sha, payload, h->length);
    }
    if (h->flags & FRAME_FLAG_LAST) c->xfer_done = true;
    COUNT(t, file_chunks, 1);
}

/* zstd-compressed RESULT JSON into t->scratch, bounded. */
static int inflate(ingest_thread *t, const uint8_t *src, size_t len, size_t max, const char **out, size_t *out_len)
{
    unsigned long long size = ZSTD_getFrameContentSize(src, len);
    if (size == ZSTD_CONTENTSIZE_ERROR) return -EPROTO;
    size_t cap = size == ZSTD_CONTENTSIZE_UNKNOWN ? max : (size_t)MAMORI_MIN(size, (unsigned long long)max + 1);
    if (size != ZSTD_CONTENTSIZE_UNKNOWN && size > max) return -E2BIG;
    char *dst = arena_alloc(&t->scratch, cap + 1);
    ZSTD_DCtx_reset(t->zstd, ZSTD_reset_session_only);
    ZSTD_inBuffer in = {src, len, 0};
    ZSTD_outBuffer o = {dst, cap, 0};
    size_t ret = ZSTD_decompressStream(t->zstd, &o, &in);
    if (ZSTD_isError(ret)) return -EPROTO;
    if (ret != 0) return o.pos == o.size ? -E2BIG : -EPROTO;
    if (in.pos != in.size) return -EPROTO;
    *out = dst;
    *out_len = o.pos;
    return 0;
}

static bool sha_hex_eq(const json_value *v, const char *hex)
{
    if (!json_is_string(v) || v->len != 64) return false;
    for (uint32_t i = 0; i < 64; i++) {
        char ch = v->str[i];
        if (ch >= 'A' && ch <= 'F') ch = (char)(ch + 32);
        if (ch != hex[i]) return false;
    }
    return true;
}

void conn_resp_result(ingest_thread *t, conn *c, const frame_header *h, const uint8_t *payload)
{
    unsigned long long n = (unsigned long long)c->frames_in;
    char reason[320];
    if (h->flags & FRAME_FLAG_CHUNK) {
        on_chunk(t, c, h, payload);
        return;
    }
    if (h->flags & FRAME_FLAG_LAST) {
        snprintf(reason, sizeof reason, "frame %llu: RESULT flag 0x10 (last chunk) without 0x08 (chunk)", n);
        conn_violation(t, c, reason);
        return;
    }
    const mamori_config *cfg = t->owner->cfg;
    arena_reset(&t->scratch);
    const char *text = (const char *)payload;
    size_t text_len = h->length;
    bool too_big = false;
    if (h->flags & FRAME_FLAG_ZSTD) {
        int rc = inflate(t, payload, h->length, cfg->response.max_output_bytes, &text, &text_len);
        if (rc == -E2BIG) too_big = true;
        else if (rc) {
            snprintf(reason, sizeof reason, "frame %llu: RESULT payload is not one valid zstd frame", n);
            conn_violation(t, c, reason);
            return;
        }
    } else if (h->length > cfg->response.max_output_bytes) {
        too_big = true;
    }
    sent_command *sc = find_cmd(c, h->seq);
    COUNT(t, results_received, 1);
    json_value v;
    json_error jerr;
    if (too_big) {
        if (!sc || sc->final) {
            COUNT(t, results_unexpected, 1);
            return;
        }
        /* the answer is lost, the action is not: it fails with the reason */
        sc->final = true;
        char msg[160];
        snprintf(msg, sizeof msg, "RESULT over response.max_output_bytes (%u)", cfg->response.max_output_bytes);
        ingest_agent_event ev;
        event_base(t, c, &ev, INGEST_AGENT_RESULT);
        ev.cmd_no = sc->cmd_no;
        ev.action_id = sc->action_id;
        ev.status = INGEST_RESULT_FAILED;
        ev.error = msg;
        ev.error_len = strlen(msg);
        if (c->xfer_cmd == sc->cmd_no) xfer_reset(c);
        emit(t, &ev);
        return;
    }
    if (json_parse(t->parser, &t->scratch, text, text_len, &v, &jerr) != 0 || v.type != JSON_OBJECT) {
        snprintf(reason, sizeof reason, "frame %llu: bad RESULT: not a JSON object", n);
        conn_violation(t, c, reason);
        return;
    }
    const json_value *st = json_object_get(&v, "status", 6);
    enum ingest_result_status status;
    if (json_is_string(st) && st->len == 7 && !memcmp(st->str, "running", 7)) status = INGEST_RESULT_RUNNING;
    else if (json_is_string(st) && st->len == 9 && !memcmp(st->str, "succeeded", 9)) status = INGEST_RESULT_SUCCEEDED;
    else if (json_is_string(st) && st->len == 6 && !memcmp(st->str, "failed", 6)) status = INGEST_RESULT_FAILED;
    else {
        snprintf(reason, sizeof reason, "frame %llu: bad RESULT: status must be running, succeeded or failed", n);
        conn_violation(t, c, reason);
        return;
    }
    if (!sc || sc->final) {
        COUNT(t, results_unexpected, 1);
        LOG_RATELIMITED(LOG_LEVEL_INFO, MOD, 5, "agent=%s: RESULT for command %llu %s; ignored", c->agent_id,
                        (unsigned long long)h->seq, sc ? "already answered" : "not sent on this connection");
        return;
    }
    const json_value *id = json_object_get(&v, "id", 2);
    char idhex[33];
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        idhex[2 * i] = hex[sc->action_id[i] >> 4];
        idhex[2 * i + 1] = hex[sc->action_id[i] & 15];
    }
    idhex[32] = '\0';
    if (id && (!json_is_string(id) || id->len != 32 || memcmp(id->str, idhex, 32) != 0)) {
        COUNT(t, results_unexpected, 1);
        LOG_RATELIMITED(LOG_LEVEL_INFO, MOD, 5, "agent=%s: RESULT for command %llu names another action id; ignored",
                        c->agent_id, (unsigned long long)h->seq);
        return;
    }
    ingest_agent_event ev;
    event_base(t, c, &ev, INGEST_AGENT_RESULT);
    ev.cmd_no = sc->cmd_no;
    ev.action_id = sc->action_id;
    ev.status = status;
    buf out;
    buf_init(&out);
    const json_value *ov = json_object_get(&v, "output", 6);
    if (ov && ov->type != JSON_NULL) {
        json_write_value(&out, ov);
        ev.output = out.data;
        ev.output_len = out.len;
    }
    const json_value *ev_err = json_object_get(&v, "error", 5);
    if (json_is_string(ev_err)) {
        ev.error = ev_err->str;
        ev.error_len = ev_err->len;
    }
    char msg[256];
    if (status != INGEST_RESULT_RUNNING) sc->final = true;
    if (sc->fetch && status == INGEST_RESULT_SUCCEEDED) {
        /* the file is accepted only if what arrived is what the agent says it sent */
        const json_value *size = ov && ov->type == JSON_OBJECT ? json_object_get(ov, "size", 4) : NULL;
        const json_value *sha = ov && ov->type == JSON_OBJECT ? json_object_get(ov, "sha256", 6) : NULL;
        uint8_t digest[32];
        char got[65] = "";
        bool have = c->xfer_cmd == sc->cmd_no && c->xfer_done;
        if (have) {
            unsigned int dlen = 0;
            EVP_DigestFinal_ex(c->xfer_sha, digest, &dlen);
            hex32(digest, got);
        }
        const char *bad = NULL;
        if (!have) bad = "no complete file content was received";
        else if (!size || size->type != JSON_NUMBER || !(size->flags & JSON_FLAG_INT) || size->num.i < 0 ||
                 (uint64_t)size->num.i != c->xfer.len)
            bad = "size differs from the bytes received";
        else if (!sha_hex_eq(sha, got)) bad = "sha256 differs from the bytes received";
        if (bad) {
            COUNT(t, files_rejected, 1);
            snprintf(msg, sizeof msg, "integrity check failed: %s (%zu bytes received, sha256 %s)", bad,
                     have ? c->xfer.len : (size_t)0, have ? got : "-");
            ev.status = INGEST_RESULT_FAILED;
            ev.error = msg;
            ev.error_len = strlen(msg);
            ev.output = NULL;
            ev.output_len = 0;
        } else {
            /* hand the bytes over without copying them */
            ev.file_len = c->xfer.len;
            ev.file = c->xfer.data ? c->xfer.data : mamori_xmalloc(1);
            c->xfer.data = NULL;
            c->xfer.len = c->xfer.cap = 0;
            memcpy(ev.file_sha256, digest, sizeof digest);
        }
    }
    if (sc->final && c->xfer_cmd == sc->cmd_no) xfer_reset(c);
    emit(t, &ev);
    buf_fini(&out);
}

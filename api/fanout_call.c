/* api/fanout_call.c — calls to every store shard at once for the fan-out API (fanout.c,
 * fanout_search.c): libcurl multi, one handle per API thread keeping the TLS connections
 * open, TLS verified with api.shards_ca, the caller's bearer key forwarded, a timeout per
 * shard; a failed call becomes an error naming the shard. */
#include "fanout_internal.h"

#include "core/clock.h"
#include "core/event.h"
#include "core/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One multi handle per API thread, kept between requests: its connection cache keeps the
 * TLS connections to the shards open (a new handshake per shard and request costs more
 * than a needle query). Freed when the thread ends. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static pthread_key_t multi_key;
static void multi_free(void *m) { curl_multi_cleanup(m); }
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (pthread_key_create(&multi_key, multi_free) != 0) abort();
}

static CURLM *thread_multi(void)
{
    CURLM *m = pthread_getspecific(multi_key);
    if (!m) {
        m = curl_multi_init();
        if (!m) abort();
        curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, 64L);
        pthread_setspecific(multi_key, m);
    }
    return m;
}

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    buf *out = ctx;
    if (out->len + size * n > (size_t)512 << 20) return 0; /* a shard answer over 512 MiB: refuse */
    buf_append(out, p, size * n);
    return size * n;
}

static const char *shards_ca(const api *a)
{
    const char *ca = a->cfg->api.shards_ca;
    return ca && ca[0] ? ca : a->cfg->ingest.tls_ca;
}

/* Runs the active calls in parallel; method "GET" or "POST" (POST sends call->req). */
void fanout_calls_run(api_req *r, const char *method, shard_call *calls, uint32_t n)
{
    pthread_once(&curl_once, curl_init_once);
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
    char auth_line[256];
    snprintf(auth_line, sizeof auth_line, "Authorization: %s", auth ? auth : "");
    struct curl_slist *hdr = curl_slist_append(NULL, auth_line);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Accept: application/json");
    CURLM *m = thread_multi();
    CURL **easy = mamori_xcalloc(n ? n : 1, sizeof *easy);
    for (uint32_t i = 0; i < n; i++) {
        shard_call *c = &calls[i];
        if (!c->active) continue;
        buf_clear(&c->out);
        c->status = 0;
        c->ok = false;
        c->err[0] = '\0';
        CURL *h = easy[i] = curl_easy_init();
        buf_putc(&c->url, '\0');
        c->url.len--;
        curl_easy_setopt(h, CURLOPT_URL, c->url.data);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        if (!strcmp(method, "POST") || !strcmp(method, "PATCH")) {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            if (strcmp(method, "POST")) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->req.data ? c->req.data : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)c->req.len);
        }
        curl_easy_setopt(h, CURLOPT_CAINFO, shards_ca(r->a));
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &c->out);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)r->a->cfg->api.shard_timeout_ms);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->err);
        curl_easy_setopt(h, CURLOPT_PRIVATE, c);
        curl_multi_add_handle(m, h);
    }
    int running = 1;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK) break;
        if (running) curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        shard_call *c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (!c) continue;
        if (msg->data.result == CURLE_OK) {
            c->ok = true;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &c->status);
        } else if (!c->err[0]) {
            snprintf(c->err, sizeof c->err, "%s", curl_easy_strerror(msg->data.result));
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!easy[i]) continue;
        curl_multi_remove_handle(m, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    free(easy);
    curl_slist_free_all(hdr);
}

shard_call *fanout_calls_new(const api *a) { return fanout_calls_for(&a->cfg->api.shards); }

shard_call *fanout_calls_for(const config_list *nodes)
{
    uint32_t n = nodes->count;
    shard_call *calls = mamori_xcalloc(n ? n : 1, sizeof *calls);
    for (uint32_t i = 0; i < n; i++) {
        calls[i].no = i;
        calls[i].base = nodes->items[i];
        buf_init(&calls[i].url);
        buf_init(&calls[i].req);
        buf_init(&calls[i].out);
    }
    return calls;
}

void fanout_calls_free(shard_call *calls, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        buf_fini(&calls[i].url);
        buf_fini(&calls[i].req);
        buf_fini(&calls[i].out);
    }
    free(calls);
}

/* A shard's failure as this API's answer, naming the shard; false when the call is a 200. */
void fanout_call_url(shard_call *c, const char *path)
{
    buf_clear(&c->url);
    buf_puts(&c->url, c->base);
    while (c->url.len && c->url.data[c->url.len - 1] == '/') c->url.len--;
    buf_puts(&c->url, path);
    c->active = true;
}

bool fanout_call_failed(api_req *r, const shard_call *c, json_parser *p, arena *ar)
{
    if (!c->ok) {
        reply_error(r, 502, "shard_unavailable", "store shard %u (%s) did not answer: %s", c->no, c->base,
                    c->err[0] ? c->err : "transport error");
        return true;
    }
    if (c->status == 200) return false;
    json_value v;
    json_error jerr;
    const json_value *e = NULL, *code = NULL, *msg = NULL, *pos = NULL;
    if (json_parse(p, ar, c->out.data ? c->out.data : "", c->out.len, &v, &jerr) == 0 &&
        (e = json_object_get(&v, "error", 5)) != NULL) {
        code = json_object_get(e, "code", 4);
        msg = json_object_get(e, "message", 7);
        pos = json_object_get(e, "position", 8);
    }
    int mlen = json_is_string(msg) ? (int)MAMORI_MIN(msg->len, 400u) : 0;
    const char *mtext = json_is_string(msg) ? msg->str : "";
    if (c->status == 401 || c->status == 403) {
        reply_error(r, 502, "shard_refused",
                    "store shard %u (%s) refused the API key (%ld: %.*s); every node needs the same keys "
                    "(docs/scaling.md 6)",
                    c->no, c->base, c->status, mlen, mtext);
    } else if (c->status == 400 && json_is_string(code)) {
        /* the request is wrong for every shard alike: the shard's error as it is */
        char ctext[64];
        snprintf(ctext, sizeof ctext, "%.*s", (int)MAMORI_MIN(code->len, 63u), code->str);
        char mcopy[512];
        snprintf(mcopy, sizeof mcopy, "%.*s", mlen, mtext);
        int32_t position = pos && pos->type == JSON_NUMBER && (pos->flags & JSON_FLAG_INT) ? (int32_t)pos->num.i : -1;
        reply_error_at(r, 400, ctext, position, NULL, mcopy);
    } else if (c->status == 504) {
        reply_error(r, 504, "deadline_exceeded", "store shard %u (%s) passed its deadline: %.*s", c->no, c->base,
                    mlen, mtext);
    } else if (c->status == 429 || c->status == 503) {
        reply_error(r, 503, "overloaded", "store shard %u (%s) is busy (%ld): %.*s", c->no, c->base, c->status, mlen,
                    mtext);
    } else {
        reply_error(r, 502, "shard_error", "store shard %u (%s) answered %ld: %.*s", c->no, c->base, c->status, mlen,
                    mtext);
    }
    return true;
}

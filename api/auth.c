/* api/auth.c — API keys: random 256-bit secrets shown once, stored only as SHA-256
 * hashes in meta ("apikey/<hex>" → {id, tenant, role, name, created}); Bearer
 * authentication, roles (viewer < analyst < responder < admin) and a token bucket per key. */
#include "internal.h"

#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <event2/http.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const role_names[] = {NULL, "viewer", "analyst", "responder", "admin"};

int api_role_parse(const char *name, enum api_role *out)
{
    for (int i = 1; i <= API_ROLE_ADMIN; i++)
        if (name && strcmp(name, role_names[i]) == 0) {
            *out = (enum api_role)i;
            return 0;
        }
    return -EINVAL;
}

const char *api_role_name(enum api_role r)
{
    return (r >= API_ROLE_VIEWER && r <= API_ROLE_ADMIN) ? role_names[r] : "none";
}

void sha256_hex(const char *s, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(s, n, md, &len, EVP_sha256(), NULL);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

int api_key_create(store *db, const char *tenant, enum api_role role, const char *name,
                   char key_out[API_KEY_CHARS + 1], char id_out[API_KEY_ID_CHARS + 1])
{
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1) return -EIO;
    static const char hex[] = "0123456789abcdef";
    memcpy(key_out, "mk_", 3);
    for (size_t i = 0; i < sizeof raw; i++) {
        key_out[3 + 2 * i] = hex[raw[i] >> 4];
        key_out[4 + 2 * i] = hex[raw[i] & 15];
    }
    key_out[API_KEY_CHARS] = '\0';
    char h[65], meta_key[80], now[32];
    sha256_hex(key_out, API_KEY_CHARS, h);
    snprintf(id_out, API_KEY_ID_CHARS + 1, "%.16s", h);
    snprintf(meta_key, sizeof meta_key, "apikey/%s", h);
    clock_format_rfc3339(clock_wall_us(), now);
    buf v;
    buf_init(&v);
    buf_printf(&v, "{\"id\":\"%s\",\"tenant\":", id_out);
    json_write_string(&v, tenant, strlen(tenant));
    buf_printf(&v, ",\"role\":\"%s\",\"name\":", api_role_name(role));
    json_write_string(&v, name ? name : "", name ? strlen(name) : 0);
    buf_printf(&v, ",\"created\":\"%s\"}", now);
    int rc = store_meta_put(db, meta_key, v.data, v.len);
    buf_fini(&v);
    memset(raw, 0, sizeof raw);
    return rc;
}

static bool copy_str(const json_value *obj, const char *k, char *out, size_t cap)
{
    const json_value *v = json_object_get(obj, k, strlen(k));
    if (!json_is_string(v) || v->len == 0 || v->len >= cap) return false;
    memcpy(out, v->str, v->len);
    out[v->len] = '\0';
    return true;
}

bool auth_request(api_req *r)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
    api_counters *c = &r->t->counters;
    if (!h) {
        atomic_fetch_add_explicit(&c->auth_failed, 1, memory_order_relaxed);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate", "Bearer");
        reply_error(r, 401, "unauthorized", "missing 'Authorization: Bearer <api key>'");
        return false;
    }
    size_t hl = strlen(h);
    if (hl < 7 || strncasecmp(h, "Bearer ", 7) != 0 || hl - 7 != API_KEY_CHARS || strncmp(h + 7, "mk_", 3) != 0) {
        atomic_fetch_add_explicit(&c->auth_failed, 1, memory_order_relaxed);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate", "Bearer");
        reply_error(r, 401, "unauthorized", "malformed API key (expected 'Bearer mk_' and 64 hex digits)");
        return false;
    }
    char hex[65], meta_key[80];
    sha256_hex(h + 7, API_KEY_CHARS, hex);
    snprintf(meta_key, sizeof meta_key, "apikey/%s", hex);
    buf v;
    buf_init(&v);
    int rc = store_meta_get(r->a->db, meta_key, &v);
    bool ok = false;
    if (rc == 0) {
        json_parser *p = json_parser_create();
        arena a;
        arena_init(&a, 2048);
        json_value root;
        json_error jerr;
        char role[32];
        if (json_parse(p, &a, v.data, v.len, &root, &jerr) == 0 && root.type == JSON_OBJECT &&
            copy_str(&root, "tenant", r->tenant, sizeof r->tenant) && copy_str(&root, "role", role, sizeof role) &&
            api_role_parse(role, &r->role) == 0) {
            snprintf(r->key_id, sizeof r->key_id, "%.16s", hex);
            ok = true;
        }
        arena_fini(&a);
        json_parser_destroy(p);
    } else if (rc != -ENOENT) {
        LOG_RATELIMITED(LOG_LEVEL_ERROR, "api", 1, "reading API key failed: %d", rc);
    }
    buf_fini(&v);
    if (!ok) {
        r->tenant[0] = '\0';
        atomic_fetch_add_explicit(&c->auth_failed, 1, memory_order_relaxed);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate", "Bearer");
        reply_error(r, 401, "unauthorized", "unknown or revoked API key");
        return false;
    }
    r->authed = true;
    return true;
}

bool require_role(api_req *r, enum api_role min)
{
    if (r->role >= min) return true;
    atomic_fetch_add_explicit(&r->t->counters.forbidden, 1, memory_order_relaxed);
    reply_error(r, 403, "forbidden", "this needs role '%s'; the key has '%s'", api_role_name(min),
                api_role_name(r->role));
    return false;
}

bool rate_allow(api_req *r)
{
    api *a = r->a;
    uint32_t rate = a->cfg->api.rate_limit_per_key;
    if (rate == 0) return true;
    double burst = a->cfg->api.rate_limit_burst;
    int64_t now = clock_mono_us();
    pthread_mutex_lock(&a->rate_mu);
    if (a->bucket_count * 2 >= a->bucket_mask) { /* full enough: forget idle keys */
        memset(a->buckets, 0, (a->bucket_mask + 1) * sizeof *a->buckets);
        a->bucket_count = 0;
    }
    uint32_t h = (uint32_t)mamori_hash64(r->key_id, strlen(r->key_id)) & a->bucket_mask;
    while (a->buckets[h].id[0] && strcmp(a->buckets[h].id, r->key_id) != 0) h = (h + 1) & a->bucket_mask;
    rate_bucket *b = &a->buckets[h];
    if (!b->id[0]) {
        snprintf(b->id, sizeof b->id, "%s", r->key_id);
        b->tokens = burst;
        b->last_us = now;
        a->bucket_count++;
    }
    b->tokens += (double)(now - b->last_us) / 1e6 * rate;
    if (b->tokens > burst) b->tokens = burst;
    b->last_us = now;
    bool ok = b->tokens >= 1.0;
    if (ok) b->tokens -= 1.0;
    pthread_mutex_unlock(&a->rate_mu);
    if (!ok) {
        atomic_fetch_add_explicit(&r->t->counters.rate_limited, 1, memory_order_relaxed);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "1");
        reply_error(r, 429, "rate_limited", "over %u requests per second for this key", rate);
    }
    return ok;
}

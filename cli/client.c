/* cli/client.c — the API client behind `mamorictl search|agents|tree|keys`: resolves URL,
 * key and CA (flags > environment > ~/.config/mamori/config.yaml, or --dev DIR) and sends
 * requests with libcurl. */
#include "client.h"

#include "core/arena.h"
#include "core/json.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool client_option(cli_client *c, int code, const char *arg)
{
    switch (code) {
    case 0x100: snprintf(c->dev, sizeof c->dev, "%s", arg); return true;
    case 0x101: snprintf(c->url, sizeof c->url, "%s", arg); return true;
    case 0x102: snprintf(c->key, sizeof c->key, "%s", arg); return true;
    case 0x103: snprintf(c->ca, sizeof c->ca, "%s", arg); return true;
    case 0x104: c->timeout_s = strtol(arg, NULL, 10); return true;
    default: return false;
    }
}

static bool read_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    return true;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    size_t lead = strspn(s, " \t");
    if (lead) memmove(s, s + lead, strlen(s + lead) + 1);
    n = strlen(s);
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
}

/* ~/.config/mamori/config.yaml: flat "key: value" lines (server, key, ca). */
static void read_config(cli_client *c)
{
    const char *home = getenv("HOME");
    if (!home) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/.config/mamori/config.yaml", home);
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1200];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = '\0';
        char *k = line, *v = colon + 1;
        trim(k);
        trim(v);
        if (!strcmp(k, "server") && !c->url[0]) snprintf(c->url, sizeof c->url, "%s", v);
        else if (!strcmp(k, "key") && !c->key[0]) snprintf(c->key, sizeof c->key, "%s", v);
        else if (!strcmp(k, "ca") && !c->ca[0]) snprintf(c->ca, sizeof c->ca, "%s", v);
    }
    fclose(f);
}

int client_resolve(cli_client *c)
{
    if (c->dev[0]) {
        char path[1200], text[4096];
        snprintf(path, sizeof path, "%s/dev.json", c->dev);
        if (!read_file(path, text, sizeof text)) {
            fprintf(stderr, "mamorictl: cannot read %s (is `mamorid --dev %s` running?)\n", path, c->dev);
            return -1;
        }
        if (!c->url[0]) {
            char *api = strstr(text, "\"api\":\"");
            if (api) {
                api += 7;
                snprintf(c->url, sizeof c->url, "%.*s", (int)strcspn(api, "\""), api);
            }
        }
        if (!c->key[0]) {
            snprintf(path, sizeof path, "%s/admin.key", c->dev);
            if (read_file(path, c->key, sizeof c->key)) trim(c->key);
        }
        if (!c->ca[0]) snprintf(c->ca, sizeof c->ca, "%.1000s/ca.pem", c->dev);
    }
    const char *e;
    if (!c->url[0] && (e = getenv("MAMORI_API_URL"))) snprintf(c->url, sizeof c->url, "%s", e);
    if (!c->key[0] && (e = getenv("MAMORI_API_KEY"))) snprintf(c->key, sizeof c->key, "%s", e);
    if (!c->ca[0] && (e = getenv("MAMORI_CA"))) snprintf(c->ca, sizeof c->ca, "%s", e);
    read_config(c);
    size_t n = strlen(c->url);
    while (n && c->url[n - 1] == '/') c->url[--n] = '\0';
    if (!c->url[0]) {
        fprintf(stderr, "mamorictl: no API URL: use --server URL, MAMORI_API_URL, ~/.config/mamori/config.yaml "
                        "or --dev DIR\n");
        return -1;
    }
    if (!c->key[0]) {
        fprintf(stderr, "mamorictl: no API key: use --key KEY, MAMORI_API_KEY, ~/.config/mamori/config.yaml or "
                        "--dev DIR\n");
        return -1;
    }
    if (c->timeout_s <= 0) c->timeout_s = 60;
    return 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    buf_append(ctx, p, size * n);
    return size * n;
}

int client_request(const cli_client *c, const char *method, const char *path, const char *body, buf *out,
                   long *status)
{
    static bool inited;
    if (!inited) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = true;
    }
    CURL *h = curl_easy_init();
    if (!h) return -1;
    char url[1200], auth[220];
    snprintf(url, sizeof url, "%s%s", c->url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->key);
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Accept: application/json");
    buf_clear(out);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (c->ca[0]) curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    else fprintf(stderr, "mamorictl: %s %s: %s\n", method, url, curl_easy_strerror(rc));
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return rc == CURLE_OK ? 0 : -1;
}

int client_report_error(const char *what, long status, const buf *body)
{
    json_parser *p = json_parser_create();
    arena a;
    arena_init(&a, 4096);
    json_value v;
    json_error jerr;
    const json_value *e = NULL, *code = NULL, *msg = NULL, *pos = NULL;
    if (body->len && json_parse(p, &a, body->data, body->len, &v, &jerr) == 0 && v.type == JSON_OBJECT &&
        (e = json_object_get(&v, "error", 5)) && e->type == JSON_OBJECT) {
        code = json_object_get(e, "code", 4);
        msg = json_object_get(e, "message", 7);
        pos = json_object_get(e, "position", 8);
    }
    if (json_is_string(code) && json_is_string(msg))
        fprintf(stderr, "mamorictl: %s: %ld %.*s: %.*s\n", what, status, (int)code->len, code->str, (int)msg->len,
                msg->str);
    else
        fprintf(stderr, "mamorictl: %s: HTTP %ld %.*s\n", what, status, (int)MAMORI_MIN(body->len, (size_t)300),
                body->data ? body->data : "");
    if (pos && pos->type == JSON_NUMBER) fprintf(stderr, "mamorictl: at offset %lld of the query\n", (long long)pos->num.i);
    arena_fini(&a);
    json_parser_destroy(p);
    return 1;
}

void client_url_encode(buf *out, const char *s)
{
    for (; *s; s++) {
        char ch = *s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-._~", ch))
            buf_putc(out, ch);
        else buf_printf(out, "%%%02X", (unsigned char)ch);
    }
}

const json_value *client_json_path(const json_value *root, const char *path)
{
    const json_value *v = root;
    const char *p = path;
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        v = v->type == JSON_OBJECT ? json_object_get(v, p, n) : NULL;
        p += n + (dot ? 1 : 0);
    }
    return v;
}

void client_print_cell(buf *tmp, const json_value *root, const char *path, int width)
{
    const json_value *v = client_json_path(root, path);
    buf_clear(tmp);
    if (v && v->type == JSON_STRING) buf_append(tmp, v->str, v->len);
    else if (v && v->type == JSON_ARRAY && v->len && v->items[0].type == JSON_STRING)
        buf_append(tmp, v->items[0].str, v->items[0].len);
    else if (v && v->type != JSON_NULL) json_write_value(tmp, v);
    else buf_puts(tmp, "-");
    if (width > 0) printf("%-*.*s ", width, width, buf_cstr(tmp));
    else printf("%s", buf_cstr(tmp));
}

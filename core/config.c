/* core/config.c — schema-driven YAML configuration: one table (config_keys.c) lists every
 * key with its type, default, range and help text; loading, --check-config, command-line overrides
 * and the dump all walk that table, so they cannot disagree. */
#include "config.h"
#include "config_internal.h"

#include <errno.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENANTS_KEY "store.tenants"
#define RESPONSE_TENANTS_KEY "response.tenants"

static void *field_ptr(mamori_config *cfg, const config_key *k) { return (char *)cfg + k->offset; }
static const void *field_cptr(const mamori_config *cfg, const config_key *k)
{
    return (const char *)cfg + k->offset;
}

static int errorf(char *err, size_t err_len, const char *fmt, ...) MAMORI_PRINTF(3, 4);
static int errorf(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static const config_key *find_key(const char *name, size_t len)
{
    for (size_t i = 0; i < config_key_count; i++)
        if (strlen(config_keys[i].name) == len && memcmp(config_keys[i].name, name, len) == 0) return &config_keys[i];
    return NULL;
}

/* Integers accept plain decimal and size suffixes (KiB, MiB, GiB, K, M, G). */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 30) return -EINVAL;
    char tmp[32];
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (tmp[0] == '-' || tmp[0] == '+') return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(tmp, &end, 10);
    if (errno || end == tmp) return -EINVAL;
    uint64_t mult = 1;
    if (*end) {
        if (!strcmp(end, "KiB") || !strcmp(end, "K") || !strcmp(end, "k")) mult = KiB;
        else if (!strcmp(end, "MiB") || !strcmp(end, "M")) mult = MiB;
        else if (!strcmp(end, "GiB") || !strcmp(end, "G")) mult = GiB;
        else return -EINVAL;
    }
    if (v > UINT64_MAX / mult) return -ERANGE;
    *out = v * mult;
    return 0;
}

#define LIST_ITEM_MAX_BYTES 4096u

void config_list_clear(config_list *l)
{
    for (uint32_t i = 0; i < l->count; i++) free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

void config_list_append(config_list *l, const char *item, size_t len)
{
    l->items = mamori_xrealloc(l->items, (l->count + 1) * sizeof *l->items);
    l->items[l->count++] = mamori_xstrndup(item, len);
}

static int list_add_checked(config_list *l, const config_key *k, const char *item, size_t len, const char *where,
                            char *err, size_t err_len)
{
    if (l->count >= k->max)
        return errorf(err, err_len, "%s: '%s' has more than %llu items", where, k->name, (unsigned long long)k->max);
    if (len == 0 || len > LIST_ITEM_MAX_BYTES || memchr(item, '\0', len))
        return errorf(err, err_len, "%s: '%s' items must be non-empty strings of at most %u bytes", where, k->name,
                      LIST_ITEM_MAX_BYTES);
    config_list_append(l, item, len);
    return 0;
}

/* A list from one scalar (defaults, --set): "" is empty, "[a, b]" a YAML flow sequence,
 * anything else one item. */
static int set_list_text(config_list *l, const config_key *k, const char *s, size_t len, const char *where,
                         char *err, size_t err_len)
{
    config_list_clear(l);
    if (len == 0) return 0;
    if (s[0] != '[') return list_add_checked(l, k, s, len, where, err, err_len);
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET};
    struct fy_document *doc = fy_document_build_from_string(&pcfg, s, len);
    struct fy_node *root = doc ? fy_document_root(doc) : NULL;
    int rc = 0;
    if (!root || !fy_node_is_sequence(root)) {
        rc = errorf(err, err_len, "%s: '%s' must be a list such as [a, b], not '%.*s'", where, k->name, (int)len, s);
    } else {
        void *it = NULL;
        struct fy_node *item;
        while (rc == 0 && (item = fy_node_sequence_iterate(root, &it))) {
            size_t ilen = 0;
            const char *v = fy_node_is_scalar(item) ? fy_node_get_scalar(item, &ilen) : NULL;
            rc = v ? list_add_checked(l, k, v, ilen, where, err, err_len)
                   : errorf(err, err_len, "%s: '%s' items must be strings", where, k->name);
        }
    }
    fy_document_destroy(doc);
    if (rc) config_list_clear(l);
    return rc;
}

static int set_value(mamori_config *cfg, const config_key *k, const char *s, size_t len, const char *where,
                     char *err, size_t err_len)
{
    void *p = field_ptr(cfg, k);
    switch (k->type) {
    case KEY_LIST: return set_list_text(p, k, s, len, where, err, err_len);
    case KEY_STRING: {
        char **sp = p;
        free(*sp);
        *sp = mamori_xstrndup(s, len);
        return 0;
    }
    case KEY_ENUM: {
        char pattern[80];
        if (len + 3 > sizeof pattern) return errorf(err, err_len, "%s: '%s': not one of %s", where, k->name, k->choices);
        snprintf(pattern, sizeof pattern, "|%.*s|", (int)len, s);
        if (!strstr(k->choices, pattern))
            return errorf(err, err_len, "%s: '%s' must be one of %s, not '%.*s'", where, k->name, k->choices, (int)len,
                          s);
        char **sp = p;
        free(*sp);
        *sp = mamori_xstrndup(s, len);
        return 0;
    }
    case KEY_BOOL: {
        bool v;
        if ((len == 4 && !memcmp(s, "true", 4)) || (len == 3 && !memcmp(s, "yes", 3)) || (len == 2 && !memcmp(s, "on", 2)))
            v = true;
        else if ((len == 5 && !memcmp(s, "false", 5)) || (len == 2 && !memcmp(s, "no", 2)) ||
                 (len == 3 && !memcmp(s, "off", 3)))
            v = false;
        else
            return errorf(err, err_len, "%s: '%s' must be true or false, not '%.*s'", where, k->name, (int)len, s);
        *(bool *)p = v;
        return 0;
    }
    case KEY_U32:
    case KEY_U64: {
        uint64_t v;
        if (parse_u64(s, len, &v))
            return errorf(err, err_len, "%s: '%s' must be a non-negative integer (size suffixes KiB/MiB/GiB allowed), not '%.*s'",
                          where, k->name, (int)len, s);
        if (v < k->min || v > k->max)
            return errorf(err, err_len, "%s: '%s' = %llu out of range [%llu, %llu]", where, k->name,
                          (unsigned long long)v, (unsigned long long)k->min, (unsigned long long)k->max);
        if (k->type == KEY_U32) *(uint32_t *)p = (uint32_t)v;
        else *(uint64_t *)p = v;
        return 0;
    }
    }
    return -EINVAL;
}

void config_defaults(mamori_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    char err[256];
    for (size_t i = 0; i < config_key_count; i++) {
        const config_key *k = &config_keys[i];
        int rc = set_value(cfg, k, k->default_value, strlen(k->default_value), "default", err, sizeof err);
        if (rc) mamori_panic(__FILE__, __LINE__, "bad default: %s", err);
    }
}

void config_free(mamori_config *cfg)
{
    for (size_t i = 0; i < config_key_count; i++) {
        if (config_keys[i].type == KEY_STRING || config_keys[i].type == KEY_ENUM) {
            char **sp = field_ptr(cfg, &config_keys[i]);
            free(*sp);
            *sp = NULL;
        } else if (config_keys[i].type == KEY_LIST) {
            config_list_clear(field_ptr(cfg, &config_keys[i]));
        }
    }
    for (uint32_t i = 0; i < cfg->store.tenant_count; i++) free(cfg->store.tenants[i].name);
    cfg->store.tenant_count = 0;
    for (uint32_t i = 0; i < cfg->response.tenant_count; i++) {
        free(cfg->response.tenants[i].name);
        config_list_clear(&cfg->response.tenants[i].auto_allowed);
    }
    cfg->response.tenant_count = 0;
}

int config_set(mamori_config *cfg, const char *key, const char *value, char *err, size_t err_len)
{
    const config_key *k = find_key(key, strlen(key));
    if (!k) return errorf(err, err_len, "unknown configuration key '%s'", key);
    return set_value(cfg, k, value, strlen(value), "override", err, err_len);
}

/* ---- YAML walking ---- */

typedef struct load_ctx {
    mamori_config *cfg;
    const char *name;
    char *err;
    size_t err_len;
} load_ctx;

static int node_line(struct fy_node *n)
{
    struct fy_token *t = fy_node_get_scalar_token(n);
    if (!t) {
        /* a collection: report the line of its first key or item */
        void *it = NULL;
        if (fy_node_is_mapping(n)) {
            struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
            if (p) return node_line(fy_node_pair_key(p));
        } else if (fy_node_is_sequence(n)) {
            struct fy_node *c = fy_node_sequence_iterate(n, &it);
            if (c) return node_line(c);
        }
        return 0;
    }
    const struct fy_mark *m = fy_token_start_mark(t);
    return m ? m->line + 1 : 0;
}

static int load_tenants(load_ctx *c, struct fy_node *map, int line)
{
    char where[300];
    if (!fy_node_is_mapping(map)) {
        snprintf(where, sizeof where, "%s line %d", c->name, line);
        return errorf(c->err, c->err_len, "%s: '%s' must be a mapping of tenant name to settings", where, TENANTS_KEY);
    }
    void *it = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(map, &it))) {
        struct fy_node *kn = fy_node_pair_key(pair), *vn = fy_node_pair_value(pair);
        size_t tlen;
        const char *tname = fy_node_get_scalar(kn, &tlen);
        int tline = node_line(kn);
        snprintf(where, sizeof where, "%s line %d", c->name, tline);
        if (!tname || tlen == 0 || tlen > 64)
            return errorf(c->err, c->err_len, "%s: '%s': tenant names are 1-64 characters", where, TENANTS_KEY);
        if (c->cfg->store.tenant_count >= CONFIG_MAX_TENANT_OVERRIDES)
            return errorf(c->err, c->err_len, "%s: '%s': more than %d tenants", where, TENANTS_KEY,
                          CONFIG_MAX_TENANT_OVERRIDES);
        if (!vn || !fy_node_is_mapping(vn))
            return errorf(c->err, c->err_len, "%s: '%s.%.*s' must be a mapping", where, TENANTS_KEY, (int)tlen, tname);
        config_tenant *t = &c->cfg->store.tenants[c->cfg->store.tenant_count];
        t->retention_days = 0; /* 0: inherit store.retention_days */
        void *it2 = NULL;
        struct fy_node_pair *p2;
        while ((p2 = fy_node_mapping_iterate(vn, &it2))) {
            size_t klen, vlen;
            const char *kname = fy_node_get_scalar(fy_node_pair_key(p2), &klen);
            struct fy_node *v2 = fy_node_pair_value(p2);
            snprintf(where, sizeof where, "%s line %d", c->name, node_line(fy_node_pair_key(p2)));
            if (!kname || klen != strlen("retention_days") || memcmp(kname, "retention_days", klen) != 0)
                return errorf(c->err, c->err_len, "%s: unknown key '%s.%.*s.%.*s'", where, TENANTS_KEY, (int)tlen,
                              tname, kname ? (int)klen : 0, kname ? kname : "");
            const char *val = v2 && fy_node_is_scalar(v2) ? fy_node_get_scalar(v2, &vlen) : NULL;
            uint64_t days;
            if (!val || parse_u64(val, vlen, &days) || days < 1 || days > 36500)
                return errorf(c->err, c->err_len, "%s: '%s.%.*s.retention_days' must be an integer in [1, 36500]",
                              where, TENANTS_KEY, (int)tlen, tname);
            t->retention_days = (uint32_t)days;
        }
        t->name = mamori_xstrndup(tname, tlen);
        c->cfg->store.tenant_count++;
    }
    return 0;
}

static int load_list(load_ctx *c, const config_key *k, struct fy_node *vn, const char *where);

/* response.tenants: {name: {max_file_bytes, auto_allowed: [..], auto_max_per_minute}} */
static int load_response_tenants(load_ctx *c, struct fy_node *map, int line)
{
    char where[300];
    snprintf(where, sizeof where, "%s line %d", c->name, line);
    if (!fy_node_is_mapping(map))
        return errorf(c->err, c->err_len, "%s: '%s' must be a mapping of tenant name to settings", where,
                      RESPONSE_TENANTS_KEY);
    void *it = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(map, &it))) {
        struct fy_node *kn = fy_node_pair_key(pair), *vn = fy_node_pair_value(pair);
        size_t tlen;
        const char *tname = fy_node_get_scalar(kn, &tlen);
        snprintf(where, sizeof where, "%s line %d", c->name, node_line(kn));
        if (!tname || tlen == 0 || tlen > 64)
            return errorf(c->err, c->err_len, "%s: '%s': tenant names are 1-64 characters", where, RESPONSE_TENANTS_KEY);
        if (c->cfg->response.tenant_count >= CONFIG_MAX_TENANT_OVERRIDES)
            return errorf(c->err, c->err_len, "%s: '%s': more than %d tenants", where, RESPONSE_TENANTS_KEY,
                          CONFIG_MAX_TENANT_OVERRIDES);
        if (!vn || !fy_node_is_mapping(vn))
            return errorf(c->err, c->err_len, "%s: '%s.%.*s' must be a mapping", where, RESPONSE_TENANTS_KEY,
                          (int)tlen, tname);
        config_response_tenant *t = &c->cfg->response.tenants[c->cfg->response.tenant_count];
        memset(t, 0, sizeof *t);
        t->name = mamori_xstrndup(tname, tlen);
        c->cfg->response.tenant_count++; /* counted now: config_free frees what was set */
        void *it2 = NULL;
        struct fy_node_pair *p2;
        while ((p2 = fy_node_mapping_iterate(vn, &it2))) {
            size_t klen = 0, vlen = 0;
            const char *kname = fy_node_get_scalar(fy_node_pair_key(p2), &klen);
            struct fy_node *v2 = fy_node_pair_value(p2);
            snprintf(where, sizeof where, "%s line %d", c->name, node_line(fy_node_pair_key(p2)));
            const char *val = v2 && fy_node_is_scalar(v2) ? fy_node_get_scalar(v2, &vlen) : NULL;
            uint64_t n;
            if (kname && klen == 14 && !memcmp(kname, "max_file_bytes", 14)) {
                if (!val || parse_u64(val, vlen, &n) || n < 1024 || n > GiB)
                    return errorf(c->err, c->err_len, "%s: '%s.%s.max_file_bytes' must be in [1024, 1 GiB]", where,
                                  RESPONSE_TENANTS_KEY, t->name);
                t->max_file_bytes = n;
            } else if (kname && klen == 19 && !memcmp(kname, "auto_max_per_minute", 19)) {
                if (!val || parse_u64(val, vlen, &n) || n > 100000)
                    return errorf(c->err, c->err_len, "%s: '%s.%s.auto_max_per_minute' must be in [0, 100000]", where,
                                  RESPONSE_TENANTS_KEY, t->name);
                t->auto_max_per_minute = (uint32_t)n;
                t->has_auto_max_per_minute = true;
            } else if (kname && klen == 12 && !memcmp(kname, "auto_allowed", 12)) {
                const config_key *lk = find_key("response.auto_allowed", 21);
                config_list *save = field_ptr(c->cfg, lk);
                config_list global = *save; /* load_list fills the key's own list: borrow it */
                *save = (config_list){0};
                int rc = load_list(c, lk, v2, where);
                t->auto_allowed = *save;
                *save = global;
                if (rc) return rc;
                t->has_auto_allowed = true;
            } else {
                return errorf(c->err, c->err_len, "%s: unknown key '%s.%s.%.*s' (max_file_bytes, auto_allowed, "
                              "auto_max_per_minute)", where, RESPONSE_TENANTS_KEY, t->name, kname ? (int)klen : 0,
                              kname ? kname : "");
            }
        }
    }
    return 0;
}

static const config_response_tenant *response_tenant(const mamori_config *cfg, const char *tenant)
{
    for (uint32_t i = 0; tenant && i < cfg->response.tenant_count; i++)
        if (!strcmp(cfg->response.tenants[i].name, tenant)) return &cfg->response.tenants[i];
    return NULL;
}

uint64_t config_response_max_file_bytes(const mamori_config *cfg, const char *tenant)
{
    const config_response_tenant *t = response_tenant(cfg, tenant);
    return t && t->max_file_bytes ? t->max_file_bytes : cfg->response.max_file_bytes;
}

const config_list *config_response_auto_allowed(const mamori_config *cfg, const char *tenant)
{
    const config_response_tenant *t = response_tenant(cfg, tenant);
    return t && t->has_auto_allowed ? &t->auto_allowed : &cfg->response.auto_allowed;
}

uint32_t config_response_auto_max_per_minute(const mamori_config *cfg, const char *tenant)
{
    const config_response_tenant *t = response_tenant(cfg, tenant);
    return t && t->has_auto_max_per_minute ? t->auto_max_per_minute : cfg->response.auto_max_per_minute;
}

/* A list key: a sequence of scalars (each error names the item's line), a single scalar as
 * a one-item list, or an empty value / null as the empty list. */
static int load_list(load_ctx *c, const config_key *k, struct fy_node *vn, const char *where)
{
    config_list *l = field_ptr(c->cfg, k);
    config_list_clear(l);
    if (!vn) return 0;
    if (fy_node_is_scalar(vn)) {
        size_t len = 0;
        const char *v = fy_node_get_scalar(vn, &len);
        bool null = !v || len == 0 ||
                    (fy_node_get_style(vn) == FYNS_PLAIN && ((len == 1 && v[0] == '~') || (len == 4 && !memcmp(v, "null", 4))));
        return null ? 0 : list_add_checked(l, k, v, len, where, c->err, c->err_len);
    }
    if (!fy_node_is_sequence(vn))
        return errorf(c->err, c->err_len, "%s: '%s' must be a list of strings", where, k->name);
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(vn, &it))) {
        char iwhere[300];
        snprintf(iwhere, sizeof iwhere, "%s line %d", c->name, node_line(item));
        size_t len = 0;
        const char *v = fy_node_is_scalar(item) ? fy_node_get_scalar(item, &len) : NULL;
        if (!v) return errorf(c->err, c->err_len, "%s: '%s' items must be strings, not collections", iwhere, k->name);
        int rc = list_add_checked(l, k, v, len, iwhere, c->err, c->err_len);
        if (rc) return rc;
    }
    return 0;
}

static int load_mapping(load_ctx *c, struct fy_node *map, const char *prefix)
{
    void *it = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(map, &it))) {
        struct fy_node *kn = fy_node_pair_key(pair), *vn = fy_node_pair_value(pair);
        size_t klen;
        const char *kname = kn && fy_node_is_scalar(kn) ? fy_node_get_scalar(kn, &klen) : NULL;
        int line = kn ? node_line(kn) : 0;
        char where[300];
        snprintf(where, sizeof where, "%s line %d", c->name, line);
        if (!kname) return errorf(c->err, c->err_len, "%s: keys must be plain strings", where);
        char path[160];
        int plen = snprintf(path, sizeof path, "%s%s%.*s", prefix, *prefix ? "." : "", (int)klen, kname);
        if (plen < 0 || (size_t)plen >= sizeof path) return errorf(c->err, c->err_len, "%s: key too long", where);
        if (!strcmp(path, TENANTS_KEY)) {
            int rc = load_tenants(c, vn, line);
            if (rc) return rc;
            continue;
        }
        if (!strcmp(path, RESPONSE_TENANTS_KEY)) {
            int rc = load_response_tenants(c, vn, line);
            if (rc) return rc;
            continue;
        }
        const config_key *k = find_key(path, (size_t)plen);
        if (!k) {
            /* a section? (some key starts with "path.") */
            bool section = false;
            for (size_t i = 0; i < config_key_count; i++)
                if (!strncmp(config_keys[i].name, path, (size_t)plen) && config_keys[i].name[plen] == '.') section = true;
            if (!section) return errorf(c->err, c->err_len, "%s: unknown key '%s'", where, path);
            if (!vn || !fy_node_is_mapping(vn))
                return errorf(c->err, c->err_len, "%s: '%s' must be a mapping", where, path);
            int rc = load_mapping(c, vn, path);
            if (rc) return rc;
            continue;
        }
        if (k->type == KEY_LIST) {
            int rc = load_list(c, k, vn, where);
            if (rc) return rc;
            continue;
        }
        if (!vn || !fy_node_is_scalar(vn))
            return errorf(c->err, c->err_len, "%s: '%s' must be a scalar value", where, path);
        size_t vlen;
        const char *val = fy_node_get_scalar(vn, &vlen);
        int rc = set_value(c->cfg, k, val ? val : "", val ? vlen : 0, where, c->err, c->err_len);
        if (rc) return rc;
    }
    return 0;
}

static int load_document(mamori_config *cfg, struct fy_document *doc, struct fy_diag *diag, const char *name,
                         char *err, size_t err_len)
{
    if (!doc) {
        void *it = NULL;
        struct fy_diag_error *de = diag ? fy_diag_errors_iterate(diag, &it) : NULL;
        if (de) return errorf(err, err_len, "%s line %d column %d: YAML: %s", name, de->line + 1, de->column + 1, de->msg);
        return errorf(err, err_len, "%s: not valid YAML", name);
    }
    struct fy_node *root = fy_document_root(doc);
    if (!root) return 0; /* empty file: all defaults */
    if (!fy_node_is_mapping(root)) return errorf(err, err_len, "%s: top level must be a mapping", name);
    load_ctx c = {cfg, name, err, err_len};
    int rc = load_mapping(&c, root, "");
    if (rc) return rc;
    return config_validate(cfg, err, err_len);
}

static struct fy_diag *make_diag(void)
{
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (diag) fy_diag_set_collect_errors(diag, true);
    return diag;
}

int config_load_string(mamori_config *cfg, const char *yaml, size_t len, const char *name, char *err, size_t err_len)
{
    struct fy_diag *diag = make_diag();
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET, .diag = diag};
    struct fy_document *doc = fy_document_build_from_string(&pcfg, yaml, len);
    int rc = load_document(cfg, doc, diag, name, err, err_len);
    fy_document_destroy(doc);
    fy_diag_destroy(diag);
    return rc;
}

int config_load_file(mamori_config *cfg, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, err_len, "%s: %s", path, strerror(e));
        return -e;
    }
    fclose(f);
    struct fy_diag *diag = make_diag();
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET, .diag = diag};
    struct fy_document *doc = fy_document_build_from_file(&pcfg, path);
    int rc = load_document(cfg, doc, diag, path, err, err_len);
    fy_document_destroy(doc);
    fy_diag_destroy(diag);
    return rc;
}

static const char *const role_names[CONFIG_ROLE_COUNT] = {"ingest", "detect", "store", "api", "rulesync"};

int config_roles(const mamori_config *cfg, uint32_t *roles, char *err, size_t err_len)
{
    *roles = 0;
    const char *p = cfg->node.roles;
    for (;;) {
        size_t n = strcspn(p, ",");
        size_t lead = 0;
        while (lead < n && p[lead] == ' ') lead++;
        size_t len = n - lead;
        while (len && p[lead + len - 1] == ' ') len--;
        int found = -1;
        for (int i = 0; i < CONFIG_ROLE_COUNT; i++)
            if (len == strlen(role_names[i]) && !memcmp(p + lead, role_names[i], len)) found = i;
        if (found < 0)
            return errorf(err, err_len, "'node.roles': unknown role '%.*s' in '%s' (ingest, detect, store, api, rulesync)",
                          (int)MAMORI_MIN(len, 64), p + lead, cfg->node.roles);
        *roles |= 1u << found;
        if (!p[n]) break;
        p += n + 1;
    }
    return 0;
}


/* Every item https://HOST:PORT, none twice. */
static int check_urls(const config_list *l, const char *key, const char *what, char *err, size_t err_len)
{
    for (uint32_t i = 0; i < l->count; i++) {
        const char *u = l->items[i];
        const char *host = strncmp(u, "https://", 8) == 0 ? u + 8 : NULL;
        const char *sc = host ? strrchr(host, ':') : NULL;
        char *pend = NULL;
        long sport = sc && sc[1] ? strtol(sc + 1, &pend, 10) : -1;
        if (!host || !sc || sc == host || (pend && *pend && *pend != '/') || sport < 1 || sport > 65535 ||
            strpbrk(u, " \t?#"))
            return errorf(err, err_len, "'%s' item %u '%s' must be https://HOST:PORT (%s)", key, i, u, what);
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(l->items[j], u))
                return errorf(err, err_len, "'%s': '%s' listed twice (items %u and %u)", key, u, j, i);
    }
    return 0;
}

int config_validate(const mamori_config *cfg, char *err, size_t err_len)
{
    uint32_t roles;
    int rrc = config_roles(cfg, &roles, err, err_len);
    if (rrc) return rrc;
    const uint32_t pipeline = CONFIG_ROLE_INGEST | CONFIG_ROLE_DETECT | CONFIG_ROLE_STORE;
    if (strcmp(cfg->bus.type, "kafka") && (roles & pipeline) != pipeline)
        return errorf(err, err_len, "'node.roles' %s: ingest, detect and store share the embedded bus in one process; "
                      "running them apart needs 'bus.type' kafka", cfg->node.roles);
    /* ingest takes its agents' resume points from a local store only if that store has every
     * agent; a shard has some of them (and the ledger needs a store of its own) */
    if ((roles & CONFIG_ROLE_INGEST) && (roles & CONFIG_ROLE_STORE) && cfg->bus.kafka.store_shards > 1)
        return errorf(err, err_len, "'node.roles' %s with 'bus.kafka.store_shards' %u: a store shard does not hold every "
                      "agent's resume point; run ingest in a process of its own", cfg->node.roles,
                      cfg->bus.kafka.store_shards);
    const char *colon = strrchr(cfg->ingest.listen, ':');
    if (!colon || colon == cfg->ingest.listen || !colon[1])
        return errorf(err, err_len, "'ingest.listen' must be ADDR:PORT, not '%s'", cfg->ingest.listen);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return errorf(err, err_len, "'ingest.listen' port must be 0-65535, not '%s'", colon + 1);
    if (cfg->ingest.max_batch_bytes < cfg->ingest.max_frame_bytes)
        return errorf(err, err_len, "'ingest.max_batch_bytes' (%u) must be >= 'ingest.max_frame_bytes' (%u)",
                      cfg->ingest.max_batch_bytes, cfg->ingest.max_frame_bytes);
    uint32_t n = cfg->ingest.recv_buffers;
    if (n & (n - 1)) return errorf(err, err_len, "'ingest.recv_buffers' must be a power of two, not %u", n);
    if (cfg->ingest.threads > cfg->ingest.max_connections)
        return errorf(err, err_len, "'ingest.threads' exceeds 'ingest.max_connections'");
    if (cfg->bus.kafka.store_shards && cfg->bus.kafka.store_shard >= cfg->bus.kafka.store_shards)
        return errorf(err, err_len, "'bus.kafka.store_shard' (%u) must be below 'bus.kafka.store_shards' (%u)",
                      cfg->bus.kafka.store_shard, cfg->bus.kafka.store_shards);
    if (cfg->bus.kafka.correlate_shards && cfg->bus.kafka.correlate_shard >= cfg->bus.kafka.correlate_shards)
        return errorf(err, err_len, "'bus.kafka.correlate_shard' (%u) must be below 'bus.kafka.correlate_shards' (%u)",
                      cfg->bus.kafka.correlate_shard, cfg->bus.kafka.correlate_shards);
    if (!strcmp(cfg->bus.type, "kafka") && (!cfg->bus.kafka.bootstrap[0] || !cfg->bus.kafka.topic[0]))
        return errorf(err, err_len, "'bus.type' kafka needs 'bus.kafka.bootstrap' and 'bus.kafka.topic'");
    for (uint32_t i = 0; i < cfg->store.tenant_count; i++)
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(cfg->store.tenants[i].name, cfg->store.tenants[j].name))
                return errorf(err, err_len, "'store.tenants': tenant '%s' listed twice", cfg->store.tenants[i].name);
    if (check_urls(&cfg->api.shards, "api.shards", "a store shard's API", err, err_len) ||
        check_urls(&cfg->api.ingest_nodes, "api.ingest_nodes", "an ingest process's API", err, err_len))
        return -EINVAL;
    for (uint32_t i = 0; i < cfg->response.tenant_count; i++)
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(cfg->response.tenants[i].name, cfg->response.tenants[j].name))
                return errorf(err, err_len, "'response.tenants': tenant '%s' listed twice",
                              cfg->response.tenants[i].name);
    for (uint32_t i = 0; i < cfg->detect.placeholders.count; i++) {
        const char *item = cfg->detect.placeholders.items[i];
        size_t name_len = strspn(item, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
        if (name_len == 0 || item[name_len] != '=')
            return errorf(err, err_len, "'detect.placeholders' item '%s' must be NAME=VALUE (NAME of letters, digits, _)",
                          item);
    }
    return 0;
}

/* A YAML double-quoted scalar. */
static void dump_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p < 0x20) fprintf(out, "\\x%02x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

void config_dump(const mamori_config *cfg, FILE *out)
{
    char section[32] = "";
    for (size_t i = 0; i < config_key_count; i++) {
        const config_key *k = &config_keys[i];
        const char *dot = strchr(k->name, '.');
        size_t slen = (size_t)(dot - k->name);
        if (strlen(section) != slen || strncmp(section, k->name, slen) != 0) {
            snprintf(section, sizeof section, "%.*s", (int)slen, k->name);
            fprintf(out, "%s:\n", section);
        }
        const void *p = field_cptr(cfg, k);
        fprintf(out, "  %s: ", dot + 1);
        switch (k->type) {
        case KEY_STRING:
        case KEY_ENUM: fprintf(out, "\"%s\"", *(char *const *)p); break;
        case KEY_BOOL: fprintf(out, "%s", *(const bool *)p ? "true" : "false"); break;
        case KEY_U32: fprintf(out, "%u", *(const uint32_t *)p); break;
        case KEY_U64: fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)p); break;
        case KEY_LIST: {
            const config_list *l = p;
            fputc('[', out);
            for (uint32_t j = 0; j < l->count; j++) {
                if (j) fputs(", ", out);
                dump_quoted(out, l->items[j]);
            }
            fputc(']', out);
            break;
        }
        }
        if (k->type == KEY_U32 || k->type == KEY_U64)
            fprintf(out, "  # %s [%llu..%llu]\n", k->help, (unsigned long long)k->min, (unsigned long long)k->max);
        else if (k->type == KEY_ENUM)
            fprintf(out, "  # %s (%s)\n", k->help, k->choices);
        else if (k->type == KEY_LIST)
            fprintf(out, "  # %s [at most %llu items]\n", k->help, (unsigned long long)k->max);
        else
            fprintf(out, "  # %s\n", k->help);
        if (!strcmp(k->name, "response.auto_max_per_minute") && cfg->response.tenant_count) {
            fprintf(out, "  tenants:\n");
            for (uint32_t t = 0; t < cfg->response.tenant_count; t++) {
                const config_response_tenant *rt = &cfg->response.tenants[t];
                fprintf(out, "    \"%s\": {", rt->name);
                const char *sep = "";
                if (rt->max_file_bytes) {
                    fprintf(out, "max_file_bytes: %llu", (unsigned long long)rt->max_file_bytes);
                    sep = ", ";
                }
                if (rt->has_auto_max_per_minute) {
                    fprintf(out, "%sauto_max_per_minute: %u", sep, rt->auto_max_per_minute);
                    sep = ", ";
                }
                if (rt->has_auto_allowed) {
                    fprintf(out, "%sauto_allowed: [", sep);
                    for (uint32_t j = 0; j < rt->auto_allowed.count; j++) {
                        if (j) fputs(", ", out);
                        dump_quoted(out, rt->auto_allowed.items[j]);
                    }
                    fputc(']', out);
                }
                fprintf(out, "}\n");
            }
        }
        if (!strcmp(k->name, "store.group_commit_max_bytes") && cfg->store.tenant_count) {
            fprintf(out, "  tenants:\n");
            for (uint32_t t = 0; t < cfg->store.tenant_count; t++)
                fprintf(out, "    \"%s\": {retention_days: %u}\n", cfg->store.tenants[t].name,
                        cfg->store.tenants[t].retention_days);
        }
    }
}

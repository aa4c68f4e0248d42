/* bench/sim/identity.c — who the simulated agents are and where they connect: the server
 * address, the TLS client context that verifies the server against the CA, and one
 * client certificate per agent — minted in memory from the dev CA (`--dev DIR`, one
 * shared key: see core/pki.h) or read from a directory made by deploy/make-pki.sh. */
#include "sim.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/pki.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define MOD "sim"
#define SIM_CERT_DAYS 30 /* in-memory agent certificates outlive any run */

static const char *ssl_error_text(char *out, size_t n)
{
    unsigned long e = ERR_get_error();
    if (!e) snprintf(out, n, "no OpenSSL error");
    else ERR_error_string_n(e, out, n);
    ERR_clear_error();
    return out;
}

static int read_small_file(const char *path, char **data_out, size_t *len_out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -errno;
    buf b;
    buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        buf_append(&b, chunk, n);
        if (b.len > 1024 * 1024) break;
    }
    fclose(fp);
    buf_cstr(&b);
    *data_out = b.data;
    *len_out = b.len;
    return 0;
}

/* Splits "host:port", "[v6]:port". */
static int split_host_port(const char *s, char *host, size_t host_cap, char *port, size_t port_cap)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') return -EINVAL;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) return -EINVAL;
        hl = (size_t)(colon - s);
    }
    size_t pl = strlen(colon + 1);
    if (hl == 0 || hl >= host_cap || pl == 0 || pl >= port_cap) return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, pl + 1);
    return 0;
}

/* dev.json: {"ingest":"127.0.0.1:P","api":"https://127.0.0.1:Q","tenant":"default"} */
static int read_dev_json(const char *dir, char *ingest, size_t ingest_cap, char *tenant, size_t tenant_cap)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/dev.json", dir);
    char *text = NULL;
    size_t len = 0;
    int rc = read_small_file(path, &text, &len);
    if (rc) {
        LOG_ERROR(MOD, "%s: cannot read: %s (is `mamorid --dev %s` running?)", path, strerror(-rc), dir);
        return rc;
    }
    json_parser *p = json_parser_create();
    arena a;
    arena_init(&a, 0);
    json_value root;
    json_error err;
    rc = json_parse(p, &a, text, len, &root, &err);
    if (rc || root.type != JSON_OBJECT) {
        LOG_ERROR(MOD, "%s: not a JSON object%s%s", path, rc ? ": " : "", rc ? err.msg : "");
        rc = -EINVAL;
        goto done;
    }
    const json_value *v = json_object_get(&root, "ingest", 6);
    if (!json_is_string(v) || v->len >= ingest_cap) {
        LOG_ERROR(MOD, "%s: \"ingest\" missing or not a string", path);
        rc = -EINVAL;
        goto done;
    }
    memcpy(ingest, v->str, v->len);
    ingest[v->len] = '\0';
    v = json_object_get(&root, "tenant", 6);
    if (json_is_string(v) && v->len < tenant_cap) {
        memcpy(tenant, v->str, v->len);
        tenant[v->len] = '\0';
    }
done:
    arena_fini(&a);
    json_parser_destroy(p);
    free(text);
    return rc;
}

static int resolve(const char *host, const char *port, sim_target *t)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res) {
        LOG_ERROR(MOD, "server %s:%s: cannot resolve: %s", host, port, gai_strerror(rc));
        return -EHOSTUNREACH;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int make_ssl_ctx(const char *ca_file, sim_target *t)
{
    char reason[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        LOG_ERROR(MOD, "cannot create a TLS context: %s", ssl_error_text(reason, sizeof reason));
        return -EIO;
    }
    /* Protocol §1: TLS 1.3 only. */
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    if (SSL_CTX_load_verify_file(ctx, ca_file) != 1) {
        LOG_ERROR(MOD, "%s: cannot load the CA: %s", ca_file, ssl_error_text(reason, sizeof reason));
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Partial writes keep a big batch from blocking the loop; moving buffers let the control
     * queue grow while a write is pending; released buffers keep 10,000 idle connections
     * small. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    t->ssl_ctx = ctx;
    return 0;
}

static int set_identity(sim_identity *id, const char *agent_id, const char *tenant)
{
    if (strlen(agent_id) > SIM_AGENT_ID_MAX || strlen(tenant) > SIM_TENANT_MAX) return -ENAMETOOLONG;
    snprintf(id->agent_id, sizeof id->agent_id, "%s", agent_id);
    snprintf(id->tenant, sizeof id->tenant, "%s", tenant);
    return 0;
}

/* --dev: every agent gets a certificate for one shared key, signed by DIR/ca.key. */
static int mint_identities(const sim_options *opt, const char *dir, const char *tenant, sim_target *t)
{
    char ca_cert[4096], ca_key[4096];
    snprintf(ca_cert, sizeof ca_cert, "%s/%s", dir, PKI_DEV_CA_CERT);
    snprintf(ca_key, sizeof ca_key, "%s/%s", dir, PKI_DEV_CA_KEY);
    pki_error err;
    pki_ca *ca = NULL;
    pki_key *key = NULL;
    pki_blob key_der = {0};
    int rc = pki_ca_load(ca_cert, ca_key, &ca, &err);
    if (rc) {
        LOG_ERROR(MOD, "%s", err.msg);
        return rc;
    }
    rc = pki_key_generate(&key, &err);
    if (!rc) rc = pki_key_encode(key, PKI_DER, &key_der, &err);
    if (rc) {
        LOG_ERROR(MOD, "%s", err.msg);
        goto done;
    }
    const unsigned char *p = key_der.data;
    EVP_PKEY *shared = d2i_AutoPrivateKey(NULL, &p, (long)key_der.len);
    if (!shared) {
        char reason[256];
        LOG_ERROR(MOD, "cannot decode the agent key: %s", ssl_error_text(reason, sizeof reason));
        rc = -EIO;
        goto done;
    }
    t->identities = mamori_xcalloc(opt->agents, sizeof *t->identities);
    t->identity_count = opt->agents;
    for (uint32_t i = 0; i < opt->agents; i++) {
        sim_identity *id = &t->identities[i];
        char agent_id[SIM_AGENT_ID_MAX + 1];
        snprintf(agent_id, sizeof agent_id, "%s-%05u", opt->agent_prefix, opt->first_agent + i);
        if (set_identity(id, agent_id, tenant) != 0) {
            LOG_ERROR(MOD, "agent id %s or tenant %s too long", agent_id, tenant);
            rc = -EINVAL;
            break;
        }
        pki_blob cert;
        rc = pki_issue_agent_cert(ca, key, agent_id, tenant, SIM_CERT_DAYS, PKI_DER, &cert, &err);
        if (rc) {
            LOG_ERROR(MOD, "%s", err.msg);
            break;
        }
        id->cert_der = cert.data; /* taken */
        id->cert_der_len = (uint32_t)cert.len;
        EVP_PKEY_up_ref(shared);
        id->key = shared;
    }
    EVP_PKEY_free(shared);
done:
    pki_blob_free(&key_der);
    pki_key_destroy(key);
    pki_ca_destroy(ca);
    return rc;
}

static int compare_names(const void *a, const void *b)
{
    return strverscmp(*(char *const *)a, *(char *const *)b);
}

/* Reads CN and O of a certificate file into the identity, and its DER. */
static int load_cert_identity(const char *path, sim_identity *id)
{
    char reason[256];
    FILE *fp = fopen(path, "r");
    if (!fp) {
        LOG_ERROR(MOD, "%s: cannot open: %s", path, strerror(errno));
        return -errno;
    }
    X509 *cert = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    if (!cert) {
        LOG_ERROR(MOD, "%s: not a PEM certificate: %s", path, ssl_error_text(reason, sizeof reason));
        return -EINVAL;
    }
    int rc = 0;
    X509_NAME *name = X509_get_subject_name(cert);
    if (X509_NAME_get_text_by_NID(name, NID_commonName, id->agent_id, sizeof id->agent_id) <= 0 ||
        X509_NAME_get_text_by_NID(name, NID_organizationName, id->tenant, sizeof id->tenant) <= 0) {
        LOG_ERROR(MOD, "%s: subject has no CN (agent id) or no O (tenant)", path);
        rc = -EINVAL;
    } else {
        int n = i2d_X509(cert, NULL);
        unsigned char *der = mamori_xmalloc((size_t)(n > 0 ? n : 1));
        unsigned char *p = der;
        if (n <= 0 || i2d_X509(cert, &p) != n) {
            free(der);
            LOG_ERROR(MOD, "%s: cannot encode: %s", path, ssl_error_text(reason, sizeof reason));
            rc = -EIO;
        } else {
            id->cert_der = der;
            id->cert_der_len = (uint32_t)n;
        }
    }
    X509_free(cert);
    return rc;
}

static int load_key_identity(const char *path, sim_identity *id)
{
    char reason[256];
    FILE *fp = fopen(path, "r");
    if (!fp) {
        LOG_ERROR(MOD, "%s: cannot open: %s", path, strerror(errno));
        return -errno;
    }
    id->key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    if (!id->key) {
        LOG_ERROR(MOD, "%s: not an unencrypted PEM private key: %s", path, ssl_error_text(reason, sizeof reason));
        return -EINVAL;
    }
    return 0;
}

/* --cert-dir D: D/agents/<id>.pem + .key (deploy/make-pki.sh) or D/<id>.pem + .key. */
static int load_identities(const sim_options *opt, sim_target *t)
{
    char dir[4096];
    struct stat st;
    snprintf(dir, sizeof dir, "%s/agents", opt->cert_dir);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) snprintf(dir, sizeof dir, "%s", opt->cert_dir);
    DIR *d = opendir(dir);
    if (!d) {
        LOG_ERROR(MOD, "%s: cannot open directory: %s", dir, strerror(errno));
        return -errno;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".pem") != 0) continue;
        if (strcmp(e->d_name, "ca.pem") == 0 || strcmp(e->d_name, "server.pem") == 0) continue;
        char key_path[4096 + 256];
        snprintf(key_path, sizeof key_path, "%s/%.*s.key", dir, (int)(n - 4), e->d_name);
        if (access(key_path, R_OK) != 0) continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 256;
            names = mamori_xrealloc(names, cap * sizeof *names);
        }
        names[count++] = mamori_xstrndup(e->d_name, n - 4);
    }
    closedir(d);
    int rc = 0;
    if (count == 0) {
        LOG_ERROR(MOD, "%s: no agent certificates (<id>.pem with <id>.key); make some with deploy/make-pki.sh "
                       "--agents N",
                  dir);
        rc = -ENOENT;
        goto done;
    }
    if (count < opt->agents && !opt->allow_shared_certs) {
        LOG_ERROR(MOD, "%s: %zu agent certificates for %u agents; make more (deploy/make-pki.sh --agents %u) or "
                       "pass --allow-shared-certs",
                  dir, count, opt->agents, opt->agents);
        rc = -ENOENT;
        goto done;
    }
    qsort(names, count, sizeof *names, compare_names);
    uint32_t unique = (uint32_t)MAMORI_MIN(count, (size_t)opt->agents);
    t->identities = mamori_xcalloc(unique, sizeof *t->identities);
    t->identity_count = unique;
    for (uint32_t i = 0; i < unique && !rc; i++) {
        char path[4096 + 256];
        snprintf(path, sizeof path, "%s/%s.pem", dir, names[i]);
        rc = load_cert_identity(path, &t->identities[i]);
        if (rc) break;
        snprintf(path, sizeof path, "%s/%s.key", dir, names[i]);
        rc = load_key_identity(path, &t->identities[i]);
        if (!rc && opt->tenant && strcmp(opt->tenant, t->identities[i].tenant) != 0)
            LOG_WARN(MOD, "%s/%s.pem: tenant is %s, not %s: the certificate decides", dir, names[i],
                     t->identities[i].tenant, opt->tenant);
    }
    if (!rc && unique < opt->agents)
        LOG_WARN(MOD, "%u agents share %u certificates: agents with the same id supersede each other on the server",
                 opt->agents, unique);
done:
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
    return rc;
}

int sim_target_setup(const sim_options *opt, sim_target *t)
{
    memset(t, 0, sizeof *t);
    char server[512] = "", tenant[SIM_TENANT_MAX + 1] = "default", ca_file[4096];
    int rc;
    if (opt->dev_dir) {
        rc = read_dev_json(opt->dev_dir, server, sizeof server, tenant, sizeof tenant);
        if (rc) return rc;
        snprintf(ca_file, sizeof ca_file, "%s/%s", opt->dev_dir, PKI_DEV_CA_CERT);
    } else {
        snprintf(ca_file, sizeof ca_file, "%s", opt->ca_file);
    }
    if (opt->server) snprintf(server, sizeof server, "%s", opt->server);
    if (opt->tenant) snprintf(tenant, sizeof tenant, "%s", opt->tenant);

    char port[16];
    if (split_host_port(server, t->host, sizeof t->host, port, sizeof port) != 0) {
        LOG_ERROR(MOD, "server '%s': expected HOST:PORT", server);
        return -EINVAL;
    }
    rc = resolve(t->host, port, t);
    if (rc) return rc;
    snprintf(t->verify_name, sizeof t->verify_name, "%s", opt->server_name ? opt->server_name : t->host);
    unsigned char ip[16];
    t->verify_is_ip = inet_pton(AF_INET, t->verify_name, ip) == 1 || inet_pton(AF_INET6, t->verify_name, ip) == 1;

    rc = make_ssl_ctx(ca_file, t);
    if (rc) return rc;
    if (opt->dev_dir && !opt->cert_dir) {
        if (!pki_tenant_valid(tenant)) {
            LOG_ERROR(MOD, "tenant '%s': must be 1-%d bytes of [A-Za-z0-9._-]", tenant, SIM_TENANT_MAX);
            return -EINVAL;
        }
        int64_t t0 = clock_mono_ms();
        rc = mint_identities(opt, opt->dev_dir, tenant, t);
        if (!rc && opt->agents >= 1000)
            LOG_INFO(MOD, "issued %u agent certificates in %lld ms", opt->agents,
                     (long long)(clock_mono_ms() - t0));
    } else {
        rc = load_identities(opt, t);
    }
    return rc;
}

void sim_target_fini(sim_target *t)
{
    for (uint32_t i = 0; i < t->identity_count; i++) {
        free(t->identities[i].cert_der);
        EVP_PKEY_free(t->identities[i].key);
    }
    free(t->identities);
    SSL_CTX_free(t->ssl_ctx);
    memset(t, 0, sizeof *t);
}

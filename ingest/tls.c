/* ingest/tls.c — the server's TLS 1.3 context: certificate, private key, the CA agents
 * are verified against, and the rule that an agent's identity is its certificate's
 * subject (CN = agent id, O = tenant), checked during the handshake. */
#include "internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"

bool ingest_identity_valid(const char *s, size_t len, size_t max, bool agent)
{
    if (len == 0 || len > max) return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '_' || ch == '-' || (agent && (ch == ':' || ch == '@'));
        if (!ok) return false;
    }
    return true;
}

/* Copies the single entry `nid` of the subject; fails if missing, repeated or invalid. */
static int subject_field(X509_NAME *name, int nid, char *out, size_t cap, bool agent)
{
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    if (idx < 0 || X509_NAME_get_index_by_NID(name, nid, idx) >= 0) return -EINVAL;
    X509_NAME_ENTRY *e = X509_NAME_get_entry(name, idx);
    ASN1_STRING *data = X509_NAME_ENTRY_get_data(e);
    const unsigned char *bytes = ASN1_STRING_get0_data(data);
    int len = ASN1_STRING_length(data);
    if (len <= 0 || (size_t)len >= cap || !ingest_identity_valid((const char *)bytes, (size_t)len, cap - 1, agent))
        return -EINVAL;
    memcpy(out, bytes, (size_t)len);
    out[len] = '\0';
    return 0;
}

static int verify_callback(int preverify_ok, X509_STORE_CTX *ctx)
{
    if (!preverify_ok) return 0;
    if (X509_STORE_CTX_get_error_depth(ctx) != 0) return 1;
    /* The leaf must name an agent and a tenant, or there is no session. */
    X509 *cert = X509_STORE_CTX_get_current_cert(ctx);
    X509_NAME *name = X509_get_subject_name(cert);
    char agent[INGEST_MAX_AGENT_ID + 1], tenant[INGEST_MAX_TENANT + 1];
    if (subject_field(name, NID_commonName, agent, sizeof agent, true) ||
        subject_field(name, NID_organizationName, tenant, sizeof tenant, false)) {
        X509_STORE_CTX_set_error(ctx, X509_V_ERR_SUBJECT_ISSUER_MISMATCH);
        return 0;
    }
    return 1;
}

int ingest_tls_identity(SSL *ssl, char *agent_id, size_t agent_cap, char *tenant, size_t tenant_cap)
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (!cert || SSL_get_verify_result(ssl) != X509_V_OK) return -EPERM;
    X509_NAME *name = X509_get_subject_name(cert);
    if (subject_field(name, NID_commonName, agent_id, agent_cap, true) ||
        subject_field(name, NID_organizationName, tenant, tenant_cap, false))
        return -EPERM;
    return 0;
}

static int tls_error(char *err, size_t err_len, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char reason[256] = "unknown error";
    if (e) ERR_error_string_n(e, reason, sizeof reason);
    snprintf(err, err_len, "%s %s: %s", what, path ? path : "", reason);
    ERR_clear_error();
    return -EINVAL;
}

int ingest_tls_create(const mamori_config *cfg, SSL_CTX **out, char *err, size_t err_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return tls_error(err, err_len, "SSL_CTX_new", NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
    /* Tickets let a reconnecting agent skip the expensive part of the handshake. */
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"mamori", 6);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->ingest.tls_cert) != 1) {
        int rc = tls_error(err, err_len, "loading ingest.tls_cert", cfg->ingest.tls_cert);
        SSL_CTX_free(ctx);
        return rc;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->ingest.tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        int rc = tls_error(err, err_len, "loading ingest.tls_key", cfg->ingest.tls_key);
        SSL_CTX_free(ctx);
        return rc;
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->ingest.tls_ca, NULL) != 1) {
        int rc = tls_error(err, err_len, "loading ingest.tls_ca", cfg->ingest.tls_ca);
        SSL_CTX_free(ctx);
        return rc;
    }
    STACK_OF(X509_NAME) *cas = SSL_load_client_CA_file(cfg->ingest.tls_ca);
    if (cas) SSL_CTX_set_client_CA_list(ctx, cas);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_callback);
    SSL_CTX_set_verify_depth(ctx, 4);
    *out = ctx;
    return 0;
}

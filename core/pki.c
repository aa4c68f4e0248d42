/* core/pki.c — development PKI with OpenSSL 3 libcrypto: CA, server and agent
 * certificates (EC P-256, SHA-256) built field by field (no config-string parsing, so
 * minting thousands of agent certificates stays cheap), verified against the CA, and the
 * development directory. Encoding and the careful file writing are core/pki_files.c. */
#include "pki_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define PKI_NOT_BEFORE_SKEW_S 3600       /* tolerate agents whose clock is a bit behind */
#define PKI_DEV_SERVER_MIN_REMAINING_S (30 * 86400)
#define PKI_DEV_CA_NAME "Mamori development CA"

struct pki_ca {
    X509 *cert;
    EVP_PKEY *key;
};

struct pki_key {
    EVP_PKEY *pkey;
    unsigned char *point; /* uncompressed P-256 public point, or NULL for other keys */
    size_t point_len;
};



/* ---- keys ---- */

static EVP_PKEY *generate_p256(void) { return EVP_EC_gen("P-256"); }

/* Takes pkey. */
static pki_key *key_new(EVP_PKEY *pkey)
{
    pki_key *k = mamori_xcalloc(1, sizeof *k);
    k->pkey = pkey;
    char group[32];
    if (EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL) &&
        (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)) {
        size_t n = EVP_PKEY_get1_encoded_public_key(pkey, &k->point);
        if (n == 0) k->point = NULL;
        k->point_len = n;
    }
    ERR_clear_error();
    return k;
}

int pki_key_generate(pki_key **out, pki_error *err)
{
    EVP_PKEY *pkey = generate_p256();
    if (!pkey) PKI_FAIL_SSL(err, -EIO, "%s", "cannot generate a P-256 key");
    *out = key_new(pkey);
    return 0;
}

int pki_key_load(const char *path, pki_key **out, pki_error *err)
{
    EVP_PKEY *pkey;
    int rc = pki_file_load_key(path, &pkey, err);
    if (rc) return rc;
    *out = key_new(pkey);
    return 0;
}

int pki_key_write(const pki_key *key, const char *path, pki_error *err)
{
    return pki_file_write_pem(NULL, key->pkey, path, err);
}

int pki_key_encode(const pki_key *key, enum pki_encoding enc, pki_blob *out, pki_error *err)
{
    return pki_encode(NULL, key->pkey, enc, out, "key", err);
}

void pki_key_destroy(pki_key *key)
{
    if (!key) return;
    OPENSSL_free(key->point);
    EVP_PKEY_free(key->pkey);
    free(key);
}

/* ---- certificate building ---- */

enum cert_kind { CERT_CA, CERT_SERVER, CERT_AGENT };

typedef struct cert_spec {
    enum cert_kind kind;
    const char *common_name;
    const char *organization; /* NULL: none */
    EVP_PKEY *subject_key;
    const pki_key *subject_point; /* optional: the same key's cached public point (fast path) */
    X509 *issuer_cert;            /* NULL: self-signed */
    EVP_PKEY *issuer_key;
    uint32_t days;
    const char *const *names; /* CERT_SERVER: subjectAltNames */
    size_t name_count;
} cert_spec;

/* The subject public key. X509_set_pubkey() round-trips the key through OpenSSL 3's
 * encoder and decoder (three quarters of the cost of an agent certificate); with the
 * P-256 point cached in the pki_key, the SubjectPublicKeyInfo is set directly. */
static bool set_public_key(X509 *cert, const cert_spec *s)
{
    const pki_key *k = s->subject_point;
    if (!k || !k->point) return X509_set_pubkey(cert, s->subject_key) == 1;
    unsigned char *point = OPENSSL_memdup(k->point, k->point_len);
    if (!point) return false;
    if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                                OBJ_nid2obj(NID_X9_62_prime256v1), point, (int)k->point_len)) {
        OPENSSL_free(point);
        return false;
    }
    return true;
}

static bool add_ext(X509 *cert, int nid, void *value, int critical)
{
    return X509_add1_ext_i2d(cert, nid, value, critical, X509V3_ADD_DEFAULT) == 1;
}

static bool add_basic_constraints(X509 *cert, bool ca)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    if (!bc) return false;
    bc->ca = ca ? 0xFF : 0;
    bool ok = add_ext(cert, NID_basic_constraints, bc, 1);
    BASIC_CONSTRAINTS_free(bc);
    return ok;
}

/* keyUsage bits (RFC 5280 §4.2.1.3). */
enum { KU_BIT_DIGITAL_SIGNATURE = 0, KU_BIT_KEY_CERT_SIGN = 5, KU_BIT_CRL_SIGN = 6 };

static bool add_key_usage(X509 *cert, bool ca)
{
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    if (!ku) return false;
    bool ok = ca ? ASN1_BIT_STRING_set_bit(ku, KU_BIT_KEY_CERT_SIGN, 1) && ASN1_BIT_STRING_set_bit(ku, KU_BIT_CRL_SIGN, 1)
                 : ASN1_BIT_STRING_set_bit(ku, KU_BIT_DIGITAL_SIGNATURE, 1);
    ok = ok && add_ext(cert, NID_key_usage, ku, 1);
    ASN1_BIT_STRING_free(ku);
    return ok;
}

static bool add_extended_key_usage(X509 *cert, int purpose_nid)
{
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    if (!eku) return false;
    bool ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(purpose_nid)) > 0 && add_ext(cert, NID_ext_key_usage, eku, 0);
    sk_ASN1_OBJECT_free(eku); /* OBJ_nid2obj objects are static */
    return ok;
}

static bool add_key_identifiers(X509 *cert, X509 *issuer)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!X509_pubkey_digest(cert, EVP_sha1(), md, &md_len)) return false;
    ASN1_OCTET_STRING *skid = ASN1_OCTET_STRING_new();
    bool ok = skid && ASN1_OCTET_STRING_set(skid, md, (int)md_len) && add_ext(cert, NID_subject_key_identifier, skid, 0);
    ASN1_OCTET_STRING_free(skid);
    if (!ok || !issuer) return ok;
    const ASN1_OCTET_STRING *issuer_skid = X509_get0_subject_key_id(issuer);
    if (!issuer_skid) return true; /* an issuer without one: leave the AKI out */
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    if (!akid) return false;
    akid->keyid = ASN1_OCTET_STRING_dup(issuer_skid);
    ok = akid->keyid && add_ext(cert, NID_authority_key_identifier, akid, 0);
    AUTHORITY_KEYID_free(akid);
    return ok;
}

static bool add_subject_alt_names(X509 *cert, const char *const *names, size_t count)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens) return false;
    bool ok = true;
    for (size_t i = 0; ok && i < count; i++) {
        unsigned char ip[16];
        int ip_len = 0;
        if (inet_pton(AF_INET, names[i], ip) == 1)
            ip_len = 4;
        else if (inet_pton(AF_INET6, names[i], ip) == 1)
            ip_len = 16;
        GENERAL_NAME *g = GENERAL_NAME_new();
        if (!g) {
            ok = false;
            break;
        }
        if (ip_len) {
            ASN1_OCTET_STRING *s = ASN1_OCTET_STRING_new();
            ok = s && ASN1_OCTET_STRING_set(s, ip, ip_len);
            if (ok) GENERAL_NAME_set0_value(g, GEN_IPADD, s);
            else ASN1_OCTET_STRING_free(s);
        } else {
            ASN1_IA5STRING *s = ASN1_IA5STRING_new();
            ok = s && ASN1_STRING_set(s, names[i], (int)strlen(names[i]));
            if (ok) GENERAL_NAME_set0_value(g, GEN_DNS, s);
            else ASN1_IA5STRING_free(s);
        }
        if (ok && sk_GENERAL_NAME_push(gens, g) <= 0) ok = false;
        if (!ok) GENERAL_NAME_free(g);
    }
    ok = ok && add_ext(cert, NID_subject_alt_name, gens, 0);
    GENERAL_NAMES_free(gens);
    return ok;
}

static bool set_random_serial(X509 *cert)
{
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
    bytes[0] = (unsigned char)((bytes[0] & 0x7F) | 0x40); /* positive, full 16 bytes */
    BIGNUM *bn = BN_bin2bn(bytes, sizeof bytes, NULL);
    bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok;
}

static bool set_subject(X509 *cert, const char *cn, const char *o)
{
    X509_NAME *name = X509_get_subject_name(cert);
    if (o && !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)o, -1, -1, 0))
        return false;
    return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) == 1;
}

/* Builds and signs a certificate; returns it owned in *out, or NULL with OpenSSL's error
 * queue holding the reason. */
static X509 *build_cert(const cert_spec *s)
{
    X509 *cert = X509_new();
    if (!cert) return NULL;
    X509 *issuer = s->issuer_cert ? s->issuer_cert : cert;
    bool ok = X509_set_version(cert, X509_VERSION_3) && set_random_serial(cert) &&
              X509_gmtime_adj(X509_getm_notBefore(cert), -PKI_NOT_BEFORE_SKEW_S) &&
              X509_gmtime_adj(X509_getm_notAfter(cert), (long)s->days * 86400L) &&
              set_subject(cert, s->common_name, s->organization) &&
              X509_set_issuer_name(cert, X509_get_subject_name(issuer)) && set_public_key(cert, s) &&
              add_basic_constraints(cert, s->kind == CERT_CA) && add_key_usage(cert, s->kind == CERT_CA) &&
              add_key_identifiers(cert, s->issuer_cert);
    if (ok && s->kind == CERT_SERVER)
        ok = add_extended_key_usage(cert, NID_server_auth) && add_subject_alt_names(cert, s->names, s->name_count);
    if (ok && s->kind == CERT_AGENT) ok = add_extended_key_usage(cert, NID_client_auth);
    if (ok) ok = X509_sign(cert, s->issuer_key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* ---- CA ---- */

int pki_ca_create(const char *cert_path, const char *key_path, const char *common_name, pki_ca **out,
                  pki_error *err)
{
    int rc = pki_file_refuse_existing(cert_path, key_path, err);
    if (rc) return rc;
    EVP_PKEY *key = generate_p256();
    if (!key) PKI_FAIL_SSL(err, -EIO, "%s: cannot generate the CA key", key_path);
    cert_spec spec = {.kind = CERT_CA,
                      .common_name = common_name && *common_name ? common_name : PKI_DEV_CA_NAME,
                      .subject_key = key,
                      .issuer_key = key,
                      .days = PKI_CA_DAYS};
    X509 *cert = build_cert(&spec);
    if (!cert) {
        EVP_PKEY_free(key);
        PKI_FAIL_SSL(err, -EIO, "%s: cannot build the CA certificate", cert_path);
    }
    rc = pki_file_write_pair(cert, key, cert_path, key_path, err);
    if (rc || !out) {
        X509_free(cert);
        EVP_PKEY_free(key);
        return rc;
    }
    pki_ca *ca = mamori_xcalloc(1, sizeof *ca);
    ca->cert = cert;
    ca->key = key;
    *out = ca;
    return 0;
}

int pki_ca_load(const char *cert_path, const char *key_path, pki_ca **out, pki_error *err)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc = pki_file_load_cert(cert_path, &cert, err);
    if (rc) return rc;
    rc = pki_file_load_key(key_path, &key, err);
    if (rc) goto fail;
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        rc = pki_fail(err, -EINVAL, "%s: key does not belong to the certificate %s", key_path, cert_path);
        goto fail;
    }
    if (X509_check_ca(cert) < 1) {
        rc = pki_fail(err, -EINVAL, "%s: not a CA certificate (basicConstraints CA:TRUE missing)", cert_path);
        goto fail;
    }
    pki_ca *ca = mamori_xcalloc(1, sizeof *ca);
    ca->cert = cert;
    ca->key = key;
    *out = ca;
    return 0;
fail:
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

void pki_ca_destroy(pki_ca *ca)
{
    if (!ca) return;
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca);
}

int pki_ca_cert_encode(const pki_ca *ca, enum pki_encoding enc, pki_blob *out, pki_error *err)
{
    return pki_encode(ca->cert, NULL, enc, out, "CA", err);
}

/* ---- server ---- */

static bool server_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 253) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '.' || c == ':' || c == '*';
        if (!ok) return false;
    }
    return true;
}

int pki_issue_server(const pki_ca *ca, const char *const *names, size_t name_count, const char *cert_path,
                     const char *key_path, pki_error *err)
{
    if (name_count == 0 || name_count > PKI_SERVER_NAMES_MAX)
        return pki_fail(err, -EINVAL, "%s: a server certificate needs 1 to %d names, got %zu", cert_path,
                    PKI_SERVER_NAMES_MAX, name_count);
    for (size_t i = 0; i < name_count; i++)
        if (!server_name_valid(names[i]))
            return pki_fail(err, -EINVAL, "%s: server name '%s' is neither a host name nor an IP address", cert_path,
                        names[i]);
    int rc = pki_file_refuse_existing(cert_path, key_path, err);
    if (rc) return rc;
    EVP_PKEY *key = generate_p256();
    if (!key) PKI_FAIL_SSL(err, -EIO, "%s: cannot generate the server key", key_path);
    cert_spec spec = {.kind = CERT_SERVER,
                      .common_name = names[0],
                      .subject_key = key,
                      .issuer_cert = ca->cert,
                      .issuer_key = ca->key,
                      .days = PKI_SERVER_DAYS,
                      .names = names,
                      .name_count = name_count};
    X509 *cert = build_cert(&spec);
    if (!cert) {
        EVP_PKEY_free(key);
        PKI_FAIL_SSL(err, -EIO, "%s: cannot build the server certificate", cert_path);
    }
    rc = pki_file_write_pair(cert, key, cert_path, key_path, err);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* ---- agents ---- */

static bool identity_valid(const char *s, size_t max, bool agent)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-' || (agent && (c == ':' || c == '@'));
        if (!ok) return false;
    }
    return true;
}

bool pki_agent_id_valid(const char *agent_id) { return identity_valid(agent_id, PKI_AGENT_ID_MAX, true); }
bool pki_tenant_valid(const char *tenant) { return identity_valid(tenant, PKI_TENANT_MAX, false); }

static int check_identity(const char *agent_id, const char *tenant, pki_error *err)
{
    if (!pki_agent_id_valid(agent_id))
        return pki_fail(err, -EINVAL, "agent id '%.140s': must be 1-%d bytes of [A-Za-z0-9._:@-]", agent_id,
                    PKI_AGENT_ID_MAX);
    if (!pki_tenant_valid(tenant))
        return pki_fail(err, -EINVAL, "agent %s: tenant '%.80s' must be 1-%d bytes of [A-Za-z0-9._-]", agent_id, tenant,
                    PKI_TENANT_MAX);
    return 0;
}

static X509 *build_agent_cert(const pki_ca *ca, EVP_PKEY *key, const pki_key *point, const char *agent_id,
                              const char *tenant, uint32_t days)
{
    cert_spec spec = {.kind = CERT_AGENT,
                      .common_name = agent_id,
                      .organization = tenant,
                      .subject_key = key,
                      .subject_point = point,
                      .issuer_cert = ca->cert,
                      .issuer_key = ca->key,
                      .days = days ? days : PKI_AGENT_DAYS};
    return build_cert(&spec);
}

int pki_issue_agent_cert(const pki_ca *ca, const pki_key *key, const char *agent_id, const char *tenant,
                         uint32_t days, enum pki_encoding enc, pki_blob *cert_out, pki_error *err)
{
    int rc = check_identity(agent_id, tenant, err);
    if (rc) return rc;
    X509 *cert = build_agent_cert(ca, key->pkey, key, agent_id, tenant, days);
    if (!cert) PKI_FAIL_SSL(err, -EIO, "agent %s: cannot build the certificate", agent_id);
    rc = pki_encode(cert, NULL, enc, cert_out, agent_id, err);
    X509_free(cert);
    return rc;
}

int pki_issue_agent(const pki_ca *ca, const char *agent_id, const char *tenant, const char *cert_path,
                    const char *key_path, pki_error *err)
{
    int rc = check_identity(agent_id, tenant, err);
    if (rc) return rc;
    rc = pki_file_refuse_existing(cert_path, key_path, err);
    if (rc) return rc;
    EVP_PKEY *key = generate_p256();
    if (!key) PKI_FAIL_SSL(err, -EIO, "%s: cannot generate the agent key", key_path);
    X509 *cert = build_agent_cert(ca, key, NULL, agent_id, tenant, 0);
    if (!cert) {
        EVP_PKEY_free(key);
        PKI_FAIL_SSL(err, -EIO, "%s: cannot build the agent certificate", cert_path);
    }
    rc = pki_file_write_pair(cert, key, cert_path, key_path, err);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* ---- verification ---- */

/* Verifies `cert` against the CA alone, for `purpose` (X509_PURPOSE_*), and that it stays
 * valid for at least min_remaining_s more seconds. */
static int verify_cert(const pki_ca *ca, X509 *cert, int purpose, long min_remaining_s, const char *what,
                       pki_error *err)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = 0;
    if (!store || !ctx || !X509_STORE_add_cert(store, ca->cert) || !X509_STORE_CTX_init(ctx, store, cert, NULL)) {
        char reason[160];
        rc = pki_fail(err, -EIO, "%s: cannot set up verification: %s", what, pki_openssl_reason(reason, sizeof reason));
        goto done;
    }
    X509_STORE_CTX_set_purpose(ctx, purpose);
    if (X509_verify_cert(ctx) != 1) {
        rc = pki_fail(err, -EKEYREJECTED, "%s: does not verify against the CA: %s", what,
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        ERR_clear_error();
        goto done;
    }
    if (min_remaining_s > 0) {
        time_t horizon = time(NULL) + min_remaining_s;
        if (X509_cmp_time(X509_get0_notAfter(cert), &horizon) < 0)
            rc = pki_fail(err, -EKEYEXPIRED, "%s: expires within %ld days", what, min_remaining_s / 86400);
    }
done:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

int pki_verify_file(const pki_ca *ca, const char *cert_path, const char *purpose, pki_error *err)
{
    int purpose_id;
    if (strcmp(purpose, "server") == 0)
        purpose_id = X509_PURPOSE_SSL_SERVER;
    else if (strcmp(purpose, "client") == 0)
        purpose_id = X509_PURPOSE_SSL_CLIENT;
    else
        return pki_fail(err, -EINVAL, "%s: unknown purpose '%s' (server or client)", cert_path, purpose);
    X509 *cert;
    int rc = pki_file_load_cert(cert_path, &cert, err);
    if (rc) return rc;
    rc = verify_cert(ca, cert, purpose_id, 0, cert_path, err);
    X509_free(cert);
    return rc;
}

/* ---- development directory ---- */

static int make_dirs(const char *dir, pki_error *err)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) return pki_fail(err, -ENAMETOOLONG, "%s: bad directory name", dir);
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return pki_fail(err, -errno, "%s: cannot create directory: %s", path, strerror(errno));
        path[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return pki_fail(err, -ENOTDIR, "%s: not a directory", dir);
    return 0;
}

static int join_path(char *out, size_t cap, const char *dir, const char *name, pki_error *err)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return pki_fail(err, -ENAMETOOLONG, "%s/%s: path too long", dir, name);
    return 0;
}

/* True when the server pair exists, belongs together and verifies for a while longer. */
static bool dev_server_usable(const pki_ca *ca, const char *cert_path, const char *key_path)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    pki_error ignored;
    bool ok = pki_file_load_cert(cert_path, &cert, &ignored) == 0 && pki_file_load_key(key_path, &key, &ignored) == 0 &&
              X509_check_private_key(cert, key) == 1 &&
              verify_cert(ca, cert, X509_PURPOSE_SSL_SERVER, PKI_DEV_SERVER_MIN_REMAINING_S, cert_path, &ignored) == 0;
    ERR_clear_error();
    EVP_PKEY_free(key);
    X509_free(cert);
    return ok;
}

int pki_dev_ensure(const char *dir, pki_dev_result *out, pki_error *err)
{
    pki_dev_result result = {0};
    char ca_cert[PATH_MAX], ca_key[PATH_MAX], server_cert[PATH_MAX], server_key[PATH_MAX];
    int rc = make_dirs(dir, err);
    if (rc) return rc;
    if ((rc = join_path(ca_cert, sizeof ca_cert, dir, PKI_DEV_CA_CERT, err)) ||
        (rc = join_path(ca_key, sizeof ca_key, dir, PKI_DEV_CA_KEY, err)) ||
        (rc = join_path(server_cert, sizeof server_cert, dir, PKI_DEV_SERVER_CERT, err)) ||
        (rc = join_path(server_key, sizeof server_key, dir, PKI_DEV_SERVER_KEY, err)))
        return rc;

    pki_ca *ca = NULL;
    bool have_cert = pki_file_exists(ca_cert), have_key = pki_file_exists(ca_key);
    if (have_cert && have_key) {
        rc = pki_ca_load(ca_cert, ca_key, &ca, err);
    } else if (!have_cert && !have_key) {
        rc = pki_ca_create(ca_cert, ca_key, PKI_DEV_CA_NAME, &ca, err);
        result.ca_created = rc == 0;
    } else {
        rc = pki_fail(err, -ENOENT, "%s exists but %s does not: restore it, or remove %s to make a new CA", 
                  have_cert ? ca_cert : ca_key, have_cert ? ca_key : ca_cert, have_cert ? ca_cert : ca_key);
    }
    if (rc) return rc;

    if (!dev_server_usable(ca, server_cert, server_key)) {
        /* The server key is disposable: a missing, stale or foreign pair is replaced. */
        if ((unlink(server_cert) != 0 && errno != ENOENT) || (unlink(server_key) != 0 && errno != ENOENT)) {
            rc = pki_fail(err, -errno, "%s: cannot replace the server certificate: %s", dir, strerror(errno));
            goto done;
        }
        static const char *const names[] = {"localhost", "127.0.0.1", "::1"};
        rc = pki_issue_server(ca, names, MAMORI_ARRAY_LEN(names), server_cert, server_key, err);
        result.server_created = rc == 0;
    }
done:
    pki_ca_destroy(ca);
    if (rc == 0 && out) *out = result;
    return rc;
}

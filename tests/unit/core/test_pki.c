/* Unit tests: core/pki.c — certificates chain to their CA and only to it, carry the right
 * subject, SANs and EKUs, key files are private, nothing is ever overwritten, errors name
 * the file, and the `--dev` directory is idempotent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/pki.h"

typedef struct fixture {
    char dir[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/mamori-test-pki-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    *state = f;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fixture *f = *state;
    nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void path_in(const fixture *f, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", f->dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static X509 *read_cert_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    X509 *cert = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(cert);
    return cert;
}

static X509 *cert_from_blob(const pki_blob *b, enum pki_encoding enc)
{
    X509 *cert = NULL;
    if (enc == PKI_DER) {
        const unsigned char *p = b->data;
        cert = d2i_X509(NULL, &p, (long)b->len);
    } else {
        BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
        cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    assert_non_null(cert);
    return cert;
}

/* X509_verify_cert against a store holding only `ca`; returns the verify error code. */
static int verify_against(X509 *ca, X509 *cert, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
    X509_STORE_CTX_set_purpose(ctx, purpose);
    int ok = X509_verify_cert(ctx);
    int error = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok == 1 ? X509_V_OK : (error ? error : -1);
}

static void subject_entry(X509 *cert, int nid, char *out, size_t cap)
{
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, out, (int)cap);
    assert_true(n > 0);
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static pki_ca *make_ca(const fixture *f, const char *cert_name, const char *key_name)
{
    char cert[256], key[256];
    path_in(f, cert_name, cert, sizeof cert);
    path_in(f, key_name, key, sizeof key);
    pki_ca *ca = NULL;
    pki_error err;
    int rc = pki_ca_create(cert, key, "Test CA", &ca, &err);
    if (rc) fail_msg("pki_ca_create: %s", err.msg);
    assert_non_null(ca);
    return ca;
}

static void test_ca_server_agent_verify(void **state)
{
    fixture *f = *state;
    char ca_pem[256], ca_key[256], srv_pem[256], srv_key[256], ag_pem[256], ag_key[256];
    path_in(f, "ca.pem", ca_pem, sizeof ca_pem);
    path_in(f, "ca.key", ca_key, sizeof ca_key);
    path_in(f, "server.pem", srv_pem, sizeof srv_pem);
    path_in(f, "server.key", srv_key, sizeof srv_key);
    path_in(f, "ws-0042.pem", ag_pem, sizeof ag_pem);
    path_in(f, "ws-0042.key", ag_key, sizeof ag_key);
    pki_ca *ca = make_ca(f, "ca.pem", "ca.key");
    pki_error err;

    /* Key files are private, certificates readable. */
    assert_int_equal(file_mode(ca_key), 0600);
    assert_int_equal(file_mode(ca_pem), 0644);

    X509 *ca_cert = read_cert_file(ca_pem);
    assert_true(X509_check_ca(ca_cert) >= 1);
    assert_true(X509_get_key_usage(ca_cert) & KU_KEY_CERT_SIGN);
    assert_int_equal(verify_against(ca_cert, ca_cert, X509_PURPOSE_ANY), X509_V_OK);
    /* Ten years, give or take the clock skew allowance. */
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(ca_cert), X509_get0_notAfter(ca_cert)), 1);
    assert_true(days >= 3650 && days <= 3651);

    const char *names[] = {"localhost", "127.0.0.1", "ingest.example.com"};
    int rc = pki_issue_server(ca, names, 3, srv_pem, srv_key, &err);
    if (rc) fail_msg("pki_issue_server: %s", err.msg);
    assert_int_equal(file_mode(srv_key), 0600);
    X509 *srv = read_cert_file(srv_pem);
    assert_int_equal(verify_against(ca_cert, srv, X509_PURPOSE_SSL_SERVER), X509_V_OK);
    assert_true(X509_get_extended_key_usage(srv) & XKU_SSL_SERVER);
    assert_int_equal(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv, "ingest.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv, "other.example.com", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "10.0.0.1", 0), 0);
    /* A server certificate is no client certificate. */
    assert_int_not_equal(verify_against(ca_cert, srv, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    assert_int_equal(pki_verify_file(ca, srv_pem, "server", &err), 0);

    rc = pki_issue_agent(ca, "ws-0042", "acme", ag_pem, ag_key, &err);
    if (rc) fail_msg("pki_issue_agent: %s", err.msg);
    assert_int_equal(file_mode(ag_key), 0600);
    X509 *agent = read_cert_file(ag_pem);
    assert_int_equal(verify_against(ca_cert, agent, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    assert_true(X509_get_extended_key_usage(agent) & XKU_SSL_CLIENT);
    assert_int_equal(X509_check_ca(agent), 0);
    char cn[160], o[80];
    subject_entry(agent, NID_commonName, cn, sizeof cn);
    subject_entry(agent, NID_organizationName, o, sizeof o);
    assert_string_equal(cn, "ws-0042");
    assert_string_equal(o, "acme");
    assert_int_equal(pki_verify_file(ca, ag_pem, "client", &err), 0);

    /* In memory, PEM and DER, with one shared key. */
    pki_key *key = NULL;
    assert_int_equal(pki_key_generate(&key, &err), 0);
    for (int enc = PKI_PEM; enc <= PKI_DER; enc++) {
        pki_blob blob;
        rc = pki_issue_agent_cert(ca, key, "sim-00007", "default", 30, (enum pki_encoding)enc, &blob, &err);
        if (rc) fail_msg("pki_issue_agent_cert: %s", err.msg);
        if (enc == PKI_PEM) assert_non_null(strstr((const char *)blob.data, "BEGIN CERTIFICATE"));
        X509 *mem = cert_from_blob(&blob, (enum pki_encoding)enc);
        assert_int_equal(verify_against(ca_cert, mem, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
        subject_entry(mem, NID_commonName, cn, sizeof cn);
        subject_entry(mem, NID_organizationName, o, sizeof o);
        assert_string_equal(cn, "sim-00007");
        assert_string_equal(o, "default");
        assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(mem), X509_get0_notAfter(mem)), 1);
        assert_int_equal(days, 30);
        X509_free(mem);
        pki_blob_free(&blob);
    }
    /* The key round-trips through its encodings. */
    pki_blob key_pem;
    assert_int_equal(pki_key_encode(key, PKI_PEM, &key_pem, &err), 0);
    assert_non_null(strstr((const char *)key_pem.data, "BEGIN PRIVATE KEY"));
    pki_blob_free(&key_pem);

    pki_key_destroy(key);
    X509_free(agent);
    X509_free(srv);
    X509_free(ca_cert);
    pki_ca_destroy(ca);
}

static void test_other_ca_fails(void **state)
{
    fixture *f = *state;
    pki_ca *ca1 = make_ca(f, "ca1.pem", "ca1.key");
    pki_ca *ca2 = make_ca(f, "ca2.pem", "ca2.key");
    char ca1_pem[256], ag_pem[256], ag_key[256];
    path_in(f, "ca1.pem", ca1_pem, sizeof ca1_pem);
    path_in(f, "rogue.pem", ag_pem, sizeof ag_pem);
    path_in(f, "rogue.key", ag_key, sizeof ag_key);
    pki_error err;
    assert_int_equal(pki_issue_agent(ca2, "rogue", "acme", ag_pem, ag_key, &err), 0);

    X509 *ca1_cert = read_cert_file(ca1_pem);
    X509 *rogue = read_cert_file(ag_pem);
    int verdict = verify_against(ca1_cert, rogue, X509_PURPOSE_SSL_CLIENT);
    assert_true(verdict == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                verdict == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT);
    assert_int_equal(pki_verify_file(ca1, ag_pem, "client", &err), -EKEYREJECTED);
    assert_non_null(strstr(err.msg, ag_pem));

    /* Same subject name, different key: the signature check must catch it. */
    pki_key *key = NULL;
    assert_int_equal(pki_key_generate(&key, &err), 0);
    pki_blob blob;
    assert_int_equal(pki_issue_agent_cert(ca2, key, "sim-1", "t", 0, PKI_DER, &blob, &err), 0);
    X509 *mem = cert_from_blob(&blob, PKI_DER);
    assert_int_not_equal(verify_against(ca1_cert, mem, X509_PURPOSE_SSL_CLIENT), X509_V_OK);

    X509_free(mem);
    pki_blob_free(&blob);
    pki_key_destroy(key);
    X509_free(rogue);
    X509_free(ca1_cert);
    pki_ca_destroy(ca2);
    pki_ca_destroy(ca1);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char *data = calloc(1, 65536);
    size_t n = fread(data, 1, 65535, fp);
    fclose(fp);
    assert_true(n > 0);
    return data;
}

static void test_never_overwrites(void **state)
{
    fixture *f = *state;
    pki_ca *ca = make_ca(f, "ca.pem", "ca.key");
    char ca_pem[256], ca_key[256];
    path_in(f, "ca.pem", ca_pem, sizeof ca_pem);
    path_in(f, "ca.key", ca_key, sizeof ca_key);
    char *before = slurp(ca_key);
    pki_error err;
    assert_int_equal(pki_ca_create(ca_pem, ca_key, NULL, NULL, &err), -EEXIST);
    assert_non_null(strstr(err.msg, ca_pem));
    char other[256];
    path_in(f, "other.pem", other, sizeof other);
    /* Only the key exists under that name: still refused, and nothing is left behind. */
    assert_int_equal(pki_ca_create(other, ca_key, NULL, NULL, &err), -EEXIST);
    assert_int_equal(access(other, F_OK), -1);
    char *after = slurp(ca_key);
    assert_string_equal(before, after);
    assert_int_equal(pki_issue_agent(ca, "a", "t", ca_pem, other, &err), -EEXIST);
    free(before);
    free(after);
    pki_ca_destroy(ca);
}

static void test_errors_name_the_file(void **state)
{
    fixture *f = *state;
    char missing[256], garbage[256], key_path[256];
    path_in(f, "missing.pem", missing, sizeof missing);
    path_in(f, "garbage.pem", garbage, sizeof garbage);
    path_in(f, "garbage.key", key_path, sizeof key_path);
    pki_ca *ca = NULL;
    pki_error err;
    assert_int_equal(pki_ca_load(missing, key_path, &ca, &err), -ENOENT);
    assert_non_null(strstr(err.msg, missing));

    FILE *fp = fopen(garbage, "w");
    fputs("this is not a certificate\n", fp);
    fclose(fp);
    assert_int_equal(pki_ca_load(garbage, key_path, &ca, &err), -EINVAL);
    assert_non_null(strstr(err.msg, garbage));
    assert_non_null(strstr(err.msg, "PEM")); /* OpenSSL's reason is in the message */

    /* A CA certificate with somebody else's key. */
    pki_ca *real = make_ca(f, "ca.pem", "ca.key");
    pki_ca *other = make_ca(f, "ca2.pem", "ca2.key");
    char ca_pem[256], ca2_key[256];
    path_in(f, "ca.pem", ca_pem, sizeof ca_pem);
    path_in(f, "ca2.key", ca2_key, sizeof ca2_key);
    assert_int_equal(pki_ca_load(ca_pem, ca2_key, &ca, &err), -EINVAL);
    assert_non_null(strstr(err.msg, ca2_key));

    /* A leaf certificate is not a CA. */
    char leaf[256], leaf_key[256];
    path_in(f, "leaf.pem", leaf, sizeof leaf);
    path_in(f, "leaf.key", leaf_key, sizeof leaf_key);
    assert_int_equal(pki_issue_agent(real, "a", "t", leaf, leaf_key, &err), 0);
    assert_int_equal(pki_ca_load(leaf, leaf_key, &ca, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "not a CA"));

    /* Unwritable destination. */
    assert_int_equal(pki_ca_create("/nonexistent-dir/ca.pem", "/nonexistent-dir/ca.key", NULL, NULL, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/ca."));

    pki_ca_destroy(other);
    pki_ca_destroy(real);
}

static void test_identity_rules(void **state)
{
    (void)state;
    assert_true(pki_agent_id_valid("ws-0042"));
    assert_true(pki_agent_id_valid("host.example.com:agent@1_x"));
    assert_false(pki_agent_id_valid(""));
    assert_false(pki_agent_id_valid("has space"));
    assert_false(pki_agent_id_valid("slash/no"));
    char long_id[PKI_AGENT_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_false(pki_agent_id_valid(long_id));
    long_id[PKI_AGENT_ID_MAX] = '\0';
    assert_true(pki_agent_id_valid(long_id));
    assert_true(pki_tenant_valid("acme-corp_1.eu"));
    assert_false(pki_tenant_valid("a:b"));
    assert_false(pki_tenant_valid("a@b"));
    assert_false(pki_tenant_valid(""));
}

static void test_bad_identity_is_refused(void **state)
{
    fixture *f = *state;
    pki_ca *ca = make_ca(f, "ca.pem", "ca.key");
    pki_key *key = NULL;
    pki_error err;
    assert_int_equal(pki_key_generate(&key, &err), 0);
    pki_blob blob = {0};
    assert_int_equal(pki_issue_agent_cert(ca, key, "bad id", "t", 0, PKI_PEM, &blob, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "bad id"));
    assert_int_equal(pki_issue_agent_cert(ca, key, "good", "bad:tenant", 0, PKI_PEM, &blob, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "bad:tenant"));
    const char *names[] = {"bad,name"};
    char c[256], k[256];
    path_in(f, "s.pem", c, sizeof c);
    path_in(f, "s.key", k, sizeof k);
    assert_int_equal(pki_issue_server(ca, names, 1, c, k, &err), -EINVAL);
    assert_int_equal(access(k, F_OK), -1);
    pki_key_destroy(key);
    pki_ca_destroy(ca);
}

static void test_dev_directory_is_idempotent(void **state)
{
    fixture *f = *state;
    char dir[256], ca_pem[256], ca_key[256], srv_pem[256], srv_key[256];
    path_in(f, "dev/nested", dir, sizeof dir);
    path_in(f, "dev/nested/ca.pem", ca_pem, sizeof ca_pem);
    path_in(f, "dev/nested/ca.key", ca_key, sizeof ca_key);
    path_in(f, "dev/nested/server.pem", srv_pem, sizeof srv_pem);
    path_in(f, "dev/nested/server.key", srv_key, sizeof srv_key);
    pki_dev_result r;
    pki_error err;
    int rc = pki_dev_ensure(dir, &r, &err);
    if (rc) fail_msg("pki_dev_ensure: %s", err.msg);
    assert_true(r.ca_created);
    assert_true(r.server_created);
    assert_int_equal(file_mode(ca_key), 0600);
    assert_int_equal(file_mode(srv_key), 0600);
    X509 *ca_cert = read_cert_file(ca_pem);
    X509 *srv = read_cert_file(srv_pem);
    assert_int_equal(verify_against(ca_cert, srv, X509_PURPOSE_SSL_SERVER), X509_V_OK);
    assert_int_equal(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
    X509_free(srv);

    /* Second run: everything kept byte for byte. */
    char *ca_before = slurp(ca_key), *srv_before = slurp(srv_pem);
    assert_int_equal(pki_dev_ensure(dir, &r, &err), 0);
    assert_false(r.ca_created);
    assert_false(r.server_created);
    char *ca_after = slurp(ca_key), *srv_after = slurp(srv_pem);
    assert_string_equal(ca_before, ca_after);
    assert_string_equal(srv_before, srv_after);

    /* A lost server key: the pair is replaced, the CA kept. */
    assert_int_equal(unlink(srv_key), 0);
    assert_int_equal(pki_dev_ensure(dir, &r, &err), 0);
    assert_false(r.ca_created);
    assert_true(r.server_created);
    srv = read_cert_file(srv_pem);
    assert_int_equal(verify_against(ca_cert, srv, X509_PURPOSE_SSL_SERVER), X509_V_OK);
    X509_free(srv);

    /* Half a CA is never guessed at. */
    assert_int_equal(unlink(ca_pem), 0);
    assert_int_equal(pki_dev_ensure(dir, &r, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "ca.key"));
    assert_int_equal(access(ca_pem, F_OK), -1);

    free(ca_before);
    free(ca_after);
    free(srv_before);
    free(srv_after);
    X509_free(ca_cert);
}

static void test_many_agents_one_key(void **state)
{
    fixture *f = *state;
    pki_ca *ca = make_ca(f, "ca.pem", "ca.key");
    char ca_pem[256];
    path_in(f, "ca.pem", ca_pem, sizeof ca_pem);
    X509 *ca_cert = read_cert_file(ca_pem);
    pki_key *key = NULL;
    pki_error err;
    assert_int_equal(pki_key_generate(&key, &err), 0);
    enum { COUNT = 200 };
    ASN1_INTEGER *serials[COUNT];
    for (int i = 0; i < COUNT; i++) {
        char id[32];
        snprintf(id, sizeof id, "sim-%05d", i);
        pki_blob blob;
        assert_int_equal(pki_issue_agent_cert(ca, key, id, "default", 0, PKI_DER, &blob, &err), 0);
        X509 *cert = cert_from_blob(&blob, PKI_DER);
        assert_int_equal(verify_against(ca_cert, cert, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
        serials[i] = ASN1_INTEGER_dup(X509_get0_serialNumber(cert));
        for (int j = 0; j < i; j++) assert_int_not_equal(ASN1_INTEGER_cmp(serials[i], serials[j]), 0);
        X509_free(cert);
        pki_blob_free(&blob);
    }
    for (int i = 0; i < COUNT; i++) ASN1_INTEGER_free(serials[i]);
    pki_key_destroy(key);
    X509_free(ca_cert);
    pki_ca_destroy(ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ca_server_agent_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_ca_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_overwrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_name_the_file, setup, teardown),
        cmocka_unit_test(test_identity_rules),
        cmocka_unit_test_setup_teardown(test_bad_identity_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dev_directory_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_agents_one_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

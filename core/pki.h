/* core/pki.h — the development PKI behind mutual TLS between agents and ingest
 * (docs/protocol.md §1): a CA, server certificates and agent (client) certificates, all
 * EC P-256 with SHA-256 signatures.
 *
 * Users: `mamorid --dev DIR` (pki_dev_ensure: CA + server certificate for
 * localhost/127.0.0.1), mamori-agent-sim (thousands of agent certificates minted in
 * memory from the dev CA) and the tests. Production operators use deploy/make-pki.sh
 * (the openssl CLI) or their own CA; a server given certificate files never needs this.
 *
 * Errors: every function that can fail returns 0 or a negative errno-style code and
 * writes a message naming the file (or the agent) and OpenSSL's reason to *err.
 * Files are written whole or not at all (temporary file, fsync, link into place) and an
 * existing file is never overwritten (-EEXIST). Private keys are written mode 0600,
 * certificates 0644. No OpenSSL type appears in this header. */
#ifndef MAMORI_CORE_PKI_H
#define MAMORI_CORE_PKI_H

#include "base.h"

#define PKI_CA_DAYS 3650     /* CA validity: 10 years */
#define PKI_SERVER_DAYS 825  /* server certificates (the longest browsers accept) */
#define PKI_AGENT_DAYS 825   /* agent certificates */
#define PKI_AGENT_ID_MAX 128 /* subject CN = agent id: [A-Za-z0-9._:@-], 1..128 bytes */
#define PKI_TENANT_MAX 64    /* subject O = tenant: [A-Za-z0-9._-], 1..64 bytes */
#define PKI_SERVER_NAMES_MAX 32

/* Files of a development directory (`mamorid --dev DIR`, `mamori-agent-sim --dev DIR`). */
#define PKI_DEV_CA_CERT "ca.pem"
#define PKI_DEV_CA_KEY "ca.key"
#define PKI_DEV_SERVER_CERT "server.pem"
#define PKI_DEV_SERVER_KEY "server.key"

typedef struct pki_error {
    char msg[512];
} pki_error;

/* A CA certificate with its private key, in memory: the issuer of everything below. */
typedef struct pki_ca pki_ca;
/* An EC P-256 private key. */
typedef struct pki_key pki_key;

enum pki_encoding { PKI_PEM = 0, PKI_DER = 1 };

/* Bytes returned by the encoders; owned by the caller, release with pki_blob_free.
 * PEM blobs are NUL-terminated (the NUL is not counted in len). */
typedef struct pki_blob {
    uint8_t *data;
    size_t len;
} pki_blob;
void pki_blob_free(pki_blob *b);

/* ---- CA ---- */

/* Creates a self-signed CA (P-256, PKI_CA_DAYS, basicConstraints critical CA:TRUE,
 * keyUsage critical keyCertSign+cRLSign) with subject CN = common_name (NULL or "":
 * "Mamori development CA"), writes it to cert_path (0644) and its key to key_path (0600).
 * Refuses with -EEXIST when either file exists. *out (optional, may be NULL) returns the
 * CA, owned by the caller. */
int pki_ca_create(const char *cert_path, const char *key_path, const char *common_name, pki_ca **out,
                  pki_error *err) MAMORI_WUR;
/* Loads a CA certificate and its key (PEM), checks that they belong together and that
 * the certificate is a CA. Returns an owned pki_ca. */
int pki_ca_load(const char *cert_path, const char *key_path, pki_ca **out, pki_error *err) MAMORI_WUR;
/* NULL is a no-op (as for pki_key_destroy). */
void pki_ca_destroy(pki_ca *ca);
/* The CA certificate, encoded; owned by the caller. */
int pki_ca_cert_encode(const pki_ca *ca, enum pki_encoding enc, pki_blob *out, pki_error *err) MAMORI_WUR;

/* ---- keys ---- */

/* Generates a P-256 key (the expensive step of issuing; see pki_issue_agent_cert).
 * *out is owned by the caller: pki_key_destroy. */
int pki_key_generate(pki_key **out, pki_error *err) MAMORI_WUR;
/* Loads an unencrypted PEM private key; *out owned by the caller. */
int pki_key_load(const char *path, pki_key **out, pki_error *err) MAMORI_WUR;
/* Writes the key (unencrypted PKCS#8 PEM) to path with mode 0600; -EEXIST if it exists. */
int pki_key_write(const pki_key *key, const char *path, pki_error *err) MAMORI_WUR;
/* PKCS#8, PEM or DER; owned by the caller. */
int pki_key_encode(const pki_key *key, enum pki_encoding enc, pki_blob *out, pki_error *err) MAMORI_WUR;
void pki_key_destroy(pki_key *key);

/* ---- server certificates ---- */

/* Issues a server certificate (serverAuth, keyUsage digitalSignature, CA:FALSE) with a
 * fresh key, subject CN = names[0] and one subjectAltName per name: an IPv4/IPv6 literal
 * becomes an IP SAN, anything else a DNS SAN ("localhost", "ingest.example.com"). Borrows
 * everything; writes cert_path (0644) and key_path (0600), -EEXIST if either exists. */
int pki_issue_server(const pki_ca *ca, const char *const *names, size_t name_count, const char *cert_path,
                     const char *key_path, pki_error *err) MAMORI_WUR;

/* ---- agent (client) certificates ---- */

/* Protocol §1 identity rules: agent id 1..128 of [A-Za-z0-9._:@-], tenant 1..64 of
 * [A-Za-z0-9._-]. */
bool pki_agent_id_valid(const char *agent_id);
bool pki_tenant_valid(const char *tenant);

/* Issues an agent certificate for `key`: subject CN = agent_id, O = tenant, clientAuth,
 * keyUsage digitalSignature, CA:FALSE, valid from one hour ago for `days` days (0 means
 * PKI_AGENT_DAYS). Returns the owned certificate in *cert_out. Nothing touches the disk.
 *
 * Simulator shortcut: signing is cheap (tens of microseconds) while generating a key is
 * not, so mamori-agent-sim passes the same key for every agent and mints thousands of
 * certificates per second. Real agents each have their own key (pki_issue_agent). */
int pki_issue_agent_cert(const pki_ca *ca, const pki_key *key, const char *agent_id, const char *tenant,
                         uint32_t days, enum pki_encoding enc, pki_blob *cert_out, pki_error *err) MAMORI_WUR;
/* Issues an agent certificate with a fresh key and writes cert_path (0644) and key_path
 * (0600); -EEXIST if either exists. */
int pki_issue_agent(const pki_ca *ca, const char *agent_id, const char *tenant, const char *cert_path,
                    const char *key_path, pki_error *err) MAMORI_WUR;

/* ---- development directory ---- */

typedef struct pki_dev_result {
    bool ca_created;     /* DIR/ca.pem + ca.key were made by this call */
    bool server_created; /* DIR/server.pem + server.key were (re)made by this call */
} pki_dev_result;

/* `mamorid --dev DIR`: makes DIR (0700) if needed; creates the CA (DIR/ca.pem, ca.key,
 * CN "Mamori development CA") unless both files exist, in which case they are loaded and
 * kept; creates the server certificate DIR/server.pem + server.key for "localhost",
 * "127.0.0.1" and "::1" unless both exist and verify against the CA for at least 30 more
 * days (otherwise they are replaced). A CA with only one of its two files is an error
 * (never guessed at). *out may be NULL. */
int pki_dev_ensure(const char *dir, pki_dev_result *out, pki_error *err) MAMORI_WUR;

/* Verifies a PEM certificate file against a CA (chain, validity period, and purpose:
 * "server" or "client" for the EKU). For tools and tests; 0, or -EKEYREJECTED with the
 * verifier's reason. */
int pki_verify_file(const pki_ca *ca, const char *cert_path, const char *purpose, pki_error *err) MAMORI_WUR;

#endif

/* core/pki_internal.h — private to core/pki*.c: the error helpers and the file and
 * encoding layer (core/pki_files.c) that the certificate code (core/pki.c) builds on. */
#ifndef MAMORI_CORE_PKI_INTERNAL_H
#define MAMORI_CORE_PKI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pki.h"

/* Formats the message into err (when given) and returns code. */
int pki_fail(pki_error *err, int code, const char *fmt, ...) MAMORI_PRINTF(3, 4);

/* The earliest error on OpenSSL's queue (usually the root cause), as "library: reason";
 * clears the queue so the next failure starts clean. Returns out. */
const char *pki_openssl_reason(char *out, size_t n);

/* Returns from the calling function with pki_fail(), the OpenSSL reason appended. */
#define PKI_FAIL_SSL(err, code, fmt, ...)                                                                  \
    do {                                                                                                   \
        char reason_[160];                                                                                 \
        return pki_fail((err), (code), fmt ": %s", __VA_ARGS__, pki_openssl_reason(reason_, sizeof reason_)); \
    } while (0)

bool pki_file_exists(const char *path);
/* -EEXIST with a message when a (or b, when not NULL) exists. */
int pki_file_refuse_existing(const char *a, const char *b, pki_error *err);
/* Encodes a certificate or (cert == NULL) a private key, PKCS#8, as PEM or DER into an owned
 * blob. Borrows cert and pkey. */
int pki_encode(X509 *cert, EVP_PKEY *pkey, enum pki_encoding enc, pki_blob *out, const char *what, pki_error *err);
/* Writes a certificate (0644) or, when cert is NULL, a private key (0600) as PEM to a new file. */
int pki_file_write_pem(X509 *cert, EVP_PKEY *pkey, const char *path, pki_error *err);
/* Key first, then certificate; a failed certificate write removes the key it just made. */
int pki_file_write_pair(X509 *cert, EVP_PKEY *pkey, const char *cert_path, const char *key_path, pki_error *err);
/* Reads a PEM certificate or unencrypted private key; the caller owns *out. */
int pki_file_load_cert(const char *path, X509 **out, pki_error *err);
int pki_file_load_key(const char *path, EVP_PKEY **out, pki_error *err);

#endif

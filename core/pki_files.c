/* core/pki_files.c — how the development PKI keeps its objects: PEM/DER encoding of
 * certificates and keys, and the careful file reading and writing (size-capped reads,
 * exclusive creation, fsync, refusing to overwrite) that keeps a half-written key or an
 * overwritten CA from ever happening. What the certificates contain is core/pki.c. */
#include "pki_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#define PKI_FILE_BYTES_MAX (1024 * 1024) /* a PEM certificate or key is a few KiB */

/* ---- errors ---- */

int pki_fail(pki_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* The earliest error on OpenSSL's queue (usually the root cause), as "library: reason";
 * clears the queue so the next failure starts clean. */
const char *pki_openssl_reason(char *out, size_t n)
{
    unsigned long e = ERR_peek_error();
    if (!e) {
        snprintf(out, n, "unknown OpenSSL error");
    } else {
        const char *lib = ERR_lib_error_string(e);
        const char *reason = ERR_reason_error_string(e);
        if (reason)
            snprintf(out, n, "%s: %s", lib ? lib : "OpenSSL", reason);
        else
            ERR_error_string_n(e, out, n);
    }
    ERR_clear_error();
    return out;
}

void pki_blob_free(pki_blob *b)
{
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

/* ---- files ---- */

static int read_file(const char *path, const char *what, uint8_t **data_out, size_t *len_out, pki_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pki_fail(err, -errno, "%s: cannot open %s: %s", path, what, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return pki_fail(err, -e, "%s: cannot stat %s: %s", path, what, strerror(e));
    }
    if (!S_ISREG(st.st_mode) || st.st_size > PKI_FILE_BYTES_MAX) {
        close(fd);
        return pki_fail(err, -EINVAL, "%s: %s is not a regular file of at most %d bytes", path, what,
                    PKI_FILE_BYTES_MAX);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = mamori_xmalloc(size + 1);
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            free(data);
            close(fd);
            return pki_fail(err, -e, "%s: cannot read %s: %s", path, what, n < 0 ? strerror(e) : "file shrank");
        }
        got += (size_t)n;
    }
    close(fd);
    data[size] = '\0';
    *data_out = data;
    *len_out = size;
    return 0;
}

bool pki_file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 || errno != ENOENT;
}

/* fsync of the directory holding `path`, so a new name survives a crash. Best effort. */
static void sync_parent_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else if (slash == path) {
        snprintf(dir, sizeof dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* Writes a new file with exactly `mode`: a temporary file next to it is written and
 * fsynced, then hard-linked to `path`, which fails with EEXIST instead of replacing
 * anything. A crash leaves either no file or the whole file (plus maybe a stray .tmp). */
static int write_new_file(const char *path, const void *data, size_t len, mode_t mode, pki_error *err)
{
    static _Atomic unsigned counter;
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp-%ld-%u", path, (long)getpid(), counter++);
    if (n < 0 || (size_t)n >= sizeof tmp) return pki_fail(err, -ENAMETOOLONG, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return pki_fail(err, -errno, "%s: cannot create: %s", path, strerror(errno));
    int rc = 0;
    if (fchmod(fd, mode) != 0) { /* the umask may have cleared bits we want */
        rc = pki_fail(err, -errno, "%s: cannot set mode %o: %s", path, (unsigned)mode, strerror(errno));
        goto fail;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            rc = pki_fail(err, -errno, "%s: cannot write: %s", path, strerror(errno));
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = pki_fail(err, -errno, "%s: cannot fsync: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    if (link(tmp, path) != 0) {
        rc = errno == EEXIST ? pki_fail(err, -EEXIST, "%s: already exists; refusing to overwrite it", path)
                             : pki_fail(err, -errno, "%s: cannot create: %s", path, strerror(errno));
        goto fail;
    }
    unlink(tmp);
    sync_parent_dir(path);
    return 0;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    return rc;
}

int pki_file_refuse_existing(const char *a, const char *b, pki_error *err)
{
    if (pki_file_exists(a)) return pki_fail(err, -EEXIST, "%s: already exists; refusing to overwrite it", a);
    if (b && pki_file_exists(b)) return pki_fail(err, -EEXIST, "%s: already exists; refusing to overwrite it", b);
    return 0;
}

/* ---- encoding ---- */

static int bio_to_blob(BIO *bio, pki_blob *out)
{
    char *mem = NULL;
    long n = BIO_get_mem_data(bio, &mem);
    if (n <= 0 || !mem) return -EIO;
    out->data = mamori_xmalloc((size_t)n + 1);
    memcpy(out->data, mem, (size_t)n);
    out->data[n] = '\0';
    out->len = (size_t)n;
    return 0;
}

/* Encodes a certificate or (cert == NULL) a private key, PKCS#8, as PEM or DER. */
int pki_encode(X509 *cert, EVP_PKEY *pkey, enum pki_encoding enc, pki_blob *out, const char *what, pki_error *err)
{
    out->data = NULL;
    out->len = 0;
    BIO *bio = BIO_new(BIO_s_mem());
    int ok = 0;
    if (!bio) ok = 0; /* reported below */
    else if (cert) ok = enc == PKI_DER ? i2d_X509_bio(bio, cert) : PEM_write_bio_X509(bio, cert);
    else if (enc == PKI_DER) ok = i2d_PKCS8PrivateKey_bio(bio, pkey, NULL, NULL, 0, NULL, NULL);
    else ok = PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
    if (!bio || !ok || bio_to_blob(bio, out) != 0) {
        BIO_free(bio);
        PKI_FAIL_SSL(err, -EIO, "%s: cannot encode the %s", what, cert ? "certificate" : "private key");
    }
    BIO_free(bio);
    return 0;
}

/* Writes a certificate (0644) or, when cert is NULL, a private key (0600) as PEM. */
int pki_file_write_pem(X509 *cert, EVP_PKEY *pkey, const char *path, pki_error *err)
{
    pki_blob pem;
    int rc = pki_encode(cert, pkey, PKI_PEM, &pem, path, err);
    if (rc) return rc;
    rc = write_new_file(path, pem.data, pem.len, cert ? 0644 : 0600, err);
    OPENSSL_cleanse(pem.data, pem.len);
    pki_blob_free(&pem);
    return rc;
}

/* Key first, then certificate; a failed certificate write removes the key it just made. */
int pki_file_write_pair(X509 *cert, EVP_PKEY *pkey, const char *cert_path, const char *key_path, pki_error *err)
{
    int rc = pki_file_write_pem(NULL, pkey, key_path, err);
    if (rc) return rc;
    rc = pki_file_write_pem(cert, NULL, cert_path, err);
    if (rc) unlink(key_path);
    return rc;
}

/* Reads a PEM certificate (key_out NULL) or unencrypted private key (cert_out NULL). */
static int load_pem(const char *path, X509 **cert_out, EVP_PKEY **key_out, pki_error *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = read_file(path, cert_out ? "certificate" : "private key", &data, &len, err);
    if (rc) return rc;
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    bool ok;
    if (cert_out) ok = bio && (*cert_out = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL;
    else ok = bio && (*key_out = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) != NULL;
    BIO_free(bio);
    OPENSSL_cleanse(data, len);
    free(data);
    if (!ok) PKI_FAIL_SSL(err, -EINVAL, "%s: not a PEM %s", path, cert_out ? "certificate" : "unencrypted private key");
    return 0;
}

int pki_file_load_cert(const char *path, X509 **out, pki_error *err) { return load_pem(path, out, NULL, err); }
int pki_file_load_key(const char *path, EVP_PKEY **out, pki_error *err) { return load_pem(path, NULL, out, err); }

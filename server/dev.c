/* server/dev.c — `mamorid --dev DIR` (DESIGN §13, a contract): a zero-config single node
 * on loopback for newcomers, demos, tests and benchmarks. DIR holds the development PKI,
 * the data, the admin API key of tenant "default" and dev.json, which clients given
 * `--dev DIR` read to find the node. Re-running with the same DIR keeps everything. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/pki.h"

static int set(mamori_config *cfg, const char *key, const char *value, char *err, size_t err_len)
{
    return config_set(cfg, key, value, err, err_len);
}

int dev_prepare(dev_setup *dev, mamori_config *cfg, char *err, size_t err_len)
{
    pki_error perr;
    pki_dev_result res;
    if (pki_dev_ensure(dev->dir, &res, &perr) != 0) {
        snprintf(err, err_len, "--dev %s: %s", dev->dir, perr.msg);
        return -EINVAL;
    }
    char path[1200];
    int rc = 0;
    snprintf(path, sizeof path, "127.0.0.1:%u", dev->ingest_port);
    rc |= set(cfg, "ingest.listen", path, err, err_len);
    snprintf(path, sizeof path, "%s/%s", dev->dir, PKI_DEV_SERVER_CERT);
    rc |= set(cfg, "ingest.tls_cert", path, err, err_len);
    snprintf(path, sizeof path, "%s/%s", dev->dir, PKI_DEV_SERVER_KEY);
    rc |= set(cfg, "ingest.tls_key", path, err, err_len);
    snprintf(path, sizeof path, "%s/%s", dev->dir, PKI_DEV_CA_CERT);
    rc |= set(cfg, "ingest.tls_ca", path, err, err_len);
    snprintf(path, sizeof path, "%s/data", dev->dir);
    rc |= set(cfg, "store.path", path, err, err_len);
    /* the API on loopback with the development server certificate (api.tls_* empty) */
    snprintf(path, sizeof path, "127.0.0.1:%u", dev->api_port);
    rc |= set(cfg, "api.listen", path, err, err_len);
    if (rc) return -EINVAL;
    snprintf(dev->admin_key_path, sizeof dev->admin_key_path, "%s/admin.key", dev->dir);
    snprintf(dev->dev_json_path, sizeof dev->dev_json_path, "%s/dev.json", dev->dir);
    return 0;
}

static void sha256_hex(const char *s, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(s, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Writes content to path atomically with the given mode (temporary file + rename). */
static int write_file(const char *path, const char *content, size_t len, mode_t mode)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return -errno;
    ssize_t w = write(fd, content, len);
    int rc = (w == (ssize_t)len && fsync(fd) == 0) ? 0 : -EIO;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0) rc = -errno;
    if (rc) unlink(tmp);
    return rc;
}

int dev_ensure_admin_key(dev_setup *dev, store *db, char *err, size_t err_len)
{
    char key[128] = "";
    FILE *f = fopen(dev->admin_key_path, "r");
    if (f) {
        if (!fgets(key, sizeof key, f)) key[0] = '\0';
        fclose(f);
        key[strcspn(key, "\r\n")] = '\0';
    }
    if (!key[0]) {
        unsigned char raw[32];
        if (RAND_bytes(raw, sizeof raw) != 1) {
            snprintf(err, err_len, "no randomness for the admin key");
            return -EIO;
        }
        int n = snprintf(key, sizeof key, "mk_");
        for (size_t i = 0; i < sizeof raw; i++) n += snprintf(key + n, sizeof key - (size_t)n, "%02x", raw[i]);
        char line[140];
        int ll = snprintf(line, sizeof line, "%s\n", key);
        int rc = write_file(dev->admin_key_path, line, (size_t)ll, 0600);
        if (rc) {
            snprintf(err, err_len, "writing %s: %s", dev->admin_key_path, strerror(-rc));
            return rc;
        }
    }
    /* Keys are stored only as hashes (meta "apikey/<sha256>"); re-register if the data
     * directory was wiped but the key file kept. */
    char hex[65], meta_key[80];
    sha256_hex(key, strlen(key), hex);
    snprintf(meta_key, sizeof meta_key, "apikey/%s", hex);
    buf existing;
    buf_init(&existing);
    int rc = store_meta_get(db, meta_key, &existing);
    buf_fini(&existing);
    if (rc == 0) return 0;
    char now[32], value[256];
    clock_format_rfc3339(clock_wall_us(), now);
    int n = snprintf(value, sizeof value,
                     "{\"id\":\"%.16s\",\"tenant\":\"default\",\"role\":\"admin\",\"name\":\"development admin\","
                     "\"created\":\"%s\"}",
                     hex, now);
    rc = store_meta_put(db, meta_key, value, (size_t)n);
    if (rc) snprintf(err, err_len, "storing the admin key hash: %s", strerror(-rc));
    return rc;
}

int dev_write_json(dev_setup *dev, uint16_t ingest_port, char *err, size_t err_len)
{
    char json[256];
    int n = snprintf(json, sizeof json,
                     "{\"ingest\":\"127.0.0.1:%u\",\"api\":\"https://127.0.0.1:%u\",\"tenant\":\"default\"}\n",
                     ingest_port, dev->api_port);
    int rc = write_file(dev->dev_json_path, json, (size_t)n, 0644);
    if (rc) snprintf(err, err_len, "writing %s: %s", dev->dev_json_path, strerror(-rc));
    return rc;
}

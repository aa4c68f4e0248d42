/* cli/client.h — how mamorictl reaches the API: where (URL, CA) and who (API key), from
 * flags, then the environment (MAMORI_API_URL, MAMORI_API_KEY, MAMORI_CA), then
 * ~/.config/mamori/config.yaml (server:, key:, ca:), or a development directory (--dev DIR:
 * DIR/dev.json, DIR/admin.key, DIR/ca.pem). HTTPS through libcurl. */
#ifndef MAMORI_CLI_CLIENT_H
#define MAMORI_CLI_CLIENT_H

#include "core/buf.h"

#include <getopt.h>

typedef struct cli_client {
    char url[512];  /* https://host:port, no trailing slash */
    char key[160];
    char ca[1024];
    char dev[1000];
    long timeout_s;
} cli_client;

/* getopt_long entries every API command accepts; their codes are 0x100.. */
#define CLIENT_LONG_OPTIONS                                                                     \
    {"dev", required_argument, NULL, 0x100}, {"server", required_argument, NULL, 0x101},        \
        {"key", required_argument, NULL, 0x102}, {"ca", required_argument, NULL, 0x103},        \
        {"timeout", required_argument, NULL, 0x104}
#define CLIENT_OPTIONS_HELP                                                                     \
    "  --dev DIR        development node: DIR/dev.json, DIR/admin.key, DIR/ca.pem\n"             \
    "  --server URL     API URL (env MAMORI_API_URL, config 'server:')\n"                        \
    "  --key KEY        API key (env MAMORI_API_KEY, config 'key:')\n"                           \
    "  --ca FILE        CA of the API certificate (env MAMORI_CA, config 'ca:')\n"              \
    "  --timeout S      request timeout in seconds (default 60)\n"

/* Handles one of the codes above; returns false for other codes. */
bool client_option(cli_client *c, int code, const char *arg);
/* Fills what flags left empty; 0, or -1 after printing what is missing. */
int client_resolve(cli_client *c);
/* One request; body may be NULL. out receives the response body; *status the HTTP status.
 * Returns 0, or -1 after printing a transport error. */
int client_request(const cli_client *c, const char *method, const char *path, const char *body, buf *out,
                   long *status);
/* Prints the API error of a non-2xx answer to stderr; returns the exit code (1). */
int client_report_error(const char *what, long status, const buf *body);

/* Appends s percent-encoded for a URL path segment or query value (RFC 3986 unreserved
 * characters kept). */
void client_url_encode(buf *out, const char *s);
/* The value at a dotted path ("rule.level") of a JSON object; NULL when absent. */
struct json_value;
const struct json_value *client_json_path(const struct json_value *root, const char *path);
/* Prints the value at path as a table cell padded/cut to width (width 0: as is): a string
 * as is, an array of strings as its first item, anything else as JSON, "-" when absent. */
void client_print_cell(buf *tmp, const struct json_value *root, const char *path, int width);

#endif

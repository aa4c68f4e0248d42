/* cli/cmd_keys.c — `mamorictl keys create|list|delete`: through the API (admin key), or
 * offline with --data DIR against a stopped server's data directory, which is how the
 * first admin key of a production node is made. A new key is printed once. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "cli.h"
#include "client.h"
#include "core/pki.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: mamorictl keys create --tenant T --role R [--name N] [--json] [--data DIR | API options]\n"
                 "       mamorictl keys list [API options]\n"
                 "       mamorictl keys delete ID [API options]\n"
                 "  --role R     viewer, analyst, responder or admin\n"
                 "  --data DIR   offline: write the key into a stopped server's data directory\n"
                 "  --json       print {id, key, tenant, role} instead of the bare key\n" CLIENT_OPTIONS_HELP);
}

static int create_offline(const char *data, const char *tenant, enum api_role role, const char *name, bool as_json)
{
    store_options so;
    store_options_default(&so);
    so.path = data;
    store *s = NULL;
    char err[512];
    if (store_open(&so, &s, err, sizeof err) != 0) {
        fprintf(stderr, "mamorictl: cannot open %s: %s (is the server still running? stop it first)\n", data, err);
        return 1;
    }
    char key[API_KEY_CHARS + 1], id[API_KEY_ID_CHARS + 1];
    int rc = api_key_create(s, tenant, role, name, key, id);
    store_close(s);
    if (rc) {
        fprintf(stderr, "mamorictl: storing the key failed: %s\n", strerror(-rc));
        return 1;
    }
    if (as_json) printf("{\"id\":\"%s\",\"key\":\"%s\",\"tenant\":\"%s\",\"role\":\"%s\"}\n", id, key, tenant,
                        api_role_name(role));
    else printf("%s\n", key);
    fprintf(stderr, "created key %s for tenant %s, role %s (shown once; only its hash is stored)\n", id, tenant,
            api_role_name(role));
    return 0;
}

int cmd_keys(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tenant", required_argument, NULL, 'T'}, {"role", required_argument, NULL, 'r'},
        {"name", required_argument, NULL, 'n'},   {"data", required_argument, NULL, 'D'},
        {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
        CLIENT_LONG_OPTIONS,                      {NULL, 0, NULL, 0}};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    cli_client c = {0};
    const char *tenant = NULL, *role_s = NULL, *name = "", *data = NULL;
    bool as_json = false;
    optind = 2;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'T': tenant = optarg; break;
        case 'r': role_s = optarg; break;
        case 'n': name = optarg; break;
        case 'D': data = optarg; break;
        case 'j': as_json = true; break;
        case 'h': usage(stdout); return 0;
        default:
            if (!client_option(&c, o, optarg)) {
                usage(stderr);
                return 2;
            }
        }
    }
    buf out, body;
    buf_init(&out);
    buf_init(&body);
    long status = 0;
    int rc = 0;
    if (!strcmp(sub, "create")) {
        enum api_role role;
        if (!tenant || !role_s || api_role_parse(role_s, &role) != 0 || !pki_tenant_valid(tenant) || optind != argc) {
            fprintf(stderr, "mamorictl: keys create needs --tenant T ([A-Za-z0-9._-]) and --role "
                            "viewer|analyst|responder|admin\n");
            rc = 2;
            goto out;
        }
        if (data) {
            rc = create_offline(data, tenant, role, name, as_json);
            goto out;
        }
        if (client_resolve(&c)) {
            rc = 2;
            goto out;
        }
        buf_printf(&body, "{\"tenant\":\"%s\",\"role\":\"%s\",\"name\":", tenant, role_s);
        json_write_string(&body, name, strlen(name));
        buf_putc(&body, '}');
        if (client_request(&c, "POST", "/v1/keys", buf_cstr(&body), &out, &status)) rc = 1;
        else if (status != 201) rc = client_report_error("keys create", status, &out);
        else if (as_json) printf("%s\n", buf_cstr(&out));
        else {
            const char *k = strstr(buf_cstr(&out), "\"key\":\"");
            printf("%.*s\n", k ? (int)strcspn(k + 7, "\"") : 0, k ? k + 7 : "");
            fprintf(stderr, "created %s (shown once; only its hash is stored)\n", buf_cstr(&out));
        }
    } else if (!strcmp(sub, "list") || !strcmp(sub, "delete")) {
        bool del = !strcmp(sub, "delete");
        if ((del && optind + 1 != argc) || (!del && optind != argc)) {
            usage(stderr);
            rc = 2;
            goto out;
        }
        if (client_resolve(&c)) {
            rc = 2;
            goto out;
        }
        char path[200];
        snprintf(path, sizeof path, del ? "/v1/keys/%.32s" : "/v1/keys", del ? argv[optind] : "");
        if (client_request(&c, del ? "DELETE" : "GET", path, NULL, &out, &status)) rc = 1;
        else if (status != 200) rc = client_report_error(del ? "keys delete" : "keys list", status, &out);
        else printf("%s\n", buf_cstr(&out));
    } else {
        fprintf(stderr, "mamorictl: unknown keys command '%s'\n", sub);
        usage(stderr);
        rc = 2;
    }
out:
    buf_fini(&out);
    buf_fini(&body);
    return rc;
}

/* Unit tests: core/config.c — defaults, loading, and errors that name key and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

static int load(mamori_config *cfg, const char *yaml, char *err, size_t n)
{
    config_defaults(cfg);
    return config_load_string(cfg, yaml, strlen(yaml), "test.yaml", err, n);
}

static void test_defaults_are_valid(void **state)
{
    (void)state;
    mamori_config cfg;
    char err[256];
    config_defaults(&cfg);
    assert_int_equal(config_validate(&cfg, err, sizeof err), 0);
    assert_int_equal(cfg.ingest.threads, 2);
    assert_int_equal(cfg.ingest.max_frame_bytes, 4u * 1024 * 1024);
    assert_true(cfg.store.sync);
    assert_string_equal(cfg.bus.type, "embedded");
    config_free(&cfg);
}

static void test_load_values_and_sizes(void **state)
{
    (void)state;
    mamori_config cfg;
    char err[256] = "";
    int rc = load(&cfg,
                  "log:\n  level: debug\n"
                  "ingest:\n  listen: 127.0.0.1:9000\n  threads: 4\n  max_frame_bytes: 8MiB\n"
                  "store:\n  path: /tmp/x\n  sync: false\n  retention_days: 7\n"
                  "  tenants:\n    acme: {retention_days: 90}\n    beta: {}\n",
                  err, sizeof err);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.log.level, "debug");
    assert_string_equal(cfg.ingest.listen, "127.0.0.1:9000");
    assert_int_equal(cfg.ingest.threads, 4);
    assert_int_equal(cfg.ingest.max_frame_bytes, 8u * 1024 * 1024);
    assert_false(cfg.store.sync);
    assert_int_equal(cfg.store.tenant_count, 2);
    assert_string_equal(cfg.store.tenants[0].name, "acme");
    assert_int_equal(cfg.store.tenants[0].retention_days, 90);
    assert_int_equal(cfg.store.tenants[1].retention_days, 0); /* inherits */
    config_free(&cfg);
}

static void expect_error(const char *yaml, const char *needle)
{
    mamori_config cfg;
    char err[256] = "";
    int rc = load(&cfg, yaml, err, sizeof err);
    if (rc == 0) fail_msg("accepted: %s", yaml);
    if (!strstr(err, needle)) fail_msg("error '%s' lacks '%s'", err, needle);
    config_free(&cfg);
}

static void test_errors_name_key_and_line(void **state)
{
    (void)state;
    expect_error("ingest:\n  threads: 2\n  thredas: 3\n", "test.yaml line 3: unknown key 'ingest.thredas'");
    expect_error("bogus: 1\n", "line 1: unknown key 'bogus'");
    expect_error("ingest:\n  threads: 0\n", "line 2: 'ingest.threads' = 0 out of range [1, 64]");
    expect_error("ingest:\n  threads: many\n", "'ingest.threads' must be a non-negative integer");
    expect_error("ingest:\n  threads: -1\n", "'ingest.threads' must be a non-negative integer");
    expect_error("store:\n  sync: maybe\n", "'store.sync' must be true or false");
    expect_error("log:\n  level: loud\n", "'log.level' must be one of");
    expect_error("ingest: 3\n", "'ingest' must be a mapping");
    expect_error("ingest:\n  threads: [1]\n", "'ingest.threads' must be a scalar");
    expect_error("ingest:\n  listen: nowhere\n", "'ingest.listen' must be ADDR:PORT");
    expect_error("ingest:\n  max_frame_bytes: 64MiB\n  max_batch_bytes: 1MiB\n", "must be >= 'ingest.max_frame_bytes'");
    expect_error("store:\n  tenants:\n    acme: {retention: 3}\n", "line 3: unknown key 'store.tenants.acme.retention'");
    expect_error("store:\n  tenants:\n    acme: {retention_days: 0}\n", "retention_days' must be an integer");
    expect_error("ingest:\n  threads: 2\n threads: 3\n", "test.yaml line");
    expect_error("- a\n- b\n", "top level must be a mapping");
}

static void test_set_override(void **state)
{
    (void)state;
    mamori_config cfg;
    char err[256];
    config_defaults(&cfg);
    assert_int_equal(config_set(&cfg, "ingest.threads", "3", err, sizeof err), 0);
    assert_int_equal(cfg.ingest.threads, 3);
    assert_int_equal(config_set(&cfg, "ingest.nope", "3", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "unknown configuration key 'ingest.nope'"));
    config_free(&cfg);
}

static void test_dump_reloads(void **state)
{
    (void)state;
    mamori_config cfg, again;
    char err[256] = "";
    config_defaults(&cfg);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_dump(&cfg, f);
    fclose(f);
    config_defaults(&again);
    assert_int_equal(config_load_string(&again, text, len, "dump", err, sizeof err), 0);
    assert_int_equal(again.ingest.max_unacked_batches, cfg.ingest.max_unacked_batches);
    free(text);
    config_free(&cfg);
    config_free(&again);
}

static void test_lists(void **state)
{
    (void)state;
    mamori_config cfg;
    char err[256] = "";
    /* a sequence, a single scalar, null and an empty flow sequence */
    assert_int_equal(load(&cfg, "detect:\n  rules:\n    - /r/one\n    - \"/r/two words\"\n  threads: 3\n", err, sizeof err),
                     0);
    assert_int_equal(cfg.detect.rules.count, 2);
    assert_string_equal(cfg.detect.rules.items[0], "/r/one");
    assert_string_equal(cfg.detect.rules.items[1], "/r/two words");
    assert_int_equal(cfg.detect.threads, 3);
    config_free(&cfg);
    assert_int_equal(load(&cfg, "detect:\n  rules: /only\n", err, sizeof err), 0);
    assert_int_equal(cfg.detect.rules.count, 1);
    config_free(&cfg);
    assert_int_equal(load(&cfg, "detect:\n  rules:\n", err, sizeof err), 0);
    assert_int_equal(cfg.detect.rules.count, 0);
    config_free(&cfg);
    assert_int_equal(load(&cfg, "detect:\n  rules: []\n  placeholders: [known_cdcs=dc1, known_cdcs=dc2]\n", err,
                          sizeof err),
                     0);
    assert_int_equal(cfg.detect.rules.count, 0);
    assert_int_equal(cfg.detect.placeholders.count, 2);
    /* --set: one item, or a flow sequence; dump and reload keep the items */
    assert_int_equal(config_set(&cfg, "detect.rules", "[/a, \"/b,c\"]", err, sizeof err), 0);
    assert_int_equal(cfg.detect.rules.count, 2);
    assert_string_equal(cfg.detect.rules.items[1], "/b,c");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_dump(&cfg, f);
    fclose(f);
    mamori_config again;
    config_defaults(&again);
    assert_int_equal(config_load_string(&again, text, len, "dump", err, sizeof err), 0);
    assert_int_equal(again.detect.rules.count, 2);
    assert_string_equal(again.detect.rules.items[1], "/b,c");
    assert_int_equal(again.detect.placeholders.count, 2);
    free(text);
    config_free(&again);
    assert_int_equal(config_set(&cfg, "detect.rules", "/x", err, sizeof err), 0);
    assert_int_equal(cfg.detect.rules.count, 1);
    assert_int_equal(config_set(&cfg, "detect.rules", "", err, sizeof err), 0);
    assert_int_equal(cfg.detect.rules.count, 0);
    assert_int_equal(config_set(&cfg, "detect.rules", "[a, [b]]", err, sizeof err), -EINVAL);
    config_list_append(&cfg.detect.rules, "/appended", 9);
    assert_int_equal(cfg.detect.rules.count, 1);
    config_free(&cfg);
    /* errors name the key and the item's line */
    expect_error("detect:\n  rules:\n    - /a\n    - {x: 1}\n", "test.yaml line 4: 'detect.rules' items must be strings");
    expect_error("detect:\n  rules: {a: 1}\n", "line 2: 'detect.rules' must be a list of strings");
    expect_error("detect:\n  rules:\n    - ''\n", "line 3: 'detect.rules' items must be non-empty");
    expect_error("detect:\n  placeholders: [novalue]\n", "'detect.placeholders' item 'novalue' must be NAME=VALUE");
    expect_error("detect:\n  threads: 0\n", "'detect.threads' = 0 out of range [1, 64]");
    /* at most 256 rule paths */
    char big[256 * 8 + 64] = "detect:\n  rules: [";
    for (int i = 0; i < 257; i++) strcat(big, i ? ",/r" : "/r");
    strcat(big, "]\n");
    expect_error(big, "'detect.rules' has more than 256 items");
}

/* node.roles: every combination of known names; unknown names and split roles on the
 * embedded bus are errors that say why; store shards must be numbered below their count. */
static void test_roles(void **state)
{
    (void)state;
    mamori_config cfg;
    char err[256] = "";
    uint32_t roles = 0;
    config_defaults(&cfg);
    assert_int_equal(config_roles(&cfg, &roles, err, sizeof err), 0);
    assert_int_equal(roles, (1u << CONFIG_ROLE_COUNT) - 1);
    config_free(&cfg);
    assert_int_equal(load(&cfg, "bus:\n  type: kafka\nnode:\n  roles: detect, store\n", err, sizeof err), 0);
    assert_int_equal(config_roles(&cfg, &roles, err, sizeof err), 0);
    assert_int_equal(roles, CONFIG_ROLE_DETECT | CONFIG_ROLE_STORE);
    config_free(&cfg);
    assert_int_not_equal(load(&cfg, "bus:\n  type: kafka\nnode:\n  roles: ingest,storage\n", err, sizeof err), 0);
    assert_non_null(strstr(err, "unknown role 'storage'"));
    config_free(&cfg);
    assert_int_not_equal(load(&cfg, "bus:\n  type: kafka\nnode:\n  roles: ingest,,api\n", err, sizeof err), 0);
    config_free(&cfg);
    assert_int_not_equal(load(&cfg, "node:\n  roles: ingest\n", err, sizeof err), 0);
    assert_non_null(strstr(err, "needs 'bus.type' kafka"));
    config_free(&cfg);
    assert_int_not_equal(load(&cfg, "bus:\n  type: kafka\n  kafka:\n    store_shards: 2\n    store_shard: 2\n", err,
                              sizeof err),
                         0);
    assert_non_null(strstr(err, "store_shard"));
    config_free(&cfg);
    assert_int_not_equal(
        load(&cfg, "bus:\n  type: kafka\n  kafka:\n    correlate_shards: 2\n    correlate_shard: 2\n", err, sizeof err), 0);
    assert_non_null(strstr(err, "'bus.kafka.correlate_shard' (2) must be below"));
    config_free(&cfg);
    assert_int_not_equal(load(&cfg, "bus:\n  type: kafka\n  kafka:\n    store_shards: 2\nnode:\n  roles: ingest,store\n", err,
                              sizeof err),
                         0);
    assert_non_null(strstr(err, "run ingest in a process of its own"));
    config_free(&cfg);
}

static void test_response_tenants(void **state)
{
    (void)state;
    mamori_config cfg;
    config_defaults(&cfg);
    char err[512] = "";
    const char *yaml = "response:\n  max_file_bytes: 1MiB\n  auto_allowed: [isolate]\n  tenants:\n"
                       "    acme: {max_file_bytes: 4096, auto_allowed: [kill_process, isolate], auto_max_per_minute: 0}\n"
                       "    beta: {}\n";
    assert_int_equal(config_load_string(&cfg, yaml, strlen(yaml), "t.yaml", err, sizeof err), 0);
    assert_int_equal(config_response_max_file_bytes(&cfg, "acme"), 4096);
    assert_int_equal(config_response_max_file_bytes(&cfg, "beta"), 1048576);
    assert_int_equal(config_response_max_file_bytes(&cfg, "other"), 1048576);
    assert_int_equal(config_response_auto_allowed(&cfg, "acme")->count, 2);
    assert_string_equal(config_response_auto_allowed(&cfg, "acme")->items[0], "kill_process");
    assert_int_equal(config_response_auto_allowed(&cfg, "beta")->count, 1);
    assert_string_equal(config_response_auto_allowed(&cfg, "beta")->items[0], "isolate");
    assert_int_equal(config_response_auto_max_per_minute(&cfg, "acme"), 0);
    assert_int_equal(config_response_auto_max_per_minute(&cfg, "beta"), 10);
    config_free(&cfg);
    config_defaults(&cfg);
    const char *bad = "response:\n  tenants:\n    acme: {max_files: 3}\n";
    assert_int_not_equal(config_load_string(&cfg, bad, strlen(bad), "t.yaml", err, sizeof err), 0);
    assert_non_null(strstr(err, "line 3: unknown key 'response.tenants.acme.max_files'"));
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_response_tenants),
        cmocka_unit_test(test_defaults_are_valid),      cmocka_unit_test(test_load_values_and_sizes),
        cmocka_unit_test(test_errors_name_key_and_line), cmocka_unit_test(test_set_override),
        cmocka_unit_test(test_dump_reloads),            cmocka_unit_test(test_lists),
        cmocka_unit_test(test_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

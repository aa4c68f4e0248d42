/* tests/unit/core/test_normalize_data.c — normalize_event on real data nobody here wrote:
 * every SigmaHQ regression event and a sample of OTRF recordings (read from
 * MAMORI_DATA_DIR, never copied here) normalize cleanly with the logsource their rule
 * expects. */
#include "normalize_fixture.h"

/* ---- real data: SigmaHQ regression events -------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *data = malloc((size_t)(n > 0 ? n : 0) + 1);
    size_t got = fread(data, 1, (size_t)(n > 0 ? n : 0), fp);
    fclose(fp);
    data[got] = '\0';
    *len = got;
    return data;
}

/* The rule's `category:` / `service:` under logsource (plain text scan of the YAML). */
static void rule_logsource(const char *rule_path, char *category, char *service, size_t cap)
{
    size_t len = 0;
    char *text = read_file(rule_path, &len);
    category[0] = service[0] = '\0';
    if (!text) return;
    char *ls = strstr(text, "\nlogsource:");
    for (char *line = ls ? strchr(ls + 1, '\n') : NULL; line && line[1] == ' '; line = strchr(line + 1, '\n')) {
        char *s = line + 1;
        while (*s == ' ') s++;
        char *target = strncmp(s, "category:", 9) == 0 ? category : strncmp(s, "service:", 8) == 0 ? service : NULL;
        if (!target) continue;
        s = strchr(s, ':') + 1;
        while (*s == ' ') s++;
        size_t k = 0;
        while (s[k] && s[k] != '\n' && s[k] != ' ' && s[k] != '#' && k + 1 < cap) {
            target[k] = s[k];
            k++;
        }
        target[k] = '\0';
    }
    free(text);
}

struct convert_ctx {
    buf nx, wb;
};

/* Builds the NXLog and Winlogbeat forms of an evtx_dump event the way those shippers write
 * them (text EventData, their System names and extras), to check all three agree. */
static void level_text(int64_t level, const char **nxlog, const char **ecs)
{
    switch (level) {
    case 1: *nxlog = "CRITICAL", *ecs = "critical"; break;
    case 2: *nxlog = "ERROR", *ecs = "error"; break;
    case 3: *nxlog = "WARNING", *ecs = "warning"; break;
    case 5: *nxlog = "DEBUG", *ecs = "verbose"; break;
    default: *nxlog = "INFO", *ecs = "information"; break;
    }
}

static const json_value *attr(const json_value *v, const char *name)
{
    const json_value *a = json_object_get(v, "#attributes", 11);
    return a ? json_object_get(a, name, strlen(name)) : NULL;
}

static void put_member(buf *b, bool *first, const char *key, size_t key_len, const json_value *v)
{
    if (!*first) buf_putc(b, ',');
    *first = false;
    json_write_string(b, key, key_len);
    buf_putc(b, ':');
    json_write_value(b, v);
}

static void put_text_member(buf *b, bool *first, const char *key, size_t key_len, const json_value *v)
{
    if (!*first) buf_putc(b, ',');
    *first = false;
    json_write_string(b, key, key_len);
    buf_putc(b, ':');
    if (v->type == JSON_NUMBER) json_write_string(b, v->str, v->len);
    else if (v->type == JSON_BOOL) buf_puts(b, v->num.b ? "\"true\"" : "\"false\"");
    else json_write_value(b, v);
}

/* json without its "level":<number> member (winlog.level; log.level's is a string). */
static const char *without_numeric_level(struct fixture *f, const char *json, size_t len, size_t *out_len)
{
    const char *k = NULL;
    for (const char *p = json; (p = memmem(p, len - (size_t)(p - json), "\"level\":", 8)) != NULL; p += 8)
        if (p[8] >= '0' && p[8] <= '9') {
            k = p;
            break;
        }
    assert_non_null(k);
    const char *end = k + 8;
    while (*end >= '0' && *end <= '9') end++;
    if (*end == ',') end++;
    else if (k[-1] == ',') k--;
    char *out = arena_alloc(&f->arena, len);
    memcpy(out, json, (size_t)(k - json));
    memcpy(out + (k - json), end, len - (size_t)(end - json));
    *out_len = len - (size_t)(end - k);
    return out;
}

static void convert_event(const json_value *root, buf *nx, buf *wb)
{
    const json_value *event = json_object_get(root, "Event", 5);
    const json_value *sys = json_object_get(event, "System", 6);
    const json_value *data = json_object_get(event, "EventData", 9);
    const json_value *provider = json_object_get(sys, "Provider", 8);
    const json_value *name = attr(provider, "Name"), *guid = attr(provider, "Guid");
    const json_value *event_id = json_object_get(sys, "EventID", 7);
    const json_value *time = attr(json_object_get(sys, "TimeCreated", 11), "SystemTime");
    const json_value *record = json_object_get(sys, "EventRecordID", 13);
    const json_value *exec = json_object_get(sys, "Execution", 9);
    const json_value *sec = json_object_get(sys, "Security", 8);
    const json_value *user = sec && sec->type == JSON_OBJECT ? attr(sec, "UserID") : NULL;
    const json_value *corr = json_object_get(sys, "Correlation", 11);
    const json_value *activity = corr && corr->type == JSON_OBJECT ? attr(corr, "ActivityID") : NULL;
    const json_value *keywords = json_object_get(sys, "Keywords", 8);
    int64_t level = json_object_get(sys, "Level", 5)->num.i;
    const char *nx_level, *ecs_level;
    level_text(level, &nx_level, &ecs_level);
    uint64_t mask = strtoull(keywords->str + 2, NULL, 16);
    bool has_event_type = json_object_get(data, "EventType", 9) != NULL;

    /* NXLog */
    buf_clear(nx);
    bool first = true;
    buf_putc(nx, '{');
    put_member(nx, &first, "EventID", 7, event_id);
    put_member(nx, &first, "Channel", 7, json_object_get(sys, "Channel", 7));
    put_member(nx, &first, "SourceName", 10, name);
    if (guid) {
        char braced[64];
        snprintf(braced, sizeof braced, "{%.*s}", (int)guid->len, guid->str);
        buf_printf(nx, ",\"ProviderGuid\":\"%s\"", braced);
    }
    put_member(nx, &first, "Hostname", 8, json_object_get(sys, "Computer", 8));
    put_member(nx, &first, "RecordNumber", 12, record);
    put_member(nx, &first, "ExecutionProcessID", 18, attr(exec, "ProcessID"));
    put_member(nx, &first, "ThreadID", 8, attr(exec, "ThreadID"));
    if (user) put_member(nx, &first, "UserID", 6, user);
    if (activity) put_member(nx, &first, "ActivityID", 10, activity);
    put_member(nx, &first, "Version", 7, json_object_get(sys, "Version", 7));
    put_member(nx, &first, "Task", 4, json_object_get(sys, "Task", 4));
    put_member(nx, &first, "OpcodeValue", 11, json_object_get(sys, "Opcode", 6));
    put_member(nx, &first, "Level", 5, json_object_get(sys, "Level", 5)); /* kept by some NXLog pipelines */
    buf_printf(nx, ",\"Opcode\":\"Info\",\"Keywords\":%" PRId64 ",\"Severity\":\"%s\",\"SeverityValue\":2", (int64_t)mask,
               nx_level);
    buf_printf(nx, ",\"%s\":\"INFO\"", has_event_type ? "EventTypeOrignal" : "EventType");
    buf_puts(nx, ",\"Category\":\"Some Task\",\"EventReceivedTime\":\"2020-01-01 00:00:00\",\"SourceModuleName\":"
                 "\"eventlog\",\"SourceModuleType\":\"im_msvistalog\",\"@version\":\"1\",\"host\":\"wec\",\"port\":1,"
                 "\"tags\":[\"t\"]");
    put_member(nx, &first, "@timestamp", 10, time);
    for (uint32_t i = 0; i < data->len; i++) {
        const json_member *m = &data->members[i];
        if (m->key_len && m->key[0] == '#') continue;
        put_text_member(nx, &first, m->key, m->key_len, &m->value);
    }
    buf_putc(nx, '}');

    /* Winlogbeat, nested */
    buf_clear(wb);
    buf_puts(wb, "{\"@timestamp\":");
    json_write_value(wb, time);
    buf_printf(wb, ",\"log\":{\"level\":\"%s\"},\"winlog\":{\"channel\":", ecs_level);
    json_write_value(wb, json_object_get(sys, "Channel", 7));
    buf_printf(wb, ",\"event_id\":\"%" PRId64 "\",\"provider_name\":", event_id->num.i);
    json_write_value(wb, name);
    if (guid) {
        buf_puts(wb, ",\"provider_guid\":\"{");
        for (uint32_t i = 0; i < guid->len; i++) {
            char c = guid->str[i];
            buf_putc(wb, (char)((c >= 'A' && c <= 'Z') ? c + 32 : c));
        }
        buf_puts(wb, "}\"");
    }
    buf_puts(wb, ",\"computer_name\":");
    json_write_value(wb, json_object_get(sys, "Computer", 8));
    buf_printf(wb, ",\"record_id\":\"%" PRId64 "\",\"process\":{\"pid\":", record->num.i);
    json_write_value(wb, attr(exec, "ProcessID"));
    buf_puts(wb, ",\"thread\":{\"id\":");
    json_write_value(wb, attr(exec, "ThreadID"));
    buf_puts(wb, "}}");
    if (user) {
        buf_puts(wb, ",\"user\":{\"identifier\":");
        json_write_value(wb, user);
        buf_putc(wb, '}');
    }
    if (activity) {
        buf_puts(wb, ",\"activity_id\":");
        json_write_value(wb, activity);
    }
    buf_puts(wb, ",\"version\":");
    json_write_value(wb, json_object_get(sys, "Version", 7));
    buf_puts(wb, ",\"task\":");
    json_write_value(wb, json_object_get(sys, "Task", 4));
    buf_puts(wb, ",\"opcode\":");
    json_write_value(wb, json_object_get(sys, "Opcode", 6));
    buf_puts(wb, ",\"keywords\":");
    json_write_value(wb, keywords);
    buf_puts(wb, ",\"event_data\":{");
    first = true;
    for (uint32_t i = 0; i < data->len; i++) {
        const json_member *m = &data->members[i];
        if (m->key_len && m->key[0] == '#') continue;
        put_text_member(wb, &first, m->key, m->key_len, &m->value);
    }
    buf_puts(wb, "}}}");
}

static void walk_regression(struct fixture *f, const char *dir, size_t *events, size_t *checked_rules)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char path[4096];
    bool has_info = false;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) walk_regression(f, path, events, checked_rules);
        else if (strcmp(de->d_name, "info.yml") == 0) has_info = true;
    }
    closedir(d);
    if (!has_info) return;
    /* regression_data/<rel> belongs to the rule sigma/<rel>.yml */
    const char *marker = strstr(dir, "/regression_data/");
    char rule[4096], category[64], service[64];
    snprintf(rule, sizeof rule, "%s/sigma/%s.yml", MAMORI_DATA_DIR, marker + strlen("/regression_data/"));
    rule_logsource(rule, category, service, sizeof category);
    enum logsource_category want_category = LOGSOURCE_CATEGORY_NONE;
    enum logsource_service want_service = LOGSOURCE_SERVICE_NONE;
    if (category[0] && logsource_category_parse(category, strlen(category), &want_category) != 0)
        fail_msg("%s: unknown category %s", rule, category);
    if (service[0] && logsource_service_parse(service, strlen(service), &want_service) != 0)
        fail_msg("%s: unknown service %s", rule, service);
    if (want_category || want_service) (*checked_rules)++;

    d = opendir(dir);
    struct convert_ctx conv;
    buf_init(&conv.nx);
    buf_init(&conv.wb);
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len = 0;
        char *text = read_file(path, &len);
        size_t pos = 0;
        for (;;) {
            arena_reset(&f->arena);
            json_value v;
            json_error jerr;
            int rc = json_parse_next(f->parser, &f->arena, text, len, &pos, &v, &jerr);
            if (rc == -ENODATA) break;
            if (rc) fail_msg("%s: %s at %zu", path, jerr.msg, jerr.offset);
            mamori_event a;
            rc = normalize_event(f->norm, &f->arena, EVENT_FORMAT_AUTO, &v, &f->stamp, 0, &a, f->err, sizeof f->err);
            if (rc) fail_msg("%s: rejected: %s", path, f->err);
            (*events)++;
            check_invariants(f, &a);
            struct logsource_set ls;
            logsource_classify(&a, &ls);
            if (want_category && !logsource_has(&ls, want_category))
                fail_msg("%s: want category %s, event has %#" PRIx64 ": %s", path, category, ls.categories, a.json);
            if (want_service && ls.service != want_service)
                fail_msg("%s: want service %s, event has %s", path, service,
                         logsource_service_name((enum logsource_service)ls.service));
            /* the same event as NXLog and Winlogbeat would have shipped it */
            convert_event(&v, &conv.nx, &conv.wb);
            mamori_event b, c;
            json_value vn, vw;
            const char *nx_text = arena_strndup(&f->arena, conv.nx.data, conv.nx.len);
            const char *wb_text = arena_strndup(&f->arena, conv.wb.data, conv.wb.len);
            if (json_parse(f->parser, &f->arena, nx_text, conv.nx.len, &vn, &jerr) ||
                json_parse(f->parser, &f->arena, wb_text, conv.wb.len, &vw, &jerr))
                fail_msg("%s: converted event does not parse: %s", path, jerr.msg);
            if (normalize_event(f->norm, &f->arena, EVENT_FORMAT_AUTO, &vn, &f->stamp, 0, &b, f->err, sizeof f->err) ||
                normalize_event(f->norm, &f->arena, EVENT_FORMAT_AUTO, &vw, &f->stamp, 0, &c, f->err, sizeof f->err))
                fail_msg("%s: converted event rejected: %s", path, f->err);
            if (a.json_len != b.json_len || memcmp(a.json, b.json, a.json_len) != 0)
                fail_msg("%s: evtx and NXLog differ:\n%s\n%s\nfrom %s", path, a.json, b.json, nx_text);
            /* Winlogbeat ships the level as a name only: evtx without winlog.level */
            size_t wl_len;
            const char *want = without_numeric_level(f, a.json, a.json_len, &wl_len);
            if (wl_len != c.json_len || memcmp(want, c.json, wl_len) != 0)
                fail_msg("%s: evtx and Winlogbeat differ:\n%s\n%s\nfrom %s", path, want, c.json, wb_text);
        }
        free(text);
    }
    buf_fini(&conv.nx);
    buf_fini(&conv.wb);
    closedir(d);
}

static void test_regression_data_normalizes_with_rule_logsource(void **state)
{
    struct fixture *f = *state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sigma/regression_data", MAMORI_DATA_DIR);
    struct stat st;
    if (stat(dir, &st) != 0) {
        print_message("skipped: %s not found\n", dir);
        skip();
    }
    size_t events = 0, rules = 0;
    walk_regression(f, dir, &events, &rules);
    print_message("regression data: %zu events normalized, %zu rules' logsources checked\n", events, rules);
    assert_true(events >= 160);
    assert_true(rules >= 130);
}

/* ---- real data: OTRF recordings ----------------------------------------------------------- */

static void test_otrf_sample_normalizes(void **state)
{
    struct fixture *f = *state;
    static const char *const zips[] = {
        "windows/lateral_movement/host/empire_psexec_dcerpc_tcp_svcctl.zip",
        "windows/credential_access/host/cmd_lsass_memory_dumpert_syscalls.zip",
        "windows/credential_access/host/cmd_dumping_ntds_dit_file_ntdsutil.zip",
        "windows/defense_evasion/host/empire_monologue_netntlm_downgrade.zip",
        "windows/defense_evasion/host/psh_stop_event_logging_controlset_minint_key.zip",
        "windows/lateral_movement/host/covenant_dcom_iertutil_dll_hijack.zip",
        "windows/collection/host/msf_record_mic.zip",
        "windows/discovery/host/empire_shell_net_localgroup_administrators.zip",
    };
    size_t total = 0, zips_read = 0;
    static char line[1 << 20];
    for (size_t z = 0; z < sizeof zips / sizeof zips[0]; z++) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "unzip -p '%s/otrf/%s' -x '__MACOSX/*' 2>/dev/null", MAMORI_DATA_DIR, zips[z]);
        FILE *p = popen(cmd, "r");
        if (!p) continue;
        size_t lines = 0;
        while (lines < 2000 && fgets(line, sizeof line, p)) {
            size_t len = strlen(line);
            while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
            if (!len) continue;
            arena_reset(&f->arena);
            json_value v;
            json_error jerr;
            if (json_parse(f->parser, &f->arena, line, len, &v, &jerr) != 0) fail_msg("%s: line %zu: %s", zips[z], lines, jerr.msg);
            mamori_event ev;
            if (normalize_event(f->norm, &f->arena, EVENT_FORMAT_AUTO, &v, &f->stamp, 0, &ev, f->err, sizeof f->err))
                fail_msg("%s line %zu rejected: %s", zips[z], lines, f->err);
            if (lines % 97 == 0) check_invariants(f, &ev);
            /* deferred JSON: the same bytes, written on demand */
            normalizer_set_defer_json(f->norm, true);
            mamori_event dv;
            if (normalize_event(f->norm, &f->arena, EVENT_FORMAT_AUTO, &v, &f->stamp, 0, &dv, f->err, sizeof f->err))
                fail_msg("%s line %zu rejected when deferred: %s", zips[z], lines, f->err);
            normalizer_set_defer_json(f->norm, false);
            assert_null(dv.json);
            assert_int_equal(dv.field_count, ev.field_count);
            assert_int_equal(normalize_event_json(f->norm, &f->arena, &dv, f->err, sizeof f->err), 0);
            assert_int_equal(dv.json_len, ev.json_len);
            assert_memory_equal(dv.json, ev.json, ev.json_len);
            assert_non_null(get(&ev, "winlog.channel"));
            assert_non_null(get(&ev, "winlog.event_id"));
            lines++;
        }
        pclose(p);
        if (lines) zips_read++;
        total += lines;
    }
    if (!zips_read) {
        print_message("skipped: no OTRF zips readable under %s/otrf (unzip installed?)\n", MAMORI_DATA_DIR);
        skip();
    }
    print_message("OTRF: %zu lines from %zu recordings normalized\n", total, zips_read);
    assert_true(total >= 5000);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_regression_data_normalizes_with_rule_logsource, setup, teardown),
        cmocka_unit_test_setup_teardown(test_otrf_sample_normalizes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

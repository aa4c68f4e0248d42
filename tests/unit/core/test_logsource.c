/* tests/unit/core/test_logsource.c — the routing and mapping tables (core/logsource.c,
 * core/ecs_map.c): representative rows of the winlog (channel, EventID) table and the ECS
 * categorization table, names, classification of normalized events, and the Sigma field →
 * ECS lookups in both directions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/ecs_map.h"
#include "core/event.h"
#include "core/json.h"
#include "core/logsource.h"

#include <errno.h>
#include <string.h>

#define SYSMON "Microsoft-Windows-Sysmon/Operational"
#define BIT(c) LOGSOURCE_BIT(LOGSOURCE_CATEGORY_##c)

static uint64_t winlog_categories(const char *channel, int64_t event_id, uint16_t *service, uint8_t *product)
{
    struct logsource_set ls;
    logsource_from_winlog(channel, strlen(channel), event_id, &ls, NULL);
    if (service) *service = ls.service;
    if (product) *product = ls.product;
    return ls.categories;
}

static void test_winlog_table_sysmon_rows(void **state)
{
    (void)state;
    static const struct {
        int64_t event_id;
        uint64_t categories;
    } rows[] = {
        {1, BIT(PROCESS_CREATION)},
        {2, BIT(FILE_CHANGE)},
        {3, BIT(NETWORK_CONNECTION)},
        {4, BIT(SYSMON_STATUS)},
        {5, BIT(PROCESS_TERMINATION)},
        {6, BIT(DRIVER_LOAD)},
        {7, BIT(IMAGE_LOAD)},
        {8, BIT(CREATE_REMOTE_THREAD)},
        {9, BIT(RAW_ACCESS_THREAD)},
        {10, BIT(PROCESS_ACCESS)},
        {11, BIT(FILE_EVENT)},
        {12, BIT(REGISTRY_ADD) | BIT(REGISTRY_DELETE) | BIT(REGISTRY_EVENT)},
        {13, BIT(REGISTRY_SET) | BIT(REGISTRY_EVENT)},
        {14, BIT(REGISTRY_RENAME) | BIT(REGISTRY_EVENT)},
        {15, BIT(CREATE_STREAM_HASH)},
        {16, BIT(SYSMON_STATUS)},
        {17, BIT(PIPE_CREATED)},
        {18, BIT(PIPE_CREATED)},
        {19, BIT(WMI_EVENT)},
        {21, BIT(WMI_EVENT)},
        {22, BIT(DNS_QUERY)},
        {23, BIT(FILE_DELETE)},
        {24, BIT(CLIPBOARD_CAPTURE)},
        {25, BIT(PROCESS_TAMPERING)},
        {26, BIT(FILE_DELETE) | BIT(FILE_DELETE_DETECTED)},
        {27, BIT(FILE_BLOCK_EXECUTABLE)},
        {28, BIT(FILE_BLOCK_SHREDDING)},
        {29, BIT(FILE_EXECUTABLE_DETECTED)},
        {255, BIT(SYSMON_ERROR)},
        {30, 0},
        {-1, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint16_t service;
        uint8_t product;
        uint64_t got = winlog_categories(SYSMON, rows[i].event_id, &service, &product);
        if (got != rows[i].categories)
            fail_msg("Sysmon %lld: got %#llx want %#llx", (long long)rows[i].event_id, (unsigned long long)got,
                     (unsigned long long)rows[i].categories);
        assert_int_equal(service, LOGSOURCE_SERVICE_SYSMON);
        assert_int_equal(product, LOGSOURCE_PRODUCT_WINDOWS);
    }
    /* Sysmon for Linux: same table, product linux */
    uint8_t product;
    assert_true(winlog_categories("Linux-Sysmon/Operational", 1, NULL, &product) == BIT(PROCESS_CREATION));
    assert_int_equal(product, LOGSOURCE_PRODUCT_LINUX);
}

static void test_winlog_table_other_channels(void **state)
{
    (void)state;
    uint16_t service;
    uint8_t product;
    /* channel names are matched caselessly: the data has "security" and "Security" */
    assert_true(winlog_categories("Security", 4688, &service, NULL) == BIT(PROCESS_CREATION));
    assert_int_equal(service, LOGSOURCE_SERVICE_SECURITY);
    assert_true(winlog_categories("security", 4688, &service, NULL) == BIT(PROCESS_CREATION));
    assert_int_equal(service, LOGSOURCE_SERVICE_SECURITY);
    assert_true(winlog_categories("SECURITY", 4624, &service, NULL) == 0);
    assert_int_equal(service, LOGSOURCE_SERVICE_SECURITY);
    assert_true(winlog_categories("Microsoft-Windows-PowerShell/Operational", 4103, &service, NULL) == BIT(PS_MODULE));
    assert_int_equal(service, LOGSOURCE_SERVICE_POWERSHELL);
    assert_true(winlog_categories("Microsoft-Windows-PowerShell/Operational", 4104, NULL, NULL) == BIT(PS_SCRIPT));
    assert_true(winlog_categories("PowerShellCore/Operational", 4104, &service, NULL) == BIT(PS_SCRIPT));
    assert_int_equal(service, LOGSOURCE_SERVICE_NONE);
    assert_true(winlog_categories("Windows PowerShell", 400, &service, NULL) == BIT(PS_CLASSIC_START));
    assert_int_equal(service, LOGSOURCE_SERVICE_POWERSHELL_CLASSIC);
    assert_true(winlog_categories("Windows PowerShell", 600, NULL, NULL) == BIT(PS_CLASSIC_PROVIDER_START));
    assert_true(winlog_categories("Windows PowerShell", 800, NULL, NULL) == BIT(PS_CLASSIC_SCRIPT));
    /* Sysmon EventIDs mean nothing on other channels */
    assert_true(winlog_categories("System", 1, &service, NULL) == 0);
    assert_int_equal(service, LOGSOURCE_SERVICE_SYSTEM);
    static const struct {
        const char *channel;
        enum logsource_service service;
    } services[] = {
        {"Application", LOGSOURCE_SERVICE_APPLICATION},
        {"Microsoft-Windows-TaskScheduler/Operational", LOGSOURCE_SERVICE_TASKSCHEDULER},
        {"Microsoft-Windows-WMI-Activity/Operational", LOGSOURCE_SERVICE_WMI},
        {"DNS Server", LOGSOURCE_SERVICE_DNS_SERVER},
        {"Microsoft-Windows-Windows Defender/Operational", LOGSOURCE_SERVICE_WINDEFEND},
        {"Microsoft-Windows-AppLocker/EXE and DLL", LOGSOURCE_SERVICE_APPLOCKER},
        {"Microsoft-Windows-Bits-Client/Operational", LOGSOURCE_SERVICE_BITS_CLIENT},
        {"Microsoft-Windows-CodeIntegrity/Operational", LOGSOURCE_SERVICE_CODEINTEGRITY_OPERATIONAL},
        {"Microsoft-Windows-DriverFrameworks-UserMode/Operational", LOGSOURCE_SERVICE_DRIVER_FRAMEWORK},
        {"Microsoft-Windows-Windows Firewall With Advanced Security/Firewall", LOGSOURCE_SERVICE_FIREWALL_AS},
        {"Microsoft-Windows-NTLM/Operational", LOGSOURCE_SERVICE_NTLM},
        {"OpenSSH/Operational", LOGSOURCE_SERVICE_OPENSSH},
        {"Microsoft-Windows-Security-Mitigations/User Mode", LOGSOURCE_SERVICE_SECURITY_MITIGATIONS},
        {"Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
         LOGSOURCE_SERVICE_TERMINALSERVICES_LOCALSESSIONMANAGER},
    };
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        winlog_categories(services[i].channel, 1, &service, &product);
        if (service != services[i].service) fail_msg("%s: service %u", services[i].channel, service);
        assert_int_equal(product, LOGSOURCE_PRODUCT_WINDOWS);
    }
    /* unknown channel: windows, nothing else; NULL channel too */
    assert_true(winlog_categories("Directory Service", 1, &service, &product) == 0);
    assert_int_equal(service, LOGSOURCE_SERVICE_NONE);
    assert_int_equal(product, LOGSOURCE_PRODUCT_WINDOWS);
    struct logsource_set ls;
    struct logsource_winlog_ecs ecs;
    logsource_from_winlog(NULL, 0, 1, &ls, &ecs);
    assert_true(ls.categories == 0 && ls.service == 0 && ecs.category[0] == NULL);
    /* the ECS columns */
    logsource_from_winlog(SYSMON, strlen(SYSMON), 3, &ls, &ecs);
    assert_string_equal(ecs.category[0], "network");
    assert_null(ecs.category[1]);
    assert_string_equal(ecs.type[0], "connection");
    assert_string_equal(ecs.type[1], "start");
    assert_null(ecs.type[2]);
    logsource_from_winlog(SYSMON, strlen(SYSMON), 7, &ls, &ecs);
    assert_string_equal(ecs.category[0], "library");
}

static json_value *strings(arena *a, const char *const *items, uint32_t count)
{
    json_value *v = arena_alloc(a, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = JSON_ARRAY;
    v->len = count;
    v->items = arena_alloc(a, count * sizeof(json_value));
    for (uint32_t i = 0; i < count; i++) {
        memset(&v->items[i], 0, sizeof(json_value));
        v->items[i].type = JSON_STRING;
        v->items[i].str = items[i];
        v->items[i].len = (uint32_t)strlen(items[i]);
    }
    return v;
}

static uint64_t ecs_categories(arena *a, const char *category, const char *type, const char *os, bool dns,
                               uint8_t *product)
{
    json_value *c = category ? strings(a, &category, 1) : NULL;
    json_value *t = type ? strings(a, &type, 1) : NULL;
    json_value *o = NULL;
    if (os) {
        o = strings(a, &os, 1);
        o = &o->items[0]; /* a plain string */
    }
    struct logsource_set ls;
    logsource_from_ecs(c, t, o, dns, &ls);
    if (product) *product = ls.product;
    return ls.categories;
}

static void test_ecs_table_rows(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 0);
    uint8_t product;
    assert_true(ecs_categories(&a, "process", "start", "windows", false, &product) == BIT(PROCESS_CREATION));
    assert_int_equal(product, LOGSOURCE_PRODUCT_WINDOWS);
    assert_true(ecs_categories(&a, "process", "end", "linux", false, &product) == BIT(PROCESS_TERMINATION));
    assert_int_equal(product, LOGSOURCE_PRODUCT_LINUX);
    assert_true(ecs_categories(&a, "process", "info", "macOS", false, &product) == 0);
    assert_int_equal(product, LOGSOURCE_PRODUCT_MACOS);
    assert_true(ecs_categories(&a, "network", "start", NULL, false, &product) == BIT(NETWORK_CONNECTION));
    assert_int_equal(product, LOGSOURCE_PRODUCT_NONE);
    assert_true(ecs_categories(&a, "network", "connection", NULL, false, NULL) == BIT(NETWORK_CONNECTION));
    assert_true(ecs_categories(&a, "network", "protocol", NULL, true, NULL) == BIT(DNS_QUERY));
    assert_true(ecs_categories(&a, "network", "protocol", NULL, false, NULL) == 0);
    assert_true(ecs_categories(&a, "file", "creation", NULL, false, NULL) == BIT(FILE_EVENT));
    assert_true(ecs_categories(&a, "file", "change", NULL, false, NULL) == BIT(FILE_EVENT));
    assert_true(ecs_categories(&a, "file", "deletion", NULL, false, NULL) == BIT(FILE_DELETE));
    assert_true(ecs_categories(&a, "dns", NULL, NULL, false, NULL) == BIT(DNS_QUERY));
    assert_true(ecs_categories(&a, "registry", "change", NULL, false, NULL) == (BIT(REGISTRY_SET) | BIT(REGISTRY_EVENT)));
    assert_true(ecs_categories(&a, "library", "start", NULL, false, NULL) == BIT(IMAGE_LOAD));
    assert_true(ecs_categories(&a, "driver", NULL, NULL, false, NULL) == BIT(DRIVER_LOAD));
    assert_true(ecs_categories(&a, "authentication", "start", NULL, false, NULL) == 0);
    assert_true(ecs_categories(&a, NULL, "start", NULL, false, NULL) == 0);
    /* several values at once, and a plain string instead of an array */
    static const char *const cats[] = {"file", "process"}, *const types[] = {"start", "creation"};
    struct logsource_set ls;
    logsource_from_ecs(strings(&a, cats, 2), strings(&a, types, 2), NULL, false, &ls);
    assert_true(ls.categories == (BIT(FILE_EVENT) | BIT(PROCESS_CREATION)));
    json_value *one = strings(&a, cats + 1, 1);
    logsource_from_ecs(&one->items[0], strings(&a, types, 1), NULL, false, &ls);
    assert_true(ls.categories == BIT(PROCESS_CREATION));
    arena_fini(&a);
}

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int c = 1; c < LOGSOURCE_CATEGORY_COUNT; c++) {
        const char *name = logsource_category_name((enum logsource_category)c);
        enum logsource_category back;
        assert_true(name[0] != '\0');
        assert_int_equal(logsource_category_parse(name, strlen(name), &back), 0);
        assert_int_equal(back, c);
    }
    for (int s = 1; s < LOGSOURCE_SERVICE_COUNT; s++) {
        const char *name = logsource_service_name((enum logsource_service)s);
        enum logsource_service back;
        assert_true(name[0] != '\0');
        assert_int_equal(logsource_service_parse(name, strlen(name), &back), 0);
        assert_int_equal(back, s);
    }
    for (int p = 1; p < LOGSOURCE_PRODUCT_COUNT; p++) {
        const char *name = logsource_product_name((enum logsource_product)p);
        enum logsource_product back;
        assert_int_equal(logsource_product_parse(name, strlen(name), &back), 0);
        assert_int_equal(back, p);
    }
    enum logsource_category c;
    enum logsource_service s;
    assert_int_equal(logsource_category_parse("Process_Creation", 16, &c), -EINVAL);
    assert_int_equal(logsource_category_parse("", 0, &c), -EINVAL);
    assert_int_equal(logsource_service_parse("powershell-classic", 18, &s), 0);
    assert_int_equal(s, LOGSOURCE_SERVICE_POWERSHELL_CLASSIC);
    assert_string_equal(logsource_category_name(LOGSOURCE_CATEGORY_COUNT), "");
}

static mamori_event normalize(json_parser *p, normalizer *n, arena *a, const char *text)
{
    json_value *v = arena_alloc(a, sizeof *v);
    json_error err;
    char *copy = arena_strndup(a, text, strlen(text));
    assert_int_equal(json_parse(p, a, copy, strlen(copy), v, &err), 0);
    event_stamp stamp = {.tenant = "t", .agent_id = "a", .received_us = 1};
    mamori_event ev;
    char reason[128];
    if (normalize_event(n, a, EVENT_FORMAT_AUTO, v, &stamp, 0, &ev, reason, sizeof reason) != 0)
        fail_msg("rejected: %s", reason);
    return ev;
}

static void test_classify_normalized_events(void **state)
{
    (void)state;
    json_parser *p = json_parser_create();
    normalizer *n = normalizer_create();
    arena a;
    arena_init(&a, 0);
    struct logsource_set ls;
    mamori_event ev = normalize(p, n, &a, "{\"EventID\":12,\"Channel\":\"" SYSMON "\",\"EventType\":\"CreateKey\"}");
    logsource_classify(&ev, &ls);
    assert_true(ls.categories == (BIT(REGISTRY_ADD) | BIT(REGISTRY_DELETE) | BIT(REGISTRY_EVENT)));
    assert_int_equal(ls.service, LOGSOURCE_SERVICE_SYSMON);
    ev = normalize(p, n, &a, "{\"event\":{\"category\":\"process\",\"type\":[\"start\"]},\"host\":{\"os\":{\"type\":\"linux\"}}}");
    logsource_classify(&ev, &ls);
    assert_true(ls.categories == BIT(PROCESS_CREATION));
    assert_int_equal(ls.product, LOGSOURCE_PRODUCT_LINUX);
    ev = normalize(p, n, &a, "{\"event\":{\"category\":[\"network\"]},\"dns\":{\"question\":{\"name\":\"example.test\"}}}");
    logsource_classify(&ev, &ls);
    assert_true(ls.categories == BIT(DNS_QUERY));
    /* an ECS event that carries winlog.channel routes by the winlog table, EventID as text too */
    ev = normalize(p, n, &a, "{\"winlog.channel\":\"Security\",\"winlog.event_id\":\"4688\",\"event.category\":\"file\"}");
    logsource_classify(&ev, &ls);
    assert_true(ls.categories == BIT(PROCESS_CREATION));
    ev = normalize(p, n, &a, "{\"x\":1}");
    logsource_classify(&ev, &ls);
    assert_true(ls.categories == 0 && ls.service == 0 && ls.product == 0);
    arena_fini(&a);
    normalizer_destroy(n);
    json_parser_destroy(p);
}

static const char *lookup(const char *field, const struct logsource_set *ls, bool *exact)
{
    const ecs_map_entry *e = ecs_map_lookup(field, strlen(field), ls, exact);
    return e ? e->ecs_path : NULL;
}

static void test_ecs_map_lookup(void **state)
{
    (void)state;
    struct logsource_set proc = {.categories = BIT(PROCESS_CREATION), .service = LOGSOURCE_SERVICE_SYSMON};
    struct logsource_set image = {.categories = BIT(IMAGE_LOAD), .service = LOGSOURCE_SERVICE_SYSMON};
    struct logsource_set net = {.categories = BIT(NETWORK_CONNECTION), .service = LOGSOURCE_SERVICE_SYSMON};
    struct logsource_set sec = {.categories = BIT(PROCESS_CREATION), .service = LOGSOURCE_SERVICE_SECURITY};
    struct logsource_set classic = {.categories = BIT(PS_CLASSIC_START), .service = LOGSOURCE_SERVICE_POWERSHELL_CLASSIC};
    struct logsource_set sysmon_error = {.categories = BIT(SYSMON_ERROR)};
    bool exact;
    /* category-limited rows */
    assert_string_equal(lookup("FileVersion", &proc, NULL), "process.pe.file_version");
    assert_string_equal(lookup("FileVersion", &image, NULL), "file.pe.file_version");
    assert_null(lookup("FileVersion", &net, NULL));
    assert_null(lookup("FileVersion", NULL, NULL));
    assert_string_equal(lookup("OriginalFileName", &image, NULL), "file.pe.original_file_name");
    assert_string_equal(lookup("Description", &sysmon_error, NULL), "winlog.event_data.Description");
    assert_string_equal(lookup("Protocol", &net, NULL), "network.transport");
    assert_string_equal(lookup("Signature", &image, NULL), "file.code_signature.subject_name");
    /* service-limited rows */
    assert_string_equal(lookup("CommandLine", &sec, NULL), "process.command_line");
    assert_string_equal(lookup("CommandLine", &classic, NULL), "powershell.command.value");
    assert_null(lookup("CommandLine", &net, NULL));
    assert_string_equal(lookup("SubjectUserName", &sec, NULL), "user.name");
    assert_null(lookup("SubjectUserName", &proc, NULL));
    assert_string_equal(lookup("TargetLogonId", &sec, NULL), "winlog.logon.id");
    /* unconditional rows */
    assert_string_equal(lookup("Image", NULL, &exact), "process.executable");
    assert_true(exact);
    assert_string_equal(lookup("TargetFilename", &net, NULL), "file.path");
    assert_string_equal(lookup("QueryName", NULL, NULL), "dns.question.name");
    assert_string_equal(lookup("EventID", NULL, NULL), "event.code");
    assert_string_equal(lookup("TargetObject", NULL, NULL), "registry.path");
    assert_string_equal(lookup("Payload", NULL, NULL), "powershell.file.script_block_text");
    /* caseless fallback, exact preferred */
    assert_string_equal(lookup("SourceProcessGUID", NULL, &exact), "process.entity_id");
    assert_false(exact);
    assert_string_equal(lookup("image", NULL, &exact), "process.executable");
    assert_false(exact);
    /* unmapped */
    assert_null(lookup("IntegrityLevel", &proc, NULL));
    assert_null(lookup("", NULL, NULL));
    assert_null(lookup("Imagex", NULL, NULL));
    /* types */
    const ecs_map_entry *e = ecs_map_lookup("DestinationPort", 15, NULL, NULL);
    assert_int_equal(e->type, ECS_TYPE_LONG);
    e = ecs_map_lookup("ProcessGuid", 11, NULL, NULL);
    assert_int_equal(e->type, ECS_TYPE_GUID);
    assert_int_equal(ecs_map_path_type("process.pid", 11), ECS_TYPE_LONG);
    assert_int_equal(ecs_map_path_type("winlog.record_id", 16), ECS_TYPE_LONG);
    assert_int_equal(ecs_map_path_type("source.port", 11), ECS_TYPE_LONG);
    assert_int_equal(ecs_map_path_type("process.name", 12), ECS_TYPE_KEYWORD);
    assert_int_equal(ecs_map_path_type("process.pi", 10), ECS_TYPE_KEYWORD);
    /* priority: more specific rows come first; index is position */
    size_t count = ecs_map_count();
    assert_true(count > 90);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(ecs_map_index(ecs_map_at(i)), i);
        assert_non_null(ecs_map_at(i)->ecs_path);
    }
    assert_true(ecs_map_index(ecs_map_lookup("NewProcessId", 12, NULL, NULL)) <
                ecs_map_index(ecs_map_lookup("ProcessId", 9, NULL, NULL)));
    assert_true(ecs_map_index(ecs_map_lookup("SubjectDomainName", 17, &sec, NULL)) <
                ecs_map_index(ecs_map_lookup("TargetDomainName", 16, &sec, NULL)));
}

static void test_ecs_map_reverse(void **state)
{
    (void)state;
    struct logsource_set image = {.categories = BIT(IMAGE_LOAD), .service = LOGSOURCE_SERVICE_SYSMON};
    struct logsource_set proc = {.categories = BIT(PROCESS_CREATION), .service = LOGSOURCE_SERVICE_SYSMON};
    const ecs_map_entry *out[16];
    size_t n = ecs_map_reverse("file.path", 9, NULL, out, 16);
    assert_int_equal(n, 5);
    bool image_loaded = false;
    for (size_t i = 0; i < n; i++) image_loaded |= strcmp(out[i]->sigma_field, "ImageLoaded") == 0;
    assert_true(image_loaded);
    n = ecs_map_reverse("file.pe.file_version", 20, &image, out, 16);
    assert_int_equal(n, 1);
    assert_string_equal(out[0]->sigma_field, "FileVersion");
    assert_int_equal(ecs_map_reverse("file.pe.file_version", 20, &proc, out, 16), 0);
    n = ecs_map_reverse("process.command_line", 20, &proc, out, 1); /* more than max: counted */
    assert_int_equal(n, 2);                                            /* CommandLine, HostApplication */
    assert_string_equal(out[0]->sigma_field, "CommandLine");
    assert_int_equal(ecs_map_reverse("no.such.path", 12, NULL, out, 16), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_winlog_table_sysmon_rows),
        cmocka_unit_test(test_winlog_table_other_channels),
        cmocka_unit_test(test_ecs_table_rows),
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_classify_normalized_events),
        cmocka_unit_test(test_ecs_map_lookup),
        cmocka_unit_test(test_ecs_map_reverse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

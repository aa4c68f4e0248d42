/* tests/unit/core/test_normalize_winlog.c — normalize_event on Windows events: the three
 * shapes (evtx_dump JSON, NXLog flat, Winlogbeat) giving byte-identical events, mapping by
 * category, collisions, NXLog's System fields, evtx variants, Winlogbeat beside ECS, and
 * scratch reuse over alternating shapes. */
#include "normalize_fixture.h"

/* ---- winlog: the three shapes ------------------------------------------------------------ */

/* One Sysmon 1 event (made-up values), in each shape. */
static const char sysmon1_evtx[] =
    "{\"Event\":{\"#attributes\":{\"xmlns\":\"http://schemas.microsoft.com/win/2004/08/events/event\"},"
    "\"System\":{\"Provider\":{\"#attributes\":{\"Name\":\"Microsoft-Windows-Sysmon\","
    "\"Guid\":\"5770385F-C22A-43E0-BF4C-06F5698FFBD9\"}},\"EventID\":1,\"Version\":5,\"Level\":4,\"Task\":1,"
    "\"Opcode\":0,\"Keywords\":\"0x8000000000000000\",\"TimeCreated\":{\"#attributes\":{\"SystemTime\":"
    "\"2024-03-04T05:06:07.123456Z\"}},\"EventRecordID\":9001,\"Correlation\":null,\"Execution\":{\"#attributes\":"
    "{\"ProcessID\":2400,\"ThreadID\":3100}},\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Computer\":"
    "\"ws1.example.test\",\"Security\":{\"#attributes\":{\"UserID\":\"S-1-5-18\"}}},"
    "\"EventData\":{\"RuleName\":\"-\",\"UtcTime\":\"2024-03-04 05:06:07.120\",\"ProcessGuid\":"
    "\"1A2B3C4D-0001-0002-0003-000000000A0B\",\"ProcessId\":5120,\"Image\":\"C:\\\\Windows\\\\System32\\\\whoami.exe\","
    "\"FileVersion\":\"10.0.1 (x)\",\"Description\":\"whoami - displays logged on user information\",\"Product\":"
    "\"Microsoft\xc2\xae Windows\xc2\xae Operating System\",\"Company\":\"Microsoft Corporation\",\"OriginalFileName\":"
    "\"whoami.exe\",\"CommandLine\":\"whoami /all\",\"CurrentDirectory\":\"C:\\\\Users\\\\bob\\\\\",\"User\":"
    "\"EXAMPLE\\\\bob\",\"LogonGuid\":\"1A2B3C4D-0000-0000-0000-000000000001\",\"LogonId\":\"0x3e7\","
    "\"TerminalSessionId\":1,\"IntegrityLevel\":\"High\",\"Hashes\":\"MD5=0123456789ABCDEF0123456789ABCDEF,"
    "IMPHASH=FEDCBA9876543210FEDCBA9876543210\",\"ParentProcessGuid\":\"1A2B3C4D-0001-0002-0003-000000000A0A\","
    "\"ParentProcessId\":4100,\"ParentImage\":\"C:\\\\Windows\\\\System32\\\\cmd.exe\",\"ParentCommandLine\":"
    "\"cmd.exe\",\"ParentUser\":\"EXAMPLE\\\\bob\"}}}";

static const char sysmon1_nxlog[] =
    "{\"EventTime\":\"2024-03-04 00:06:07\",\"Hostname\":\"ws1.example.test\",\"Keywords\":-9223372036854775808,"
    "\"EventType\":\"INFO\",\"SeverityValue\":2,\"Severity\":\"INFO\",\"EventID\":1,\"SourceName\":"
    "\"Microsoft-Windows-Sysmon\",\"ProviderGuid\":\"{5770385F-C22A-43E0-BF4C-06F5698FFBD9}\",\"Version\":5,"
    "\"Task\":1,\"OpcodeValue\":0,\"RecordNumber\":9001,\"ExecutionProcessID\":2400,\"ThreadID\":3100,"
    "\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Domain\":\"NT AUTHORITY\",\"AccountName\":\"SYSTEM\","
    "\"UserID\":\"S-1-5-18\",\"AccountType\":\"User\",\"Category\":\"Process Create (rule: ProcessCreate)\","
    "\"Opcode\":\"Info\",\"RuleName\":\"-\",\"UtcTime\":\"2024-03-04 05:06:07.120\",\"ProcessGuid\":"
    "\"{1a2b3c4d-0001-0002-0003-000000000a0b}\",\"ProcessId\":\"5120\",\"Image\":"
    "\"C:\\\\Windows\\\\System32\\\\whoami.exe\",\"FileVersion\":\"10.0.1 (x)\",\"Description\":"
    "\"whoami - displays logged on user information\",\"Product\":\"Microsoft\xc2\xae Windows\xc2\xae Operating System\","
    "\"Company\":\"Microsoft Corporation\",\"OriginalFileName\":\"whoami.exe\",\"CommandLine\":\"whoami /all\","
    "\"CurrentDirectory\":\"C:\\\\Users\\\\bob\\\\\",\"User\":\"EXAMPLE\\\\bob\",\"LogonGuid\":"
    "\"1A2B3C4D-0000-0000-0000-000000000001\",\"LogonId\":\"0x3e7\",\"TerminalSessionId\":\"1\",\"IntegrityLevel\":"
    "\"High\",\"Hashes\":\"MD5=0123456789ABCDEF0123456789ABCDEF,IMPHASH=FEDCBA9876543210FEDCBA9876543210\","
    "\"ParentProcessGuid\":\"{1A2B3C4D-0001-0002-0003-000000000A0A}\",\"ParentProcessId\":\"4100\",\"ParentImage\":"
    "\"C:\\\\Windows\\\\System32\\\\cmd.exe\",\"ParentCommandLine\":\"cmd.exe\",\"ParentUser\":\"EXAMPLE\\\\bob\","
    "\"EventReceivedTime\":\"2024-03-04 00:06:08\",\"SourceModuleName\":\"eventlog\",\"SourceModuleType\":"
    "\"im_msvistalog\",\"@version\":\"1\",\"host\":\"wec.example.test\",\"port\":51000,\"tags\":[\"lab\"],"
    "\"@timestamp\":\"2024-03-04T05:06:07.123456Z\"}";

static const char sysmon1_winlogbeat[] =
    "{\"@timestamp\":\"2024-03-04T05:06:07.123456Z\",\"log\":{\"level\":\"information\"},\"winlog\":{"
    "\"channel\":\"Microsoft-Windows-Sysmon/Operational\",\"event_id\":\"1\",\"provider_name\":"
    "\"Microsoft-Windows-Sysmon\",\"provider_guid\":\"{5770385f-c22a-43e0-bf4c-06f5698ffbd9}\",\"computer_name\":"
    "\"ws1.example.test\",\"record_id\":\"9001\",\"process\":{\"pid\":2400,\"thread\":{\"id\":3100}},\"user\":{"
    "\"identifier\":\"S-1-5-18\",\"domain\":\"NT AUTHORITY\",\"name\":\"SYSTEM\",\"type\":\"User\"},\"version\":5,"
    "\"task\":1,\"opcode\":0,\"keywords\":\"0x8000000000000000\",\"event_data\":{\"RuleName\":\"-\",\"UtcTime\":"
    "\"2024-03-04 05:06:07.120\",\"ProcessGuid\":\"{1a2b3c4d-0001-0002-0003-000000000a0b}\",\"ProcessId\":\"5120\","
    "\"Image\":\"C:\\\\Windows\\\\System32\\\\whoami.exe\",\"FileVersion\":\"10.0.1 (x)\",\"Description\":"
    "\"whoami - displays logged on user information\",\"Product\":\"Microsoft\xc2\xae Windows\xc2\xae Operating System\","
    "\"Company\":\"Microsoft Corporation\",\"OriginalFileName\":\"whoami.exe\",\"CommandLine\":\"whoami /all\","
    "\"CurrentDirectory\":\"C:\\\\Users\\\\bob\\\\\",\"User\":\"EXAMPLE\\\\bob\",\"LogonGuid\":"
    "\"1A2B3C4D-0000-0000-0000-000000000001\",\"LogonId\":\"0x3e7\",\"TerminalSessionId\":\"1\",\"IntegrityLevel\":"
    "\"High\",\"Hashes\":\"MD5=0123456789ABCDEF0123456789ABCDEF,IMPHASH=FEDCBA9876543210FEDCBA9876543210\","
    "\"ParentProcessGuid\":\"{1a2b3c4d-0001-0002-0003-000000000a0a}\",\"ParentProcessId\":\"4100\",\"ParentImage\":"
    "\"C:\\\\Windows\\\\System32\\\\cmd.exe\",\"ParentCommandLine\":\"cmd.exe\",\"ParentUser\":\"EXAMPLE\\\\bob\"}}}";

static void test_winlog_sysmon1_three_shapes_identical(void **state)
{
    struct fixture *f = *state;
    /* evtx lacks NXLog's resolved account (winlog.user.name…): add it alongside as ECS */
    mamori_event a = must_norm(f, EVENT_FORMAT_WINLOG, sysmon1_evtx);
    mamori_event b = must_norm(f, EVENT_FORMAT_WINLOG, sysmon1_nxlog);
    mamori_event c = must_norm(f, EVENT_FORMAT_WINLOG, sysmon1_winlogbeat);
    mamori_event d = must_norm(f, EVENT_FORMAT_AUTO, sysmon1_nxlog);
    check_invariants(f, &a);
    /* the NXLog and Winlogbeat forms also carry the resolved account; without it, the
     * evtx event is the same */
    assert_str(&b, "winlog.user.name", "SYSTEM");
    assert_str(&c, "winlog.user.domain", "NT AUTHORITY");
    assert_same_event(&b, &c);
    assert_same_event(&b, &d);
    assert_absent(&a, "winlog.user.name");

    const char *nx_without_account_start = strstr(sysmon1_nxlog, "\"Domain\"");
    assert_non_null(nx_without_account_start);
    buf nx;
    buf_init(&nx);
    /* drop "Domain":…,"AccountName":…, and "AccountType":…, from the NXLog line */
    const char *cut_from = nx_without_account_start, *cut_to = strstr(sysmon1_nxlog, "\"UserID\"");
    buf_append(&nx, sysmon1_nxlog, (size_t)(cut_from - sysmon1_nxlog));
    const char *after_user = strstr(cut_to, "\"AccountType\":\"User\",") + strlen("\"AccountType\":\"User\",");
    buf_append(&nx, cut_to, (size_t)(strstr(cut_to, "\"AccountType\"") - cut_to));
    buf_puts(&nx, after_user);
    /* evtx's System Level (winlog.level, for Sigma's Level): NXLog sends it only when its
     * pipeline keeps it, Winlogbeat only as a name */
    assert_int(&a, "winlog.level", 4);
    assert_absent(&b, "winlog.level");
    buf lv;
    buf_init(&lv);
    buf_puts(&lv, "{\"Level\":4,");
    buf_puts(&lv, buf_cstr(&nx) + 1);
    mamori_event e = must_norm(f, EVENT_FORMAT_AUTO, buf_cstr(&lv));
    buf_fini(&lv);
    buf_fini(&nx);
    assert_same_event(&a, &e);

    /* what the shapes agree on */
    assert_str(&a, "@timestamp", "2024-03-04T05:06:07.123456Z");
    assert_true(a.ts_us == 1709528767123456LL);
    assert_str(&a, "winlog.channel", "Microsoft-Windows-Sysmon/Operational");
    assert_int(&a, "winlog.event_id", 1);
    assert_str(&a, "event.code", "1");
    assert_str(&a, "event.kind", "event");
    assert_str(&a, "event.module", "sysmon");
    assert_str(&a, "event.provider", "Microsoft-Windows-Sysmon");
    assert_str(&a, "winlog.provider_guid", "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}");
    assert_str(&a, "winlog.computer_name", "ws1.example.test");
    assert_str(&a, "host.name", "ws1.example.test");
    assert_str(&a, "host.os.type", "windows");
    assert_int(&a, "winlog.record_id", 9001);
    assert_int(&a, "winlog.process.pid", 2400);
    assert_int(&a, "winlog.process.thread.id", 3100);
    assert_str(&a, "winlog.user.identifier", "S-1-5-18");
    assert_str(&a, "winlog.keywords", "0x8000000000000000");
    assert_str(&a, "log.level", "information");
    assert_str(&a, "process.executable", "C:\\Windows\\System32\\whoami.exe");
    assert_str(&a, "process.name", "whoami.exe");
    assert_str(&a, "process.command_line", "whoami /all");
    assert_int(&a, "process.pid", 5120);
    assert_str(&a, "process.entity_id", "{1a2b3c4d-0001-0002-0003-000000000a0b}");
    assert_int(&a, "process.parent.pid", 4100);
    assert_str(&a, "process.parent.name", "cmd.exe");
    assert_str(&a, "process.pe.file_version", "10.0.1 (x)");
    assert_str(&a, "process.pe.original_file_name", "whoami.exe");
    assert_str(&a, "process.working_directory", "C:\\Users\\bob\\");
    assert_str(&a, "process.hash.md5", "0123456789abcdef0123456789abcdef");
    assert_str(&a, "process.pe.imphash", "fedcba9876543210fedcba9876543210");
    assert_str(&a, "user.name", "EXAMPLE\\bob");
    assert_str(&a, "winlog.event_data.TerminalSessionId", "1");
    assert_str(&a, "winlog.event_data.LogonId", "0x3e7");
    assert_str(&a, "winlog.event_data.ParentUser", "EXAMPLE\\bob");
    assert_absent(&a, "winlog.event_data.Image");
    const json_value *cat = get(&a, "event.category");
    assert_true(cat && cat->type == JSON_ARRAY && cat->len == 1);
    struct logsource_set ls;
    logsource_classify(&a, &ls);
    assert_true(logsource_has(&ls, LOGSOURCE_CATEGORY_PROCESS_CREATION));
    assert_int_equal(ls.service, LOGSOURCE_SERVICE_SYSMON);
    assert_int_equal(ls.product, LOGSOURCE_PRODUCT_WINDOWS);
}

static const char sysmon3_evtx[] =
    "{\"Event\":{\"System\":{\"Provider\":{\"#attributes\":{\"Name\":\"Microsoft-Windows-Sysmon\",\"Guid\":"
    "\"{5770385f-c22a-43e0-bf4c-06f5698ffbd9}\"}},\"EventID\":{\"#text\":3},\"Version\":5,\"Level\":4,\"Task\":3,"
    "\"Opcode\":0,\"Keywords\":\"0x8000000000000000\",\"TimeCreated\":{\"#attributes\":{\"SystemTime\":"
    "\"2024-03-04T05:07:00.000001Z\"}},\"EventRecordID\":9002,\"Execution\":{\"#attributes\":{\"ProcessID\":2400,"
    "\"ThreadID\":3104}},\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Computer\":\"ws1.example.test\","
    "\"Security\":{\"#attributes\":{\"UserID\":\"S-1-5-18\"}}},\"EventData\":{\"RuleName\":\"-\",\"UtcTime\":"
    "\"2024-03-04 05:06:59.990\",\"ProcessGuid\":\"{1a2b3c4d-0001-0002-0003-000000000a0b}\",\"ProcessId\":5120,"
    "\"Image\":\"C:\\\\Tools\\\\beacon.exe\",\"User\":\"EXAMPLE\\\\bob\",\"Protocol\":\"tcp\",\"Initiated\":true,"
    "\"SourceIsIpv6\":false,\"SourceIp\":\"10.0.0.5\",\"SourceHostname\":\"ws1.example.test\",\"SourcePort\":49712,"
    "\"SourcePortName\":\"-\",\"DestinationIsIpv6\":false,\"DestinationIp\":\"203.0.113.9\","
    "\"DestinationHostname\":\"-\",\"DestinationPort\":443,\"DestinationPortName\":\"https\"}}}";

static const char sysmon3_nxlog[] =
    "{\"EventID\":3,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"SourceName\":\"Microsoft-Windows-Sysmon\","
    "\"ProviderGuid\":\"{5770385F-C22A-43E0-BF4C-06F5698FFBD9}\",\"Hostname\":\"ws1.example.test\",\"Version\":5,"
    "\"Severity\":\"INFO\",\"SeverityValue\":2,\"EventType\":\"INFO\",\"Task\":3,\"OpcodeValue\":0,\"Opcode\":\"Info\","
    "\"Keywords\":-9223372036854775808,\"RecordNumber\":9002,\"ExecutionProcessID\":2400,\"ThreadID\":3104,"
    "\"UserID\":\"S-1-5-18\",\"Category\":\"Network connection detected (rule: NetworkConnect)\","
    "\"EventReceivedTime\":\"2024-03-04 00:07:01\",\"SourceModuleName\":\"eventlog\",\"SourceModuleType\":"
    "\"im_msvistalog\",\"@version\":\"1\",\"host\":\"wec.example.test\",\"port\":51000,\"tags\":[\"lab\"],"
    "\"@timestamp\":\"2024-03-04T00:07:00.000001-05:00\",\"RuleName\":\"-\",\"UtcTime\":\"2024-03-04 05:06:59.990\","
    "\"ProcessGuid\":\"{1a2b3c4d-0001-0002-0003-000000000a0b}\",\"ProcessId\":\"5120\",\"Image\":"
    "\"C:\\\\Tools\\\\beacon.exe\",\"User\":\"EXAMPLE\\\\bob\",\"Protocol\":\"tcp\",\"Initiated\":\"true\","
    "\"SourceIsIpv6\":\"false\",\"SourceIp\":\"10.0.0.5\",\"SourceHostname\":\"ws1.example.test\",\"SourcePort\":"
    "\"49712\",\"SourcePortName\":\"-\",\"DestinationIsIpv6\":\"false\",\"DestinationIp\":\"203.0.113.9\","
    "\"DestinationHostname\":\"-\",\"DestinationPort\":\"443\",\"DestinationPortName\":\"https\"}";

static const char sysmon3_winlogbeat[] =
    "{\"winlog.channel\":\"Microsoft-Windows-Sysmon/Operational\",\"winlog.event_id\":3,\"winlog.provider_name\":"
    "\"Microsoft-Windows-Sysmon\",\"winlog.provider_guid\":\"{5770385F-C22A-43E0-BF4C-06F5698FFBD9}\","
    "\"winlog.computer_name\":\"ws1.example.test\",\"winlog.version\":5,\"log.level\":\"information\","
    "\"winlog.task\":3,\"winlog.opcode\":0,\"winlog.keywords\":\"0x8000000000000000\",\"winlog.record_id\":9002,"
    "\"winlog.process.pid\":2400,\"winlog.process.thread.id\":3104,\"winlog.user.identifier\":\"S-1-5-18\","
    "\"@timestamp\":\"2024-03-04T05:07:00.000001Z\",\"winlog.event_data\":{\"RuleName\":\"-\",\"UtcTime\":"
    "\"2024-03-04 05:06:59.990\",\"ProcessGuid\":\"{1a2b3c4d-0001-0002-0003-000000000a0b}\",\"ProcessId\":\"5120\","
    "\"Image\":\"C:\\\\Tools\\\\beacon.exe\",\"User\":\"EXAMPLE\\\\bob\",\"Protocol\":\"tcp\",\"Initiated\":\"true\","
    "\"SourceIsIpv6\":\"false\",\"SourceIp\":\"10.0.0.5\",\"SourceHostname\":\"ws1.example.test\",\"SourcePort\":"
    "\"49712\",\"SourcePortName\":\"-\",\"DestinationIsIpv6\":\"false\",\"DestinationIp\":\"203.0.113.9\","
    "\"DestinationHostname\":\"-\",\"DestinationPort\":\"443\",\"DestinationPortName\":\"https\"}}";

static void test_winlog_sysmon3_three_shapes_identical(void **state)
{
    struct fixture *f = *state;
    mamori_event a = must_norm(f, EVENT_FORMAT_AUTO, sysmon3_evtx);
    mamori_event b = must_norm(f, EVENT_FORMAT_AUTO, sysmon3_nxlog);
    mamori_event c = must_norm(f, EVENT_FORMAT_AUTO, sysmon3_winlogbeat);
    check_invariants(f, &a);
    assert_same_event(&b, &c);
    /* evtx's numeric Level is the one difference; an NXLog line that keeps it is the same */
    assert_int(&a, "winlog.level", 4);
    assert_absent(&b, "winlog.level");
    buf lv;
    buf_init(&lv);
    buf_puts(&lv, "{\"Level\":4,");
    buf_puts(&lv, sysmon3_nxlog + 1);
    mamori_event b4 = must_norm(f, EVENT_FORMAT_AUTO, buf_cstr(&lv));
    buf_fini(&lv);
    assert_same_event(&a, &b4);
    assert_str(&a, "source.ip", "10.0.0.5");
    assert_int(&a, "source.port", 49712);
    assert_str(&a, "source.domain", "ws1.example.test");
    assert_str(&a, "destination.ip", "203.0.113.9");
    assert_int(&a, "destination.port", 443);
    assert_str(&a, "network.transport", "tcp");
    assert_str(&a, "network.direction", "true"); /* the Sigma value, as pySigma maps it */
    assert_str(&a, "network.protocol", "https");
    assert_str(&a, "winlog.event_data.SourceIsIpv6", "false");
    assert_str(&a, "process.name", "beacon.exe");
    struct logsource_set ls;
    logsource_classify(&a, &ls);
    assert_true(logsource_has(&ls, LOGSOURCE_CATEGORY_NETWORK_CONNECTION));
    assert_false(logsource_has(&ls, LOGSOURCE_CATEGORY_PROCESS_CREATION));
}

/* ---- winlog: shape details ------------------------------------------------------------------ */

static void test_winlog_mapping_depends_on_category(void **state)
{
    struct fixture *f = *state;
    /* FileVersion / Description: process.pe.* for process_creation, file.pe.* for image_load,
     * unmapped elsewhere */
    mamori_event ev = must_norm(f, EVENT_FORMAT_AUTO,
                                "{\"EventID\":7,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"FileVersion\":\"1.0\","
                                "\"Description\":\"d\",\"ImageLoaded\":\"C:\\\\x\\\\y.dll\",\"Signature\":\"Acme\","
                                "\"Hashes\":\"SHA256=AA\"}");
    assert_str(&ev, "file.pe.file_version", "1.0");
    assert_str(&ev, "file.pe.description", "d");
    assert_str(&ev, "file.path", "C:\\x\\y.dll");
    assert_str(&ev, "file.name", "y.dll");
    assert_str(&ev, "file.code_signature.subject_name", "Acme");
    assert_str(&ev, "file.hash.sha256", "aa");
    assert_absent(&ev, "process.pe.file_version");
    ev = must_norm(f, EVENT_FORMAT_AUTO,
                   "{\"EventID\":5,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"FileVersion\":\"1.0\","
                   "\"CommandLine\":\"x\",\"Signature\":\"Acme\"}");
    assert_str(&ev, "winlog.event_data.FileVersion", "1.0");
    assert_str(&ev, "winlog.event_data.CommandLine", "x");
    assert_str(&ev, "winlog.event_data.Signature", "Acme");
    /* CommandLine: Security (service) → process.command_line; PowerShell classic → powershell.command.value */
    ev = must_norm(f, EVENT_FORMAT_AUTO, "{\"EventID\":4688,\"Channel\":\"security\",\"CommandLine\":\"x\"}");
    assert_str(&ev, "process.command_line", "x");
    assert_str(&ev, "event.module", "security");
    ev = must_norm(f, EVENT_FORMAT_AUTO, "{\"EventID\":400,\"Channel\":\"Windows PowerShell\",\"CommandLine\":\"x\","
                                         "\"EngineVersion\":\"5.1\"}");
    assert_str(&ev, "powershell.command.value", "x");
    assert_str(&ev, "powershell.engine.version", "5.1");
    /* Sysmon 10 spells SourceProcessGUID: matched caselessly */
    ev = must_norm(f, EVENT_FORMAT_AUTO, "{\"EventID\":10,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\","
                                         "\"SourceProcessGUID\":\"{AAAAAAAA-0000-0000-0000-000000000001}\","
                                         "\"SourceProcessId\":\"12\",\"TargetProcessGUID\":\"t\"}");
    assert_str(&ev, "process.entity_id", "{aaaaaaaa-0000-0000-0000-000000000001}");
    assert_int(&ev, "process.pid", 12);
    assert_str(&ev, "winlog.event_data.TargetProcessGUID", "t");
}

static void test_winlog_collisions_keep_every_field(void **state)
{
    struct fixture *f = *state;
    /* Security 4688: NewProcessId (the new process) and ProcessId (its creator) both map to
     * process.pid; SubjectDomainName (security row) beats TargetDomainName (generic row);
     * the losers stay at winlog.event_data.<Field>. */
    mamori_event ev = must_norm(
        f, EVENT_FORMAT_AUTO,
        "{\"EventID\":4688,\"Channel\":\"Security\",\"SourceName\":\"Microsoft-Windows-Security-Auditing\","
        "\"ProcessId\":\"600\",\"NewProcessId\":\"700\",\"NewProcessName\":\"C:\\\\a.exe\",\"SubjectDomainName\":\"S\","
        "\"TargetDomainName\":\"T\",\"SubjectUserName\":\"su\",\"SubjectLogonId\":\"0x1\",\"TargetLogonId\":\"0x2\","
        "\"ParentProcessName\":\"C:\\\\p.exe\"}");
    check_invariants(f, &ev);
    assert_int(&ev, "process.pid", 700);
    assert_int(&ev, "winlog.event_data.ProcessId", 600);
    assert_str(&ev, "user.domain", "S");
    assert_str(&ev, "winlog.event_data.TargetDomainName", "T");
    assert_str(&ev, "winlog.logon.id", "0x1");
    assert_str(&ev, "winlog.event_data.TargetLogonId", "0x2");
    assert_str(&ev, "process.executable", "C:\\a.exe");
    /* the creator's full path: process.parent.executable (as Winlogbeat), name derived */
    assert_str(&ev, "process.parent.executable", "C:\\p.exe");
    assert_str(&ev, "process.parent.name", "p.exe");
    struct logsource_set ls;
    logsource_classify(&ev, &ls);
    assert_true(logsource_has(&ls, LOGSOURCE_CATEGORY_PROCESS_CREATION));
    assert_int_equal(ls.service, LOGSOURCE_SERVICE_SECURITY);
    /* exact case beats caseless: ProcessId → process.pid, ProcessID back to event data */
    ev = must_norm(f, EVENT_FORMAT_AUTO, "{\"EventID\":1,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\","
                                         "\"ProcessID\":\"2\",\"ProcessId\":\"1\"}");
    assert_int(&ev, "process.pid", 1);
    assert_int(&ev, "winlog.event_data.ProcessID", 2); /* keeps the type its row gave it */
    /* the same EventData name twice is a duplicate */
    expect_reject(f, EVENT_FORMAT_AUTO, "{\"EventID\":1,\"Channel\":\"x\",\"Image\":\"a\",\"Image\":\"b\"}",
                  "duplicate field");
    expect_reject(f, EVENT_FORMAT_AUTO, "{\"EventID\":1,\"Channel\":\"x\",\"RuleName\":\"a\",\"RuleName\":\"b\"}",
                  "duplicate field 'winlog.event_data.RuleName'");
    expect_reject(f, EVENT_FORMAT_AUTO, "{\"EventID\":1,\"EventID\":2,\"Channel\":\"x\"}", "duplicate field 'EventID'");
    /* repeated NXLog keys whose meaning depends on their neighbours (found by fuzz_normalize:
     * 60 "EventType" keys overran the list of keys decided last) */
    buf b;
    buf_init(&b);
    buf_puts(&b, "{\"EventID\":1,\"Channel\":\"x\"");
    for (int i = 0; i < 60; i++) buf_puts(&b, ",\"EventType\":\"INFO\"");
    buf_putc(&b, '}');
    expect_reject(f, EVENT_FORMAT_AUTO, buf_cstr(&b), "duplicate field 'EventType'");
    buf_fini(&b);
    expect_reject(f, EVENT_FORMAT_AUTO, "{\"EventID\":1,\"Channel\":\"x\",\"ProcessID\":1,\"ProcessID\":2}",
                  "duplicate field 'ProcessID'");
}

static void test_winlog_nxlog_system_fields(void **state)
{
    struct fixture *f = *state;
    /* Sysmon's registry EventType is data (the pipeline renamed NXLog's to EventTypeOrignal);
     * NXLog's own EventType values are dropped; ProcessID as a number is the System
     * process, as text it is EventData (Security 5156); AccountName without UserID is data. */
    mamori_event ev = must_norm(f, EVENT_FORMAT_AUTO,
                                "{\"EventID\":13,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventType\":"
                                "\"SetValue\",\"EventTypeOrignal\":\"INFO\",\"TargetObject\":\"HKLM\\\\x\","
                                "\"ProcessID\":1884,\"ThreadID\":22,\"Severity\":\"ERROR\",\"Message\":\"m\","
                                "\"AccountName\":\"acct\",\"type\":\"nxlog-mordor\",\"Keywords\":\"0x80000000000000\"}");
    assert_str(&ev, "winlog.event_data.EventType", "SetValue");
    assert_str(&ev, "registry.path", "HKLM\\x");
    assert_int(&ev, "winlog.process.pid", 1884);
    assert_int(&ev, "winlog.process.thread.id", 22);
    assert_str(&ev, "log.level", "error");
    assert_str(&ev, "message", "m");
    assert_str(&ev, "user.name", "acct"); /* generic AccountName row */
    assert_str(&ev, "winlog.keywords", "0x80000000000000");
    assert_absent(&ev, "winlog.event_data.type");
    struct logsource_set ls;
    logsource_classify(&ev, &ls);
    assert_true(logsource_has(&ls, LOGSOURCE_CATEGORY_REGISTRY_SET));
    assert_true(logsource_has(&ls, LOGSOURCE_CATEGORY_REGISTRY_EVENT));
    ev = must_norm(f, EVENT_FORMAT_AUTO, "{\"EventID\":5156,\"Channel\":\"Security\",\"EventType\":\"AUDIT_SUCCESS\","
                                         "\"ProcessID\":\"3428\",\"Application\":\"\\\\device\\\\x.exe\","
                                         "\"SourceAddress\":\"10.0.0.1\",\"SourcePort\":\"5\",\"Level\":\"0\","
                                         "\"TimeCreated\":\"2020-10-18 10:56:18.799\"}");
    assert_absent(&ev, "winlog.event_data.EventType");
    assert_int(&ev, "process.pid", 3428);
    assert_absent(&ev, "winlog.process.pid");
    assert_str(&ev, "process.executable", "\\device\\x.exe");
    assert_str(&ev, "source.ip", "10.0.0.1");
    assert_int(&ev, "source.port", 5);
    assert_str(&ev, "log.level", "information");
    assert_int(&ev, "winlog.level", 0); /* the number, for Sigma's Level */
    assert_str(&ev, "@timestamp", "2020-10-18T10:56:18.799000Z");
    assert_true(ev.ts_us == 1603018578799000LL);
    /* a logstash "host" object is ECS, not NXLog's host string */
    ev = must_norm(f, EVENT_FORMAT_AUTO, "{\"EventID\":1,\"SourceName\":\"p\",\"host\":{\"name\":\"collector\"}}");
    assert_str(&ev, "host.name", "collector");
    assert_str(&ev, "winlog.provider_name", "p");
}

static void test_winlog_evtx_variants(void **state)
{
    struct fixture *f = *state;
    /* EventID with Qualifiers, attributes as "@Name" (xmltodict), Data as a named list,
     * UserData, RenderingInfo's message, an unnamed Data list, a time from UtcTime only */
    mamori_event ev = must_norm(
        f, EVENT_FORMAT_AUTO,
        "{\"Event\":{\"System\":{\"Provider\":{\"@Name\":\"Service Control Manager\",\"@Guid\":"
        "\"{555908d1-a6d7-4695-8e1e-26931d2012f4}\",\"@EventSourceName\":\"Service Control Manager\"},"
        "\"EventID\":{\"#attributes\":{\"Qualifiers\":16384},\"#text\":7045},\"Channel\":\"System\",\"Computer\":\"dc1\","
        "\"Correlation\":{\"#attributes\":{\"ActivityID\":\"ABCDEF01-2345-6789-ABCD-EF0123456789\"}}},"
        "\"EventData\":{\"Data\":[{\"@Name\":\"ServiceName\",\"#text\":\"evil\"},{\"@Name\":\"ImagePath\",\"#text\":"
        "\"C:\\\\evil.exe\"},{\"@Name\":\"Empty\"}]},\"RenderingInfo\":{\"Message\":\"A service was installed\"}},"
        "\"tags\":[\"x\"]}");
    check_invariants(f, &ev);
    assert_int(&ev, "winlog.event_id", 7045);
    assert_str(&ev, "winlog.provider_name", "Service Control Manager");
    assert_str(&ev, "event.module", "system");
    assert_str(&ev, "winlog.event_data.ServiceName", "evil"); /* service.name only for security */
    assert_str(&ev, "winlog.event_data.ImagePath", "C:\\evil.exe");
    assert_int_equal(get(&ev, "winlog.event_data.Empty")->type, JSON_NULL);
    assert_str(&ev, "winlog.activity_id", "{abcdef01-2345-6789-abcd-ef0123456789}");
    assert_str(&ev, "message", "A service was installed");
    assert_non_null(get(&ev, "tags"));
    assert_true(ev.ts_us == RECEIVED_US); /* no time at all */
    ev = must_norm(f, EVENT_FORMAT_AUTO,
                   "{\"Event\":{\"System\":{\"EventID\":1102,\"Channel\":\"Security\",\"Security\":null},"
                   "\"UserData\":{\"LogFileCleared\":{\"#attributes\":{\"xmlns\":\"x\"},\"SubjectUserName\":\"admin\","
                   "\"SubjectDomainName\":\"D\"}}}}");
    assert_str(&ev, "user.name", "admin");
    assert_str(&ev, "user.domain", "D");
    ev = must_norm(f, EVENT_FORMAT_AUTO,
                   "{\"Event\":{\"System\":{\"EventID\":800,\"Channel\":\"Windows PowerShell\"},\"EventData\":{\"Data\":"
                   "{\"#text\":[\"a\",\"b\"]},\"Source Name\":\"AMSI\",\"a.b\":1,\"Nested\":{\"Inner\":{\"X\":\"y\"}}}}}");
    const json_value *data = get(&ev, "winlog.event_data.Data");
    assert_true(data && data->type == JSON_ARRAY && data->len == 2);
    assert_str(&ev, "winlog.event_data.SourceName", "AMSI");
    assert_str(&ev, "winlog.event_data.a_b", "1");
    assert_str(&ev, "winlog.event_data.Nested.Inner.X", "y");
    struct logsource_set ls;
    logsource_classify(&ev, &ls);
    assert_true(logsource_has(&ls, LOGSOURCE_CATEGORY_PS_CLASSIC_SCRIPT));
    ev = must_norm(f, EVENT_FORMAT_AUTO, "{\"Event\":{\"System\":{\"EventID\":1,\"Channel\":\"Microsoft-Windows-Sysmon/"
                                         "Operational\"},\"EventData\":{\"UtcTime\":\"2020-10-22 03:52:01.720\"}}}");
    assert_str(&ev, "@timestamp", "2020-10-22T03:52:01.720000Z");
    assert_true(ev.ts_us == 1603338721720000LL);
}

static void test_winlog_winlogbeat_alongside_ecs(void **state)
{
    struct fixture *f = *state;
    /* Winlogbeat already wrote process.executable: kept; the raw Image stays EventData since
     * it differs; an equal duplicate is folded; derived event.* replaces the shipper's. */
    mamori_event ev = must_norm(f, EVENT_FORMAT_AUTO,
                                "{\"winlog\":{\"channel\":\"Microsoft-Windows-Sysmon/Operational\",\"event_id\":1,"
                                "\"event_data\":{\"Image\":\"C:\\\\A.EXE\",\"CommandLine\":\"a\",\"Custom Field\":\"c\"},"
                                "\"api\":\"wineventlog\"},\"process\":{\"executable\":\"c:\\\\a.exe\",\"command_line\":\"a\"},"
                                "\"event\":{\"category\":[\"x\"],\"code\":\"1\",\"created\":\"2024-01-01T00:00:00Z\"},"
                                "\"agent\":{\"type\":\"winlogbeat\"},\"host\":{\"name\":\"agenthost\"}}");
    check_invariants(f, &ev);
    assert_str(&ev, "process.executable", "c:\\a.exe");
    assert_str(&ev, "winlog.event_data.Image", "C:\\A.EXE");
    assert_str(&ev, "process.command_line", "a");
    assert_absent(&ev, "winlog.event_data.CommandLine");
    assert_str(&ev, "winlog.event_data.CustomField", "c");
    assert_str(&ev, "process.name", "a.exe"); /* from the executable that owns the path */
    assert_str(&ev, "winlog.api", "wineventlog");
    assert_str(&ev, "host.name", "agenthost");
    assert_str(&ev, "agent.type", "winlogbeat");
    assert_str(&ev, "event.created", "2024-01-01T00:00:00Z");
    const json_value *cat = get(&ev, "event.category");
    assert_true(cat->type == JSON_ARRAY && cat->len == 1 && cat->items[0].len == 7); /* "process" */
    /* "winlog.event_data" as one dotted key is Winlogbeat too */
    ev = must_norm(f, EVENT_FORMAT_AUTO, "{\"winlog.event_data\":{\"Image\":\"C:\\\\x.exe\"},\"winlog.event_id\":1}");
    assert_str(&ev, "process.executable", "C:\\x.exe");
    /* a winlog object without event_data or channel is plain ECS */
    ev = must_norm(f, EVENT_FORMAT_AUTO, "{\"winlog\":{\"api\":\"x\"},\"EventID\":4}");
    assert_int(&ev, "EventID", 4);
    assert_str(&ev, "winlog.api", "x");
    /* format ecs never applies winlog rules */
    ev = must_norm(f, EVENT_FORMAT_ECS, sysmon1_evtx);
    assert_str(&ev, "Event.EventData.Image", "C:\\Windows\\System32\\whoami.exe");
    assert_int(&ev, "Event.System.EventID", 1);
    assert_absent(&ev, "process.executable");
    /* NXLog's "host" string clashes with the stamped host.id when read as ECS */
    expect_reject(f, EVENT_FORMAT_ECS, sysmon1_nxlog, "conflicting field 'host'");
}

/* ---- no malloc per event: steady state reuses scratch ------------------------------------------- */

static void test_scratch_reuse_is_stable(void **state)
{
    struct fixture *f = *state;
    /* alternate shapes and rejections; state must not leak from one event into the next */
    for (int i = 0; i < 200; i++) {
        arena_reset(&f->arena);
        mamori_event a = must_norm(f, EVENT_FORMAT_AUTO, sysmon3_nxlog);
        mamori_event ev;
        assert_int_equal(norm_text(f, EVENT_FORMAT_ECS, "{\"a\":1,\"a\":2}", &ev), -EINVAL);
        mamori_event b = must_norm(f, EVENT_FORMAT_AUTO, sysmon3_winlogbeat);
        assert_same_event(&a, &b);
        mamori_event c = must_norm(f, EVENT_FORMAT_ECS, "{\"x\":1}");
        assert_int_equal(c.field_count, 5);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_winlog_sysmon1_three_shapes_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_winlog_sysmon3_three_shapes_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_winlog_mapping_depends_on_category, setup, teardown),
        cmocka_unit_test_setup_teardown(test_winlog_collisions_keep_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_winlog_nxlog_system_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_winlog_evtx_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_winlog_winlogbeat_alongside_ecs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scratch_reuse_is_stable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/detect/test_modifiers.c — value semantics of the Sigma specification, one
 * modifier (or rule of the "General" section) per test: full-value matching, wildcards and
 * their escapes, case-insensitivity, every modifier SigmaHQ uses, null/empty/exists, and
 * the edge cases the specification spells out (windash variants, base64offset's three
 * offsets, utf16 variants, CIDR v4/v6, numbers as strings and as numbers). Each test loads
 * one rule and evaluates Sysmon events in evtx_dump shape through the real normalizer. */
#include "helpers.h"

#define SEL(x) "    selection:\n        " x "\n    condition: selection\n"

static void test_full_value_and_case(void **state)
{
    (void)state;
    assert_true(sysmon1_fires(SEL("CommandLine: 'whoami /all'"), "\"CommandLine\":\"whoami /all\""));
    assert_true(sysmon1_fires(SEL("CommandLine: 'whoami /all'"), "\"CommandLine\":\"WHOAMI /ALL\""));
    assert_false(sysmon1_fires(SEL("CommandLine: 'whoami /all'"), "\"CommandLine\":\"whoami /all x\""));
    assert_false(sysmon1_fires(SEL("CommandLine: 'whoami /all'"), "\"CommandLine\":\"x whoami /all\""));
    /* non-ASCII letters fold too */
    assert_true(sysmon1_fires(SEL("CommandLine: 'привет'"), "\"CommandLine\":\"ПРИВЕТ\""));
}

static void test_wildcards(void **state)
{
    (void)state;
    assert_true(sysmon1_fires(SEL("CommandLine: 'a*c'"), "\"CommandLine\":\"abbbc\""));
    assert_true(sysmon1_fires(SEL("CommandLine: 'a*c'"), "\"CommandLine\":\"ac\""));
    assert_false(sysmon1_fires(SEL("CommandLine: 'a*c'"), "\"CommandLine\":\"acb\""));
    assert_true(sysmon1_fires(SEL("CommandLine: 'a?c'"), "\"CommandLine\":\"abc\""));
    assert_false(sysmon1_fires(SEL("CommandLine: 'a?c'"), "\"CommandLine\":\"ac\""));
    assert_false(sysmon1_fires(SEL("CommandLine: 'a?c'"), "\"CommandLine\":\"abbc\""));
    assert_true(sysmon1_fires(SEL("CommandLine: 'a?c'"), "\"CommandLine\":\"aéc\"")); /* one character */
    assert_true(sysmon1_fires(SEL("CommandLine: '*'"), "\"CommandLine\":\"anything\""));
    assert_false(sysmon1_fires(SEL("CommandLine: '*'"), "\"Image\":\"x\""));
    /* `*` spans newlines */
    assert_true(sysmon1_fires(SEL("CommandLine: 'a*c'"), "\"CommandLine\":\"a\\nb\\nc\""));
}

static void test_escapes(void **state)
{
    (void)state;
    /* \* and \? are the plain characters */
    assert_true(sysmon1_fires(SEL("CommandLine: 'a\\*c'"), "\"CommandLine\":\"a*c\""));
    assert_false(sysmon1_fires(SEL("CommandLine: 'a\\*c'"), "\"CommandLine\":\"abc\""));
    assert_true(sysmon1_fires(SEL("CommandLine: 'a\\?c'"), "\"CommandLine\":\"a?c\""));
    assert_false(sysmon1_fires(SEL("CommandLine: 'a\\?c'"), "\"CommandLine\":\"abc\""));
    /* a backslash before anything else stays: C:\Windows */
    assert_true(sysmon1_fires(SEL("Image: 'C:\\Windows\\cmd.exe'"), "\"Image\":\"C:\\\\Windows\\\\cmd.exe\""));
    /* \\ is one backslash: C:\\Windows == C:\Windows */
    assert_true(sysmon1_fires(SEL("Image: 'C:\\\\Windows\\\\cmd.exe'"), "\"Image\":\"C:\\\\Windows\\\\cmd.exe\""));
    /* \\* : a backslash, then the wildcard */
    assert_true(sysmon1_fires(SEL("CommandLine: 'a\\\\*'"), "\"CommandLine\":\"a\\\\xyz\""));
    assert_false(sysmon1_fires(SEL("CommandLine: 'a\\\\*'"), "\"CommandLine\":\"axyz\""));
    /* \\\* : a backslash and a plain star */
    assert_true(sysmon1_fires(SEL("CommandLine: 'a\\\\\\*'"), "\"CommandLine\":\"a\\\\*\""));
    assert_false(sysmon1_fires(SEL("CommandLine: 'a\\\\\\*'"), "\"CommandLine\":\"a\\\\x\""));
    /* \\\\ : two backslashes */
    assert_true(sysmon1_fires(SEL("CommandLine: 'a\\\\\\\\b'"), "\"CommandLine\":\"a\\\\\\\\b\""));
    assert_false(sysmon1_fires(SEL("CommandLine: 'a\\\\\\\\b'"), "\"CommandLine\":\"a\\\\b\""));
    /* a trailing backslash stays */
    assert_true(sysmon1_fires(SEL("CommandLine|endswith: 'dir\\'"), "\"CommandLine\":\"C:\\\\dir\\\\\""));
}

static void test_contains_startswith_endswith(void **state)
{
    (void)state;
    assert_true(sysmon1_fires(SEL("CommandLine|contains: 'MIMI'"), "\"CommandLine\":\"x mimikatz y\""));
    assert_false(sysmon1_fires(SEL("CommandLine|contains: 'mimi'"), "\"CommandLine\":\"x mim y\""));
    assert_true(sysmon1_fires(SEL("Image|startswith: 'C:\\Users\\'"), "\"Image\":\"c:\\\\users\\\\a.exe\""));
    assert_false(sysmon1_fires(SEL("Image|startswith: 'C:\\Users\\'"), "\"Image\":\"D:\\\\C:\\\\Users\\\\a.exe\""));
    assert_true(sysmon1_fires(SEL("Image|endswith: '\\cmd.exe'"), "\"Image\":\"C:\\\\Windows\\\\CMD.EXE\""));
    assert_false(sysmon1_fires(SEL("Image|endswith: '\\cmd.exe'"), "\"Image\":\"C:\\\\Windows\\\\cmd.exe.bak\""));
    /* wildcards inside keep working under the modifiers */
    assert_true(sysmon1_fires(SEL("CommandLine|contains: 'a*z'"), "\"CommandLine\":\"0 a123z 9\""));
    assert_true(sysmon1_fires(SEL("Image|endswith: '\\\\?md.exe'"), "\"Image\":\"C:\\\\cmd.exe\""));
    assert_false(sysmon1_fires(SEL("Image|endswith: '\\?md.exe'"), "\"Image\":\"C:\\\\cmd.exe\"")); /* \? is a plain ? */
}

static void test_lists_and_all(void **state)
{
    (void)state;
    const char *any = SEL("CommandLine|contains:\n            - 'alpha'\n            - 'beta'");
    assert_true(sysmon1_fires(any, "\"CommandLine\":\"x beta\""));
    assert_false(sysmon1_fires(any, "\"CommandLine\":\"gamma\""));
    const char *all = SEL("CommandLine|contains|all:\n            - 'alpha'\n            - 'beta'");
    assert_true(sysmon1_fires(all, "\"CommandLine\":\"beta alpha\""));
    assert_false(sysmon1_fires(all, "\"CommandLine\":\"alpha only\""));
    /* all with one value is that value */
    assert_true(sysmon1_fires(SEL("CommandLine|contains|all: 'alpha'"), "\"CommandLine\":\"alpha\""));
    /* a map is AND, a list of maps is OR */
    const char *map_and = "    selection:\n        Image|endswith: '\\a.exe'\n        CommandLine|contains: 'x'\n"
                          "    condition: selection\n";
    assert_true(sysmon1_fires(map_and, "\"Image\":\"C:\\\\a.exe\",\"CommandLine\":\"x\""));
    assert_false(sysmon1_fires(map_and, "\"Image\":\"C:\\\\a.exe\",\"CommandLine\":\"y\""));
    const char *maps_or = "    selection:\n        - Image|endswith: '\\a.exe'\n        - CommandLine|contains: 'x'\n"
                          "    condition: selection\n";
    assert_true(sysmon1_fires(maps_or, "\"Image\":\"C:\\\\b.exe\",\"CommandLine\":\"x\""));
    assert_false(sysmon1_fires(maps_or, "\"Image\":\"C:\\\\b.exe\",\"CommandLine\":\"y\""));
}

static void test_windash(void **state)
{
    (void)state;
    const char *d = SEL("CommandLine|contains|windash: ' -enc '");
    assert_true(sysmon1_fires(d, "\"CommandLine\":\"powershell -enc AA\""));
    assert_true(sysmon1_fires(d, "\"CommandLine\":\"powershell /enc AA\""));
    assert_true(sysmon1_fires(d, "\"CommandLine\":\"powershell \u2013enc AA\"")); /* en dash */
    assert_true(sysmon1_fires(d, "\"CommandLine\":\"powershell \u2014enc AA\"")); /* em dash */
    assert_true(sysmon1_fires(d, "\"CommandLine\":\"powershell \u2015enc AA\"")); /* horizontal bar */
    assert_false(sysmon1_fires(d, "\"CommandLine\":\"powershell +enc AA\""));
    /* only a dash that starts a word is a flag: "a-b" stays as written */
    assert_false(sysmon1_fires(SEL("CommandLine|windash: 'a-b'"), "\"CommandLine\":\"a/b\""));
    assert_true(sysmon1_fires(SEL("CommandLine|windash: 'a-b'"), "\"CommandLine\":\"a-b\""));
    /* every flag of the value varies independently */
    const char *two = SEL("CommandLine|windash: 'x -a -b'");
    assert_true(sysmon1_fires(two, "\"CommandLine\":\"x /a \u2014b\""));
}

static void test_base64(void **state)
{
    (void)state;
    assert_true(sysmon1_fires(SEL("CommandLine|base64: 'abc'"), "\"CommandLine\":\"YWJj\""));
    assert_false(sysmon1_fires(SEL("CommandLine|base64: 'abc'"), "\"CommandLine\":\"abc\""));
    assert_true(sysmon1_fires(SEL("CommandLine|base64|contains: 'abc'"), "\"CommandLine\":\"x YWJj y\""));
    /* base64offset: the value at each of the three byte offsets of a longer text */
    const char *off = SEL("CommandLine|base64offset|contains: 'http'");
    assert_true(sysmon1_fires(off, "\"CommandLine\":\"-e aHR0cDovL3gv\""));     /* "http://x/" */
    assert_true(sysmon1_fires(off, "\"CommandLine\":\"-e eGh0dHA6Ly94Lw==\"")); /* "xhttp://x/" */
    assert_true(sysmon1_fires(off, "\"CommandLine\":\"-e eHhodHRwOi8veC8=\"")); /* "xxhttp://x/" */
    assert_false(sysmon1_fires(off, "\"CommandLine\":\"-e aGVsbG8=\""));         /* "hello" */
}

static void test_utf16(void **state)
{
    (void)state;
    /* UTF-16LE (wide) then base64offset: "ping" inside base64(utf16le(<prefix>ping -n 1)) */
    const char *w = SEL("CommandLine|wide|base64offset|contains: 'ping'");
    assert_true(sysmon1_fires(w, "\"CommandLine\":\"cABpAG4AZwAgAC0AbgAgADEA\""));
    assert_true(sysmon1_fires(w, "\"CommandLine\":\"eABwAGkAbgBnACAALQBuACAAMQA=\""));
    assert_true(sysmon1_fires(w, "\"CommandLine\":\"eAB4AHAAaQBuAGcAIAAtAG4AIAAxAA==\""));
    assert_true(sysmon1_fires(SEL("CommandLine|utf16le|base64offset|contains: 'ping'"),
                              "\"CommandLine\":\"eAB4AHgAcABpAG4AZwAgAC0AbgAgADEA\""));
    assert_true(sysmon1_fires(SEL("CommandLine|utf16be|base64: 'ping'"), "\"CommandLine\":\"AHAAaQBuAGc=\""));
    assert_true(sysmon1_fires(SEL("CommandLine|utf16|base64: 'ping'"), "\"CommandLine\":\"//5wAGkAbgBnAA==\""));
    assert_false(sysmon1_fires(SEL("CommandLine|utf16be|base64: 'ping'"), "\"CommandLine\":\"cABpAG4AZwA=\""));
}

static void test_re(void **state)
{
    (void)state;
    assert_true(sysmon1_fires(SEL("CommandLine|re: 'a.c'"), "\"CommandLine\":\"xxabcxx\"")); /* search */
    assert_false(sysmon1_fires(SEL("CommandLine|re: 'a.c'"), "\"CommandLine\":\"ABC\""));     /* case-sensitive */
    assert_true(sysmon1_fires(SEL("CommandLine|re|i: 'a.c'"), "\"CommandLine\":\"ABC\""));
    assert_true(sysmon1_fires(SEL("CommandLine|re: '^a[0-9]{2,3}$'"), "\"CommandLine\":\"a123\""));
    assert_false(sysmon1_fires(SEL("CommandLine|re: '^a[0-9]{2,3}$'"), "\"CommandLine\":\"a1234\""));
    /* m: ^ and $ at line breaks */
    assert_false(sysmon1_fires(SEL("CommandLine|re: '^b'"), "\"CommandLine\":\"a\\nb\""));
    assert_true(sysmon1_fires(SEL("CommandLine|re|m: '^b'"), "\"CommandLine\":\"a\\nb\""));
    /* s: dot matches the newline */
    assert_false(sysmon1_fires(SEL("CommandLine|re: 'a.b'"), "\"CommandLine\":\"a\\nb\""));
    assert_true(sysmon1_fires(SEL("CommandLine|re|s: 'a.b'"), "\"CommandLine\":\"a\\nb\""));
    /* the regex is taken as written: no Sigma escape processing, no wildcards */
    assert_true(sysmon1_fires(SEL("CommandLine|re: 'a\\*b'"), "\"CommandLine\":\"a*b\""));
    assert_false(sysmon1_fires(SEL("CommandLine|re: 'a\\*b'"), "\"CommandLine\":\"axb\""));
}

/* Network connection rule over a Sysmon 3 event. */
static bool sysmon3_fires(const char *detection, const char *event_data)
{
    char yaml[4096], json[4096];
    snprintf(yaml, sizeof yaml,
             "title: t\nid: r3\nlogsource:\n    category: network_connection\n    product: windows\ndetection:\n%s",
             detection);
    snprintf(json, sizeof json,
             "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":3},"
             "\"EventData\":{%s}}}",
             event_data);
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 1);
    bool fired = harness_fires(&h, json);
    harness_fini(&h);
    return fired;
}

static void test_cidr(void **state)
{
    (void)state;
    const char *v4 = SEL("DestinationIp|cidr: '10.0.0.0/8'");
    assert_true(sysmon3_fires(v4, "\"DestinationIp\":\"10.200.3.4\""));
    assert_false(sysmon3_fires(v4, "\"DestinationIp\":\"11.0.0.1\""));
    assert_false(sysmon3_fires(v4, "\"DestinationIp\":\"not an ip\""));
    assert_false(sysmon3_fires(v4, "\"DestinationIp\":\"::ffff:10.0.0.1\"")); /* families do not mix */
    const char *odd = SEL("DestinationIp|cidr: '192.168.1.0/23'");
    assert_true(sysmon3_fires(odd, "\"DestinationIp\":\"192.168.0.7\""));
    assert_false(sysmon3_fires(odd, "\"DestinationIp\":\"192.168.2.7\""));
    const char *v6 = SEL("DestinationIp|cidr: 'fe80::/10'");
    assert_true(sysmon3_fires(v6, "\"DestinationIp\":\"fe80::1c2:3\""));
    assert_true(sysmon3_fires(v6, "\"DestinationIp\":\"febf::1\""));
    assert_false(sysmon3_fires(v6, "\"DestinationIp\":\"fec0::1\""));
    assert_false(sysmon3_fires(v6, "\"DestinationIp\":\"10.0.0.1\""));
    const char *list = SEL("DestinationIp|cidr:\n            - '127.0.0.0/8'\n            - '::1/128'");
    assert_true(sysmon3_fires(list, "\"DestinationIp\":\"::1\""));
}

static void test_numbers(void **state)
{
    (void)state;
    /* DestinationPort becomes a JSON number in the normalized event; a plain YAML number
     * matches it as text, as a string value does */
    assert_true(sysmon3_fires(SEL("DestinationPort: 4444"), "\"DestinationPort\":\"4444\""));
    assert_true(sysmon3_fires(SEL("DestinationPort: '4444'"), "\"DestinationPort\":\"4444\""));
    assert_false(sysmon3_fires(SEL("DestinationPort: 4444"), "\"DestinationPort\":\"44444\""));
    assert_true(sysmon3_fires(SEL("DestinationPort|lt: 1024"), "\"DestinationPort\":\"445\""));
    assert_false(sysmon3_fires(SEL("DestinationPort|lt: 1024"), "\"DestinationPort\":\"1024\""));
    assert_true(sysmon3_fires(SEL("DestinationPort|lte: 1024"), "\"DestinationPort\":\"1024\""));
    assert_true(sysmon3_fires(SEL("DestinationPort|gt: 1024"), "\"DestinationPort\":\"1025\""));
    assert_true(sysmon3_fires(SEL("DestinationPort|gte: 1024"), "\"DestinationPort\":\"1024\""));
    assert_false(sysmon3_fires(SEL("DestinationPort|gte: 1024"), "\"DestinationPort\":\"80\""));
    /* an unmapped field stays text: compared as a number all the same */
    assert_true(sysmon3_fires(SEL("Custom|gt: 9"), "\"Custom\":\"10\""));
    assert_false(sysmon3_fires(SEL("Custom|gt: 9"), "\"Custom\":\"ten\""));
    assert_true(sysmon3_fires(SEL("Custom|lt: 0.5"), "\"Custom\":\"0.25\""));
    /* YAML 1.1 integers (as pySigma reads them): 0x10 is 16 */
    assert_true(sysmon3_fires(SEL("Custom: 0x10"), "\"Custom\":\"16\""));
}

static void test_fieldref(void **state)
{
    (void)state;
    assert_true(sysmon1_fires(SEL("ParentImage|fieldref: Image"),
                              "\"Image\":\"C:\\\\a.exe\",\"ParentImage\":\"c:\\\\A.EXE\""));
    assert_false(sysmon1_fires(SEL("ParentImage|fieldref: Image"),
                               "\"Image\":\"C:\\\\a.exe\",\"ParentImage\":\"C:\\\\b.exe\""));
    assert_false(sysmon1_fires(SEL("ParentImage|fieldref: Image"), "\"ParentImage\":\"C:\\\\b.exe\""));
    assert_true(sysmon1_fires(SEL("CommandLine|fieldref|contains: Image"),
                              "\"Image\":\"C:\\\\a.exe\",\"CommandLine\":\"\\\"C:\\\\a.exe\\\" -x\""));
    assert_true(sysmon1_fires(SEL("CommandLine|fieldref|endswith: User"), "\"User\":\"bob\",\"CommandLine\":\"run bob\""));
    /* neq: the item negated */
    assert_true(sysmon1_fires(SEL("ParentImage|fieldref|neq: Image"),
                              "\"Image\":\"C:\\\\a.exe\",\"ParentImage\":\"C:\\\\b.exe\""));
}

static void test_exists_null_empty(void **state)
{
    (void)state;
    assert_true(sysmon1_fires(SEL("ParentImage|exists: true"), "\"ParentImage\":\"x\""));
    assert_true(sysmon1_fires(SEL("ParentImage|exists: true"), "\"ParentImage\":\"\""));
    assert_false(sysmon1_fires(SEL("ParentImage|exists: true"), "\"Image\":\"x\""));
    assert_true(sysmon1_fires(SEL("ParentImage|exists: false"), "\"Image\":\"x\""));
    assert_false(sysmon1_fires(SEL("ParentImage|exists: false"), "\"ParentImage\":\"x\""));
    /* null: absent or null; not the empty string */
    assert_true(sysmon1_fires(SEL("ParentImage: null"), "\"Image\":\"x\""));
    assert_true(sysmon1_fires(SEL("ParentImage: null"), "\"ParentImage\":null"));
    assert_false(sysmon1_fires(SEL("ParentImage: null"), "\"ParentImage\":\"\""));
    assert_false(sysmon1_fires(SEL("ParentImage: null"), "\"ParentImage\":\"x\""));
    assert_true(sysmon1_fires(SEL("ParentImage: ''"), "\"ParentImage\":\"\""));
    assert_false(sysmon1_fires(SEL("ParentImage: ''"), "\"Image\":\"x\""));
    assert_false(sysmon1_fires(SEL("ParentImage: ''"), "\"ParentImage\":\"x\""));
    /* an empty list is null */
    assert_true(sysmon1_fires(SEL("ParentImage: []"), "\"Image\":\"x\""));
    /* the specification's not-null idiom */
    const char *not_null = "    selection:\n        Image: x\n    filter:\n        ParentImage: null\n"
                           "    condition: selection and not filter\n";
    assert_true(sysmon1_fires(not_null, "\"Image\":\"x\",\"ParentImage\":\"p\""));
    assert_false(sysmon1_fires(not_null, "\"Image\":\"x\""));
}

static void test_cased_neq_bool(void **state)
{
    (void)state;
    assert_true(sysmon1_fires(SEL("CommandLine|cased: 'ABC'"), "\"CommandLine\":\"ABC\""));
    assert_false(sysmon1_fires(SEL("CommandLine|cased: 'ABC'"), "\"CommandLine\":\"abc\""));
    assert_true(sysmon1_fires(SEL("CommandLine|contains|cased: 'B'"), "\"CommandLine\":\"aBc\""));
    assert_false(sysmon1_fires(SEL("CommandLine|contains|cased: 'B'"), "\"CommandLine\":\"abc\""));
    /* neq: none of the values (and a missing field is different too) */
    const char *neq = SEL("User|neq:\n            - 'SYSTEM'\n            - 'LOCAL SERVICE'");
    assert_true(sysmon1_fires(neq, "\"User\":\"bob\""));
    assert_false(sysmon1_fires(neq, "\"User\":\"system\""));
    assert_false(sysmon1_fires(neq, "\"User\":\"LOCAL SERVICE\""));
    assert_true(sysmon1_fires(neq, "\"Image\":\"x\""));
    /* booleans compare as their text */
    assert_true(sysmon1_fires(SEL("Signed: true"), "\"Signed\":\"true\""));
    assert_false(sysmon1_fires(SEL("Signed: true"), "\"Signed\":\"false\""));
}

static void test_expand(void **state)
{
    (void)state;
    const char *yaml = "title: t\nid: r1\nlogsource:\n    category: process_creation\n    product: windows\n"
                       "detection:\n    selection:\n        User|expand: '%Admins%'\n    condition: selection\n";
    const char *const values[] = {"admin*", "root"};
    detect_placeholder ph = {.name = "Admins", .values = values, .value_count = 2};
    detect_options opt;
    detect_options_default(&opt);
    opt.placeholders = &ph;
    opt.placeholder_count = 1;
    harness h;
    harness_init_opt(&h, yaml, &opt);
    harness_expect_loaded(&h, 1);
#define EV(user)                                                                                                  \
    "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"                 \
    "\"EventData\":{\"User\":\"" user "\"}}}"
    assert_true(harness_fires(&h, EV("Administrator")));
    assert_true(harness_fires(&h, EV("root")));
    assert_false(harness_fires(&h, EV("bob")));
#undef EV
    harness_fini(&h);
    /* a literal %: \% ; without expand, %x% is plain text */
    assert_true(sysmon1_fires(SEL("CommandLine: '%Admins%'"), "\"CommandLine\":\"%Admins%\""));
    /* without configured values the rule is rejected, naming the placeholder */
    harness bad;
    const detect_problem *p = expect_one_problem(&bad, yaml);
    assert_int_equal(p->reason, DETECT_REASON_PLACEHOLDER);
    assert_int_equal(p->line, 8);
    assert_non_null(strstr(p->message, "%Admins%"));
    problem_fini(&bad);
}

static void test_time_parts(void **state)
{
    (void)state;
    assert_true(sysmon1_fires(SEL("UtcTime|hour: 13"), "\"UtcTime\":\"2024-05-01 13:14:15.000\""));
    assert_false(sysmon1_fires(SEL("UtcTime|hour: 12"), "\"UtcTime\":\"2024-05-01 13:14:15.000\""));
    assert_true(sysmon1_fires(SEL("UtcTime|minute: 14"), "\"UtcTime\":\"2024-05-01 13:14:15.000\""));
    assert_true(sysmon1_fires(SEL("UtcTime|month: 5"), "\"UtcTime\":\"2024-05-01 13:14:15.000\""));
    assert_true(sysmon1_fires(SEL("UtcTime|year: 2024"), "\"UtcTime\":\"2024-05-01 13:14:15.000\""));
    assert_true(sysmon1_fires(SEL("UtcTime|day: 1"), "\"UtcTime\":\"2024-05-01 13:14:15.000\""));
    assert_true(sysmon1_fires(SEL("UtcTime|week: 18"), "\"UtcTime\":\"2024-05-01 13:14:15.000\""));
}

static void test_keywords(void **state)
{
    (void)state;
    const char *kw = "    keywords:\n        - 'mimikatz'\n        - 'sekurlsa::'\n    condition: keywords\n";
    assert_true(sysmon1_fires(kw, "\"CommandLine\":\"run MIMIKATZ now\""));
    assert_true(sysmon1_fires(kw, "\"ParentCommandLine\":\"x sekurlsa::logonpasswords\""));
    assert_true(sysmon1_fires(kw, "\"SomethingElse\":\"has mimikatz inside\""));
    assert_false(sysmon1_fires(kw, "\"CommandLine\":\"benign\""));
    /* a keyword never spans two fields */
    assert_false(sysmon1_fires("    keywords:\n        - 'ab*cd'\n    condition: keywords\n",
                               "\"CommandLine\":\"ab\",\"Image\":\"cd\""));
    assert_true(sysmon1_fires("    keywords:\n        - 'ab*cd'\n    condition: keywords\n", "\"CommandLine\":\"ab cd\""));
    /* |all across the event */
    const char *all = "    keywords:\n        '|all':\n            - 'OabVirtualDirectory'\n            - ' -ExternalUrl '\n"
                      "    condition: keywords\n";
    assert_true(sysmon1_fires(all, "\"CommandLine\":\"Set-OabVirtualDirectory -ExternalUrl http://x\""));
    assert_false(sysmon1_fires(all, "\"CommandLine\":\"Set-OabVirtualDirectory\""));
    /* regex keywords */
    assert_true(sysmon1_fires("    keywords:\n        '|re': 'mimi[k]atz'\n    condition: keywords\n",
                              "\"CommandLine\":\"mimikatz\""));
    /* a single plain keyword */
    assert_true(sysmon1_fires("    keywords: 'ntds.dit'\n    condition: keywords\n", "\"CommandLine\":\"copy NTDS.DIT x\""));
    /* nor a value and a number rendered as text for another field's database (process.pid is
     * an integer after normalization; ProcessId gives it a database) */
    const char *glued = "    keywords:\n        - 'x.exe1234'\n    pid:\n        ProcessId: 999\n"
                        "    condition: keywords or pid\n";
    assert_false(sysmon1_fires(glued, "\"ParentImage\":\"C:\\\\x.exe\",\"ProcessId\":1234"));
    assert_true(sysmon1_fires(glued, "\"ParentImage\":\"C:\\\\x.exe1234\",\"ProcessId\":1234"));
}

static void test_rejections(void **state)
{
    (void)state;
    harness h;
    const detect_problem *p = expect_one_problem(&h, "title: x\nlogsource:\n    product: windows\ndetection:\n"
                                                     "    sel:\n        Image|containz: 'a'\n    condition: sel\n");
    assert_int_equal(p->reason, DETECT_REASON_UNKNOWN_MODIFIER);
    assert_int_equal(p->line, 6);
    assert_string_equal(p->file, "bad.yml");
    assert_non_null(strstr(p->message, "containz"));
    problem_fini(&h);

    p = expect_one_problem(&h, "title: x\nlogsource:\n    product: windows\ndetection:\n"
                               "    sel:\n        Image|re: '(?<=a)b'\n    condition: sel\n");
    assert_int_equal(p->reason, DETECT_REASON_REGEX);
    assert_int_equal(p->line, 6);
    problem_fini(&h);

    p = expect_one_problem(&h, "title: x\nlogsource:\n    product: windows\ndetection:\n"
                               "    sel:\n        DestinationIp|cidr: '10.0.0.0/33'\n    condition: sel\n");
    assert_int_equal(p->reason, DETECT_REASON_VALUE);
    problem_fini(&h);

    p = expect_one_problem(&h, "title: x\nlogsource:\n    product: windows\ndetection:\n"
                               "    sel:\n        Image|base64: 'a*b'\n    condition: sel\n");
    assert_int_equal(p->reason, DETECT_REASON_VALUE);
    problem_fini(&h);

    p = expect_one_problem(&h, "title: x\nlogsource:\n    product: windows\ndetection:\n"
                               "    sel:\n        Image|exists: 'yes please'\n    condition: sel\n");
    assert_int_equal(p->reason, DETECT_REASON_VALUE);
    problem_fini(&h);

    p = expect_one_problem(&h, "title: x\nlogsource:\n    product: windows\ndetection:\n"
                               "    sel:\n        Image|lt: 'abc'\n    condition: sel\n");
    assert_int_equal(p->reason, DETECT_REASON_MODIFIER);
    problem_fini(&h);

    p = expect_one_problem(&h, "title: x\nlogsource:\n    product: windows\ndetection:\n"
                               "    sel:\n        Image|contains|re: 'a'\n    condition: sel\n");
    assert_int_equal(p->reason, DETECT_REASON_MODIFIER);
    problem_fini(&h);
}

/* A value list is one predicate per class of pattern (detection.c merge_value_patterns): a
 * list of hundreds of values, lists mixing anchored literals, contains literals, wildcards
 * and null, lists in a lazily scanned filter, and keyword lists keep their OR semantics. */
static void test_long_and_mixed_lists(void **state)
{
    (void)state;
    enum { N = 300 };
    static char det[N * 40 + 256], data[512];
    int at = snprintf(det, sizeof det, "    selection:\n        Image|endswith:\n");
    for (int i = 0; i < N; i++) at += snprintf(det + at, sizeof det - (size_t)at, "            - '\\mod%03d.dll'\n", i);
    snprintf(det + at, sizeof det - (size_t)at, "    condition: selection\n");
    char yaml[sizeof det + 128];
    snprintf(yaml, sizeof yaml, "title: t\nid: r1\nlogsource:\n    category: process_creation\n    product: windows\n"
                                "detection:\n%s", det);
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 1);
    assert_int_equal(harness_report(&h)->predicates, 1); /* the whole list: one predicate */
    for (int i = 0; i <= N; i++) {
        snprintf(data, sizeof data,
                 "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                 "\"EventData\":{\"Image\":\"C:\\\\x\\\\%s%03d.DLL%s\"}}}",
                 i % 2 ? "MOD" : "mod", i, i == 7 ? ".bak" : "");
        assert_int_equal(harness_fires(&h, data), i < N && i != 7);
    }
    harness_fini(&h);

    /* contains literals, wildcards, a one-byte value (not a literal set's), exact and null */
    const char *mixed = SEL("CommandLine|contains:\n            - 'alpha'\n            - 'be*ta'\n"
                            "            - 'q'\n            - 'gamma'");
    assert_true(sysmon1_fires(mixed, "\"CommandLine\":\"x alpha\""));
    assert_true(sysmon1_fires(mixed, "\"CommandLine\":\"bexxta\""));
    assert_true(sysmon1_fires(mixed, "\"CommandLine\":\"Q\""));
    assert_true(sysmon1_fires(mixed, "\"CommandLine\":\"GAMMA!\""));
    assert_false(sysmon1_fires(mixed, "\"CommandLine\":\"bet-a\""));
    const char *with_null = SEL("CommandLine:\n            - null\n            - 'a b'\n            - 'c*'\n"
                                "            - ''");
    assert_true(sysmon1_fires(with_null, "\"Image\":\"x\""));
    assert_true(sysmon1_fires(with_null, "\"CommandLine\":\"A B\""));
    assert_true(sysmon1_fires(with_null, "\"CommandLine\":\"cde\""));
    assert_true(sysmon1_fires(with_null, "\"CommandLine\":\"\""));
    assert_false(sysmon1_fires(with_null, "\"CommandLine\":\"a bc\""));
    /* numbers in a list, as text */
    const char *numbers = SEL("IntegrityLevel:\n            - 1\n            - 22\n            - 'x3'");
    assert_true(sysmon1_fires(numbers, "\"IntegrityLevel\":\"22\""));
    assert_true(sysmon1_fires(numbers, "\"IntegrityLevel\":\"X3\""));
    assert_false(sysmon1_fires(numbers, "\"IntegrityLevel\":\"2\""));

    /* a filter's list is scanned only when the selection made the rule a candidate: every
     * class of its values still counts */
    const char *filtered = "    selection:\n        Image|endswith: '\\a.exe'\n"
                           "    filter:\n        CommandLine|contains:\n            - 'safe1'\n"
                           "            - 'sa*fe2'\n            - 'z'\n        ParentImage|endswith:\n"
                           "            - '\\p1.exe'\n            - '\\p2.exe'\n"
                           "    condition: selection and not filter\n";
    assert_true(sysmon1_fires(filtered, "\"Image\":\"C:\\\\a.exe\",\"CommandLine\":\"safe1\",\"ParentImage\":\"C:\\\\p3.exe\""));
    assert_false(sysmon1_fires(filtered, "\"Image\":\"C:\\\\a.exe\",\"CommandLine\":\"SAFE1\",\"ParentImage\":\"C:\\\\P2.exe\""));
    assert_false(sysmon1_fires(filtered, "\"Image\":\"C:\\\\a.exe\",\"CommandLine\":\"saXXfe2\",\"ParentImage\":\"C:\\\\p1.exe\""));
    assert_false(sysmon1_fires(filtered, "\"Image\":\"C:\\\\a.exe\",\"CommandLine\":\"Z\",\"ParentImage\":\"C:\\\\p1.exe\""));
    assert_true(sysmon1_fires(filtered, "\"Image\":\"C:\\\\a.exe\",\"CommandLine\":\"Z\",\"ParentImage\":\"C:\\\\p9.exe\""));

    /* keyword lists: joined text and per-value ones */
    const char *kw = "    keywords:\n        - 'mimikatz'\n        - 'ab*cd'\n        - 'sekurlsa::'\n"
                     "    condition: keywords\n";
    assert_true(sysmon1_fires(kw, "\"CommandLine\":\"x MIMIKATZ\""));
    assert_true(sysmon1_fires(kw, "\"Other\":\"ab--cd\""));
    assert_true(sysmon1_fires(kw, "\"Image\":\"sekurlsa::x\""));
    assert_false(sysmon1_fires(kw, "\"CommandLine\":\"ab\",\"Image\":\"cd\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_value_and_case),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_contains_startswith_endswith),
        cmocka_unit_test(test_lists_and_all),
        cmocka_unit_test(test_windash),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_utf16),
        cmocka_unit_test(test_re),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_fieldref),
        cmocka_unit_test(test_exists_null_empty),
        cmocka_unit_test(test_cased_neq_bool),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_time_parts),
        cmocka_unit_test(test_keywords),
        cmocka_unit_test(test_long_and_mixed_lists),
        cmocka_unit_test(test_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

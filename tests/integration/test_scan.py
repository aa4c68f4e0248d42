"""`mamorictl scan` and `mamorictl rules lint` (contract, DESIGN §4) through the real binary:
every SigmaHQ regression case fires its rule, alone and with the whole rule set loaded; every
input shape the contract names reads the same events; bad input fails with a message that
names the file (and the byte offset for broken JSON); lint lists rejections as file:line."""
import glob
import json
import os
import re
import subprocess
import tempfile

import pytest

from harness import DATA, MAMORICTL, SIM

SIGMA = os.path.join(DATA, "sigma")
RULE_DIRS = [os.path.join(SIGMA, d) for d in ("rules", "rules-emerging-threats", "rules-threat-hunting")]
pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(SIGMA, "regression_data")),
                                reason="SigmaHQ data not present")


def run(*args, stdin=None, timeout=900):
    p = subprocess.run([MAMORICTL] + [str(a) for a in args], input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def alerts(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def rule_index():
    """Rule id -> file, from the top-level `id:` line of each rule (no YAML library needed)."""
    index = {}
    for d in RULE_DIRS:
        for path in glob.glob(os.path.join(d, "**", "*.yml"), recursive=True):
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = re.match(r"id:\s*(\S+)", line)
                    if m:
                        index.setdefault(m.group(1), path)
    return index


def regression_cases():
    """(info.yml, rule id, [(events.json, match_count)]) for every case; empty list: no test."""
    cases = []
    for info in sorted(glob.glob(os.path.join(SIGMA, "regression_data", "**", "info.yml"), recursive=True)):
        text = open(info, encoding="utf-8").read()
        rule_id = re.search(r"rule_metadata:\s*\n\s*-\s*id:\s*(\S+)", text).group(1)
        tests = []
        # only live (uncommented) entries of regression_tests_info count
        live = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
        if re.search(r"^regression_tests_info:", live, re.M):
            for block in re.split(r"\n\s*-\s*name:", live.split("regression_tests_info:", 1)[1])[1:]:
                count = re.search(r"match_count:\s*(\d+)", block)
                path = re.search(r"path:\s*(\S+)\.evtx", block).group(1)
                tests.append((os.path.join(SIGMA, path + ".json"), int(count.group(1)) if count else 1))
        cases.append((info, rule_id, tests))
    return cases


CASES = regression_cases() if os.path.isdir(os.path.join(SIGMA, "regression_data")) else []


@pytest.fixture(scope="module")
def index():
    return rule_index()


@pytest.mark.parametrize("case", CASES, ids=[os.path.basename(os.path.dirname(c[0])) for c in CASES])
def test_regression_case(case, index):
    info, rule_id, tests = case
    if not tests:
        pytest.skip("info.yml defines no regression test (raw, non-JSON log)")
    rule = index[rule_id]
    for events, want in tests:
        rc, out, err = run("scan", "--rules", rule, "--format", "winlog", events)
        assert rc == 0, err
        mine = [a for a in alerts(out) if a["rule"]["id"] == rule_id]
        assert len(mine) >= want, "%s fired %d times on %s, want %d\n%s" % (rule_id, len(mine), events, want, err)
        a = mine[0]
        assert a["rule"]["title"] and "level" in a["rule"]
        assert a["event"]["mamori"]["tenant"] == "offline"
        assert a["event"]["mamori"]["agent_id"] == "scan"
        assert a["source"]["file"] == events


def test_all_cases_with_the_whole_rule_set():
    """One scan, every rule loaded: each case's rule still fires on its own events."""
    files, expect = [], {}
    for info, rule_id, tests in CASES:
        for events, want in tests:
            files.append(events)
            expect[events] = (rule_id, want)
    args = ["scan", "--quiet"]
    for d in RULE_DIRS:
        args += ["--rules", d]
    rc, out, err = run(*(args + files))
    assert rc == 0, err
    fired = {}
    for a in alerts(out):
        key = (a["source"]["file"], a["rule"]["id"])
        fired[key] = fired.get(key, 0) + 1
    missing = [(f, rid) for f, (rid, want) in expect.items() if fired.get((f, rid), 0) < want]
    assert not missing, missing
    assert re.search(r"rules: \d+ loaded", err)
    summary = re.search(r"scan: \d+ events \(0 rejected\) from %d files, \d+ alerts, [0-9.]+ s, \d+ events/s; "
                        r"CPU ([0-9.]+) s \(([0-9.]+) s scanning, ([0-9.]+) s reading ahead\), \d+ events/s per core"
                        % len(files), err)
    assert summary, err
    # the per-core figure counts the read-ahead thread's CPU with the scan thread's
    total, scanning, ahead = (float(x) for x in summary.groups())
    assert abs(total - scanning - ahead) <= 0.0015, summary.group(0)


RULE = """title: Whoami
id: 0b1d7a8e-1111-4222-8333-944455556666
level: medium
tags: [attack.discovery, attack.t1033]
logsource:
    category: process_creation
    product: windows
detection:
    sel:
        Image|endswith: '\\\\whoami.exe'
    condition: sel
"""

EVENT = {"Event": {"System": {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1},
                   "EventData": {"Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all"}}}
OTHER = {"Event": {"System": {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1},
                   "EventData": {"Image": "C:\\Windows\\System32\\cmd.exe"}}}


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="mamori-scan-") as d:
        with open(os.path.join(d, "rule.yml"), "w") as f:
            f.write(RULE)
        yield d


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def test_input_shapes(workdir):
    rule = os.path.join(workdir, "rule.yml")
    one, other = json.dumps(EVENT), json.dumps(OTHER)
    shapes = {
        "ndjson": one + "\n" + other + "\n" + one + "\n",
        "concatenated": one + other + one,
        "pretty": json.dumps(EVENT, indent=4) + "\n" + json.dumps(OTHER, indent=2) + json.dumps(EVENT, indent=1),
        "array": json.dumps([EVENT, OTHER, EVENT]),
        "crlf": one + "\r\n" + other + "\r\n" + one,
    }
    for name, text in shapes.items():
        rc, out, err = run("scan", "--rules", rule, write(os.path.join(workdir, name + ".json"), text))
        assert rc == 0, (name, err)
        got = alerts(out)
        assert len(got) == 2, (name, out, err)
        assert got[0]["rule"]["id"] == "0b1d7a8e-1111-4222-8333-944455556666"
        assert got[0]["rule"]["title"] == "Whoami"
        assert got[0]["rule"]["level"] == "medium"
        assert got[0]["rule"]["attack"] == ["T1033"]
        assert got[0]["event"]["process"]["executable"].endswith("whoami.exe")
        assert [a["source"]["index"] for a in got] == [0, 2]
        assert "scan: 3 events (0 rejected)" in err
    rc, out, err = run("scan", "--rules", rule, "-", stdin=(one + "\n").encode())
    assert rc == 0 and len(alerts(out)) == 1, err
    # the ECS form of the same event, and format forcing
    ecs = json.dumps({"event": {"category": ["process"], "type": ["start"]}, "host": {"os": {"type": "windows"}},
                      "process": {"executable": "C:\\Windows\\System32\\whoami.exe"}})
    rc, out, err = run("scan", "--rules", rule, "--format", "ecs", write(os.path.join(workdir, "ecs.json"), ecs))
    assert rc == 0 and len(alerts(out)) == 1, err


def test_bad_inputs(workdir):
    rule = os.path.join(workdir, "rule.yml")
    rc, out, err = run("scan", "--rules", rule, os.path.join(workdir, "missing.json"))
    assert rc == 1 and "missing.json" in err and "No such file" in err
    bad = write(os.path.join(workdir, "bad.json"),
                json.dumps(EVENT) + "\n{\"Event\": {\"System\": ,}}\n" + json.dumps(EVENT) + "\n")
    rc, out, err = run("scan", "--rules", rule, bad)
    assert rc == 1  # bad input: non-zero, named …
    m = re.search(r"bad\.json: invalid JSON at line 2 \(byte offset (\d+)\): .*skipped to the next line", err)
    assert m, err
    assert int(m.group(1)) > len(json.dumps(EVENT))
    assert len(alerts(out)) == 2  # … and it loses nothing else: the lines before and after were scanned
    assert "scan: 3 events (1 rejected)" in err, err
    rc, out, err = run("scan", "--rules", os.path.join(workdir, "nope"), bad)
    assert rc == 1 and "nope" in err
    rc, out, err = run("scan", bad)
    assert rc == 2 and "--rules" in err
    rc, out, err = run("scan", "--rules", rule)
    assert rc == 2 and "FILE" in err
    rc, out, err = run("scan", "--rules", rule, "--format", "xml", bad)
    assert rc == 2 and "--format" in err
    rc, out, err = run("scan", "--rules", rule, "--bogus", bad)
    assert rc == 2 and "--bogus" in err
    # values that are not events are skipped and counted, not fatal
    odd = write(os.path.join(workdir, "odd.json"), "1\n\"x\"\n" + json.dumps(EVENT) + "\n")
    rc, out, err = run("scan", "--rules", rule, odd)
    assert rc == 0 and len(alerts(out)) == 1
    assert "scan: 3 events (2 rejected)" in err


def test_rejected_rules_in_summary(workdir):
    write(os.path.join(workdir, "broken.yml"), "title: broken\nlogsource:\n    product: windows\ndetection:\n"
          "    sel:\n        Image|containz: x\n    condition: sel\n")
    rc, out, err = run("scan", "--rules", workdir, write(os.path.join(workdir, "e.json"), json.dumps(EVENT)))
    assert rc == 0, err
    assert len(alerts(out)) == 1
    assert re.search(r"broken\.yml:6: unknown modifier: unknown modifier 'containz'", err), err
    assert "rules: 1 loaded" in err and "1 rejected" in err


def test_rules_lint(workdir):
    rc, out, err = run("rules", "lint", workdir)
    assert rc == 0, out + err
    assert "rules: 1 loaded" in out
    write(os.path.join(workdir, "broken.yml"), "title: broken\nlogsource:\n    product: windows\ndetection:\n"
          "    sel:\n        Image: x\n    condition: sel and nothing\n")
    rc, out, err = run("rules", "lint", workdir)
    assert rc == 1
    assert re.search(r"broken\.yml:7: invalid condition: .*nothing", out), out
    rc, out, err = run("rules", "lint", os.path.join(workdir, "absent"))
    assert rc == 1 and "absent" in err
    rc, out, err = run("rules", "lint")
    assert rc == 2


def test_lint_sigmahq():
    rc, out, err = run("rules", "lint", *RULE_DIRS)
    # the only rejections are rules whose `expand` placeholder nobody configured
    rejected = [l for l in out.splitlines() if re.match(r".+:\d+: ", l)]
    assert rc == 1 and rejected and all("placeholder not configured" in l for l in rejected), out
    m = re.search(r"rules: (\d+) loaded .*, (\d+) rejected", out)
    loaded, bad = int(m.group(1)), int(m.group(2))
    assert loaded * 100 >= (loaded + bad) * 99
    rc, out, err = run("rules", "lint", "--placeholder", "known_cdcs=dc01.corp", *RULE_DIRS)
    assert rc == 0, out


def test_simulator_dump_scans(workdir):
    """mamori-agent-sim --dump writes the events its agents would send (docs/simulator.md), as
    NDJSON that mamorictl scan reads: every line an ECS event of its agent's host, one host in
    five a Linux one, and the whole SigmaHQ set runs over them."""
    p = subprocess.run([SIM, "--dump", "--agents", "5", "--events-per-agent", "200"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    events = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(events) == 1000
    assert [e["host"]["name"] for e in events[::200]] == ["sim-%05d" % i for i in range(5)]
    assert {e["host"]["os"]["type"] for e in events[800:]} == {"linux"}
    assert {e["host"]["os"]["type"] for e in events[:800]} == {"windows"}
    assert len({e["event"]["category"][0] for e in events}) >= 3
    path = write(os.path.join(workdir, "model.ndjson"), p.stdout)
    args = ["scan", "--format", "ecs", "--quiet"]
    for d in RULE_DIRS:
        args += ["--rules", d]
    rc, out, err = run(*(args + [path]))
    assert rc == 0, err
    assert "scan: 1000 events (0 rejected)" in err, err
    p = subprocess.run([SIM, "--dump", "--agents", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 2 and "--dump needs --events-per-agent" in p.stderr

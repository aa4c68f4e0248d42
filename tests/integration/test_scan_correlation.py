"""`mamorictl scan` with Sigma correlation rules (docs/detection.md "Correlation rules"), through
the real binary: the specification's brute-force example (an event_count chained into a
temporal_ordered) and a value_count over hand-written Security events split across two files
out of time order — scan sorts the base matches by event time —; near misses that must not
fire; the NDJSON shape of a correlation alert; `generate: true`; rejected correlations named
with file and line by scan and by `rules lint`."""
import json
import os
import re
import subprocess
import tempfile

import pytest

from harness import MAMORICTL

RULES = """title: Correlation - Multiple Failed Logins Followed by Successful Login
id: b180ead8-d58f-40b2-ae54-c8940995b9b6
status: experimental
correlation:
    type: temporal_ordered
    rules:
        - multiple_failed_login
        - successful_login
    group-by:
        - User
    timespan: 10m
level: high
tags: [attack.credential-access, attack.t1110]
---
title: Multiple failed logons
id: a8418a5a-5fc4-46b5-b23b-6c73beb19d41
name: multiple_failed_login
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - User
    timespan: 10m
    condition:
        gte: 10
---
title: Single failed login
id: 53ba33fd-3a50-4468-a5ef-c583635cfa92
name: failed_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 529
            - 4625
    condition: selection
---
title: Successful login
id: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8
name: successful_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 528
            - 4624
    condition: selection
---
title: Password spraying
id: 2a0b8d0e-5d0a-4d44-9d8e-6f2f1a7d9a11
level: medium
correlation:
    type: value_count
    rules:
        - failed_login
    group-by:
        - IpAddress
    timespan: 5m
    condition:
        field: User
        gte: 4
"""

BASE = 1714564800  # 2024-05-01T12:00:00Z


def ts(seconds):
    import datetime
    return datetime.datetime.fromtimestamp(BASE + seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sec(event_id, t, user, ip="10.1.1.1"):
    return {"Event": {"System": {"Channel": "Security", "EventID": event_id, "Computer": "dc1",
                                 "TimeCreated": {"#attributes": {"SystemTime": ts(t)}}},
                      "EventData": {"User": user, "IpAddress": ip}}}


def run(*args):
    p = subprocess.run([MAMORICTL] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=300)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def lines(stdout):
    return [json.loads(l) for l in stdout.splitlines() if l.strip()]


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="mamori-corr-") as d:
        yield d


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def ndjson(events):
    return "".join(json.dumps(e) + "\n" for e in events)


def test_brute_force_chain_in_event_time_order(workdir):
    rules = write(os.path.join(workdir, "mr_brute_force.yml"), RULES)
    # bob: 10 failures then a success, written with the success and the last failures in the
    # first file and the earlier failures in the second; alice: 9 failures then a success
    # (one below the threshold), on other source addresses
    bob_fail = [sec(4625, 10 + i, "bob", "10.9.9.%d" % i) for i in range(10)]
    bob_ok = sec(4624, 30, "bob", "10.9.9.1")
    alice = [sec(4625, 100 + i, "alice", "10.8.8.%d" % i) for i in range(9)] + [sec(4624, 120, "alice", "10.8.8.1")]
    first = write(os.path.join(workdir, "late.json"), ndjson([bob_ok] + bob_fail[5:] + alice))
    second = write(os.path.join(workdir, "early.json"), ndjson(bob_fail[:5]))
    rc, out, err = run("scan", "--rules", rules, first, second)
    assert rc == 0, err
    got = lines(out)
    corr = [a for a in got if "correlation" in a]
    assert len(got) == len(corr) == 1, out  # the base rules do not alert alone (no generate)
    a = corr[0]
    assert a["rule"]["id"] == "b180ead8-d58f-40b2-ae54-c8940995b9b6"
    assert a["rule"]["level"] == "high" and a["rule"]["attack"] == ["T1110"]
    assert a["rule"]["file"] == rules and a["rule"]["line"] == 1
    c = a["correlation"]
    assert re.fullmatch(r"[0-9a-f]{32}", c["id"])
    assert c["type"] == "temporal_ordered" and c["timespan"] == "10m"
    assert c["group"] == {"User": "bob"}
    assert c["window"] == {"first": ts(19), "last": ts(30)}  # the inner alert counts at its last event
    assert c["event_count"] == 11 and len(c["events"]) == 11

    # offline, events are named FILE#INDEX, in event-time order: compare with the base rules
    # run alone (their single-event alerts carry the event and its source)
    base = write(os.path.join(workdir, "base.yml"), RULES.split("---\n", 2)[2].split("---\ntitle: Password")[0])
    rc, out2, err2 = run("scan", "--rules", base, first, second)
    assert rc == 0, err2
    by_time = sorted((x["event"]["@timestamp"], "%s#%d" % (x["source"]["file"], x["source"]["index"]))
                     for x in lines(out2) if x["event"]["user"]["name"] == "bob")
    assert len(by_time) == 11
    assert c["events"] == [i for _, i in by_time]
    assert c["events"][0] == second + "#0" and c["events"][-1] == first + "#0"

    # the same input in one file in time order gives the same alert, the same id
    rc, out3, _ = run("scan", "--rules", rules, write(os.path.join(workdir, "sorted.json"),
                                                      ndjson(bob_fail[:5]) + ndjson([bob_ok] + bob_fail[5:] + alice)))
    assert rc == 0
    assert [x["correlation"]["group"] for x in lines(out3)] == [{"User": "bob"}]

    assert re.search(r"correlations: 3 loaded, 1 alerts; 21 base matches \(21 not alerting alone\), 0 late", err), err
    assert "rules: 2 loaded" in err and "3 correlations" in err


def test_value_count_and_near_misses(workdir):
    rules = write(os.path.join(workdir, "mr.yml"), RULES)
    # four users from one address within 5 minutes fire; three users (one twice) from another
    # do not; four users spread over 6 minutes do not
    spray = [sec(4625, i, "u%d" % i, "10.0.0.1") for i in range(4)]
    near = [sec(4625, i, u, "10.0.0.2") for i, u in enumerate(["a", "b", "a", "c"])]
    slow = [sec(4625, i * 120, "s%d" % i, "10.0.0.3") for i in range(4)]
    rc, out, err = run("scan", "--rules", rules, write(os.path.join(workdir, "e.json"), ndjson(spray + near + slow)))
    assert rc == 0, err
    got = lines(out)
    assert len(got) == 1, out
    c = got[0]["correlation"]
    assert got[0]["rule"]["title"] == "Password spraying"
    assert c["type"] == "value_count" and c["group"] == {"IpAddress": "10.0.0.1"} and c["value"] == 4
    assert c["event_count"] == 4
    rc, out, err = run("scan", "--rule-stats", "--rules", rules, os.path.join(workdir, "e.json"))
    assert rc == 0
    assert re.search(r"alerts per correlation:\n(.*\n)*\s+1\s+medium\s+value_count\s+2a0b8d0e-\S+\s+Password spraying", err), err


def test_generate_keeps_single_alerts(workdir):
    rules = write(os.path.join(workdir, "mr.yml"), RULES.replace("level: medium\n", "level: medium\ngenerate: true\n"))
    rc, out, err = run("scan", "--rules", rules, write(os.path.join(workdir, "e.json"),
                                                       ndjson([sec(4625, i, "u%d" % i) for i in range(4)])))
    assert rc == 0, err
    got = lines(out)
    assert len([a for a in got if "correlation" in a]) == 1
    assert len([a for a in got if "event" in a]) == 4  # failed_login alerts alone again


def test_rejected_correlation_named(workdir):
    bad = write(os.path.join(workdir, "bad.yml"), "title: broken\nid: x1\ncorrelation:\n    type: event_count\n"
                "    rules: [nowhere]\n    timespan: 5m\n    condition:\n        gte: 3\n")
    rc, out, err = run("scan", "--rules", bad, write(os.path.join(workdir, "e.json"), ndjson([sec(4625, 0, "u")])))
    assert rc == 0, err
    assert re.search(r"bad\.yml:5: invalid correlation: references 'nowhere'", err), err
    rc, out, err = run("rules", "lint", bad)
    assert rc == 1
    assert re.search(r"bad\.yml:5: invalid correlation: references 'nowhere'", out), out
    rc, out, err = run("rules", "lint", write(os.path.join(workdir, "good.yml"), RULES))
    assert rc == 0, out
    assert "3 correlations" in out

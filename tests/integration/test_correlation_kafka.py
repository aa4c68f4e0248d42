"""Correlations re-keyed on Kafka (docs/detection.md §11.8): one ingest process, one store,
two detect workers without the store role, each owning half of the partitions of the matches
topic (bus.kafka.correlate_shards=2). Logons of one user arrive from several hosts (agents),
so their events are evaluated by either worker; the base matches are published keyed by the
user and each user's state lives on one worker: a value_count (distinct hosts per user) and
an event_count (failures per user) fire exactly once each, near misses never; the alerts
reach the store through the alerts topic. A malformed record on the matches topic (kcat) is
counted and skipped with its topic, partition and offset in the log. Then one detect worker
is killed with -9 and restarted: it reads its partitions again from the committed offsets
(the state is rebuilt from the log) and no alert is raised twice."""
import json
import os
import shutil
import subprocess
import time

import pytest

from harness import MAMORICTL, KafkaBroker, Server, metrics, stop_all, temp_dir
from test_alerts import Sender

PREFIX = "ck-"
RULES = """title: One user on several hosts
id: 5c1e2f3a-7b8c-4d9e-8f0a-1b2c3d4e5f60
status: experimental
correlation:
    type: value_count
    rules:
        - ck_logon
    group-by:
        - TargetUserName
    timespan: 10m
    condition:
        field: Computer
        gte: 2
level: high
---
title: Repeated failures of one user
id: 6d2f3a4b-8c9d-4e0f-9a1b-2c3d4e5f6a71
status: experimental
correlation:
    type: event_count
    rules:
        - ck_failed
    group-by:
        - TargetUserName
    timespan: 10m
    condition:
        gte: 3
level: medium
---
title: Logon
id: 7e3a4b5c-9d0e-4f1a-8b2c-3d4e5f6a7b82
name: ck_logon
status: experimental
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4624
    condition: selection
level: low
---
title: Failed logon
id: 8f4b5c6d-0e1f-4a2b-9c3d-4e5f6a7b8c93
name: ck_failed
status: experimental
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
    condition: selection
level: low
"""
NOW = (int(time.time()) // 60) * 60 - 300


def sec(event_id, t, user, host):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW + t)) + ".000000Z"
    return {"Event": {"System": {"Channel": "Security", "EventID": event_id, "Computer": host,
                                 "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
                                 "TimeCreated": {"#attributes": {"SystemTime": stamp}}},
                      "EventData": {"TargetUserName": user, "IpAddress": "10.0.0.9"}}}


@pytest.fixture(scope="module")
def broker():
    b = KafkaBroker(os.path.realpath(temp_dir("mamori-kafka-corr-")))
    try:
        yield b.start()
    finally:
        b.stop()
        shutil.rmtree(b.dir, ignore_errors=True)


def node(base, name, roles, bootstrap, *extra):
    return Server(os.path.join(base, name), extra=["--roles", roles, "--bus", "kafka", "--kafka-bootstrap", bootstrap,
                                                    "--set", "bus.kafka.topic=ck.events",
                                                    "--set", "bus.kafka.group_prefix=" + PREFIX,
                                                    "--set", "bus.kafka.alerts_topic=ck.alerts",
                                                    "--set", "bus.kafka.matches_topic=ck.matches"] + list(extra))


def wait_until(what, predicate, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("timed out waiting for " + what)


def alerts(store):
    p = subprocess.run([MAMORICTL, "alerts", "--dev", store.dir, "--json", "--limit", "1000"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def total(servers, name):
    return sum(sum(v for k, v in metrics(s.api_port, name).items() if k.split("{")[0] == name) for s in servers)


def test_rekeyed_correlations_fire_once_across_two_detect_workers(broker):
    base = temp_dir("mamori-it-corr-kafka-")
    rules = os.path.join(base, "rules")
    os.makedirs(rules)
    with open(os.path.join(rules, "corr.yml"), "w") as f:
        f.write(RULES)
    ingest = node(base, "ingest", "ingest", broker.bootstrap)
    store = node(base, "store", "store", broker.bootstrap)
    detects = [node(base, "detect%d" % i, "detect", broker.bootstrap, "--rules", rules, "--set", "detect.threads=1",
                    "--set", "bus.kafka.correlate_shards=2", "--set", "bus.kafka.correlate_shard=%d" % i)
               for i in range(2)]
    everyone = [ingest, store] + detects
    try:
        ingest.start(timeout=120)
        for s in [store] + detects:
            s.start(timeout=120)
        for d in detects:
            wait_until("the correlation intake", lambda: "correlation intake: reading ck.matches" in d.log(), 60)
        # 6 hosts (agents); alice logs on at two of them (fires), bob twice at one (does not);
        # carol fails 3 times across three hosts (fires), dave twice (does not)
        senders = [Sender(ingest, "ck-host-%d" % i) for i in range(6)]
        plan = [(0, 4624, "alice"), (1, 4624, "alice"), (2, 4624, "bob"), (2, 4624, "bob"),
                (3, 4625, "carol"), (4, 4625, "carol"), (5, 4625, "carol"), (0, 4625, "dave"), (1, 4625, "dave")]
        for t, (h, eid, user) in enumerate(plan):
            senders[h].send([sec(eid, t, user, "ck-host-%d.corp" % h)])
        for s in senders:
            s.close()
        # a malformed record from an external producer: counted and skipped, named in the log
        subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", "ck.matches", "-k", "default\x1fmallory"],
                       input=b"not a match\n", check=True, timeout=60)
        wait_until("the malformed record to be counted",
                   lambda: total(detects, "mamori_detect_correlation_intake_invalid_total") == 1)
        assert any("ck.matches partition" in d.log() and "not a re-keyed match" in d.log() for d in detects)
        # every base match published (one target each) and read by exactly one worker
        wait_until("the matches to be fed",
                   lambda: total(detects, "mamori_detect_correlation_intake_matches_total") == len(plan))
        assert total(detects, "mamori_detect_correlation_rekeyed_matches_total") == len(plan)
        per_worker = [total([d], "mamori_detect_correlation_intake_matches_total") for d in detects]
        print("matches fed per worker:", per_worker, "keys held:",
              [total([d], "mamori_detect_correlation_intake_keys") for d in detects])
        assert total(detects, "mamori_detect_correlation_intake_duplicates_total") == 0
        wait_until("the correlation alerts", lambda: len(alerts(store)) >= 2, 60)
        time.sleep(2)  # nothing else arrives
        got = alerts(store)
        corr = sorted((a["rule"]["id"], json.dumps(a["correlation"]["group"])) for a in got)
        print("alerts:", corr)
        assert corr == [("5c1e2f3a-7b8c-4d9e-8f0a-1b2c3d4e5f60", json.dumps({"TargetUserName": "alice"})),
                        ("6d2f3a4b-8c9d-4e0f-9a1b-2c3d4e5f6a71", json.dumps({"TargetUserName": "carol"}))], got
        by_type = {a["correlation"]["type"]: a for a in got}
        assert by_type["value_count"]["correlation"]["value"] == 2
        assert len(by_type["event_count"]["correlation"]["events"]) == 3
        # host and event name the event whose match completed the window: which of carol's three
        # that is depends on the order the three agents' matches reached the worker (their
        # connections and partitions race): the host is one of the three, and the event one of
        # the window's events
        ec = by_type["event_count"]
        assert ec["host"]["name"] in ("ck-host-3.corp", "ck-host-4.corp", "ck-host-5.corp"), ec
        assert ec["event"]["id"] in ec["correlation"]["events"], ec
        # kill -9 one worker and restart it: it reads its partitions again from the committed
        # offsets (matches still inside the window), rebuilds the state, raises the same ids
        fed_before = total(detects, "mamori_detect_correlation_intake_matches_total")
        detects[0].kill9()
        mark = len(detects[0].log())
        detects[0].start(timeout=120)
        wait_until("the restarted intake",
                   lambda: "correlation intake: reading ck.matches" in detects[0].log()[mark:], 60)
        # the offsets were committed behind the matches its windows may still need: it reads
        # them all again (they are minutes old, the windows 10 minutes)
        wait_until("the state to be rebuilt", lambda: total([detects[0]], "mamori_detect_correlation_intake_matches_total")
                   == per_worker[0], 60)
        time.sleep(3)
        print("fed before the kill: %d, after the restart: %d" % (
            fed_before, total(detects, "mamori_detect_correlation_intake_matches_total")))
        assert sorted(a["id"] for a in alerts(store)) == sorted(a["id"] for a in got)
    finally:
        stop_all(everyone)
        if not os.environ.get("MAMORI_KEEP_TEST_DIRS"):
            shutil.rmtree(base, ignore_errors=True)


HOST_RULE = """---
title: Failures on one host
id: 9a5c6d7e-1f2a-4b3c-8d4e-5f6a7b8c9da4
status: experimental
correlation:
    type: event_count
    rules:
        - ck_failed
    group-by:
        - Computer
    timespan: 10m
    condition:
        gte: 2
level: medium
"""


def test_all_roles_process_rekeys_only_what_is_not_grouped_by_host(broker):
    """One process with every role on Kafka: the correlations grouped by user go through the
    matches topic and back into the same process's intake (the alerts written to its own
    store); the one grouped by host (Computer) stays direct (checkpointed, nothing published).
    Prints the time from the last event's ACK to its correlation alert."""
    base = temp_dir("mamori-it-corr-kafka1-")
    rules = os.path.join(base, "rules")
    os.makedirs(rules)
    with open(os.path.join(rules, "corr.yml"), "w") as f:
        f.write(RULES + HOST_RULE)
    srv = Server(os.path.join(base, "node"), extra=["--bus", "kafka", "--kafka-bootstrap", broker.bootstrap,
                                                     "--set", "bus.kafka.topic=ck1.events",
                                                     "--set", "bus.kafka.group_prefix=ck1-",
                                                     "--set", "bus.kafka.matches_topic=ck1.matches",
                                                     "--rules", rules])
    try:
        srv.start(timeout=120)
        wait_until("the correlation intake", lambda: "correlation intake: reading ck1.matches" in srv.log(), 60)
        a, b = Sender(srv, "ck1-a"), Sender(srv, "ck1-b")
        a.send([sec(4624, 0, "erin", "ck1-a.corp")])
        a.send([sec(4625, 1, "frank", "ck1-a.corp")])
        a.send([sec(4625, 2, "frank", "ck1-a.corp")])  # 2 failures on host a: the host correlation fires
        t0 = time.time()
        b.send([sec(4624, 3, "erin", "ck1-b.corp")])  # erin on 2 hosts: the user correlation fires
        a.close()
        b.close()

        def rule_ids():
            return sorted(x["rule"]["id"] for x in alerts(srv))
        wait_until("the user correlation's alert",
                   lambda: "5c1e2f3a-7b8c-4d9e-8f0a-1b2c3d4e5f60" in rule_ids(), 60)
        print("ACK of the last event -> correlation alert through mamori.matches: %.0f ms" % ((time.time() - t0) * 1000))
        wait_until("both alerts", lambda: len(rule_ids()) >= 2, 60)
        time.sleep(2)
        assert rule_ids() == ["5c1e2f3a-7b8c-4d9e-8f0a-1b2c3d4e5f60", "9a5c6d7e-1f2a-4b3c-8d4e-5f6a7b8c9da4"]
        m = metrics(srv.api_port, "mamori_detect_correlation_")
        # 4 matches: 2 logons (one user correlation each), 2 failures (the user event_count and
        # the host one): the 2 + 2 user targets are published, the 2 host ones are not
        assert m["mamori_detect_correlation_rekeyed_matches_total"] == 4, m
        assert m["mamori_detect_correlation_intake_matches_total"] == 4, m
    finally:
        if srv.alive():
            srv.stop()
        if not os.environ.get("MAMORI_KEEP_TEST_DIRS"):
            shutil.rmtree(base, ignore_errors=True)

"""Sigma correlation rules in the live server (docs/detection.md §11.6), through the real
mamorid and agents over mutual TLS: a temporal_ordered sequence whose first half is sent, then
mamorid is killed with -9 (once after a checkpoint, once before any: the half is re-fed from
the store) and restarted, then the second half raises exactly one alert — never two, also
after further crashes; the alert carries every contributing event id, the group-by values and
the window and is served by GET /v1/alerts like any other; base rules a correlation uses do
not alert alone; out-of-order arrival within the lateness allowance fires, beyond it is
counted late; the key bound evicts and counts."""
import os
import shutil
import subprocess
import time

import pytest

from harness import MAMORICTL, Server, free_port, temp_dir
from test_alerts import Api, Sender, restart, wait_log

RULES = """title: Failed logon then success
id: 6a0e7c52-4d1b-4f7e-9a53-2b1c0f3e9d01
status: experimental
correlation:
    type: temporal_ordered
    rules:
        - failed_logon
        - successful_logon
    group-by:
        - TargetUserName
    timespan: 10m
level: high
---
title: Failed logon
id: 1f0b7d0e-8f4e-4c8b-9d2a-6b7e1c2d3e41
name: failed_logon
status: experimental
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
    condition: selection
level: low
---
title: Successful logon
id: 2e1c8e1f-9a5f-4d9c-8e3b-7c8f2d3e4f52
name: successful_logon
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
title: Many users from one address
id: 3f2d9f20-0b6a-4ead-9f4c-8d9a3e4f5a63
status: experimental
correlation:
    type: event_count
    rules:
        - explicit_logon
    group-by:
        - IpAddress
    timespan: 1h
    condition:
        gte: 1000000
level: medium
---
title: Explicit credentials
id: 4a3e0a31-1c7b-4fbe-8a5d-9eab4f5a6b74
name: explicit_logon
status: experimental
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4648
    condition: selection
level: low
"""
SEQUENCE_ID = "6a0e7c52-4d1b-4f7e-9a53-2b1c0f3e9d01"
NOW = (int(time.time()) // 60) * 60 - 600  # whole minutes, ten minutes ago


def stamp(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW + t)) + ".000000Z"


def sec(event_id, t, user, ip="10.1.1.1"):
    return {"Event": {"System": {"Channel": "Security", "EventID": event_id, "Computer": "ws1.corp",
                                 "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
                                 "TimeCreated": {"#attributes": {"SystemTime": stamp(t)}}},
                      "EventData": {"TargetUserName": user, "IpAddress": ip}}}


@pytest.fixture
def node_factory():
    started = []

    def make(*settings):
        d = temp_dir("mamori-corr-live-")
        rules = os.path.join(d, "rules")
        os.makedirs(rules)
        with open(os.path.join(rules, "corr.yml"), "w") as f:
            f.write(RULES)
        api_port = free_port()
        extra = ["--api-port", str(api_port), "--set", "api.rate_limit_per_key=0", "--rules", rules]
        for s in settings:
            extra += ["--set", s]
        srv = Server(d, extra=extra).start()
        started.append((srv, d))
        wait_log(srv, r"rule set loaded generation=1 rules=3 correlations=2")
        return srv, Api(d, api_port)

    yield make
    for srv, d in started:
        if srv.alive():
            srv.stop()
        shutil.rmtree(d, ignore_errors=True)


def sequence_alerts(api):
    return [a for a in api.alerts(limit=1000)[0] if a["rule"]["id"] == SEQUENCE_ID]


def wait_metric(api, name, value, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = api.metrics()
        if m.get(name, -1) >= value:
            return m
        time.sleep(0.1)
    raise AssertionError("%s never reached %s: %r" % (name, value, {k: v for k, v in api.metrics().items()
                                                                   if "correlation" in k}))


@pytest.mark.parametrize("checkpointed,threads", [(True, 1), (False, 1), (True, 2)])
def test_half_sequence_survives_kill9(node_factory, checkpointed, threads):
    # checkpointed: the half is in a checkpoint; else no checkpoint covers it and the restart
    # feeds it again from the store (re-detection after the correlation checkpoint); with two
    # detection threads both feed the one engine of the tenant
    interval = "50" if checkpointed else "3600000"
    srv, api = node_factory("detect.correlation_checkpoint_interval_ms=" + interval, "detect.threads=%d" % threads)
    s = Sender(srv, "ws-01")
    s.send([sec(4625, 0, "bob"), sec(4625, 1, "carol")])
    s.close()
    m = wait_metric(api, "mamori_detect_correlation_batches_total", 1)
    assert m["mamori_detect_correlation_keys"] == 2
    if checkpointed:
        m = wait_metric(api, "mamori_detect_correlation_checkpoints_total", 2)  # start-up + this batch
        # incremental: the start-up checkpoint had no key, this one the two touched
        assert m["mamori_detect_correlation_checkpoint_keys_total"] == 2
    mark = restart(srv, kill=True)
    wait_log(srv, r"correlation state restored: keys=%d" % (2 if checkpointed else 0), start=mark)
    if not checkpointed:
        wait_log(srv, r"1 batches after the correlation checkpoint are fed to the correlations again", start=mark)
    assert sequence_alerts(api) == []
    # with two threads the second half comes from another host: the sequence is the user's
    second_agent = "ws-02" if threads == 2 else "ws-01"
    s = Sender(srv, second_agent)
    second = s.send([sec(4624, 30, "bob")])
    s.close()
    deadline = time.time() + 60
    while not sequence_alerts(api) and time.time() < deadline:
        time.sleep(0.1)
    alerts = sequence_alerts(api)
    assert len(alerts) == 1, alerts
    a = alerts[0]
    corr = a["correlation"]
    assert corr["type"] == "temporal_ordered" and corr["group"] == {"TargetUserName": "bob"}
    assert corr["event_count"] == 2 and len(corr["events"]) == 2
    assert corr["window"] == {"first": stamp(0), "last": stamp(30)}
    assert a["time"] == stamp(30) and a["rule"]["level"] == "high"
    assert a["event"]["seq"] == second and a["agent_id"] == second_agent
    # the contributing events are the stored ones
    users = []
    for eid in corr["events"]:
        st, ev = api.call("GET", "/v1/events/" + eid)
        assert st == 200 and ev["mamori"]["event_id"] == eid, ev
        users.append((ev["event"]["code"], ev["winlog"]["event_data"]["TargetUserName"]))
    assert users == [("4625", "bob"), ("4624", "bob")]
    # served like any alert: by id, by rule filter
    st, one = api.call("GET", "/v1/alerts/" + a["id"])
    assert st == 200 and one["correlation"]["events"] == corr["events"]
    assert [x["id"] for x in api.alerts(rule=SEQUENCE_ID)[0]] == [a["id"]]
    # the base rules do not alert alone (no correlation using them says generate: true)
    assert all(x["rule"]["id"] == SEQUENCE_ID for x in api.alerts(limit=1000)[0])
    # more crashes never double it: the state re-fed after the last checkpoint gives the same id
    for _ in range(2):
        restart(srv, kill=True)
        s = Sender(srv, "ws-01")
        s.send([sec(4688, 40, "nobody")])
        s.close()
        wait_metric(api, "mamori_detect_correlation_batches_total", 1)
        assert [x["id"] for x in sequence_alerts(api)] == [a["id"]]
    # a graceful stop writes a final checkpoint: carol's half survives it too
    mark = restart(srv)
    wait_log(srv, r"correlation state restored: keys=1 ", start=mark)
    assert "re-detecting" not in srv.log()[mark:]
    s = Sender(srv, "ws-01")
    s.send([sec(4624, 50, "carol")])
    s.close()
    deadline = time.time() + 60
    while len(sequence_alerts(api)) < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert sorted(x["correlation"]["group"]["TargetUserName"] for x in sequence_alerts(api)) == ["bob", "carol"]


def test_lateness_and_key_bound(node_factory):
    srv, api = node_factory("detect.correlation_lateness_s=60", "detect.correlation_max_keys=10")
    s = Sender(srv, "ws-02")
    s2 = Sender(srv, "ws-03")
    # dave: the success arrives first (t=100), the failure 30 s older later: within 60 s -> fires
    s.send([sec(4624, 100, "dave")])
    s2.send([sec(4625, 70, "dave")])
    # erin: the newest match seen is at t=300; a failure at t=100 is 200 s behind: late
    s.send([sec(4624, 300, "erin")])
    s2.send([sec(4625, 100, "erin")])
    m = wait_metric(api, "mamori_detect_correlation_batches_total", 4)
    deadline = time.time() + 30
    while len(sequence_alerts(api)) < 1 and time.time() < deadline:
        time.sleep(0.1)
    alerts = sequence_alerts(api)
    assert [a["correlation"]["group"]["TargetUserName"] for a in alerts] == ["dave"]
    assert alerts[0]["correlation"]["window"] == {"first": stamp(70), "last": stamp(100)}
    assert m["mamori_detect_correlation_late_total"] == 1
    # 25 addresses against a bound of 10 keys: 15 evictions, counted
    s.send([sec(4648, 300 + i, "frank", ip="10.9.0.%d" % i) for i in range(25)])
    s.close()
    s2.close()
    m = wait_metric(api, "mamori_detect_correlation_evicted_keys_total", 15)
    assert m["mamori_detect_correlation_evicted_keys_total"] == 15
    assert m["mamori_detect_correlation_keys"] <= 10 + 3


def test_clock_ahead_does_not_make_others_late(node_factory):
    """An agent stamping events 40 minutes ahead (inside ingest.max_clock_skew_s, so stored at
    that time) does not move the watermark past the receive time: other agents' matches are
    not late and their sequences fire."""
    srv, api = node_factory("detect.correlation_lateness_s=60")
    ahead = Sender(srv, "ws-ahead")
    ahead.send([sec(4625, 3000, "zed")])  # NOW + 50 min = 40 min from now
    wait_metric(api, "mamori_detect_correlation_batches_total", 1)
    s = Sender(srv, "ws-06")
    s.send([sec(4625, 590, "kim"), sec(4624, 595, "kim")])  # 10 and 5 s ago
    s.close()
    ahead.close()
    m = wait_metric(api, "mamori_detect_correlation_batches_total", 2)
    deadline = time.time() + 30
    while len(sequence_alerts(api)) < 1 and time.time() < deadline:
        time.sleep(0.1)
    alerts = sequence_alerts(api)
    assert [a["correlation"]["group"]["TargetUserName"] for a in alerts] == ["kim"], alerts
    assert m["mamori_detect_correlation_late_total"] == 0


def test_spool_hours_late_completes_its_sequence(node_factory):
    """A laptop back after two hours offline sends its spool: its sequence completes by event
    time although other agents' live matches are far newer (lateness is per group-by key)."""
    srv, api = node_factory("detect.correlation_lateness_s=60")
    live = Sender(srv, "ws-live")
    live.send([sec(4625, 590, "mona")])  # now: the tenant's newest match
    wait_metric(api, "mamori_detect_correlation_batches_total", 1)
    laptop = Sender(srv, "laptop-07")
    laptop.send([sec(4625, -6600, "lena"), sec(4624, -6590, "lena")])  # two hours ago
    laptop.close()
    live.close()
    m = wait_metric(api, "mamori_detect_correlation_batches_total", 2)
    deadline = time.time() + 30
    while not sequence_alerts(api) and time.time() < deadline:
        time.sleep(0.1)
    alerts = sequence_alerts(api)
    assert [a["correlation"]["group"]["TargetUserName"] for a in alerts] == ["lena"], alerts
    assert alerts[0]["correlation"]["window"] == {"first": stamp(-6600), "last": stamp(-6590)}
    assert m["mamori_detect_correlation_late_total"] == 0


SINGLE = """title: Any failed logon
id: 7b4f1b42-2d8c-4a0f-8b6e-0fbc5a6b7c85
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
    condition: selection
level: low
"""


def test_rules_test_runs_over_history_without_alerting(node_factory):
    srv, api = node_factory()
    s = Sender(srv, "ws-04")
    s.send([sec(4625, 0, "gina"), sec(4625, 5, "hank"), sec(4624, 9, "gina")])
    s.send([sec(4624, 20, "hank"), sec(4624, 30, "ivan")])
    s.close()
    wait_metric(api, "mamori_detect_correlation_batches_total", 2)
    deadline = time.time() + 30  # fed, then written: wait for the write
    while len(sequence_alerts(api)) < 2 and time.time() < deadline:
        time.sleep(0.1)
    live = api.alerts(limit=1000)[0]
    assert sorted(a["correlation"]["group"]["TargetUserName"] for a in live) == ["gina", "hank"]
    window = {"from": stamp(-60), "to": stamp(120)}
    # the correlation file as a whole: the same alerts (same ids) as live, nothing stored
    st, r = api.call("POST", "/v1/rules/test", dict(window, rule=RULES))
    assert st == 200, r
    assert r["complete"] and r["events_scanned"] == 5
    assert r["rules"] == {"loaded": 3, "correlations": 2, "skipped": 0}
    assert r["matches_total"] == 0  # base rules of a correlation do not alert alone
    got = sorted((c["correlation"]["group"]["TargetUserName"], c["correlation"]["id"]) for c in r["correlation_alerts"])
    assert [g[0] for g in got] == ["gina", "hank"] and r["correlation_alerts_total"] == 2
    assert {c["correlation"]["id"] for c in r["correlation_alerts"]} == {a["id"] for a in live}
    assert all(c["rule"]["id"] == SEQUENCE_ID for c in r["correlation_alerts"])
    # a single-event rule: every match, listed up to limit
    st, r = api.call("POST", "/v1/rules/test", dict(window, rule=SINGLE, limit=1))
    assert st == 200, r
    assert r["matches_total"] == 2 and len(r["matches"]) == 1 and r["correlation_alerts"] == []
    assert r["matches"][0]["rule"]["title"] == "Any failed logon" and r["matches"][0]["agent_id"] == "ws-04"
    assert api.call("GET", "/v1/events/" + r["matches"][0]["event"]["id"])[0] == 200
    # a window without the events
    st, r = api.call("POST", "/v1/rules/test", {"rule": SINGLE, "from": stamp(60), "to": stamp(120)})
    assert st == 200 and r["events_scanned"] == 0 and r["matches_total"] == 0
    # nothing was alerted by any of it
    assert sorted(a["id"] for a in api.alerts(limit=1000)[0]) == sorted(a["id"] for a in live)
    # bad input: named, 400
    broken = "title: x\ncorrelation:\n    type: event_count\n    rules: [nowhere]\n    timespan: 5m\n" \
             "    condition: {gte: 2}\n"
    st, r = api.call("POST", "/v1/rules/test", dict(window, rule=broken))
    assert st == 400 and r["error"]["code"] == "bad_rule", r
    assert r["error"]["problems"][0]["reason"] == "invalid correlation" and "nowhere" in \
        r["error"]["problems"][0]["message"]
    assert r["error"]["problems"][0]["line"] >= 1
    st, r = api.call("POST", "/v1/rules/test", {"rule": SINGLE, "from": stamp(60)})
    assert st == 400 and "'from' and 'to'" in r["error"]["message"]
    st, r = api.call("POST", "/v1/rules/test", dict(window, rule=SINGLE, extra=1))
    assert st == 400 and "unknown field 'extra'" in r["error"]["message"]
    assert api.call("GET", "/v1/rules/test")[0] == 405
    # the same through mamorictl rules test
    rules_file = os.path.join(srv.dir, "rules", "corr.yml")
    p = subprocess.run([MAMORICTL, "rules", "test", "--dev", srv.dir, rules_file, "--from", window["from"],
                        "--to", window["to"]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 2 and all(l.startswith("correlation ") and "Failed logon then success" in l for l in lines)
    assert "5 events scanned, 0 matches, 2 correlation alerts" in p.stderr
    p = subprocess.run([MAMORICTL, "rules", "test", "--dev", srv.dir, rules_file, "--from", window["to"],
                        "--to", window["from"]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 1 and "'from' must be before 'to'" in p.stderr


def test_reload_keeps_half_sequences(node_factory):
    """SIGHUP rebuilds the rule set: the state moves to the new set's correlation with the same
    id and type, so a sequence half-seen before the reload completes after it."""
    import signal
    srv, api = node_factory()
    s = Sender(srv, "ws-05")
    s.send([sec(4625, 0, "judy")])
    wait_metric(api, "mamori_detect_correlation_batches_total", 1)
    with open(os.path.join(srv.dir, "rules", "extra.yml"), "w") as f:
        f.write(SINGLE)
    mark = len(srv.log())
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, r"rule set loaded generation=2 rules=4 correlations=2", start=mark)
    wait_log(srv, r"correlation state carried to the new rule set: 2 ", start=mark)
    s.send([sec(4624, 10, "judy")])
    s.close()
    deadline = time.time() + 30
    while not sequence_alerts(api) and time.time() < deadline:
        time.sleep(0.1)
    alerts = sequence_alerts(api)
    assert len(alerts) == 1 and alerts[0]["correlation"]["group"] == {"TargetUserName": "judy"}


def test_search_sequence_is_the_correlation(node_factory):
    """Search's `sequence` runs on the correlation engine (docs/search.md "Sequences"): the
    equivalent query lists exactly the event ids of the live temporal_ordered alerts and of
    POST /v1/rules/test — overlapping sequences, a pair past the span, a step before its
    predecessor, a tie — and its pages give the same sequences."""
    srv, api = node_factory()
    events = sorted([
        (0, 4625, "gina"), (10, 4625, "gina"), (20, 4624, "gina"), (30, 4624, "gina"),  # two, earliest first
        # one: 6 s -> 650 s is past the span
        (0, 4625, "hank"), (5, 4624, "hank"), (6, 4625, "hank"), (650, 4624, "hank"),
        (1, 4624, "ivan"), (2, 4625, "ivan"),  # wrong order
        (3, 4625, "jill"), (3, 4624, "jill"),  # same second, failure first
    ], key=lambda e: e[0])
    s = Sender(srv, "ws-05")
    s.send([sec(code, t, user) for t, code, user in events])
    s.close()
    deadline = time.time() + 60
    while len(sequence_alerts(api)) < 4 and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    live = sequence_alerts(api)
    assert len(live) == 4, live
    live_ids = sorted(tuple(a["correlation"]["events"]) for a in live)
    window = {"from": stamp(-60), "to": stamp(900)}
    st, r = api.call("POST", "/v1/rules/test", dict(window, rule=RULES))
    assert st == 200, r
    retro_ids = sorted(tuple(c["correlation"]["events"]) for c in r["correlation_alerts"])
    assert retro_ids == live_ids
    query = ('sequence by winlog.event_data.TargetUserName with maxspan=10m '
             '[any where event.code == "4625"] [any where event.code == "4624"]')
    st, r = api.call("POST", "/v1/search", dict(window, query=query, limit=100))
    assert st == 200, r
    seqs = r["sequences"]
    search_ids = sorted(tuple(e["mamori"]["event_id"] for e in q["events"]) for q in seqs)
    assert search_ids == live_ids
    assert sorted(q["by"]["winlog.event_data.TargetUserName"] for q in seqs) == ["gina", "gina", "hank", "jill"]
    # one sequence per page: the same ones
    paged, cursor = [], None
    for _ in range(10):
        page = dict(window, query=query, limit=1, **({"cursor": cursor} if cursor else {}))
        st, r = api.call("POST", "/v1/search", page)
        assert st == 200, r
        paged += [tuple(e["mamori"]["event_id"] for e in q["events"]) for q in r["sequences"]]
        cursor = r.get("cursor")
        if not cursor:
            break
    assert sorted(paged) == live_ids
    st, r = api.call("POST", "/v1/search", dict(window, query=query + " | count"))
    assert st == 200 and r == {"count": 4}, r

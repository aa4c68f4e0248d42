"""Live detection through the real server: every SigmaHQ regression case's events sent by an
agent over mutual TLS (evtx_dump JSON, format winlog) must raise the named rule's alert at
least match_count times, read back through GET /v1/alerts. Then the alert API (PATCH status
and assignee with roles and audit, filters, paging, tenant isolation, 401/403), metrics,
mamorictl alerts, deterministic ids across a crash with re-detection, and hot reload on SIGHUP
(a rule added to a rules directory fires from the next batch; nothing is lost or evaluated
twice across the swap; a failed reload keeps the running set)."""
import json
import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import (ACK, EVENTS, FORMAT_ECS, FORMAT_WINLOG, MAMORICTL, MAMORID, Agent, Server, frame, free_port,
                     make_agent_cert, sim, temp_dir)
from test_scan import CASES, RULE_DIRS, SIGMA, rule_index

pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(SIGMA, "regression_data")),
                                reason="SigmaHQ data not present")


class Api:
    def __init__(self, dev_dir, port):
        self.base = "https://127.0.0.1:%d" % port
        self.ctx = ssl.create_default_context(cafile=os.path.join(dev_dir, "ca.pem"))
        with open(os.path.join(dev_dir, "admin.key")) as f:
            self.admin = f.read().strip()

    def call(self, method, path, body=None, key=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if key is not False:
            req.add_header("Authorization", "Bearer " + (key or self.admin))
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=60) as r:
                text = r.read()
                ctype = r.headers.get("Content-Type", "")
                return r.status, (json.loads(text) if ctype.startswith("application/json") else text.decode())
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text.decode(errors="replace")

    def alerts(self, key=None, **params):
        """Every page of GET /v1/alerts with these filters, in order."""
        out, cursor, pages = [], None, 0
        while True:
            q = dict(params)
            if cursor:
                q["cursor"] = cursor
            st, r = self.call("GET", "/v1/alerts?" + urllib.parse.urlencode(q), key=key)
            assert st == 200, r
            out += r["alerts"]
            pages += 1
            cursor = r.get("cursor")
            if not cursor:
                return out, pages
            assert pages < 10000

    def metrics(self):
        st, text = self.call("GET", "/metrics", key=False)
        assert st == 200
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, v = line.rpartition(" ")
                values[name] = float(v)
        return values

    def wait_detected(self, batches, timeout=240):
        """Until the detect threads evaluated `batches` batches in all and none waits."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = self.metrics()
            if m.get("mamori_detect_batches_total", 0) >= batches and m.get("mamori_detect_pending_batches", 1) == 0:
                return m
            time.sleep(0.2)
        raise AssertionError("detection did not catch up: %r" % {k: v for k, v in self.metrics().items()
                                                                   if k.startswith("mamori_detect_")})


def read_events(path):
    """evtx_dump JSON: one object, or several concatenated."""
    text = open(path, encoding="utf-8").read()
    dec, pos, out = json.JSONDecoder(), 0, []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            return out
        obj, pos = dec.raw_decode(text, pos)
        out += obj if isinstance(obj, list) else [obj]


def rebased(events):
    """The events stamped now (regression recordings are months old: the store keeps them at
    their own time, where retention may already have removed them)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    for e in events:
        tc = e.get("Event", {}).get("System", {}).get("TimeCreated", {}).get("#attributes")
        if tc is not None:
            tc["SystemTime"] = now
    return events


class Sender:
    """One agent over mTLS with the raw protocol: each call sends one batch and waits for its ACK."""

    def __init__(self, srv, agent_id, tenant="default"):
        crt, key = make_agent_cert(os.path.join(srv.dir, "ca.pem"), os.path.join(srv.dir, "ca.key"), agent_id, tenant,
                                   srv.dir)
        self.srv, self.crt, self.key = srv, crt, key
        self.connect()

    def connect(self):
        self.agent = Agent(self.srv.port, os.path.join(self.srv.dir, "ca.pem"), self.crt, self.key)
        self.seq = self.agent.hello()["resume_seq"]

    def send(self, events, fmt=FORMAT_WINLOG, wait=True):
        self.seq += 1
        payload = "".join(json.dumps(e) + "\n" for e in events).encode()
        self.agent.send(frame(EVENTS, payload, seq=self.seq, flags=fmt << 1))
        if wait:
            self.wait_ack(self.seq)
        return self.seq

    def wait_ack(self, seq):
        while True:
            f = self.agent.recv_frame(60)
            assert f, "connection closed before ACK %d" % seq
            if f[0] == ACK and f[2] >= seq:
                return

    def close(self):
        self.agent.close()


def rule_args(dirs):
    args = []
    for d in dirs:
        args += ["--rules", d]
    return args


def wait_log(srv, pattern, timeout=120, start=0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, srv.log()[start:])
        if m:
            return m
        time.sleep(0.1)
    raise AssertionError("no %r in the log:\n%s" % (pattern, srv.log()[-4000:]))


def restart(srv, kill=False):
    """Stops (or kill -9s) and starts again; returns the log offset where the new run begins
    (the log is appended to, so readiness is looked for after it)."""
    srv.kill9() if kill else srv.stop()
    mark = len(srv.log())
    srv.start()
    wait_log(srv, r"ready ingest_port", start=mark)
    return mark


# ---------------------------------------------------------------------------------------------
# the node with the whole SigmaHQ set and every regression case sent live

@pytest.fixture(scope="module")
def node():
    d = temp_dir("mamori-alerts-")
    api_port = free_port()
    srv = Server(d, extra=["--api-port", str(api_port), "--set", "api.rate_limit_per_key=0"] +
                 rule_args(RULE_DIRS)).start()
    try:
        api = Api(d, api_port)
        sender = Sender(srv, "regress-01")
        sent = {}  # seq -> (case, rule id, want)
        for info, rule_id, tests in CASES:
            for events_file, want in tests:
                seq = sender.send(read_events(events_file))
                sent[seq] = (os.path.basename(os.path.dirname(info)), rule_id, want)
        sender.close()
        api.wait_detected(len(sent))
        yield srv, api, d, sent
    finally:
        srv.stop()


def test_every_regression_case_fires_live(node):
    srv, api, _, sent = node
    assert len(sent) >= 136
    alerts, pages = api.alerts(limit=1000)
    fired = {}
    for a in alerts:
        key = (a["event"]["seq"], a["rule"]["id"])
        fired[key] = fired.get(key, 0) + 1
    missing = [(case, rule, want, fired.get((seq, rule), 0)) for seq, (case, rule, want) in sent.items()
               if fired.get((seq, rule), 0) < want]
    cases = {case for case, _, _ in sent.values()}
    print("live regression: %d/%d cases pass, %d alerts" % (len(cases) - len({m[0] for m in missing}), len(cases),
                                                           len(alerts)))
    assert not missing, missing
    # the record: id, tenant, host, rule with ATT&CK ids, event id and key fields
    a = next(a for a in alerts if a["rule"]["attack"])
    assert re.fullmatch(r"[0-9a-f]{32}", a["id"]) and a["status"] == "new" and a["assignee"] is None
    assert a["tenant"] == "default" and a["agent_id"] == "regress-01" and a["host"]["id"]
    assert a["rule"]["title"] and a["rule"]["level"] and all(re.fullmatch(r"T\d{4}(\.\d{3})?", t)
                                                            for t in a["rule"]["attack"])
    assert len(a["event"]["id"]) == 56
    st, ev = api.call("GET", "/v1/events/" + a["event"]["id"])
    assert st == 200 and ev["mamori"]["event_id"] == a["event"]["id"]
    proc = next(x for x in alerts if "process" in x["event"])
    assert proc["event"]["process"].get("executable") or proc["event"]["process"].get("name")
    # one alert per (rule, event)
    ids = [x["id"] for x in alerts]
    assert len(ids) == len(set(ids))
    pairs = [(x["rule"]["id"], x["event"]["id"]) for x in alerts]
    assert len(pairs) == len(set(pairs))


def test_metrics(node):
    _, api, _, sent = node
    m = api.metrics()
    assert m["mamori_detect_rules_loaded"] > 3000
    assert m["mamori_detect_ruleset_generation"] >= 1
    assert m["mamori_detect_events_evaluated_total"] > 0 and m["mamori_detect_candidate_rules_total"] > 0
    # the regression events repeat images and command lines: some scans come from the memo
    assert 0 < m["mamori_detect_scan_memo_hits_total"] < m["mamori_detect_scans_total"]
    assert m['mamori_detect_rules_rejected{reason="placeholder not configured"}'] == 2
    per_rule = {k: v for k, v in m.items() if k.startswith("mamori_detect_alerts_total{")}
    assert per_rule and all('rule_id="' in k and 'level="' in k for k in per_rule)
    assert sum(per_rule.values()) == len(api.alerts(limit=1000)[0])
    assert m["mamori_detect_alert_latency_seconds_count"] == sum(per_rule.values())
    assert m['mamori_detect_alert_latency_seconds_bucket{le="+Inf"}'] == m["mamori_detect_alert_latency_seconds_count"]
    assert m["mamori_detect_eval_seconds_count"] == len(sent)


def test_filters_and_paging(node):
    _, api, _, sent = node
    everything, _ = api.alerts(limit=1000)
    # newest first: event time descending, then id ascending
    keys = [(x["time"], x["id"]) for x in everything]
    assert keys == sorted(keys, key=lambda k: (-int(re.sub(r"\D", "", k[0])), k[1]))
    # paging: small pages give exactly the same list, nothing twice
    paged, pages = api.alerts(limit=7)
    assert [x["id"] for x in paged] == [x["id"] for x in everything] and pages > 1
    # rule
    rule = everything[0]["rule"]["id"]
    got, _ = api.alerts(rule=rule, limit=1000)
    assert got and {x["rule"]["id"] for x in got} == {rule}
    assert len(got) == sum(1 for x in everything if x["rule"]["id"] == rule)
    # level
    for level in ("low", "medium", "high", "critical"):
        got, _ = api.alerts(level=level, limit=1000)
        assert len(got) == sum(1 for x in everything if x["rule"]["level"] == level)
        assert all(x["rule"]["level"] == level for x in got)
    # host: by host.name (caseless) or host.id
    name = next(x["host"]["name"] for x in everything if x["host"]["name"])
    got, _ = api.alerts(host=name.upper(), limit=1000)
    assert got and len(got) == sum(1 for x in everything if (x["host"]["name"] or "").lower() == name.lower()
                                   or x["host"]["id"].lower() == name.lower())
    got, _ = api.alerts(host="regress-01", limit=1000)
    assert len(got) == sum(1 for x in everything if x["host"]["id"] == "regress-01")
    # time range on the event time
    times = sorted({x["time"] for x in everything})
    mid = times[len(times) // 2]
    got, _ = api.alerts(**{"from": mid, "limit": 1000})
    assert got and all(x["time"] >= mid for x in got)
    assert len(got) == sum(1 for x in everything if x["time"] >= mid)
    got, _ = api.alerts(to=mid, limit=1000)
    assert len(got) == sum(1 for x in everything if x["time"] < mid)
    # combined filters, paged
    lvl = everything[0]["rule"]["level"]
    got, _ = api.alerts(level=lvl, status="new", host="regress-01", limit=3)
    assert [x["id"] for x in got] == [x["id"] for x in everything if x["rule"]["level"] == lvl
                                      and x["status"] == "new" and x["host"]["id"] == "regress-01"]
    # bad input
    for q in ("level=severe", "status=open", "limit=0", "cursor=zz", "from=yesterday", "frobnicate=1",
              "limit=%d" % 10 ** 8):
        st, r = api.call("GET", "/v1/alerts?" + q)
        assert st == 400, (q, r)
    assert api.call("GET", "/v1/alerts/nothex")[0] == 400
    assert api.call("GET", "/v1/alerts/" + "0" * 32)[0] == 404
    assert api.call("DELETE", "/v1/alerts/" + everything[0]["id"])[0] == 405


def keys_for(api, role):
    st, r = api.call("POST", "/v1/keys", {"role": role, "name": "alerts-test"})
    assert st == 201, r
    return r["key"]


def test_patch_roles_and_audit(node):
    srv, api, _, _ = node
    everything, _ = api.alerts(limit=1000)
    target = everything[3]
    viewer, analyst = keys_for(api, "viewer"), keys_for(api, "analyst")
    path = "/v1/alerts/" + target["id"]
    assert api.call("GET", path, key=viewer)[0] == 200
    assert api.call("PATCH", path, {"status": "acknowledged"}, key=viewer)[0] == 403
    assert api.call("PATCH", path, {"status": "acknowledged"}, key=False)[0] == 401
    assert api.call("GET", "/v1/alerts", key=False)[0] == 401
    assert api.call("GET", path, key="mk_" + "0" * 64)[0] == 401
    st, r = api.call("PATCH", path, {"status": "acknowledged", "assignee": "alice"}, key=analyst)
    assert st == 200, r
    assert r["status"] == "acknowledged" and r["assignee"] == "alice" and r["updated"] >= r["created"]
    assert r["rule"] == target["rule"] and r["event"] == target["event"] and r["time"] == target["time"]
    st, again = api.call("GET", path)
    assert again == r
    wait_log(srv, r"audit alert_updated tenant=default id=%s status=acknowledged assignee=\"alice\" by=" % target["id"])
    # the status index follows
    acked, _ = api.alerts(status="acknowledged", limit=1000)
    assert [x["id"] for x in acked] == [target["id"]]
    new, _ = api.alerts(status="new", limit=1000)
    assert target["id"] not in {x["id"] for x in new} and len(new) == len(everything) - 1
    st, r = api.call("PATCH", path, {"status": "closed", "assignee": None}, key=analyst)
    assert st == 200 and r["status"] == "closed" and r["assignee"] is None
    assert [x["id"] for x in api.alerts(status="closed", limit=1000)[0]] == [target["id"]]
    assert api.alerts(status="acknowledged", limit=1000)[0] == []
    # bad patches
    for body in ({"status": "done"}, {}, {"assignee": 7}, {"colour": "red"}, {"assignee": "x" * 300}):
        st, r = api.call("PATCH", path, body, key=analyst)
        assert st == 400, (body, r)
    assert api.call("PATCH", "/v1/alerts/" + "f" * 32, {"status": "closed"}, key=analyst)[0] == 404
    # mamorictl
    d = node[2]
    p = subprocess.run([MAMORICTL, "alerts", "--dev", d, "--status", "closed", "--json"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0, p.stderr
    assert [json.loads(l)["id"] for l in p.stdout.splitlines()] == [target["id"]]
    other = everything[5]["id"]
    p = subprocess.run([MAMORICTL, "alerts", "ack", other, "--dev", d, "--assignee", "bob"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == "acknowledged", p.stderr
    p = subprocess.run([MAMORICTL, "alerts", "close", other, "--dev", d], stdout=subprocess.PIPE, text=True)
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == "closed"
    assert json.loads(p.stdout)["assignee"] == "bob"
    p = subprocess.run([MAMORICTL, "alerts", "--dev", d, "--rule", everything[0]["rule"]["id"]], stdout=subprocess.PIPE,
                       text=True)
    assert p.returncode == 0 and everything[0]["id"] in p.stdout and p.stdout.startswith("time")
    p = subprocess.run([MAMORICTL, "alerts", "frob", other, "--dev", d], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    assert p.returncode == 2


def test_tenant_isolation(node):
    srv, api, d, _ = node
    everything, _ = api.alerts(limit=1000)
    srv.stop()
    p = subprocess.run([MAMORICTL, "keys", "create", "--data", os.path.join(d, "data"), "--tenant", "acme", "--role",
                        "admin", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0, p.stderr
    acme = json.loads(p.stdout)["key"]
    mark = len(srv.log())
    srv.start()
    wait_log(srv, r"ready ingest_port", start=mark)
    # an acme agent's alert, next to default's
    s = Sender(srv, "acme-01", tenant="acme")
    info, rule_id, tests = next(c for c in CASES if c[2])
    s.send(read_events(tests[0][0]))
    s.close()
    deadline = time.time() + 120
    mine = []
    while time.time() < deadline and not mine:
        mine = api.alerts(key=acme, limit=1000)[0]
        time.sleep(0.2)
    assert mine and all(a["tenant"] == "acme" for a in mine)
    assert rule_id in {a["rule"]["id"] for a in mine}
    assert {a["id"] for a in mine}.isdisjoint({a["id"] for a in everything})
    # nothing of default is visible to acme, and the reverse
    for a in everything[:20]:
        assert api.call("GET", "/v1/alerts/" + a["id"], key=acme)[0] == 404
        assert api.call("PATCH", "/v1/alerts/" + a["id"], {"status": "closed"}, key=acme)[0] == 404
    assert api.call("GET", "/v1/alerts/" + mine[0]["id"])[0] == 404
    assert {a["id"] for a in api.alerts(limit=1000)[0]} == {a["id"] for a in everything}
    # the restart re-detected nothing (no gap) and kept every status
    assert "re-detecting" not in srv.log()[mark:]


# ---------------------------------------------------------------------------------------------
# crash after the ack, before detection: re-detection at start-up, ids that never double

def test_crash_gap_is_redetected_once():
    d = temp_dir("mamori-alerts-crash-")
    api_port = free_port()
    # the whole rule set takes seconds to compile: batches acked meanwhile wait for detection
    srv = Server(d, extra=["--api-port", str(api_port), "--set", "api.rate_limit_per_key=0"] +
                 rule_args(RULE_DIRS)).start()
    api = Api(d, api_port)
    try:
        s = Sender(srv, "crash-01")
        cases = [c for c in CASES if c[2]][:40]
        expect = {}
        for info, rule_id, tests in cases:
            for events_file, want in tests:
                expect[s.send(rebased(read_events(events_file)))] = (rule_id, want)
        s.close()
        assert "rule set loaded" not in srv.log(), "rules compiled too fast to leave a gap"
        restart(srv, kill=True)  # acked (durable), never detected
        wait_log(srv, r"re-detection done batches_found=%d batches_missing=0 events=\d+ alerts_new=\d+" % len(expect))
        alerts, _ = api.alerts(limit=1000)
        fired = {}
        for a in alerts:
            fired[(a["event"]["seq"], a["rule"]["id"])] = fired.get((a["event"]["seq"], a["rule"]["id"]), 0) + 1
        assert all(fired.get((seq, rid), 0) >= want for seq, (rid, want) in expect.items()), fired
        pairs = [(a["rule"]["id"], a["event"]["id"]) for a in alerts]
        assert len(pairs) == len(set(pairs))
        m = api.metrics()
        assert m["mamori_detect_recovered_batches_total"] == len(expect)
        assert m["mamori_detect_recovered_alerts_total"] == len(alerts)
        # an analyst's work survives; a second crash and restart re-detects nothing and doubles nothing
        st, r = api.call("PATCH", "/v1/alerts/" + alerts[0]["id"], {"status": "acknowledged", "assignee": "carol"})
        assert st == 200
        mark = restart(srv, kill=True)
        s = Sender(srv, "crash-01")  # a later batch still goes through
        seq = s.send(rebased(read_events(cases[0][2][0][0])))
        s.close()
        api.wait_detected(1)
        again, _ = api.alerts(limit=1000)
        assert "re-detecting" not in srv.log()[mark:]
        old = [a for a in again if a["event"]["seq"] != seq]
        assert sorted(a["id"] for a in old) == sorted(a["id"] for a in alerts)
        assert next(a for a in again if a["id"] == alerts[0]["id"])["assignee"] == "carol"
        assert any(a["event"]["seq"] == seq and a["rule"]["id"] == cases[0][1] for a in again)
    finally:
        srv.stop()


def test_ids_are_deterministic():
    """The same agent, seq and events on another node give the same alert ids."""
    ids = []
    info, rule_id, tests = next(c for c in CASES if c[2])
    rule = rule_index()[rule_id]
    for _ in range(2):
        d = temp_dir("mamori-alerts-ids-")
        api_port = free_port()
        srv = Server(d, extra=["--api-port", str(api_port), "--rules", rule]).start()
        try:
            wait_log(srv, "rule set loaded")
            s = Sender(srv, "same-01")
            s.send(read_events(tests[0][0]))
            s.close()
            api = Api(d, api_port)
            api.wait_detected(1)
            ids.append(sorted(a["id"] for a in api.alerts(limit=1000)[0]))
        finally:
            srv.stop()
    assert ids[0] and ids[0] == ids[1]


# ---------------------------------------------------------------------------------------------
# hot reload

RULE_A = """title: Whoami run
id: 5b0c7b58-0a6e-4b0e-9d7e-aaaaaaaaaaaa
level: medium
tags: [attack.discovery, attack.t1033]
logsource: {category: process_creation, product: windows}
detection:
    sel:
        Image|endswith: '\\\\whoami.exe'
    condition: sel
"""
RULE_B = """title: Net user
id: 5b0c7b58-0a6e-4b0e-9d7e-bbbbbbbbbbbb
level: high
tags: [attack.discovery, attack.t1087.001]
logsource: {category: process_creation, product: windows}
detection:
    sel:
        CommandLine|contains: 'net user'
    condition: sel
"""


def ecs_process(exe, cmd):
    return {"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": ["process"], "type": ["start"]},
            "host": {"os": {"type": "windows"}, "name": "ws-7"},
            "process": {"executable": exe, "command_line": cmd, "name": exe.rsplit("\\", 1)[-1]}}


def test_hot_reload_on_sighup():
    d = temp_dir("mamori-alerts-reload-")
    rules = os.path.join(d, "rules")
    os.makedirs(rules)
    with open(os.path.join(rules, "a.yml"), "w") as f:
        f.write(RULE_A)
    api_port = free_port()
    srv = Server(d, extra=["--api-port", str(api_port), "--rules", rules, "--set", "api.rate_limit_per_key=0",
                           "--set", "store.sync=false"]).start()
    api = Api(d, api_port)
    try:
        wait_log(srv, r"rule set loaded generation=(\d+) rules=1 ")
        both = [ecs_process("C:\\Windows\\System32\\whoami.exe", "whoami /all"),
                ecs_process("C:\\Windows\\System32\\net.exe", "net user admin /domain")]
        s = Sender(srv, "reload-01")
        s1 = s.send(both, fmt=FORMAT_ECS)
        api.wait_detected(1)
        fired = {(a["event"]["seq"], a["rule"]["id"]) for a in api.alerts(limit=100)[0]}
        assert fired == {(s1, "5b0c7b58-0a6e-4b0e-9d7e-aaaaaaaaaaaa")}
        gen1 = api.metrics()["mamori_detect_ruleset_generation"]
        # add a rule, SIGHUP: the next batch is evaluated with both
        with open(os.path.join(rules, "b.yml"), "w") as f:
            f.write(RULE_B)
        mark = len(srv.log())
        srv.proc.send_signal(1)
        wait_log(srv, r"rule set loaded generation=\d+ rules=2 ", start=mark)
        assert api.metrics()["mamori_detect_ruleset_generation"] > gen1
        s2 = s.send(both, fmt=FORMAT_ECS)
        api.wait_detected(2)
        fired = {(a["event"]["seq"], a["rule"]["id"]) for a in api.alerts(limit=100)[0]}
        assert fired == {(s1, "5b0c7b58-0a6e-4b0e-9d7e-aaaaaaaaaaaa"), (s2, "5b0c7b58-0a6e-4b0e-9d7e-aaaaaaaaaaaa"),
                         (s2, "5b0c7b58-0a6e-4b0e-9d7e-bbbbbbbbbbbb")}
        # a failed reload (the directory is gone) keeps the running set
        gen2 = api.metrics()["mamori_detect_ruleset_generation"]
        moved = rules + ".away"
        shutil.move(rules, moved)
        mark = len(srv.log())
        srv.proc.send_signal(1)
        wait_log(srv, r"rule set reload failed, keeping generation %d: .*rules" % gen2, start=mark)
        shutil.move(moved, rules)
        assert api.metrics()["mamori_detect_reloads_total{result=\"failed\"}"] == 1
        s3 = s.send(both, fmt=FORMAT_ECS)
        api.wait_detected(3)
        assert len([a for a in api.alerts(limit=100)[0] if a["event"]["seq"] == s3]) == 2
        s.close()
        # swaps under a continuous stream: every event evaluated exactly once
        p = sim(d, "--agents", 4, "--events-per-agent", 4000, "--rate", 4000, background=True)
        for _ in range(4):
            time.sleep(0.4)
            srv.proc.send_signal(1)
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        m = api.wait_detected(3)
        deadline = time.time() + 60
        while time.time() < deadline:
            m = api.metrics()
            if m["mamori_detect_events_evaluated_total"] >= m["mamori_ingest_events_accepted_total"] and \
                    m["mamori_detect_pending_batches"] == 0:
                break
            time.sleep(0.2)
        assert m["mamori_detect_events_evaluated_total"] == m["mamori_ingest_events_accepted_total"]
        assert m["mamori_detect_batches_total"] == m["mamori_bus_published_batches_total"]
        assert m["mamori_detect_reloads_total{result=\"ok\"}"] >= 3
    finally:
        srv.stop()


def test_small_batches_evaluated_together_keep_their_alerts():
    """Many small batches sent back to back: the detect thread evaluates consecutive ones in
    one engine call (mamori_detect_eval_calls_total below batches_total), and every alert
    still names its own batch and event: each event's command line says which batch and
    position it was sent at, and the stored event an alert points to must say the same."""
    d = temp_dir("mamori-alerts-group-")
    rules = os.path.join(d, "rules")
    os.makedirs(rules)
    for name, text in (("a.yml", RULE_A), ("b.yml", RULE_B)):
        with open(os.path.join(rules, name), "w") as f:
            f.write(text)
    api_port = free_port()
    srv = Server(d, extra=["--api-port", str(api_port), "--rules", rules, "--set", "api.rate_limit_per_key=0",
                           "--set", "store.sync=false", "--set", "detect.threads=1"]).start()
    api = Api(d, api_port)
    try:
        wait_log(srv, r"rule set loaded generation=(\d+) rules=2 ")
        s = Sender(srv, "group-01")
        expected = set()  # (seq, rule id, command line)
        batches = 300
        for i in range(batches):
            events = []
            for j in range(1 + i % 3):
                kind = (i * 7 + j) % 4  # whoami, net user, both rules' fields apart, nothing
                exe = "C:\\Windows\\System32\\" + ("whoami.exe" if kind == 0 else "net.exe" if kind == 1 else "cmd.exe")
                cmd = "%s b%d e%d" % ("net user x" if kind == 1 else "run", i, j)
                events.append(ecs_process(exe, cmd))
                if kind == 0:
                    expected.add((s.seq + 1, "5b0c7b58-0a6e-4b0e-9d7e-aaaaaaaaaaaa", cmd))
                elif kind == 1:
                    expected.add((s.seq + 1, "5b0c7b58-0a6e-4b0e-9d7e-bbbbbbbbbbbb", cmd))
            s.send(events, fmt=FORMAT_ECS, wait=False)
        s.wait_ack(s.seq)
        s.close()
        m = api.wait_detected(batches)
        assert m["mamori_detect_batches_total"] == batches
        assert m["mamori_detect_eval_calls_total"] < batches, "no two batches were evaluated together"
        got = set()
        for a in api.alerts(limit=1000)[0]:
            st, ev = api.call("GET", "/v1/events/" + a["event"]["id"])
            assert st == 200, ev
            cmd = ev["process"]["command_line"]
            assert cmd.split()[-2] == "b%d" % (a["event"]["seq"] - (s.seq - batches) - 1), (a, cmd)
            got.add((a["event"]["seq"], a["rule"]["id"], cmd))
        assert got == expected
    finally:
        srv.stop()


def test_config_rules_and_check():
    d = temp_dir("mamori-alerts-cfg-")
    path = os.path.join(d, "m.yaml")
    with open(path, "w") as f:
        f.write("detect:\n  rules:\n    - /nonexistent/rules\n    - [nested]\n")
    p = subprocess.run([MAMORID, "--check-config", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 2 and "line 4" in p.stderr and "detect.rules" in p.stderr, p.stderr
    with open(path, "w") as f:
        f.write("detect:\n  rules: [/a, /b]\n  threads: 2\n  placeholders: ['known_cdcs=dc1']\n")
    p = subprocess.run([MAMORID, "--check-config", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0, p.stderr
    # a configured rule path that does not exist stops the start with its name
    p = subprocess.run([MAMORID, "--dev", d, "--ingest-port", "0",
                        "--api-port", "0", "--rules", "/nonexistent/rules"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode != 0 and "/nonexistent/rules" in p.stderr


def whoami_node(name, rules_text, rule_count):
    """A node running rules_text that has detected one ECS whoami.exe start."""
    d = temp_dir("mamori-alerts-%s-" % name)
    rules = os.path.join(d, "rules")
    os.makedirs(rules)
    with open(os.path.join(rules, name + ".yml"), "w") as f:
        f.write(rules_text)
    api_port = free_port()
    srv = Server(d, extra=["--api-port", str(api_port), "--rules", rules, "--set", "store.sync=false"]).start()
    api = Api(d, api_port)
    try:
        wait_log(srv, r"rule set loaded generation=(\d+) rules=%d " % rule_count)
        s = Sender(srv, name + "-01")
        s.send([ecs_process("C:\\Windows\\System32\\whoami.exe", "whoami")], fmt=FORMAT_ECS)
        api.wait_detected(1)
        s.close()
    except BaseException:
        srv.stop()
        raise
    return srv, api


def test_rule_without_id_is_selected_by_title():
    """A rule without `id` keys its alerts by title: `?rule=<title>` selects them; one without
    `level` is selected by `?level=none`."""
    text = "\n".join(l for l in RULE_A.splitlines() if not l.startswith(("id:", "level:")))
    srv, api = whoami_node("noid", text.replace("Whoami run", "Whoami run, no id"), 1)
    try:
        got = api.alerts(rule="Whoami run, no id", limit=10)[0]
        assert len(got) == 1 and got[0]["rule"]["title"] == "Whoami run, no id", got
        assert api.alerts(rule="whoami run, NO ID", limit=10)[0] == got  # ASCII-caseless like ids
        assert api.alerts(rule="5b0c7b58-0a6e-4b0e-9d7e-aaaaaaaaaaaa", limit=10)[0] == []
        assert api.alerts(level="none", limit=10)[0] == got
        assert api.alerts(level="medium", limit=10)[0] == []
    finally:
        srv.stop()


def test_id_less_rules_of_one_title_alert_separately():
    """Two rules without `id` sharing a title, both matching one event: two alerts (named by
    title, file and line), both listed under the title."""
    one = "\n".join(l for l in RULE_A.splitlines() if not l.startswith("id:"))
    srv, api = whoami_node("noid2", one + "\n---\n" + one.replace("sel", "selection"), 2)
    try:
        got = api.alerts(rule="Whoami run", limit=10)[0]
        assert len(got) == 2 and len({a["id"] for a in got}) == 2, got
        assert sorted(a["rule"]["line"] for a in got)[0] == 1
    finally:
        srv.stop()
